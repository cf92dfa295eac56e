import type {
  BasicRaftStatus,
  ConfChange,
  ConfState,
  Entry,
  NodeId,
  RaftStatus,
  ReadState,
  Snapshot,
  SoftState,
} from '../raft/index.js';

/**
 * The contract between the multi-raft host and one group's replicated state
 * machine (a range replica, or later the placement driver's state).
 *
 * The host owns the RawNode, the log store and the transport; it calls these
 * methods from its driving loop, one group at a time and never concurrently for
 * the same group. Everything the state machine writes for an entry (its effects
 * and the new applied index) goes into one engine batch, so a restart neither
 * re-applies nor skips an entry.
 */
export interface GroupStateMachine {
  /** The index of the last applied entry, as durable in the state machine's engine. */
  appliedIndex(): number;

  /**
   * Applies committed entries in log order (normal and conf-change entries;
   * for a conf-change entry the host has already called raft's
   * applyConfChange and passes the resulting ConfState). Resolves once the
   * effects and the applied index are written. Must not read a clock: time
   * decisions were made by the proposer and travel in the entry.
   *
   * `onApplied(index)`, when given, should be called as soon as the entries
   * up to `index` are applied and durable, before their proposers are
   * answered: the host releases this node's proposal window (backpressure)
   * on it. A state machine that never calls it has its proposals released
   * only when the whole batch is applied, so answered proposers could be
   * refused with TooManyRequestsError while a long batch is still applying.
   */
  applyEntries(entries: readonly AppliedEntry[], onApplied?: (index: number) => void): Promise<void>;

  /** A point-in-time image of the state at its applied index, for a lagging or new replica. */
  buildSnapshot(): Promise<StateMachineSnapshot>;

  /**
   * Makes everything applied so far durable and resolves with that applied
   * index, without building an image: all that log truncation needs (the log
   * up to that index may go). Optional; without it the host builds a full
   * image to learn the index, which costs a scan of the whole state.
   */
  persistApplied?(): Promise<number>;

  /** Replaces the whole state with a received snapshot (raft metadata included). */
  installSnapshot(snapshot: Snapshot): Promise<void>;

  /** Linearizable reads whose ReadIndex is confirmed; serve each once applied >= index. */
  onReadStates?(readStates: readonly ReadState[]): void;

  /** Leadership or role changed (fail pending proposals, reject leases, ...). */
  onSoftState?(softState: SoftState): void;
}

/** A committed entry handed to the state machine. */
export interface AppliedEntry {
  readonly entry: Entry;
  /** Set for conf-change entries: the membership after the change. */
  readonly confState?: ConfState;
}

/** The state machine's part of a raft snapshot. */
export interface StateMachineSnapshot {
  /** The applied index the image corresponds to. */
  readonly index: number;
  /** The image, opaque to raft. */
  readonly data: Uint8Array;
}

/**
 * What a state machine may ask of its group, given to it by the host when the
 * group is registered. Calls only queue work; results arrive through the
 * GroupStateMachine callbacks (applyEntries, onReadStates) in later loop turns.
 */
export interface GroupHandle {
  /** The group's id on this node. */
  readonly groupId: number;
  /** This replica's raft id. */
  readonly replicaId: number;
  /** Proposes a command; throws ProposalDroppedError or a too-many-requests error. */
  propose(data: Uint8Array): void;
  /** Proposes a membership change; throws ConfChangePendingError while one is pending. */
  proposeConfChange(cc: ConfChange): void;
  /** Requests a linearizable read point; answered via onReadStates with the same ctx. */
  readIndex(ctx: Uint8Array): void;
  /**
   * A read point usable at once, without a round trip: the commit index when this replica leads
   * and holds a valid leader lease (or is the only voter); undefined otherwise (use readIndex).
   * A read must wait until the applied index reaches it.
   */
  leaseReadIndex(): number | undefined;
  /** Asks the leader to hand leadership to `to`. */
  transferLeader(to: NodeId): void;
  /** Raft's view of the group (term, leader, role, commit, applied, progress). */
  status(): RaftStatus;
  /** Term, commit, leader, role and last index, without status()'s copies (for per-request use). */
  basicStatus(): BasicRaftStatus;
}
