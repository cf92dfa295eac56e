/**
 * A node's simulated durable storage.
 *
 * Writes (a Ready's hard state, entries and snapshot) are staged as pending
 * and become durable only when `flush()` runs, which the cluster schedules
 * after a random (sometimes slow) persistence delay. A crash drops whatever
 * is pending. The raft-visible `MemoryStorage` (`live`) receives each write
 * exactly when it becomes durable, so after a restart it can be rebuilt from
 * the durable record alone.
 *
 * Every durable entry carries a chain hash (see hash.ts) so the invariant
 * checker can compare logs across nodes in O(1) per entry.
 */
import { chainNext, entryDataHash } from './hash.js';
import { MemoryStorage } from './raft.js';
import type { ConfState, Entry, HardState, Snapshot } from './raft.js';

/** Entries one durable log may hold (the host truncates long before this). */
export const DURABLE_LOG_ENTRIES_MAX = 100_000;

/** One Ready's writes, staged until durable. */
export interface DiskWrite {
  readonly hardState?: HardState;
  readonly entries: readonly Entry[];
  readonly snapshot?: Snapshot;
  /** The log chain at the snapshot's index (from the snapshot's data). */
  readonly snapshotChain?: number;
}

/** An entry as written, with its chain value (for the checker). */
export interface WrittenEntry {
  readonly index: number;
  readonly term: number;
  readonly chain: number;
}

/** What became durable in one flush. */
export interface FlushResult {
  readonly entries: readonly WrittenEntry[];
  /** Durable entries this flush replaced (the conflicting suffix it truncated). */
  readonly truncated: readonly WrittenEntry[];
  readonly snapshot?: Snapshot;
  readonly hardState: HardState;
}

const EMPTY_HARD_STATE: HardState = { term: 0, vote: 0, commit: 0 };

/** The durable record of one node plus its pending (not yet durable) write. */
export class SimDisk {
  hardState: HardState = EMPTY_HARD_STATE;
  snapshot: Snapshot | undefined;
  /** Index of the entry before `entries[0]` (the log truncation point). */
  offset = 0;
  /** Chain value at `offset`. */
  baseChain = 0;
  entries: Entry[] = [];
  chains: number[] = [];
  pending: DiskWrite | undefined;
  /** The raft-visible storage (mirrors the durable record). */
  live: MemoryStorage = new MemoryStorage();
  /** Writes that became durable (statistics). */
  flushes = 0;

  /** Index of the last durable entry (or the truncation point). */
  get lastIndex(): number {
    return this.offset + this.entries.length;
  }

  /** Chain at `index`, or undefined if outside [offset, lastIndex]. */
  chainAt(index: number): number | undefined {
    if (index === this.offset) return this.baseChain;
    if (index < this.offset || index > this.lastIndex) return undefined;
    return this.chains[index - this.offset - 1];
  }

  /** Term of the durable entry at `index`, if held. */
  termAt(index: number): number | undefined {
    if (index === this.offset) return this.snapshot?.meta.index === index ? this.snapshot.meta.term : undefined;
    return this.entries[index - this.offset - 1]?.term;
  }

  /** Stages a Ready's writes; only one write may be pending (the host waits for it). */
  stage(write: DiskWrite): void {
    if (this.pending !== undefined) throw new Error('disk: a write is already pending');
    this.pending = write;
  }

  /**
   * Makes the pending write durable (snapshot, then entries, then hard
   * state, as the Ready contract orders them) and mirrors it into `live`.
   */
  flush(): FlushResult {
    const w = this.pending;
    if (w === undefined) throw new Error('disk: flush without a pending write');
    this.pending = undefined;
    this.flushes++;
    if (w.snapshot !== undefined) {
      if (w.snapshotChain === undefined) throw new Error('disk: snapshot without its chain');
      this.installSnapshot(w.snapshot, w.snapshotChain);
      this.live.applySnapshot(w.snapshot);
    }
    const truncated: WrittenEntry[] = [];
    const written = this.appendEntries(w.entries, truncated);
    if (w.entries.length > 0) this.live.append(w.entries);
    if (w.hardState !== undefined) {
      this.hardState = w.hardState;
      this.live.setHardState(w.hardState);
    }
    return w.snapshot === undefined
      ? { entries: written, truncated, hardState: this.hardState }
      : { entries: written, truncated, snapshot: w.snapshot, hardState: this.hardState };
  }

  /** A crash: the pending write never happened. */
  crash(): void {
    this.pending = undefined;
  }

  /**
   * The host's own durable write (state-machine snapshot then log
   * log truncation), done synchronously: the snapshot is of already applied,
   * hence durable, state.
   */
  snapshotAndCompact(snapshot: Snapshot, snapshotChain: number, compactIndex: number): void {
    this.snapshot = snapshot;
    this.snapshotChainValue = snapshotChain;
    if (compactIndex > this.offset) {
      const drop = compactIndex - this.offset;
      const chain = this.chains[drop - 1];
      if (chain === undefined) throw new Error(`disk: compact ${compactIndex} beyond last ${this.lastIndex}`);
      this.entries = this.entries.slice(drop);
      this.chains = this.chains.slice(drop);
      this.offset = compactIndex;
      this.baseChain = chain;
    }
  }

  /** Chain at the snapshot's index (kept even after the log moves past it). */
  snapshotChainValue = 0;

  /**
   * Rebuilds the raft-visible storage from the durable record, as a process
   * restart would: snapshot, then the entries after it, then the hard state.
   */
  reloadLive(hardState: HardState): MemoryStorage {
    const storage = new MemoryStorage();
    const snap = this.snapshot;
    if (snap !== undefined) storage.applySnapshot(snap);
    const from = snap === undefined ? 0 : snap.meta.index;
    const tail = this.entries.filter((e) => e.index > from);
    if (tail.length > 0) storage.append(tail);
    storage.setHardState(hardState);
    this.live = storage;
    return storage;
  }

  /** The durable snapshot's conf state (empty for a node that never had one). */
  confState(): ConfState {
    return this.snapshot?.meta.confState ?? { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
  }

  private installSnapshot(snap: Snapshot, chain: number): void {
    // Like MemoryStorage.applySnapshot: the snapshot replaces the whole log.
    this.snapshot = snap;
    this.snapshotChainValue = chain;
    this.offset = snap.meta.index;
    this.baseChain = chain;
    this.entries = [];
    this.chains = [];
  }

  private appendEntries(entries: readonly Entry[], truncated: WrittenEntry[]): WrittenEntry[] {
    const first = entries[0];
    if (first === undefined) return [];
    if (first.index <= this.offset) {
      throw new Error(`disk: append at ${first.index} at or below the truncation point ${this.offset}`);
    }
    if (first.index > this.lastIndex + 1) {
      throw new Error(`disk: append at ${first.index} leaves a gap after ${this.lastIndex}`);
    }
    // Truncate the conflicting suffix, then append.
    const keep = first.index - this.offset - 1;
    for (let i = keep; i < this.entries.length; i++) {
      const e = this.entries[i] as Entry;
      truncated.push({ index: e.index, term: e.term, chain: this.chains[i] as number });
    }
    this.entries.length = keep;
    this.chains.length = keep;
    let prev = this.chainAt(first.index - 1) ?? 0;
    const written: WrittenEntry[] = [];
    for (const e of entries) {
      if (e.index !== this.lastIndex + 1) throw new Error(`disk: entries not contiguous at ${e.index}`);
      const chain = chainNext(prev, e.term, entryDataHash(e.type, e.data));
      this.entries.push(e);
      this.chains.push(chain);
      written.push({ index: e.index, term: e.term, chain });
      prev = chain;
    }
    if (this.entries.length > DURABLE_LOG_ENTRIES_MAX) throw new Error('disk: durable log over its bound');
    return written;
  }
}
