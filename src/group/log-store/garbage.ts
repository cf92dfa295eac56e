/**
 * Garbage: entry keys the log store deletes lazily, in bounded chunks, one
 * span [lo, hi] per group. A live group's span lies at or below its
 * truncated index, so a lazy delete can never hit a live entry; a destroyed
 * group's span covers its whole log. Private to the log store.
 */
import type { BatchOp } from '../../storage/index.js';
import type { IndexSpan } from './group-log.js';
import { entryKey } from './keys.js';

interface MutableSpan {
  lo: number;
  hi: number;
}

/** The garbage spans of every group, with a priority set for groups someone is waiting for. */
export class Garbage {
  private readonly spans = new Map<number, MutableSpan>();
  /** Groups whose garbage someone awaits (destroy, open); collected before the rest. */
  private readonly urgent = new Set<number>();

  /** True if the group has keys left to delete. */
  has(groupId: number): boolean {
    return this.spans.has(groupId);
  }

  /** Keys left to delete, over all groups. */
  get keys(): number {
    let n = 0;
    for (const span of this.spans.values()) n += span.hi - span.lo + 1;
    return n;
  }

  /** Adds a span to the group's (the union's hull: every key in it is garbage). */
  add(groupId: number, span: IndexSpan): void {
    const old = this.spans.get(groupId);
    if (old === undefined) this.spans.set(groupId, { lo: span.lo, hi: span.hi });
    else this.spans.set(groupId, { lo: Math.min(old.lo, span.lo), hi: Math.max(old.hi, span.hi) });
  }

  /**
   * Makes indexes above `index` live again (a snapshot installed below the
   * truncated index): pushes their deletes to `ops` now, so they land before
   * any put that reuses them, and clips the span to `index`.
   */
  clipAbove(groupId: number, index: number, ops: BatchOp[]): void {
    const span = this.spans.get(groupId);
    if (span === undefined || span.hi <= index) return;
    for (let i = Math.max(span.lo, index + 1); i <= span.hi; i++) ops.push({ type: 'del', key: entryKey(groupId, i) });
    if (span.lo > index) this.spans.delete(groupId);
    else span.hi = index;
  }

  /** Marks groups as awaited (or not), so collect() serves them first. */
  setUrgent(ids: Iterable<number>, urgent: boolean): void {
    for (const id of ids) {
      if (urgent) this.urgent.add(id);
      else this.urgent.delete(id);
    }
  }

  /** Pushes up to `max` deletes to `ops` (awaited groups first, then oldest spans); returns how many. */
  collect(max: number, ops: BatchOp[]): number {
    let budget = max;
    for (const groupId of this.urgent) {
      const span = this.spans.get(groupId);
      if (span !== undefined) budget = this.collectSpan(groupId, span, budget, ops);
    }
    for (const [groupId, span] of this.spans) {
      if (budget === 0) break;
      budget = this.collectSpan(groupId, span, budget, ops);
    }
    return max - budget;
  }

  private collectSpan(groupId: number, span: MutableSpan, budget: number, ops: BatchOp[]): number {
    const n = Math.min(budget, span.hi - span.lo + 1);
    for (let i = 0; i < n; i++) ops.push({ type: 'del', key: entryKey(groupId, span.lo + i) });
    span.lo += n;
    if (span.lo > span.hi) this.spans.delete(groupId);
    return budget - n;
  }
}
