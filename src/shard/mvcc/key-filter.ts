/**
 * A Bloom filter over the keys that have a version in one store, so a write
 * or read of a key that was never written (every put of a new key) learns
 * "no version" from memory instead of an engine seek. A Bloom filter never
 * answers "absent" for a key it was given, and the store gives it every key
 * it writes; a wrong "maybe present" only costs the seek it would have done
 * anyway. Keys are never removed (compaction may drop a key's versions: the
 * filter then answers "maybe", which stays safe).
 *
 * The filter grows as keys are added: a stack of layers, each twice the
 * capacity of the one before with more bits per key, so the false-positive
 * rate stays bounded (at most about 1 % per layer, 2 % in all)
 * without knowing the key count in advance.
 *
 * Keys are the store's key segments (escaped user keys, keys.ts), hashed
 * with two 32-bit FNV-1a variants combined by double hashing.
 */

/** Keys the first layer is sized for. */
export const KEY_FILTER_FIRST_LAYER_KEYS = 16_384;
/** Bits per key of the first layer; each later layer gets two more. */
const FIRST_LAYER_BITS_PER_KEY = 10;
const LAYER_BITS_PER_KEY_STEP = 2;

/** One fixed-size Bloom filter. */
class Layer {
  readonly bits: Uint32Array;
  /** Bit index mask (the bit count is a power of two). */
  private readonly mask: number;
  readonly probes: number;
  keys = 0;

  constructor(
    readonly capacity: number,
    bitsPerKey: number,
  ) {
    let bitCount = 64;
    while (bitCount < capacity * bitsPerKey) bitCount *= 2;
    this.bits = new Uint32Array(bitCount / 32);
    this.mask = bitCount - 1;
    // The optimal probe count for the actual bits per key: ln 2 · m / n.
    this.probes = Math.max(1, Math.round((Math.LN2 * bitCount) / capacity));
  }

  add(h1: number, h2: number): void {
    for (let i = 0; i < this.probes; i++) {
      const bit = (h1 + Math.imul(i, h2)) & this.mask;
      this.bits[bit >>> 5]! |= 1 << (bit & 31);
    }
    this.keys++;
  }

  has(h1: number, h2: number): boolean {
    for (let i = 0; i < this.probes; i++) {
      const bit = (h1 + Math.imul(i, h2)) & this.mask;
      if ((this.bits[bit >>> 5]! & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }
}

/** The two hashes of a key (see the module comment). */
function hashes(key: Uint8Array): [number, number] {
  let h1 = 0x811c9dc5;
  let h2 = 0x050c5d1f;
  for (let i = 0; i < key.length; i++) {
    const b = key[i]!;
    h1 = Math.imul(h1 ^ b, 0x01000193);
    h2 = Math.imul(h2 ^ b, 0x01000193) ^ (h2 >>> 15);
  }
  // Final avalanche, so short keys that differ in one byte spread over all bits.
  h1 ^= h1 >>> 16;
  h1 = Math.imul(h1, 0x85ebca6b);
  h1 ^= h1 >>> 13;
  h2 ^= h2 >>> 16;
  h2 = Math.imul(h2, 0xc2b2ae35);
  h2 ^= h2 >>> 13;
  // An odd step visits distinct bits for every probe of a power-of-two table.
  return [h1 >>> 0, (h2 | 1) >>> 0];
}

/** Which keys may have a version in a store; see the module comment. */
export class KeyFilter {
  private readonly layers: Layer[];
  private loaded = false;

  constructor(firstLayerKeys: number = KEY_FILTER_FIRST_LAYER_KEYS) {
    if (!Number.isSafeInteger(firstLayerKeys) || firstLayerKeys < 1) throw new RangeError(`first layer keys must be a positive integer, got ${firstLayerKeys}`);
    this.layers = [new Layer(firstLayerKeys, FIRST_LAYER_BITS_PER_KEY)];
  }

  /**
   * True once the filter holds every key of the store: only then may an
   * "absent" answer be trusted (until the store's keys were loaded, keys
   * written before the filter existed are missing).
   */
  get ready(): boolean {
    return this.loaded;
  }

  /** Marks the filter complete: every key of the store has been added. */
  markLoaded(): void {
    this.loaded = true;
  }

  /** Records that `key` has a version. */
  add(key: Uint8Array): void {
    const [h1, h2] = hashes(key);
    // A key already (maybe) present is not counted again, so rewrites of the same keys never grow the filter.
    if (this.mayHave(h1, h2)) return;
    let top = this.layers[this.layers.length - 1]!;
    if (top.keys >= top.capacity) {
      top = new Layer(top.capacity * 2, FIRST_LAYER_BITS_PER_KEY + LAYER_BITS_PER_KEY_STEP * this.layers.length);
      this.layers.push(top);
    }
    top.add(h1, h2);
  }

  /** True when `key` certainly has no version (the filter is loaded and never saw it). */
  absent(key: Uint8Array): boolean {
    if (!this.loaded) return false;
    const [h1, h2] = hashes(key);
    return !this.mayHave(h1, h2);
  }

  private mayHave(h1: number, h2: number): boolean {
    for (const l of this.layers) if (l.has(h1, h2)) return true;
    return false;
  }

  /** Keys counted, layers and bytes of bit arrays held. */
  get stats(): { keys: number; layers: number; bytes: number; ready: boolean } {
    let keys = 0;
    let bytes = 0;
    for (const l of this.layers) {
      keys += l.keys;
      bytes += l.bits.byteLength;
    }
    return { keys, layers: this.layers.length, bytes, ready: this.loaded };
  }
}
