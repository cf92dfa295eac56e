/**
 * The raft core's data types and contracts, in the model of etcd-io/raft.
 *
 * The core is a pure, deterministic state machine: the host feeds it ticks,
 * messages and proposals and receives a `Ready` describing what to persist,
 * send and apply. No clock, timer, socket, disk or global random source is
 * used inside `src/group/raft/`.
 *
 * Integer rule: terms, indexes and node ids are JavaScript numbers that are
 * always safe integers (checked wherever they are decoded from bytes).
 */

/** A raft peer. 0 means "none". */
export type NodeId = number;
export const NONE: NodeId = 0;

export type EntryType = 'normal' | 'confChange';

/** One log entry. `data` is opaque to raft (an empty normal entry is a leader's no-op). */
export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** What must be durable before any message that depends on it leaves the node. */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

/**
 * Membership. With joint consensus, `votersOutgoing` is non-empty while a
 * joint configuration is in effect; `learnersNext` are voters of the outgoing
 * config that become learners when the joint config is left.
 */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  readonly votersOutgoing: readonly NodeId[];
  readonly learnersNext: readonly NodeId[];
  readonly autoLeave: boolean;
}

export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
}

/** A state-machine snapshot as raft sees it: metadata plus opaque bytes. */
export interface Snapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

export type ConfChangeType = 'addNode' | 'addLearner' | 'removeNode';

export interface ConfChangeSingle {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
}

/**
 * A membership change. One change may be applied directly; several changes
 * (or `transition: 'joint'`) go through a joint configuration. An empty
 * `changes` list with a joint config in effect means "leave joint".
 */
export interface ConfChange {
  readonly changes: readonly ConfChangeSingle[];
  readonly transition: 'auto' | 'joint' | 'jointExplicit';
  readonly context?: Uint8Array;
}

export type MessageType =
  | 'hup' // local: start an election
  | 'beat' // local: leader sends heartbeats
  | 'prop' // proposal (local or forwarded to the leader)
  | 'app' // append entries
  | 'appResp'
  | 'vote'
  | 'voteResp'
  | 'preVote'
  | 'preVoteResp'
  | 'snap' // install snapshot
  | 'heartbeat'
  | 'heartbeatResp'
  | 'unreachable' // local: transport reports a peer unreachable
  | 'snapStatus' // local: transport reports a snapshot's outcome
  | 'checkQuorum' // local
  | 'transferLeader'
  | 'timeoutNow'
  | 'readIndex'
  | 'readIndexResp';

/** A raft message. Fields not used by a type are left at their zero values. */
export interface Message {
  readonly type: MessageType;
  readonly to: NodeId;
  readonly from: NodeId;
  readonly term: number;
  /** Term of the entry at `index` (append, vote), or the rejection's hint term. */
  readonly logTerm: number;
  readonly index: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
  readonly snapshot?: Snapshot;
  readonly reject: boolean;
  readonly rejectHint: number;
  /** ReadIndex request context, echoed in heartbeats and responses. */
  readonly context?: Uint8Array;
}

export type StateRole = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** Volatile state the host may want to observe (leader changes, metrics). */
export interface SoftState {
  readonly leader: NodeId;
  readonly role: StateRole;
}

/** A linearizable read that may be served once `index` has been applied. */
export interface ReadState {
  readonly index: number;
  readonly requestCtx: Uint8Array;
}

/**
 * What the host must do, in order, after `ready()`:
 * 0. it may send `earlyMessages` at once (or with `messages`, later);
 * 1. persist `hardState`, `entries` (appending, truncating any conflicting
 *    suffix) and `snapshot`, fsyncing if `mustSync`;
 * 2. only then send `messages`;
 * 3. apply `snapshot` (if any) and `committedEntries` to the state machine;
 * 4. call `advance(ready)`, which also tells raft the writes are durable.
 * Reads in `readStates` may be served once the applied index reaches them.
 */
export interface Ready {
  readonly softState?: SoftState;
  readonly hardState?: HardState;
  readonly entries: readonly Entry[];
  readonly snapshot?: Snapshot;
  readonly committedEntries: readonly Entry[];
  /**
   * A leader's appends and heartbeats, which may leave before this Ready's
   * writes are durable (raft thesis §10.2.1): the leader counts its own log
   * toward the commit quorum only from `advance`, once the host persisted
   * it. Empty when this Ready changes the term or vote (those must be
   * durable before anything of the new term leaves). docs/raft.md.
   */
  readonly earlyMessages: readonly Message[];
  /** Every other message: sent only once this Ready's writes are durable. */
  readonly messages: readonly Message[];
  readonly readStates: readonly ReadState[];
  readonly mustSync: boolean;
}

/**
 * Read-only log access for raft. The host owns writes (it appends what
 * `Ready` says). Methods throw `StorageCompactedError` (below the first
 * retained index) or `StorageUnavailableError` (beyond the last) — both
 * `RaftStorageError`s, see errors.ts — for indexes outside the retained log.
 */
export interface Storage {
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries in [lo, hi), at least one if any, at most `maxBytes` total after the first. */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** Term of the entry at `index`; valid for firstIndex()-1 .. lastIndex(). */
  term(index: number): number;
  firstIndex(): number;
  lastIndex(): number;
  /** The most recent snapshot; may throw `snapshotTemporarilyUnavailable`. */
  snapshot(): Snapshot;
}

/** The injected random source (seeded in tests and the simulator). */
export interface RandomSource {
  /** A uniformly distributed integer in [0, n). */
  intn(n: number): number;
}
