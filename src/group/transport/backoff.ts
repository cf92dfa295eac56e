/**
 * Reconnect delays: exponential, bounded, with jitter so that many nodes that
 * lost the same peer do not all redial it in the same millisecond.
 */

/** Doublings after which the delay is at its cap anyway (keeps 2^n finite). */
const BACKOFF_EXPONENT_MAX = 30;

/** Exponential back-off with "equal jitter": a delay in [d/2, d) for d = min(max, base·2^attempt). */
export class Backoff {
  private attempt = 0;

  /**
   * @param random uniform in [0, 1); injected so tests can pin delays.
   */
  constructor(
    private readonly baseMs: number,
    private readonly maxMs: number,
    private readonly random: () => number,
  ) {
    if (!(baseMs > 0 && maxMs >= baseMs)) throw new RangeError(`bad back-off bounds ${baseMs}..${maxMs}`);
  }

  /** Failures since the last success. */
  get attempts(): number {
    return this.attempt;
  }

  /** The delay before the next attempt; each call counts one more failure. */
  next(): number {
    const exp = Math.min(this.attempt, BACKOFF_EXPONENT_MAX);
    this.attempt++;
    const ceiling = Math.min(this.maxMs, this.baseMs * 2 ** exp);
    const half = ceiling / 2;
    return Math.floor(half + this.random() * half);
  }

  /** A connection succeeded: the next failure starts from the base delay again. */
  reset(): void {
    this.attempt = 0;
  }
}
