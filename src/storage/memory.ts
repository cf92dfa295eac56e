import sortedBtree from 'sorted-btree';
import {
  type BatchOp,
  type Engine,
  type EngineSnapshot,
  type Entry,
  EngineError,
  type IterateOptions,
  compareKeys,
} from './engine.js';

// sorted-btree ships CommonJS with the class as `exports.default`.
const BTree = sortedBtree.default;
type Tree = InstanceType<typeof BTree<Buffer, Buffer>>;

/**
 * An in-memory ordered engine on a copy-on-write B+ tree. Snapshots are O(1)
 * clones, so a long scan never blocks writers. Nothing survives close: use it
 * for tests, the simulator, and ranges configured as memory-only.
 */
export class MemoryEngine implements Engine {
  readonly kind = 'memory' as const;
  private tree: Tree = new BTree<Buffer, Buffer>(undefined, compareKeys);
  private closed = false;

  async get(key: Uint8Array): Promise<Buffer | undefined> {
    this.assertOpen();
    return this.tree.get(Buffer.from(key));
  }

  iterate(options: IterateOptions = {}): AsyncIterableIterator<Entry> {
    this.assertOpen();
    return iterateTree(this.tree.clone(), options, () => this.assertOpen());
  }

  async write(ops: readonly BatchOp[]): Promise<void> {
    this.assertOpen();
    // Copy first so a bad op cannot leave the batch half-applied.
    const copied = ops.map((op) => ({ ...op, key: Buffer.from(op.key) }));
    for (const op of copied) {
      if (op.type === 'put') this.tree.set(op.key, Buffer.from(op.value));
      else this.tree.delete(op.key);
    }
  }

  snapshot(): EngineSnapshot {
    this.assertOpen();
    return new MemorySnapshot(this.tree.clone());
  }

  async approximateSize(start: Uint8Array, end: Uint8Array): Promise<number> {
    this.assertOpen();
    let bytes = 0;
    this.tree.forRange(Buffer.from(start), Buffer.from(end), false, (k, v) => {
      bytes += k.length + v.length;
    });
    return bytes;
  }

  async deleteSpan(start: Uint8Array, end: Uint8Array): Promise<void> {
    this.assertOpen();
    if (compareKeys(start, end) >= 0) return;
    this.tree.deleteRange(Buffer.from(start), Buffer.from(end), false);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  async destroy(): Promise<void> {
    this.closed = true;
    this.tree = new BTree<Buffer, Buffer>(undefined, compareKeys);
  }

  private assertOpen(): void {
    if (this.closed) throw new EngineError('ENGINE_CLOSED', 'engine is closed');
  }
}

class MemorySnapshot implements EngineSnapshot {
  private released = false;
  constructor(private readonly tree: Tree) {}

  async get(key: Uint8Array): Promise<Buffer | undefined> {
    this.assertLive();
    return this.tree.get(Buffer.from(key));
  }

  iterate(options: IterateOptions = {}): AsyncIterableIterator<Entry> {
    this.assertLive();
    return iterateTree(this.tree, options, () => this.assertLive());
  }

  async release(): Promise<void> {
    this.released = true;
  }

  private assertLive(): void {
    if (this.released) throw new EngineError('SNAPSHOT_RELEASED', 'snapshot has been released');
  }
}

/** Walks a (cloned, hence frozen) tree within the bounds of `options`. */
async function* iterateTree(
  tree: Tree,
  options: IterateOptions,
  check: () => void,
): AsyncIterableIterator<Entry> {
  const limit = options.limit !== undefined && options.limit >= 0 ? options.limit : Infinity;
  if (limit === 0) return;
  const lower = options.gte ?? options.gt;
  const upper = options.lte ?? options.lt;
  const aboveLower = (k: Buffer): boolean =>
    lower === undefined || (options.gte !== undefined ? compareKeys(k, lower) >= 0 : compareKeys(k, lower) > 0);
  const belowUpper = (k: Buffer): boolean =>
    upper === undefined || (options.lte !== undefined ? compareKeys(k, upper) <= 0 : compareKeys(k, upper) < 0);
  let count = 0;
  const source = options.reverse
    ? tree.entriesReversed(upper === undefined ? undefined : Buffer.from(upper))
    : tree.entries(lower === undefined ? undefined : Buffer.from(lower));
  for (const [key, value] of source) {
    if (options.reverse ? !belowUpper(key) : !aboveLower(key)) continue;
    if (options.reverse ? !aboveLower(key) : !belowUpper(key)) return;
    check();
    yield { key, value };
    if (++count >= limit) return;
  }
}
