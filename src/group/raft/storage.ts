/**
 * MemoryStorage: an in-memory `Storage` for tests, the simulator and the
 * benchmarks, and the model for durable implementations.
 *
 * Layout: `ents[0]` is a dummy entry holding the index and term of the last
 * compacted entry (the snapshot point), so `term(firstIndex() - 1)` is always
 * answerable and every lookup is O(1) arithmetic on the array offset.
 */
import type { ConfState, Entry, HardState, Snapshot, Storage } from './types.js';
import {
  RaftInvariantError,
  SnapshotOutOfDateError,
  StorageCompactedError,
  StorageUnavailableError,
  invariant,
} from './errors.js';
import { EMPTY_BYTES, EMPTY_CONF_STATE, EMPTY_HARD_STATE, limitSize } from './util.js';

/** Options for a new MemoryStorage. */
export interface MemoryStorageOptions {
  /** The initial membership of a new group (stored as a snapshot at index 0). */
  confState?: ConfState;
}

/** An in-memory raft log, hard state and snapshot. The host writes; raft reads. */
export class MemoryStorage implements Storage {
  private hardState: HardState = EMPTY_HARD_STATE;
  private snap: Snapshot;
  /** ents[0] is the dummy entry at the snapshot point; real entries follow. */
  private ents: Entry[];

  constructor(options: MemoryStorageOptions = {}) {
    this.snap = {
      meta: { index: 0, term: 0, confState: cloneConfState(options.confState ?? EMPTY_CONF_STATE) },
      data: EMPTY_BYTES,
    };
    this.ents = [{ term: 0, index: 0, type: 'normal', data: EMPTY_BYTES }];
  }

  /** A storage for a new group whose initial voters (and learners) are given. */
  static fromConfState(cs: ConfState): MemoryStorage {
    return new MemoryStorage({ confState: cs });
  }

  /** A storage for a new group with these voters. */
  static withVoters(voters: readonly number[], learners: readonly number[] = []): MemoryStorage {
    return new MemoryStorage({
      confState: { voters: [...voters], learners: [...learners], votersOutgoing: [], learnersNext: [], autoLeave: false },
    });
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.snap.meta.confState };
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.ents[0]!.index;
    if (lo <= offset) throw new StorageCompactedError(lo, offset + 1);
    if (hi > this.lastIndex() + 1) throw new StorageUnavailableError(hi - 1, this.lastIndex());
    invariant(lo <= hi, () => `entries: lo ${lo} > hi ${hi}`);
    if (lo === hi) return [];
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxBytes);
  }

  term(index: number): number {
    const offset = this.ents[0]!.index;
    if (index < offset) throw new StorageCompactedError(index, offset + 1);
    const e = this.ents[index - offset];
    if (e === undefined) throw new StorageUnavailableError(index, this.lastIndex());
    return e.term;
  }

  firstIndex(): number {
    return this.ents[0]!.index + 1;
  }

  lastIndex(): number {
    return this.ents[0]!.index + this.ents.length - 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** The last persisted hard state (hosts and tests read it back). */
  getHardState(): HardState {
    return this.hardState;
  }

  /** Persists a hard state (Ready.hardState). */
  setHardState(hs: HardState): void {
    this.hardState = hs;
  }

  /**
   * Appends entries (Ready.entries), dropping any existing entries at or
   * after the first new index (the conflicting suffix). Entries at or below
   * the compaction point are ignored.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const lastNew = entries[entries.length - 1]!.index;
    if (lastNew < first) return;
    let ents = entries;
    if (first > entries[0]!.index) ents = entries.slice(first - entries[0]!.index);
    const offset = ents[0]!.index - this.ents[0]!.index;
    if (offset > this.ents.length) {
      throw new RaftInvariantError(`MemoryStorage.append: gap (last ${this.lastIndex()}, appending ${ents[0]!.index})`);
    }
    if (offset < this.ents.length) this.ents.length = offset; // truncate the conflicting suffix
    for (let i = 0; i < ents.length; i++) this.ents.push(ents[i]!);
  }

  /** Replaces the whole log with a snapshot (Ready.snapshot). Older snapshots are refused. */
  applySnapshot(snap: Snapshot): void {
    if (snap.meta.index < this.snap.meta.index) throw new SnapshotOutOfDateError(snap.meta.index, this.snap.meta.index);
    this.snap = snap;
    this.ents = [{ term: snap.meta.term, index: snap.meta.index, type: 'normal', data: EMPTY_BYTES }];
  }

  /**
   * Records a snapshot of the state machine at `index` (which must be
   * applied, hence in the log). `cs` defaults to the previous snapshot's
   * membership. Returns the snapshot; the log is not compacted (call `compact`).
   */
  createSnapshot(index: number, cs: ConfState | undefined, data: Uint8Array): Snapshot {
    if (index <= this.snap.meta.index) throw new SnapshotOutOfDateError(index, this.snap.meta.index);
    const offset = this.ents[0]!.index;
    invariant(index <= this.lastIndex(), () => `createSnapshot: index ${index} > last index ${this.lastIndex()}`);
    const term = this.ents[index - offset]!.term;
    this.snap = {
      meta: { index, term, confState: cloneConfState(cs ?? this.snap.meta.confState) },
      data,
    };
    return this.snap;
  }

  /** Discards entries up to and including `index` (which must be <= lastIndex). */
  compact(index: number): void {
    const offset = this.ents[0]!.index;
    if (index <= offset) throw new StorageCompactedError(index, offset + 1);
    invariant(index <= this.lastIndex(), () => `compact: index ${index} > last index ${this.lastIndex()}`);
    const dummy = this.ents[index - offset]!;
    const rest = this.ents.slice(index - offset + 1);
    this.ents = [{ term: dummy.term, index: dummy.index, type: 'normal', data: EMPTY_BYTES }, ...rest];
  }
}

/** A defensive copy, so callers cannot mutate a stored ConfState through shared arrays. */
export function cloneConfState(cs: ConfState): ConfState {
  return {
    voters: [...cs.voters],
    learners: [...cs.learners],
    votersOutgoing: [...cs.votersOutgoing],
    learnersNext: [...cs.learnersNext],
    autoLeave: cs.autoLeave,
  };
}
