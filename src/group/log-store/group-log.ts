/**
 * GroupLog: one raft group's `Storage` view over the shared log store.
 *
 * The raft core reads its log synchronously while engines are async, so each
 * group keeps its retained log (the entries above the truncated index) in
 * memory, written through to the engine by the LogStore's group commit. The
 * memory a group holds is bounded by log truncation: the host truncates after
 * each state-machine snapshot, deciding when from `retainedEntries` and
 * `retainedBytes`.
 *
 * Reads follow MemoryStorage (src/group/raft/storage.ts) exactly, errors
 * included, because the raft core switches on them. Writes are made only by
 * the LogStore, which validates first and then calls the mutators here; each
 * mutator updates memory and pushes the engine ops that make the same change
 * durable.
 */
import type { BatchOp } from '../../storage/index.js';
import {
  type ConfState,
  type Entry,
  type HardState,
  type Snapshot,
  type SnapshotMeta,
  type Storage,
  RaftInvariantError,
  SnapshotTemporarilyUnavailableError,
  StorageCompactedError,
  StorageUnavailableError,
  cloneConfState,
  entrySize,
  limitSize,
} from '../raft/index.js';
import {
  type TruncatedState,
  encodeConfState,
  encodeEntry,
  encodeHardState,
  encodeSnapshotMeta,
  encodeTruncatedState,
} from './codec.js';
import { META_SUFFIX, entryKey, metaKey } from './keys.js';

/**
 * Builds the snapshot raft should send, for snapshot metadata whose data the
 * store does not hold (after a restart, or when the host recorded metadata
 * only). Returns undefined if none can be built now; raft then retries later.
 */
export type SnapshotSource = (meta: SnapshotMeta) => Snapshot | undefined;

/** A span of entry indexes [lo, hi] whose engine keys are to be deleted. */
export interface IndexSpan {
  readonly lo: number;
  readonly hi: number;
}

/** Everything a group's state is made of; what startup recovers per group. */
export interface GroupState {
  readonly hardState: HardState;
  readonly confState: ConfState;
  readonly snapshotMeta: SnapshotMeta;
  readonly truncated: TruncatedState;
  /** Retained entries, contiguous from truncated.index + 1. */
  readonly entries: Entry[];
}

const EMPTY_DATA = new Uint8Array(0);


/** One group's raft log, hard state, conf state and snapshot metadata. Raft reads; the LogStore writes. */
export class GroupLog implements Storage {
  private hs: HardState;
  private cs: ConfState;
  private snapMeta: SnapshotMeta;
  /** The last snapshot handed to the store with its data, if any and not superseded. */
  private snap: Snapshot | undefined;
  private truncated: TruncatedState;
  /** ents[i] has index truncated.index + 1 + i. */
  private ents: Entry[];
  private bytes: number;
  private source: SnapshotSource | undefined;

  /** @internal Built by the LogStore only (createGroup, open). */
  constructor(
    readonly groupId: number,
    state: GroupState,
  ) {
    this.hs = state.hardState;
    this.cs = state.confState;
    this.snapMeta = state.snapshotMeta;
    this.snap = undefined;
    this.truncated = state.truncated;
    this.ents = state.entries;
    this.bytes = 0;
    for (const e of this.ents) this.bytes += entrySize(e);
  }

  // ---- Storage (read by the raft core) ----

  /** The persisted hard state and the current conf state. */
  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hs, confState: this.cs };
  }

  /** Entries in [lo, hi), at least one if any, at most `maxBytes` in total after the first. */
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.truncated.index;
    if (lo <= offset) throw new StorageCompactedError(lo, offset + 1);
    if (hi > this.lastIndex() + 1) throw new StorageUnavailableError(hi - 1, this.lastIndex());
    if (lo > hi) throw new RaftInvariantError(`entries: lo ${lo} > hi ${hi}`);
    if (lo === hi) return [];
    return limitSize(this.ents.slice(lo - offset - 1, hi - offset - 1), maxBytes);
  }

  /** Term of the entry at `index`, for truncated index .. lastIndex(). */
  term(index: number): number {
    const offset = this.truncated.index;
    if (index < offset) throw new StorageCompactedError(index, offset + 1);
    if (index === offset) return this.truncated.term;
    const e = this.ents[index - offset - 1];
    if (e === undefined) throw new StorageUnavailableError(index, this.lastIndex());
    return e.term;
  }

  /** The first retained index (truncated index + 1). */
  firstIndex(): number {
    return this.truncated.index + 1;
  }

  /** The last index in the log (the truncated index if no entry is retained). */
  lastIndex(): number {
    return this.truncated.index + this.ents.length;
  }

  /**
   * The latest snapshot: the one last handed to the store with its data (a
   * received snapshot, or createSnapshot with data), else one built by the
   * snapshot source for the recorded metadata. A group that never had a
   * snapshot answers the empty snapshot at index 0. Throws
   * SnapshotTemporarilyUnavailableError when the data cannot be had now.
   */
  snapshot(): Snapshot {
    if (this.snap !== undefined) return this.snap;
    if (this.snapMeta.index === 0) return { meta: this.snapMeta, data: EMPTY_DATA };
    const built = this.source?.(this.snapMeta);
    if (built === undefined) throw new SnapshotTemporarilyUnavailableError();
    return built;
  }

  // ---- for the host ----

  /** The last hard state handed to the store. */
  get hardState(): HardState {
    return this.hs;
  }

  /** The current conf state (what initialState() answers). */
  get confState(): ConfState {
    return this.cs;
  }

  /** Metadata of the latest snapshot recorded or installed (index 0 if none). */
  get snapshotMeta(): SnapshotMeta {
    return this.snapMeta;
  }

  /** Index and term of the last compacted entry (the log's snapshot point). */
  get truncatedState(): TruncatedState {
    return this.truncated;
  }

  /** Number of entries held in memory (and in the engine) above the truncated index. */
  get retainedEntries(): number {
    return this.ents.length;
  }

  /** Bytes of the retained entries as raft counts them (payload + per-entry overhead). */
  get retainedBytes(): number {
    return this.bytes;
  }

  /** Sets (or clears) the function that builds snapshots for recorded metadata. */
  setSnapshotSource(source: SnapshotSource | undefined): void {
    this.source = source;
  }

  // ---- mutators, called by the LogStore after it validated the change ----

  /** @internal Replaces the log with a received snapshot; returns the entry span to garbage-collect. */
  installSnapshot(snap: Snapshot, ops: BatchOp[]): IndexSpan | undefined {
    const at = snap.meta.index;
    const first = this.firstIndex();
    const last = this.lastIndex();
    // Entries above the snapshot are deleted in this batch: later appends may reuse their keys,
    // and a lazily collected delete must never land after such a put.
    for (let i = Math.max(at + 1, first); i <= last; i++) ops.push({ type: 'del', key: entryKey(this.groupId, i) });
    const meta: SnapshotMeta = { index: at, term: snap.meta.term, confState: cloneConfState(snap.meta.confState) };
    this.snap = snap;
    this.snapMeta = meta;
    this.cs = meta.confState;
    this.truncated = { index: at, term: meta.term };
    this.ents = [];
    this.bytes = 0;
    if (this.hs.commit < at) this.hs = { ...this.hs, commit: at };
    ops.push({ type: 'put', key: metaKey(this.groupId, META_SUFFIX.snapshotMeta), value: encodeSnapshotMeta(meta) });
    ops.push({ type: 'put', key: metaKey(this.groupId, META_SUFFIX.confState), value: encodeConfState(meta.confState) });
    ops.push({ type: 'put', key: metaKey(this.groupId, META_SUFFIX.truncatedState), value: encodeTruncatedState(this.truncated) });
    ops.push({ type: 'put', key: metaKey(this.groupId, META_SUFFIX.hardState), value: encodeHardState(this.hs) });
    const hi = Math.min(last, at);
    return first <= hi ? { lo: first, hi } : undefined;
  }

  /**
   * @internal Appends validated, contiguous entries, dropping the conflicting
   * suffix; entries at or below the truncated index are ignored.
   */
  appendEntries(entries: readonly Entry[], ops: BatchOp[]): number {
    if (entries.length === 0) return 0;
    const first = this.firstIndex();
    const last = this.lastIndex();
    const lastNew = entries[entries.length - 1]!.index;
    if (lastNew < first) return 0;
    const skip = Math.max(0, first - entries[0]!.index);
    const start = entries[0]!.index + skip;
    if (start > last + 1) throw new RaftInvariantError(`log store append: gap (last ${last}, appending ${start})`);
    // Keys start..lastNew are overwritten by the puts; only the tail beyond lastNew needs deletes.
    for (let i = lastNew + 1; i <= last; i++) ops.push({ type: 'del', key: entryKey(this.groupId, i) });
    const keep = start - first;
    for (let i = keep; i < this.ents.length; i++) this.bytes -= entrySize(this.ents[i]!);
    this.ents.length = keep;
    for (let i = skip; i < entries.length; i++) {
      const e = entries[i]!;
      this.ents.push(e);
      this.bytes += entrySize(e);
      ops.push({ type: 'put', key: entryKey(this.groupId, e.index), value: encodeEntry(e) });
    }
    return entries.length - skip;
  }

  /** @internal Records a hard state. */
  setHardState(hs: HardState, ops: BatchOp[]): void {
    this.hs = { term: hs.term, vote: hs.vote, commit: hs.commit };
    ops.push({ type: 'put', key: metaKey(this.groupId, META_SUFFIX.hardState), value: encodeHardState(this.hs) });
  }

  /** @internal Records the current conf state. */
  setConfState(cs: ConfState, ops: BatchOp[]): void {
    this.cs = cloneConfState(cs);
    ops.push({ type: 'put', key: metaKey(this.groupId, META_SUFFIX.confState), value: encodeConfState(this.cs) });
  }

  /**
   * @internal Records a state-machine snapshot at `index` (validated: in the
   * log, above the previous snapshot). Keeps the Snapshot object only when
   * `data` is given; the conf state becomes the snapshot's, as in MemoryStorage.
   */
  recordSnapshot(index: number, cs: ConfState | undefined, data: Uint8Array | undefined, ops: BatchOp[]): Snapshot {
    const meta: SnapshotMeta = { index, term: this.term(index), confState: cloneConfState(cs ?? this.snapMeta.confState) };
    const snap: Snapshot = { meta, data: data ?? EMPTY_DATA };
    this.snapMeta = meta;
    this.snap = data === undefined ? undefined : snap;
    ops.push({ type: 'put', key: metaKey(this.groupId, META_SUFFIX.snapshotMeta), value: encodeSnapshotMeta(meta) });
    this.setConfState(meta.confState, ops);
    return snap;
  }

  /** @internal Drops entries up to and including `index` (validated); returns the span to garbage-collect. */
  compactTo(index: number, ops: BatchOp[]): IndexSpan {
    const first = this.firstIndex();
    const term = this.term(index);
    const drop = index - this.truncated.index;
    for (let i = 0; i < drop; i++) this.bytes -= entrySize(this.ents[i]!);
    this.ents = this.ents.slice(drop);
    this.truncated = { index, term };
    ops.push({ type: 'put', key: metaKey(this.groupId, META_SUFFIX.truncatedState), value: encodeTruncatedState(this.truncated) });
    return { lo: first, hi: index };
  }
}
