/**
 * RawNode: the host-facing API of the raft core (etcd-io/raft's RawNode
 * shape). Synchronous and single-threaded: one event loop drives many
 * RawNodes. The host loop is:
 *
 *   tick()/step()/propose() ... ; if (hasReady()) { rd = ready();
 *   send rd.earlyMessages (may overlap the write);
 *   persist rd.hardState + rd.entries + rd.snapshot; send rd.messages;
 *   apply rd.snapshot + rd.committedEntries (applyConfChange for conf changes);
 *   advance(rd) }
 */
import type { ConfChange, ConfState, Entry, HardState, Message, NodeId, Ready, Snapshot, SoftState, StateRole, Storage } from './types.js';
import { NONE } from './types.js';
import { Raft, type RaftDropCounters, type RaftReadCounters } from './raft.js';
import { resolveConfig, type RaftConfig } from './config.js';
import type { ProgressState } from './progress.js';
import { encodeConfChange } from './confchange.js';
import { RaftInvariantError, StepLocalMessageError, invariant } from './errors.js';
import { hardStateEqual, isLocalMessage, isResponseMessage, makeMessage, payloadSize } from './util.js';

/** The leader's view of one peer, as reported by status(). */
export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: ProgressState;
  readonly isLearner: boolean;
  readonly recentActive: boolean;
  readonly paused: boolean;
  readonly inflight: number;
  readonly pendingSnapshot: number;
}

/** A snapshot of the node's state for the host, metrics and tests. */
export interface RaftStatus {
  readonly id: NodeId;
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly lead: NodeId;
  readonly role: StateRole;
  readonly leadTransferee: NodeId;
  /** Leader only: every tracked peer (including itself). */
  readonly progress?: ReadonlyMap<NodeId, ProgressStatus>;
  readonly config: ConfState;
  readonly lastIndex: number;
  readonly firstIndex: number;
  /** Payload bytes of the leader's uncommitted tail. */
  readonly uncommittedSize: number;
  readonly drops: Readonly<RaftDropCounters>;
}

/**
 * The scalar part of {@link RaftStatus}: what request paths read per call
 * (a response header's term, a proposal's role and last index), without
 * copying the configuration, counters and every peer's progress.
 */
export interface BasicRaftStatus {
  readonly term: number;
  readonly commit: number;
  readonly lead: NodeId;
  readonly role: StateRole;
  readonly lastIndex: number;
}

/** The raft core as the host drives it. See the module comment for the loop. */
export class RawNode {
  private readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  /** A Ready was handed out and not yet advanced (Readys must be handled one at a time, in order). */
  private outstanding: Ready | undefined = undefined;

  constructor(config: RaftConfig, storage: Storage) {
    this.raft = new Raft(resolveConfig(config), storage);
    this.prevSoft = this.raft.softState();
    this.prevHard = this.raft.hardState();
  }

  /** Advances logical time by one tick (elections, heartbeats, check-quorum). */
  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (no-op for a leader, a learner, or with unapplied conf changes). */
  campaign(): void {
    this.raft.step(makeMessage('hup', this.raft.id, NONE, {}), true);
  }

  /**
   * Proposes `data` for the log. Throws ProposalDroppedError (with reason)
   * if it is certain not to be appended; acceptance is not commitment.
   */
  propose(data: Uint8Array): void {
    this.raft.proposeLocal('normal', data);
  }

  /**
   * Proposes a membership change. Throws ConfChangePendingError while a
   * previous change is unapplied (leader only; followers forward), and
   * ConfChangeInvalidError for a change that could never apply.
   */
  proposeConfChange(cc: ConfChange): void {
    this.raft.proposeLocal('confChange', encodeConfChange(cc));
  }

  /** Applies a committed conf change (call for every confChange entry, when applying it). */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /** Feeds a message from a peer. Local-only types throw StepLocalMessageError. */
  step(m: Message): void {
    if (isLocalMessage(m.type)) throw new StepLocalMessageError(m.type);
    // Responses from peers we don't track (removed, or never known) carry nothing we can use.
    if (isResponseMessage(m.type) && !this.raft.trk.progress.has(m.from)) return;
    this.raft.step(m, false);
  }

  /**
   * Requests a linearizable read point. The answer arrives as a ReadState
   * with the same ctx in a later Ready; the read may be served once the
   * applied index reaches ReadState.index. ctx must be unique per request.
   */
  readIndex(ctx: Uint8Array): void {
    this.raft.step(makeMessage('readIndex', NONE, NONE, { context: ctx }), true);
  }

  /**
   * A read point usable at once, without a Ready round: the leader's commit index when it is
   * the only voter or (with `leaseBased`) holds a valid lease, and has committed an entry of its
   * term. Undefined otherwise: use readIndex(). Serve the read once applied reaches it.
   */
  leaseReadIndex(): number | undefined {
    return this.raft.leaseReadIndex();
  }

  /**
   * Ends the leader lease (leaseBased reads): only heartbeats sent after the next tick can form
   * a new one. Call when ticks stop tracking real time (a quiesced leader is not ticked; a host
   * that fell behind drops ticks), since the lease is measured in ticks.
   */
  forfeitLease(): void {
    this.raft.forfeitLease();
  }

  /** How this node confirmed read points as leader (live counters; never reset). */
  get readCounters(): Readonly<RaftReadCounters> {
    return this.raft.reads;
  }

  /** Asks the leader to hand leadership to `to` (forwarded if we are a follower). */
  transferLeader(to: NodeId): void {
    this.raft.step(makeMessage('transferLeader', to, NONE, {}), true);
  }

  /** The transport failed to deliver to `id`: stop pipelining appends to it. */
  reportUnreachable(id: NodeId): void {
    this.raft.step(makeMessage('unreachable', id, NONE, {}), true);
  }

  /** Outcome of sending a snapshot to `id` (call after every 'snap' message). */
  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.step(makeMessage('snapStatus', id, NONE, { reject: !ok }), true);
  }

  /** Is there anything to persist, send or apply? */
  hasReady(): boolean {
    const r = this.raft;
    if (r.hasPendingAppends()) return true;
    const soft = r.softState();
    if (soft.leader !== this.prevSoft.leader || soft.role !== this.prevSoft.role) return true;
    if (r.term !== this.prevHard.term || r.vote !== this.prevHard.vote || r.log.committed !== this.prevHard.commit) {
      return true;
    }
    if (r.log.unstable.snapshot !== undefined) return true;
    if (r.msgs.length > 0 || r.readStates.length > 0) return true;
    if (r.log.unstable.entries.length > 0) return true;
    return r.log.hasNextCommittedEnts();
  }

  /**
   * What to persist, send and apply now. Must be followed by advance(rd)
   * before the next ready().
   */
  ready(): Ready {
    if (this.outstanding !== undefined) {
      throw new RaftInvariantError('ready() called again before advance() of the previous Ready');
    }
    const r = this.raft;
    r.flushPendingAppends();
    const entries = r.log.unstableEntries();
    const committedEntries = r.log.nextCommittedEnts();
    const hard = r.hardState();
    const { early, late } = splitEarly(r.msgs, hard.term === this.prevHard.term && hard.vote === this.prevHard.vote);
    r.msgs = [];
    const readStates = r.readStates;
    r.readStates = [];
    const soft = r.softState();
    const hardChanged = !hardStateEqual(hard, this.prevHard);
    const rd: {
      softState?: SoftState; hardState?: HardState; entries: Entry[]; snapshot?: Snapshot;
      committedEntries: Entry[]; earlyMessages: Message[]; messages: Message[]; readStates: Ready['readStates']; mustSync: boolean;
    } = {
      entries,
      committedEntries,
      earlyMessages: early,
      messages: late,
      readStates,
      mustSync: entries.length > 0 || hard.term !== this.prevHard.term || hard.vote !== this.prevHard.vote,
    };
    if (soft.leader !== this.prevSoft.leader || soft.role !== this.prevSoft.role) rd.softState = soft;
    if (hardChanged) rd.hardState = hard;
    const snap = r.log.unstable.snapshot;
    if (snap !== undefined) {
      rd.snapshot = snap;
      rd.mustSync = true;
    }
    this.prevSoft = soft;
    this.prevHard = hard;
    const lastCommitted = committedEntries[committedEntries.length - 1];
    if (lastCommitted !== undefined) r.log.acceptApplying(lastCommitted.index);
    this.outstanding = rd;
    return rd;
  }

  /**
   * The host has persisted, sent and applied `rd`. Marks its entries stable
   * (a leader now counts them toward the commit quorum) and its committed
   * entries applied.
   */
  advance(rd: Ready): void {
    invariant(this.outstanding === rd, 'advance() must be given the Ready returned by the last ready()');
    this.outstanding = undefined;
    const r = this.raft;
    const lastEnt = rd.entries[rd.entries.length - 1];
    if (lastEnt !== undefined) r.log.stableTo(lastEnt.index, lastEnt.term);
    if (rd.snapshot !== undefined) r.log.stableSnapTo(rd.snapshot.meta.index);
    r.ackPersisted();
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    const newApplied = lastCommitted !== undefined ? lastCommitted.index : (rd.snapshot?.meta.index ?? 0);
    if (newApplied > 0) {
      r.log.appliedTo(newApplied);
      r.maybeAutoLeave();
    }
    if (rd.committedEntries.length > 0) r.reduceUncommittedSize(payloadSize(rd.committedEntries));
  }

  /** The node's current state (progress only on the leader). */
  /** Term, commit, leader, role and last index: {@link status} without its copies. */
  basicStatus(): BasicRaftStatus {
    const r = this.raft;
    return { term: r.term, commit: r.log.committed, lead: r.lead, role: r.state, lastIndex: r.log.lastIndex() };
  }

  status(): RaftStatus {
    const r = this.raft;
    const base = {
      id: r.id,
      term: r.term,
      vote: r.vote,
      commit: r.log.committed,
      applied: r.log.applied,
      lead: r.lead,
      role: r.state,
      leadTransferee: r.leadTransferee,
      config: r.trk.confState(),
      lastIndex: r.log.lastIndex(),
      firstIndex: r.log.firstIndex(),
      uncommittedSize: r.uncommittedSize,
      drops: { ...r.drops },
    };
    if (r.state !== 'leader') return base;
    const progress = new Map<NodeId, ProgressStatus>();
    for (const id of r.trk.ids()) {
      const pr = r.trk.progress.get(id)!;
      progress.set(id, {
        match: pr.match,
        next: pr.next,
        state: pr.state,
        isLearner: pr.isLearner,
        recentActive: pr.recentActive,
        paused: pr.isPaused(),
        inflight: pr.inflights.count(),
        pendingSnapshot: pr.pendingSnapshot,
      });
    }
    return { ...base, progress };
  }
}

/**
 * Splits a Ready's messages: a leader's appends and heartbeats may leave
 * before the Ready is persisted, unless the Ready changes the term or vote
 * (`termDurable` false): a message of a term must never leave before that
 * term (and our vote in it) is durable.
 */
function splitEarly(msgs: Message[], termDurable: boolean): { early: Message[]; late: Message[] } {
  if (!termDurable) return { early: [], late: msgs };
  const early: Message[] = [];
  const late: Message[] = [];
  for (const m of msgs) (m.type === 'app' || m.type === 'heartbeat' ? early : late).push(m);
  return { early, late };
}

/** The empty conf change, which leaves a joint configuration. */
export const LEAVE_JOINT: ConfChange = Object.freeze({ changes: [], transition: 'auto' as const });
