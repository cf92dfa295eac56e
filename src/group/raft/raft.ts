/**
 * Raft: the consensus state machine of one group member (raft paper +
 * thesis: pre-vote, check-quorum, ReadIndex, leadership transfer, joint
 * consensus). Pure and deterministic: input is ticks, messages and
 * proposals; output is the `msgs` / `readStates` queues and the log, which
 * RawNode packages into a Ready.
 *
 * Messages queued in `msgs` may only leave the node after the host has
 * persisted the Ready they come in (hard state + entries): that is what
 * makes it safe to, e.g., count our own vote before it is on disk. The
 * exception is a leader's appends and heartbeats of a durable term, which
 * may leave at once (RawNode's `earlyMessages`, raft thesis §10.2.1); so a
 * leader with peers counts its own entries toward the commit quorum only
 * once they are persisted (`ackPersisted`, called from advance).
 */
import type {
  ConfChange, ConfState, Entry, HardState, Message, MessageType, NodeId, ReadState, SoftState, Snapshot, StateRole, Storage,
} from './types.js';
import { NONE } from './types.js';
import type { ResolvedRaftConfig } from './config.js';
import { RaftLog } from './log.js';
import { ProgressTracker, isJoint } from './tracker.js';
import { Changer, decodeConfChange, isLeaveJoint, restoreConfig } from './confchange.js';
import { ReadOnly, READ_INDEX_QUEUE_MAX } from './read-only.js';
import {
  ConfChangeInvalidError, ConfChangePendingError, ProposalDroppedError, type ProposalDropReason,
  RaftInvariantError, SnapshotTemporarilyUnavailableError, StorageCompactedError, StorageUnavailableError, invariant,
} from './errors.js';
import {
  ENTRY_OVERHEAD_BYTES, EMPTY_BYTES, bytesEqual, makeAppend, makeAppendResp, makeMessage, payloadSize, type MessageFields,
} from './util.js';

type CampaignType = 'preElection' | 'election' | 'transfer';

/** Context marking a vote request caused by a leadership transfer (bypasses leases). */
export const CAMPAIGN_TRANSFER_CTX: Uint8Array = new Uint8Array([
  0x43, 0x61, 0x6d, 0x70, 0x61, 0x69, 0x67, 0x6e, 0x54, 0x72, 0x61, 0x6e, 0x73, 0x66, 0x65, 0x72, // "CampaignTransfer"
]);

/** Counters of things dropped that are not the local caller's error (for metrics and tests). */
export interface RaftDropCounters {
  /** Proposals forwarded by another node and dropped here. */
  forwardedProposals: number;
  /** ReadIndex requests forwarded by another node and dropped here. */
  forwardedReadIndex: number;
  /** ReadIndex requests discarded because this node stopped being leader before confirming them. */
  readIndexOnLeadershipLoss: number;
}

/** How this node, as leader, confirmed read points (for metrics and tests). */
export interface RaftReadCounters {
  /** From a valid leader lease, without a heartbeat round. */
  lease: number;
  /** By a heartbeat round a quorum acknowledged (ReadIndex, the safe path). */
  heartbeatQuorum: number;
  /** At once, as the only voter. */
  singleVoter: number;
}

export class Raft {
  readonly id: NodeId;
  readonly cfg: ResolvedRaftConfig;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  state: StateRole = 'follower';
  isLearner = false;
  readonly log: RaftLog;
  readonly trk: ProgressTracker;
  msgs: Message[] = [];
  readStates: ReadState[] = [];
  leadTransferee: NodeId = NONE;
  /** Index of the last conf change proposed by this leader (or lastIndex at election). */
  pendingConfIndex = 0;
  /** Payload bytes of this leader's uncommitted tail. */
  uncommittedSize = 0;
  readOnly = new ReadOnly();
  /** ReadIndex requests received before this leader committed an entry of its term. */
  pendingReadIndexMessages: Message[] = [];
  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;
  /**
   * This node's logical clock: 1 + ticks since construction (0 means "never" in stamps). The
   * leader stamps heartbeats with it (`index`), followers echo the stamp, and the lease is
   * measured in it (see leaseValid).
   */
  clock = 1;
  /**
   * This leader sent `timeoutNow` in its term: the transferee may campaign (bypassing leases)
   * whenever that message arrives, even after the transfer was abandoned, so no lease holds
   * until the term ends.
   */
  private leaseForfeited = false;
  /**
   * Acknowledgements of heartbeats stamped below this clock value do not count toward the lease
   * (forfeitLease: the host stops ticking a quiesced leader, or its ticks fell behind real time,
   * so stamps taken before that no longer measure real time).
   */
  private leaseStampFloor = 0;
  /**
   * Lease-based reads: ticks since we last heard from a leader (an append, heartbeat or
   * snapshot). Unlike electionElapsed it is not reset by term changes or vote grants, and
   * unlike `lead` it survives learning a higher term from a stray message (e.g. a delayed
   * response to our own old campaign), so the promise behind a lease we acknowledged can't be
   * dropped early. A node (re)starting with a persisted term starts at 0: it may have
   * acknowledged a heartbeat before a crash. A node at term 0 has acknowledged nothing (acks
   * leave only after the term is durable), so it starts expired.
   */
  private leaderContactElapsed: number;
  /** Entries were appended by proposals and not yet broadcast (batched until the next Ready). */
  private pendingBcast = false;
  readonly drops: RaftDropCounters = { forwardedProposals: 0, forwardedReadIndex: 0, readIndexOnLeadershipLoss: 0 };
  readonly reads: RaftReadCounters = { lease: 0, heartbeatQuorum: 0, singleVoter: 0 };

  constructor(cfg: ResolvedRaftConfig, storage: Storage) {
    this.id = cfg.id;
    this.cfg = cfg;
    this.log = new RaftLog(storage, cfg.maxCommittedSizePerReady);
    this.trk = new ProgressTracker(cfg.maxInflightMsgs);
    const { hardState, confState } = storage.initialState();
    const restored = restoreConfig(confState, this.log.lastIndex(), cfg.maxInflightMsgs);
    this.trk.setConfig(restored.config, restored.progress);
    this.isLearner = this.trk.progress.get(this.id)?.isLearner ?? false;
    if (hardState.term !== 0 || hardState.vote !== NONE || hardState.commit !== 0) this.loadState(hardState);
    if (cfg.applied > this.log.committed) {
      // The state machine is durable past the persisted commit index (commit-only hard states
      // need no fsync, so a crash can lose them): what was applied was committed.
      invariant(cfg.applied <= this.log.lastIndex(), () => `applied ${cfg.applied} beyond last index ${this.log.lastIndex()}`);
      this.log.committed = cfg.applied;
    }
    if (cfg.applied > 0) this.log.appliedTo(cfg.applied);
    this.becomeFollower(this.term, NONE);
    this.leaderContactElapsed = this.term > 0 && !cfg.freshReplica ? 0 : cfg.electionTick;
  }

  private loadState(hs: HardState): void {
    if (hs.commit < this.log.committed || hs.commit > this.log.lastIndex()) {
      throw new RaftInvariantError(`hard state commit ${hs.commit} outside [${this.log.committed}, ${this.log.lastIndex()}]`);
    }
    this.log.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  softState(): SoftState {
    return { leader: this.lead, role: this.state };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  // ---------------------------------------------------------------- sending

  private send(type: MessageType, to: NodeId, f: MessageFields): void {
    invariant(to !== this.id && to !== NONE, () => `message ${type} addressed to ${to}`);
    // Responses to (pre)votes carry the term they answer for; everything else our term.
    this.msgs.push(makeMessage(type, this.id, to, f, f.term ?? this.term));
  }

  /** Re-addresses a message (forwarding a proposal / read / transfer to the leader). */
  private forward(m: Message, to: NodeId): void {
    this.msgs.push({ ...m, to, from: m.from === NONE ? this.id : m.from, term: 0 });
  }

  /**
   * Sends an append (or a snapshot, if the needed entries are compacted) to
   * `to` if flow control allows. With `sendIfEmpty` false, an append without
   * entries is not sent. Returns whether a message was sent.
   */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    let prevTerm: number;
    let ents: Entry[];
    try {
      prevTerm = this.log.term(pr.next - 1);
      // With a full window only an empty append goes out: if every append in flight was lost,
      // its answer (ack or reject) still clears the window, so replication can't stall.
      ents = pr.state === 'replicate' && pr.inflights.full() ? [] : this.log.entriesFrom(pr.next, this.cfg.maxSizePerMsg);
    } catch (e) {
      if (e instanceof StorageCompactedError) return this.maybeSendSnapshot(to);
      throw e;
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    let bytes = 0;
    for (let i = 0; i < ents.length; i++) bytes += ents[i]!.data.byteLength + ENTRY_OVERHEAD_BYTES;
    invariant(to !== this.id, 'append to self');
    this.msgs.push(makeAppend(this.id, to, this.term, pr.next - 1, prevTerm, ents, this.log.committed));
    pr.sentEntries(ents.length, bytes);
    return true;
  }

  private maybeSendSnapshot(to: NodeId): boolean {
    const pr = this.trk.progress.get(to)!;
    // Only to a follower we have heard from: a snapshot is expensive to send into the void.
    if (!pr.recentActive) return false;
    let snap: Snapshot;
    try {
      snap = this.log.snapshot();
    } catch (e) {
      if (e instanceof SnapshotTemporarilyUnavailableError) return false;
      throw e;
    }
    invariant(snap.meta.index > 0, 'need a non-empty snapshot');
    pr.becomeSnapshot(snap.meta.index);
    this.send('snap', to, { snapshot: snap });
    return true;
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  private sendHeartbeat(to: NodeId, ctx: Uint8Array | undefined): void {
    const pr = this.trk.progress.get(to)!;
    // Never tell a follower to commit beyond what it is known to have.
    const commit = Math.min(pr.match, this.log.committed);
    // `index` carries our clock at send (heartbeats use no index otherwise); the follower echoes
    // it, which tells us exactly which heartbeat an ack answers, even when delayed or duplicated.
    const f: MessageFields = { commit, index: this.clock };
    if (ctx !== undefined) f.context = ctx;
    this.send('heartbeat', to, f);
  }

  /** Appends to every follower that can take more. */
  bcastAppend(): void {
    this.pendingBcast = false;
    for (const id of this.trk.ids()) {
      if (id === this.id) continue;
      // Fill the follower's window (proposals are batched until the next Ready).
      if (!this.maybeSendAppend(id, true)) continue;
      while (this.maybeSendAppend(id, false)) {
        // loop
      }
    }
  }

  private bcastHeartbeat(ctx: Uint8Array | undefined): void {
    for (const id of this.trk.ids()) if (id !== this.id) this.sendHeartbeat(id, ctx);
  }

  /** Sends the appends batched since the last Ready (called by RawNode before building a Ready). */
  flushPendingAppends(): void {
    if (this.pendingBcast) {
      if (this.state === 'leader') this.bcastAppend();
      this.pendingBcast = false;
    }
  }

  hasPendingAppends(): boolean {
    return this.pendingBcast && this.state === 'leader';
  }

  // ------------------------------------------------------------ transitions

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.trk.resetVotes();
    const last = this.log.lastIndex();
    for (const [id, pr] of this.trk.progress) {
      pr.inflights.reset();
      pr.state = 'probe';
      pr.pendingSnapshot = 0;
      pr.msgAppFlowPaused = false;
      pr.recentActive = false;
      pr.leaseAckStamp = 0;
      // Our own match is what is on our disk: entries still in flight count once persisted.
      pr.match = id === this.id ? this.log.persistedLastIndex() : 0;
      pr.next = last + 1;
    }
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.pendingBcast = false;
    this.leaseForfeited = false;
    if (this.readOnly.size() > 0 || this.pendingReadIndexMessages.length > 0) {
      this.drops.readIndexOnLeadershipLoss += this.readOnly.size() + this.pendingReadIndexMessages.length;
    }
    this.readOnly = new ReadOnly();
    this.pendingReadIndexMessages = [];
  }

  private resetRandomizedElectionTimeout(): void {
    const n = this.cfg.electionTick;
    const jitter = this.cfg.random.intn(n);
    invariant(Number.isInteger(jitter) && jitter >= 0 && jitter < n, () => `RandomSource.intn(${n}) returned ${jitter}`);
    this.randomizedElectionTimeout = n + jitter;
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.state = 'follower';
  }

  private becomeCandidate(): void {
    invariant(this.state !== 'leader', 'leader cannot become candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = 'candidate';
  }

  private becomePreCandidate(): void {
    invariant(this.state !== 'leader', 'leader cannot become pre-candidate');
    // A pre-candidate changes neither term nor vote: that is the point of pre-vote.
    this.trk.resetVotes();
    this.lead = NONE;
    this.state = 'preCandidate';
  }

  private becomeLeader(): void {
    invariant(this.state !== 'follower', 'follower cannot become leader directly');
    this.reset(this.term);
    this.lead = this.id;
    this.state = 'leader';
    const self = this.trk.progress.get(this.id);
    if (self !== undefined) {
      self.becomeReplicate();
      self.recentActive = true;
    }
    // Conservatively treat any conf change in the log as pending: we can't know it was applied.
    this.pendingConfIndex = this.log.lastIndex();
    // The no-op entry of our term: committing it commits everything before (raft §5.4.2)
    // and unblocks ReadIndex.
    const ok = this.appendEntries([{ term: 0, index: 0, type: 'normal', data: EMPTY_BYTES }]);
    invariant(ok, 'empty entry refused');
    this.uncommittedSize = 0; // the no-op does not count against the cap
  }

  private promotable(): boolean {
    const pr = this.trk.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && this.log.unstable.snapshot === undefined;
  }

  private pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  // ------------------------------------------------------------------ ticks

  tick(): void {
    this.clock++;
    if (this.leaderContactElapsed < this.cfg.electionTick) this.leaderContactElapsed++; // capped: only `< electionTick` matters
    if (this.state === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0;
      this.hup('election');
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.cfg.electionTick) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum) this.stepCheckQuorum();
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.state === 'leader' && this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.state !== 'leader') return;
    if (this.heartbeatElapsed >= this.cfg.heartbeatTick) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(this.readOnly.lastPendingRequestCtx());
    }
  }

  private stepCheckQuorum(): void {
    if (this.state !== 'leader') return;
    // Deliberately not the lease: check-quorum runs once per election timeout, so a partitioned
    // leader may stay leader for up to two election timeouts (lease reads use leaseValid).
    if (!this.trk.quorumActive(this.id)) {
      this.becomeFollower(this.term, NONE);
      return;
    }
    // Start a fresh interval: peers must show activity again before the next check.
    for (const [id, pr] of this.trk.progress) if (id !== this.id) pr.recentActive = false;
  }

  // -------------------------------------------------------------- elections

  /** Starts an election (hup); refused when not promotable or with unapplied conf changes. */
  hup(t: 'election' | 'transfer'): boolean {
    if (this.state === 'leader') return false;
    if (!this.promotable()) return false;
    if (this.hasUnappliedConfChanges()) return false; // our view of the config may be stale
    this.campaign(t === 'transfer' ? 'transfer' : this.cfg.preVote ? 'preElection' : 'election');
    return true;
  }

  private hasUnappliedConfChanges(): boolean {
    const lo = Math.max(this.log.applied, this.log.firstIndex() - 1) + 1;
    const hi = this.log.committed + 1;
    if (lo >= hi) return false;
    const ents = this.log.slice(lo, hi, Infinity);
    for (const e of ents) if (e.type === 'confChange') return true;
    return false;
  }

  private campaign(t: CampaignType): void {
    let voteType: MessageType;
    let term: number;
    if (t === 'preElection') {
      this.becomePreCandidate();
      voteType = 'preVote';
      term = this.term + 1; // the term we would campaign at; ours is unchanged
    } else {
      this.becomeCandidate();
      voteType = 'vote';
      term = this.term;
    }
    // Our own vote counts at once; it is persisted (hard state) before the requests leave.
    if (this.poll(this.id, true) === 'won') {
      if (t === 'preElection') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.trk.voterIds()) {
      if (id === this.id) continue;
      const f: MessageFields = { term, index: lastIndex, logTerm: lastTerm };
      if (t === 'transfer') f.context = CAMPAIGN_TRANSFER_CTX;
      this.send(voteType, id, f);
    }
  }

  private poll(id: NodeId, granted: boolean): 'won' | 'lost' | 'pending' {
    this.trk.recordVote(id, granted);
    return this.trk.tallyVotes().result;
  }

  // ------------------------------------------------------------------- step

  /**
   * Feeds one message. `local` marks requests from this node's own host
   * (propose, readIndex, transferLeader): only those throw when dropped;
   * drops of forwarded requests are counted in `drops`.
   */
  step(m: Message, local = false): void {
    if (m.term === 0) {
      // local message or a forwarded request: no term checks
    } else if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        const force = m.context !== undefined && bytesEqual(m.context, CAMPAIGN_TRANSFER_CTX);
        const inLease =
          this.cfg.checkQuorum &&
          ((this.lead !== NONE && this.electionElapsed < this.cfg.electionTick) ||
            (this.cfg.readOnlyOption === 'leaseBased' && this.leaderContactElapsed < this.cfg.electionTick));
        // Leader lease: we heard from a live leader recently (with leaseBased: or may have, before
        // a restart or a term change), so a disruptive candidate is ignored. Measured with
        // cfg.electionTick, not the randomized timeout, which is never shorter: lease reads rely
        // on this exact bound (leaseValid).
        if (!force && inLease) return;
      }
      if (m.type === 'preVote') {
        // A pre-vote never changes our term.
      } else if (m.type === 'preVoteResp' && !m.reject) {
        // We bump our term only when a quorum grants the pre-vote.
      } else if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      const answer = this.cfg.checkQuorum || this.cfg.preVote || !this.promotable();
      if (answer && (m.type === 'heartbeat' || m.type === 'app')) {
        // A stale leader (e.g. partitioned, or whose term we inflated by pre-vote-less elections)
        // learns the new term from this and steps down, instead of staying isolated forever.
        // Without checkQuorum/preVote etcd ignores the message, counting on our own campaign to
        // spread the term; but a node that can't campaign (uninitialized, e.g. a just-added voter
        // that granted a vote to a candidate which then died or retired, or a learner) would stay
        // above the leader's term forever, never getting the log (sim seed 50993). So it answers.
        this.send('appResp', m.from, {});
      } else if (m.type === 'preVote') {
        this.send('preVoteResp', m.from, { term: this.term, reject: true });
      }
      return;
    }

    switch (m.type) {
      case 'hup':
        this.hup('election');
        return;
      case 'vote':
      case 'preVote':
        this.handleVoteRequest(m);
        return;
      default:
        break;
    }
    switch (this.state) {
      case 'leader':
        this.stepLeader(m, local);
        return;
      case 'candidate':
      case 'preCandidate':
        this.stepCandidate(m, local);
        return;
      case 'follower':
        this.stepFollower(m, local);
        return;
    }
  }

  private handleVoteRequest(m: Message): void {
    const respType: MessageType = m.type === 'vote' ? 'voteResp' : 'preVoteResp';
    const canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (m.type === 'preVote' && m.term > this.term);
    // Learners answer too: one that has not yet applied its promotion must still be able to vote
    // (the candidate counts only the voters of its config).
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      this.send(respType, m.from, { term: m.term });
      if (m.type === 'vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send(respType, m.from, { term: this.term, reject: true });
    }
  }

  private drop(local: boolean, reason: ProposalDropReason, kind: 'prop' | 'readIndex', detail?: string): void {
    if (local) throw new ProposalDroppedError(reason, detail);
    if (kind === 'prop') this.drops.forwardedProposals++;
    else this.drops.forwardedReadIndex++;
  }

  private stepLeader(m: Message, local: boolean): void {
    switch (m.type) {
      case 'beat':
        this.bcastHeartbeat(this.readOnly.lastPendingRequestCtx());
        return;
      case 'checkQuorum':
        this.stepCheckQuorum();
        return;
      case 'prop':
        this.leaderPropose(m, local);
        return;
      case 'readIndex':
        this.leaderReadIndex(m, local);
        return;
      default:
        break;
    }
    const pr = this.trk.progress.get(m.from);
    if (pr === undefined) return; // not (or no longer) a member
    switch (m.type) {
      case 'appResp':
        this.handleAppendResponse(m);
        return;
      case 'heartbeatResp':
        this.handleHeartbeatResponse(m);
        return;
      case 'snapStatus':
        if (pr.state !== 'snapshot') return;
        if (m.reject) pr.pendingSnapshot = 0; // failed: don't assume the snapshot's index
        pr.becomeProbe();
        // Wait for a heartbeat response before probing, so a slow snapshot isn't chased by appends.
        pr.msgAppFlowPaused = true;
        return;
      case 'unreachable':
        // An append may have been lost: stop pipelining and probe.
        if (pr.state === 'replicate') pr.becomeProbe();
        return;
      case 'transferLeader':
        this.leaderTransfer(m, local);
        return;
      case 'app':
      case 'snap':
      case 'heartbeat':
        // Same term, another leader: impossible under election safety.
        throw new RaftInvariantError(`leader ${this.id} got ${m.type} from ${m.from} at its own term ${this.term}`);
      case 'hup':
      case 'vote':
      case 'voteResp':
      case 'preVote':
      case 'preVoteResp':
      case 'timeoutNow':
      case 'readIndexResp':
        return; // stale or irrelevant to a leader
    }
  }

  /**
   * A proposal from the local host (the hot path: no message object is
   * built when we are the leader). Throws when it is dropped.
   */
  proposeLocal(type: Entry['type'], data: Uint8Array): void {
    if (this.state !== 'leader') {
      const e: Entry = { term: 0, index: 0, type, data };
      this.step(makeMessage('prop', this.id, NONE, { entries: [e] }), true);
      return;
    }
    if (!this.trk.progress.has(this.id)) return this.drop(true, 'removed', 'prop');
    if (this.leadTransferee !== NONE) return this.drop(true, 'transferring', 'prop', `to ${this.leadTransferee}`);
    if (type === 'confChange') {
      const refusal = this.confChangeRefusal(decodeConfChange(data));
      if (refusal !== undefined) throw refusal;
    }
    if (!this.appendOne(type, data)) return this.drop(true, 'uncommittedSizeExceeded', 'prop');
    if (type === 'confChange') this.pendingConfIndex = this.log.lastIndex();
    this.pendingBcast = true;
  }

  private leaderPropose(m: Message, local: boolean): void {
    invariant(m.entries.length > 0, 'proposal without entries');
    if (!this.trk.progress.has(this.id)) return this.drop(local, 'removed', 'prop');
    if (this.leadTransferee !== NONE) return this.drop(local, 'transferring', 'prop', `to ${this.leadTransferee}`);
    for (let i = 0; i < m.entries.length; i++) {
      const e = m.entries[i]!;
      if (e.type !== 'confChange') continue;
      const refusal = this.confChangeRefusal(decodeConfChange(e.data));
      if (refusal !== undefined) {
        if (local) throw refusal;
        this.drops.forwardedProposals++;
        return;
      }
    }
    if (!this.appendEntries(m.entries)) return this.drop(local, 'uncommittedSizeExceeded', 'prop');
    for (let i = 0; i < m.entries.length; i++) {
      if (m.entries[i]!.type === 'confChange') this.pendingConfIndex = this.log.lastIndex() - m.entries.length + 1 + i;
    }
    this.pendingBcast = true;
  }

  /** Why a conf change can't be proposed now, or undefined if it can. */
  private confChangeRefusal(cc: ConfChange): Error | undefined {
    if (this.pendingConfIndex > this.log.applied) return new ConfChangePendingError(this.pendingConfIndex, this.log.applied);
    const joint = isJoint(this.trk.config);
    if (joint && !isLeaveJoint(cc)) return new ConfChangeInvalidError('must leave the joint config first');
    if (!joint && isLeaveJoint(cc)) return new ConfChangeInvalidError('not in a joint config');
    // Dry run: a change that could never apply must not enter the log.
    try {
      new Changer(this.trk.config, this.trk.progress, this.log.lastIndex(), this.cfg.maxInflightMsgs).apply(cc);
    } catch (e) {
      if (e instanceof ConfChangeInvalidError) return e;
      throw e;
    }
    return undefined;
  }

  private leaderReadIndex(m: Message, local: boolean): void {
    if (this.trk.isSingleton()) {
      this.reads.singleVoter++;
      this.answerReadIndex(m, this.log.committed);
      return;
    }
    if (this.readOnly.size() + this.pendingReadIndexMessages.length >= READ_INDEX_QUEUE_MAX) {
      return this.drop(local, 'notLeader', 'readIndex', 'read index queue full');
    }
    if (!this.committedEntryInCurrentTerm()) {
      // Our commit index may lag the previous leader's until we commit in our term.
      this.pendingReadIndexMessages.push(m);
      return;
    }
    this.sendReadIndexResponse(m);
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.log.termOrZero(this.log.committed) === this.term;
  }

  /**
   * Lease-based reads: do we certainly still lead? A quorum acknowledged heartbeats we sent at
   * clock s_q or later (quorumLeaseStamp); each of those followers reset its election timer when
   * the heartbeat arrived (no earlier than its send) and refuses (pre-)votes for electionTick of
   * its ticks after that (the `inLease` rule in step; randomization only lengthens it), and every
   * election quorum includes one of them. So no other leader can exist before s_q +
   * electionTick follower ticks. We stop at s_q + electionTick - leaseDriftMarginTicks of our
   * ticks: the margin covers the tick phase (a message stamped s is created after our tick s,
   * and a read at clock t happens before tick t+1) and the bounded difference in tick rates
   * between nodes (docs/raft.md gives the exact condition). A follower that restarts or learns
   * a higher term forgets the leader: leaderContactElapsed keeps its promise. Only drift beyond the margin (e.g. a paused
   * leader process whose ticks stop) breaks the lease, as it breaks any tick-based lease.
   */
  private leaseValid(): boolean {
    if (this.leadTransferee !== NONE || this.leaseForfeited) return false;
    const s = this.trk.quorumLeaseStamp(this.id, this.clock);
    if (s === Infinity || s <= 0) return false; // no voters, or a quorum never acked
    invariant(s <= this.clock, () => `lease stamp ${s} ahead of clock ${this.clock}`);
    return this.clock < s + this.cfg.electionTick - this.cfg.leaseDriftMarginTicks;
  }

  private sendReadIndexResponse(m: Message): void {
    // Without a valid lease (none confirmed recently enough, or a leadership transfer under
    // way: the transferee's campaign bypasses the followers' leases) a lease-based read falls
    // back to the safe path: confirm leadership with a heartbeat quorum.
    const option = this.cfg.readOnlyOption === 'leaseBased' && this.leaseValid() ? 'leaseBased' : 'safe';
    switch (option) {
      case 'safe': {
        const ctx = m.context ?? EMPTY_BYTES;
        const req = m.context === undefined ? { ...m, context: ctx } : m;
        this.readOnly.addRequest(this.log.committed, req);
        this.readOnly.recvAck(this.id, ctx);
        this.bcastHeartbeat(ctx);
        return;
      }
      case 'leaseBased':
        this.reads.lease++;
        this.answerReadIndex(m, this.log.committed);
        return;
    }
  }

  /** Delivers a confirmed read index to a local caller (readStates) or the forwarding follower. */
  private answerReadIndex(req: Message, index: number): void {
    const ctx = req.context ?? EMPTY_BYTES;
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index, requestCtx: ctx });
    } else {
      this.send('readIndexResp', req.from, { index, context: ctx });
    }
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const msgs = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of msgs) this.sendReadIndexResponse(m);
  }

  private handleAppendResponse(m: Message): void {
    const pr = this.trk.progress.get(m.from)!;
    pr.recentActive = true;
    if (m.reject) {
      // Fast back-off: the follower told us where its log could match (rejectHint) and the
      // term there (logTerm); skip every entry of ours above that term in one step.
      let nextProbeIdx = m.rejectHint;
      if (m.logTerm > 0) nextProbeIdx = this.log.findConflictByTerm(m.rejectHint, m.logTerm)[0];
      if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const oldPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index) && !(pr.match === m.index && pr.state === 'probe')) return;
    switch (pr.state) {
      case 'probe':
        pr.becomeReplicate();
        break;
      case 'snapshot':
        // The follower caught up past the snapshot (or installed it): resume normal replication
        // if the entries it needs next are still in our log.
        if (pr.match + 1 >= this.log.firstIndex()) {
          pr.becomeProbe();
          pr.becomeReplicate();
        }
        break;
      case 'replicate':
        pr.inflights.freeLE(m.index);
        break;
    }
    if (this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastAppend();
    } else if (oldPaused) {
      this.sendAppend(m.from);
    }
    // Fill the window: send more entries as long as flow control allows.
    while (this.maybeSendAppend(m.from, false)) {
      // loop
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  private handleHeartbeatResponse(m: Message): void {
    const pr = this.trk.progress.get(m.from)!;
    pr.recentActive = true;
    pr.msgAppFlowPaused = false;
    // The echoed stamp of the heartbeat this answers (0 from a host that drops it: then the lease
    // never forms and lease reads take the safe path). A stamp from the future can only be
    // corruption: ignore it rather than extend the lease; one below the floor predates a
    // forfeitLease.
    if (m.index > pr.leaseAckStamp && m.index <= this.clock && m.index >= this.leaseStampFloor) pr.leaseAckStamp = m.index;
    if (pr.match < this.log.lastIndex() || pr.state === 'probe') this.sendAppend(m.from);
    if (m.context === undefined) return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (acks === undefined || this.trk.voteResult(acks) !== 'won') return;
    for (const rs of this.readOnly.advance(m.context)) {
      this.reads.heartbeatQuorum++;
      this.answerReadIndex(rs.req, rs.index);
    }
  }

  /**
   * Lease-based reads without a Ready round: the read point a local read may use now (the commit
   * index) if this leader could answer a ReadIndex request at once (only voter, or a valid lease)
   * and has committed an entry of its term; otherwise undefined (use readIndex).
   */
  leaseReadIndex(): number | undefined {
    if (this.state !== 'leader' || !this.committedEntryInCurrentTerm()) return undefined;
    if (this.trk.isSingleton()) {
      this.reads.singleVoter++;
      return this.log.committed;
    }
    if (this.cfg.readOnlyOption !== 'leaseBased' || !this.leaseValid()) return undefined;
    this.reads.lease++;
    return this.log.committed;
  }

  /**
   * Ends the current lease: only heartbeats stamped after this call (at a later clock) count
   * toward a new one. The host calls it when this node's clock stops measuring real time: a
   * quiesced leader is not ticked, and a host whose ticks fell behind drops them.
   */
  forfeitLease(): void {
    this.leaseStampFloor = this.clock + 1;
    for (const pr of this.trk.progress.values()) pr.leaseAckStamp = 0;
  }

  private leaderTransfer(m: Message, local: boolean): void {
    const transferee = m.from;
    const pr = this.trk.progress.get(transferee);
    if (pr === undefined) return;
    if (pr.isLearner) {
      if (local) throw new ConfChangeInvalidError(`cannot transfer leadership to learner ${transferee}`);
      return;
    }
    if (this.leadTransferee !== NONE) {
      if (this.leadTransferee === transferee) return; // already in progress
      this.abortLeaderTransfer();
    }
    if (transferee === this.id) return; // already leader
    // The transfer must finish within an election timeout (tickHeartbeat aborts it).
    this.electionElapsed = 0;
    this.leadTransferee = transferee;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(transferee);
    else this.sendAppend(transferee);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.leaseForfeited = true;
    this.send('timeoutNow', to, {});
  }

  private stepCandidate(m: Message, local: boolean): void {
    const myVoteResp: MessageType = this.state === 'preCandidate' ? 'preVoteResp' : 'voteResp';
    switch (m.type) {
      case 'prop':
        this.drop(local, 'noLeader', 'prop');
        return;
      case 'readIndex':
        this.drop(local, 'noLeader', 'readIndex');
        return;
      case 'transferLeader':
        if (local) throw new ProposalDroppedError('noLeader', 'transfer leader');
        return;
      case 'app':
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case 'heartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case 'snap':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case 'voteResp':
      case 'preVoteResp': {
        if (m.type !== myVoteResp) return;
        const res = this.poll(m.from, !m.reject);
        if (res === 'won') {
          if (this.state === 'preCandidate') {
            this.campaign('election');
          } else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (res === 'lost') {
          // A rejection at a higher term already made us a follower in step().
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      case 'timeoutNow':
      case 'hup':
      case 'beat':
      case 'appResp':
      case 'vote':
      case 'preVote':
      case 'heartbeatResp':
      case 'unreachable':
      case 'snapStatus':
      case 'checkQuorum':
      case 'readIndexResp':
        return;
    }
  }

  private stepFollower(m: Message, local: boolean): void {
    switch (m.type) {
      case 'prop':
        if (this.lead === NONE) return this.drop(local, 'noLeader', 'prop');
        if (this.cfg.disableProposalForwarding) return this.drop(local, 'forwardingDisabled', 'prop');
        this.forward(m, this.lead);
        return;
      case 'app':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case 'snap':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case 'transferLeader':
        if (this.lead === NONE) {
          if (local) throw new ProposalDroppedError('noLeader', 'transfer leader');
          return;
        }
        this.forward(m, this.lead);
        return;
      case 'timeoutNow':
        // The leader picked us: campaign now, skipping pre-vote (and, via the context, leases).
        this.hup('transfer');
        return;
      case 'readIndex':
        if (this.lead === NONE) return this.drop(local, 'noLeader', 'readIndex');
        this.forward(m, this.lead);
        return;
      case 'readIndexResp':
        this.readStates.push({ index: m.index, requestCtx: m.context ?? EMPTY_BYTES });
        return;
      case 'hup':
      case 'beat':
      case 'appResp':
      case 'vote':
      case 'voteResp':
      case 'preVote':
      case 'preVoteResp':
      case 'heartbeatResp':
      case 'unreachable':
      case 'snapStatus':
      case 'checkQuorum':
        return;
    }
  }

  // ------------------------------------------------------- follower handlers

  private handleAppendEntries(m: Message): void {
    this.leaderContactElapsed = 0;
    if (m.index < this.log.committed) {
      // Everything up to our commit is settled; tell the leader where we are.
      this.send('appResp', m.from, { index: this.log.committed });
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.msgs.push(makeAppendResp(this.id, m.from, this.term, lastNew));
      return;
    }
    // Reject with a hint: the largest index <= m.index whose term is <= m.logTerm.
    const hintIndex = Math.min(m.index, this.log.lastIndex());
    const [idx, t] = this.log.findConflictByTerm(hintIndex, m.logTerm);
    this.send('appResp', m.from, { index: m.index, reject: true, rejectHint: idx, logTerm: t });
  }

  private handleHeartbeat(m: Message): void {
    this.leaderContactElapsed = 0;
    // The leader sends commit <= our match, so this never points past our log.
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    // Echo the leader's send stamp: it measures its lease from the heartbeats a quorum answered.
    const f: MessageFields = { index: m.index };
    if (m.context !== undefined) f.context = m.context;
    this.send('heartbeatResp', m.from, f);
  }

  private handleSnapshot(m: Message): void {
    this.leaderContactElapsed = 0;
    invariant(m.snapshot !== undefined, 'snap message without snapshot');
    if (this.restore(m.snapshot)) {
      this.send('appResp', m.from, { index: this.log.lastIndex() });
    } else {
      this.send('appResp', m.from, { index: this.log.committed });
    }
  }

  /** Installs a snapshot from the leader; false if it is stale or useless. */
  private restore(s: Snapshot): boolean {
    if (s.meta.index <= this.log.committed) return false;
    // Committed entries handed to the host are not applied yet: installing now would swap the
    // config under entries still being applied (found by the simulator, F1). The leader retries.
    if (this.log.applying > this.log.applied) return false;
    if (this.state !== 'follower') {
      // Defensive (etcd does the same): only followers install snapshots.
      this.becomeFollower(this.term + 1, NONE);
      return false;
    }
    const cs = s.meta.confState;
    // Unlike etcd we accept a snapshot whose config lacks us: only a leader that tracks us sends
    // one, so we are a member at its latest config, and the snapshot can predate our addition
    // (the addition is in the log after it). Refusing would loop until the host re-snapshots.
    if (this.log.matchTerm(s.meta.index, s.meta.term)) {
      // We already have the snapshot's last entry: just fast-forward commit.
      this.log.commitTo(s.meta.index);
      return false;
    }
    this.log.restore(s);
    const r = restoreConfig(cs, this.log.lastIndex(), this.cfg.maxInflightMsgs);
    this.switchToConfig(r.config, r.progress);
    return true;
  }

  // ---------------------------------------------------------------- leader

  /** Appends proposals at our term; false if the uncommitted-size cap refuses them. */
  appendEntries(es: readonly Entry[]): boolean {
    let li = this.log.lastIndex();
    const size = payloadSize(es);
    // The first entry is always accepted so that a large proposal can't be stuck forever.
    if (this.uncommittedSize > 0 && size > 0 && this.uncommittedSize + size > this.cfg.maxUncommittedEntriesSize) {
      return false;
    }
    this.uncommittedSize += size;
    const ents: Entry[] = new Array<Entry>(es.length);
    for (let i = 0; i < es.length; i++) {
      const e = es[i]!;
      ents[i] = { term: this.term, index: li + 1 + i, type: e.type, data: e.data };
    }
    li = this.log.append(ents);
    this.ackOwnAppend(li);
    this.maybeCommit();
    return true;
  }

  /** appendEntries for one entry, without the intermediate arrays. */
  private appendOne(type: Entry['type'], data: Uint8Array): boolean {
    const size = data.byteLength;
    if (this.uncommittedSize > 0 && size > 0 && this.uncommittedSize + size > this.cfg.maxUncommittedEntriesSize) {
      return false;
    }
    this.uncommittedSize += size;
    const li = this.log.appendOne({ term: this.term, index: this.log.lastIndex() + 1, type, data });
    // With other members, commit can't advance on our own append; skip the quorum computation.
    if (this.ackOwnAppend(li)) this.maybeCommit();
    return true;
  }

  /**
   * A leader that tracks no one else counts its new entries at once: no
   * message can carry the commit index, and the host applies committed
   * entries only after persisting the Ready that holds them. With peers,
   * appends may leave before our write is durable (earlyMessages), so our
   * own copy counts only from ackPersisted. Returns whether it counted.
   */
  private ackOwnAppend(li: number): boolean {
    if (this.trk.progress.size !== 1) return false;
    this.trk.progress.get(this.id)?.maybeUpdate(li);
    return true;
  }

  /**
   * The host persisted our log up to persistedLastIndex() (RawNode.advance):
   * a leader counts its own copy toward the commit quorum now, and tells the
   * followers if that commits something.
   */
  ackPersisted(): void {
    if (this.state !== 'leader') return;
    const self = this.trk.progress.get(this.id);
    if (self === undefined || !self.maybeUpdate(this.log.persistedLastIndex())) return;
    if (this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastAppend();
    }
  }

  /** With peers, our own match may not run ahead of our disk (see ackOwnAppend). */
  private clampOwnMatch(): void {
    const self = this.trk.progress.get(this.id);
    if (self === undefined || this.trk.progress.size === 1) return;
    self.match = Math.min(self.match, this.log.persistedLastIndex());
  }

  reduceUncommittedSize(s: number): void {
    if (s > this.uncommittedSize) this.uncommittedSize = 0;
    else this.uncommittedSize -= s;
  }

  /** Advances commit to what a (joint) quorum has, if that entry is from our term. */
  private maybeCommit(): boolean {
    const mci = this.trk.committed();
    if (mci === Infinity) return false;
    return this.log.maybeCommit(mci, this.term);
  }

  // ------------------------------------------------------------ membership

  /** Applies a committed conf change to the tracker (host calls this while applying). */
  applyConfChange(cc: ConfChange): ConfState {
    if (isLeaveJoint(cc) && !isJoint(this.trk.config)) {
      return this.trk.confState(); // nothing to leave (a refused or duplicate leave): no-op
    }
    const r = new Changer(this.trk.config, this.trk.progress, this.log.lastIndex(), this.cfg.maxInflightMsgs).apply(cc);
    return this.switchToConfig(r.config, r.progress);
  }

  private switchToConfig(config: ProgressTracker['config'], progress: ProgressTracker['progress']): ConfState {
    this.trk.setConfig(config, progress);
    const cs = this.trk.confState();
    const pr = this.trk.progress.get(this.id);
    this.isLearner = pr !== undefined && pr.isLearner;
    if (pr === undefined || this.isLearner) {
      // This leader was removed or demoted.
      if (this.state === 'leader' && this.cfg.stepDownOnRemoval) {
        // Tell the remaining members the commit index first: otherwise a member that has the
        // conf change but not its commit still counts us as a voter, and (e.g. when shrinking
        // from two voters to one) can't get elected without our vote.
        this.bcastHeartbeat(undefined);
        this.becomeFollower(this.term, NONE);
      }
      return cs;
    }
    if (this.state !== 'leader' || cs.voters.length === 0) return cs;
    this.clampOwnMatch();
    // The quorum may have shrunk (commit advances) and new peers need appends.
    if (this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastAppend();
    } else {
      for (const id of this.trk.ids()) if (id !== this.id) this.maybeSendAppend(id, false);
    }
    if (this.leadTransferee !== NONE && !this.trk.isVoter(this.leadTransferee)) this.abortLeaderTransfer();
    return cs;
  }

  /** Leader: after applying up to the pending conf change of an auto-leave joint config, propose leaving it. */
  maybeAutoLeave(): void {
    if (this.state !== 'leader' || !this.trk.config.autoLeave || this.log.applied < this.pendingConfIndex) return;
    // An empty confChange entry means "leave joint"; zero payload bytes so the size cap never refuses it.
    const ok = this.appendEntries([{ term: 0, index: 0, type: 'confChange', data: EMPTY_BYTES }]);
    invariant(ok, 'auto-leave entry refused');
    this.pendingConfIndex = this.log.lastIndex();
    this.pendingBcast = true;
  }
}
