/**
 * The errors that steer calls to the leader (NotLeaderError on the replica,
 * LeaderElsewhereError in the gateway's forwarding) are built without a
 * stack trace, and building them leaves every other error's stack as it was.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NotLeaderError } from '../../src/shard/range/index.js';
import { LeaderElsewhereError } from '../../src/gateway/forward-scope.js';

test('routing errors carry no stack frames; other errors keep theirs', () => {
  const limit = Error.stackTraceLimit;
  const notLeader = new NotLeaderError(3, { replicaId: 2, nodeId: 7 });
  const elsewhere = new LeaderElsewhereError(7, { cause: notLeader });
  for (const e of [notLeader, elsewhere]) {
    assert.doesNotMatch(e.stack ?? '', /\n\s+at /, `${e.name} has no frames`);
    assert.match(e.stack ?? '', new RegExp(e.name));
  }
  assert.equal(notLeader.message, 'range 3: not leader, leader is replica 2 on node 7');
  assert.equal(elsewhere.cause, notLeader);
  assert.equal(Error.stackTraceLimit, limit, 'the limit is restored');
  assert.match(new Error('other').stack ?? '', /\n\s+at /);
});
