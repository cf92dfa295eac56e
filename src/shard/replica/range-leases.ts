/**
 * The lease API of a range replica and the leader's expiry loop
 * (docs/lease.md). The replicated part (lease records, attachments) is
 * applied by lease-apply.ts; this module holds the in-memory lessor of the
 * replica, promoted when the replica becomes the range's raft leader and
 * demoted when it stops being it, and proposes revokes for expired leases.
 *
 * Only the leader answers KeepAlive and TimeToLive (others: NotLeaderError,
 * which the gateway's routing retries at the leader). Grants and revokes are
 * ordinary proposals.
 */
import type { Epoch } from '../range/descriptor.js';
import { NotLeaderError } from '../range/errors.js';
import {
  effectiveTtlSeconds,
  Lessor,
  LEASE_EXPIRY_CHECK_MS,
  type LeaseMetrics,
  type LeaseRecord,
} from '../lease/index.js';
import { errorFromStored, type EntryOutcome, type RangeState } from './apply.js';
import type { CommandBody, RequestId } from './command-codec.js';
import type { LeaseGrantResult, LeaseRevokeResult } from './lease-codec.js';

/** Lease options of a replica. */
export interface ReplicaLeaseOptions {
  /** Monotonic clock in ms; default performance.now(). */
  readonly now?: () => number;
  /** etcd's minimum TTL (minLeaseTtlSeconds of the node's raft config); default 2 s (etcd's defaults). */
  readonly minTtlSeconds?: number;
  /** Added to every deadline on promotion (etcd: the election timeout); default 1000 ms. */
  readonly promoteExtendMs?: number;
  /** Period of the leader's expiry check; 0 = no timer (tests call revokeExpiredLeases()). Default 500 ms. */
  readonly expiryCheckMs?: number;
  /** Expired leases revoked per second at most; default etcd's 1000. */
  readonly revokesPerSecondMax?: number;
  /** Where grants, revokes and renewals are counted. */
  readonly metrics?: LeaseMetrics;
}

/** etcd's minimum lease TTL with its default raft timing (10 ticks of 100 ms). */
export const DEFAULT_MIN_LEASE_TTL_SECONDS = 2;
/** etcd's default election timeout, the promotion extension. */
export const DEFAULT_PROMOTE_EXTEND_MS = 1000;

/** What RangeLeases needs of its replica. */
export interface LeaseHost {
  readonly state: RangeState;
  /** Proposes a command (leader checks, routing, waiting for apply). */
  submit(body: CommandBody, options: { readonly epoch: Epoch; readonly requestId?: RequestId }): Promise<EntryOutcome>;
  /** Throws NotLeaderError (with the hint) unless this replica leads the range. */
  requireLeader(): void;
  /** The raft term, for response headers. */
  term(): number;
}

/** A KeepAlive answer: TTL 0 means the lease is unknown or expired. */
export interface KeepAliveResult {
  readonly revision: number;
  readonly raftTerm: number;
  readonly ttlSeconds: number;
}

/** A TimeToLive answer: TTL -1 means the lease is unknown. */
export interface TimeToLiveResult {
  readonly revision: number;
  readonly raftTerm: number;
  /** Remaining seconds (truncated, as etcd), -1 if unknown. */
  readonly ttlSeconds: number;
  readonly grantedTtlSeconds: number;
  readonly keys: Buffer[];
}

/** The leases side of one replica. */
export class RangeLeases {
  readonly lessor: Lessor;
  readonly minTtlSeconds: number;
  private readonly promoteExtendMs: number;
  private readonly expiryCheckMs: number;
  private readonly metrics: LeaseMetrics | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private closed = false;

  constructor(
    private readonly host: LeaseHost,
    options: ReplicaLeaseOptions = {},
  ) {
    const now = options.now ?? (() => performance.now());
    this.lessor = new Lessor({ now, ...(options.revokesPerSecondMax === undefined ? {} : { revokesPerSecondMax: options.revokesPerSecondMax }) });
    this.minTtlSeconds = options.minTtlSeconds ?? DEFAULT_MIN_LEASE_TTL_SECONDS;
    this.promoteExtendMs = options.promoteExtendMs ?? DEFAULT_PROMOTE_EXTEND_MS;
    this.expiryCheckMs = options.expiryCheckMs ?? LEASE_EXPIRY_CHECK_MS;
    this.metrics = options.metrics;
  }

  /** Leadership seen by the replica: promote the lessor on becoming leader, demote on losing it. */
  onRole(isLeader: boolean): void {
    if (this.closed) return;
    if (isLeader && !this.lessor.isPrimary) {
      this.lessor.promote(this.host.state.leases.list(), this.promoteExtendMs);
      if (this.expiryCheckMs > 0) {
        this.timer = setInterval(() => void this.revokeExpiredLeases().catch(() => undefined), this.expiryCheckMs);
        this.timer.unref();
      }
    } else if (!isLeader && this.lessor.isPrimary) {
      this.lessor.demote();
      this.stopTimer();
    }
  }

  /** Follows an applied entry into the lessor and the metrics. */
  afterApply(outcome: EntryOutcome): void {
    const body = outcome.command?.body;
    if (body === undefined || outcome.duplicate === true || outcome.result === undefined) return;
    if (body.type === 'leaseGrant' && outcome.result.ok) {
      this.lessor.granted({ id: body.request.id, ttlSeconds: body.request.ttlSeconds });
      this.metrics?.granted.inc();
      this.metrics?.ttl.observe(body.request.ttlSeconds);
    } else if (body.type === 'leaseRevoke') {
      // Also on a failure that left no lease (not found): a lease the lessor still tracks is gone.
      // A refused revoke (auth) leaves the lease, and the lessor keeps tracking it.
      if (outcome.result.ok || !this.host.state.leases.has(body.request.id)) this.lessor.revoked(body.request.id);
      if (outcome.result.ok) this.metrics?.revoked.inc();
    }
  }

  /** The state was replaced by a snapshot: a primary tracks the new set of leases. */
  afterSnapshot(): void {
    if (this.lessor.isPrimary) this.lessor.promote(this.host.state.leases.list(), this.promoteExtendMs);
  }

  /** Whether lease `id` exists in the applied state. */
  exists(id: bigint): boolean {
    return this.host.state.leases.has(id);
  }

  /** Every lease of the applied state, by id. */
  list(): LeaseRecord[] {
    return this.host.state.leases.list();
  }

  /**
   * Grants lease `id` (chosen by the caller, never 0) with `ttlSeconds`
   * raised to the minimum; TTL above the maximum → LeaseTtlTooLargeError.
   */
  async grant(id: bigint, ttlSeconds: number, options: { readonly epoch: Epoch; readonly requestId?: RequestId }): Promise<LeaseGrantResult & { raftTerm: number }> {
    const ttl = effectiveTtlSeconds(ttlSeconds, this.minTtlSeconds);
    const outcome = await this.host.submit({ type: 'leaseGrant', request: { id, ttlSeconds: ttl } }, options);
    return pick(outcome, 'leaseGrant');
  }

  /** Revokes lease `id`: its keys are deleted at one revision. Unknown → LeaseNotFoundError. */
  async revoke(
    id: bigint,
    options: { readonly epoch: Epoch; readonly requestId?: RequestId; readonly authRevision?: number },
  ): Promise<LeaseRevokeResult & { raftTerm: number }> {
    const outcome = await this.host.submit({ type: 'leaseRevoke', request: { id } }, options);
    return pick(outcome, 'leaseRevoke');
  }

  /** KeepAlive (leader only): the deadline becomes now + TTL; TTL 0 for an unknown or expired lease. */
  keepAlive(id: bigint): KeepAliveResult {
    this.host.requireLeader();
    this.requirePrimary();
    const ttl = this.lessor.renew(id);
    if (ttl !== undefined) this.metrics?.renewed.inc();
    return { revision: this.host.state.mvcc.currentRevision, raftTerm: this.host.term(), ttlSeconds: ttl ?? 0 };
  }

  /** TimeToLive (leader only): remaining and granted TTL, and the attached keys if asked; TTL -1 if unknown. */
  async timeToLive(id: bigint, withKeys: boolean): Promise<TimeToLiveResult> {
    this.host.requireLeader();
    this.requirePrimary();
    const record = this.host.state.leases.get(id);
    const remainingMs = this.lessor.remainingMs(id);
    const header = { revision: this.host.state.mvcc.currentRevision, raftTerm: this.host.term() };
    if (record === undefined || remainingMs === undefined) return { ...header, ttlSeconds: -1, grantedTtlSeconds: 0, keys: [] };
    const keys = withKeys ? await this.host.state.leases.attachedKeys(this.host.state.engine, id) : [];
    // etcd: int64(Remaining().Seconds()), truncated; an expired lease awaiting its revoke shows 0.
    return { ...header, ttlSeconds: Math.max(0, Math.trunc(remainingMs / 1000)), grantedTtlSeconds: record.ttlSeconds, keys };
  }

  /**
   * On the leader: proposes a revoke for each expired lease the lessor hands
   * out (rate-bounded; retried later if a revoke does not apply). Resolves
   * with the number proposed once those proposals have settled.
   */
  async revokeExpiredLeases(): Promise<number> {
    if (this.closed || !this.lessor.isPrimary) return 0;
    const ids = this.lessor.expired();
    const epoch = this.host.state.descriptor.epoch;
    await Promise.all(ids.map((id) => this.host.submit({ type: 'leaseRevoke', request: { id } }, { epoch }).catch(() => undefined)));
    return ids.length;
  }

  /** Stops the expiry loop. */
  close(): void {
    this.closed = true;
    this.stopTimer();
    this.lessor.demote();
  }

  private requirePrimary(): void {
    // Leader per raft but the soft state has not reached us yet: not ready to answer.
    if (!this.lessor.isPrimary) throw new NotLeaderError(this.host.state.keys.rangeId, undefined);
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}

function pick<T extends 'leaseGrant' | 'leaseRevoke'>(
  outcome: EntryOutcome,
  type: T,
): (T extends 'leaseGrant' ? LeaseGrantResult : LeaseRevokeResult) & { raftTerm: number } {
  if (outcome.rejection !== undefined) throw outcome.rejection;
  const res = outcome.result;
  if (res === undefined) throw new Error(`apply: entry ${outcome.index} produced no result`);
  if (!res.ok) throw errorFromStored(res.error);
  if (res.result.type !== type) throw new Error(`apply: unexpected result type ${res.result.type}`);
  return { ...(res.result.response as object), raftTerm: res.raftTerm } as never;
}
