/**
 * Range 1's member table in the descriptor: member attributes through
 * conf changes (add voter/learner, promote, remove, update), never-reused
 * replica ids, and the wire round trip of descriptors and commands.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeCommand, decodeDescriptor, encodeCommand, encodeDescriptor, maxReplicaIdOf, type RangeCommand } from '../../../src/shard/replica/index.js';
import { confChangeFor, descriptorAfterConfChange, invalidChangeReason } from '../../../src/shard/replica/membership.js';
import type { RangeDescriptor } from '../../../src/shard/range/index.js';
import type { ConfState } from '../../../src/group/raft/index.js';

const base: RangeDescriptor = {
  rangeId: 1,
  start: Buffer.alloc(0),
  end: Buffer.alloc(0),
  replicas: [
    { nodeId: 1, replicaId: 1, role: 'voter', memberName: 'a', peerUrls: ['http://127.0.0.1:1'] },
    { nodeId: 2, replicaId: 2, role: 'voter', memberName: 'b', peerUrls: ['http://127.0.0.1:2'] },
  ],
  epoch: { confVersion: 1, spanVersion: 1 },
};

const conf = (voters: number[], learners: number[] = []): ConfState => ({ voters, learners, votersOutgoing: [], learnersNext: [], autoLeave: false });

test('a new member keeps its name and peer URLs through add, promote and update; ids are never reused', () => {
  const added = descriptorAfterConfChange(base, conf([1, 2], [3]), {
    changeType: 'addLearner',
    nodeId: 3,
    replicaId: 3,
    memberName: '',
    peerUrls: ['http://127.0.0.1:3'],
  });
  assert.deepEqual(added.replicas[2], { nodeId: 3, replicaId: 3, role: 'learner', memberName: '', peerUrls: ['http://127.0.0.1:3'] });
  assert.deepEqual(added.epoch, { confVersion: 2, spanVersion: 1 });
  const promoted = descriptorAfterConfChange(added, conf([1, 2, 3]), { changeType: 'promote', nodeId: 3, replicaId: 3 });
  assert.deepEqual(promoted.replicas[2], { nodeId: 3, replicaId: 3, role: 'voter', memberName: '', peerUrls: ['http://127.0.0.1:3'] });
  const updated = descriptorAfterConfChange(promoted, conf([1, 2, 3]), {
    changeType: 'updateMember',
    nodeId: 2,
    replicaId: 2,
    peerUrls: ['http://127.0.0.1:20'],
  });
  assert.deepEqual(updated.replicas[1], { nodeId: 2, replicaId: 2, role: 'voter', memberName: 'b', peerUrls: ['http://127.0.0.1:20'] });
  const removed = descriptorAfterConfChange(updated, conf([1, 2]), { changeType: 'remove', nodeId: 3, replicaId: 3 });
  assert.deepEqual(removed.replicas.map((r) => r.replicaId), [1, 2]);
  assert.equal(maxReplicaIdOf(base), 2);
  assert.equal(maxReplicaIdOf(removed), 3, 'the removed id stays taken');
});

test('conf changes of the member table: a voter add is addNode, an update re-adds in the current role', () => {
  const ctx = new Uint8Array([1]);
  assert.deepEqual(confChangeFor({ changeType: 'addVoter', nodeId: 3, replicaId: 3 }, ctx, base).changes, [{ type: 'addNode', nodeId: 3 }]);
  assert.deepEqual(confChangeFor({ changeType: 'updateMember', nodeId: 2, replicaId: 2 }, ctx, base).changes, [{ type: 'addNode', nodeId: 2 }]);
  const withLearner: RangeDescriptor = { ...base, replicas: [...base.replicas, { nodeId: 3, replicaId: 3, role: 'learner' }] };
  assert.deepEqual(confChangeFor({ changeType: 'updateMember', nodeId: 3, replicaId: 3 }, ctx, withLearner).changes, [{ type: 'addLearner', nodeId: 3 }]);
  assert.equal(invalidChangeReason(base, { changeType: 'addVoter', nodeId: 2, replicaId: 2 }), 'replica 2 is already a member');
  assert.equal(invalidChangeReason(base, { changeType: 'updateMember', nodeId: 9, replicaId: 9 }), 'replica 9 is not a member');
});

test('descriptors and membership commands round-trip with member attributes; old ones decode without them', () => {
  const desc: RangeDescriptor = { ...base, maxReplicaId: 7 };
  assert.deepEqual(decodeDescriptor(encodeDescriptor(desc)), desc);
  const plain: RangeDescriptor = { ...base, replicas: [{ nodeId: 1, replicaId: 1, role: 'voter' }] };
  assert.deepEqual(decodeDescriptor(encodeDescriptor(plain)), plain);
  const cmd: RangeCommand = {
    requestId: { proposer: Buffer.from([1]), seq: 1 },
    epoch: { confVersion: 1, spanVersion: 1 },
    body: { type: 'changeReplicas', request: { changeType: 'addVoter', nodeId: 3, replicaId: 3, memberName: '', peerUrls: ['http://127.0.0.1:3'] } },
  };
  assert.deepEqual(decodeCommand(encodeCommand(cmd)).body, cmd.body);
  const upd: RangeCommand = { ...cmd, body: { type: 'changeReplicas', request: { changeType: 'updateMember', nodeId: 2, replicaId: 2, memberName: '', peerUrls: ['http://127.0.0.1:9'] } } };
  assert.deepEqual(decodeCommand(encodeCommand(upd)).body, upd.body);
});
