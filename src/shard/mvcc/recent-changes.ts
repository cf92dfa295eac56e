/**
 * The versions one store wrote at its most recent revisions, in memory, as
 * they were committed. Watchers that keep up read the revisions just
 * written (the watch hub reads every new revision once for its range); from
 * the engine each event cost a point read on the engine's I/O pool, behind
 * whatever else waits there (a list's pages, the raft log's writes), which
 * under load was most of an event's delivery latency. Bounded by events and
 * by record bytes; the oldest whole revisions go first, and a read that
 * starts before what is held goes to the engine (changes.ts). A store starts
 * holding at its first change read, so one nobody watches holds nothing.
 */

/** Versions held at most. */
export const RECENT_CHANGES_EVENTS_MAX = 8192;
/** Record bytes held at most. */
export const RECENT_CHANGES_BYTES_MAX = 8 * 1024 * 1024;
/** Bytes counted per held version beyond its key and record (objects, map entry). */
const CHANGE_OVERHEAD_BYTES = 96;

/** One version written at a revision. */
export interface Change {
  readonly revision: number;
  readonly key: Buffer;
  /** The version record (value.ts); a tombstone for a delete. */
  readonly record: Buffer;
  /**
   * The key's version before this one: a held change, null when there was
   * no live one (the write created the key), undefined when it is not held
   * (read it from the engine).
   */
  prev: Change | null | undefined;
  /** The key's next held change, so that forgetting this one unlinks it. */
  next: Change | undefined;
}

/** A version a committed write made: its user key and record, and whether it created the key. */
export interface WrittenVersion {
  readonly key: Buffer;
  readonly record: Buffer;
  readonly created: boolean;
}

/** See the module comment. */
export class RecentChanges {
  /** Held changes, oldest first, from `head` on (the array is compacted now and then). */
  private changes: Change[] = [];
  private head = 0;
  private bytes = 0;
  /** Every revision above this one, up to the store's current one, is held whole. */
  private completeAbove: number;
  private readonly newestByKey = new Map<string, Change>();

  /** `completeAbove`: the store's current revision when it starts holding. */
  constructor(
    private readonly eventsMax: number,
    private readonly bytesMax: number,
    completeAbove: number,
  ) {
    this.completeAbove = completeAbove;
  }

  /** Records the versions a committed write made at `revision`, in key order. */
  add(revision: number, written: readonly WrittenVersion[]): void {
    if (this.eventsMax === 0 || written.length > this.eventsMax) {
      this.forget(this.changes.length);
      this.completeAbove = revision;
      return;
    }
    for (const w of written) {
      const id = w.key.toString('latin1');
      const before = this.newestByKey.get(id);
      const change: Change = { revision, key: w.key, record: w.record, prev: w.created ? null : before, next: undefined };
      if (before !== undefined) before.next = change;
      this.newestByKey.set(id, change);
      this.changes.push(change);
      this.bytes += sizeOf(change);
    }
    while (this.changes.length - this.head > this.eventsMax || this.bytes > this.bytesMax) {
      // Whole revisions only: a read of a revision finds all of its events or none.
      const oldest = (this.changes[this.head] as Change).revision;
      let end = this.head;
      while (end < this.changes.length && (this.changes[end] as Change).revision === oldest) end++;
      this.forget(end);
      this.completeAbove = oldest;
    }
  }

  /** Forgets everything; from now on every revision above `completeAbove` is held (a store starting to hold). */
  restart(completeAbove: number): void {
    this.forget(this.changes.length);
    this.completeAbove = completeAbove;
  }

  /** Whether every event from `startRevision` on is held. */
  holdsFrom(startRevision: number): boolean {
    return startRevision > this.completeAbove;
  }

  /**
   * The held changes with revisions in [start, end] whose key `wanted`
   * accepts, oldest first and in key order within a revision. A copy: later
   * writes do not change it.
   */
  between(start: number, end: number, wanted: (key: Buffer) => boolean): Change[] {
    let lo = this.head;
    let hi = this.changes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.changes[mid] as Change).revision < start) lo = mid + 1;
      else hi = mid;
    }
    const out: Change[] = [];
    for (let i = lo; i < this.changes.length; i++) {
      const c = this.changes[i] as Change;
      if (c.revision > end) break;
      if (wanted(c.key)) out.push(c);
    }
    return out;
  }

  /** Forgets the changes before index `end`. */
  private forget(end: number): void {
    for (let i = this.head; i < end; i++) {
      const c = this.changes[i] as Change;
      this.bytes -= sizeOf(c);
      if (c.next !== undefined) c.next.prev = undefined;
      const id = c.key.toString('latin1');
      if (this.newestByKey.get(id) === c) this.newestByKey.delete(id);
    }
    this.head = end;
    if (this.head >= this.changes.length) {
      this.changes = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.changes.length) {
      this.changes = this.changes.slice(this.head);
      this.head = 0;
    }
  }
}

function sizeOf(c: Change): number {
  return c.key.length + c.record.length + CHANGE_OVERHEAD_BYTES;
}
