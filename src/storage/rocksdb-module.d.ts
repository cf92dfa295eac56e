/**
 * Type declarations for the part of `@nxtedition/rocksdb` (which ships none)
 * that src/storage/rocksdb.ts uses. It speaks the abstract-level 1 API with
 * buffer encodings; only the promise forms are declared.
 */
declare module '@nxtedition/rocksdb' {
  /** Bounds and direction accepted by iterator() and clear(). */
  interface RocksRangeOptions {
    gte?: Buffer;
    gt?: Buffer;
    lte?: Buffer;
    lt?: Buffer;
    reverse?: boolean;
    limit?: number;
    /** False: entries' values are undefined (not read). */
    values?: boolean;
  }

  /** An abstract-level 1 iterator over the whole (implicitly snapshotted) view it was created on. */
  class RocksIterator {
    /** Values are undefined when the iterator was opened with `values: false`. */
    nextv(size: number): Promise<[Buffer, Buffer | undefined][]>;
    seek(target: Buffer): void;
    close(): Promise<void>;
  }

  /** The database handle. */
  class RocksLevel {
    constructor(location: string, options?: { keyEncoding?: 'buffer'; valueEncoding?: 'buffer' });
    readonly status: string;
    /** The latest sequence number RocksDB assigned to a write. */
    readonly sequence: number;
    open(options?: { createIfMissing?: boolean; errorIfExists?: boolean }): Promise<void>;
    close(): Promise<void>;
    getMany(keys: Buffer[]): Promise<(Buffer | undefined)[]>;
    batch(
      ops: ({ type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer })[],
      options?: { sync?: boolean },
    ): Promise<void>;
    clear(options: RocksRangeOptions): Promise<void>;
    iterator(options?: RocksRangeOptions): RocksIterator;
    getProperty(property: string): string;
  }
}
