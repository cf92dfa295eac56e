/**
 * The keys one store deleted at its most recent revisions, in memory. The
 * Live family holds only the keys live at the current revision, so a read at
 * an older revision R can take its keys from it only if no key of its span
 * was deleted after R (such a key was live at R and is gone from the family
 * now). This log answers that question for recent revisions; for older ones
 * it says "not known" and the read walks the versions instead (scan.ts).
 */
import { type KeySpan, spanContains } from './span.js';

/** Deleted keys the log keeps before it forgets the oldest. */
export const RECENT_DELETES_MAX = 4096;

/** See the module comment. */
export class RecentDeletes {
  private readonly revisions: number[] = [];
  private readonly keys: Buffer[] = [];
  /** Every key deleted at a revision above this one is in the log. */
  private completeAbove: number;

  /** `completeAbove`: the store's current revision when the log starts (no deletes after it are missed). */
  constructor(
    private readonly capacity: number,
    completeAbove: number,
  ) {
    this.completeAbove = completeAbove;
  }

  /**
   * Records keys deleted at `revision` (revisions only grow). Called before
   * the deleting write reaches the engine, so any engine view that lacks a
   * deleted key's Live entry was taken after the key was recorded here.
   */
  record(revision: number, keys: readonly Buffer[]): void {
    if (keys.length === 0) return;
    if (this.capacity === 0) {
      this.completeAbove = Math.max(this.completeAbove, revision);
      return;
    }
    for (const key of keys) {
      this.revisions.push(revision);
      this.keys.push(key);
    }
    // Forget the oldest half at once: amortised O(1) per key.
    if (this.revisions.length > 2 * this.capacity) {
      const drop = this.revisions.length - this.capacity;
      this.completeAbove = Math.max(this.completeAbove, this.revisions[drop - 1] as number);
      this.revisions.splice(0, drop);
      this.keys.splice(0, drop);
    }
  }

  /** True when it is known that no key in `span` was deleted after `revision`. */
  noDeletesAfter(span: KeySpan, revision: number): boolean {
    if (revision < this.completeAbove) return false;
    for (let i = this.revisions.length - 1; i >= 0 && (this.revisions[i] as number) > revision; i--) {
      if (spanContains(span, this.keys[i] as Buffer)) return false;
    }
    return true;
  }
}
