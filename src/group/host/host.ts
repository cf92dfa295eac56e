/**
 * MultiRaftHost: one per node process. It owns the node's LogStore, its
 * transport and its clock, hosts every raft group of the node, and drives
 * all of them from ONE loop (docs/host.md):
 *
 *   turn: tick the active (non-quiesced) groups
 *         → collect a Ready from every dirty group that has one (bounded)
 *         → stage each Ready's hard state / entries / snapshot in the LogStore
 *         → ONE flush (one fsync) for all of them
 *         → send every Ready's messages (the transport batches per peer)
 *         → install snapshots, apply committed entries (conf changes first
 *           through raft, their ConfState made durable before the state
 *           machine passes them), hand over read states, advance
 *         → truncate long logs, build wanted snapshots, quiesce idle leaders.
 *
 * Node ids and replica ids: a group's raft replica id IS the node id (a node
 * holds at most one replica of a range), so a message's `to` is the
 * transport's node id. See docs/host.md for the trade-off.
 */
import {
  type BasicRaftStatus,
  type ConfChange,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type RaftConfig,
  type RaftReadCounters,
  type RaftStatus,
  type RandomSource,
  type Ready,
  type SoftState,
  RaftInvariantError,
  RawNode,
  decodeConfChange,
  isEmptySnapshot,
} from '../raft/index.js';
import { type GroupLog, type LogStore, LogStoreError, type SnapshotSource } from '../log-store/index.js';
import type { Transport, TransportHandlers } from '../transport/index.js';
import type { AppliedEntry, GroupHandle, GroupStateMachine, StateMachineSnapshot } from './state-machine.js';
import { HostError, TooManyRequestsError } from './errors.js';
import { HostedGroup } from './group.js';
import { DriveLoop } from './loop.js';
import { HostMetrics } from './metrics.js';
import { PROPOSAL_BYTES_PENDING_MAX_DEFAULT, PROPOSALS_PENDING_MAX_DEFAULT } from './backpressure.js';
import { canQuiesce, isQuiesceMessage, quiesceHeartbeat } from './quiesce.js';
import { IntervalTicker, type Ticker } from './ticker.js';
import { LIVENESS_GROUP_ID, NodeLiveness, livenessPing } from './liveness.js';
import { ElectionQueue } from './election-queue.js';
import { LeaseClock, hostLeaseDriftMarginTicks } from './lease-clock.js';
import { SendBudget } from './send-budget.js';
import {
  COALESCED_HEARTBEATS_PER_MESSAGE_MAX,
  type HeartbeatPart,
  decodeCoalesced,
  encodeCoalesced,
  isCoalescable,
  isCoalesced,
} from './coalesce.js';

/** The raft knobs the host sets for every group (overridable per host and per group). */
export interface HostRaftConfig {
  readonly electionTick: number;
  readonly heartbeatTick: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  /**
   * 'leaseBased': a leader with a valid lease answers reads without a heartbeat round (every
   * node of a cluster must use the same option: followers keep the lease's promise only with
   * it). 'safe': every read takes a heartbeat round.
   */
  readonly readOnlyOption: 'safe' | 'leaseBased';
  /** Lease margin in ticks; default hostLeaseDriftMarginTicks(electionTick) (docs/host.md). */
  readonly leaseDriftMarginTicks?: number;
  readonly maxSizePerMsg: number;
  readonly maxInflightMsgs: number;
  readonly maxUncommittedEntriesSize: number;
  readonly maxCommittedSizePerReady: number;
}

/** Defaults: etcd's timing at a 100 ms tick; byte caps that keep one group from hogging a turn. */
export const HOST_RAFT_DEFAULTS: HostRaftConfig = Object.freeze({
  electionTick: 10,
  heartbeatTick: 1,
  // Pre-vote + check-quorum: a follower that wakes from quiescence and campaigns cannot depose a live leader.
  preVote: true,
  checkQuorum: true,
  readOnlyOption: 'leaseBased',
  maxSizePerMsg: 1024 * 1024,
  maxInflightMsgs: 256,
  maxUncommittedEntriesSize: 16 * 1024 * 1024,
  maxCommittedSizePerReady: 4 * 1024 * 1024,
});

/**
 * The index (and term) at which a bootstrapped group's log starts; entries
 * begin at GROUP_INIT_INDEX + 1. See MultiRaftHost.bootstrap.
 */
export const GROUP_INIT_INDEX = 5;
/** Log bytes staged without a write of their own (commit-index-only hard states) before a turn writes them anyway. */
export const DEFERRED_LOG_BYTES_MAX = 1024 * 1024;

/** Bounds of the host (all per node unless said otherwise). */
export interface HostLimits {
  /** In-flight proposals per group (backpressure). */
  readonly proposalsPendingMax: number;
  /** In-flight proposal payload bytes per group (backpressure). */
  readonly proposalBytesPendingMax: number;
  /** Unanswered ReadIndex requests per group. */
  readonly readsPendingMax: number;
  /** Readys handled per loop turn; the rest wait for the next turn. */
  readonly readysPerTurnMax: number;
  /** Bytes staged in the log store per turn before the turn stops collecting. */
  readonly stageBytesPerTurnMax: number;
  /** State-machine snapshots built per turn (for truncation or for a follower). */
  readonly snapshotBuildsPerTurnMax: number;
  /** Dormant leaderless groups admitted to an election and still without a leader, at most (election-queue.ts). */
  readonly electionsInFlightMax: number;
  /** Truncate a group's log once it retains more entries than this... */
  readonly logTruncateEntries: number;
  /** ...or more bytes than this. */
  readonly logTruncateBytes: number;
  /** Entries kept below the snapshot index at truncation, for slightly lagging followers. */
  readonly logKeepEntries: number;
}

/** Default bounds; see docs/host.md. */
export const HOST_LIMITS_DEFAULTS: HostLimits = Object.freeze({
  proposalsPendingMax: PROPOSALS_PENDING_MAX_DEFAULT,
  proposalBytesPendingMax: PROPOSAL_BYTES_PENDING_MAX_DEFAULT,
  readsPendingMax: 1024,
  readysPerTurnMax: 1024,
  stageBytesPerTurnMax: 32 * 1024 * 1024,
  snapshotBuildsPerTurnMax: 4,
  electionsInFlightMax: 256,
  logTruncateEntries: 10_000,
  logTruncateBytes: 16 * 1024 * 1024,
  logKeepEntries: 1_000,
});

/** Options of {@link MultiRaftHost}. */
export interface HostOptions {
  /** This node's id (also its raft replica id in every group). */
  readonly nodeId: NodeId;
  /** The node's log store, already open; the host closes it on stop (the engine stays the caller's). */
  readonly logStore: LogStore;
  /** Builds the transport around the host's handlers (GrpcTransport or FaultyTransport). */
  readonly transport: (handlers: TransportHandlers) => Transport;
  /** The clock (default: a 100 ms IntervalTicker). */
  readonly ticker?: Ticker;
  /** Election jitter (default: a PRNG seeded from the node id). */
  readonly random?: RandomSource;
  readonly raft?: Partial<HostRaftConfig>;
  readonly limits?: Partial<HostLimits>;
  /** A message arrived for a group this node does not host (e.g. the first snapshot of a new replica). */
  readonly onUnknownGroup?: (groupId: number, msg: Message, fromNode: NodeId) => void;
  /** The loop stopped on an unrecoverable error (log store failure, broken raft invariant). */
  readonly onFatal?: (e: unknown) => void;
  /** Extra labels on every metric (e.g. { node: '1' }). */
  readonly metricsLabels?: Record<string, string>;
}

/** How a group's state machine is supplied: an instance, or a factory given the group's handle. */
export type StateMachineSupplier =
  | GroupStateMachine
  | ((handle: GroupHandle) => GroupStateMachine | Promise<GroupStateMachine>);

/** Options of {@link MultiRaftHost.createGroup}. */
export interface HostGroupOptions {
  /** The replica id; must equal the node id (the id mapping, docs/host.md). Default: the node id. */
  readonly replicaId?: NodeId;
  /** Initial membership of a NEW group (voter ids, or a ConfState); ignored when the group is reopened. Empty: a replica waiting for a snapshot. */
  readonly peers?: readonly NodeId[] | ConfState;
  readonly stateMachine: StateMachineSupplier;
  readonly raft?: Partial<HostRaftConfig>;
  /**
   * Campaign as soon as the host admits the group's election (bootstrap of
   * a new group: saves an election timeout). Admission is bounded by
   * `electionsInFlightMax`, campaigners first (election-queue.ts).
   */
  readonly campaign?: boolean;
}

/** Plain counters for tests and the metrics layer. */
export interface HostStats {
  turns: number;
  ticks: number;
  /** Sum over ticks of groups ticked (0 per tick once everything is quiesced). */
  groupTicks: number;
  readys: number;
  flushes: number;
  /** The most Readys one flush covered. */
  readysPerFlushMax: number;
  /** The longest loop turn, in ms (what the per-turn bounds keep short). */
  turnMsMax: number;
  heartbeatsSent: number;
  /** Messages that carried several groups' heartbeats. */
  coalescedMessages: number;
  /** Heartbeats that travelled inside those. */
  coalescedHeartbeats: number;
  /** The most heartbeats one coalesced message carried. */
  coalescedHeartbeatsPerMessageMax: number;
  quiesced: number;
  unquiesced: number;
  /** Dormant groups admitted by the election queue (campaigning or starting their timers). */
  electionsAdmitted: number;
  /** Dormant groups that started ticking because raft learned a leader, or because of a request. */
  dormantWoken: number;
  /** Quiesced groups woken because a member node fell silent (node liveness). */
  silentNodeWakes: number;
  /** Leader leases forfeited: the leader quiesced, or ticks fell behind real time (lease-clock.ts). */
  leaseForfeitsQuiesce: number;
  leaseForfeitsTicksBehind: number;
  /** Turns that held groups back because a peer's bulk send queue had no room (flow control). */
  turnsHeldForRoom: number;
  truncations: number;
  snapshotsSent: number;
  snapshotsReceived: number;
}

/** A tiny PRNG (mulberry32) so election jitter is reproducible per node. */
function seededRandom(seed: number): RandomSource {
  let s = seed >>> 0 || 0x9e3779b9;
  return {
    intn(n: number): number {
      s = (s + 0x6d2b79f5) >>> 0;
      let t = s;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
    },
  };
}

function addReadCounters(into: RaftReadCounters, c: Readonly<RaftReadCounters>): void {
  into.lease += c.lease;
  into.heartbeatQuorum += c.heartbeatQuorum;
  into.singleVoter += c.singleVoter;
}

function toConfState(peers: readonly NodeId[] | ConfState | undefined): ConfState {
  if (peers === undefined) return { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
  if ('voters' in peers) return peers;
  return { voters: [...peers], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
}

/**
 * Does this message wake a quiesced group? Heartbeat responses and
 * successful append responses do not: the leader's last ordinary heartbeats
 * and commit-carrying appends are answered after it quiesced, and a leader
 * only quiesces when every follower has matched its last index, so those
 * answers change nothing (CockroachDB ignores them likewise). Everything
 * else (appends, votes, rejections, snapshots, reads, transfers) wakes it.
 */
function wakes(m: Message): boolean {
  if (m.type === 'heartbeatResp') return false;
  if (m.type === 'appResp' && !m.reject) return false;
  return true;
}

/** The multi-raft host of one node. */
export class MultiRaftHost {
  readonly nodeId: NodeId;
  readonly logStore: LogStore;
  readonly transport: Transport;
  readonly metrics: HostMetrics;
  readonly stats: HostStats = {
    turns: 0, ticks: 0, groupTicks: 0, readys: 0, flushes: 0, readysPerFlushMax: 0, turnMsMax: 0, heartbeatsSent: 0, coalescedMessages: 0, coalescedHeartbeats: 0, coalescedHeartbeatsPerMessageMax: 0,
    quiesced: 0, unquiesced: 0, electionsAdmitted: 0, dormantWoken: 0, silentNodeWakes: 0, leaseForfeitsQuiesce: 0, leaseForfeitsTicksBehind: 0, turnsHeldForRoom: 0, truncations: 0, snapshotsSent: 0, snapshotsReceived: 0,
  };
  private readonly ticker: Ticker;
  private readonly random: RandomSource;
  private readonly raftDefaults: HostRaftConfig;
  private readonly limits: HostLimits;
  private readonly groups = new Map<number, HostedGroup>();
  /** Groups that tick: neither quiesced nor dormant. */
  private readonly active = new Set<HostedGroup>();
  /** Dormant leaderless groups waiting for an election slot (election-queue.ts). */
  private readonly elections: ElectionQueue<HostedGroup>;
  /** Groups that may have a Ready (stepped, ticked, proposed to, or left over by a bound). */
  private readonly dirty = new Set<HostedGroup>();
  /**
   * Leaders ticked since their last quiesce check. A leader is checked once its
   * Ready of the tick has been handled, in whichever turn that is: with more dirty
   * groups than readysPerTurnMax, most are handled in the turns after the tick.
   */
  private readonly quiesceCheck = new Set<HostedGroup>();
  /** Groups whose snapshot source asked for an image. */
  private readonly snapshotWanted = new Set<HostedGroup>();
  private readonly loop: DriveLoop;
  private readonly liveness: NodeLiveness;
  /** Heartbeats (and responses) of this turn, per peer node, sent coalesced at the end of the turn. */
  private readonly heartbeatsOut = new Map<NodeId, HeartbeatPart[]>();
  /** Every other node that is a member of some hosted group (recomputed when memberships change). */
  private memberNodes: NodeId[] = [];
  private memberNodesStale = true;
  private tickPending = false;
  /** Something other than a Ready was staged (snapshot record, truncation): the next flush syncs. */
  private syncPending = false;
  private tickCount = 0;
  /** Real-time check of the ticks behind leader leases (undefined: the ticker's ticks are the time). */
  private leaseClock: LeaseClock | undefined;
  /** Read counters of removed groups, so the metric never goes down. */
  private readonly readsOfRemoved: RaftReadCounters = { lease: 0, heartbeatQuorum: 0, singleVoter: 0 };
  private stopped = false;
  private fatal: unknown = undefined;

  constructor(private readonly options: HostOptions) {
    if (!Number.isSafeInteger(options.nodeId) || options.nodeId <= 0) {
      throw new HostError('INVALID_ARGUMENT', `node id ${options.nodeId} must be a positive safe integer`);
    }
    this.nodeId = options.nodeId;
    this.logStore = options.logStore;
    this.ticker = options.ticker ?? new IntervalTicker();
    this.random = options.random ?? seededRandom(options.nodeId * 2654435761);
    this.raftDefaults = { ...HOST_RAFT_DEFAULTS, ...options.raft };
    this.limits = { ...HOST_LIMITS_DEFAULTS, ...options.limits };
    // Ping at a quarter of the election timeout; silence after a full one (in ticks, as raft counts).
    const et = this.raftDefaults.electionTick;
    this.liveness = new NodeLiveness(Math.max(1, Math.floor(et / 4)), et);
    // An admitted group holds its slot for at most three election timeouts (randomized timeouts reach two).
    this.elections = new ElectionQueue(this.limits.electionsInFlightMax, 3 * et);
    this.loop = new DriveLoop(() => this.turn(), (e) => this.fail(e));
    this.transport = options.transport({
      onMessage: (groupId, msg, fromNode) => this.onMessage(groupId, msg, fromNode),
      isKnownGroup: (groupId) => groupId === LIVENESS_GROUP_ID || this.groups.has(groupId),
      onUnknownGroup: (groupId, msg, fromNode) => this.options.onUnknownGroup?.(groupId, msg, fromNode),
      onUnreachable: (nodeId) => this.onUnreachable(nodeId),
      onSnapshotStatus: (toNode, groupId, _msg, ok) => this.onSnapshotStatus(toNode, groupId, ok),
      // Groups held back for lack of send room go on once a backed-up peer drains.
      onBulkRoom: () => {
        if (!this.stopped && this.dirty.size > 0) this.loop.wake();
      },
    });
    this.metrics = new HostMetrics(
      {
        proposalsPending: () => {
          let n = 0;
          for (const g of this.groups.values()) n += g.proposals.count;
          return n;
        },
        hasLeader: () => {
          for (const g of this.groups.values()) if (g.lead === 0) return 0;
          return 1;
        },
        groups: () => ({
          total: this.groups.size,
          active: this.active.size,
          quiesced: this.groups.size - this.active.size - this.elections.queued,
          dormant: this.elections.queued,
        }),
        reads: () => this.readCounters(),
        leaseForfeits: () => ({ quiesce: this.stats.leaseForfeitsQuiesce, ticksBehind: this.stats.leaseForfeitsTicksBehind }),
      },
      () => this.transport.stats,
      () => this.logStore.counters,
      options.metricsLabels,
    );
  }

  // ---- life cycle ----

  /** Starts the transport server and the clock; resolves with the bound port. */
  async start(): Promise<number> {
    if (this.stopped) throw new HostError('STOPPED', 'start() after stop()');
    const port = await this.transport.start();
    const periodMs = this.ticker.intervalMs;
    if (periodMs !== undefined) this.leaseClock = new LeaseClock(periodMs, performance.now());
    this.ticker.start(() => {
      this.tickPending = true;
      this.loop.wake();
    });
    this.loop.wake();
    return port;
  }

  /** Stops the clock and the loop (after its current turn), closes the transport and the log store. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.ticker.stop();
    await this.loop.stop();
    await this.transport.close();
    if (!this.logStore.failed) await this.logStore.close();
  }

  /** Resolves when the loop has nothing running or scheduled (tests). */
  idle(): Promise<void> {
    return this.loop.idle();
  }

  /** The error that stopped the loop, if any. */
  get fatalError(): unknown {
    return this.fatal;
  }

  // ---- groups ----

  /**
   * Hosts a group: reopens it from the log store if it exists there (a
   * restart: hard state, log and conf state come back; the state machine's
   * applied index tells raft what not to hand out again), else creates it
   * with `peers` as its initial membership. Returns the group's handle.
   */
  async createGroup(groupId: number, options: HostGroupOptions): Promise<GroupHandle> {
    this.checkRunning();
    if (this.groups.has(groupId)) throw new HostError('GROUP_EXISTS', `group ${groupId} is already hosted`);
    const replicaId = options.replicaId ?? this.nodeId;
    if (replicaId !== this.nodeId) {
      throw new HostError('INVALID_ARGUMENT', `replica id ${replicaId} must equal the node id ${this.nodeId} (docs/host.md)`);
    }
    const reopened = this.logStore.has(groupId);
    const log = reopened ? this.logStore.group(groupId) : this.bootstrap(groupId, toConfState(options.peers));
    const handle = this.makeHandle(groupId, replicaId);
    const supplier = options.stateMachine;
    const sm = typeof supplier === 'function' ? await supplier(handle) : supplier;
    if (this.groups.has(groupId)) throw new HostError('GROUP_EXISTS', `group ${groupId} is already hosted`);
    // A fresh state machine (applied 0) of a bootstrapped group starts at the initial index.
    const smApplied = sm.appliedIndex();
    const applied = smApplied === 0 && log.snapshotMeta.index === GROUP_INIT_INDEX ? GROUP_INIT_INDEX : smApplied;
    if (applied < log.snapshotMeta.index) {
      throw new RaftInvariantError(`group ${groupId}: state machine applied ${applied} is below the log's snapshot ${log.snapshotMeta.index}`);
    }
    const rc = { ...this.raftDefaults, ...options.raft };
    const config: RaftConfig = {
      id: replicaId,
      electionTick: rc.electionTick,
      heartbeatTick: rc.heartbeatTick,
      random: this.random,
      applied: Math.min(applied, log.hardState.commit),
      preVote: rc.preVote,
      checkQuorum: rc.checkQuorum,
      readOnlyOption: rc.readOnlyOption,
      leaseDriftMarginTicks: rc.leaseDriftMarginTicks ?? hostLeaseDriftMarginTicks(rc.electionTick),
      // A replica created here has acknowledged no leader yet: it may vote for its group's
      // first campaigner at once (a dormant replica does not tick its refusal window away).
      freshReplica: !reopened,
      maxSizePerMsg: rc.maxSizePerMsg,
      maxInflightMsgs: rc.maxInflightMsgs,
      maxUncommittedEntriesSize: rc.maxUncommittedEntriesSize,
      maxCommittedSizePerReady: rc.maxCommittedSizePerReady,
    };
    const raw = new RawNode(config, log);
    const g = new HostedGroup(groupId, replicaId, raw, log, sm, this.limits);
    log.setSnapshotSource(this.snapshotSource(g));
    this.groups.set(groupId, g);
    this.memberNodesStale = true;
    if (log.confState.voters.length > 0) {
      // Leaderless: dormant (not ticking) until raft learns a leader, a request needs it or the
      // election queue admits it: no election storm. The other replicas of a brand-new group give
      // their campaigner time to win (its leader's first append wakes them).
      g.dormant = true;
      const notBefore = reopened ? 0 : this.tickCount + 2 * this.raftDefaults.electionTick;
      this.elections.enqueue(g, options.campaign === true, notBefore);
    } else {
      this.active.add(g); // uninitialized: waits for the leader's snapshot, cannot campaign
    }
    this.markDirty(g);
    return handle;
  }

  /**
   * Creates a group's raft state. A group with members starts with its log
   * truncated at GROUP_INIT_INDEX (term GROUP_INIT_INDEX), so the initial
   * membership lives in snapshot metadata, not in log entries: a replica
   * added later (created with no members) can only be initialized by a
   * snapshot, never by replaying a log that lacks the initial membership.
   * This is TiKV's RAFT_INIT_LOG_INDEX. A group with no members is an
   * uninitialized replica waiting for that snapshot.
   */
  private bootstrap(groupId: number, confState: ConfState): GroupLog {
    this.syncPending = true;
    if (confState.voters.length === 0) return this.logStore.createGroup(groupId, { confState });
    return this.logStore.createGroup(groupId, {
      confState,
      truncatedState: { index: GROUP_INIT_INDEX, term: GROUP_INIT_INDEX },
      hardState: { term: GROUP_INIT_INDEX, vote: 0, commit: GROUP_INIT_INDEX },
    });
  }

  /**
   * Stops hosting a group and destroys its raft state in the log store
   * (the state machine's data is its owner's to delete). Resolves when the
   * group's keys are durably gone.
   */
  async removeGroup(groupId: number): Promise<void> {
    const g = this.groups.get(groupId);
    if (g === undefined) throw new HostError('GROUP_NOT_FOUND', `group ${groupId} is not hosted`);
    g.removed = true;
    addReadCounters(this.readsOfRemoved, g.raw.readCounters);
    g.log.setSnapshotSource(undefined);
    this.groups.delete(groupId);
    this.active.delete(g);
    this.dirty.delete(g);
    this.quiesceCheck.delete(g);
    this.elections.remove(g);
    this.elections.settle(g);
    this.memberNodesStale = true;
    // The running turn may hold this group's Ready; let it finish before the records go
    // (later turns no longer see the group).
    await this.loop.settle();
    await this.logStore.destroyGroup(groupId);
  }

  /** The handle of a hosted group. */
  handle(groupId: number): GroupHandle {
    const g = this.groups.get(groupId);
    if (g === undefined) throw new HostError('GROUP_NOT_FOUND', `group ${groupId} is not hosted`);
    return this.makeHandle(groupId, g.replicaId);
  }

  /** Ids of the hosted groups. */
  groupIds(): number[] {
    return [...this.groups.keys()];
  }

  /** Read points this node confirmed as leader, by how, over every group it hosts or hosted. */
  readCounters(): RaftReadCounters {
    const sum = { ...this.readsOfRemoved };
    for (const g of this.groups.values()) addReadCounters(sum, g.raw.readCounters);
    return sum;
  }

  /** Is the group quiesced (not ticking)? Undefined if not hosted. */
  isQuiesced(groupId: number): boolean | undefined {
    return this.groups.get(groupId)?.quiesced;
  }

  // ---- the handle ----

  private makeHandle(groupId: number, replicaId: NodeId): GroupHandle {
    const get = (): HostedGroup => {
      this.checkRunning();
      const g = this.groups.get(groupId);
      if (g === undefined) throw new HostError('GROUP_NOT_FOUND', `group ${groupId} is not hosted`);
      return g;
    };
    return {
      groupId,
      replicaId,
      propose: (data: Uint8Array) => this.propose(get(), data),
      proposeConfChange: (cc: ConfChange) => {
        const g = get();
        this.wakeForRequest(g);
        this.unquiesce(g);
        g.raw.proposeConfChange(cc);
        this.markDirty(g);
      },
      readIndex: (ctx: Uint8Array) => {
        const g = get();
        if (g.readsPending >= this.limits.readsPendingMax) {
          throw new TooManyRequestsError(groupId, `group ${groupId}: ${g.readsPending} reads pending`);
        }
        this.wakeForRequest(g);
        this.unquiesce(g);
        this.checkLeaseClock(g);
        g.lastReadTick = this.tickCount;
        g.raw.readIndex(ctx);
        if (g.readsPending === 0) g.readsSinceTick = this.tickCount;
        g.readsPending++;
        this.markDirty(g);
      },
      leaseReadIndex: (): number | undefined => {
        const g = get();
        // A quiesced leader has no lease; awake, it forms one for the reads that follow.
        if (g.role === 'leader') this.unquiesce(g);
        this.checkLeaseClock(g);
        g.lastReadTick = this.tickCount;
        return g.raw.leaseReadIndex();
      },
      transferLeader: (to: NodeId) => {
        const g = get();
        this.wakeForRequest(g);
        this.unquiesce(g);
        g.raw.transferLeader(to);
        this.markDirty(g);
      },
      status: (): RaftStatus => get().raw.status(),
      basicStatus: (): BasicRaftStatus => get().raw.basicStatus(),
    };
  }

  private propose(g: HostedGroup, data: Uint8Array): void {
    try {
      g.proposals.check(data.byteLength);
      this.wakeForRequest(g);
      this.unquiesce(g);
      g.raw.propose(data);
    } catch (e) {
      this.metrics.proposalsFailed.inc();
      throw e;
    }
    const st = g.raw.basicStatus();
    // On the leader the entry is at lastIndex now; a forwarded one lands after our lastIndex at the earliest.
    g.proposals.add(data.byteLength, st.role === 'leader' ? st.lastIndex : st.lastIndex + 1);
    this.markDirty(g);
  }

  // ---- transport handlers ----

  private onMessage(groupId: number, msg: Message, fromNode: NodeId): void {
    if (this.stopped) return;
    this.liveness.heard(fromNode, this.tickCount);
    if (groupId !== LIVENESS_GROUP_ID) {
      this.onGroupMessage(groupId, msg);
      return;
    }
    // Node-level: a liveness ping (hearing it was the point) or a pack of coalesced heartbeats.
    if (!isCoalesced(msg)) return;
    const parts = decodeCoalesced(msg, fromNode, this.nodeId);
    if (parts === undefined) return; // malformed: dropped like a lost message
    for (const p of parts) this.onGroupMessage(p.groupId, p.msg);
  }

  private onGroupMessage(groupId: number, msg: Message): void {
    const g = this.groups.get(groupId);
    if (g === undefined) return;
    const quiesceMsg = isQuiesceMessage(msg);
    if (!quiesceMsg && wakes(msg)) this.unquiesce(g);
    // A reopened replica refuses votes for electionTick of its ticks (it may have promised a
    // leader a lease before the restart); a dormant one must tick for that window to pass.
    if (g.dormant && (msg.type === 'preVote' || msg.type === 'vote')) this.wake(g, false);
    if (msg.type === 'readIndex') {
      // A follower's read, answered here if we lead.
      this.checkLeaseClock(g);
      g.lastReadTick = this.tickCount;
    }
    try {
      g.raw.step(msg);
    } catch (e) {
      if (e instanceof RaftInvariantError) {
        this.fail(e);
        return;
      }
      return; // a malformed or local-only message from a peer: nothing to do with it
    }
    if (quiesceMsg && msg.type === 'heartbeat' && !g.quiesced) {
      const st = g.raw.basicStatus();
      // Only the current leader at the current term may quiesce us.
      if (st.role === 'follower' && st.lead === msg.from && st.term === msg.term) this.quiesce(g);
    }
    this.markDirty(g);
  }

  private onUnreachable(nodeId: NodeId): void {
    if (this.stopped) return;
    for (const g of this.groups.values()) {
      if (!g.hasMember(nodeId)) continue;
      g.raw.reportUnreachable(nodeId);
      // A quiesced leader must resume probing; a quiesced follower may have lost its leader
      // (the only way it learns of that while quiesced: docs/host.md, limitation).
      if (g.quiesced && (g.role === 'leader' || g.lead === nodeId)) this.unquiesce(g);
      this.markDirty(g);
    }
  }

  private onSnapshotStatus(toNode: NodeId, groupId: number, ok: boolean): void {
    const g = this.groups.get(groupId);
    if (g === undefined || this.stopped) return;
    g.raw.reportSnapshot(toNode, ok);
    g.snapshotCache = undefined; // the image has been streamed (or failed); build afresh if needed again
    this.unquiesce(g);
    this.markDirty(g);
  }

  /** Before a read may use the lease: forfeit it if ticks are behind real time (lease-clock.ts). */
  private checkLeaseClock(g: HostedGroup): void {
    if (this.leaseClock === undefined || this.leaseClock.leaseUsable(performance.now())) return;
    g.raw.forfeitLease();
    this.stats.leaseForfeitsTicksBehind++;
  }

  // ---- quiescence ----

  private quiesce(g: HostedGroup): void {
    if (g.quiesced) return;
    g.quiesced = true;
    // A quiesced leader is not ticked, so its lease (counted in ticks) would never run out.
    if (g.role === 'leader') {
      g.raw.forfeitLease();
      this.stats.leaseForfeitsQuiesce++;
    }
    this.active.delete(g);
    this.stats.quiesced++;
    this.metrics.quiesceEvents.inc();
  }

  private unquiesce(g: HostedGroup): void {
    if (!g.quiesced || g.removed) return;
    g.quiesced = false;
    this.active.add(g);
    this.stats.unquiesced++;
  }

  // ---- dormant groups (election-queue.ts) ----

  /** A request needs a dormant group: it wakes and campaigns now (on demand, like CockroachDB after a restart). */
  private wakeForRequest(g: HostedGroup): void {
    if (!g.dormant) return;
    this.wake(g, true);
    this.loop.wake();
  }

  /** Ends a dormant group's wait outside the queue's admission (a request, or raft found a leader). */
  private wake(g: HostedGroup, campaign: boolean): void {
    this.elections.remove(g);
    this.stats.dormantWoken++;
    this.startTicking(g, campaign);
  }

  /** Called inside a turn too, so it only marks the group dirty: waking the loop there would start an overlapping turn. */
  private startTicking(g: HostedGroup, campaign: boolean): void {
    g.dormant = false;
    this.active.add(g);
    if (campaign) g.raw.campaign();
    this.dirty.add(g);
  }

  /** Admits queued groups while fewer than electionsInFlightMax are electing. */
  private admitElections(): void {
    if (this.elections.queued === 0) return;
    for (const { item: g, campaign } of this.elections.admit(this.tickCount)) {
      this.stats.electionsAdmitted++;
      this.startTicking(g, campaign);
    }
  }

  /** Leader side: quiesce the group and tell every follower to, if it is idle. */
  private maybeQuiesceLeader(g: HostedGroup): void {
    if (g.readsPending > 0 && this.tickCount - g.readsSinceTick > 2 * this.raftDefaults.electionTick) {
      g.readsPending = 0; // lost in transit (raft drops forwarded reads silently): stop waiting for them
    }
    // Cheap checks first: status() copies the progress of every member.
    if (g.proposals.count > 0 || g.readsPending > 0 || g.raw.hasReady()) return;
    const st = g.raw.status();
    const ok = canQuiesce(st, {
      hasReady: g.raw.hasReady(),
      proposalsPending: g.proposals.count,
      readsPending: g.readsPending,
      readRecently: this.tickCount - g.lastReadTick < this.raftDefaults.electionTick,
    });
    if (!ok) return;
    for (const id of st.progress!.keys()) {
      if (id !== st.id) this.send(g, quiesceHeartbeat(st, id));
    }
    this.quiesce(g);
  }

  // ---- the loop ----

  private markDirty(g: HostedGroup): void {
    this.dirty.add(g);
    this.loop.wake();
  }

  /** One loop turn; resolves true if work was left for another turn. */
  private async turn(): Promise<boolean> {
    const t0 = performance.now();
    try {
      return await this.turnSteps();
    } finally {
      this.stats.turnMsMax = Math.max(this.stats.turnMsMax, performance.now() - t0);
    }
  }

  private async turnSteps(): Promise<boolean> {
    this.stats.turns++;
    this.metrics.loopTurns.inc();
    const ticked = this.tickPending;
    if (ticked) {
      this.tickActive();
      this.elections.expire(this.tickCount);
    }
    this.admitElections();

    const batch: { g: HostedGroup; rd: Ready }[] = [];
    // Flow control: a group's Ready is taken only while every peer it sends to has room in its
    // bulk send queue; the others stay dirty, in order, for a later turn (send-budget.ts).
    const budget = new SendBudget((n) => this.transport.bulkRoom(n), this.raftDefaults.maxSizePerMsg);
    this.refreshMemberNodes();
    let bounded = false;
    for (const g of this.dirty) {
      if (batch.length >= this.limits.readysPerTurnMax || this.logStore.pendingBytes >= this.limits.stageBytesPerTurnMax) {
        bounded = true;
        break;
      }
      if (g.removed || !g.raw.hasReady()) {
        this.dirty.delete(g);
        continue;
      }
      if (!budget.admits(this.peersOf(g))) {
        if (budget.exhausted(this.memberNodes)) break;
        continue;
      }
      this.dirty.delete(g);
      const rd = g.raw.ready();
      budget.charge(rd.earlyMessages);
      budget.charge(rd.messages);
      await this.stage(g, rd);
      batch.push({ g, rd });
    }

    // A leader's appends and heartbeats leave before its own write is durable, so the
    // followers' writes overlap the leader's (raft counts the leader's copy once advance says
    // it is durable). Heartbeats go coalesced, as below.
    let early = 0;
    for (const { g, rd } of batch) {
      for (const m of rd.earlyMessages) this.send(g, m);
      early += rd.earlyMessages.length;
    }
    if (early > 0) {
      this.flushHeartbeats();
      this.transport.flush();
    }

    // Readys that only move commit indexes need no write of their own (raft's mustSync): a
    // lost commit index is learnt again from the leader, and an applied index past it counts
    // as committed on restart. Their hard states stay staged for the next synced flush (the
    // next entries), a tick, or once they add up; so do truncated keys still to delete (each
    // flush deletes a bounded chunk). A put then costs each member one log write, not two.
    let unsyncedWrite: Promise<void> | undefined;
    const mustSync = this.syncPending || batch.some((b) => b.rd.mustSync);
    const deferred = this.logStore.pendingOps > 0 || this.logStore.garbageKeys > 0;
    if (mustSync || (deferred && (ticked || this.logStore.pendingBytes >= DEFERRED_LOG_BYTES_MAX))) {
      const t0 = performance.now();
      this.syncPending = false;
      const write = this.logStore.flush({ sync: mustSync });
      // An unsynced write completes by the turn's end (nothing waits for it); the log engine
      // is sequential, so the next synced write covers it.
      if (mustSync) {
        await write;
        this.metrics.fsyncDuration.observe((performance.now() - t0) / 1000);
      } else {
        unsyncedWrite = write;
        write.catch(() => undefined); // awaited (and its failure raised) after applying
      }
      this.stats.flushes++;
      this.stats.readysPerFlushMax = Math.max(this.stats.readysPerFlushMax, batch.length);
    }
    this.stats.readys += batch.length;
    this.metrics.readysHandled.inc(batch.length);

    // Durable: the other messages may leave now. The transport sends each peer's share as one batch.
    let durable = 0;
    for (const { g, rd } of batch) {
      for (const m of rd.messages) this.send(g, m);
      durable += rd.messages.length;
    }
    // Heartbeats leave now too, not after a possibly slow apply: late heartbeats cause elections.
    this.flushHeartbeats();
    // A follower's append acknowledgements are on every write's critical path: written now, not
    // after this turn's apply has run to its first await.
    if (durable > 0) this.transport.flush();

    await Promise.all(batch.map(({ g, rd }) => this.applyReady(g, rd)));
    if (unsyncedWrite !== undefined) await unsyncedWrite;

    await this.maintain(batch.map((b) => b.g));
    for (const g of this.quiesceCheck) {
      if (g.removed || g.quiesced || g.role !== 'leader') {
        this.quiesceCheck.delete(g);
      } else if (!this.dirty.has(g)) {
        this.quiesceCheck.delete(g);
        this.maybeQuiesceLeader(g);
      }
    }
    this.flushHeartbeats(); // the quiesce heartbeats
    if (budget.blocked.size > 0) this.stats.turnsHeldForRoom++;
    // Groups held for send room wait for a drain (onBulkRoom) or the next tick, not a busy loop.
    if (budget.blocked.size > 0 && !bounded && !budget.roomReturned()) return false;
    return this.dirty.size > 0;
  }

  private tickActive(): void {
    this.tickPending = false;
    this.tickCount++;
    this.stats.ticks++;
    this.tickLiveness();
    if (this.leaseClock?.onTick(performance.now()) === true) {
      // Ticks fell behind real time (dropped while a turn was slow): leases measured in them lapse.
      for (const g of this.active) {
        if (g.role !== 'leader') continue;
        g.raw.forfeitLease();
        this.stats.leaseForfeitsTicksBehind++;
      }
    }
    this.stats.groupTicks += this.active.size;
    for (const g of this.active) {
      g.raw.tick();
      this.dirty.add(g);
      if (g.role === 'leader') this.quiesceCheck.add(g);
    }
  }

  /**
   * Node liveness (liveness.ts): ping peers while some group is quiesced,
   * and wake the quiesced groups of a node that fell silent.
   */
  private tickLiveness(): void {
    if (this.active.size === this.groups.size) return; // nothing quiesced: raft's own heartbeats suffice
    this.refreshMemberNodes();
    if (this.liveness.shouldPing(this.tickCount)) {
      for (const n of this.memberNodes) this.transport.send(n, LIVENESS_GROUP_ID, livenessPing(this.nodeId, n));
    }
    for (const n of this.liveness.newlySilent(this.memberNodes, this.tickCount)) {
      for (const g of this.groups.values()) {
        if (g.quiesced && g.hasMember(n)) {
          this.stats.silentNodeWakes++;
          this.unquiesce(g);
          this.dirty.add(g);
        }
      }
    }
  }

  /** Recomputes the other nodes that are members of some hosted group, if memberships changed. */
  private refreshMemberNodes(): void {
    if (!this.memberNodesStale) return;
    const nodes = new Set<NodeId>();
    for (const g of this.groups.values()) {
      const cs = g.log.confState;
      for (const list of [cs.voters, cs.learners, cs.votersOutgoing, cs.learnersNext]) for (const n of list) nodes.add(n);
    }
    nodes.delete(this.nodeId);
    this.memberNodes = [...nodes];
    this.memberNodesStale = false;
  }

  /** The other member nodes of a group: the peers its Ready may send to. */
  private *peersOf(g: HostedGroup): Iterable<NodeId> {
    const cs = g.log.confState;
    for (const list of [cs.voters, cs.learners, cs.votersOutgoing, cs.learnersNext]) for (const n of list) if (n !== this.nodeId) yield n;
  }

  /** Stages a Ready; a full pending batch is flushed first (durability only comes earlier). */
  private async stage(g: HostedGroup, rd: Ready): Promise<void> {
    const ops = {
      entries: rd.entries,
      ...(rd.hardState !== undefined ? { hardState: rd.hardState } : {}),
      ...(rd.snapshot !== undefined && !isEmptySnapshot(rd.snapshot) ? { snapshot: rd.snapshot } : {}),
    };
    try {
      this.logStore.stage(g.groupId, ops);
    } catch (e) {
      if (!(e instanceof LogStoreError) || e.code !== 'BATCH_FULL') throw e;
      await this.logStore.flush({ sync: true });
      this.logStore.stage(g.groupId, ops);
    }
  }

  private send(g: HostedGroup, m: Message): void {
    if (m.type === 'heartbeat') {
      this.stats.heartbeatsSent++;
      this.metrics.heartbeatsSent.inc();
    } else if (m.type === 'snap') {
      this.stats.snapshotsSent++;
      this.metrics.snapshotsSent.inc();
    }
    // Replica id = node id (docs/host.md).
    if (!isCoalescable(m)) {
      this.transport.send(m.to, g.groupId, m);
      return;
    }
    let parts = this.heartbeatsOut.get(m.to);
    if (parts === undefined) {
      parts = [];
      this.heartbeatsOut.set(m.to, parts);
    }
    parts.push({ groupId: g.groupId, msg: m });
  }

  /** Sends this turn's heartbeats: one coalesced message per peer (per COALESCED_HEARTBEATS_PER_MESSAGE_MAX). */
  private flushHeartbeats(): void {
    for (const [to, parts] of this.heartbeatsOut) {
      if (parts.length === 1) {
        const p = parts[0]!;
        this.transport.send(to, p.groupId, p.msg);
        continue;
      }
      for (let i = 0; i < parts.length; i += COALESCED_HEARTBEATS_PER_MESSAGE_MAX) {
        const chunk = parts.slice(i, i + COALESCED_HEARTBEATS_PER_MESSAGE_MAX);
        this.transport.send(to, LIVENESS_GROUP_ID, encodeCoalesced(this.nodeId, to, chunk));
        this.stats.coalescedMessages++;
        this.metrics.coalescedMessages.inc();
        this.stats.coalescedHeartbeats += chunk.length;
        this.stats.coalescedHeartbeatsPerMessageMax = Math.max(this.stats.coalescedHeartbeatsPerMessageMax, chunk.length);
      }
    }
    this.heartbeatsOut.clear();
  }

  private async applyReady(g: HostedGroup, rd: Ready): Promise<void> {
    if (g.removed) return;
    if (rd.softState !== undefined) this.onSoftState(g, rd.softState);
    if (rd.snapshot !== undefined && !isEmptySnapshot(rd.snapshot)) {
      await g.sm.installSnapshot(rd.snapshot);
      g.snapshotCache = undefined;
      this.stats.snapshotsReceived++;
      this.metrics.snapshotsReceived.inc();
    }
    if (rd.committedEntries.length > 0) await this.applyCommitted(g, rd.committedEntries);
    if (g.removed) return;
    if (rd.readStates.length > 0) {
      g.readsPending = Math.max(0, g.readsPending - rd.readStates.length);
      g.readsSinceTick = this.tickCount;
      g.sm.onReadStates?.(rd.readStates);
    }
    g.raw.advance(rd);
    const last = rd.committedEntries[rd.committedEntries.length - 1];
    const applied = last?.index ?? rd.snapshot?.meta.index ?? 0;
    if (applied > 0) g.proposals.release(applied);
    // More committed entries than one Ready carries, or steps that arrived during the turn.
    if (g.raw.hasReady()) this.dirty.add(g);
  }

  /**
   * Applies committed entries. Conf changes go through raft first, in log
   * order, and their resulting ConfState is flushed BEFORE the state machine
   * records an applied index past them: on restart raft reads its membership
   * from the log store and will not hand those entries out again.
   */
  private async applyCommitted(g: HostedGroup, entries: readonly Entry[]): Promise<void> {
    const applied: AppliedEntry[] = [];
    let confChanged = false;
    let proposals = 0;
    for (const entry of entries) {
      if (entry.type === 'confChange') {
        let cs: ConfState | undefined;
        try {
          cs = g.raw.applyConfChange(decodeConfChange(entry.data));
        } catch (e) {
          if (e instanceof RaftInvariantError) throw e;
          cs = undefined; // refused by raft (e.g. invalid now): the entry is a no-op
        }
        if (cs !== undefined) {
          this.logStore.stage(g.groupId, { confState: cs });
          confChanged = true;
          this.memberNodesStale = true;
          applied.push({ entry, confState: cs });
          continue;
        }
      } else if (entry.data.byteLength > 0) {
        proposals++;
      }
      applied.push({ entry });
    }
    this.metrics.proposalsCommitted.inc(proposals);
    if (confChanged) await this.logStore.flush({ sync: true });
    const t0 = performance.now();
    // Release the window per applied entry, not per Ready: a Ready can carry
    // a whole window of committed entries, and the state machine answers
    // each proposer as its entry applies, so those proposers come back
    // while the rest of the batch is still applying.
    await g.sm.applyEntries(applied, (index) => {
      if (!g.removed) g.proposals.release(index);
    });
    this.metrics.applyDuration.observe((performance.now() - t0) / 1000);
    this.metrics.proposalsApplied.inc(proposals);
  }

  private onSoftState(g: HostedGroup, soft: SoftState): void {
    if (soft.leader !== 0) this.elections.settle(g);
    // A dormant group steps messages like any other but ticks only once it knows a leader (or runs
    // an election: a transfer's timeoutNow): answering a candidate must not start its own timer.
    if (g.dormant && (soft.leader !== 0 || soft.role !== 'follower')) this.wake(g, false);
    if (soft.leader !== g.lead) {
      if (soft.leader !== 0) this.metrics.leaderChanges.inc();
      // Proposals in flight under the old leader are failed by the state machine (or lost): stop counting them.
      g.proposals.clear();
      g.readsPending = 0;
    }
    g.lead = soft.leader;
    g.role = soft.role;
    // A quiesced replica that lost its leader must tick again: a quiesced leader steps down on a
    // higher term carried by a message that does not wake it (a heartbeat response), and nothing
    // would ever make it campaign.
    if (soft.role !== 'follower' || soft.leader === 0) this.unquiesce(g);
    g.sm.onSoftState?.(soft);
  }

  // ---- log truncation and snapshots ----

  /**
   * Truncates the long logs among the groups that applied this turn and
   * builds the snapshots followers wait for, at most snapshotBuildsPerTurnMax
   * per turn (the rest wait: a group stays long, a wanted one stays wanted).
   */
  private async maintain(applied: readonly HostedGroup[]): Promise<void> {
    let builds = 0;
    const candidates = new Set<HostedGroup>(this.snapshotWanted);
    for (const g of applied) candidates.add(g);
    for (const g of candidates) {
      if (g.removed) {
        this.snapshotWanted.delete(g);
        continue;
      }
      const long = g.log.retainedEntries > this.limits.logTruncateEntries || g.log.retainedBytes > this.limits.logTruncateBytes;
      if (!long && !g.snapshotWanted) continue;
      if (builds >= this.limits.snapshotBuildsPerTurnMax) {
        this.dirty.add(g); // come back next turn
        continue;
      }
      builds++;
      this.snapshotWanted.delete(g);
      await this.buildSnapshot(g, long);
    }
  }

  /**
   * Asks the state machine for an image at its applied index (= raft's: the
   * loop applied everything it handed out) — or, when no follower wants one,
   * only for that index made durable — records it as the group's snapshot
   * and, if `truncate`, compacts the log below it minus logKeepEntries. The
   * image is cached only when a follower wants it.
   */
  private async buildSnapshot(g: HostedGroup, truncate: boolean): Promise<void> {
    const wanted = g.snapshotWanted;
    g.snapshotWanted = false;
    // Truncation alone needs only a durable applied index, not an image.
    let img: StateMachineSnapshot | undefined;
    let index: number;
    if (wanted || g.sm.persistApplied === undefined) {
      img = await g.sm.buildSnapshot();
      index = img.index;
    } else {
      index = await g.sm.persistApplied();
    }
    if (g.removed) return;
    const status = g.raw.status();
    if (index > status.applied) {
      // A state machine rebuilt from an image fetched outside raft (docs/node.md, "Range
      // engines") is ahead of raft until raft hands the entries up to it out again: a snapshot
      // there would carry a config raft has not reached, and truncating to it would drop
      // entries raft still has to hand out. Try again once raft caught up.
      if (wanted) {
        g.snapshotWanted = true;
        this.snapshotWanted.add(g);
      }
      return;
    }
    const log = g.log;
    if (index > log.snapshotMeta.index && index <= log.lastIndex() && index >= log.truncatedState.index) {
      this.logStore.createSnapshot(g.groupId, index, status.config);
      this.syncPending = true;
    }
    if (img !== undefined && wanted && index === log.snapshotMeta.index) {
      g.snapshotCache = img;
      this.markDirty(g);
    }
    if (!truncate) return;
    const to = Math.min(log.snapshotMeta.index, index) - this.limits.logKeepEntries;
    if (to > log.truncatedState.index) {
      this.logStore.truncate(g.groupId, to, log.term(to));
      this.syncPending = true;
      this.stats.truncations++;
      this.metrics.logTruncations.inc();
    }
  }

  /** Raft asks for the snapshot at the recorded metadata: served from the cache, else built next turn. */
  private snapshotSource(g: HostedGroup): SnapshotSource {
    return (meta) => {
      const img = g.snapshotCache;
      if (img !== undefined && img.index === meta.index) return { meta, data: img.data };
      if (!g.snapshotWanted) {
        g.snapshotWanted = true;
        this.snapshotWanted.add(g);
        this.loop.wake();
      }
      return undefined;
    };
  }

  // ---- failure ----

  private checkRunning(): void {
    if (this.stopped) throw new HostError('STOPPED', 'the host is stopped');
    if (this.fatal !== undefined) throw new HostError('STOPPED', 'the host stopped on an error', { cause: this.fatal });
  }

  private fail(e: unknown): void {
    if (this.fatal !== undefined) return;
    this.fatal = e;
    this.ticker.stop();
    void this.loop.stop();
    this.options.onFatal?.(e);
  }
}
