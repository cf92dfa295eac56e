/**
 * etcd's lease limits (lease/lessor.go; reference §2.8): the largest TTL a
 * lease may be granted, the minimum TTL derived from the election timeout,
 * and the rate at which a leader revokes expired leases.
 */
import { LeaseTtlTooLargeError } from './errors.js';

/** Largest lease TTL in seconds (etcd's MaxLeaseTTL); above it: "etcdserver: too large lease TTL". */
export const LEASE_TTL_SECONDS_MAX = 9_000_000_000;
/** Expired leases a leader revokes per second at most (etcd's leaseRevokeRate). */
export const LEASE_REVOKES_PER_SECOND_MAX = 1000;
/** How long an expired lease whose revoke is in flight waits before it is revoked again (etcd: 3 s). */
export const LEASE_REVOKE_RETRY_MS = 3000;
/** How often the leader looks for expired leases (etcd checks every 500 ms). */
export const LEASE_EXPIRY_CHECK_MS = 500;
/** Attempts at finding a free random lease id before giving up (a collision is astronomically rare). */
export const LEASE_ID_ATTEMPTS_MAX = 16;

/**
 * etcd's minimum lease TTL in whole seconds: ceil((3 * electionTicks / 2) * tickMs),
 * the integer division on ticks as etcd's `(3 * ElectionTicks) / 2`. A lease
 * shorter than that could expire during a leader election. 2 s with etcd's
 * defaults (10 ticks of 100 ms).
 */
export function minLeaseTtlSeconds(electionTicks: number, tickMs: number): number {
  if (!Number.isSafeInteger(electionTicks) || electionTicks < 1) throw new RangeError(`electionTicks must be a positive integer, got ${electionTicks}`);
  if (!Number.isFinite(tickMs) || tickMs <= 0) throw new RangeError(`tickMs must be positive, got ${tickMs}`);
  return Math.ceil((Math.floor((3 * electionTicks) / 2) * tickMs) / 1000);
}

/** The TTL a grant of `ttlSeconds` receives: raised to `minTtlSeconds`; throws above the maximum. */
export function effectiveTtlSeconds(ttlSeconds: number, minTtlSeconds: number): number {
  if (ttlSeconds > LEASE_TTL_SECONDS_MAX) throw new LeaseTtlTooLargeError(ttlSeconds);
  return ttlSeconds < minTtlSeconds ? minTtlSeconds : ttlSeconds;
}
