/**
 * Regression test for simulator finding F1 (seed 144 with
 * `--set crashAfterVoteRate=1`): a follower restored a snapshot while a
 * Ready it had handed out still held unapplied committed entries, so the
 * host's required applyConfChange() for one of them failed ("config is
 * already joint"): the snapshot had already switched the tracker config.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStorage, RawNode, encodeConfChange } from '../../../src/group/raft/index.js';
import type { ConfChange, Message, Snapshot } from '../../../src/group/raft/index.js';

const zero = { logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 } as const;

test('a snapshot is not restored while committed entries handed to the host are unapplied', () => {
  const storage = MemoryStorage.withVoters([1, 2, 3]);
  const node = new RawNode({ id: 2, electionTick: 10, heartbeatTick: 1, random: { intn: () => 0 } }, storage);
  const joint: ConfChange = { changes: [{ type: 'addNode', nodeId: 4 }, { type: 'removeNode', nodeId: 3 }], transition: 'auto' };
  // Leader 1 replicates and commits a joint conf change at index 1.
  const app: Message = {
    ...zero, type: 'app', from: 1, to: 2, term: 1, logTerm: 0, index: 0, commit: 1,
    entries: [{ term: 1, index: 1, type: 'confChange', data: encodeConfChange(joint) }],
  };
  node.step(app);
  const rd = node.ready();
  assert.deepEqual(rd.committedEntries.map((e) => e.index), [1]);
  storage.append(rd.entries);
  if (rd.hardState !== undefined) storage.setHardState(rd.hardState);

  // While the host applies that Ready, a snapshot past it arrives (its config is already joint).
  const snap: Snapshot = {
    meta: { index: 5, term: 1, confState: { voters: [1, 2, 4], learners: [], votersOutgoing: [1, 2, 3], learnersNext: [], autoLeave: true } },
    data: new Uint8Array(0),
  };
  node.step({ ...zero, type: 'snap', from: 1, to: 2, term: 1, snapshot: snap });

  // The host must still be able to apply the conf change it was handed.
  const cs = node.applyConfChange(joint);
  assert.deepEqual([...cs.votersOutgoing].sort(), [1, 2, 3]);
  node.advance(rd);

  // Once the host has caught up, the same snapshot is accepted.
  node.step({ ...zero, type: 'snap', from: 1, to: 2, term: 1, snapshot: snap });
  assert.equal(node.status().commit, 5);
});
