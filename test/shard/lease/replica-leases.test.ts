/**
 * Leases in the replicated state of a range, driven through the in-test
 * replica harness (test/shard/replica/harness.ts) with a fake lessor clock
 * and no expiry timer (revokeExpiredLeases() is called by hand).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, RANGE_ID, b, s } from '../replica/harness.js';
import { MemoryEngine } from '../../../src/storage/index.js';
import { LeaseNotFoundError } from '../../../src/shard/mvcc/index.js';
import { INITIAL_EPOCH } from '../../../src/shard/range/index.js';
import { Replica, type ReplicaLeaseOptions } from '../../../src/shard/replica/index.js';
import { LeaseExistsError, LeaseTtlTooLargeError } from '../../../src/shard/lease/index.js';

const epoch = INITIAL_EPOCH;

/** The lessor clock of every replica of a harness. */
class FakeClock {
  ms = 50_000;
  readonly now = (): number => this.ms;
}

function leaseOptions(clock: FakeClock, extra: Partial<ReplicaLeaseOptions> = {}): { lease: ReplicaLeaseOptions } {
  return { lease: { now: clock.now, expiryCheckMs: 0, minTtlSeconds: 2, promoteExtendMs: 1000, ...extra } };
}

async function get(r: Replica, key: string): Promise<{ value: string; lease: bigint } | undefined> {
  const res = await r.range({ key: b(key) }, { epoch, consistency: 'serializable' });
  const kv = res.result.kvs[0];
  return kv === undefined ? undefined : { value: s(kv.value), lease: kv.lease };
}

test('grant: TTL raised to the minimum, an id in use and a huge TTL refused, no revision consumed', async () => {
  const clock = new FakeClock();
  const h = await Harness.start([1], leaseOptions(clock));
  const r = h.replica(1);
  const before = r.currentRevision;
  const g = await r.leaseGrant(10n, 1, { epoch });
  assert.deepEqual({ id: g.result.id, ttl: g.result.ttlSeconds, rev: g.header.revision }, { id: 10n, ttl: 2, rev: before });
  assert.equal(r.currentRevision, before);
  await assert.rejects(r.leaseGrant(10n, 60, { epoch }), (e: unknown) => e instanceof LeaseExistsError && e.message === 'etcdserver: lease already exists');
  await assert.rejects(r.leaseGrant(11n, 9_000_000_001, { epoch }), LeaseTtlTooLargeError);
  assert.deepEqual(r.leaseList().map((l) => [l.id, l.ttlSeconds]), [[10n, 2]]);
  assert.equal(r.leaseExists(10n), true);
  assert.equal(r.leaseExists(11n), false);
});

test('a put naming an unknown lease fails with etcd\'s error and changes nothing', async () => {
  const clock = new FakeClock();
  const h = await Harness.start([1], leaseOptions(clock));
  const r = h.replica(1);
  await r.put({ key: b('b'), value: b('1') }, { epoch });
  const hash = await r.hashKV();
  const rev = r.currentRevision;
  await assert.rejects(r.put({ key: b('b'), value: b('2'), lease: 77n }, { epoch }), (e: unknown) => e instanceof LeaseNotFoundError && e.message === 'etcdserver: requested lease not found');
  // In a txn too, when the branch that runs has the put; the other branch may name it.
  await assert.rejects(r.txn({ success: [{ type: 'put', request: { key: b('c'), lease: 77n } }] }, { epoch }), LeaseNotFoundError);
  const ok = await r.txn(
    { compare: [{ key: b('b'), target: 'VALUE', result: 'EQUAL', value: b('nope') }], success: [{ type: 'put', request: { key: b('c'), lease: 77n } }], failure: [] },
    { epoch },
  );
  assert.equal(ok.result.succeeded, false);
  assert.equal(r.currentRevision, rev);
  assert.deepEqual(await r.hashKV(), hash);
});

test('revoke deletes every attached key at ONE revision, visible as DELETE events; no keys consumes none', async () => {
  const clock = new FakeClock();
  const h = await Harness.start([1, 2, 3], leaseOptions(clock));
  const r = h.replica(1);
  await r.leaseGrant(5n, 60, { epoch });
  await r.leaseGrant(6n, 60, { epoch });
  await r.put({ key: b('c'), value: b('x'), lease: 5n }, { epoch });
  await r.put({ key: b('b'), value: b('y'), lease: 5n }, { epoch });
  await r.txn({ success: [{ type: 'put', request: { key: b('d'), value: b('z'), lease: 5n } }] }, { epoch });
  await r.put({ key: b('e'), value: b('other') }, { epoch });
  const ttl = await r.leaseTimeToLive(5n, true);
  assert.deepEqual(ttl.keys.map(s), ['b', 'c', 'd']);
  const before = r.currentRevision;
  const rv = await r.leaseRevoke(5n, { epoch });
  assert.equal(rv.result.deleted, 3);
  assert.equal(rv.header.revision, before + 1);
  assert.equal(r.currentRevision, before + 1);
  const page = await r.changes({ key: b('a'), rangeEnd: b('m'), startRevision: before + 1 });
  assert.deepEqual(page.events.map((e) => [e.type, s(e.kv.key), e.kv.modRevision]), [
    ['DELETE', 'b', before + 1],
    ['DELETE', 'c', before + 1],
    ['DELETE', 'd', before + 1],
  ]);
  assert.equal(await get(r, 'b'), undefined);
  assert.deepEqual(await get(r, 'e'), { value: 'other', lease: 0n });
  // A lease with no keys: revoked without a revision.
  const none = await r.leaseRevoke(6n, { epoch });
  assert.equal(none.result.deleted, 0);
  assert.equal(r.currentRevision, before + 1);
  await assert.rejects(r.leaseRevoke(6n, { epoch }), LeaseNotFoundError);
  await h.settle();
  for (const id of [2, 3]) {
    assert.deepEqual(await h.replica(id).hashKV(), await r.hashKV());
    assert.deepEqual(h.replica(id).leaseList(), []);
  }
});

test('attach and detach: overwrite moves a key between leases, ignore_lease keeps it, delete and a plain put detach', async () => {
  const clock = new FakeClock();
  const h = await Harness.start([1], leaseOptions(clock));
  const r = h.replica(1);
  await r.leaseGrant(1n, 60, { epoch });
  await r.leaseGrant(2n, 60, { epoch });
  const keysOf = async (id: bigint): Promise<string[]> => (await r.leaseTimeToLive(id, true)).keys.map(s);
  await r.put({ key: b('b'), value: b('1'), lease: 1n }, { epoch });
  await r.put({ key: b('c'), value: b('1'), lease: 1n }, { epoch });
  await r.put({ key: b('d'), value: b('1'), lease: 1n }, { epoch });
  assert.deepEqual(await keysOf(1n), ['b', 'c', 'd']);
  await r.put({ key: b('b'), value: b('2'), lease: 2n }, { epoch }); // moves to lease 2
  await r.put({ key: b('c'), value: b('2'), ignoreLease: true }, { epoch }); // keeps lease 1
  await r.put({ key: b('d'), value: b('2') }, { epoch }); // no lease any more
  assert.deepEqual(await keysOf(1n), ['c']);
  assert.deepEqual(await keysOf(2n), ['b']);
  assert.deepEqual(await get(r, 'c'), { value: '2', lease: 1n });
  await r.deleteRange({ key: b('b') }, { epoch });
  assert.deepEqual(await keysOf(2n), []);
  // Re-put inside a txn with a lease, then revoke lease 2: only that key goes.
  await r.txn({ success: [{ type: 'put', request: { key: b('e'), value: b('t'), lease: 2n } }, { type: 'deleteRange', request: { key: b('c') } }] }, { epoch });
  assert.deepEqual(await keysOf(1n), []);
  assert.deepEqual(await keysOf(2n), ['e']);
  await r.leaseRevoke(2n, { epoch });
  assert.equal(await get(r, 'e'), undefined);
  assert.deepEqual(await get(r, 'd'), { value: '2', lease: 0n });
});

test('expiry: the leader revokes an unrenewed lease after its TTL, a renewed one lives on', async () => {
  const clock = new FakeClock();
  const h = await Harness.start([1], leaseOptions(clock));
  const r = h.replica(1);
  await r.leaseGrant(1n, 10, { epoch });
  await r.leaseGrant(2n, 10, { epoch });
  await r.put({ key: b('b'), value: b('1'), lease: 1n }, { epoch });
  await r.put({ key: b('c'), value: b('1'), lease: 2n }, { epoch });
  clock.ms += 9_000;
  assert.equal((await r.leaseKeepAlive(2n)).ttlSeconds, 10);
  assert.equal((await r.leaseTimeToLive(1n, false)).ttlSeconds, 1);
  assert.equal(await r.revokeExpiredLeases(), 0);
  clock.ms += 1_000;
  assert.equal(await r.revokeExpiredLeases(), 1);
  assert.equal(await get(r, 'b'), undefined);
  assert.deepEqual(await get(r, 'c'), { value: '1', lease: 2n });
  assert.equal((await r.leaseKeepAlive(1n)).ttlSeconds, 0, 'KeepAlive of a revoked lease answers TTL 0');
  assert.equal((await r.leaseTimeToLive(1n, true)).ttlSeconds, -1, 'TimeToLive of a revoked lease answers TTL -1');
  assert.deepEqual(r.leaseList().map((l) => l.id), [2n]);
});

test('a snapshot carries the leases and their attachments; the installed replica can revoke them', async () => {
  const clock = new FakeClock();
  const h = await Harness.start([1], leaseOptions(clock));
  const r = h.replica(1);
  await r.leaseGrant(3n, 30, { epoch });
  await r.put({ key: b('b'), value: b('1'), lease: 3n }, { epoch });
  await r.put({ key: b('c'), value: b('1'), lease: 3n }, { epoch });
  const snap = await r.buildSnapshot();
  const other = await Harness.start([1], leaseOptions(clock));
  const target = other.replica(1);
  await target.leaseGrant(99n, 30, { epoch }); // replaced by the image
  const confState = { voters: [1], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
  await target.installSnapshot({ meta: { index: snap.index, term: 2, confState }, data: snap.data });
  assert.deepEqual(target.leaseList(), [{ id: 3n, ttlSeconds: 30 }]);
  assert.deepEqual((await target.leaseTimeToLive(3n, true)).keys.map(s), ['b', 'c']);
  // A fresh replica opened over the installed engine sees the same.
  const fresh = await Replica.open(new MemoryEngine(), { rangeId: RANGE_ID });
  await fresh.installSnapshot({ meta: { index: snap.index, term: 2, confState }, data: snap.data });
  assert.deepEqual(fresh.leaseList(), [{ id: 3n, ttlSeconds: 30 }]);
});

test('a restarted replica reloads its leases and attachments from the engine', async () => {
  const clock = new FakeClock();
  const h = await Harness.start([1, 2, 3], leaseOptions(clock));
  const r = h.replica(1);
  await r.leaseGrant(4n, 30, { epoch });
  await r.put({ key: b('b'), value: b('1'), lease: 4n }, { epoch });
  await h.settle();
  const restarted = await h.restart(2);
  assert.deepEqual(restarted.replica.leaseList(), [{ id: 4n, ttlSeconds: 30 }]);
  await h.tick(30);
  // Revoked by the leader: the restarted follower applies the same deletion.
  await h.replica(h.leader()).leaseRevoke(4n, { epoch });
  await h.settle();
  assert.equal(await get(h.replica(2), 'b'), undefined);
  assert.deepEqual(h.replica(2).leaseList(), []);
});

test('3 replicas: a lease kept alive through a leadership transfer does not expire; an unrenewed one expires after the new leader\'s full TTL', async () => {
  const clock = new FakeClock();
  const h = await Harness.start([1, 2, 3], leaseOptions(clock, { promoteExtendMs: 1000 }));
  const r1 = h.replica(1);
  await r1.leaseGrant(1n, 10, { epoch }); // kept alive
  await r1.leaseGrant(2n, 10, { epoch }); // never renewed
  await r1.put({ key: b('b'), value: b('kept'), lease: 1n }, { epoch });
  await r1.put({ key: b('c'), value: b('dropped'), lease: 2n }, { epoch });
  clock.ms += 8_000; // 2 s left on the old leader
  // Followers answer NotLeader: only the leader renews.
  await assert.rejects(h.replica(2).leaseKeepAlive(1n), /NotLeader|not leader/i);
  await r1.transferLeader(2, { epoch });
  await h.settle();
  assert.equal(h.leader(), 2);
  const r2 = h.replica(2);
  // The old leader stopped expiring; the new one restarted both deadlines at now + TTL + extension.
  assert.equal(await r1.revokeExpiredLeases(), 0);
  assert.equal((await r2.leaseTimeToLive(2n, false)).ttlSeconds, 11);
  clock.ms += 9_000;
  assert.equal((await r2.leaseKeepAlive(1n)).ttlSeconds, 10);
  clock.ms += 1_999; // 10.999 s after the transfer: nothing has expired yet
  assert.equal(await r2.revokeExpiredLeases(), 0);
  clock.ms += 1; // 11 s = TTL + extension
  assert.equal(await r2.revokeExpiredLeases(), 1);
  await h.settle();
  for (const id of [1, 2, 3]) {
    assert.equal(await get(h.replica(id), 'c'), undefined);
    assert.deepEqual(await get(h.replica(id), 'b'), { value: 'kept', lease: 1n });
  }
  clock.ms += 7_999; // lease 1 was renewed 9 s after the transfer: its deadline is 19 s after it
  assert.equal(await r2.revokeExpiredLeases(), 0);
  clock.ms += 1;
  assert.equal(await r2.revokeExpiredLeases(), 1);
  await h.settle();
  assert.equal(await get(h.replica(3), 'b'), undefined);
});
