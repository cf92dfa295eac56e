import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, b, s } from './harness.js';
import { INITIAL_EPOCH } from '../../../src/shard/range/index.js';

const epoch = INITIAL_EPOCH;

test('put then get through raft on a single replica', async () => {
  const h = await Harness.start([1]);
  const r = h.replica(1);
  const put = await r.put({ key: b('b'), value: b('1') }, { epoch });
  assert.equal(put.header.revision, 2);
  assert.ok(put.header.raftTerm >= 1);
  const got = await r.range({ key: b('b') }, { epoch });
  assert.equal(got.header.revision, 2);
  assert.equal(got.result.kvs.length, 1);
  assert.equal(s(got.result.kvs[0]!.value), '1');
  assert.equal(got.result.kvs[0]!.modRevision, 2);
  const ser = await r.range({ key: b('b') }, { epoch, consistency: 'serializable' });
  assert.equal(s(ser.result.kvs[0]!.value), '1');
});

test('revisions from the range counter are dense: each write consumes one, no-op deletes none', async () => {
  const h = await Harness.start([1]);
  const r = h.replica(1);
  const revs: number[] = [];
  for (let i = 0; i < 5; i++) revs.push((await r.put({ key: b(`k${i}`), value: b('v') }, { epoch })).header.revision);
  const noop = await r.deleteRange({ key: b('kzz') }, { epoch });
  assert.equal(noop.result.deleted, 0);
  assert.equal(noop.header.revision, 6, 'a delete of nothing reports the current revision');
  revs.push((await r.put({ key: b('k9'), value: b('v') }, { epoch })).header.revision);
  assert.deepEqual(revs, [2, 3, 4, 5, 6, 7]);
  assert.equal(r.currentRevision, 7);
});

test('put, txn and delete_range replicate to three replicas with equal MVCC hashes', async () => {
  const h = await Harness.start([1, 2, 3]);
  const r = h.replica(1);
  await r.put({ key: b('b'), value: b('1') }, { epoch });
  await r.put({ key: b('c'), value: b('2') }, { epoch });
  const txn = await r.txn(
    {
      compare: [{ key: b('b'), result: 'EQUAL', target: 'VALUE', value: b('1') }],
      success: [
        { type: 'put', request: { key: b('b'), value: b('11'), prevKv: true } },
        { type: 'range', request: { key: b('b') } },
      ],
      failure: [],
    },
    { epoch },
  );
  assert.equal(txn.result.succeeded, true);
  assert.equal(txn.header.revision, 4);
  const first = txn.result.responses[0]!;
  assert.equal(first.type, 'put');
  if (first.type === 'put') assert.equal(s(first.response.prevKv!.value), '1');
  const second = txn.result.responses[1]!;
  if (second.type === 'range') assert.equal(s(second.response.kvs[0]!.value), '11');
  const failed = await r.txn(
    { compare: [{ key: b('c'), result: 'EQUAL', target: 'VERSION', version: 5 }], success: [], failure: [{ type: 'range', request: { key: b('c') } }] },
    { epoch },
  );
  assert.equal(failed.result.succeeded, false);
  assert.equal(failed.header.revision, 4, 'a read-only branch consumes no revision');
  const del = await r.deleteRange({ key: b('b'), rangeEnd: b('d'), prevKv: true }, { epoch });
  assert.equal(del.result.deleted, 2);
  assert.deepEqual(del.result.prevKvs.map((kv) => s(kv.value)), ['11', '2']);
  await h.settle();
  const hashes = await Promise.all([1, 2, 3].map((id) => h.replica(id).hashKV()));
  assert.equal(hashes[0]!.hashRevision, 5);
  assert.deepEqual(hashes[1], hashes[0]);
  assert.deepEqual(hashes[2], hashes[0]);
  for (const id of [1, 2, 3]) assert.equal(h.replica(id).appliedIndex(), h.replica(1).appliedIndex());
});

test('an MVCC error is the command result on every replica and changes nothing', async () => {
  const h = await Harness.start([1, 2, 3]);
  const r = h.replica(1);
  await assert.rejects(r.put({ key: b('b'), ignoreValue: true }, { epoch }), { name: 'KeyNotFoundError', message: 'etcdserver: key not found' });
  assert.equal(r.currentRevision, 1);
  await h.settle();
  assert.equal(h.replica(2).currentRevision, 1);
});

test('a revision handed in by the revision source (the future TSO) is used as is; one not above current is refused unrecorded', async () => {
  let next: number | undefined = 100;
  const h = await Harness.start([1, 2, 3], { revisionSource: { allocate: () => next } });
  const r = h.replica(1);
  const put = await r.put({ key: b('b'), value: b('1') }, { epoch });
  assert.equal(put.header.revision, 100);
  next = 100;
  const requestId = { proposer: b('gw'), seq: 1 };
  await assert.rejects(r.put({ key: b('c'), value: b('1') }, { epoch, requestId }), { name: 'RevisionRejectedError' });
  next = 105;
  const retry = await r.put({ key: b('c'), value: b('1') }, { epoch, requestId });
  assert.equal(retry.header.revision, 105, 'the rejected attempt was not recorded, so the retry applies');
  next = undefined;
  assert.equal((await r.put({ key: b('d'), value: b('1') }, { epoch })).header.revision, 106);
  await h.settle();
  assert.deepEqual(await h.replica(3).hashKV(), await r.hashKV());
});

test('an asynchronous revision source is awaited before proposing', async () => {
  const h = await Harness.start([1], { revisionSource: { allocate: async () => 7 } });
  const put = await h.replica(1).put({ key: b('b'), value: b('1') }, { epoch });
  assert.equal(put.header.revision, 7);
});

test('a command above the request size limit is refused with etcd text before proposing', async () => {
  const h = await Harness.start([1], { requestBytesMax: 1024 });
  await assert.rejects(h.replica(1).put({ key: b('b'), value: Buffer.alloc(2000) }, { epoch }), {
    name: 'RequestTooLargeError',
    message: 'etcdserver: request is too large',
  });
  assert.equal(h.replica(1).pendingProposals, 0);
});
