/**
 * Coalesces the messages of one stream into batches. grpc-js hands a
 * stream's messages to HTTP/2 one at a time, each after the previous one's
 * write has completed, which takes a turn of the event loop; on a busy
 * process (a leader running raft turns) a burst of N messages then needs N
 * turns. This writer has at most one batch in flight: what is pushed while
 * it is being written leaves together in the next one, so a quiet stream
 * sends each message at once and a busy one sends one batch per turn.
 */

/** Writes one batch; `done` runs when the write has completed (or failed: the stream is then dropped). */
export type WriteBatch<T> = (items: T[], done: () => void) => void;

/** Options of {@link BatchWriter}. */
export interface BatchWriterOptions<T> {
  /** Approximate encoded size of an item, for `batchBytesMax`. */
  readonly sizeOf: (item: T) => number;
  /** Most bytes of items in one batch (an item larger than this still goes, alone). */
  readonly batchBytesMax: number;
}

/** One stream's batching writer (see the module comment). */
export class BatchWriter<T> {
  private queue: T[] = [];
  private writing = false;
  private onDrained: (() => void) | undefined;

  constructor(
    private readonly write: WriteBatch<T>,
    private readonly options: BatchWriterOptions<T>,
  ) {}

  /** Items waiting for the write in flight to complete. */
  get queued(): number {
    return this.queue.length;
  }

  /** Sends `item` now if no batch is in flight, else with the next batch. */
  push(item: T): void {
    this.queue.push(item);
    if (!this.writing) this.flush();
  }

  /**
   * Runs `finish` once every item pushed so far has been handed to a write
   * (at once if none is waiting): the stream may then be ended, its own
   * buffer keeps the writes in flight.
   */
  drain(finish: () => void): void {
    if (this.queue.length === 0) finish();
    else this.onDrained = finish;
  }

  private flush(): void {
    const { sizeOf, batchBytesMax } = this.options;
    let count = 0;
    let bytes = 0;
    while (count < this.queue.length) {
      const size = sizeOf(this.queue[count] as T);
      if (count > 0 && bytes + size > batchBytesMax) break;
      bytes += size;
      count++;
    }
    const batch = count === this.queue.length ? this.queue : this.queue.slice(0, count);
    this.queue = count === this.queue.length ? [] : this.queue.slice(count);
    this.writing = true;
    this.write(batch, () => {
      this.writing = false;
      if (this.queue.length > 0) this.flush();
    });
    const drained = this.onDrained;
    if (drained !== undefined && this.queue.length === 0) {
      this.onDrained = undefined;
      drained();
    }
  }
}
