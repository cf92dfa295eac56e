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
import { EMPTY_VALUE, type Scan, type TreeOp, aboveLower, belowUpper, checkBatch, checkBound, checkKey, countByIterating, resolveScan } from './internal.js';

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
    return this.tree.get(checkKey(key));
  }

  count(options: IterateOptions = {}): Promise<number> {
    return countByIterating(this, options);
  }

  iterate(options: IterateOptions = {}): AsyncIterableIterator<Entry> {
    // The clone happens inside the generator, at the first next(), which is
    // when the interface says a scan's view is taken.
    return iterateTree(() => this.tree.clone(), options, () => this.stateError());
  }

  async write(ops: readonly BatchOp[]): Promise<void> {
    this.assertOpen();
    // Check and copy everything first so a bad op cannot leave the batch
    // half-applied, and later mutation of the caller's buffers cannot leak in.
    const copied = checkBatch(ops).map((op) =>
      op.type === 'put' ? { ...op, key: Buffer.from(op.key), value: Buffer.from(op.value) } : op,
    );
    this.applyOwned(copied);
  }

  /**
   * Applies ops at once, keeping their buffers (no checks, no copies): for an
   * engine built on this one (wal.ts), which checks and copies first.
   */
  applyOwned(ops: readonly TreeOp[]): void {
    this.assertOpen();
    for (const op of ops) {
      if (op.type === 'put') this.tree.set(op.key, op.value);
      else if (op.type === 'del') this.tree.delete(op.key);
      else if (compareKeys(op.start, op.end) < 0) this.tree.deleteRange(op.start, op.end, false);
    }
  }

  snapshot(): EngineSnapshot {
    this.assertOpen();
    return new MemorySnapshot(this.tree.clone(), () => this.closed);
  }

  async approximateSize(start: Uint8Array, end: Uint8Array): Promise<number> {
    this.assertOpen();
    const from = checkBound(start, 'start');
    const to = checkBound(end, 'end');
    let bytes = 0;
    if (compareKeys(from, to) >= 0) return 0;
    this.tree.forRange(from, to, false, (k, v) => {
      bytes += k.length + v.length;
    });
    return bytes;
  }

  async deleteSpan(start: Uint8Array, end: Uint8Array): Promise<void> {
    this.assertOpen();
    const from = checkBound(start, 'start');
    const to = checkBound(end, 'end');
    if (compareKeys(from, to) >= 0) return;
    this.tree.deleteRange(from, to, false);
  }

  async compactRange(start: Uint8Array, end: Uint8Array): Promise<void> {
    this.assertOpen();
    checkBound(start, 'start');
    checkBound(end, 'end');
    // Nothing to reclaim: a delete frees its tree node at once.
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  async destroy(): Promise<void> {
    this.closed = true;
    this.tree = new BTree<Buffer, Buffer>(undefined, compareKeys);
  }

  private stateError(): EngineError | undefined {
    return this.closed ? new EngineError('ENGINE_CLOSED', 'engine is closed') : undefined;
  }

  private assertOpen(): void {
    const err = this.stateError();
    if (err !== undefined) throw err;
  }
}

class MemorySnapshot implements EngineSnapshot {
  private released = false;
  constructor(
    private readonly tree: Tree,
    private readonly engineClosed: () => boolean,
  ) {}

  async get(key: Uint8Array): Promise<Buffer | undefined> {
    this.assertLive();
    return this.tree.get(checkKey(key));
  }

  iterate(options: IterateOptions = {}): AsyncIterableIterator<Entry> {
    return iterateTree(() => this.tree, options, () => this.stateError());
  }

  count(options: IterateOptions = {}): Promise<number> {
    return countByIterating(this, options);
  }

  async release(): Promise<void> {
    this.released = true;
  }

  private stateError(): EngineError | undefined {
    if (this.engineClosed()) return new EngineError('ENGINE_CLOSED', 'engine is closed');
    if (this.released) return new EngineError('SNAPSHOT_RELEASED', 'snapshot has been released');
    return undefined;
  }

  private assertLive(): void {
    const err = this.stateError();
    if (err !== undefined) throw err;
  }
}

/**
 * Walks a frozen tree within the bounds of `options`. `state` is consulted
 * before every entry so a scan stops as soon as its engine or snapshot goes away.
 */
async function* iterateTree(
  view: () => Tree,
  options: IterateOptions,
  state: () => EngineError | undefined,
): AsyncIterableIterator<Entry> {
  const before = state();
  if (before !== undefined) throw before;
  const scan: Scan = resolveScan(options);
  if (scan.empty) return;
  const tree = view();
  let count = 0;
  const source = scan.reverse ? tree.entriesReversed(scan.upper) : tree.entries(scan.lower);
  for (const [key, value] of source) {
    if (scan.reverse ? !belowUpper(scan, key) : !aboveLower(scan, key)) continue;
    if (scan.reverse ? !aboveLower(scan, key) : !belowUpper(scan, key)) return;
    const err = state();
    if (err !== undefined) throw err;
    yield { key, value: scan.keysOnly ? EMPTY_VALUE : value };
    if (++count >= scan.limit) return;
  }
}
