/**
 * Keys and values of the load generator. A key is `prefix` followed by its
 * index in the key space as zero-padded decimal digits, so keys are printable,
 * sort in index order and are exactly `keySize` bytes long whenever the key
 * space fits (etcd's tool writes a varint into a `keySize` buffer instead; the
 * size, which is what the server sees, is the same).
 */

/** A small seeded PRNG (mulberry32): runs repeat with `--seed`, and workers draw independent streams. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** How keys are chosen. */
export interface KeyOptions {
  readonly keySize: number;
  readonly keySpaceSize: number;
  readonly sequential: boolean;
  /** Bytes every key starts with ('' for put/range, as etcd's tool). */
  readonly prefix?: string;
  /** Sequential keys start here (workers start at different offsets). */
  readonly start?: number;
  readonly seed: number;
}

/** Hands out key indexes and turns them into keys. */
export interface KeyGenerator {
  /** The next key index in [0, keySpaceSize). */
  nextIndex(): number;
  /** The key of an index. */
  keyOf(index: number): Buffer;
  /** The next key. */
  next(): Buffer;
  /** Digits used for the index part. */
  readonly digits: number;
}

/** Digits needed to write every index of a key space of `size` keys. */
export function digitsFor(size: number): number {
  return Math.max(1, String(size - 1).length);
}

/**
 * A key generator. The index part is as wide as `keySize` leaves after the
 * prefix, but never narrower than the key space needs: a key space that does
 * not fit `keySize` gets longer keys rather than colliding ones.
 */
export function keyGenerator(opts: KeyOptions): KeyGenerator {
  const prefix = opts.prefix ?? '';
  const digits = Math.max(opts.keySize - Buffer.byteLength(prefix), digitsFor(opts.keySpaceSize));
  const random = seededRandom(opts.seed);
  let seq = opts.start ?? 0;
  const keyOf = (index: number): Buffer => Buffer.from(prefix + String(index).padStart(digits, '0'));
  const nextIndex = (): number => {
    if (opts.sequential) {
      const i = seq % opts.keySpaceSize;
      seq++;
      return i;
    }
    return Math.floor(random() * opts.keySpaceSize);
  };
  return { nextIndex, keyOf, next: () => keyOf(nextIndex()), digits };
}

/** The exclusive end of a prefix range (etcd's `--prefix`): the prefix with its last byte incremented. */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] as number) < 0xff) {
      end[i] = (end[i] as number) + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // all 0xff: to the end of the key space
}

/** A value of `size` bytes filled with a constant byte (etcd's tool uses random bytes; the server does not care). */
export function makeValue(size: number): Buffer {
  return Buffer.alloc(size, 0x62);
}

/** Wall-clock time in milliseconds with sub-millisecond precision, comparable across processes on one machine. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** A value of `size` (≥ 8) bytes that starts with the send time, so a watcher can compute delivery latency. */
export function timestampedValue(size: number, sentMs: number): Buffer {
  const v = Buffer.alloc(size, 0x62);
  v.writeDoubleBE(sentMs, 0);
  return v;
}

/** The send time written by {@link timestampedValue}, or undefined for a foreign value. */
export function sentTimeOf(value: Buffer): number | undefined {
  if (value.length < 8) return undefined;
  const t = value.readDoubleBE(0);
  // Epoch milliseconds between 2001 and 5138; anything else is not ours.
  return Number.isFinite(t) && t > 1e12 && t < 1e14 ? t : undefined;
}
