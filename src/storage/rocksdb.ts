import { RocksLevel, type RocksIterator } from '@nxtedition/rocksdb';
import { type Engine, type EngineSnapshot, type Entry, EngineError, type IterateOptions, compareKeys } from './engine.js';
import { AbstractLevelEngine, openNative } from './abstract-level-engine.js';
import {
  countByIterating,
  EMPTY_VALUE,
  Mutex,
  type Scan,
  aboveLower,
  belowUpper,
  checkKey,
  resolveScan,
  scanBatchEntriesMax,
  scanBatchEntriesMin,
} from './internal.js';

/** Every non-empty key sorts at or after this one, so seeking here finds the first key. */
const firstKeySeekTarget = Buffer.from([0x00]);

/**
 * A durable engine on RocksDB through `@nxtedition/rocksdb`.
 *
 * That binding has no explicit snapshots (`db.snapshot` does not exist and
 * ReadOptions.snapshot is not reachable from JS). What it does have is the
 * RocksDB guarantee that a (non-tailing) iterator reads one consistent view,
 * fixed by the sequence number current when it was created, however long it
 * lives and however often it seeks. So a snapshot here is a pair of pinned,
 * unbounded iterators (one forward, one reverse, since an iterator's direction
 * is fixed) created in the same synchronous turn: every write through this
 * binding runs synchronously on the JS thread, so no write can land between
 * the two, and the sequence number is checked to be unchanged to prove it.
 * Snapshot reads seek a pinned iterator and read from it under a mutex, so
 * concurrent scans of one snapshot interleave safely. The cost to RocksDB is
 * that of an open iterator: the memtables and table files of the view stay
 * pinned until release, a little more than a real snapshot pins. What this
 * engine shares with LevelEngine lives in {@link AbstractLevelEngine}.
 */
export class RocksDbEngine extends AbstractLevelEngine<RocksLevel> implements Engine {
  readonly kind = 'rocksdb' as const;

  private constructor(location: string, db: RocksLevel) {
    super(location, db);
  }

  /** Opens (creating if missing) the RocksDB database in directory `location`. */
  static async open(location: string): Promise<RocksDbEngine> {
    const db = new RocksLevel(location, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    return new RocksDbEngine(location, await openNative(db));
  }

  async get(key: Uint8Array): Promise<Buffer | undefined> {
    this.assertOpen();
    const k = checkKey(key);
    // getMany answers a missing key with undefined; get() would build an error.
    const [value] = await this.guard(() => this.db.getMany([k]));
    return value;
  }

  iterate(options: IterateOptions = {}): AsyncIterableIterator<Entry> {
    // A bounded native iterator: it is its own consistent view.
    return this.scanNative(options, () => this.stateError(), (range) => this.db.iterator(range));
  }

  count(options: IterateOptions = {}): Promise<number> {
    return this.countNative(options, () => this.stateError(), (range) => this.db.iterator(range));
  }

  snapshot(): EngineSnapshot {
    this.assertOpen();
    const sequenceBefore = this.db.sequence;
    const forward = this.openIterator({});
    const reverse = this.openIterator({ reverse: true });
    if (this.db.sequence !== sequenceBefore) {
      // Unreachable while all writes run on this thread; fail loudly rather
      // than hand out a view that is not one point in time.
      void forward.close().catch(() => undefined);
      void reverse.close().catch(() => undefined);
      throw new EngineError('ENGINE_IO', 'a write landed while pinning a snapshot');
    }
    return new RocksSnapshot(this, forward, reverse);
  }

  async approximateSize(start: Uint8Array, end: Uint8Array): Promise<number> {
    const span = this.checkSpan(start, end);
    if (span === undefined) return 0;
    // The binding exposes no GetApproximateSizes, so this counts the live
    // key and value bytes of the span: exact, but it reads the span.
    const iterator = this.openIterator({ gte: span.from, lt: span.to });
    let bytes = 0;
    try {
      for (;;) {
        const batch = await this.nextv(iterator, scanBatchEntriesMax);
        if (batch.length === 0) return bytes;
        for (const [key, value] of batch) bytes += key.length + value.length;
      }
    } finally {
      await iterator.close().catch(() => undefined);
    }
  }

  async compactRange(start: Uint8Array, end: Uint8Array): Promise<void> {
    // The binding exposes no CompactRange (nor a flush): RocksDB's own
    // background compaction reclaims the space of deleted entries and of
    // DeleteRange tombstones. Only the arguments and state are checked.
    this.checkSpan(start, end);
  }

  /** @internal Reads up to `size` entries, wrapping native errors. */
  nextv(iterator: RocksIterator, size: number, snapshot?: RocksSnapshot): Promise<[Buffer, Buffer][]> {
    return this.guard(
      // Iterators read through here are opened with values.
      () => iterator.nextv(size) as Promise<[Buffer, Buffer][]>,
      () => this.stateError() ?? snapshot?.stateError(),
    );
  }

  private openIterator(options: Parameters<RocksLevel['iterator']>[0]): RocksIterator {
    return this.guardSync(() => this.db.iterator(options));
  }
}

/** A view pinned by two unbounded iterators; see {@link RocksDbEngine}. */
class RocksSnapshot implements EngineSnapshot {
  private released = false;
  private readonly forwardLock = new Mutex();
  private readonly reverseLock = new Mutex();

  /**
   * The largest key in the view (undefined: the view is empty; null: not
   * read yet). Reverse scans without an upper bound seek to it, as there is
   * no largest possible key to seek to. It is read from the reverse iterator
   * before that iterator's first seek, while it still sits on the last key.
   */
  private lastKey: Buffer | undefined | null = null;

  constructor(
    private readonly engine: RocksDbEngine,
    private readonly forward: RocksIterator,
    private readonly reverse: RocksIterator,
  ) {}

  async get(key: Uint8Array): Promise<Buffer | undefined> {
    this.assertLive();
    const k = checkKey(key);
    const [entry] = await this.forwardLock.run(async () => {
      this.assertLive();
      this.forward.seek(k);
      return this.engine.nextv(this.forward, 1, this);
    });
    return entry !== undefined && compareKeys(entry[0], k) === 0 ? entry[1] : undefined;
  }

  /** Counted through the snapshot's shared iterators, like any scan of it. */
  count(options: IterateOptions = {}): Promise<number> {
    return countByIterating(this, options);
  }

  async *iterate(options: IterateOptions = {}): AsyncIterableIterator<Entry> {
    this.assertLive();
    const scan = resolveScan(options);
    if (scan.empty) return;
    const iterator = scan.reverse ? this.reverse : this.forward;
    const lock = scan.reverse ? this.reverseLock : this.forwardLock;
    // Where to seek and which key there to skip: the first seek goes to the
    // scan's start bound, every later one back to the last key yielded, since
    // other readers may have moved the shared iterator in between.
    const bound = scan.reverse ? scan.upper : scan.lower;
    const boundInclusive = scan.reverse ? scan.upperInclusive : scan.lowerInclusive;
    let target: Buffer | undefined = bound;
    let skip = bound !== undefined && !boundInclusive ? bound : undefined;
    let remaining = scan.limit;
    let batchEntries = scan.firstBatch;
    while (remaining > 0) {
      // One more than wanted, as the first entry may be the skipped one.
      const want = Math.min(batchEntries, remaining) + 1;
      const batch = await lock.run(async () => {
        this.assertLive();
        if (scan.reverse && this.lastKey === null) {
          const [last] = await this.engine.nextv(this.reverse, 1, this);
          this.lastKey = last?.[0];
        }
        const seekTo = target ?? (scan.reverse ? this.lastKey : firstKeySeekTarget);
        if (seekTo === undefined || seekTo === null) return [];
        iterator.seek(seekTo);
        return this.engine.nextv(iterator, want, this);
      });
      let fresh = 0;
      for (const [key, value] of batch) {
        if (skip !== undefined && compareKeys(key, skip) === 0) continue;
        if (!inScan(scan, key)) return;
        this.assertLive();
        yield { key, value: scan.keysOnly ? EMPTY_VALUE : value };
        fresh++;
        target = key;
        if (--remaining === 0) return;
      }
      if (fresh === 0) return;
      skip = target;
      batchEntries = Math.min(batchEntries * 2, scanBatchEntriesMax);
    }
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    // Closing waits for an in-flight read; later reads fail on `released`.
    await Promise.all([this.forward.close(), this.reverse.close()]).catch(() => undefined);
  }

  /** @internal The error a read should fail with given the current state, if any. */
  stateError(): EngineError | undefined {
    const engineError = this.engine.stateError();
    if (engineError !== undefined) return engineError;
    return this.released ? new EngineError('SNAPSHOT_RELEASED', 'snapshot has been released') : undefined;
  }

  private assertLive(): void {
    const err = this.stateError();
    if (err !== undefined) throw err;
  }
}

/** True if `key`, reached by moving in the scan's direction, is still inside its far bound. */
function inScan(scan: Scan, key: Buffer): boolean {
  return scan.reverse ? aboveLower(scan, key) : belowUpper(scan, key);
}
