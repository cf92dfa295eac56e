/**
 * The lessor: which leases expire when. Pure and in memory; time comes from
 * the caller (a monotonic clock in ms), so tests drive it with a fake clock.
 *
 * Only the range's raft leader (the *primary*) tracks expiry, as etcd's
 * lessor: on promotion every lease's deadline restarts at now + TTL + an
 * extension (the election timeout), so a lease never expires early because
 * leadership moved — its holder had a full TTL to reach the new leader. On
 * demotion nothing expires any more. Granted and revoked leases are reported
 * by the apply path (every replica); renewals and expiry only matter on the
 * primary. Expired leases are handed out for revocation at most
 * `revokesPerSecondMax`, and one whose revoke did not apply within
 * `revokeRetryMs` is handed out again.
 */
import { LEASE_REVOKE_RETRY_MS, LEASE_REVOKES_PER_SECOND_MAX } from './limits.js';

/** A lease as the lessor needs it: id and granted TTL. */
export interface LeaseTtl {
  readonly id: bigint;
  /** Granted TTL in seconds. */
  readonly ttlSeconds: number;
}

/** Options of a Lessor. */
export interface LessorOptions {
  /** Monotonic time in ms (performance.now() in production, a fake clock in tests). */
  readonly now: () => number;
  readonly revokesPerSecondMax?: number;
  readonly revokeRetryMs?: number;
}

interface Tracked {
  readonly ttlSeconds: number;
  expiresAtMs: number;
  /** When the lease was last handed out for revocation. */
  revokingSinceMs: number | undefined;
}

/** Expiry tracking of one lease keyspace's leases, active on the primary only. */
export class Lessor {
  private primary = false;
  private readonly tracked = new Map<bigint, Tracked>();
  /** Revocations handed out in the current one-second window, for the rate bound. */
  private windowStartMs = -Infinity;
  private windowRevokes = 0;
  private readonly revokesPerSecondMax: number;
  private readonly revokeRetryMs: number;

  constructor(private readonly options: LessorOptions) {
    this.revokesPerSecondMax = options.revokesPerSecondMax ?? LEASE_REVOKES_PER_SECOND_MAX;
    this.revokeRetryMs = options.revokeRetryMs ?? LEASE_REVOKE_RETRY_MS;
    if (!(this.revokesPerSecondMax >= 1)) throw new RangeError('revokesPerSecondMax must be >= 1');
  }

  /** Whether this lessor expires leases (its replica leads the range). */
  get isPrimary(): boolean {
    return this.primary;
  }

  /** Leases tracked (all of them while primary, none otherwise). */
  get size(): number {
    return this.tracked.size;
  }

  /**
   * Becomes primary: every lease's deadline is now + TTL + `extendMs`
   * (etcd's Promote with the election timeout as extension).
   */
  promote(leases: Iterable<LeaseTtl>, extendMs: number): void {
    if (!(extendMs >= 0)) throw new RangeError(`extendMs must be >= 0, got ${extendMs}`);
    const now = this.options.now();
    this.primary = true;
    this.tracked.clear();
    for (const l of leases) {
      this.tracked.set(l.id, { ttlSeconds: l.ttlSeconds, expiresAtMs: now + l.ttlSeconds * 1000 + extendMs, revokingSinceMs: undefined });
    }
  }

  /** Stops being primary: no lease expires until the next promotion. */
  demote(): void {
    this.primary = false;
    this.tracked.clear();
  }

  /** A grant was applied: on the primary its deadline starts now. */
  granted(lease: LeaseTtl): void {
    if (!this.primary) return;
    this.tracked.set(lease.id, { ttlSeconds: lease.ttlSeconds, expiresAtMs: this.options.now() + lease.ttlSeconds * 1000, revokingSinceMs: undefined });
  }

  /** A revoke was applied: the lease is gone. */
  revoked(id: bigint): void {
    this.tracked.delete(id);
  }

  /**
   * KeepAlive on the primary: the deadline becomes now + TTL. Returns the
   * TTL in seconds, or undefined for an unknown lease or one that has
   * already expired (its revoke is pending: etcd answers it as not found).
   * Throws if not primary (the caller answers NotLeader first).
   */
  renew(id: bigint): number | undefined {
    this.assertPrimary();
    const t = this.tracked.get(id);
    const now = this.options.now();
    if (t === undefined || t.expiresAtMs <= now) return undefined;
    t.expiresAtMs = now + t.ttlSeconds * 1000;
    t.revokingSinceMs = undefined;
    return t.ttlSeconds;
  }

  /** Milliseconds until the lease expires (<= 0: expired, revoke pending); undefined if unknown. */
  remainingMs(id: bigint): number | undefined {
    this.assertPrimary();
    const t = this.tracked.get(id);
    return t === undefined ? undefined : t.expiresAtMs - this.options.now();
  }

  /**
   * Expired leases to revoke now, earliest deadline first (ties by id), at
   * most what the rate bound allows in the current one-second window. Each
   * is marked in flight; it comes back after revokeRetryMs if its revoke has
   * not been applied by then (leader change, dropped proposal).
   */
  expired(): bigint[] {
    if (!this.primary) return [];
    const now = this.options.now();
    if (now - this.windowStartMs >= 1000) {
      this.windowStartMs = now;
      this.windowRevokes = 0;
    }
    const room = this.revokesPerSecondMax - this.windowRevokes;
    if (room <= 0) return [];
    const due: [bigint, Tracked][] = [];
    for (const [id, t] of this.tracked) {
      if (t.expiresAtMs > now) continue;
      if (t.revokingSinceMs !== undefined && now - t.revokingSinceMs < this.revokeRetryMs) continue;
      due.push([id, t]);
    }
    due.sort(([ia, a], [ib, b]) => a.expiresAtMs - b.expiresAtMs || (ia < ib ? -1 : ia > ib ? 1 : 0));
    const out = due.slice(0, room);
    for (const [, t] of out) t.revokingSinceMs = now;
    this.windowRevokes += out.length;
    return out.map(([id]) => id);
  }

  private assertPrimary(): void {
    if (!this.primary) throw new Error('lessor: not primary');
  }
}
