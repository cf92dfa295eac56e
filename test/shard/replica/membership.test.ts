import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, b, s } from './harness.js';
import {
  EpochMismatchError,
  INITIAL_EPOCH,
  LearnerNotInSyncError,
  MembershipChangeInvalidError,
  NotLeaderError,
  RangeNotInitializedError,
} from '../../../src/shard/range/index.js';

const epoch = INITIAL_EPOCH;

test('add learner (caught up by snapshot), promote, remove, transfer leadership: epochs bump and stale ones are refused', async () => {
  const h = await Harness.start([1, 2, 3]);
  const r1 = h.replica(1);
  await r1.put({ key: b('b'), value: b('1') }, { epoch });
  await r1.put({ key: b('c'), value: b('2') }, { epoch });
  // With the log truncated the new replica can only catch up from a snapshot.
  await h.compactLog(1);
  const n4 = await h.addEmptyNode(4);
  await assert.rejects(n4.replica.range({ key: b('b') }, { epoch, consistency: 'serializable' }), RangeNotInitializedError);

  await assert.rejects(r1.addLearner(400, 4, { epoch: { confVersion: 0, spanVersion: 1 } }), EpochMismatchError);
  await assert.rejects(h.replica(2).addLearner(400, 4, { epoch }), NotLeaderError);
  await assert.rejects(r1.addLearner(100, 1, { epoch }), MembershipChangeInvalidError);
  await assert.rejects(r1.transferLeader(4, { epoch }), MembershipChangeInvalidError);
  const added = await r1.addLearner(400, 4, { epoch });
  assert.deepEqual(added.epoch, { confVersion: 2, spanVersion: 1 });
  assert.deepEqual(added.replicas.find((r) => r.replicaId === 4), { nodeId: 400, replicaId: 4, role: 'learner' });
  await h.tick(1, [1]);
  assert.equal(n4.replica.isInitialized, true, 'installed the leader snapshot');
  assert.deepEqual(await n4.replica.hashKV(), await r1.hashKV());
  assert.deepEqual(n4.replica.descriptor, added);
  const learnerRead = await n4.replica.range({ key: b('b') }, { epoch, consistency: 'serializable' });
  assert.equal(s(learnerRead.result.kvs[0]!.value), '1');
  await r1.put({ key: b('b'), value: b('1b') }, { epoch });
  const learnerLinearizable = await n4.replica.range({ key: b('b') }, { epoch });
  assert.equal(s(learnerLinearizable.result.kvs[0]!.value), '1b', 'ReadIndex works from a learner too');

  // A request routed with the old conf version is stale for membership changes...
  await assert.rejects(r1.promote(4, { epoch }), (err: unknown) => {
    assert.ok(err instanceof EpochMismatchError);
    assert.deepEqual(err.current, added);
    return true;
  });
  // ...but not for data, which checks only the span version (as TiKV).
  await r1.put({ key: b('d'), value: b('3') }, { epoch });
  const promoted = await r1.promote(4, { epoch: added.epoch });
  assert.deepEqual(promoted.epoch, { confVersion: 3, spanVersion: 1 });
  assert.equal(promoted.replicas.find((r) => r.replicaId === 4)?.role, 'voter');
  assert.deepEqual(h.node(1).raw.status().config.voters.slice().sort(), [1, 2, 3, 4]);

  const removed = await r1.remove(3, { epoch: promoted.epoch });
  assert.deepEqual(removed.epoch, { confVersion: 4, spanVersion: 1 });
  assert.deepEqual(removed.replicas.map((r) => r.replicaId), [1, 2, 4]);
  await h.settle();
  for (const id of [1, 2, 4]) assert.deepEqual(h.replica(id).descriptor, removed);

  await assert.rejects(r1.transferLeader(4, { epoch: promoted.epoch }), EpochMismatchError);
  await r1.transferLeader(4, { epoch: removed.epoch });
  assert.equal(h.leader(), 4);
  const put = await h.replica(4).put({ key: b('e'), value: b('4') }, { epoch: removed.epoch });
  await h.settle();
  for (const id of [1, 2]) {
    assert.deepEqual(await h.replica(id).hashKV(), await h.replica(4).hashKV());
    assert.equal(h.replica(id).currentRevision, put.header.revision);
  }
});

test('promote refuses a learner whose log is not in sync with the leader', async () => {
  const h = await Harness.start([1, 2, 3]);
  const r1 = h.replica(1);
  await h.addEmptyNode(4);
  h.isolate(4);
  const added = await r1.addLearner(400, 4, { epoch });
  for (let i = 0; i < 20; i++) await r1.put({ key: b(`k${i}`), value: b('v') }, { epoch });
  await assert.rejects(r1.promote(4, { epoch: added.epoch }), (err: unknown) => {
    assert.ok(err instanceof LearnerNotInSyncError);
    assert.equal(err.message, 'etcdserver: can only promote a learner member which is in sync with leader');
    return true;
  });
  assert.deepEqual(r1.descriptor, added);
});
