/**
 * The raft log as the core sees it: the host's stable `Storage` plus the
 * `Unstable` tail (entries and at most one snapshot that raft has accepted
 * but the host has not yet persisted).
 */
import type { Entry, Snapshot, Storage } from './types.js';
import { RaftInvariantError, StorageCompactedError, StorageUnavailableError, invariant } from './errors.js';
import { entrySize, limitSize } from './util.js';

/**
 * Entries (and a snapshot) not yet persisted. `entries[i]` has index
 * `offset + i`; a pending snapshot, if any, ends at `offset - 1`.
 */
export class Unstable {
  snapshot: Snapshot | undefined = undefined;
  entries: Entry[] = [];
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  /** First index, if a pending snapshot fixes it. */
  maybeFirstIndex(): number | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.meta.index + 1;
  }

  /** Last index, if the unstable part has entries or a snapshot. */
  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot === undefined ? undefined : this.snapshot.meta.index;
  }

  /** Term at `i`, if the unstable part knows it. */
  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot !== undefined && this.snapshot.meta.index === i) return this.snapshot.meta.term;
      return undefined;
    }
    const e = this.entries[i - this.offset];
    return e === undefined ? undefined : e.term;
  }

  /** The host persisted entries up to (i, t): drop them, unless they were since replaced. */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    if (gt === undefined || i < this.offset) return;
    if (gt !== t) return; // replaced by a newer leader's entries after the Ready was taken
    const n = i + 1 - this.offset;
    this.entries = n >= this.entries.length ? [] : this.entries.slice(n);
    this.offset = i + 1;
  }

  stableSnapTo(i: number): void {
    if (this.snapshot !== undefined && this.snapshot.meta.index === i) this.snapshot = undefined;
  }

  restore(s: Snapshot): void {
    this.offset = s.meta.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  /** Appends entries, truncating any unstable entries at or after the first new index. */
  truncateAndAppend(ents: readonly Entry[]): void {
    const after = ents[0]!.index;
    if (after === this.offset + this.entries.length) {
      for (let i = 0; i < ents.length; i++) this.entries.push(ents[i]!);
    } else if (after <= this.offset) {
      // Replaces everything unstable; the host truncates its storage when it persists these.
      this.offset = after;
      this.entries = ents.slice();
    } else {
      const kept = this.entries.slice(0, after - this.offset);
      for (let i = 0; i < ents.length; i++) kept.push(ents[i]!);
      this.entries = kept;
    }
  }

  /** Entries [lo, hi) from the unstable part (caller checked the bounds). */
  slice(lo: number, hi: number): Entry[] {
    invariant(lo >= this.offset && hi <= this.offset + this.entries.length, () =>
      `unstable.slice(${lo}, ${hi}) out of [${this.offset}, ${this.offset + this.entries.length}]`,
    );
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

/** The log: storage + unstable, with the commit, applying and applied cursors. */
export class RaftLog {
  readonly storage: Storage;
  readonly unstable: Unstable;
  /** Highest index known to be committed by a quorum. Never decreases. */
  committed: number;
  /** Highest index the host has applied (told through advance). */
  applied: number;
  /** Highest index handed to the host in a Ready for applying (>= applied). */
  applying: number;
  /** Byte cap on committed entries per Ready. */
  readonly maxApplyingSize: number;

  constructor(storage: Storage, maxApplyingSize: number) {
    this.storage = storage;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applied = first - 1;
    this.applying = first - 1;
    this.maxApplyingSize = maxApplyingSize;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /** Term of the entry at `i`; throws StorageCompactedError / StorageUnavailableError outside the log. */
  term(i: number): number {
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    const dummy = this.firstIndex() - 1;
    if (i < dummy) throw new StorageCompactedError(i, dummy + 1);
    if (i > this.lastIndex()) throw new StorageUnavailableError(i, this.lastIndex());
    return this.storage.term(i);
  }

  /** Term at `i`, or 0 when `i` is outside the log (compacted or not yet appended). */
  termOrZero(i: number): number {
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    if (i < this.firstIndex() - 1 || i > this.lastIndex()) return 0;
    try {
      return this.storage.term(i);
    } catch (e) {
      if (e instanceof StorageCompactedError || e instanceof StorageUnavailableError) return 0;
      throw e;
    }
  }

  matchTerm(i: number, t: number): boolean {
    return this.termOrZero(i) === t && (t !== 0 || i === 0 || this.hasIndex(i));
  }

  private hasIndex(i: number): boolean {
    return i >= this.firstIndex() - 1 && i <= this.lastIndex();
  }

  /**
   * Follower side of MsgApp: if our entry at `index` has term `logTerm`,
   * append `ents` (skipping those we already have, truncating at the first
   * conflict) and advance commit; returns the new last index of the append.
   * Returns undefined when the terms do not match (the caller rejects).
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: readonly Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      if (ci <= this.committed) {
        throw new RaftInvariantError(`entry ${ci} conflicts with committed entry (committed ${this.committed})`);
      }
      const start = ci - (index + 1);
      this.append(start === 0 ? ents : ents.slice(start));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  /** Appends entries that directly follow an index >= committed; returns the new last index. */
  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    invariant(after >= this.committed, () => `append after ${after} is below committed ${this.committed}`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /** Appends one entry directly after the last one (leader hot path); returns its index. */
  appendOne(e: Entry): number {
    const u = this.unstable;
    invariant(e.index === this.lastIndex() + 1 && e.index > this.committed, () => `appendOne(${e.index}) not after last ${this.lastIndex()}`);
    if (e.index === u.offset + u.entries.length) u.entries.push(e);
    else u.truncateAndAppend([e]);
    return e.index;
  }

  /**
   * The index of the first entry in `ents` whose term differs from ours
   * (or that we lack), or 0 if we already have all of them.
   */
  findConflict(ents: readonly Entry[]): number {
    for (let i = 0; i < ents.length; i++) {
      const e = ents[i]!;
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term`, with that term
   * (0 if compacted). Used for the fast back-off on append rejection: every
   * entry above it certainly conflicts with a log whose entry at `index` has
   * a term of `term`.
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    let i = index;
    for (;;) {
      let t: number;
      try {
        t = this.term(i);
      } catch (e) {
        if (e instanceof StorageCompactedError || e instanceof StorageUnavailableError) return [i, 0];
        throw e;
      }
      if (t <= term) return [i, t];
      i--;
    }
  }

  /** Entries not yet persisted (a copy: the Ready must not change under the host). */
  unstableEntries(): Entry[] {
    return this.unstable.entries.length === 0 ? [] : this.unstable.entries.slice();
  }

  hasNextCommittedEnts(): boolean {
    if (this.unstable.snapshot !== undefined) return false; // apply the snapshot first
    const lo = Math.max(this.applying, this.firstIndex() - 1) + 1;
    return this.committed >= lo;
  }

  /** Committed entries not yet handed out for applying, up to maxApplyingSize bytes. */
  nextCommittedEnts(): Entry[] {
    if (!this.hasNextCommittedEnts()) return [];
    const lo = Math.max(this.applying, this.firstIndex() - 1) + 1;
    return this.slice(lo, this.committed + 1, this.maxApplyingSize);
  }

  /** The snapshot to install (unstable) or the storage's latest one. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Advances commit (never backwards). */
  commitTo(toCommit: number): void {
    if (this.committed < toCommit) {
      invariant(toCommit <= this.lastIndex(), () => `commitTo(${toCommit}) beyond last index ${this.lastIndex()}`);
      this.committed = toCommit;
    }
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    invariant(i <= this.committed && i >= this.applied, () =>
      `appliedTo(${i}) outside [applied ${this.applied}, committed ${this.committed}]`,
    );
    this.applied = i;
    if (this.applying < i) this.applying = i;
  }

  acceptApplying(i: number): void {
    invariant(i <= this.committed, () => `acceptApplying(${i}) beyond committed ${this.committed}`);
    if (i > this.applying) this.applying = i;
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  /**
   * The last index the host has persisted (everything below the unstable
   * part); 0 while a snapshot waits to be persisted (nothing of the log
   * it replaces counts).
   */
  persistedLastIndex(): number {
    return this.unstable.snapshot !== undefined ? 0 : this.unstable.offset - 1;
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  /** Leader side: commit `maxIndex` if its entry is from the current term (raft §5.4.2). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.termOrZero(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  /** Replaces the log with a snapshot (follower installing one). */
  restore(s: Snapshot): void {
    this.committed = s.meta.index;
    this.unstable.restore(s);
  }

  /** Is a log ending at (lastIndex, term) at least as up to date as ours (raft §5.4.1)? */
  isUpToDate(lastIndex: number, term: number): boolean {
    const ourTerm = this.lastTerm();
    return term > ourTerm || (term === ourTerm && lastIndex >= this.lastIndex());
  }

  /** Entries [lo, last] up to maxBytes (at least one). */
  entriesFrom(lo: number, maxBytes: number): Entry[] {
    const last = this.lastIndex();
    if (lo > last) return [];
    return this.slice(lo, last + 1, maxBytes);
  }

  /** Entries [lo, hi) up to maxBytes (at least one if lo < hi). Throws StorageCompactedError below firstIndex. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    const first = this.firstIndex();
    if (lo < first) throw new StorageCompactedError(lo, first);
    invariant(lo <= hi && hi <= this.lastIndex() + 1, () => `slice(${lo}, ${hi}) out of [${first}, ${this.lastIndex()}]`);
    if (lo === hi) return [];
    const uOff = this.unstable.offset;
    if (lo >= uOff) return limitSize(this.unstable.slice(lo, hi), maxBytes);
    const stableHi = Math.min(hi, uOff);
    const ents = this.storage.entries(lo, stableHi, maxBytes);
    if (ents.length < stableHi - lo || hi <= uOff) return ents; // size limit reached in storage
    // Continue into the unstable part while the byte budget lasts.
    let size = 0;
    for (let i = 0; i < ents.length; i++) size += entrySize(ents[i]!);
    const out = ents.slice();
    for (let i = uOff; i < hi; i++) {
      const e = this.unstable.entries[i - uOff]!;
      size += entrySize(e);
      if (size > maxBytes) break;
      out.push(e);
    }
    return out;
  }
}
