import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, b, s } from './harness.js';
import { INITIAL_EPOCH, NotLeaderError, RequestAbortedError, RequestTimeoutError } from '../../../src/shard/range/index.js';

const epoch = INITIAL_EPOCH;

test('a linearizable read on a follower sees a write acknowledged before it started', async () => {
  const h = await Harness.start([1, 2, 3]);
  // Follower 3 hears nothing of the write until the read's ReadIndex round.
  h.isolate(3);
  await h.replica(1).put({ key: b('b'), value: b('1') }, { epoch });
  h.heal();
  const stale = await h.replica(3).range({ key: b('b') }, { epoch, consistency: 'serializable' });
  assert.equal(stale.result.kvs.length, 0, 'the follower has not applied the write yet');
  const read = await h.replica(3).range({ key: b('b') }, { epoch });
  assert.equal(read.result.kvs.length, 1);
  assert.equal(s(read.result.kvs[0]!.value), '1');
  assert.equal(read.header.revision, 2);
});

test('a read index request lost on the way to the leader ends with RequestTimeoutError, not a wait for good', async () => {
  const h = await Harness.start([1, 2, 3], { requestTimeoutMs: 50 });
  await h.replica(1).put({ key: b('b'), value: b('1') }, { epoch });
  await h.settle();
  // No ticks: the leader keeps its term and the follower never learns of a change.
  h.isolate(2);
  const started = Date.now();
  await assert.rejects(h.replica(2).range({ key: b('b') }, { epoch }), (err: unknown) => {
    assert.ok(err instanceof RequestTimeoutError, String(err));
    return true;
  });
  assert.ok(Date.now() - started >= 45, 'not before the timeout');
  h.heal();
  const read = await h.replica(2).range({ key: b('b') }, { epoch });
  assert.equal(s(read.result.kvs[0]!.value), '1', 'reads go on once the leader is reachable');
});

test('a linearizable read on the leader sees every acknowledged write', async () => {
  const h = await Harness.start([1, 2, 3]);
  const r = h.replica(1);
  for (let i = 0; i < 3; i++) {
    const put = await r.put({ key: b('b'), value: b(`v${i}`) }, { epoch });
    const read = await r.range({ key: b('b') }, { epoch });
    assert.equal(s(read.result.kvs[0]!.value), `v${i}`);
    assert.equal(read.header.revision, put.header.revision);
  }
});

test('a serializable read on a follower is served locally, possibly stale, never uncommitted', async () => {
  const h = await Harness.start([1, 2, 3]);
  await h.replica(1).put({ key: b('b'), value: b('old') }, { epoch });
  await h.settle();
  h.isolate(2);
  await h.replica(1).put({ key: b('b'), value: b('new') }, { epoch });
  const read = await h.replica(2).range({ key: b('b') }, { epoch, consistency: 'serializable' });
  assert.equal(s(read.result.kvs[0]!.value), 'old');
  h.heal();
  await h.tick(1, [1]);
  const after = await h.replica(2).range({ key: b('b') }, { epoch, consistency: 'serializable' });
  assert.equal(s(after.result.kvs[0]!.value), 'new');
});

test('a linearizable read waiting for its read index fails with NotLeaderError when the leader changes', async () => {
  const h = await Harness.start([1, 2, 3]);
  h.isolate(1);
  const read = h.replica(1).range({ key: b('b') }, { epoch });
  await h.settle();
  await h.elect(2);
  h.heal();
  await h.tick(1, [2]);
  await assert.rejects(read, NotLeaderError);
});

test('a linearizable read can be aborted while it waits', async () => {
  const h = await Harness.start([1, 2, 3]);
  h.isolate(1);
  const ac = new AbortController();
  const read = h.replica(1).range({ key: b('b') }, { epoch, signal: ac.signal });
  await h.settle();
  ac.abort();
  await assert.rejects(read, RequestAbortedError);
});

test('pending linearizable reads are bounded', async () => {
  const h = await Harness.start([1, 2, 3], { readsPendingMax: 1 });
  h.isolate(1);
  const ac = new AbortController();
  const first = h.replica(1).range({ key: b('b') }, { epoch, signal: ac.signal });
  await assert.rejects(h.replica(1).range({ key: b('b') }, { epoch }), { name: 'TooManyRequestsError' });
  const served = await h.replica(1).range({ key: b('b') }, { epoch, consistency: 'serializable' });
  assert.equal(served.result.kvs.length, 0, 'serializable reads are not bounded by the ReadIndex queue');
  ac.abort();
  await assert.rejects(first, RequestAbortedError);
});

test('readBarrier: a replica behind on applying has applied every write committed before the call once it resolves', async () => {
  const h = await Harness.start([1, 2, 3]);
  h.isolate(3);
  await h.replica(1).put({ key: b('c'), value: b('1') }, { epoch });
  h.heal();
  const before = await h.replica(3).range({ key: b('c') }, { epoch, consistency: 'serializable' });
  assert.equal(before.result.kvs.length, 0, 'replica 3 has not applied the write yet');
  await h.replica(3).readBarrier();
  const after = await h.replica(3).range({ key: b('c') }, { epoch, consistency: 'serializable' });
  assert.equal(s(after.result.kvs[0]!.value), '1', 'applied once the barrier resolved');
  // On the leader, too (a lease or a heartbeat round; nothing to wait for).
  await h.replica(1).readBarrier();
});
