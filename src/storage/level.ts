import { ClassicLevel } from 'classic-level';
import {
  type BatchOp,
  type Engine,
  type EngineSnapshot,
  type Entry,
  EngineError,
  type IterateOptions,
  type WriteOptions,
  compareKeys,
} from './engine.js';
import {
  checkBatch,
  checkBound,
  checkKey,
  levelRange,
  removeDir,
  resolveScan,
  scanBatchEntriesMax,
  scanBatchEntriesMin,
  wrapError,
} from './internal.js';

type Db = ClassicLevel<Buffer, Buffer>;

/** Keys are non-empty, so deleting the empty key is a no-op write: used to force a log sync. */
const syncMarkerKey = Buffer.alloc(0);
type NativeSnapshot = ReturnType<Db['snapshot']>;

/**
 * The default durable engine: LevelDB through `classic-level`.
 *
 * Snapshots are LevelDB's explicit snapshots (`db.snapshot()` passed to get
 * and iterator), so holding one costs a sequence number, not a copy. Scans
 * read through `iterator.nextv` in growing batches and always close the
 * native iterator, also when the consumer breaks out of its loop.
 */
export class LevelEngine implements Engine {
  readonly kind = 'leveldb' as const;
  private closed = false;
  private scansOpen = 0;

  private constructor(
    /** The directory holding the database files. */
    readonly location: string,
    private readonly db: Db,
  ) {}

  /** Opens (creating if missing) the LevelDB database in directory `location`. */
  static async open(location: string): Promise<LevelEngine> {
    const db: Db = new ClassicLevel<Buffer, Buffer>(location, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    try {
      await db.open({ createIfMissing: true });
    } catch (err) {
      throw wrapError(err, undefined);
    }
    return new LevelEngine(location, db);
  }

  /** Native iterators currently open for scans; for leak tests and metrics. */
  get openScanCount(): number {
    return this.scansOpen;
  }

  async get(key: Uint8Array): Promise<Buffer | undefined> {
    return this.read(key, undefined);
  }

  iterate(options: IterateOptions = {}): AsyncIterableIterator<Entry> {
    return this.scan(options, undefined);
  }

  async write(ops: readonly BatchOp[], options: WriteOptions = {}): Promise<void> {
    this.assertOpen();
    const checked = checkBatch(ops);
    if (checked.length === 0) return;
    try {
      // One native WriteBatch: LevelDB applies it atomically.
      await this.db.batch(checked, { sync: options.sync === true });
    } catch (err) {
      throw wrapError(err, this.stateError(undefined));
    }
  }

  snapshot(): EngineSnapshot {
    this.assertOpen();
    try {
      return new LevelSnapshot(this, this.db.snapshot());
    } catch (err) {
      throw wrapError(err, this.stateError(undefined));
    }
  }

  async approximateSize(start: Uint8Array, end: Uint8Array): Promise<number> {
    this.assertOpen();
    const from = checkBound(start, 'start');
    const to = checkBound(end, 'end');
    if (compareKeys(from, to) >= 0) return 0;
    try {
      // LevelDB sums the table-file bytes overlapping the span; memtable
      // contents are not counted until they are flushed.
      return await this.db.approximateSize(from, to);
    } catch (err) {
      throw wrapError(err, this.stateError(undefined));
    }
  }

  async deleteSpan(start: Uint8Array, end: Uint8Array, options: WriteOptions = {}): Promise<void> {
    this.assertOpen();
    const from = checkBound(start, 'start');
    const to = checkBound(end, 'end');
    if (compareKeys(from, to) >= 0) return;
    try {
      await this.db.clear({ gte: from, lt: to });
      // clear() writes unsynced batches. A synced write behind them forces
      // the log, which holds them too, to disk. It deletes the empty key,
      // which this engine never stores, so it changes nothing else.
      if (options.sync === true) await this.db.batch([{ type: 'del', key: syncMarkerKey }], { sync: true });
    } catch (err) {
      throw wrapError(err, this.stateError(undefined));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      // abstract-level closes open iterators and snapshots first.
      await this.db.close();
    } catch (err) {
      throw wrapError(err, undefined);
    }
  }

  async destroy(): Promise<void> {
    await this.close();
    await removeDir(this.location);
  }

  /** @internal Shared by the engine and its snapshots. */
  async read(key: Uint8Array, snapshot: LevelSnapshot | undefined): Promise<Buffer | undefined> {
    this.assertOpen(snapshot);
    const k = checkKey(key);
    try {
      return await this.db.get(k, snapshot === undefined ? {} : { snapshot: snapshot.native });
    } catch (err) {
      throw wrapError(err, this.stateError(snapshot));
    }
  }

  /** @internal Shared by the engine and its snapshots. */
  async *scan(options: IterateOptions, snapshot: LevelSnapshot | undefined): AsyncIterableIterator<Entry> {
    this.assertOpen(snapshot);
    const scan = resolveScan(options);
    if (scan.empty) return;
    let iterator;
    try {
      iterator = this.db.iterator({
        ...levelRange(scan),
        reverse: scan.reverse,
        ...(snapshot === undefined ? {} : { snapshot: snapshot.native }),
      });
    } catch (err) {
      throw wrapError(err, this.stateError(snapshot));
    }
    this.scansOpen++;
    try {
      let remaining = scan.limit;
      let batchEntries = scanBatchEntriesMin;
      while (remaining > 0) {
        const want = Math.min(batchEntries, remaining);
        let batch: [Buffer, Buffer][];
        try {
          batch = await iterator.nextv(want);
        } catch (err) {
          throw wrapError(err, this.stateError(snapshot));
        }
        if (batch.length === 0) return;
        for (const [key, value] of batch) {
          // Checked per entry so a scan stops promptly once its engine closes.
          this.assertOpen(snapshot);
          yield { key, value };
        }
        remaining -= batch.length;
        batchEntries = Math.min(batchEntries * 2, scanBatchEntriesMax);
      }
    } finally {
      this.scansOpen--;
      await iterator.close().catch(() => undefined);
    }
  }

  /** @internal The error a read should fail with given the current state, if any. */
  stateError(snapshot: LevelSnapshot | undefined): EngineError | undefined {
    if (this.closed) return new EngineError('ENGINE_CLOSED', 'engine is closed');
    if (snapshot?.released === true) return new EngineError('SNAPSHOT_RELEASED', 'snapshot has been released');
    return undefined;
  }

  private assertOpen(snapshot?: LevelSnapshot): void {
    const err = this.stateError(snapshot);
    if (err !== undefined) throw err;
  }
}

/** An explicit LevelDB snapshot; reads go through the engine with `{ snapshot }`. */
class LevelSnapshot implements EngineSnapshot {
  released = false;

  constructor(
    private readonly engine: LevelEngine,
    readonly native: NativeSnapshot,
  ) {}

  get(key: Uint8Array): Promise<Buffer | undefined> {
    return this.engine.read(key, this);
  }

  iterate(options: IterateOptions = {}): AsyncIterableIterator<Entry> {
    return this.engine.scan(options, this);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    // Closing waits for reads holding a reference to the snapshot.
    await this.native.close().catch(() => undefined);
  }
}
