/**
 * The storage-engine contract every engine (LevelDB, RocksDB, memory) implements.
 *
 * Keys and values are opaque bytes ordered bytewise (memcmp order, shorter
 * prefix first). Engines know nothing about ranges, MVCC or raft: the layers
 * above encode those into keys (see docs/storage.md). One process may open
 * many engines at once; nothing here assumes a single instance.
 */

/** Bounds and direction of an ordered scan. Unset bounds are open. */
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
   * out of the loop releases the underlying iterator.
   */
  iterate(options?: IterateOptions): AsyncIterableIterator<Entry>;
}

/** A consistent point-in-time view; later writes are invisible to it. */
export interface EngineSnapshot extends EngineReader {
  /** Releases the view. Reads after release reject. Idempotent. */
  release(): Promise<void>;
}

/** The engine interface itself. */
export interface Engine extends EngineReader {
  /** The engine kind, e.g. "leveldb", "rocksdb", "memory". */
  readonly kind: EngineKind;
  /** Applies all ops or none. With `sync`, resolves only once durable. */
  write(ops: readonly BatchOp[], options?: WriteOptions): Promise<void>;
  /** A consistent view of the whole engine as of now. */
  snapshot(): EngineSnapshot;
  /** Approximate bytes used by keys in [start, end). */
  approximateSize(start: Uint8Array, end: Uint8Array): Promise<number>;
  /** Deletes every key in [start, end). Not atomic with other writes. */
  deleteSpan(start: Uint8Array, end: Uint8Array, options?: WriteOptions): Promise<void>;
  /** Flushes and closes; the data stays on disk (for durable engines). */
  close(): Promise<void>;
  /** Closes (if open) and removes all of the engine's data. */
  destroy(): Promise<void>;
}

/** The engines this build knows how to open. */
export type EngineKind = 'leveldb' | 'rocksdb' | 'memory';

/** Base class for engine errors; `code` is stable across versions. */
export class EngineError extends Error {
  override readonly name: string = 'EngineError';
  constructor(
    readonly code: 'ENGINE_CLOSED' | 'SNAPSHOT_RELEASED' | 'ENGINE_IO',
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
