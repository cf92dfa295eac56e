/**
 * WalEngine: an ordered engine whose state lives in memory (a MemoryEngine)
 * and is made durable by a write-ahead log of its batches and by periodic
 * checkpoints of the whole state (docs/storage.md, "The WAL engine"). It is
 * the raft log store's engine on durable nodes, where the state is small
 * (the logs are truncated behind the ranges' applied state) and the write
 * pattern is append, overwrite the hard state, sync — the pattern etcd's WAL
 * and TiKV's raft engine are built for, not an LSM tree.
 *
 * Writes. `write()` encodes the batch as one record at once (so its
 * sequence number is its place in the log) and queues it. One append is in
 * flight at a time; everything queued meanwhile goes out as the next append,
 * one positional write of the concatenated records, synced if any of them
 * asked: group commit. A synced append with nothing unsynced before it uses a
 * descriptor opened with O_DSYNC, one system call (a small one on the calling
 * thread, see INLINE_APPEND_BYTES_MAX); otherwise write then fdatasync. Segments are preallocated with zeros (a spare is prepared in the
 * background; a process's first segment is small, so a start waits for little
 * of it), so a synced append commits no file metadata. A batch is
 * applied to memory once its append returns, in log order, and then
 * resolves: reads see a write once it resolved, never a write the log lost.
 *
 * Checkpoints. Once the segments since the last checkpoint hold more bytes
 * than that checkpoint (and at least `checkpointBytesMin`), or more than
 * CHECKPOINT_SEGMENTS_MAX segments, the active segment is sealed and a
 * copy-on-write view of the state at that record is written to a new
 * checkpoint file in the background (temporary name, synced, renamed); then
 * the segments it covers and the older checkpoint are removed. Writing a
 * checkpoint of the live state whenever the log has grown by as much keeps
 * the bytes written at most about twice the bytes logged.
 *
 * Failure: after a failed file operation every later write rejects with
 * ENGINE_IO (the caller must reopen: crash rather than run with memory ahead
 * of the disk); reads keep answering from memory, which only ever holds what
 * was logged.
 */
import fs from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { type BatchOp, EngineError, type EngineSnapshot, type Entry, type IterateOptions, type WriteOptions } from './engine.js';
import type { Engine } from './engine.js';
import { type TreeOp, checkBatch, checkBound, removeDir } from './internal.js';
import { MemoryEngine } from './memory.js';
import {
  closeFd,
  createPreallocated,
  dataSync,
  lockDir,
  openFd,
  removeFile,
  syncDir,
  unlockDir,
  writeAt,
  writeAtSync,
} from './wal-files.js';
import {
  CHECKPOINT_MAGIC,
  RECORD_BATCH,
  RECORD_CHECKPOINT_END,
  SEGMENT_MAGIC,
  checkpointName,
  encodeFileHeader,
  encodeRecord,
  segmentName,
} from './wal-format.js';
import { type WalFile, recoverWal } from './wal-recover.js';

/** Default size a segment is preallocated to. */
export const WAL_SEGMENT_BYTES_DEFAULT = 16 * 1024 * 1024;
/** Default log growth before a checkpoint is considered. */
export const WAL_CHECKPOINT_BYTES_MIN_DEFAULT = 64 * 1024 * 1024;
/** Segments after the last checkpoint that force the next one (each start begins a segment). */
export const CHECKPOINT_SEGMENTS_MAX = 8;
/**
 * The first segment a process starts is preallocated to at most this: a
 * node that starts and writes little (most of a test suite's, and a restart
 * before the first write) waits for 1 MiB of zeros, not a whole segment's.
 */
const FIRST_SEGMENT_BYTES_MAX = 1024 * 1024;
/** Smallest segment size accepted (tests use small segments to roll over often). */
const SEGMENT_BYTES_MIN = 4096;
/** Bytes of queued records one append takes at most. */
const APPEND_BYTES_MAX = 16 * 1024 * 1024;
/**
 * A synced append of at most this many bytes (one small entry: what a lone
 * client's put makes) is written on the calling thread: through libuv's pool
 * it costs two thread hand-offs, each waking a sleeping thread when the
 * process idles between requests, which made it take half as long again as
 * the write itself (docs/benchmarks.md). Under load appends are larger
 * (group commit) and go through the pool, so the main thread keeps working
 * while the disk syncs.
 */
const INLINE_APPEND_BYTES_MAX = 1024;
/** Bytes of puts per checkpoint record. */
const CHECKPOINT_RECORD_BYTES = 1024 * 1024;

/** Options of {@link WalEngine.open}. */
export interface WalEngineOptions {
  /** Bytes a segment is preallocated to (a larger batch still fits, in a segment of its own). */
  readonly segmentBytes?: number;
  /** Log bytes written since the last checkpoint before another is written, at least. */
  readonly checkpointBytesMin?: number;
}

/** Counters of the log's work; plain fields that only grow. */
export interface WalCounters {
  appends: number;
  /** Synced appends small enough to be written on the calling thread. */
  inlineAppends: number;
  syncs: number;
  bytesAppended: number;
  segmentsStarted: number;
  checkpoints: number;
  checkpointBytes: number;
}

interface Queued {
  readonly seq: number;
  /** The record, or undefined for an empty batch (a sync point only). */
  readonly record: Buffer | undefined;
  readonly ops: readonly TreeOp[];
  readonly sync: boolean;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

/** The segment appends go to. */
interface ActiveSegment {
  readonly name: string;
  readonly seq: number;
  readonly fd: number;
  readonly dsyncFd: number;
  /** Bytes it was preallocated to. */
  readonly capacity: number;
  /** Bytes written, header included; 0 until the first append writes the header. */
  size: number;
  /** Appended bytes not yet synced. */
  dirty: boolean;
}

/** See the module comment. */
export class WalEngine implements Engine {
  readonly kind = 'wal' as const;
  readonly counters: WalCounters = { appends: 0, inlineAppends: 0, syncs: 0, bytesAppended: 0, segmentsStarted: 0, checkpoints: 0, checkpointBytes: 0 };
  private readonly queue: Queued[] = [];
  private appending = false;
  private drained: (() => void)[] = [];
  private active: ActiveSegment | undefined;
  /** Sealed segments with records after the last checkpoint, oldest first. */
  private sealed: WalFile[];
  private spare: { readonly path: Promise<string>; readonly bytes: number } | undefined;
  private spareCount = 0;
  private checkpointing: Promise<void> | undefined;
  private checkpoint: WalFile | undefined;
  /** Segments a checkpoint in progress covers: on disk until it is in place. */
  private covered: readonly WalFile[] = [];
  /** Sequence number of the last record queued. */
  private queuedSeq: number;
  /** Sequence number of the last record appended and applied. */
  private appliedSeq: number;
  private failure: EngineError | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;

  private constructor(
    readonly path: string,
    private readonly mem: MemoryEngine,
    private readonly segmentBytes: number,
    private readonly checkpointBytesMin: number,
    recovered: { lastSeq: number; checkpoint: WalFile | undefined; segments: readonly WalFile[] },
  ) {
    this.queuedSeq = recovered.lastSeq;
    this.appliedSeq = recovered.lastSeq;
    this.checkpoint = recovered.checkpoint;
    this.sealed = [...recovered.segments];
  }

  /**
   * Opens (creating if missing) the engine in `path`: takes the directory's
   * lock and replays the log (wal-recover.ts). Damage a crash cannot explain
   * rejects with ENGINE_IO.
   */
  static async open(path: string, options: WalEngineOptions = {}): Promise<WalEngine> {
    const segmentBytes = options.segmentBytes ?? WAL_SEGMENT_BYTES_DEFAULT;
    const checkpointBytesMin = options.checkpointBytesMin ?? WAL_CHECKPOINT_BYTES_MIN_DEFAULT;
    if (!Number.isSafeInteger(segmentBytes) || segmentBytes < SEGMENT_BYTES_MIN) {
      throw new EngineError('INVALID_ARGUMENT', `segmentBytes must be an integer >= ${SEGMENT_BYTES_MIN}`);
    }
    if (!Number.isSafeInteger(checkpointBytesMin) || checkpointBytesMin < 0) {
      throw new EngineError('INVALID_ARGUMENT', 'checkpointBytesMin must be a non-negative integer');
    }
    try {
      await mkdir(path, { recursive: true });
      await lockDir(path);
    } catch (e) {
      throw new EngineError('ENGINE_IO', `cannot open the WAL in ${path}: ${(e as Error).message}`, { cause: e });
    }
    const mem = new MemoryEngine();
    try {
      const recovered = await recoverWal(path, (ops) => mem.applyOwned(ops.map(copyOp)));
      return new WalEngine(path, mem, segmentBytes, checkpointBytesMin, recovered);
    } catch (e) {
      await unlockDir(path).catch(() => undefined);
      throw new EngineError('ENGINE_IO', `cannot recover the WAL in ${path}: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * Bytes of the log in use: the checkpoint and the records of the segments
   * after it (not the segments' preallocated zeros, nor a spare segment).
   */
  get logBytes(): number {
    let n = (this.checkpoint?.bytes ?? 0) + this.bytesSinceCheckpoint();
    for (const s of this.covered) n += s.bytes;
    return n;
  }

  /** Bytes of the records after the last checkpoint (or the one being written). */
  private bytesSinceCheckpoint(): number {
    let n = this.active?.size ?? 0;
    for (const s of this.sealed) n += s.bytes;
    return n;
  }

  get(key: Uint8Array): Promise<Buffer | undefined> {
    return this.mem.get(key);
  }

  iterate(options?: IterateOptions): AsyncIterableIterator<Entry> {
    return this.mem.iterate(options);
  }

  count(options?: IterateOptions): Promise<number> {
    return this.mem.count(options);
  }

  snapshot(): EngineSnapshot {
    return this.mem.snapshot();
  }

  approximateSize(start: Uint8Array, end: Uint8Array): Promise<number> {
    return this.mem.approximateSize(start, end);
  }

  compactRange(start: Uint8Array, end: Uint8Array): Promise<void> {
    // Nothing to rewrite on demand: a checkpoint drops overwritten and deleted entries.
    return this.mem.compactRange(start, end);
  }

  async write(ops: readonly BatchOp[], options: WriteOptions = {}): Promise<void> {
    this.assertWritable();
    const copied = checkBatch(ops).map(copyOp);
    return this.enqueue(copied, options.sync === true);
  }

  async deleteSpan(start: Uint8Array, end: Uint8Array, options: WriteOptions = {}): Promise<void> {
    this.assertWritable();
    const op: TreeOp = { type: 'span', start: Buffer.from(checkBound(start, 'start')), end: Buffer.from(checkBound(end, 'end')) };
    if (Buffer.compare(op.start, op.end) >= 0) return this.enqueue([], options.sync === true);
    return this.enqueue([op], options.sync === true);
  }

  /** Waits for queued writes and a running checkpoint, then closes the files. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  async destroy(): Promise<void> {
    await this.close();
    await this.mem.destroy();
    await removeDir(this.path);
  }

  private enqueue(ops: readonly TreeOp[], sync: boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const seq = ops.length > 0 ? ++this.queuedSeq : this.queuedSeq;
      const record = ops.length > 0 ? encodeRecord(seq, RECORD_BATCH, ops) : undefined;
      this.queue.push({ seq, record, ops, sync, resolve, reject });
      if (!this.appending) void this.drain();
    });
  }

  /** Appends queued batches, one append at a time, until the queue is empty. */
  private async drain(): Promise<void> {
    this.appending = true;
    try {
      while (this.queue.length > 0 && this.failure === undefined) {
        const batch = this.takeAppend();
        try {
          await this.append(batch);
        } catch (e) {
          this.fail(e, batch);
          break;
        }
        for (const q of batch) {
          if (q.record !== undefined) {
            this.mem.applyOwned(q.ops);
            this.appliedSeq = q.seq;
          }
        }
        for (const q of batch) q.resolve();
        if (this.checkpointDue()) {
          try {
            await this.startCheckpoint();
          } catch (e) {
            this.fail(e, []);
          }
        }
      }
    } finally {
      this.appending = false;
      for (const d of this.drained.splice(0)) d();
    }
  }

  /** Queued batches for one append: all of them, up to APPEND_BYTES_MAX (at least one). */
  private takeAppend(): Queued[] {
    let bytes = 0;
    let n = 0;
    while (n < this.queue.length) {
      const size = this.queue[n]!.record?.length ?? 0;
      if (n > 0 && bytes + size > APPEND_BYTES_MAX) break;
      bytes += size;
      n++;
    }
    return this.queue.splice(0, n);
  }

  private async append(batch: readonly Queued[]): Promise<void> {
    const records: Buffer[] = [];
    let bytes = 0;
    let sync = false;
    for (const q of batch) {
      sync ||= q.sync;
      if (q.record === undefined) continue;
      records.push(q.record);
      bytes += q.record.length;
    }
    if (records.length === 0) {
      if (sync && this.active?.dirty === true) await this.syncActive(this.active);
      return;
    }
    const seg = await this.segmentFor(bytes, batch.find((q) => q.record !== undefined)!.seq);
    if (seg.size === 0) records.unshift(encodeFileHeader(SEGMENT_MAGIC, seg.seq));
    const buf = records.length === 1 ? records[0]! : Buffer.concat(records);
    const viaDsync = sync && !seg.dirty;
    if (viaDsync && buf.length <= INLINE_APPEND_BYTES_MAX) {
      writeAtSync(seg.dsyncFd, buf, seg.size);
      this.counters.inlineAppends++;
    } else {
      await writeAt(viaDsync ? seg.dsyncFd : seg.fd, buf, seg.size);
    }
    seg.size += buf.length;
    // The next segment is preallocated while this one fills, so a rollover rarely waits for it.
    if (seg.size > seg.capacity / 2) this.prepareSpare(this.segmentBytes);
    this.counters.appends++;
    this.counters.bytesAppended += buf.length;
    if (viaDsync) this.counters.syncs++;
    else {
      seg.dirty = true;
      if (sync) await this.syncActive(seg);
    }
  }

  private async syncActive(seg: ActiveSegment): Promise<void> {
    await dataSync(seg.fd);
    seg.dirty = false;
    this.counters.syncs++;
  }

  /** The segment an append of `bytes` starting at record `seq` goes to; rolls over to a new one when full. */
  private async segmentFor(bytes: number, seq: number): Promise<ActiveSegment> {
    const seg = this.active;
    if (seg !== undefined && (seg.size === 0 || seg.size + bytes <= seg.capacity)) return seg;
    if (seg !== undefined) await this.seal(seg);
    // The new segment's name must be durable before any record in it is acknowledged.
    const first = this.counters.segmentsStarted === 0;
    const { path: spare, bytes: capacity } = this.takeSpare(first ? Math.min(this.segmentBytes, FIRST_SEGMENT_BYTES_MAX) : this.segmentBytes);
    const name = segmentName(seq);
    const path = join(this.path, name);
    await rename(await spare, path);
    await syncDir(this.path);
    const fd = await openFd(path, fs.constants.O_WRONLY);
    const dsyncFd = await openFd(path, fs.constants.O_WRONLY | fs.constants.O_DSYNC).catch(async (e: unknown) => {
      await closeFd(fd);
      throw e;
    });
    this.active = { name, seq, fd, dsyncFd, capacity, size: 0, dirty: false };
    this.counters.segmentsStarted++;
    return this.active;
  }

  /** Syncs and closes the active segment; its records are complete and durable. */
  private async seal(seg: ActiveSegment): Promise<void> {
    this.active = undefined;
    if (seg.size === 0) {
      // Never written: nothing in it to keep.
      await closeFd(seg.fd);
      await closeFd(seg.dsyncFd);
      await removeFile(join(this.path, seg.name));
      return;
    }
    if (seg.dirty) await this.syncActive(seg);
    await closeFd(seg.fd);
    await closeFd(seg.dsyncFd);
    this.sealed.push({ name: seg.name, seq: seg.seq, bytes: seg.size });
  }

  /** Starts preallocating the next segment (`bytes` long), unless one is ready or on its way. */
  private prepareSpare(bytes: number): void {
    if (this.spare !== undefined) return;
    const path = join(this.path, `spare-${++this.spareCount}.tmp`);
    const made = createPreallocated(path, bytes).then(() => path);
    made.catch(() => undefined); // awaited by segmentFor, which reports the failure
    this.spare = { path: made, bytes };
  }

  /** The spare segment, prepared now (`bytes` long) if none is on its way. */
  private takeSpare(bytes: number): { readonly path: Promise<string>; readonly bytes: number } {
    this.prepareSpare(bytes);
    const spare = this.spare!;
    this.spare = undefined;
    return spare;
  }

  private checkpointDue(): boolean {
    if (this.checkpointing !== undefined || this.closing !== undefined) return false;
    if (this.sealed.length >= CHECKPOINT_SEGMENTS_MAX) return true;
    return this.bytesSinceCheckpoint() >= Math.max(this.checkpointBytesMin, this.checkpoint?.bytes ?? 0);
  }

  /** Seals the active segment and writes a checkpoint of the state as of the last applied record, in the background. */
  private async startCheckpoint(): Promise<void> {
    const seq = this.appliedSeq;
    if (this.active !== undefined) await this.seal(this.active);
    const covered = this.sealed.splice(0);
    this.covered = covered;
    const view = this.mem.snapshot();
    this.checkpointing = this.writeCheckpoint(view, seq, covered)
      .catch((e: unknown) => this.fail(e, []))
      .finally(() => {
        this.checkpointing = undefined;
        this.covered = [];
        void view.release();
      });
  }

  private async writeCheckpoint(view: EngineSnapshot, seq: number, covered: readonly WalFile[]): Promise<void> {
    const name = checkpointName(seq);
    const tmp = join(this.path, `${name}.tmp`);
    const fd = await openFd(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC);
    let size = 0;
    try {
      const header = encodeFileHeader(CHECKPOINT_MAGIC, seq);
      await writeAt(fd, header, 0);
      size = header.length;
      let recordSeq = 0;
      let puts = 0;
      let chunk: TreeOp[] = [];
      let chunkBytes = 0;
      const flush = async (): Promise<void> => {
        const record = encodeRecord(++recordSeq, RECORD_BATCH, chunk);
        await writeAt(fd, record, size);
        size += record.length;
        chunk = [];
        chunkBytes = 0;
      };
      for await (const { key, value } of view.iterate()) {
        chunk.push({ type: 'put', key, value });
        chunkBytes += key.length + value.length;
        puts++;
        if (chunkBytes >= CHECKPOINT_RECORD_BYTES) await flush();
      }
      if (chunk.length > 0) await flush();
      const end = encodeRecord(++recordSeq, RECORD_CHECKPOINT_END, [], puts);
      await writeAt(fd, end, size);
      size += end.length;
      await dataSync(fd);
    } finally {
      await closeFd(fd);
    }
    await rename(tmp, join(this.path, name));
    await syncDir(this.path);
    const previous = this.checkpoint;
    this.checkpoint = { name, seq, bytes: size };
    this.counters.checkpoints++;
    this.counters.checkpointBytes += size;
    for (const seg of covered) await removeFile(join(this.path, seg.name));
    // (The same name: no record since that one, and the rename replaced it.)
    if (previous !== undefined && previous.name !== name) await removeFile(join(this.path, previous.name));
  }

  private fail(e: unknown, batch: readonly Queued[]): void {
    if (this.failure === undefined) {
      const message = e instanceof Error ? e.message : String(e);
      this.failure = new EngineError('ENGINE_IO', `WAL in ${this.path} failed: ${message}`, { cause: e });
    }
    for (const q of [...batch, ...this.queue.splice(0)]) q.reject(this.failure);
  }

  private assertWritable(): void {
    if (this.closed || this.closing !== undefined) throw new EngineError('ENGINE_CLOSED', 'engine is closed');
    if (this.failure !== undefined) throw this.failure;
  }

  private async shutDown(): Promise<void> {
    if (this.appending) await new Promise<void>((resolve) => this.drained.push(resolve));
    await this.checkpointing;
    const spare = this.spare;
    this.spare = undefined;
    const leftover = await spare?.path.catch(() => undefined);
    if (leftover !== undefined) await removeFile(leftover).catch(() => undefined);
    const seg = this.active;
    this.active = undefined;
    if (seg !== undefined) {
      await closeFd(seg.fd).catch(() => undefined);
      await closeFd(seg.dsyncFd).catch(() => undefined);
    }
    this.closed = true;
    await this.mem.close();
    await unlockDir(this.path).catch(() => undefined);
  }
}

/** A copy of `op` whose buffers nobody else holds. */
function copyOp(op: TreeOp): TreeOp {
  if (op.type === 'put') return { type: 'put', key: Buffer.from(op.key), value: Buffer.from(op.value) };
  if (op.type === 'del') return { type: 'del', key: Buffer.from(op.key) };
  return { type: 'span', start: Buffer.from(op.start), end: Buffer.from(op.end) };
}
