import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, b, s } from './harness.js';
import {
  EpochMismatchError,
  INITIAL_EPOCH,
  KeyNotInRangeError,
  NotLeaderError,
  RequestTimeoutError,
  TooManyRequestsError,
} from '../../../src/shard/range/index.js';
import { toEtcdError } from '../../../src/gateway/errors.js';
import { encodeCommand } from '../../../src/shard/replica/index.js';

const epoch = INITIAL_EPOCH;
const requestId = { proposer: b('client-1'), seq: 42 };

test('a duplicate request id is applied once and answered twice with the stored result', async () => {
  const h = await Harness.start([1, 2, 3]);
  const r = h.replica(1);
  const first = await r.put({ key: b('b'), value: b('1'), prevKv: true }, { epoch, requestId });
  await r.put({ key: b('b'), value: b('2') }, { epoch });
  const retry = await r.put({ key: b('b'), value: b('1'), prevKv: true }, { epoch, requestId });
  assert.deepEqual(retry, first);
  assert.equal(r.currentRevision, 3, 'the retry consumed no revision');
  const got = await r.range({ key: b('b') }, { epoch });
  assert.equal(s(got.result.kvs[0]!.value), '2', 'the retry did not overwrite the later put');
  await h.settle();
  for (const id of [2, 3]) assert.equal(h.replica(id).currentRevision, 3);
});

test('two in-flight proposals with one request id both resolve with one application', async () => {
  const h = await Harness.start([1]);
  const r = h.replica(1);
  const [a, c] = await Promise.all([
    r.put({ key: b('b'), value: b('x') }, { epoch, requestId }),
    r.put({ key: b('b'), value: b('x') }, { epoch, requestId }),
  ]);
  assert.deepEqual(a, c);
  assert.equal(r.currentRevision, 2);
});

test('a failed request is also answered from the dedupe table', async () => {
  const h = await Harness.start([1]);
  const r = h.replica(1);
  await assert.rejects(r.put({ key: b('b'), ignoreValue: true }, { epoch, requestId }), { name: 'KeyNotFoundError' });
  await r.put({ key: b('b'), value: b('now exists') }, { epoch });
  await assert.rejects(r.put({ key: b('b'), ignoreValue: true }, { epoch, requestId }), { name: 'KeyNotFoundError' });
});

test('the dedupe table is bounded: the oldest records are evicted', async () => {
  const h = await Harness.start([1], { dedupeRecordsMax: 3 });
  const r = h.replica(1);
  for (let i = 0; i < 6; i++) await r.put({ key: b(`k${i}`), value: b('v') }, { epoch });
  assert.equal(r.dedupeRecords, 3);
  await h.restart(1);
  assert.equal(h.replica(1).dedupeRecords, 3);
});

test('a stale epoch or a key outside the span is rejected at proposal and changes nothing', async () => {
  const h = await Harness.start([1]);
  const r = h.replica(1);
  await r.put({ key: b('b'), value: b('1') }, { epoch });
  const before = await r.hashKV();
  const stale = { confVersion: 1, spanVersion: 0 };
  await assert.rejects(r.put({ key: b('b'), value: b('2') }, { epoch: stale }), (err: unknown) => {
    assert.ok(err instanceof EpochMismatchError);
    assert.equal(err.code, 'EPOCH_MISMATCH');
    assert.deepEqual(err.current.epoch, epoch);
    return true;
  });
  await assert.rejects(r.put({ key: b('z'), value: b('2') }, { epoch }), (err: unknown) => {
    assert.ok(err instanceof KeyNotInRangeError);
    assert.equal(s(err.key), 'z');
    assert.equal(s(err.start), 'a');
    assert.equal(s(err.end), 'm');
    return true;
  });
  await assert.rejects(r.deleteRange({ key: b('b'), rangeEnd: b('\0') }, { epoch }), KeyNotInRangeError);
  await assert.rejects(
    r.txn({ compare: [], success: [{ type: 'txn', request: { success: [{ type: 'put', request: { key: b('x'), value: b('') } }] } }] }, { epoch }),
    KeyNotInRangeError,
  );
  await assert.rejects(r.range({ key: b('b') }, { epoch: stale }), EpochMismatchError);
  await assert.rejects(r.range({ key: b('a'), rangeEnd: b('n') }, { epoch }), KeyNotInRangeError);
  assert.deepEqual(await r.hashKV(), before);
});

test('a stale epoch or a key outside the span is rejected again at apply and changes nothing', async () => {
  const h = await Harness.start([1, 2, 3]);
  const leader = h.node(1);
  await leader.replica.put({ key: b('b'), value: b('1') }, { epoch });
  const before = await leader.replica.hashKV();
  const applied = leader.replica.appliedIndex();
  // Proposed straight through the handle, past the replica's own checks.
  leader.handle.propose(encodeCommand({ requestId: { proposer: b('p'), seq: 1 }, epoch: { confVersion: 1, spanVersion: 9 }, body: { type: 'put', request: { key: b('b'), value: b('x') } } }));
  leader.handle.propose(encodeCommand({ requestId: { proposer: b('p'), seq: 2 }, epoch, body: { type: 'put', request: { key: b('zz'), value: b('x') } } }));
  await h.settle();
  for (const id of [1, 2, 3]) {
    const r = h.replica(id);
    assert.equal(r.appliedIndex(), applied + 2, 'the entries were applied (as rejections)');
    assert.deepEqual(await r.hashKV(), before);
    assert.equal(r.dedupeRecords, 1, 'rejections are not recorded, so a corrected retry applies');
  }
});

test('losing leadership fails pending proposals with NotLeaderError', async () => {
  const h = await Harness.start([1, 2, 3]);
  const old = h.replica(1);
  h.isolate(1);
  const pending = old.put({ key: b('b'), value: b('lost') }, { epoch });
  await h.settle();
  assert.equal(old.pendingProposals, 1);
  await h.elect(2);
  h.heal();
  await h.tick(1, [2]); // the new leader's heartbeat deposes the old one
  await assert.rejects(pending, (err: unknown) => {
    assert.ok(err instanceof NotLeaderError);
    assert.equal(err.code, 'NOT_LEADER');
    assert.deepEqual(err.leaderHint, { replicaId: 2, nodeId: 200 });
    return true;
  });
  assert.equal(old.pendingProposals, 0);
  await assert.rejects(old.put({ key: b('b'), value: b('x') }, { epoch }), NotLeaderError);
  const ok = await h.replica(2).put({ key: b('b'), value: b('new') }, { epoch });
  await h.settle();
  const got = await old.range({ key: b('b') }, { epoch });
  assert.equal(s(got.result.kvs[0]!.value), 'new');
  assert.equal(got.result.kvs[0]!.modRevision, ok.header.revision, 'the lost proposal never applied');
});

test("a proposal not applied within the request timeout fails with RequestTimeoutError; the entry may apply later, once", async () => {
  const h = await Harness.start([1, 2, 3], { requestTimeoutMs: 50 });
  const r = h.replica(1);
  await r.put({ key: b('b'), value: b('before') }, { epoch });
  // The leader cannot reach a quorum and, with no ticks, never steps down: only the timeout ends the wait.
  h.isolate(1);
  const started = Date.now();
  await assert.rejects(r.put({ key: b('b'), value: b('late') }, { epoch, requestId }), (err: unknown) => {
    assert.ok(err instanceof RequestTimeoutError, String(err));
    assert.equal(err.code, 'REQUEST_TIMEOUT');
    assert.equal(toEtcdError(err).message, 'etcdserver: request timed out');
    assert.equal(toEtcdError(err).grpcCode, 14, 'Unavailable, as etcd');
    return true;
  });
  assert.ok(Date.now() - started >= 45, 'not before the timeout');
  assert.equal(r.pendingProposals, 0, 'the waiter is gone');
  // Reconnected, the entry commits and applies; a retry with the same id is answered from the dedupe table.
  h.heal();
  await h.tick(3);
  const retry = await r.put({ key: b('b'), value: b('late') }, { epoch, requestId });
  const got = await r.range({ key: b('b') }, { epoch });
  assert.equal(s(got.result.kvs[0]!.value), 'late');
  assert.equal(got.result.kvs[0]!.version, 2, 'applied once');
  assert.equal(retry.header.revision, got.result.kvs[0]!.modRevision);
});

test('pending proposals are bounded', async () => {
  const h = await Harness.start([1], { proposalsPendingMax: 2 });
  const r = h.replica(1);
  const a = r.put({ key: b('b'), value: b('1') }, { epoch });
  const c = r.put({ key: b('c'), value: b('1') }, { epoch });
  await assert.rejects(r.put({ key: b('d'), value: b('1') }, { epoch }), TooManyRequestsError);
  await Promise.all([a, c]);
  await r.put({ key: b('d'), value: b('1') }, { epoch });
});
