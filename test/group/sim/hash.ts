/**
 * Cheap non-cryptographic hashing for invariant checks: a chain hash over a
 * log (equal chains ⇔ equal prefixes, up to collisions) and a digest of the
 * event trace (equal digests ⇔ identical runs).
 *
 * Values are 52-bit integers built from two independent 32-bit lanes (so
 * they are exact JavaScript numbers and a collision needs both lanes to collide).
 */

const TWO_POW_20 = 0x100000;

/** Mixes one 32-bit word into a 32-bit lane (murmur3-style). */
function mixLane(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finalLane(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A 52-bit hash that accumulates numbers (each a safe integer). */
export class Hasher {
  private a: number;
  private b: number;

  constructor(seed = 0) {
    this.a = mixLane(0x243f6a88, seed | 0);
    this.b = mixLane(0x85a308d3, (seed / 0x100000000) | 0);
  }

  /** Adds a safe integer (both its low and high 32-bit halves). */
  add(n: number): this {
    const lo = n | 0;
    const hi = Math.floor(n / 0x100000000) | 0;
    this.a = mixLane(mixLane(this.a, lo), hi);
    this.b = mixLane(mixLane(this.b, hi ^ 0x5bd1e995), lo);
    return this;
  }

  /** Adds bytes (length first, so concatenations cannot collide trivially). */
  addBytes(bytes: Uint8Array): this {
    this.add(bytes.length);
    for (let i = 0; i < bytes.length; i += 4) {
      const w = (bytes[i] ?? 0) | ((bytes[i + 1] ?? 0) << 8) | ((bytes[i + 2] ?? 0) << 16) | ((bytes[i + 3] ?? 0) << 24);
      this.a = mixLane(this.a, w);
      this.b = mixLane(this.b, w ^ 0x27d4eb2f);
    }
    return this;
  }

  /** The current 52-bit value (the hasher may keep accumulating). */
  value(): number {
    return (finalLane(this.a) % TWO_POW_20) * 0x100000000 + finalLane(this.b);
  }
}

/** Hash of a log entry's payload (type and data). */
export function entryDataHash(type: 'normal' | 'confChange', data: Uint8Array): number {
  return new Hasher(type === 'normal' ? 1 : 2).addBytes(data).value();
}

/**
 * The chain value of a log entry: a hash of the previous entry's chain and
 * this entry's term and payload. Two logs agree on the chain at index i iff
 * (up to collisions) they hold identical entries at every index ≤ i.
 */
export function chainNext(prevChain: number, term: number, dataHash: number): number {
  return new Hasher(3).add(prevChain).add(term).add(dataHash).value();
}

/** The chain value assigned to the bootstrap snapshot (index 1, term 1). */
export const BOOTSTRAP_CHAIN = 0x1b00757;
