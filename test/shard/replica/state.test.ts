import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, RANGE_ID, b, s } from './harness.js';
import { MemoryEngine } from '../../../src/storage/index.js';
import { CompactedError } from '../../../src/shard/mvcc/index.js';
import { INITIAL_EPOCH, SnapshotInvalidError } from '../../../src/shard/range/index.js';
import { Replica, RANGE_INIT_LOG_INDEX } from '../../../src/shard/replica/index.js';

const epoch = INITIAL_EPOCH;
const requestId = { proposer: b('client-1'), seq: 1 };

async function fill(h: Harness): Promise<void> {
  const r = h.replica(h.leader());
  await r.put({ key: b('b'), value: b('1') }, { epoch, requestId });
  await r.put({ key: b('c'), value: b('2'), lease: 0n }, { epoch });
  await r.put({ key: b('b'), value: b('3') }, { epoch });
  await r.deleteRange({ key: b('c') }, { epoch });
  await r.put({ key: b('d\0x'), value: Buffer.alloc(3000, 7) }, { epoch });
}

test('a snapshot built on the leader installs on a fresh replica with an identical state', async () => {
  const h = await Harness.start([1]);
  await fill(h);
  const leader = h.replica(1);
  const snap = await leader.buildSnapshot();
  assert.equal(snap.index, leader.appliedIndex());
  const fresh = await Replica.open(new MemoryEngine(), { rangeId: RANGE_ID });
  assert.equal(fresh.isInitialized, false);
  await fresh.installSnapshot({ meta: { index: snap.index, term: 2, confState: { voters: [1], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } }, data: snap.data });
  assert.equal(fresh.isInitialized, true);
  assert.equal(fresh.appliedIndex(), snap.index);
  assert.deepEqual(await fresh.hashKV(), await leader.hashKV());
  assert.deepEqual(fresh.descriptor, leader.descriptor);
  assert.equal(fresh.currentRevision, leader.currentRevision);
  assert.equal(fresh.dedupeRecords, leader.dedupeRecords);
  // Installing over existing state replaces it, stale keys included.
  const other = await Harness.start([1]);
  await other.replica(1).put({ key: b('e'), value: b('stale') }, { epoch });
  const target = other.replica(1);
  await target.installSnapshot({ meta: { index: snap.index, term: 2, confState: { voters: [1], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } }, data: snap.data });
  assert.deepEqual(await target.hashKV(), await leader.hashKV());
  const gone = await target.range({ key: b('e') }, { epoch, consistency: 'serializable' });
  assert.equal(gone.result.kvs.length, 0);
});

test('a read overlapping a snapshot install sees the old or the new state, never a half-installed one', async () => {
  const h = await Harness.start([1]);
  await fill(h);
  const snap = await h.replica(1).buildSnapshot();
  const other = await Harness.start([1]);
  const target = other.replica(1);
  for (let i = 0; i < 20; i++) await target.put({ key: b(`e${i}`), value: b('stale') }, { epoch });
  const meta = { index: snap.index, term: 2, confState: { voters: [1], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } };
  const [read] = await Promise.all([
    target.range({ key: b('a'), rangeEnd: b('m') }, { epoch, consistency: 'serializable' }),
    target.installSnapshot({ meta, data: snap.data }),
  ]);
  const expected = await h.replica(1).range({ key: b('a'), rangeEnd: b('m') }, { epoch, consistency: 'serializable' });
  assert.deepEqual(read, { ...expected, header: { ...expected.header, raftTerm: read.header.raftTerm } });
});

test('a corrupt or foreign snapshot image is refused before anything is deleted', async () => {
  const h = await Harness.start([1]);
  await fill(h);
  const snap = await h.replica(1).buildSnapshot();
  const target = await Harness.start([1]);
  await target.replica(1).put({ key: b('b'), value: b('keep') }, { epoch });
  const before = await target.replica(1).hashKV();
  const bad = Buffer.from(snap.data);
  bad[40] = bad[40]! ^ 0xff;
  const meta = { index: snap.index, term: 1, confState: { voters: [1], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } };
  await assert.rejects(target.replica(1).installSnapshot({ meta, data: bad }), SnapshotInvalidError);
  const foreign = await Replica.open(new MemoryEngine(), { rangeId: RANGE_ID + 1 });
  await assert.rejects(foreign.installSnapshot({ meta, data: snap.data }), SnapshotInvalidError);
  assert.deepEqual(await target.replica(1).hashKV(), before);
});

test('restart: the replica reopens from its engine with the same applied index and state, and applies nothing twice', async () => {
  const h = await Harness.start([1, 2, 3]);
  await fill(h);
  await h.settle();
  const applied = h.replica(2).appliedIndex();
  const hash = await h.replica(2).hashKV();
  const desc = h.replica(2).descriptor;
  await h.restart(2);
  assert.equal(h.replica(2).appliedIndex(), applied);
  assert.deepEqual(await h.replica(2).hashKV(), hash);
  assert.deepEqual(h.replica(2).descriptor, desc);
  // The restarted node rejoins and takes over; a retry of the first request is answered from the persisted table.
  await h.tick(1, [1]);
  await h.elect(2);
  const retry = await h.replica(2).put({ key: b('b'), value: b('1') }, { epoch, requestId });
  assert.equal(retry.header.revision, 2, 'the stored result of the first application');
  assert.equal(h.replica(2).currentRevision, hash.hashRevision, 'not applied again');
  await h.settle();
  assert.deepEqual(await h.replica(1).hashKV(), await h.replica(2).hashKV());
});

test('restart where raft hands out already-applied entries again: they are skipped, not re-applied', async () => {
  const h = await Harness.start([1]);
  await fill(h);
  const hash = await h.replica(1).hashKV();
  const applied = h.replica(1).appliedIndex();
  await h.restart(1, { raftApplied: 0 });
  await h.elect(1);
  assert.ok(h.replica(1).appliedIndex() > applied, 'the new term no-op applied');
  assert.deepEqual(await h.replica(1).hashKV(), hash);
  await h.replica(1).put({ key: b('f'), value: b('after restart') }, { epoch });
  assert.equal(h.replica(1).currentRevision, hash.hashRevision + 1);
});

test('compaction through raft removes history on every replica; reads below it fail', async () => {
  const h = await Harness.start([1, 2, 3], { compactionChunkOpsMax: 2 });
  const r = h.replica(1);
  for (let i = 0; i < 10; i++) await r.put({ key: b('b'), value: b(`v${i}`) }, { epoch });
  const compact = await r.compact({ revision: 8, physical: true }, { epoch });
  assert.equal(compact.header.revision, 11);
  await assert.rejects(r.range({ key: b('b'), revision: 7 }, { epoch }), CompactedError);
  const at8 = await r.range({ key: b('b'), revision: 8 }, { epoch });
  assert.equal(s(at8.result.kvs[0]!.value), 'v6');
  await assert.rejects(r.compact({ revision: 8 }, { epoch }), { name: 'CompactedError', message: 'etcdserver: mvcc: required revision has been compacted' });
  await assert.rejects(r.compact({ revision: 99 }, { epoch }), { name: 'FutureRevisionError' });
  await h.settle();
  const hashes = await Promise.all([1, 2, 3].map((id) => h.replica(id).hashKV()));
  assert.equal(hashes[0]!.compactRevision, 8);
  assert.deepEqual(hashes[1], hashes[0]);
  assert.deepEqual(hashes[2], hashes[0]);
  await assert.rejects(h.replica(3).range({ key: b('b'), revision: 7 }, { epoch, consistency: 'serializable' }), CompactedError);
});

test('bootstrap writes the descriptor and the initial applied index together; reopening keeps them', async () => {
  const engine = new MemoryEngine();
  const desc = { rangeId: RANGE_ID, start: b(''), end: b(''), replicas: [{ nodeId: 1, replicaId: 1, role: 'voter' as const }], epoch };
  const r = await Replica.open(engine, { rangeId: RANGE_ID, bootstrap: desc, bootstrapAppliedIndex: RANGE_INIT_LOG_INDEX });
  assert.equal(r.appliedIndex(), RANGE_INIT_LOG_INDEX);
  await r.close();
  const again = await Replica.open(engine, { rangeId: RANGE_ID, bootstrap: { ...desc, rangeId: RANGE_ID, epoch: { confVersion: 9, spanVersion: 9 } } });
  assert.equal(again.appliedIndex(), RANGE_INIT_LOG_INDEX);
  assert.deepEqual(again.descriptor, desc, 'a stored descriptor wins over the bootstrap one');
});
