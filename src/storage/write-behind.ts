/**
 * A write-behind view of an engine for one writer whose writes need not be
 * durable on return (a range's apply loop: the raft log is the durable
 * record, and a restart re-applies what the engine lost). Unsynced writes
 * are queued and coalesced into one engine batch, written on the next
 * macrotask, by {@link WriteBehindEngine.flush}, or before any read through
 * this view — so every read sees every earlier write, as with the engine
 * itself, while a burst of small writes (one per applied raft entry) costs
 * one native batch instead of one each. Ops that a later queued op on the
 * same key object supersedes are dropped from that batch (each applied entry
 * rewrites the same few bookkeeping keys: applied index, current revision),
 * which leaves the batch's outcome unchanged, since within one atomic batch
 * the last op on a key wins.
 *
 * A failed background write poisons the view: every later call rejects
 * with that error (the caller crashes rather than run on a state that lost
 * a write).
 */
import type { BatchOp, Engine, EngineKind, EngineSnapshot, Entry, IterateOptions, WriteOptions } from './engine.js';
import { checkBatch } from './internal.js';

/** Ops queued before a write is started even without a flush (bounds memory). */
export const WRITE_BEHIND_OPS_MAX = 65_536;

/** See the module comment. The underlying engine stays open when this view closes. */
export class WriteBehindEngine implements Engine {
  private pending: BatchOp[] = [];
  /** The chain of background writes; every flush waits for it. */
  private writing: Promise<void> = Promise.resolve();
  private scheduled = false;
  private failure: unknown;

  constructor(readonly inner: Engine) {}

  get kind(): EngineKind {
    return this.inner.kind;
  }

  /** Ops queued and not yet handed to the engine. */
  get pendingOps(): number {
    return this.pending.length;
  }

  /**
   * Queues `ops` (checked now, so an invalid batch is refused whole); with
   * `sync`, writes everything queued plus `ops` and resolves once durable.
   */
  async write(ops: readonly BatchOp[], options: WriteOptions = {}): Promise<void> {
    this.enqueue(ops);
    if (options.sync === true) return this.flush({ sync: true });
    if (this.pending.length >= WRITE_BEHIND_OPS_MAX) return this.flush();
    this.schedule();
  }

  /**
   * Queues `ops` as an unsynced write, at once: `write(ops)` for a caller
   * that does not wait for it (an invalid batch or a failed view throws
   * here instead of rejecting; past WRITE_BEHIND_OPS_MAX the write starts
   * without being waited for).
   */
  queue(ops: readonly BatchOp[]): void {
    this.enqueue(ops);
    if (this.pending.length >= WRITE_BEHIND_OPS_MAX) this.flush().catch(() => undefined); // recorded in `failure`
    else this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush().catch(() => undefined); // recorded in `failure`, reported by the next call
    });
  }

  private enqueue(ops: readonly BatchOp[]): void {
    this.assertHealthy();
    checkBatch(ops);
    for (const op of ops) this.pending.push(op);
  }

  /** Writes everything queued as one batch and waits for all earlier writes. */
  async flush(options: WriteOptions = {}): Promise<void> {
    this.assertHealthy();
    if (this.pending.length > 0 || options.sync === true) {
      const ops = withoutSuperseded(this.pending);
      this.pending = [];
      this.writing = this.writing.then(() => this.inner.write(ops, options));
      this.writing.catch((err: unknown) => {
        this.failure ??= err;
      });
    }
    await this.writing;
    this.assertHealthy();
  }

  async get(key: Uint8Array): Promise<Buffer | undefined> {
    await this.flush();
    return this.inner.get(key);
  }

  iterate(options: IterateOptions = {}): AsyncIterableIterator<Entry> {
    // The engine's own iterator once the queue is written, not a generator around it: every
    // key of a scan would pass through one more promise.
    let inner: AsyncIterableIterator<Entry> | undefined;
    let opening: Promise<AsyncIterableIterator<Entry>> | undefined;
    let ended = false;
    const open = (): Promise<AsyncIterableIterator<Entry>> =>
      (opening ??= this.flush().then(() => (inner = this.inner.iterate(options))));
    const iterator: AsyncIterableIterator<Entry> = {
      next: () => {
        if (inner !== undefined) return inner.next();
        if (ended) return Promise.resolve({ done: true, value: undefined });
        return open().then((it) => it.next());
      },
      return: async (value?: unknown) => {
        ended = true;
        const it = opening === undefined ? undefined : await opening.catch(() => undefined);
        await it?.return?.();
        return { done: true, value };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  async count(options: IterateOptions = {}): Promise<number> {
    await this.flush();
    return this.inner.count(options);
  }

  /**
   * A consistent view including every write queued so far. The engine's
   * snapshot is taken when the view is first read, after the queue is
   * written, so it may also include writes made in between — still one
   * consistent point of the engine.
   */
  snapshot(): EngineSnapshot {
    this.assertHealthy();
    let inner: Promise<EngineSnapshot> | undefined;
    let released = false;
    const open = (): Promise<EngineSnapshot> => (inner ??= this.flush().then(() => this.inner.snapshot()));
    return {
      get: async (key) => (await open()).get(key),
      iterate: (options) =>
        (async function* () {
          yield* (await open()).iterate(options);
        })(),
      count: async (options) => (await open()).count(options),
      release: async () => {
        if (released) return;
        released = true;
        if (inner !== undefined) await (await inner.catch(() => undefined))?.release();
      },
    };
  }

  async approximateSize(start: Uint8Array, end: Uint8Array): Promise<number> {
    await this.flush();
    return this.inner.approximateSize(start, end);
  }

  async deleteSpan(start: Uint8Array, end: Uint8Array, options?: WriteOptions): Promise<void> {
    await this.flush();
    return this.inner.deleteSpan(start, end, options);
  }

  async compactRange(start: Uint8Array, end: Uint8Array): Promise<void> {
    await this.flush();
    return this.inner.compactRange(start, end);
  }

  /** Writes what is queued; the engine itself stays open (it is shared). */
  async close(): Promise<void> {
    if (this.failure === undefined) await this.flush();
  }

  /** Not supported: the view does not own the engine. */
  async destroy(): Promise<void> {
    throw new Error('a write-behind view does not own its engine');
  }

  private assertHealthy(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}

/**
 * `ops` without every op that a later op on the same key object overrides,
 * in the original order: the same final state when written as one atomic
 * batch. Keys are matched by identity, not by bytes: the ops worth dropping
 * are the bookkeeping records every applied entry rewrites, whose writers
 * reuse one key Buffer each, and an identity lookup costs no string copy of
 * every key. Equal keys in distinct Buffers are all kept; the batch's
 * outcome is the same, since its last op on a key wins.
 */
export function withoutSuperseded(ops: readonly BatchOp[]): BatchOp[] {
  if (ops.length < 2) return [...ops];
  const seen = new Set<Uint8Array>();
  const kept: BatchOp[] = [];
  for (let i = ops.length - 1; i >= 0; i--) {
    const op = ops[i]!;
    if (seen.has(op.key)) continue;
    seen.add(op.key);
    kept.push(op);
  }
  return kept.reverse();
}
