/**
 * The simulator's only source of randomness: a small seeded PRNG (sfc32).
 *
 * Every random choice in a run — network delays, disk latency, fault
 * schedule, workload, and each raft node's own `RandomSource` — is drawn
 * from a `SimRandom` derived from the run's seed, so one seed replays one
 * run exactly. `Math.random` and clocks are never used in the simulator.
 */
import type { RandomSource } from './raft.js';

/** splitmix32 step: spreads a small integer seed over all 32 bits. */
function splitmix32(state: number): [value: number, next: number] {
  const next = (state + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  return [z >>> 0, next];
}

/** A deterministic PRNG (sfc32) with the helpers the simulator needs. */
export class SimRandom implements RandomSource {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** Seeds from any safe integer (the same seed always yields the same stream). */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new Error(`seed must be a safe integer: ${seed}`);
    // Fold the high bits in so seeds above 2^32 still differ.
    let s = (seed | 0) ^ Math.floor(seed / 0x100000000);
    let v: number;
    [v, s] = splitmix32(s);
    this.a = v;
    [v, s] = splitmix32(s);
    this.b = v;
    [v, s] = splitmix32(s);
    this.c = v;
    [v, s] = splitmix32(s);
    this.d = v;
    // sfc32 needs a few rounds before its output is well mixed.
    for (let i = 0; i < 12; i++) this.next();
  }

  /** The next uniformly distributed unsigned 32-bit integer. */
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** A uniform integer in [0, n). Satisfies raft's `RandomSource`. */
  intn(n: number): number {
    if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`intn: bad bound ${n}`);
    if (n <= 0x100000000) {
      // Rejection sampling keeps the result unbiased.
      const limit = 0x100000000 - (0x100000000 % n);
      for (;;) {
        const x = this.next();
        if (x < limit) return x % n;
      }
    }
    return Math.floor(this.float() * n);
  }

  /** A uniform integer in [lo, hi] (inclusive). */
  range(lo: number, hi: number): number {
    return lo + this.intn(hi - lo + 1);
  }

  /** A uniform float in [0, 1) with 53 bits of precision. */
  float(): number {
    const hi = this.next() >>> 5; // 27 bits
    const lo = this.next() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return p > 0 && this.float() < p;
  }

  /** A uniformly chosen element; throws on an empty list (a programmer error). */
  pick<T>(items: readonly T[]): T {
    const item = items[this.intn(items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }

  /** A Fisher–Yates shuffled copy. */
  shuffled<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.intn(i + 1);
      const tmp = out[i] as T;
      out[i] = out[j] as T;
      out[j] = tmp;
    }
    return out;
  }

  /**
   * An independent child stream. Forking (instead of sharing one stream)
   * keeps, e.g., a node's election timeouts from shifting when the workload
   * draws one more number, which makes failing seeds easier to reason about.
   */
  fork(): SimRandom {
    return new SimRandom(this.next() * 0x200000 + (this.next() >>> 11));
  }
}
