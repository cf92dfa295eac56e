/**
 * Live-key counts of recently read spans at the store's current revision.
 *
 * etcd's Range reports `count`, the number of live keys in the whole span,
 * whatever the limit: a Kubernetes list of 500 objects out of 10,000 still
 * counts 10,000. etcd counts in its in-memory key index; this store has no
 * such index, so a count walks every version of every key in the span in
 * the engine. The counts of the spans clients keep listing are kept here
 * instead, and a limited read at the current revision then reads only the
 * keys it returns.
 *
 * Exactness: only creates and deletes change a count, and every commit
 * hands its creates and deletes over in the step that moves the store's
 * current revision (the store does so in commit()), so cached counts stay
 * exact at every revision. A count measured by a scan at an older revision
 * is brought forward with the changes committed since, which a bounded log
 * keeps; a count older than the log is not cached.
 */
import { type KeySpan, spanContains } from './span.js';
import type { LiveChange } from './types.js';

/** Default bound on the spans whose counts are kept. */
export const SPAN_COUNTS_MAX = 256;
/** Default bound on the logged creates and deletes used to bring a count forward. */
export const COUNT_CHANGES_LOGGED_MAX = 4096;

type Bounded = Extract<KeySpan, { kind: 'span' }>;

interface Entry {
  readonly span: Bounded;
  count: number;
}

interface LoggedChange extends LiveChange {
  readonly revision: number;
}

/** Counts of live keys per span at the current revision, least recently used evicted first. */
export class SpanCountCache {
  /** Span id → count; Map order is LRU order. */
  private readonly entries = new Map<string, Entry>();
  /** Creates and deletes, oldest first. */
  private log: LoggedChange[] = [];
  /** Every change above this revision is in the log. */
  private logFloor: number;
  private hitCount = 0;

  /**
   * @param revision the store's current revision when the cache is created
   * @param spansMax bound on the spans kept (0 disables the cache)
   * @param loggedMax bound on the changes logged to bring counts forward
   */
  constructor(
    private revision: number,
    private readonly spansMax: number = SPAN_COUNTS_MAX,
    private readonly loggedMax: number = COUNT_CHANGES_LOGGED_MAX,
  ) {
    this.logFloor = revision;
  }

  /** False when the cache holds nothing (spansMax 0): a count measured for it would be lost. */
  get enabled(): boolean {
    return this.spansMax > 0;
  }

  /** Lookups answered, and the spans held. */
  get stats(): { hits: number; spans: number } {
    return { hits: this.hitCount, spans: this.entries.size };
  }

  /** The live keys in `span` at `revision`, or undefined when not known (or `revision` is not current). */
  lookup(span: KeySpan, revision: number): number | undefined {
    if (span.kind !== 'span' || revision !== this.revision) return undefined;
    const id = spanId(span);
    const e = this.entries.get(id);
    if (e === undefined) return undefined;
    this.entries.delete(id);
    this.entries.set(id, e);
    this.hitCount++;
    return e.count;
  }

  /**
   * The cached span with the same end as `span` whose start is nearest to
   * `span`'s (the greatest start below it, else the least above it):
   * `span`'s count is that span's plus or minus the keys between the two
   * starts, usually far fewer than `span`'s own (the pages of one list).
   */
  neighbour(span: KeySpan): Bounded | undefined {
    if (span.kind !== 'span') return undefined;
    let below: Bounded | undefined;
    let above: Bounded | undefined;
    for (const { span: s } of this.entries.values()) {
      if (s.end === null ? span.end !== null : span.end === null || !s.end.equals(span.end)) continue;
      const c = Buffer.compare(s.start, span.start);
      if (c < 0 && (below === undefined || Buffer.compare(s.start, below.start) > 0)) below = s;
      else if (c > 0 && (above === undefined || Buffer.compare(s.start, above.start) < 0)) above = s;
    }
    return below ?? above;
  }

  /**
   * The live keys in `span` at `revision`, the current one or an older one
   * the change log still reaches back to (the cached count taken back with
   * the creates and deletes since), or undefined when not known. A
   * Kubernetes list pages at the revision of its first page.
   */
  lookupAt(span: KeySpan, revision: number): number | undefined {
    if (revision === this.revision) return this.lookup(span, revision);
    if (span.kind !== 'span' || revision < this.logFloor || revision > this.revision) return undefined;
    const e = this.entries.get(spanId(span));
    if (e === undefined) return undefined;
    this.hitCount++;
    return e.count - this.deltaSince(span, revision);
  }

  /**
   * Records that `span` held `count` live keys at `revision` (a complete
   * scan's result), brought forward to the current revision with the
   * changes since; ignored when the log no longer reaches back that far.
   */
  fill(span: KeySpan, count: number, revision: number): void {
    if (span.kind !== 'span' || this.spansMax === 0 || revision < this.logFloor || revision > this.revision) return;
    const id = spanId(span);
    this.entries.delete(id);
    this.entries.set(id, { span, count: count + this.deltaSince(span, revision) });
    if (this.entries.size > this.spansMax) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  /** Moves the cache to `revision`, whose write created and deleted `changes`. */
  commit(revision: number, changes: readonly LiveChange[]): void {
    this.revision = revision;
    if (changes.length === 0) return;
    if (this.entries.size > 0) {
      for (const e of this.entries.values()) {
        for (const c of changes) if (spanContains(e.span, c.key)) e.count += c.delta;
      }
    }
    if (this.spansMax === 0) return;
    for (const c of changes) this.log.push({ key: c.key, delta: c.delta, revision });
    if (this.log.length > this.loggedMax) {
      // Drop the older half at once (amortized O(1) per change); counts at or
      // below the newest dropped revision can no longer be brought forward.
      const drop = this.log.length - Math.floor(this.loggedMax / 2);
      this.logFloor = (this.log[drop - 1] as LoggedChange).revision;
      this.log = this.log.slice(drop);
    }
  }

  /** Live keys `span` gained from the changes logged above `revision` (the log reaches back to it). */
  private deltaSince(span: KeySpan, revision: number): number {
    let delta = 0;
    for (let i = this.log.length - 1; i >= 0; i--) {
      const c = this.log[i] as LoggedChange;
      if (c.revision <= revision) break;
      if (spanContains(span, c.key)) delta += c.delta;
    }
    return delta;
  }
}

/** A span's map key: start's length first, so no start/end pair reads as another. */
export function spanId(span: Bounded): string {
  return `${span.start.length}:${span.start.toString('latin1')}${span.end === null ? '*' : `=${span.end.toString('latin1')}`}`;
}
