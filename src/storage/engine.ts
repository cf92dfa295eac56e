/**
 * The storage-engine contract every engine (LevelDB, RocksDB, memory) implements.
 *
 * Keys and values are opaque bytes ordered bytewise (memcmp order, shorter
 * prefix first). Keys are non-empty (etcd has no empty key, and RocksDB cannot
 * seek to one); values may be empty. Engines know nothing about ranges, MVCC
 * or raft: the layers above encode those into keys (see docs/storage.md). One
 * process may open many engines at once; nothing here assumes a single
 * instance.
 *
 * Errors: every engine rejects with {@link EngineError}, never with the native
 * library's error, so callers can switch on `code` whatever the engine.
 */

/**
 * Bounds and direction of an ordered scan. Unset bounds are open. If both
 * `gte` and `gt` are given, `gte` wins (likewise `lte` over `lt`).
 */
export interface IterateOptions {
  /** Inclusive lower bound. */
  readonly gte?: Uint8Array;
  /** Exclusive lower bound. */
  readonly gt?: Uint8Array;
  /** Inclusive upper bound. */
  readonly lte?: Uint8Array;
  /** Exclusive upper bound. */
  readonly lt?: Uint8Array;
  /** Scan from the upper bound down. */
  readonly reverse?: boolean;
  /** Stop after this many entries; unset or negative means no limit. */
  readonly limit?: number;
  /**
   * Entries carry an empty value: the engine need not read or copy values
   * (a scan that only needs keys, e.g. building an in-memory key index).
   */
  readonly keysOnly?: boolean;
  /**
   * About how many entries the caller will read (a page of a list): engines
   * that read in native batches fetch that many first, so a page costs one
   * read and fetches little past it; later batches grow from there. A hint
   * only: the scan still yields everything in bounds up to `limit`.
   */
  readonly sizeHint?: number;
}

/** One key/value pair returned by a read. */
export interface Entry {
  readonly key: Buffer;
  readonly value: Buffer;
}

/** One operation in an atomic write batch. */
export type BatchOp =
  | { readonly type: 'put'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: 'del'; readonly key: Uint8Array };

/** Durability of a write. */
export interface WriteOptions {
  /** fsync the engine's log before the write resolves. */
  readonly sync?: boolean;
}

/** Read operations shared by an engine and its snapshots. */
export interface EngineReader {
  /** The value stored under `key`, or undefined. */
  get(key: Uint8Array): Promise<Buffer | undefined>;
  /**
   * Entries in key order (or reverse), honouring bounds and limit. Breaking
   * out of the loop releases the underlying iterator. On an engine, the scan
   * reads one consistent view taken when its first entry is requested; on a
   * snapshot, it reads the snapshot's view. Errors (closed engine, invalid
   * options) surface as a rejected `next()`, not as a synchronous throw.
   */
  iterate(options?: IterateOptions): AsyncIterableIterator<Entry>;
  /**
   * How many entries `iterate(options)` would yield, without handing them out
   * (a count of keys in bounds: values are never read). Same view and errors
   * as iterate.
   */
  count(options?: IterateOptions): Promise<number>;
}

/**
 * A consistent point-in-time view; later writes are invisible to it. Reads
 * reject with SNAPSHOT_RELEASED after release and with ENGINE_CLOSED once the
 * engine is closed (closing the engine releases its snapshots).
 */
export interface EngineSnapshot extends EngineReader {
  /** Releases the view. Reads after release reject. Idempotent. */
  release(): Promise<void>;
}

/** The engine interface itself. */
export interface Engine extends EngineReader {
  /** The engine kind, e.g. "leveldb", "rocksdb", "memory", "wal". */
  readonly kind: EngineKind;
  /**
   * Applies all ops or none, in order (a later op on the same key wins). An
   * invalid op (wrong type, key not a non-empty Uint8Array, value not a
   * Uint8Array) rejects the whole batch with INVALID_ARGUMENT before anything
   * is written. With `sync`, resolves only once durable, together with every
   * earlier write (also for an empty batch: that is how a caller makes its
   * earlier unsynced writes durable).
   */
  write(ops: readonly BatchOp[], options?: WriteOptions): Promise<void>;
  /** A consistent view of the whole engine as of now. Throws ENGINE_CLOSED when closed. */
  snapshot(): EngineSnapshot;
  /**
   * Approximate bytes used by keys in [start, end). How approximate depends on
   * the engine (docs/storage.md): LevelDB counts only data already flushed to
   * table files, so fresh writes may read as 0 until a flush.
   */
  approximateSize(start: Uint8Array, end: Uint8Array): Promise<number>;
  /**
   * Deletes every key in [start, end); an empty `start` means from the first
   * key. Not atomic with other writes to the span. With `sync`, resolves only
   * once the deletion is durable.
   */
  deleteSpan(start: Uint8Array, end: Uint8Array, options?: WriteOptions): Promise<void>;
  /**
   * Compacts the storage of [start, end) now (etcd's defragment): rewrites
   * the span's files so deleted and overwritten entries stop taking space,
   * where the engine can do that on demand (see docs/storage.md, "Manual
   * compaction"). Never changes what reads return. An empty or inverted span
   * resolves at once; ENGINE_CLOSED after close().
   */
  compactRange(start: Uint8Array, end: Uint8Array): Promise<void>;
  /** Flushes and closes; the data stays on disk (for durable engines). Idempotent. */
  close(): Promise<void>;
  /** Closes (if open) and removes all of the engine's data. */
  destroy(): Promise<void>;
}

/** The engines this build knows how to open. */
export type EngineKind = 'leveldb' | 'rocksdb' | 'memory' | 'wal';

/**
 * Stable engine error codes: ENGINE_CLOSED (the engine was closed or
 * destroyed), SNAPSHOT_RELEASED (read from a released snapshot),
 * INVALID_ARGUMENT (a malformed key, value, op or option; nothing was
 * changed), ENGINE_IO (the native engine failed; see `cause`).
 */
export type EngineErrorCode = 'ENGINE_CLOSED' | 'SNAPSHOT_RELEASED' | 'INVALID_ARGUMENT' | 'ENGINE_IO';

/** Base class for engine errors; `code` is stable across versions. */
export class EngineError extends Error {
  override readonly name: string = 'EngineError';
  constructor(
    readonly code: EngineErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Bytewise comparison of two keys (memcmp order). */
export function compareKeys(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}
