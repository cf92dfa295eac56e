/**
 * The reference model for engine tests: a sorted array, as plain as possible,
 * so that a disagreement with an engine points at the engine.
 */
import type { BatchOp, IterateOptions } from '../../src/storage/index.js';

/** A key/value pair of the model. */
export type ModelEntry = readonly [key: Buffer, value: Buffer];

/** A sorted-array key/value store with the engine contract's semantics. */
export class Model {
  constructor(private entries: ModelEntry[] = []) {}

  /** A frozen copy, as a snapshot would see it. */
  clone(): Model {
    return new Model([...this.entries]);
  }

  /** The value under `key`, or undefined. */
  get(key: Uint8Array): Buffer | undefined {
    const i = this.search(key);
    const found = this.entries[i];
    return found !== undefined && Buffer.compare(found[0], key) === 0 ? found[1] : undefined;
  }

  /** Applies valid ops in order (the caller checks validity). */
  write(ops: readonly BatchOp[]): void {
    for (const op of ops) {
      const key = Buffer.from(op.key);
      const i = this.search(key);
      const present = this.entries[i] !== undefined && Buffer.compare(this.entries[i]![0], key) === 0;
      if (op.type === 'put') this.entries.splice(i, present ? 1 : 0, [key, Buffer.from(op.value)]);
      else if (present) this.entries.splice(i, 1);
    }
  }

  /** Deletes every key in [start, end). */
  deleteSpan(start: Uint8Array, end: Uint8Array): void {
    this.entries = this.entries.filter(([k]) => Buffer.compare(k, start) < 0 || Buffer.compare(k, end) >= 0);
  }

  /** The entries a scan with `options` must return, in order. */
  scan(options: IterateOptions = {}): ModelEntry[] {
    const matching = this.entries.filter(([k]) => {
      if (options.gte !== undefined) {
        if (Buffer.compare(k, options.gte) < 0) return false;
      } else if (options.gt !== undefined && Buffer.compare(k, options.gt) <= 0) return false;
      if (options.lte !== undefined) {
        if (Buffer.compare(k, options.lte) > 0) return false;
      } else if (options.lt !== undefined && Buffer.compare(k, options.lt) >= 0) return false;
      return true;
    });
    if (options.reverse === true) matching.reverse();
    const limit = options.limit === undefined || options.limit < 0 ? Infinity : Math.floor(options.limit);
    return matching.slice(0, limit);
  }

  /** Logical bytes (keys plus values) in [start, end). */
  bytes(start: Uint8Array, end: Uint8Array): number {
    let total = 0;
    for (const [k, v] of this.entries) {
      if (Buffer.compare(k, start) >= 0 && Buffer.compare(k, end) < 0) total += k.length + v.length;
    }
    return total;
  }

  /** Number of keys. */
  get size(): number {
    return this.entries.length;
  }

  /** The index of the first entry whose key is >= `key`. */
  private search(key: Uint8Array): number {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (Buffer.compare(this.entries[mid]![0], key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
