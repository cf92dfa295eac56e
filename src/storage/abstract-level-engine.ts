/**
 * The part of LevelEngine and RocksDbEngine that is the same because both
 * drive an abstract-level database: opening, state checks and error
 * wrapping, batch writes, span deletes with an optional sync, scan
 * bookkeeping over `iterator.nextv`, close and destroy. What differs between
 * them (how a snapshot is made and read, how `get` and `approximateSize` reach
 * the native library) stays in each engine's own file.
 */
import { type Entry, EngineError, type IterateOptions, type WriteOptions, type BatchOp, compareKeys } from './engine.js';
import {
  type CheckedOp,
  checkBatch,
  checkBound,
  EMPTY_VALUE,
  levelRange,
  removeDir,
  resolveScan,
  scanBatchBytesMax,
  scanBatchEntriesMax,
  scanBatchEntriesMin,
  wrapError,
} from './internal.js';

/** The abstract-level iterator calls the shared scan loop makes. */
export interface NativeIterator {
  nextv(size: number): Promise<[Buffer, Buffer | undefined][]>;
  close(): Promise<void>;
}

/** The abstract-level database calls the shared code makes; both bindings use them alike. */
export interface NativeDb {
  open(options: { createIfMissing: boolean }): Promise<void>;
  close(): Promise<void>;
  batch(ops: CheckedOp[], options: { sync: boolean }): Promise<void>;
  clear(options: { gte: Buffer; lt: Buffer }): Promise<void>;
}

/** A scan's bounds and direction in abstract-level iterator option form. */
export type NativeRange = ReturnType<typeof levelRange> & { reverse: boolean; values: boolean; highWaterMarkBytes: number };

/** Yields the error an operation should fail with now (closed engine, released snapshot), if any. */
export type StateCheck = () => EngineError | undefined;

/** Keys are non-empty, so deleting the empty key is a no-op write: used to force a log (WAL) sync. */
const syncMarkerKey = Buffer.alloc(0);

/** Opens (creating if missing) a native database; a failure becomes ENGINE_IO. */
export async function openNative<Db extends NativeDb>(db: Db): Promise<Db> {
  try {
    await db.open({ createIfMissing: true });
  } catch (err) {
    throw wrapError(err, undefined);
  }
  return db;
}

/** Throws `err` if there is one; the usual tail of a state check. */
export function throwIfSet(err: EngineError | undefined): void {
  if (err !== undefined) throw err;
}

/**
 * Base of the engines over an abstract-level database. Subclasses add `get`,
 * `iterate`, `snapshot` and `approximateSize`, built from the guarded calls
 * and the scan loop here.
 */
export abstract class AbstractLevelEngine<Db extends NativeDb> {
  private closed = false;
  private scansOpen = 0;

  protected constructor(
    /** The directory holding the database files. */
    readonly location: string,
    protected readonly db: Db,
  ) {}

  /** Native iterators currently open for scans; for leak tests and metrics. */
  get openScanCount(): number {
    return this.scansOpen;
  }

  async write(ops: readonly BatchOp[], options: WriteOptions = {}): Promise<void> {
    this.assertOpen();
    const checked = checkBatch(ops);
    if (checked.length === 0) {
      // Nothing to write, but a sync asks for every earlier write to be durable:
      // a synced no-op delete forces the engine's sequential log to disk.
      if (options.sync === true) await this.guard(() => this.writeChecked([{ type: 'del', key: syncMarkerKey }], true));
      return;
    }
    // One native WriteBatch: LevelDB and RocksDB both apply it atomically.
    await this.guard(() => this.writeChecked(checked, options.sync === true));
  }

  /**
   * Hands a checked, non-empty batch to the database. The default goes
   * through abstract-level's public `batch`, which re-validates and
   * re-encodes every op; an engine whose binding can take the checked ops
   * as they are overrides this.
   */
  protected writeChecked(ops: CheckedOp[], sync: boolean): Promise<void> {
    return this.db.batch(ops, { sync });
  }

  async deleteSpan(start: Uint8Array, end: Uint8Array, options: WriteOptions = {}): Promise<void> {
    const span = this.checkSpan(start, end);
    if (span === undefined) return;
    await this.guard(async () => {
      // LevelDB's clear() writes unsynced delete batches, RocksDB's one
      // unsynced DeleteRange tombstone.
      await this.db.clear({ gte: span.from, lt: span.to });
      // A synced write behind them forces the log, which holds them too, to
      // disk. It deletes the empty key, which these engines never store, so
      // it changes nothing else.
      if (options.sync === true) await this.db.batch([{ type: 'del', key: syncMarkerKey }], { sync: true });
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      // abstract-level closes open iterators and snapshots (so also RocksDB's
      // pinned-iterator snapshots) first.
      await this.db.close();
    } catch (err) {
      throw wrapError(err, undefined);
    }
  }

  async destroy(): Promise<void> {
    await this.close();
    await removeDir(this.location);
  }

  /** @internal The error an operation should fail with given the engine's state, if any. */
  stateError(): EngineError | undefined {
    return this.closed ? new EngineError('ENGINE_CLOSED', 'engine is closed') : undefined;
  }

  protected assertOpen(): void {
    throwIfSet(this.stateError());
  }

  /**
   * Checks the bounds of a `[start, end)` span for deleteSpan and
   * approximateSize; undefined when the span is empty, so storage need not be
   * touched.
   */
  protected checkSpan(start: Uint8Array, end: Uint8Array): { from: Buffer; to: Buffer } | undefined {
    this.assertOpen();
    const from = checkBound(start, 'start');
    const to = checkBound(end, 'end');
    return compareKeys(from, to) >= 0 ? undefined : { from, to };
  }

  /**
   * Runs a native call, turning what it throws into an EngineError. The
   * state is checked when the call fails, not before, so a native error
   * caused by a close() meanwhile becomes ENGINE_CLOSED.
   */
  protected async guard<T>(call: () => Promise<T>, state: StateCheck = () => this.stateError()): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw wrapError(err, state());
    }
  }

  /** {@link guard} for a synchronous native call (creating an iterator or snapshot). */
  protected guardSync<T>(call: () => T, state: StateCheck = () => this.stateError()): T {
    try {
      return call();
    } catch (err) {
      throw wrapError(err, state());
    }
  }

  /**
   * A scan over one native iterator, which is its own consistent view (with
   * an explicit snapshot, that snapshot's). `open` creates it from the scan's
   * bounds; `state` is checked before the scan and before every entry, so a
   * scan stops promptly once its engine closes or its snapshot is released.
   * Reads go through `iterator.nextv` in growing batches, and the native
   * iterator is always closed, also when the consumer breaks out of its loop.
   */
  /**
   * Counts the keys a {@link scanNative} over the same bounds would yield,
   * batch by batch, reading no values and yielding nothing.
   */
  protected async countNative(options: IterateOptions, state: StateCheck, open: (range: NativeRange) => NativeIterator): Promise<number> {
    throwIfSet(state());
    const scan = resolveScan(options);
    if (scan.empty) return 0;
    const iterator = this.guardSync(() => open({ ...levelRange(scan), reverse: scan.reverse, values: false, highWaterMarkBytes: scanBatchBytesMax }), state);
    this.scansOpen++;
    try {
      let counted = 0;
      // Nothing is handed out, so every read fetches as much as one read may.
      while (counted < scan.limit) {
        const batch = await this.guard(() => iterator.nextv(Math.min(scanBatchEntriesMax, scan.limit - counted)), state);
        if (batch.length === 0) break;
        counted += batch.length;
      }
      throwIfSet(state());
      return counted;
    } finally {
      this.scansOpen--;
      await iterator.close().catch(() => undefined);
    }
  }

  protected async *scanNative(
    options: IterateOptions,
    state: StateCheck,
    open: (range: NativeRange) => NativeIterator,
  ): AsyncGenerator<Entry> {
    throwIfSet(state());
    const scan = resolveScan(options);
    if (scan.empty) return;
    const iterator = this.guardSync(() => open({ ...levelRange(scan), reverse: scan.reverse, values: !scan.keysOnly, highWaterMarkBytes: scanBatchBytesMax }), state);
    this.scansOpen++;
    try {
      let remaining = scan.limit;
      let batchEntries = scan.firstBatch;
      while (remaining > 0) {
        const want = Math.min(batchEntries, remaining);
        const batch = await this.guard(() => iterator.nextv(want), state);
        if (batch.length === 0) return;
        for (const [key, value] of batch) {
          // Checked per entry so a scan stops promptly once its engine closes.
          throwIfSet(state());
          yield { key, value: value ?? EMPTY_VALUE };
        }
        remaining -= batch.length;
        batchEntries = Math.min(batchEntries * 2, scanBatchEntriesMax);
      }
    } finally {
      this.scansOpen--;
      await iterator.close().catch(() => undefined);
    }
  }
}
