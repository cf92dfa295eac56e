/**
 * The auth store as part of a range's replicated state: auth commands go
 * through raft and reach every replica, survive a restart (stored in the
 * apply batch) and travel in range snapshots; a data command checked at an
 * older auth revision is refused at apply.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { GroupHandle } from '../../../src/group/host/state-machine.js';
import type { RaftStatus } from '../../../src/group/raft/index.js';
import { MemoryEngine } from '../../../src/storage/index.js';
import { Replica } from '../../../src/shard/replica/index.js';
import { INITIAL_EPOCH } from '../../../src/shard/range/index.js';
import { AuthError, encodeAuthState, type AuthRequest } from '../../../src/shard/auth/index.js';
import { Harness, RANGE_ID, b, bootstrapDescriptor } from '../replica/harness.js';

const epoch = INITIAL_EPOCH;

/** Creates root (role root), role r1 with READWRITE on [a, z), user u1 with r1, and enables auth. */
const SETUP: readonly AuthRequest[] = [
  { type: 'userAdd', name: 'root', passwordHash: 'h-root', noPassword: false },
  { type: 'userGrantRole', name: 'root', role: 'root' },
  { type: 'roleAdd', name: 'r1' },
  { type: 'roleGrantPermission', name: 'r1', permission: { type: 'READWRITE', key: b('a'), rangeEnd: b('z') } },
  { type: 'userAdd', name: 'u1', passwordHash: 'h-u1', noPassword: false },
  { type: 'userGrantRole', name: 'u1', role: 'r1' },
  { type: 'enable' },
];

test('auth commands replicate to every replica, survive a restart and travel in a snapshot', async () => {
  const h = await Harness.start([1, 2, 3]);
  const leader = h.replica(1);
  for (const req of SETUP) {
    const reply = await leader.auth(req, { epoch });
    assert.equal(reply.result.authRevision, leader.authState.revision);
  }
  assert.equal(leader.authState.enabled, true);
  assert.equal(leader.authState.revision, 1 + SETUP.length);
  // A refused command is recorded and changes nothing.
  await assert.rejects(leader.auth({ type: 'roleAdd', name: 'r1' }, { epoch }), (err: unknown) => err instanceof AuthError && err.code === 'ROLE_ALREADY_EXIST');
  assert.equal(leader.authState.revision, 1 + SETUP.length);
  await h.settle();
  const expected = Buffer.from(encodeAuthState(leader.authState));
  for (const id of [2, 3]) assert.deepEqual(Buffer.from(encodeAuthState(h.replica(id).authState)), expected, `replica ${id}`);

  const restarted = await h.restart(2);
  assert.deepEqual(Buffer.from(encodeAuthState(restarted.replica.authState)), expected, 'after restart');

  const snap = await leader.buildSnapshot();
  const fresh = await Replica.open(new MemoryEngine(), { rangeId: RANGE_ID });
  const confState = { voters: [1], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
  await fresh.installSnapshot({ meta: { index: snap.index, term: 2, confState }, data: snap.data });
  assert.deepEqual(Buffer.from(encodeAuthState(fresh.authState)), expected, 'after snapshot install');
  await fresh.close();
});

test('a write checked at an older auth revision is refused at apply, and writes nothing', async () => {
  const proposed: Uint8Array[] = [];
  const handle: GroupHandle = {
    groupId: RANGE_ID,
    replicaId: 1,
    propose: (data) => void proposed.push(data),
    proposeConfChange: () => undefined,
    readIndex: () => undefined,
    leaseReadIndex: () => undefined,
    transferLeader: () => undefined,
    status: () => ({ id: 1, role: 'leader', lead: 1, term: 2 }) as unknown as RaftStatus,
    basicStatus: () => ({ role: 'leader', lead: 1, term: 2, commit: 0, lastIndex: 0 }),
  };
  const replica = await Replica.open(new MemoryEngine(), { rangeId: RANGE_ID, bootstrap: bootstrapDescriptor([1]), handle });
  /** Applies every captured proposal, in proposal order. */
  const applyProposed = async (): Promise<void> => {
    const base = replica.appliedIndex();
    const entries = proposed.splice(0).map((data, i) => ({ entry: { term: 2, index: base + 1 + i, type: 'normal' as const, data } }));
    await replica.applyEntries(entries);
  };
  for (const req of SETUP) {
    const p = replica.auth(req, { epoch });
    await applyProposed();
    await p;
  }
  const checkedAt = replica.authState.revision;
  // u1's role is revoked after its put was checked but before the put applies.
  const revoke = replica.auth({ type: 'userRevokeRole', name: 'u1', role: 'r1' }, { epoch, authRevision: checkedAt });
  const stale = replica.put({ key: b('k'), value: b('v') }, { epoch, authRevision: checkedAt });
  const staleOutcome = stale.then(
    () => 'applied',
    (err: unknown) => (err instanceof AuthError ? err.code : String(err)),
  );
  await applyProposed();
  await revoke;
  assert.equal(await staleOutcome, 'AUTH_OLD_REVISION');
  const read = await replica.range({ key: b('k') }, { epoch, consistency: 'serializable' });
  assert.equal(read.result.kvs.length, 0, 'the refused put wrote nothing');
  assert.equal(replica.currentRevision, 1, 'and consumed no revision');

  // Checked at the current revision, the same put applies.
  const fresh = replica.put({ key: b('k'), value: b('v') }, { epoch, authRevision: replica.authState.revision });
  await applyProposed();
  assert.equal((await fresh).header.revision, 2);
  // Not checked at all (internal commands) or auth disabled: no refusal.
  const internal = replica.put({ key: b('k2'), value: b('v') }, { epoch });
  await applyProposed();
  await internal;
  await replica.close();
});
