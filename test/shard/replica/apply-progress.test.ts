/**
 * Replica.applyEntries reports each applied entry through `onApplied`
 * before answering its proposer, so the host can release its proposal
 * window per entry rather than per batch (test/group/host/window-release).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { GroupHandle } from '../../../src/group/host/state-machine.js';
import type { RaftStatus } from '../../../src/group/raft/index.js';
import { MemoryEngine } from '../../../src/storage/index.js';
import { Replica } from '../../../src/shard/replica/index.js';
import { INITIAL_EPOCH } from '../../../src/shard/range/index.js';
import { RANGE_ID, b, bootstrapDescriptor } from './harness.js';

test('applyEntries calls onApplied per entry, before the proposer is answered', async () => {
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
  const settled: number[] = [];
  const puts = [0, 1, 2].map((i) =>
    replica.put({ key: b(`b${i}`), value: b('v') }, { epoch: INITIAL_EPOCH }).then(() => settled.push(i)),
  );
  assert.equal(proposed.length, 3);
  const base = replica.appliedIndex();
  const entries = proposed.map((data, i) => ({ entry: { term: 2, index: base + 1 + i, type: 'normal' as const, data } }));
  const calls: { index: number; settledBefore: number }[] = [];
  await replica.applyEntries(entries, (index) => {
    calls.push({ index, settledBefore: settled.length });
    assert.equal(replica.appliedIndex(), index, 'durable in the replica when reported');
  });
  await Promise.all(puts);
  assert.deepEqual(
    calls.map((c) => c.index),
    [base + 1, base + 2, base + 3],
  );
  // Settling is asynchronous, so no proposer can have seen its answer before its index was reported.
  for (const [i, c] of calls.entries()) assert.ok(c.settledBefore <= i, `entry ${i} reported before its proposer was answered`);
  assert.equal(replica.pendingProposals, 0);
  await replica.close();
});
