import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chooseLeaseId,
  effectiveTtlSeconds,
  Lessor,
  LeaseTtlTooLargeError,
  LEASE_TTL_SECONDS_MAX,
  minLeaseTtlSeconds,
} from '../../../src/shard/lease/index.js';

/** A clock the test moves by hand. */
class FakeClock {
  ms = 1_000_000;
  readonly now = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

function primary(clock: FakeClock, opts: { revokesPerSecondMax?: number; revokeRetryMs?: number } = {}): Lessor {
  const l = new Lessor({ now: clock.now, ...opts });
  l.promote([], 0);
  return l;
}

test('minLeaseTtlSeconds is ceil((3 * electionTicks / 2) * tickMs) in seconds, as etcd', () => {
  assert.equal(minLeaseTtlSeconds(10, 100), 2); // etcd defaults: 1.5 s → 2 s
  assert.equal(minLeaseTtlSeconds(10, 10), 1); // 150 ms → 1 s
  assert.equal(minLeaseTtlSeconds(50, 100), 8); // 7.5 s → 8 s
  assert.equal(minLeaseTtlSeconds(11, 100), 2); // (33 / 2 = 16 ticks) * 100 ms = 1.6 s → 2 s
  assert.throws(() => minLeaseTtlSeconds(0, 100), RangeError);
  assert.throws(() => minLeaseTtlSeconds(10, 0), RangeError);
});

test('effectiveTtlSeconds raises a small TTL to the minimum and refuses one above 9e9 s', () => {
  assert.equal(effectiveTtlSeconds(1, 2), 2);
  assert.equal(effectiveTtlSeconds(-5, 2), 2);
  assert.equal(effectiveTtlSeconds(60, 2), 60);
  assert.equal(effectiveTtlSeconds(LEASE_TTL_SECONDS_MAX, 2), LEASE_TTL_SECONDS_MAX);
  assert.throws(() => effectiveTtlSeconds(LEASE_TTL_SECONDS_MAX + 1, 2), (e: unknown) => e instanceof LeaseTtlTooLargeError && e.message === 'etcdserver: too large lease TTL');
});

test('a granted lease expires after its TTL unless renewed; renew restarts the TTL', () => {
  const clock = new FakeClock();
  const l = primary(clock);
  l.granted({ id: 7n, ttlSeconds: 10 });
  assert.equal(l.remainingMs(7n), 10_000);
  clock.advance(9_000);
  assert.deepEqual(l.expired(), []);
  assert.equal(l.renew(7n), 10);
  assert.equal(l.remainingMs(7n), 10_000);
  clock.advance(9_999);
  assert.deepEqual(l.expired(), []);
  clock.advance(1);
  assert.deepEqual(l.expired(), [7n]);
  // Expired: a renewal no longer saves it (its revoke is pending), as etcd.
  assert.equal(l.renew(7n), undefined);
  assert.equal(l.renew(99n), undefined);
});

test('expired leases come out earliest deadline first, ties by id', () => {
  const clock = new FakeClock();
  const l = primary(clock);
  l.granted({ id: 5n, ttlSeconds: 30 });
  l.granted({ id: 9n, ttlSeconds: 10 });
  l.granted({ id: 2n, ttlSeconds: 10 });
  l.granted({ id: 4n, ttlSeconds: 20 });
  clock.advance(25_000);
  assert.deepEqual(l.expired(), [2n, 9n, 4n]);
  for (const id of [2n, 9n, 4n]) l.revoked(id);
  clock.advance(10_000);
  assert.deepEqual(l.expired(), [5n]);
});

test('a lease handed out for revocation is handed out again after the retry interval unless revoked', () => {
  const clock = new FakeClock();
  const l = primary(clock, { revokeRetryMs: 3000 });
  l.granted({ id: 1n, ttlSeconds: 1 });
  l.granted({ id: 2n, ttlSeconds: 1 });
  clock.advance(1000);
  assert.deepEqual(l.expired(), [1n, 2n]);
  l.revoked(1n);
  clock.advance(2999);
  assert.deepEqual(l.expired(), []);
  clock.advance(1);
  assert.deepEqual(l.expired(), [2n]);
});

test('revocations are rate-bounded per second', () => {
  const clock = new FakeClock();
  const l = primary(clock, { revokesPerSecondMax: 3 });
  for (let i = 1n; i <= 5n; i++) l.granted({ id: i, ttlSeconds: 1 });
  clock.advance(1000);
  assert.deepEqual(l.expired(), [1n, 2n, 3n]);
  clock.advance(500);
  assert.deepEqual(l.expired(), [], 'the window of one second is used up');
  clock.advance(500);
  assert.deepEqual(l.expired(), [4n, 5n]);
});

test('promotion restarts every deadline at now + TTL + extension', () => {
  const clock = new FakeClock();
  const l = new Lessor({ now: clock.now });
  // Not primary: grants are not tracked and nothing expires.
  l.granted({ id: 1n, ttlSeconds: 5 });
  assert.equal(l.size, 0);
  clock.advance(100_000);
  assert.deepEqual(l.expired(), []);
  l.promote([{ id: 1n, ttlSeconds: 5 }, { id: 2n, ttlSeconds: 60 }], 1000);
  assert.equal(l.isPrimary, true);
  assert.equal(l.remainingMs(1n), 6000);
  assert.equal(l.remainingMs(2n), 61_000);
  clock.advance(5999);
  assert.deepEqual(l.expired(), []);
  clock.advance(1);
  assert.deepEqual(l.expired(), [1n]);
});

test('demotion stops expiry; renew and remaining refuse on a non-primary', () => {
  const clock = new FakeClock();
  const l = primary(clock);
  l.granted({ id: 3n, ttlSeconds: 2 });
  l.demote();
  assert.equal(l.isPrimary, false);
  clock.advance(10_000);
  assert.deepEqual(l.expired(), []);
  assert.throws(() => l.renew(3n));
  assert.throws(() => l.remainingMs(3n));
  // A later promotion gives it a full TTL again.
  l.promote([{ id: 3n, ttlSeconds: 2 }], 0);
  assert.equal(l.remainingMs(3n), 2000);
});

test('chooseLeaseId draws positive 63-bit ids that are not in use', () => {
  const draws = [0n, 5n, (1n << 64n) - 1n, 6n];
  const next = (): bigint => draws.shift() ?? 42n;
  // 0 is skipped, 5 is in use, 2^64-1 masks to 2^63-1 (positive).
  assert.equal(chooseLeaseId((id) => id === 5n, next), (1n << 63n) - 1n);
  assert.equal(chooseLeaseId(() => false, next), 6n);
  assert.throws(() => chooseLeaseId(() => true, () => 1n), /no free lease id/);
});
