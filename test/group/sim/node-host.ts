/**
 * One simulated raft node: a RawNode, its simulated disk and its state
 * machine, driven through the Ready contract:
 *   ready() → send early messages (a leader's appends and heartbeats) → stage
 *   writes on the disk → (persistence delay) → writes durable → send the
 *   other messages → apply snapshot + committed entries → serve reads → advance.
 * Only one Ready is in flight at a time (RawNode requires advance() before
 * the next ready()); ticks and messages keep arriving while it is.
 *
 * `HostBugs` switch on deliberately broken host behaviour, used by the
 * bug-injection tests to show the checker catches contract violations.
 */
import { BOOTSTRAP_CHAIN } from './hash.js';
import { InvariantViolation } from './invariants.js';
import type { InvariantChecker } from './invariants.js';
import { RawNode, decodeConfChange } from './raft.js';
import type { ConfChange, ConfState, Entry, Message, NodeId, Ready, StateRole } from './raft.js';
import type { SimRandom } from './random.js';
import { SimDisk } from './disk.js';
import type { DiskWrite } from './disk.js';
import { StateMachine, decodeSmSnapshot, encodeCommand, encodeSmSnapshot } from './state-machine.js';

/** Readys one `pump()` may process back to back before it is a runaway loop. */
export const READY_LOOP_MAX = 10_000;
/** Reads waiting for their index to be applied, per node. */
export const READS_PENDING_MAX = 1_000;
/** Proposals awaiting their acknowledgement, per node. */
export const PROPOSALS_PENDING_MAX = 10_000;
/** The fields of the append response the countSelfEarly bug steps (the rest are filled in). */
const SELF_ACK_TEMPLATE: Message = {
  type: 'appResp', from: 0, to: 0, term: 0, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0,
};
/** Terms whose received vote grants are remembered. */
const GRANT_TERMS_MAX = 8;

/** Deliberate host bugs (all off in normal runs). */
export interface HostBugs {
  /** Forget the persisted vote on restart (as if `vote` were never written). */
  readonly forgetVote?: boolean;
  /** Send a Ready's messages before its writes are durable. */
  readonly sendBeforeDurable?: boolean;
  /** Send a Ready's append responses early too, with the leader's appends and heartbeats. */
  readonly earlyAppendResponses?: boolean;
  /**
   * A broken core, by wrapping: a leader counts its new entries toward the commit quorum as
   * soon as they are handed out, before they are durable (stepping its own append response).
   */
  readonly countSelfEarly?: boolean;
  /** A broken core, by wrapping: every vote rejection this node receives is read as a grant. */
  readonly grantAllVotes?: boolean;
  /** A broken core, by wrapping: read-index responses a follower receives carry an index 5 too low. */
  readonly staleReadIndex?: boolean;
  /** Answer ReadIndex reads as soon as raft returns them, before applying up to their index. */
  readonly serveReadsEarly?: boolean;
}

/** The raft feature flags and timing chosen for a run. */
export interface RaftKnobs {
  readonly electionTick: number;
  readonly heartbeatTick: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly readOnlyOption: 'safe' | 'leaseBased';
  /** Lease margin, derived from the scenario's tick drift so that drift stays within it (scenario.ts). */
  readonly leaseDriftMarginTicks: number;
  readonly maxSizePerMsg: number;
  readonly maxInflightMsgs: number;
  /** 0 = no cap. */
  readonly maxUncommittedEntriesSize: number;
  /** 0 = no cap; small values split committed entries over several Readys. */
  readonly maxCommittedSizePerReady: number;
  readonly disableProposalForwarding: boolean;
  readonly stepDownOnRemoval: boolean;
}

/** How the host takes state-machine snapshots and truncates its log. */
export interface SnapshotPolicy {
  /** Take a snapshot once this many entries were applied since the last one. */
  readonly everyEntries: number;
  /** Entries kept in the log below the snapshot point (so followers often avoid a snapshot). */
  readonly keepEntries: number;
  /**
   * Snapshot right after applying a conf change that adds a node, so the
   * next snapshot sent to it names it (etcd refuses snapshots that don't);
   * off, the core's install of a snapshot predating the addition is exercised.
   */
  readonly afterAddingNode: boolean;
}

/** What a host needs from the cluster around it. */
export interface HostEnv {
  readonly checker: InvariantChecker;
  readonly bugs: HostBugs;
  /** Sends a message over the simulated network. */
  send(m: Message): void;
  /** Schedules `host.flushDone(incarnation)` after the disk's persistence delay. */
  scheduleFlush(host: NodeHost): void;
  /** A command was applied on `host` (for acknowledgements and the liveness probe). */
  onCommandApplied(host: NodeHost, cmdId: number, index: number, acked: boolean): void;
  /** A conf change was applied on `host` at `index`. */
  onConfApplied(host: NodeHost, index: number, cs: ConfState): void;
  /** A notable host event for the trace. */
  note(host: NodeHost, what: string): void;
  /**
   * Did `leader`'s clock stop (a process pause) recently enough that a lease it measured in
   * its own ticks may have outlived the followers' vote refusal? That is drift beyond any
   * margin: a stale lease-based read answered by it is counted, not a violation.
   */
  leaseClockStopped(leader: NodeId): boolean;
}

/** Counters a host keeps for the run summary. */
export interface HostStats {
  proposalsDropped: number;
  snapshotsTaken: number;
  snapshotsInstalled: number;
  readsServed: number;
}

const EMPTY_CONF: ConfState = { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };

/** A read raft answered, waiting for the state machine to reach its index. */
interface PendingRead {
  readonly readId: number;
  readonly index: number;
  /** The answering leader's clock had stopped recently (HostEnv.leaseClockStopped). */
  readonly leaseClockStopped: boolean;
}

/** Decoding of read-request contexts: 8-byte big-endian float64 ids. */
export function encodeReadCtx(id: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setFloat64(0, id);
  return out;
}

function decodeReadCtx(ctx: Uint8Array): number {
  return new DataView(ctx.buffer, ctx.byteOffset, ctx.byteLength).getFloat64(0);
}

/** True for the typed errors the core throws for operating conditions (not bugs). */
export function isExpectedRaftError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return err.name === 'ProposalDroppedError' || err.name === 'ConfChangePendingError' || err.name === 'ConfChangeInvalidError';
}

/** A simulated node process. */
export class NodeHost {
  readonly disk = new SimDisk();
  sm = new StateMachine();
  node: RawNode | undefined;
  alive = false;
  /** Bumped on every crash, so stale disk and timer events are ignored. */
  incarnation = 0;
  /** Removed from the group and shut down for good. */
  retired = false;
  confState: ConfState = EMPTY_CONF;
  role: StateRole = 'follower';
  lead: NodeId = 0;
  term = 0;
  /** The Ready whose writes are pending on the disk. */
  inflight: Ready | undefined;
  /** Disk slowness: persistence delays are multiplied until this virtual time. */
  slowDiskUntilMs = 0;
  /** This node's tick period in virtual ms (its clock may run fast or slow). */
  tickMs = 10;
  /** Process pause (GC, VM freeze): events for this node wait until this virtual time. */
  pausedUntilMs = 0;
  /** Force a snapshot and truncate the whole log up to it after the next apply. */
  forceLogTruncation = false;
  /** Take a snapshot (normal log truncation) after this Ready's apply. */
  private snapshotSoon = false;
  readonly stats: HostStats = { proposalsDropped: 0, snapshotsTaken: 0, snapshotsInstalled: 0, readsServed: 0 };
  private readonly grants = new Map<number, Set<NodeId>>();
  private readonly proposed = new Set<number>();
  private pendingReads: PendingRead[] = [];
  /** Reads answered by a leader's readIndexResp: whether that leader's clock had stopped (see HostEnv). */
  private readonly remoteAnswers = new Map<number, boolean>();
  private messagesSent = false;

  constructor(
    readonly id: NodeId,
    private readonly knobs: RaftKnobs,
    private readonly snapshots: SnapshotPolicy,
    private readonly random: SimRandom,
    private readonly env: HostEnv,
  ) {}

  /** Gives an initial member its bootstrap state: a snapshot at index 1 holding the first membership. */
  bootstrap(voters: readonly NodeId[]): void {
    const confState: ConfState = { ...EMPTY_CONF, voters: [...voters] };
    const data = encodeSmSnapshot({ appliedIndex: 1, hash: 0, logChain: BOOTSTRAP_CHAIN, commands: [] });
    this.disk.stage({ hardState: { term: 1, vote: 0, commit: 1 }, entries: [], snapshot: { meta: { index: 1, term: 1, confState }, data }, snapshotChain: BOOTSTRAP_CHAIN });
    this.disk.flush();
  }

  /** Starts (or restarts) the process from its durable state. */
  start(): void {
    if (this.alive || this.retired) throw new Error(`node ${this.id}: start while alive or retired`);
    let hs = this.disk.hardState;
    if (this.env.bugs.forgetVote === true) hs = { ...hs, vote: 0 };
    const storage = this.disk.reloadLive(hs);
    this.term = hs.term;
    this.sm = new StateMachine();
    this.confState = this.disk.confState();
    const snap = this.disk.snapshot;
    if (snap !== undefined) {
      const d = decodeSmSnapshot(snap.data);
      this.sm.restore(d);
      this.env.checker.onRestore(this.id, this.term, snap.meta.index, snap.meta.term, d.hash, d.logChain);
    }
    this.node = new RawNode(
      {
        id: this.id,
        electionTick: this.knobs.electionTick,
        heartbeatTick: this.knobs.heartbeatTick,
        random: this.random.fork(),
        applied: this.sm.appliedIndex,
        checkQuorum: this.knobs.checkQuorum,
        preVote: this.knobs.preVote,
        readOnlyOption: this.knobs.readOnlyOption,
        leaseDriftMarginTicks: this.knobs.leaseDriftMarginTicks,
        maxSizePerMsg: this.knobs.maxSizePerMsg,
        maxInflightMsgs: this.knobs.maxInflightMsgs,
        maxUncommittedEntriesSize: this.knobs.maxUncommittedEntriesSize,
        maxCommittedSizePerReady: this.knobs.maxCommittedSizePerReady,
        disableProposalForwarding: this.knobs.disableProposalForwarding,
        stepDownOnRemoval: this.knobs.stepDownOnRemoval,
      },
      storage,
    );
    this.alive = true;
    this.role = 'follower';
    this.lead = 0;
    this.grants.clear();
    this.pump();
  }

  /** Kills the process: volatile state and the pending write are lost. */
  crash(): void {
    if (!this.alive) return;
    this.alive = false;
    this.incarnation++;
    this.node = undefined;
    this.inflight = undefined;
    this.disk.crash();
    this.proposed.clear();
    this.pendingReads = [];
    this.remoteAnswers.clear();
    this.role = 'follower';
    this.lead = 0;
    this.env.checker.onCrash(this.id);
  }

  /** A one-line state description for failure reports. */
  describe(): string {
    const st = this.alive ? this.node?.status() : undefined;
    const cs = this.confState;
    return (
      `n${this.id}${this.retired ? ' retired' : this.alive ? '' : ' down'} ${this.role} term=${this.term} lead=${this.lead} ` +
      `applied=${this.sm.appliedIndex} durableLast=${this.disk.lastIndex} commit=${st?.commit ?? this.disk.hardState.commit} ` +
      `conf=v[${cs.voters.join(',')}]l[${cs.learners.join(',')}]o[${cs.votersOutgoing.join(',')}]` +
      (st === undefined ? '' : ` last=${st.lastIndex} first=${st.firstIndex} transferee=${st.leadTransferee} uncommitted=${st.uncommittedSize} drops=${JSON.stringify(st.drops)}`) +
      (st?.progress === undefined ? '' : ` progress{${[...st.progress].map(([id, p]) => `${id}:${JSON.stringify(p)}`).join(' ')}}`)
    );
  }

  /** True if this node is a learner in its own view of the membership. */
  isLearner(): boolean {
    return this.confState.learners.includes(this.id) || this.confState.learnersNext.includes(this.id);
  }

  /** True if this node belongs to its own view of the membership. */
  isMember(cs: ConfState = this.confState): boolean {
    const id = this.id;
    return cs.voters.includes(id) || cs.learners.includes(id) || cs.votersOutgoing.includes(id) || cs.learnersNext.includes(id);
  }

  tick(): void {
    this.live().tick();
    this.pump();
  }

  /** Delivers a message from the network. */
  deliver(m: Message): void {
    const node = this.live();
    if (m.type === 'voteResp' && !m.reject) this.recordGrant(m.term, m.from);
    let msg = m;
    if (this.env.bugs.grantAllVotes === true && m.type === 'voteResp' && m.reject) msg = { ...m, reject: false };
    if (m.type === 'readIndexResp' && m.context !== undefined) {
      if (this.remoteAnswers.size >= READS_PENDING_MAX) this.remoteAnswers.delete(this.remoteAnswers.keys().next().value!);
      this.remoteAnswers.set(decodeReadCtx(m.context), this.env.leaseClockStopped(m.from));
    }
    if (this.env.bugs.staleReadIndex === true && m.type === 'readIndexResp') msg = { ...m, index: Math.max(0, m.index - 5) };
    node.step(msg);
    this.pump();
  }

  /** A client proposes command `cmdId` here; false if raft dropped it. */
  propose(cmdId: number): boolean {
    try {
      this.live().propose(encodeCommand(cmdId));
    } catch (err) {
      if (!isExpectedRaftError(err)) throw err;
      this.stats.proposalsDropped++;
      return false;
    }
    if (this.proposed.size >= PROPOSALS_PENDING_MAX) this.proposed.clear(); // old ones will never be acknowledged
    this.proposed.add(cmdId);
    this.pump();
    return true;
  }

  /** Proposes a membership change; false if raft refused it. */
  proposeConfChange(cc: ConfChange): boolean {
    try {
      this.live().proposeConfChange(cc);
    } catch (err) {
      if (!isExpectedRaftError(err)) throw err;
      return false;
    }
    this.pump();
    return true;
  }

  /** Issues a linearizable read with id `readId`. */
  readIndex(readId: number): boolean {
    try {
      this.live().readIndex(encodeReadCtx(readId));
    } catch (err) {
      if (!isExpectedRaftError(err)) throw err;
      return false;
    }
    this.pump();
    return true;
  }

  transferLeader(to: NodeId): void {
    try {
      this.live().transferLeader(to);
    } catch (err) {
      if (!isExpectedRaftError(err)) throw err;
    }
    this.pump();
  }

  reportUnreachable(to: NodeId): void {
    this.live().reportUnreachable(to);
    this.pump();
  }

  reportSnapshot(to: NodeId, ok: boolean): void {
    this.live().reportSnapshot(to, ok);
    this.pump();
  }

  /** The pending write became durable (scheduled by the cluster). */
  flushDone(incarnation: number): void {
    if (!this.alive || incarnation !== this.incarnation) return; // the crash took it
    const rd = this.inflight;
    if (rd === undefined) throw new Error(`node ${this.id}: flush without a Ready in flight`);
    this.inflight = undefined;
    const result = this.disk.flush();
    this.env.checker.onDurable(this.id, result, this.disk);
    this.finishReady(rd);
    this.pump();
  }

  /** Processes Readys until one must wait for the disk or none is left. */
  pump(): void {
    for (let n = 0; ; n++) {
      const node = this.node;
      if (!this.alive || node === undefined || this.inflight !== undefined || !node.hasReady()) return;
      if (n >= READY_LOOP_MAX) throw new Error(`node ${this.id}: over ${READY_LOOP_MAX} Readys in one pump`);
      const rd = node.ready();
      this.observe(rd, node);
      this.messagesSent = false;
      // A leader's appends and heartbeats leave while its own write is in progress (raft thesis §10.2.1).
      for (const m of rd.earlyMessages) this.env.send(m);
      if (this.env.bugs.earlyAppendResponses === true) for (const m of rd.messages) if (m.type === 'appResp') this.env.send(m);
      if (this.env.bugs.sendBeforeDurable === true) this.sendMessages(rd);
      if (this.env.bugs.countSelfEarly === true) this.countSelfEarly(rd, node);
      if (rd.hardState === undefined && rd.entries.length === 0 && rd.snapshot === undefined) {
        this.finishReady(rd);
        continue;
      }
      this.disk.stage(diskWriteOf(rd));
      this.inflight = rd;
      this.env.scheduleFlush(this);
      return;
    }
  }

  /** Role changes, the current term, vote grants sent (checked before anything else happens). */
  private observe(rd: Ready, node: RawNode): void {
    if (rd.hardState !== undefined) this.term = rd.hardState.term;
    if (rd.softState !== undefined) {
      const wasLeader = this.role === 'leader';
      this.role = rd.softState.role;
      this.lead = rd.softState.leader;
      if (this.role === 'leader' && !wasLeader) {
        const term = node.status().term;
        this.term = term;
        this.env.checker.onLeader(this.id, term, this.grants.get(term) ?? new Set(), this.confState);
        this.env.note(this, `became leader of term ${term}`);
      }
    }
    for (const m of rd.messages) {
      if (m.type === 'voteResp' && !m.reject) this.env.checker.onGrantSent(this.isLearner());
    }
  }

  /** Steps 2-4 of the Ready contract, once the writes are durable. */
  private finishReady(rd: Ready): void {
    const node = this.live();
    this.sendMessages(rd);
    if (this.env.bugs.serveReadsEarly === true) this.queueReads(rd);
    if (rd.snapshot !== undefined) this.installSnapshot(rd);
    for (const e of rd.committedEntries) this.applyEntry(e, node);
    if (this.env.bugs.serveReadsEarly !== true) this.queueReads(rd);
    node.advance(rd);
    this.maybeSnapshot();
  }

  private sendMessages(rd: Ready): void {
    if (this.messagesSent) return;
    this.messagesSent = true;
    const skipAppResp = this.env.bugs.earlyAppendResponses === true;
    for (const m of rd.messages) if (!(skipAppResp && m.type === 'appResp')) this.env.send(m);
  }

  /** The countSelfEarly bug: the leader acknowledges its own entries before they are durable. */
  private countSelfEarly(rd: Ready, node: RawNode): void {
    const last = rd.entries[rd.entries.length - 1];
    const st = node.status();
    if (last === undefined || st.role !== 'leader' || last.term !== st.term) return;
    node.step({ ...SELF_ACK_TEMPLATE, from: this.id, to: this.id, term: st.term, index: last.index });
  }

  private installSnapshot(rd: Ready): void {
    const snap = rd.snapshot;
    if (snap === undefined) return;
    const d = decodeSmSnapshot(snap.data);
    if (d.appliedIndex !== snap.meta.index) throw new Error(`node ${this.id}: snapshot data at ${d.appliedIndex} but meta at ${snap.meta.index}`);
    this.sm.restore(d);
    this.confState = snap.meta.confState;
    this.stats.snapshotsInstalled++;
    this.env.checker.onRestore(this.id, this.term, snap.meta.index, snap.meta.term, d.hash, d.logChain);
    this.env.note(this, `installed snapshot at ${snap.meta.index}`);
  }

  private applyEntry(e: Entry, node: RawNode): void {
    if (e.index <= this.sm.appliedIndex) {
      throw new InvariantViolation('stateMachineSafety', `node ${this.id} asked to apply ${e.index} again (applied ${this.sm.appliedIndex})`);
    }
    const chain = this.disk.chainAt(e.index);
    if (chain === undefined) {
      throw new InvariantViolation('committedDurable', `node ${this.id} applies entry ${e.index} that is not in its durable log (last ${this.disk.lastIndex})`);
    }
    const cmd = this.sm.apply(e);
    this.env.checker.onApply(this.id, this.term, e.index, e.term, chain, this.sm.hash);
    if (e.type === 'confChange') {
      const cc = decodeConfChange(e.data);
      try {
        this.confState = node.applyConfChange(cc);
      } catch (err) {
        // A committed conf change must always apply: raft validates at proposal time.
        const cs = this.confState;
        throw new InvariantViolation(
          'confChangeApplies',
          `node ${this.id} cannot apply committed conf change ${e.index}@${e.term} ` +
            `${JSON.stringify(cc.changes)}/${cc.transition} to voters=[${cs.voters.join(',')}] outgoing=[${cs.votersOutgoing.join(',')}] ` +
            `autoLeave=${cs.autoLeave}: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
      // etcd's raft refuses a snapshot whose membership lacks the recipient,
      // so a new member needs a snapshot taken after its addition: hosts that
      // build snapshots on demand get that for free (see SnapshotPolicy).
      if (this.snapshots.afterAddingNode && cc.changes.some((c) => c.type !== 'removeNode')) this.snapshotSoon = true;
      this.env.onConfApplied(this, e.index, this.confState);
    } else if (cmd !== undefined) {
      const acked = this.proposed.delete(cmd);
      this.env.onCommandApplied(this, cmd, e.index, acked);
    }
  }

  private queueReads(rd: Ready): void {
    for (const rs of rd.readStates) {
      if (this.pendingReads.length >= READS_PENDING_MAX) this.pendingReads.shift();
      const readId = decodeReadCtx(rs.requestCtx);
      // Answered by the leader we forwarded to, or by us (as leader) just now.
      const remote = this.remoteAnswers.get(readId);
      this.remoteAnswers.delete(readId);
      this.pendingReads.push({ readId, index: rs.index, leaseClockStopped: remote ?? this.env.leaseClockStopped(this.id) });
    }
    if (this.pendingReads.length === 0) return;
    const applied = this.sm.appliedIndex;
    const early = this.env.bugs.serveReadsEarly === true;
    const still: PendingRead[] = [];
    for (const r of this.pendingReads) {
      if (r.index <= applied || early) {
        this.stats.readsServed++;
        this.env.checker.onReadServed(r.readId, r.index, applied, r.leaseClockStopped);
      } else still.push(r);
    }
    this.pendingReads = still;
  }

  /** Snapshot at the applied index and truncate the log, as a real host does to bound its log. */
  private maybeSnapshot(): void {
    const applied = this.sm.appliedIndex;
    const snapIndex = this.disk.snapshot?.meta.index ?? 0;
    const force = this.forceLogTruncation;
    if (applied <= snapIndex || (!force && !this.snapshotSoon && applied - snapIndex < this.snapshots.everyEntries)) return;
    this.forceLogTruncation = false;
    this.snapshotSoon = false;
    const chain = this.disk.chainAt(applied);
    if (chain === undefined) throw new Error(`node ${this.id}: applied ${applied} not in the durable log`);
    const storage = this.disk.live;
    const snap = storage.createSnapshot(applied, this.confState, encodeSmSnapshot(this.sm.snapshotData(chain)));
    const compactIndex = force ? applied : applied - this.snapshots.keepEntries;
    // The live storage's truncation point can be past the disk's after a
    // restart (the reload starts at the snapshot), so each is checked alone.
    if (compactIndex > storage.firstIndex() - 1) storage.compact(compactIndex);
    this.disk.snapshotAndCompact(snap, chain, compactIndex);
    this.stats.snapshotsTaken++;
  }

  private recordGrant(term: number, from: NodeId): void {
    let set = this.grants.get(term);
    if (set === undefined) {
      if (this.grants.size >= GRANT_TERMS_MAX) {
        const oldest = Math.min(...this.grants.keys());
        this.grants.delete(oldest);
      }
      set = new Set();
      this.grants.set(term, set);
    }
    set.add(from);
  }

  private live(): RawNode {
    const node = this.node;
    if (!this.alive || node === undefined) throw new Error(`node ${this.id} is not running`);
    return node;
  }
}

/** The writes of a Ready; a snapshot carries its log chain in its state-machine data. */
function diskWriteOf(rd: Ready): DiskWrite {
  const w: { -readonly [K in keyof DiskWrite]: DiskWrite[K] } = { entries: rd.entries };
  if (rd.hardState !== undefined) w.hardState = rd.hardState;
  if (rd.snapshot !== undefined) {
    w.snapshot = rd.snapshot;
    w.snapshotChain = decodeSmSnapshot(rd.snapshot.data).logChain;
  }
  return w;
}
