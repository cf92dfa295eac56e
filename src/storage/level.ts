import { ClassicLevel } from 'classic-level';
import { type Engine, type EngineSnapshot, type Entry, EngineError, type IterateOptions } from './engine.js';
import { AbstractLevelEngine, openNative, throwIfSet } from './abstract-level-engine.js';
import { type CheckedOp, checkKey } from './internal.js';

type Db = ClassicLevel<Buffer, Buffer>;

/**
 * classic-level's native chained batch behind abstract-level's private
 * calls: `_put`/`_del` add one op to the native WriteBatch each (two Buffer
 * arguments), `_write` queues the write. The array form (`_batch`) reads
 * every op's `type`, `key` and `value` through named-property lookups, about
 * three times the CPU per op; abstract-level's public `batch` also clones
 * and re-encodes every op (docs/storage.md).
 */
interface NativeChainedBatch {
  _put(key: Buffer, value: Buffer): void;
  _del(key: Buffer): void;
  _write(options: { sync: boolean }): Promise<void>;
}
interface NativeBatchDb {
  _chainedBatch(): NativeChainedBatch;
  detachResource(resource: NativeChainedBatch): void;
}
type NativeSnapshot = ReturnType<Db['snapshot']>;

/**
 * The default durable engine: LevelDB through `classic-level`.
 *
 * Snapshots are LevelDB's explicit snapshots (`db.snapshot()` passed to get
 * and iterator), so holding one costs a sequence number, not a copy. Scans
 * read through `iterator.nextv` in growing batches and always close the
 * native iterator, also when the consumer breaks out of its loop (see
 * {@link AbstractLevelEngine}, which holds what this engine shares with
 * RocksDbEngine).
 */
export class LevelEngine extends AbstractLevelEngine<Db> implements Engine {
  readonly kind = 'leveldb' as const;

  private constructor(location: string, db: Db) {
    super(location, db);
  }

  /** Opens (creating if missing) the LevelDB database in directory `location`. */
  static async open(location: string): Promise<LevelEngine> {
    const db: Db = new ClassicLevel<Buffer, Buffer>(location, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    return new LevelEngine(location, await openNative(db));
  }

  /**
   * Checked ops are Buffers under the `buffer` encodings this database was
   * opened with, i.e. already in the private call's form. The engine checks
   * its own open state synchronously before this runs, and the binding
   * counts the write as pending work, so close() waits for it.
   */
  protected override writeChecked(ops: CheckedOp[], sync: boolean): Promise<void> {
    const native = this.db as unknown as Partial<NativeBatchDb>;
    if (typeof native._chainedBatch !== 'function' || typeof native.detachResource !== 'function') {
      return super.writeChecked(ops, sync);
    }
    return writeChained(native as NativeBatchDb, ops, sync);
  }

  async get(key: Uint8Array): Promise<Buffer | undefined> {
    return this.read(key, undefined);
  }

  iterate(options: IterateOptions = {}): AsyncIterableIterator<Entry> {
    return this.scan(options, undefined);
  }

  count(options: IterateOptions = {}): Promise<number> {
    return this.countScan(options, undefined);
  }

  snapshot(): EngineSnapshot {
    this.assertOpen();
    return this.guardSync(() => new LevelSnapshot(this, this.db.snapshot()));
  }

  async approximateSize(start: Uint8Array, end: Uint8Array): Promise<number> {
    const span = this.checkSpan(start, end);
    if (span === undefined) return 0;
    // LevelDB sums the table-file bytes overlapping the span; memtable
    // contents are not counted until they are flushed.
    return this.guard(() => this.db.approximateSize(span.from, span.to));
  }

  async compactRange(start: Uint8Array, end: Uint8Array): Promise<void> {
    const span = this.checkSpan(start, end);
    if (span === undefined) return;
    // LevelDB's CompactRange: flushes the memtable, then merges every level
    // overlapping the span, dropping deleted and shadowed entries.
    await this.guard(() => this.db.compactRange(span.from, span.to));
  }

  /** @internal Shared by the engine and its snapshots. */
  async read(key: Uint8Array, snapshot: LevelSnapshot | undefined): Promise<Buffer | undefined> {
    throwIfSet(this.stateError(snapshot));
    const k = checkKey(key);
    return this.guard(
      () => this.db.get(k, snapshot === undefined ? {} : { snapshot: snapshot.native }),
      () => this.stateError(snapshot),
    );
  }

  /** @internal Shared by the engine and its snapshots. */
  scan(options: IterateOptions, snapshot: LevelSnapshot | undefined): AsyncIterableIterator<Entry> {
    return this.scanNative(
      options,
      () => this.stateError(snapshot),
      (range) => this.db.iterator({ ...range, ...(snapshot === undefined ? {} : { snapshot: snapshot.native }) }),
    );
  }

  /** @internal Shared by the engine and its snapshots. */
  countScan(options: IterateOptions, snapshot: LevelSnapshot | undefined): Promise<number> {
    return this.countNative(
      options,
      () => this.stateError(snapshot),
      (range) => this.db.iterator({ ...range, ...(snapshot === undefined ? {} : { snapshot: snapshot.native }) }),
    );
  }

  /** @internal The error a read should fail with given the current state, if any. */
  override stateError(snapshot?: LevelSnapshot): EngineError | undefined {
    const engineError = super.stateError();
    if (engineError !== undefined) return engineError;
    if (snapshot?.released === true) return new EngineError('SNAPSHOT_RELEASED', 'snapshot has been released');
    return undefined;
  }
}

/**
 * One native WriteBatch filled op by op, then written. The batch registers
 * itself with the database (so a close() meanwhile closes it); it is detached
 * once written, as abstract-level's own write does.
 */
async function writeChained(db: NativeBatchDb, ops: CheckedOp[], sync: boolean): Promise<void> {
  const batch = db._chainedBatch();
  try {
    for (const op of ops) {
      if (op.type === 'put') batch._put(op.key, op.value);
      else batch._del(op.key);
    }
    await batch._write({ sync });
  } finally {
    db.detachResource(batch);
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

  count(options: IterateOptions = {}): Promise<number> {
    return this.engine.countScan(options, this);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    // Closing waits for reads holding a reference to the snapshot.
    await this.native.close().catch(() => undefined);
  }
}
