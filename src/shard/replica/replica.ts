/**
 * The range replica: the state machine of one range's raft group
 * (GroupStateMachine), whose state is the MVCC keyspace of the range's span
 * [start, end), plus the API the node offers for it: writes proposed through
 * raft, linearizable and serializable reads, and membership changes for the
 * placement driver.
 *
 * Proposal lifecycle: a write is checked against the local descriptor
 * (leader, epoch, key span), encoded (RangeCommand) and proposed; its promise
 * settles when the entry is applied on THIS replica (with the MVCC result),
 * or fails with NotLeaderError when leadership is lost first (outcome
 * unknown: the caller retries with the same request id, and the dedupe table
 * answers if the first attempt did commit). Proposals and reads pending on a
 * replica are bounded.
 */
import { randomBytes } from 'node:crypto';
import type { BatchOp, Engine } from '../../storage/index.js';
import { WriteBehindEngine } from '../../storage/write-behind.js';
import type { AppliedEntry, GroupHandle, GroupStateMachine, StateMachineSnapshot } from '../../group/host/state-machine.js';
import {
  ConfChangePendingError,
  ProposalDroppedError,
  type ReadState,
  type Snapshot,
  type SoftState,
} from '../../group/raft/index.js';
import {
  MvccStore,
  type ChangesPage,
  type ChangesRequest,
  type DeleteRangeRequest,
  type DeleteRangeResult,
  type HashKVResult,
  type PrefetchKey,
  type PutRequest,
  type PutResult,
  type RangeRequest,
  type RangeResult,
  type TxnRequest,
  type TxnResult,
} from '../mvcc/index.js';
import {
  assertDescriptor,
  DATA_EPOCH_CHECK,
  epochMatches,
  FULL_EPOCH_CHECK,
  spanContainsRange,
  type Epoch,
  type RangeDescriptor,
} from '../range/descriptor.js';
import {
  EpochMismatchError,
  KeyNotInRangeError,
  LearnerNotInSyncError,
  MembershipChangeInvalidError,
  NotLeaderError,
  RangeNotInitializedError,
  ReplicaClosedError,
  RequestAbortedError,
  RequestTimeoutError,
  RequestTooLargeError,
  SnapshotInvalidError,
  TooManyRequestsError,
  requestTimeoutMs,
  type LeaderHint,
} from '../range/errors.js';
import { applyConfChangeEntry, applyNormalEntry, checkRouting, commandKeys, errorFromStored, type EntryOutcome, type RangeState } from './apply.js';
import {
  decodeCommand,
  decodeDescriptor,
  encodeCommand,
  PROPOSER_ID_BYTES_MAX,
  encodeDescriptor,
  type ChangeReplicas,
  type CommandBody,
  type CommandResult,
  type CompactionRequest,
  type CompactionResult,
  type RangeCommand,
  type RequestId,
} from './command-codec.js';
import { DEDUPE_RECORDS_MAX, DedupeTable } from './dedupe.js';
import { encodeU64, RangeKeys, requestKey } from './keys.js';
import { confChangeFor, invalidChangeReason } from './membership.js';
import { READS_PENDING_MAX, ReadTracker } from './reads.js';
import { RANGE_COUNTER_REVISION_SOURCE, type RevisionSource } from './revision.js';
import { buildImage, imageOps, parseImage, type SnapshotImage } from './snapshot.js';
import { loadAuthState, type AuthRequest, type AuthResult, type AuthState } from '../auth/index.js';
import { LeaseTable, type LeaseRecord } from '../lease/index.js';
import { RangeLeases, type KeepAliveResult, type ReplicaLeaseOptions, type TimeToLiveResult } from './range-leases.js';
import type { LeaseGrantResult, LeaseRevokeResult } from './lease-codec.js';

/** Default bound on proposals (writes and membership changes) waiting for apply. */
export const PROPOSALS_PENDING_MAX = 1024;
/** Largest encoded command proposed (etcd's --max-request-bytes default, 1.5 MiB). */
export const REQUEST_BYTES_MAX = 1_572_864;
/**
 * Raft index of a new range's initial state (TiKV's RAFT_INIT_LOG_INDEX):
 * the host bootstraps the first replicas' raft log with a snapshot at this
 * index, so a replica added later can never be sent entries from index 1 and
 * always starts from a snapshot (which carries the descriptor).
 */
export const RANGE_INIT_LOG_INDEX = 5;
/** Attempts of a local read that keeps overlapping snapshot installs. */
const READ_ATTEMPTS_MAX = 3;
/** Bytes of a generated proposer id. */
const PROPOSER_ID_BYTES = 8;
/** etcd promotes a learner only if its match index is at least this share of the leader's. */
export const PROMOTE_MATCH_RATIO_MIN = 0.9;
/** Waits for raft to learn that the previous conf change was applied, before a new one is refused for good. */
const CONF_CHANGE_APPLY_WAITS_MAX = 100;
/** etcd's default election timeout, for the default request timeout. */
const DEFAULT_ELECTION_TIMEOUT_MS = 1_000;
const CONF_CHANGE_APPLY_WAIT_MS = 5;

/** Options of Replica.open. */
export interface ReplicaOptions {
  readonly rangeId: number;
  /**
   * Written when the engine holds no descriptor for the range: the first
   * replicas of a new range. Without it (and no stored descriptor) the
   * replica is uninitialized and waits for a snapshot.
   */
  readonly bootstrap?: RangeDescriptor;
  /** The applied index written with the bootstrap descriptor (see RANGE_INIT_LOG_INDEX); default 0. */
  readonly bootstrapAppliedIndex?: number;
  /** Largest encoded command; default REQUEST_BYTES_MAX. */
  readonly requestBytesMax?: number;
  /** The group handle; may also be given later with attach(). */
  readonly handle?: GroupHandle;
  /** Proposer id of this replica's own requests (1..16 bytes); random by default. Must differ per incarnation. */
  readonly proposerId?: Uint8Array;
  /** Where write revisions come from; default: the range's own counter. */
  readonly revisionSource?: RevisionSource;
  readonly proposalsPendingMax?: number;
  readonly readsPendingMax?: number;
  readonly dedupeRecordsMax?: number;
  /** Passed to MvccStore (deletions per physical-compaction batch). */
  readonly compactionChunkOpsMax?: number;
  /** The lessor's clock, minimum TTL and expiry loop (docs/lease.md). */
  readonly lease?: ReplicaLeaseOptions;
  /**
   * How long a proposal may wait to be applied, and a linearizable read for
   * its read index, before the caller gets a RequestTimeoutError (etcd's
   * request timeout); 0 waits without limit. Default: requestTimeoutMs of a
   * 1 s election timeout (7 s).
   */
  readonly requestTimeoutMs?: number;
}

/** Options of a write or membership request. */
export interface RequestOptions {
  /** The epoch the request was routed with. */
  readonly epoch: Epoch;
  /** A retry passes the id of the first attempt; default: a fresh id of this replica. */
  readonly requestId?: RequestId;
  /** The auth revision the request's permissions were checked at; apply refuses it if the auth store moved. */
  readonly authRevision?: number;
  /** The user those permissions were checked for; apply checks the keys attached to a lease for it. */
  readonly authUser?: string;
}

/** Options of a read. */
export interface ReadOptions {
  readonly epoch: Epoch;
  /** Default 'linearizable' (ReadIndex); 'serializable' reads local state. */
  readonly consistency?: 'linearizable' | 'serializable';
  /** Aborts the wait for the read index / apply. */
  readonly signal?: AbortSignal;
}

/** etcd's ResponseHeader fields a replica knows. */
export interface ResponseHeader {
  readonly revision: number;
  readonly raftTerm: number;
}

/** A result with its response header. */
export interface Reply<T> {
  readonly header: ResponseHeader;
  readonly result: T;
}

interface Waiter {
  readonly term: number;
  resolve(outcome: EntryOutcome): void;
  reject(err: Error): void;
}

interface TransferWaiter {
  readonly to: number;
  resolve(): void;
  reject(err: Error): void;
}

/** One replica of a range: the group's state machine and the range's request API. */
export class Replica implements GroupStateMachine {
  private handle: GroupHandle | undefined;
  private readonly waiters = new Map<string, Waiter[]>();
  private waiterCount = 0;
  private readonly reads: ReadTracker;
  private transfers: TransferWaiter[] = [];
  private readonly revisionListeners = new Set<(revision: number) => void>();
  private readonly authListeners = new Set<(req: AuthRequest, result: AuthResult) => void>();
  private seq = 0;
  private readSeq = 0;
  private closed = false;
  private initialized: boolean;
  private lastLeader = 0;
  /** Set while a snapshot replaces the state: local reads wait for it. */
  private installing: Promise<void> | undefined;
  /** Bumped by every snapshot install: a read that overlapped one is run again. */
  private generation = 0;
  private readonly leases: RangeLeases;

  private constructor(
    private readonly state: RangeState,
    initialized: boolean,
    private readonly proposerId: Uint8Array,
    private readonly revisionSource: RevisionSource,
    private readonly proposalsPendingMax: number,
    private readonly compactionChunkOpsMax: number | undefined,
    private readonly requestBytesMax: number,
    readsPendingMax: number,
    handle: GroupHandle | undefined,
    leaseOptions: ReplicaLeaseOptions | undefined,
    private readonly requestTimeoutMs: number,
  ) {
    this.initialized = initialized;
    this.reads = new ReadTracker(readsPendingMax);
    this.handle = handle;
    this.leases = new RangeLeases(
      {
        state,
        submit: (body, options) => this.submit(body, options),
        requireLeader: () => void this.leaderHandle(),
        term: () => this.handle?.basicStatus().term ?? 0,
      },
      leaseOptions,
    );
  }

  /**
   * Opens (or bootstraps) the replica of `options.rangeId` stored in
   * `engine`. The range writes through a write-behind view of the engine
   * (storage/write-behind.ts): the entries of one apply batch become one
   * engine write, and every read of the range still sees every applied entry.
   */
  static async open(sharedEngine: Engine, options: ReplicaOptions): Promise<Replica> {
    const engine = new WriteBehindEngine(sharedEngine);
    const keys = new RangeKeys(options.rangeId);
    const proposerId = options.proposerId ?? randomBytes(PROPOSER_ID_BYTES);
    if (proposerId.length === 0 || proposerId.length > PROPOSER_ID_BYTES_MAX) {
      throw new RangeError(`proposerId must be 1..${PROPOSER_ID_BYTES_MAX} bytes`);
    }
    const mvcc = await MvccStore.open(engine, {
      prefix: keys.mvccPrefix,
      ...(options.compactionChunkOpsMax === undefined ? {} : { compactionChunkOpsMax: options.compactionChunkOpsMax }),
    });
    let descriptor = await loadDescriptor(engine, keys);
    if (descriptor === undefined && options.bootstrap !== undefined) {
      assertDescriptor(options.bootstrap);
      if (options.bootstrap.rangeId !== options.rangeId) throw new RangeError('bootstrap descriptor of another range');
      // Descriptor and initial applied index in one batch: a crash leaves neither or both.
      await engine.write([
        { type: 'put', key: keys.descriptor, value: encodeDescriptor(options.bootstrap) },
        mvcc.appliedIndexOp(options.bootstrapAppliedIndex ?? 0),
      ]);
      descriptor = options.bootstrap;
    }
    const state: RangeState = {
      engine,
      keys,
      mvcc,
      dedupe: await DedupeTable.load(engine, keys, options.dedupeRecordsMax ?? DEDUPE_RECORDS_MAX),
      leases: await LeaseTable.load(engine, keys),
      descriptor: descriptor ?? uninitializedDescriptor(options.rangeId),
      appliedIndex: await mvcc.appliedIndex(),
      auth: await loadAuthState(engine, keys.authState),
    };
    return new Replica(
      state,
      descriptor !== undefined,
      proposerId,
      options.revisionSource ?? RANGE_COUNTER_REVISION_SOURCE,
      options.proposalsPendingMax ?? PROPOSALS_PENDING_MAX,
      options.compactionChunkOpsMax,
      options.requestBytesMax ?? REQUEST_BYTES_MAX,
      options.readsPendingMax ?? READS_PENDING_MAX,
      options.handle,
      options.lease,
      options.requestTimeoutMs ?? requestTimeoutMs(DEFAULT_ELECTION_TIMEOUT_MS),
    );
  }

  /** Gives the replica its group handle (when the host registers the group). */
  attach(handle: GroupHandle): void {
    this.handle = handle;
  }

  /** The range's id. */
  get rangeId(): number {
    return this.state.keys.rangeId;
  }

  /** The descriptor as of the last applied entry. */
  get descriptor(): RangeDescriptor {
    return this.state.descriptor;
  }

  /** False until the replica has a descriptor (bootstrap or first snapshot). */
  get isInitialized(): boolean {
    return this.initialized;
  }

  /** The MVCC store's current revision. */
  get currentRevision(): number {
    return this.state.mvcc.currentRevision;
  }

  /** Proposals waiting for apply. */
  get pendingProposals(): number {
    return this.waiterCount;
  }

  /** Dedupe records held. */
  get dedupeRecords(): number {
    return this.state.dedupe.size;
  }

  /**
   * The engine that holds the range's keys (under `new RangeKeys(rangeId)`),
   * for node-wide maintenance that reads it from an engine snapshot or
   * compacts it (backup, Hash, Defragment). Never write through it.
   */
  get engine(): Engine {
    return this.state.engine;
  }

  // ---------------------------------------------------------------- writes

  /** etcd Put through raft. */
  put(req: PutRequest, options: RequestOptions): Promise<Reply<PutResult>> {
    return this.write({ type: 'put', request: req }, options, (r) => (r.type === 'put' ? r.response : unexpected(r)));
  }

  /** etcd DeleteRange through raft. */
  deleteRange(req: DeleteRangeRequest, options: RequestOptions): Promise<Reply<DeleteRangeResult>> {
    return this.write({ type: 'deleteRange', request: req }, options, (r) =>
      r.type === 'deleteRange' ? r.response : unexpected(r),
    );
  }

  /** etcd Txn through raft (also a read-only txn: it is ordered like a write). */
  txn(req: TxnRequest, options: RequestOptions): Promise<Reply<TxnResult>> {
    return this.write({ type: 'txn', request: req }, options, (r) => (r.type === 'txn' ? r.response : unexpected(r)));
  }

  /**
   * etcd Compact through raft. Every replica persists the compacted revision
   * in the apply batch and removes history in bounded chunks in the
   * background; with `physical`, resolves once this replica has removed it.
   */
  async compact(req: CompactionRequest, options: RequestOptions): Promise<Reply<CompactionResult>> {
    const outcome = await this.submit({ type: 'compact', request: req }, options);
    const reply = toReply(outcome, (r) => (r.type === 'compact' ? r.response : unexpected(r)));
    if (req.physical === true && outcome.removal !== undefined) {
      await outcome.removal;
      // The removal's deletes went through the write-behind view: on the engine, not queued, before answering.
      await this.state.engine.flush();
    }
    return reply;
  }

  /** An auth store command through raft (src/shard/auth); the store lives in range 1. */
  async auth(req: AuthRequest, options: RequestOptions): Promise<Reply<AuthResult>> {
    return this.write({ type: 'auth', request: req }, options, (r) => (r.type === 'auth' ? r.response : unexpected(r)));
  }

  /** The auth store as of the last applied entry. */
  get authState(): AuthState {
    return this.state.auth;
  }

  // ---------------------------------------------------------------- reads

  /**
   * etcd Range. Linearizable (default): ReadIndex, wait until applied, read;
   * on any replica. Serializable: local state, possibly stale, never
   * uncommitted. `header.revision` is the range's current revision.
   */
  async range(req: RangeRequest, options: ReadOptions): Promise<Reply<RangeResult>> {
    this.checkRead(req, options.epoch);
    if (options.consistency !== 'serializable') await this.readIndex(options.signal);
    const result = await this.readLocal((mvcc) => mvcc.range(req));
    return { header: { revision: result.revision, raftTerm: this.handle?.basicStatus().term ?? 0 }, result };
  }

  /**
   * A page of this replica's local change history (what a watch replays):
   * committed and applied here, possibly behind the leader, never
   * uncommitted. Throws CompactedError below the compacted revision.
   */
  async changes(req: ChangesRequest): Promise<ChangesPage> {
    this.assertUsable();
    return this.readLocal((mvcc) => mvcc.changes(req));
  }

  /** The revision below which this replica's history is compacted. */
  get compactRevision(): number {
    return this.state.mvcc.compactRevision;
  }

  /** Live keys in the range at its applied state. */
  get keyCount(): number {
    return this.state.mvcc.keyCount;
  }

  /**
   * Calls `listener` with the range's current revision whenever applied
   * entries or an installed snapshot may have moved it (watchers then read
   * the new history with {@link changes}). Returns the unsubscribe function.
   */
  onRevision(listener: (revision: number) => void): () => void {
    this.revisionListeners.add(listener);
    return () => this.revisionListeners.delete(listener);
  }

  /**
   * Calls `listener` for every auth command this replica applies with
   * success (not for a retry answered from the dedupe table), before its
   * proposer is answered: every member's gateway learns of an Authenticate's
   * token and of users whose tokens end, as etcd's members do at apply.
   * Returns the unsubscribe function.
   */
  onAuthApplied(listener: (req: AuthRequest, result: AuthResult) => void): () => void {
    this.authListeners.add(listener);
    return () => this.authListeners.delete(listener);
  }

  /** etcd HashKV of this replica's local state (0: current revision). */
  async hashKV(revision = 0): Promise<HashKVResult> {
    this.assertUsable();
    return this.readLocal((mvcc) => mvcc.hashKV(revision));
  }

  // ---------------------------------------------------------------- leases

  /**
   * Grants lease `id` (the caller picks it; see chooseLeaseId) through raft.
   * The TTL is raised to the minimum; above LEASE_TTL_SECONDS_MAX it fails
   * with LeaseTtlTooLargeError; an id in use with LeaseExistsError.
   */
  async leaseGrant(id: bigint, ttlSeconds: number, options: RequestOptions): Promise<Reply<LeaseGrantResult>> {
    const r = await this.leases.grant(id, ttlSeconds, options);
    return { header: { revision: r.revision, raftTerm: r.raftTerm }, result: r };
  }

  /** Revokes lease `id` through raft, deleting its keys at one revision; unknown → LeaseNotFoundError. */
  async leaseRevoke(id: bigint, options: RequestOptions): Promise<Reply<LeaseRevokeResult>> {
    const r = await this.leases.revoke(id, options);
    return { header: { revision: r.revision, raftTerm: r.raftTerm }, result: r };
  }

  /**
   * KeepAlive on the leader (NotLeaderError elsewhere): TTL, or 0 for an
   * unknown or expired lease. A lease this replica does not know yet may be
   * granted in an entry it has not applied (a new leader catching up): the
   * answer "unknown" is only given after a read index shows it is not.
   */
  async leaseKeepAlive(id: bigint): Promise<KeepAliveResult> {
    this.assertUsable();
    const first = this.leases.keepAlive(id);
    if (first.ttlSeconds > 0 || this.leases.exists(id)) return first;
    await this.readIndex(undefined);
    return this.leases.keepAlive(id);
  }

  /**
   * Waits until this replica has applied every entry committed when it was
   * called (a read index: on a leader holding its lease, no round trip). A
   * new leader may not yet have applied entries of earlier terms; a check
   * against its applied state (the member table) that must not miss a
   * committed change waits here first.
   */
  async readBarrier(signal?: AbortSignal): Promise<void> {
    this.assertUsable();
    await this.readIndex(signal);
  }

  /** TimeToLive on the leader (NotLeaderError elsewhere): TTL -1 for an unknown lease (after a read index, as KeepAlive). */
  async leaseTimeToLive(id: bigint, withKeys: boolean): Promise<TimeToLiveResult> {
    this.assertUsable();
    if (!this.leases.exists(id)) await this.readIndex(undefined);
    return this.leases.timeToLive(id, withKeys);
  }

  /** The leases of this replica's applied state, by id (local, like a serializable read). */
  leaseList(): LeaseRecord[] {
    this.assertUsable();
    return this.leases.list();
  }

  /** Whether lease `id` exists in this replica's applied state. */
  leaseExists(id: bigint): boolean {
    return this.leases.exists(id);
  }

  /** The minimum lease TTL this replica grants, in seconds. */
  get minLeaseTtlSeconds(): number {
    return this.leases.minTtlSeconds;
  }

  /**
   * Proposes revokes for the leases that have expired on this leader (what
   * the expiry timer runs; tests with `lease.expiryCheckMs: 0` call it).
   */
  revokeExpiredLeases(): Promise<number> {
    return this.leases.revokeExpiredLeases();
  }

  // ---------------------------------------------------------------- membership

  /**
   * Adds replica `replicaId` on node `nodeId` as a learner; resolves with the
   * new descriptor once applied here. `member` (range 1) records the node's
   * etcd member name and peer URLs in the descriptor.
   */
  async addLearner(
    nodeId: number,
    replicaId: number,
    options: RequestOptions,
    member?: { readonly name: string; readonly peerUrls: readonly string[] },
  ): Promise<RangeDescriptor> {
    return this.addReplica('addLearner', nodeId, replicaId, options, member);
  }

  /**
   * Adds replica `replicaId` on node `nodeId` straight into the voters (the
   * quorum grows at once: etcd's voting MemberAdd); `member` as in addLearner.
   */
  async addVoter(
    nodeId: number,
    replicaId: number,
    options: RequestOptions,
    member?: { readonly name: string; readonly peerUrls: readonly string[] },
  ): Promise<RangeDescriptor> {
    return this.addReplica('addVoter', nodeId, replicaId, options, member);
  }

  private addReplica(
    changeType: 'addLearner' | 'addVoter',
    nodeId: number,
    replicaId: number,
    options: RequestOptions,
    member: { readonly name: string; readonly peerUrls: readonly string[] } | undefined,
  ): Promise<RangeDescriptor> {
    const attrs = member === undefined ? {} : { memberName: member.name, peerUrls: [...member.peerUrls] };
    return this.changeReplicas({ changeType, nodeId, replicaId, ...attrs }, options);
  }

  /** Promotes learner `replicaId` to voter (only when its log is in sync with the leader's). */
  async promote(replicaId: number, options: RequestOptions): Promise<RangeDescriptor> {
    const nodeId = this.state.descriptor.replicas.find((r) => r.replicaId === replicaId)?.nodeId ?? 0;
    return this.changeReplicas({ changeType: 'promote', nodeId, replicaId }, options);
  }

  /** Records new peer URLs for the member that replica `replicaId` is (range 1); raft's membership is unchanged. */
  async updateMember(replicaId: number, peerUrls: readonly string[], options: RequestOptions): Promise<RangeDescriptor> {
    const nodeId = this.state.descriptor.replicas.find((r) => r.replicaId === replicaId)?.nodeId ?? 0;
    return this.changeReplicas({ changeType: 'updateMember', nodeId, replicaId, peerUrls: [...peerUrls] }, options);
  }

  /** Removes replica `replicaId` from the group. */
  async remove(replicaId: number, options: RequestOptions): Promise<RangeDescriptor> {
    const nodeId = this.state.descriptor.replicas.find((r) => r.replicaId === replicaId)?.nodeId ?? 0;
    return this.changeReplicas({ changeType: 'remove', nodeId, replicaId }, options);
  }

  /**
   * Asks raft to hand leadership to voter `replicaId`; resolves when this
   * replica sees it lead, fails with NotLeaderError if another replica is
   * seen to take over. A transfer that raft aborts (after an election
   * timeout) leaves the promise pending until `signal` fires.
   */
  async transferLeader(replicaId: number, options: { readonly epoch: Epoch; readonly signal?: AbortSignal }): Promise<void> {
    const handle = this.leaderHandle();
    this.checkEpoch(options.epoch, FULL_EPOCH_CHECK);
    const target = this.state.descriptor.replicas.find((r) => r.replicaId === replicaId);
    if (target === undefined || target.role !== 'voter') {
      throw new MembershipChangeInvalidError(this.rangeId, `replica ${replicaId} is not a voter`);
    }
    if (replicaId === handle.replicaId) return;
    const done = new Promise<void>((resolve, reject) => {
      const w: TransferWaiter = { to: replicaId, resolve, reject };
      this.transfers.push(w);
      onAbort(options.signal, () => {
        this.transfers = this.transfers.filter((x) => x !== w);
        reject(new RequestAbortedError(this.rangeId));
      });
    });
    handle.transferLeader(replicaId);
    return done;
  }

  // ---------------------------------------------------------------- GroupStateMachine

  /** The index of the last applied entry, as durable in the engine. */
  appliedIndex(): number {
    return this.state.appliedIndex;
  }

  /**
   * Applies committed entries in order; their writes become one engine batch,
   * started before this resolves (reads through the range's view see them).
   */
  async applyEntries(entries: readonly AppliedEntry[], onApplied?: (index: number) => void): Promise<void> {
    this.assertOpen();
    // The prefetch decodes the batch's commands; apply reuses them.
    const decoded = new Map<number, RangeCommand>();
    if (this.initialized && entries.length > 1) await this.state.mvcc.prefetch(prefetchKeys(entries, this.state.appliedIndex, decoded));
    for (const { entry, confState } of entries) {
      // Already applied (e.g. handed out again after a restart): skip, never re-apply.
      if (entry.index <= this.state.appliedIndex) continue;
      if (!this.initialized) {
        throw new RangeNotInitializedError(this.rangeId); // needs its first snapshot before any entry
      }
      let outcome: EntryOutcome;
      if (entry.type === 'confChange') {
        if (confState === undefined) throw new Error(`apply: conf-change entry ${entry.index} without its ConfState`);
        outcome = applyConfChangeEntry(this.state, entry, confState);
      } else {
        const applied = applyNormalEntry(this.state, entry, decoded.get(entry.index));
        outcome = applied instanceof Promise ? await applied : applied;
      }
      this.leases.afterApply(outcome);
      this.notifyAuth(outcome);
      // Durable now: the host may release its proposal window before the proposer is answered.
      onApplied?.(entry.index);
      this.settle(outcome, entry.data.length === 0 && entry.type === 'normal');
    }
    // One engine write for the whole batch (see open), started now but not
    // waited for: the raft log is the durable record, reads through the view
    // wait for it, and the host's next turn (its fsync, the next batch's
    // planning) overlaps it. A failed write poisons the view, so the next
    // apply or read throws and stops the host.
    this.state.engine.flush().catch(() => undefined);
    this.reads.notifyApplied(this.state.appliedIndex);
    this.notifyRevision();
  }

  private notifyAuth(outcome: EntryOutcome): void {
    const body = outcome.command?.body;
    const result = outcome.result;
    if (body?.type !== 'auth' || outcome.duplicate === true || result?.ok !== true || result.result.type !== 'auth') return;
    for (const l of this.authListeners) l(body.request, result.result.response);
  }

  private notifyRevision(): void {
    const revision = this.state.mvcc.currentRevision;
    for (const l of this.revisionListeners) l(revision);
  }

  /**
   * Writes everything applied so far, synced, and resolves with that applied
   * index: the host truncates the log up to it without an image (a lost
   * unsynced state write must never need entries the log no longer has).
   */
  async persistApplied(): Promise<number> {
    this.assertUsable();
    const index = this.state.appliedIndex;
    await this.state.engine.flush({ sync: true });
    return index;
  }

  /** A consistent image of the range at its applied index (see snapshot.ts). */
  async buildSnapshot(): Promise<StateMachineSnapshot> {
    this.assertUsable();
    const snap = this.state.engine.snapshot();
    try {
      const { appliedIndex, data } = await buildImage(snap, this.state.keys);
      return { index: appliedIndex, data };
    } finally {
      await snap.release();
    }
  }

  /**
   * Replaces the range's state with a received image: one synced engine
   * batch deletes every key of the range and writes the image (its applied
   * index included), then the MVCC store reopens. The batch is atomic, so a
   * crash leaves either the old state or the whole image, never an empty or
   * half-written range (replaceState).
   */
  async installSnapshot(snapshot: Snapshot): Promise<void> {
    this.assertOpen();
    const image = parseImage(snapshot.data, this.state.keys);
    if (image.appliedIndex !== snapshot.meta.index) {
      throw new SnapshotInvalidError(`image at index ${image.appliedIndex}, raft snapshot at ${snapshot.meta.index}`);
    }
    await this.installParsed(image);
  }

  /**
   * Replaces the range's state with an image fetched outside raft (a
   * replica whose state was lost rebuilds from a peer's image before its
   * group is hosted: docs/node.md "Range engines"). The image must be at
   * `minIndex` or later; returns its applied index.
   */
  async installImage(data: Uint8Array, minIndex: number): Promise<number> {
    this.assertOpen();
    const image = parseImage(data, this.state.keys);
    if (image.appliedIndex < minIndex) {
      throw new SnapshotInvalidError(`image at index ${image.appliedIndex}, at least ${minIndex} needed`);
    }
    await this.installParsed(image);
    return image.appliedIndex;
  }

  private async installParsed(image: SnapshotImage): Promise<void> {
    // Refused before anything is touched: an image without a descriptor would leave the range unusable.
    if (!image.records.some((r) => r.key.equals(this.state.keys.descriptor))) {
      throw new SnapshotInvalidError('image holds no range descriptor');
    }
    let done!: () => void;
    this.installing = new Promise<void>((resolve) => (done = resolve));
    this.generation++;
    try {
      await this.replaceState(image);
    } finally {
      this.installing = undefined;
      done();
    }
    this.leases.afterSnapshot();
    this.reads.notifyApplied(this.state.appliedIndex);
    this.notifyRevision();
  }

  /**
   * The body of an install, run while reads are held back. The deletions of
   * the old keys and the image's records go to the engine as ONE batch (a
   * later op on a key wins, so a key in both ends up with the image's
   * value), synced: raft has already recorded the snapshot in its log store,
   * which truncated the entries the old state would need, so the image must
   * not be lost while that record survives (docs/replica.md "Snapshots").
   */
  private async replaceState(image: SnapshotImage): Promise<void> {
    const { engine, keys } = this.state;
    await this.state.mvcc.close();
    const ops: BatchOp[] = [];
    for await (const { key } of engine.iterate({ gte: keys.start, lt: keys.end })) ops.push({ type: 'del', key });
    for (const op of imageOps(image)) ops.push(op);
    await engine.write(ops, { sync: true });
    const descriptor = await loadDescriptor(engine, keys);
    if (descriptor === undefined) throw new SnapshotInvalidError('image holds no range descriptor');
    this.state.mvcc = await MvccStore.open(engine, {
      prefix: keys.mvccPrefix,
      ...(this.compactionChunkOpsMax === undefined ? {} : { compactionChunkOpsMax: this.compactionChunkOpsMax }),
    });
    await this.state.dedupe.reload();
    this.state.auth = await loadAuthState(engine, keys.authState);
    await this.state.leases.reload(engine);
    this.state.descriptor = descriptor;
    this.state.appliedIndex = image.appliedIndex;
    this.initialized = true;
  }

  /** Confirmed read indexes for pending linearizable reads. */
  onReadStates(readStates: readonly ReadState[]): void {
    this.reads.onReadStates(readStates);
  }

  /** Leadership changed: fail pending proposals when no longer leader, and reads whose request may be lost. */
  onSoftState(softState: SoftState): void {
    this.leases.onRole(softState.role === 'leader');
    const hint = this.leaderHint(softState.leader);
    if (softState.role !== 'leader') this.failProposals(() => new NotLeaderError(this.rangeId, hint));
    if (softState.leader !== this.lastLeader) {
      this.reads.failIndexWaiters(() => new NotLeaderError(this.rangeId, hint));
      this.lastLeader = softState.leader;
    }
    if (softState.leader !== 0) {
      const transfers = this.transfers;
      this.transfers = [];
      for (const t of transfers) {
        if (t.to === softState.leader) t.resolve();
        else if (softState.leader !== this.handle?.replicaId) t.reject(new NotLeaderError(this.rangeId, hint));
        else this.transfers.push(t);
      }
    }
  }

  /** Fails everything pending and stops; the MVCC store waits for background compaction. The engine stays open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.leases.close();
    const err = (): Error => new ReplicaClosedError(this.rangeId);
    this.failProposals(err);
    this.reads.failAll(err);
    for (const t of this.transfers) t.reject(err());
    this.transfers = [];
    await this.state.mvcc.close();
    // The write-behind view writes what is queued; the shared engine stays open.
    await this.state.engine.close();
  }

  // ---------------------------------------------------------------- internals

  private write<T>(body: CommandBody, options: RequestOptions, pick: (r: CommandResult) => T): Promise<Reply<T>> {
    // No async frame: submit never throws, it rejects.
    return this.submit(body, options).then((outcome) => toReply(outcome, pick));
  }

  /**
   * Checks, encodes and proposes a command; the promise settles when it is
   * applied here. Everything up to the proposal runs synchronously unless
   * the revision source is asynchronous.
   */
  private submit(body: CommandBody, options: RequestOptions): Promise<EntryOutcome> {
    try {
      const handle = this.leaderHandle();
      const probe: RangeCommand = { requestId: { proposer: this.proposerId, seq: 0 }, epoch: options.epoch, body };
      const rejection = checkRouting(this.state.descriptor, probe);
      if (rejection !== undefined) throw rejection;
      this.checkRoom();
      const requestId = options.requestId ?? this.nextRequestId();
      const revision = this.revisionSource.allocate();
      const propose = (rev: number | undefined): Promise<EntryOutcome> => {
        const cmd: RangeCommand = {
          requestId,
          epoch: options.epoch,
          body,
          ...(rev === undefined ? {} : { revision: rev }),
          ...(options.authRevision === undefined ? {} : { authRevision: options.authRevision }),
          ...(options.authUser === undefined || options.authUser === '' ? {} : { authUser: options.authUser }),
        };
        const data = encodeCommand(cmd);
        if (data.length > this.requestBytesMax) throw new RequestTooLargeError(data.length, this.requestBytesMax);
        return this.proposeWith(handle, requestId, () => handle.propose(data));
      };
      return revision instanceof Promise ? revision.then(propose) : propose(revision);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private async changeReplicas(change: ChangeReplicas, options: RequestOptions): Promise<RangeDescriptor> {
    const handle = this.leaderHandle();
    this.checkEpoch(options.epoch, FULL_EPOCH_CHECK);
    const reason = invalidChangeReason(this.state.descriptor, change);
    if (reason !== undefined) throw new MembershipChangeInvalidError(this.rangeId, reason);
    if (change.changeType === 'promote') this.checkInSync(handle, change.replicaId);
    this.checkRoom();
    const requestId = options.requestId ?? this.nextRequestId();
    const cmd: RangeCommand = { requestId, epoch: options.epoch, body: { type: 'changeReplicas', request: change } };
    const cc = confChangeFor(change, encodeCommand(cmd), this.state.descriptor);
    for (let attempt = 1; ; attempt++) {
      try {
        const outcome = await this.proposeWith(handle, requestId, () => handle.proposeConfChange(cc));
        return toReply(outcome, (r) => (r.type === 'changeReplicas' ? r.response : unexpected(r))).result;
      } catch (err) {
        // The previous change is applied here and its proposer answered, but the host
        // tells raft so only when the apply batch ends: wait for that, briefly.
        const lagging = err instanceof ConfChangePendingError && err.pendingIndex <= this.state.appliedIndex;
        if (!lagging || attempt >= CONF_CHANGE_APPLY_WAITS_MAX) throw err;
        await new Promise((resolve) => setTimeout(resolve, CONF_CHANGE_APPLY_WAIT_MS));
      }
    }
  }

  /**
   * Registers a waiter for `requestId`, then proposes; a refused proposal
   * removes it again, and so does the request timeout (the entry may still
   * apply later, as after etcd's "request timed out").
   */
  private proposeWith(handle: GroupHandle, requestId: RequestId, propose: () => void): Promise<EntryOutcome> {
    const key = requestKey(requestId);
    let waiter!: Waiter;
    let timer: NodeJS.Timeout | undefined;
    const promise = new Promise<EntryOutcome>((resolve, reject) => {
      waiter = {
        term: handle.basicStatus().term,
        resolve: (outcome) => {
          if (timer !== undefined) clearTimeout(timer);
          resolve(outcome);
        },
        reject: (err) => {
          if (timer !== undefined) clearTimeout(timer);
          reject(err);
        },
      };
    });
    const list = this.waiters.get(key) ?? [];
    list.push(waiter);
    this.waiters.set(key, list);
    this.waiterCount++;
    try {
      propose();
    } catch (err) {
      this.removeWaiter(key, waiter);
      if (err instanceof ProposalDroppedError) {
        if (err.reason === 'uncommittedSizeExceeded') throw new TooManyRequestsError(this.rangeId, this.proposalsPendingMax);
        throw new NotLeaderError(this.rangeId, this.leaderHint(handle.status().lead));
      }
      // ConfChangePendingError (another change is unapplied) and the rest go up as they are.
      throw err;
    }
    if (this.requestTimeoutMs > 0) {
      timer = setTimeout(() => {
        this.removeWaiter(key, waiter);
        waiter.reject(new RequestTimeoutError(this.rangeId, this.requestTimeoutMs));
      }, this.requestTimeoutMs);
    }
    return promise;
  }

  private removeWaiter(key: string, waiter: Waiter): void {
    const list = this.waiters.get(key);
    if (list === undefined) return;
    const rest = list.filter((w) => w !== waiter);
    this.waiterCount -= list.length - rest.length;
    if (rest.length === 0) this.waiters.delete(key);
    else this.waiters.set(key, rest);
  }

  /** Hands an applied entry's outcome to its waiters; a leader no-op retires older terms' proposals. */
  private settle(outcome: EntryOutcome, leaderNoop: boolean): void {
    if (leaderNoop) {
      // Entries of earlier terms that will ever commit precede the new
      // leader's no-op, so a proposal of an earlier term still waiting now
      // was dropped (TiKV's StaleCommand).
      this.failProposals(() => new NotLeaderError(this.rangeId, this.leaderHint(this.handle?.status().lead ?? 0)), outcome.term);
      return;
    }
    if (outcome.command === undefined) return;
    const key = requestKey(outcome.command.requestId);
    const list = this.waiters.get(key);
    if (list === undefined) return;
    this.waiters.delete(key);
    this.waiterCount -= list.length;
    for (const w of list) {
      if (outcome.rejection !== undefined) w.reject(outcome.rejection);
      else w.resolve(outcome);
    }
  }

  /** Fails waiting proposals (those proposed in a term below `belowTerm`, if given). */
  private failProposals(err: () => Error, belowTerm?: number): void {
    for (const [key, list] of [...this.waiters]) {
      const stale = belowTerm === undefined ? list : list.filter((w) => w.term < belowTerm);
      if (stale.length === 0) continue;
      const rest = list.filter((w) => !stale.includes(w));
      if (rest.length === 0) this.waiters.delete(key);
      else this.waiters.set(key, rest);
      this.waiterCount -= stale.length;
      for (const w of stale) w.reject(err());
    }
  }

  /**
   * Runs a read on the local MVCC store. Reads wait while a snapshot is
   * being installed, and one that overlapped an install (it may have seen the
   * range half deleted) runs again on the new state, which is only newer.
   */
  private async readLocal<T>(read: (mvcc: MvccStore) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      while (this.installing !== undefined) await this.installing;
      const generation = this.generation;
      let result: T;
      try {
        result = await read(this.state.mvcc);
      } catch (err) {
        if (generation === this.generation || attempt >= READ_ATTEMPTS_MAX) throw err;
        continue;
      }
      if (generation === this.generation) return result;
      if (attempt >= READ_ATTEMPTS_MAX) throw new RangeNotInitializedError(this.rangeId);
    }
  }

  private async readIndex(signal: AbortSignal | undefined): Promise<void> {
    const handle = this.requireHandle();
    if (!this.reads.hasRoom()) throw new TooManyRequestsError(this.rangeId, this.reads.pendingMax);
    // A leader holding a valid lease (or the only voter) knows its commit index is current: no
    // round trip and no loop turn, just wait until it is applied (docs/replica.md, reads).
    const leaseIndex = handle.leaseReadIndex();
    if (leaseIndex !== undefined) {
      await this.reads.waitApplied(leaseIndex, this.state.appliedIndex);
      return;
    }
    const ctx = Buffer.concat([this.proposerId, Buffer.from('r'), encodeU64(++this.readSeq)]);
    const indexPromise = this.reads.waitIndex(ctx);
    onAbort(signal, () => this.reads.cancelIndex(ctx, new RequestAbortedError(this.rangeId)));
    try {
      handle.readIndex(ctx);
    } catch (err) {
      const hint = this.leaderHint(handle.status().lead);
      // The waiter is abandoned here (the error is thrown below): without a
      // handler its rejection would be unhandled and crash the process.
      indexPromise.catch(() => undefined);
      this.reads.cancelIndex(ctx, new NotLeaderError(this.rangeId, hint));
      if (err instanceof ProposalDroppedError) throw new NotLeaderError(this.rangeId, hint);
      throw err;
    }
    // A read index request lost on the way to a leader that keeps its term would
    // wait for good: bounded like a proposal (etcd's linearizable read timeout).
    const timer =
      this.requestTimeoutMs > 0
        ? setTimeout(() => this.reads.cancelIndex(ctx, new RequestTimeoutError(this.rangeId, this.requestTimeoutMs)), this.requestTimeoutMs)
        : undefined;
    let index: number;
    try {
      index = await indexPromise;
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
    await this.reads.waitApplied(index, this.state.appliedIndex);
  }

  private checkRead(req: RangeRequest, epoch: Epoch): void {
    this.assertUsable();
    this.checkEpoch(epoch, DATA_EPOCH_CHECK);
    const desc = this.state.descriptor;
    if (!spanContainsRange(desc, req.key, req.rangeEnd)) throw new KeyNotInRangeError(req.key, desc.rangeId, desc.start, desc.end);
  }

  private checkEpoch(epoch: Epoch, check: typeof FULL_EPOCH_CHECK): void {
    if (!epochMatches(epoch, this.state.descriptor.epoch, check)) throw new EpochMismatchError(this.state.descriptor);
  }

  private checkRoom(): void {
    if (this.waiterCount >= this.proposalsPendingMax) throw new TooManyRequestsError(this.rangeId, this.proposalsPendingMax);
  }

  private checkInSync(handle: GroupHandle, replicaId: number): void {
    const status = handle.status();
    const leaderMatch = status.progress?.get(handle.replicaId)?.match ?? status.lastIndex;
    const match = status.progress?.get(replicaId)?.match ?? 0;
    if (match < leaderMatch * PROMOTE_MATCH_RATIO_MIN) {
      throw new LearnerNotInSyncError(this.rangeId, replicaId);
    }
  }

  private leaderHandle(): GroupHandle {
    this.assertUsable();
    const handle = this.requireHandle();
    const status = handle.basicStatus();
    if (status.role !== 'leader') throw new NotLeaderError(this.rangeId, this.leaderHint(status.lead));
    return handle;
  }

  private requireHandle(): GroupHandle {
    if (this.handle === undefined) throw new NotLeaderError(this.rangeId, undefined);
    return this.handle;
  }

  private leaderHint(leader: number): LeaderHint | undefined {
    if (leader === 0) return undefined;
    return { replicaId: leader, nodeId: this.state.descriptor.replicas.find((r) => r.replicaId === leader)?.nodeId ?? 0 };
  }

  private nextRequestId(): RequestId {
    return { proposer: this.proposerId, seq: ++this.seq };
  }

  private assertOpen(): void {
    if (this.closed) throw new ReplicaClosedError(this.rangeId);
  }

  private assertUsable(): void {
    this.assertOpen();
    if (!this.initialized) throw new RangeNotInitializedError(this.rangeId);
  }
}

async function loadDescriptor(engine: Engine, keys: RangeKeys): Promise<RangeDescriptor | undefined> {
  const raw = await engine.get(keys.descriptor);
  return raw === undefined ? undefined : decodeDescriptor(raw);
}

function uninitializedDescriptor(rangeId: number): RangeDescriptor {
  return { rangeId, start: new Uint8Array(0), end: new Uint8Array(0), replicas: [], epoch: { confVersion: 0, spanVersion: 0 } };
}

/** The reply for an applied outcome, or the error it carries. */
function toReply<T>(outcome: EntryOutcome, pick: (r: CommandResult) => T): Reply<T> {
  if (outcome.rejection !== undefined) throw outcome.rejection;
  const res = outcome.result;
  if (res === undefined) throw new Error(`apply: entry ${outcome.index} produced no result`);
  if (!res.ok) throw errorFromStored(res.error);
  const result = pick(res.result);
  const revision = res.result.type === 'changeReplicas' ? 0 : res.result.response.revision;
  return { header: { revision, raftTerm: res.raftTerm }, result };
}

function unexpected(r: CommandResult): never {
  throw new Error(`apply: unexpected result type ${r.type}`);
}

function onAbort(signal: AbortSignal | undefined, fn: () => void): void {
  if (signal === undefined) return;
  if (signal.aborted) fn();
  else signal.addEventListener('abort', fn, { once: true });
}

/** Most keys one apply batch reads ahead into the MVCC cache. */
const PREFETCH_KEYS_MAX = 512;

/**
 * The single keys the not-yet-applied data commands of a batch write or
 * compare (spans are left to their plans), at most PREFETCH_KEYS_MAX. Every
 * command it decodes goes into `decoded` by entry index, for apply to reuse.
 */
function prefetchKeys(entries: readonly AppliedEntry[], appliedIndex: number, decoded: Map<number, RangeCommand>): PrefetchKey[] {
  const keys: PrefetchKey[] = [];
  for (const { entry } of entries) {
    if (keys.length >= PREFETCH_KEYS_MAX) break;
    if (entry.type !== 'normal' || entry.data.length === 0 || entry.index <= appliedIndex) continue;
    let cmd: RangeCommand;
    try {
      cmd = decodeCommand(entry.data);
    } catch {
      continue; // applying it decodes again and reports the problem
    }
    decoded.set(entry.index, cmd);
    // A plain put plans from the key's metadata (txn.ts); everything else may read the value.
    const body = cmd.body;
    const valueNeeded = body.type !== 'put' || body.request.prevKv === true || body.request.ignoreValue === true;
    for (const [key, rangeEnd] of commandKeys(cmd)) {
      if (rangeEnd !== undefined && rangeEnd.length > 0) continue;
      keys.push({ key, valueNeeded });
      if (keys.length >= PREFETCH_KEYS_MAX) break;
    }
  }
  return keys;
}
