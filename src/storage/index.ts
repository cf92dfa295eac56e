/**
 * The public entry of the storage layer: the engine contract, the engines,
 * and a factory that opens one by kind. Other folders import from here only.
 */
import { type Engine, EngineError, type EngineKind } from './engine.js';
import { MemoryEngine } from './memory.js';
import { WalEngine, type WalEngineOptions } from './wal.js';

export {
  type BatchOp,
  type Engine,
  EngineError,
  type EngineErrorCode,
  type EngineKind,
  type EngineReader,
  type EngineSnapshot,
  type Entry,
  type IterateOptions,
  type WriteOptions,
  compareKeys,
} from './engine.js';
export { MemoryEngine } from './memory.js';
export { WalEngine, type WalCounters, type WalEngineOptions, WAL_SEGMENT_BYTES_DEFAULT, WAL_CHECKPOINT_BYTES_MIN_DEFAULT } from './wal.js';
// Types only: the durable engines load native addons, so their modules are
// imported on first use by openEngine(), and a process (or the simulator)
// that only uses memory engines never loads LevelDB or RocksDB.
export type { LevelEngine } from './level.js';
export type { RocksDbEngine } from './rocksdb.js';

/** Every engine kind, in a stable order (for config validation and tests). */
export const engineKinds: readonly EngineKind[] = ['leveldb', 'rocksdb', 'memory', 'wal'];

/** What {@link openEngine} needs: the kind, and a directory for durable kinds. */
export interface OpenEngineOptions {
  readonly kind: EngineKind;
  /** Directory of the engine's files; required for every kind but 'memory', which ignores it. */
  readonly path?: string;
  /** Options of a 'wal' engine (ignored by the others). */
  readonly wal?: WalEngineOptions;
}

/**
 * Opens an engine of the given kind, creating its directory if missing. Any
 * number of engines, of any kinds, may be open in one process at once (one
 * per range or per group of ranges, chosen by policy; see docs/storage.md).
 */
export async function openEngine(options: OpenEngineOptions): Promise<Engine> {
  switch (options.kind) {
    case 'memory':
      return new MemoryEngine();
    case 'leveldb': {
      const path = requirePath(options);
      const { LevelEngine } = await import('./level.js');
      return LevelEngine.open(path);
    }
    case 'rocksdb': {
      const path = requirePath(options);
      const { RocksDbEngine } = await import('./rocksdb.js');
      return RocksDbEngine.open(path);
    }
    case 'wal':
      return WalEngine.open(requirePath(options), options.wal);
    default:
      return unknownKind(options.kind);
  }
}

function requirePath(options: OpenEngineOptions): string {
  if (typeof options.path !== 'string' || options.path === '') {
    throw new EngineError('INVALID_ARGUMENT', `engine kind '${options.kind}' needs a path`);
  }
  return options.path;
}

function unknownKind(kind: never): never {
  throw new EngineError('INVALID_ARGUMENT', `unknown engine kind '${String(kind)}'`);
}
