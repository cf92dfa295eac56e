import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Net, appliedStrings, bytes } from './net.js';
import {
  ConfChangeInvalidError, ConfChangePendingError, MemoryStorage, ProposalDroppedError, decodeConfChange, encodeConfChange,
  type ConfChange,
} from '../../../src/group/raft/index.js';

const add = (nodeId: number): ConfChange => ({ changes: [{ type: 'addNode', nodeId }], transition: 'auto' });
const addLearner = (nodeId: number): ConfChange => ({ changes: [{ type: 'addLearner', nodeId }], transition: 'auto' });
const remove = (nodeId: number): ConfChange => ({ changes: [{ type: 'removeNode', nodeId }], transition: 'auto' });

test('conf changes round-trip through their byte encoding', () => {
  const cc: ConfChange = {
    changes: [{ type: 'addNode', nodeId: 4 }, { type: 'removeNode', nodeId: 2 ** 40 }, { type: 'addLearner', nodeId: 7 }],
    transition: 'jointExplicit',
    context: bytes('ctx'),
  };
  assert.deepEqual(decodeConfChange(encodeConfChange(cc)), cc);
  assert.deepEqual(decodeConfChange(encodeConfChange(add(3))), add(3));
  assert.deepEqual(decodeConfChange(new Uint8Array(0)), { changes: [], transition: 'auto' });
  assert.throws(() => decodeConfChange(new Uint8Array([9, 9, 9])), ConfChangeInvalidError);
});

test('a learner receives the log but never campaigns and is not counted in the quorum', () => {
  const net = new Net([1, 2, 3], {}, [4]);
  net.elect(1);
  net.propose(1, 'a');
  assert.deepEqual(appliedStrings(net.peer(4)), ['a']);
  assert.deepEqual(net.node(1).status().config.learners, [4]);
  // Learner never campaigns, however long it waits.
  net.isolate(4);
  net.tick(60, [4]);
  assert.equal(net.node(4).status().role, 'follower');
  assert.equal(net.node(4).status().term, 1);
  net.heal();
  // Leader + learner are not a quorum of {1,2,3}.
  net.isolate(2);
  net.isolate(3);
  net.node(1).propose(bytes('b'));
  net.stabilize();
  assert.equal(net.node(4).status().lastIndex, net.node(1).status().lastIndex, 'learner has the entry');
  assert.equal(net.node(1).status().commit, 2, 'but it is not committed');
  // A candidate does not count the learner's vote either.
  net.heal();
  net.tick(2, [1]);
  assert.equal(net.node(1).status().commit, 3);
});

test('add a learner, catch it up, promote it to voter', () => {
  const net = new Net([1, 2, 3]);
  net.elect(1);
  net.propose(1, 'a');
  net.add(4, MemoryStorage.withVoters([1, 2, 3]));
  net.node(1).proposeConfChange(addLearner(4));
  net.stabilize();
  net.tick(2, [1]);
  assert.deepEqual(appliedStrings(net.peer(4)), ['a']);
  assert.deepEqual(net.node(1).status().config.learners, [4]);
  assert.equal(net.node(1).status().progress!.get(4)!.isLearner, true);
  net.node(1).proposeConfChange(add(4));
  net.stabilize();
  assert.deepEqual(net.node(4).status().config.voters, [1, 2, 3, 4]);
  assert.deepEqual(net.node(4).status().config.learners, []);
  // The promoted node can now win an election.
  net.isolate(1);
  net.node(4).campaign();
  net.stabilize();
  assert.equal(net.node(4).status().role, 'leader');
});

test('removing the leader makes it step down and the rest elect a new leader', () => {
  const net = new Net([1, 2, 3]);
  net.elect(1);
  net.node(1).proposeConfChange(remove(1));
  net.stabilize();
  assert.equal(net.node(1).status().role, 'follower');
  assert.deepEqual(net.node(2).status().config.voters, [2, 3]);
  net.tick(30);
  const leaders = net.leaderIds();
  assert.equal(leaders.length, 1);
  assert.ok(leaders[0] === 2 || leaders[0] === 3);
  net.propose(leaders[0]!, 'after');
  assert.deepEqual(appliedStrings(net.peer(2)), ['after']);
  net.node(1).campaign(); // a removed node cannot campaign
  net.stabilize();
  assert.equal(net.node(1).status().role, 'follower');
});

test('a second conf change is rejected while one is pending', () => {
  const net = new Net([1, 2, 3]);
  net.elect(1);
  net.isolate(1);
  net.node(1).proposeConfChange(addLearner(4));
  assert.throws(() => net.node(1).proposeConfChange(addLearner(5)), (e: unknown) => e instanceof ConfChangePendingError && e.code === 'CONF_CHANGE_PENDING');
  net.heal();
  net.tick(2, [1]);
  net.node(1).proposeConfChange(addLearner(5)); // the first one is applied now
  net.stabilize();
  assert.deepEqual(net.node(2).status().config.learners, [4, 5]);
});

test('leaving a joint config that is not in effect is refused', () => {
  const net = new Net([1, 2, 3]);
  net.elect(1);
  assert.throws(() => net.node(1).proposeConfChange({ changes: [], transition: 'auto' }), ConfChangeInvalidError);
  // Removing every voter can never apply, so it never enters the log.
  assert.throws(
    () => net.node(1).proposeConfChange({ changes: [1, 2, 3].map((nodeId) => ({ type: 'removeNode' as const, nodeId })), transition: 'auto' }),
    ConfChangeInvalidError,
  );
});

test('joint consensus: enter with several changes, leave automatically', () => {
  const net = new Net([1, 2, 3]);
  net.elect(1);
  net.add(4, MemoryStorage.withVoters([1, 2, 3]));
  net.add(5, MemoryStorage.withVoters([1, 2, 3]));
  net.node(1).proposeConfChange({
    changes: [{ type: 'addNode', nodeId: 4 }, { type: 'addNode', nodeId: 5 }, { type: 'removeNode', nodeId: 3 }],
    transition: 'auto',
  });
  net.stabilize();
  const history = net.peer(1).confStates;
  assert.equal(history.length, 2);
  assert.deepEqual(history[0]!.voters, [1, 2, 4, 5]);
  assert.deepEqual(history[0]!.votersOutgoing, [1, 2, 3]);
  assert.equal(history[0]!.autoLeave, true);
  assert.deepEqual(history[1]!.voters, [1, 2, 4, 5]);
  assert.deepEqual(history[1]!.votersOutgoing, []);
  assert.deepEqual(net.node(5).status().config.voters, [1, 2, 4, 5]);
  // The new config works: 3 is gone, {1,4,5} is a quorum of four.
  net.isolate(2);
  net.isolate(3);
  net.propose(1, 'x');
  assert.deepEqual(appliedStrings(net.peer(5)), ['x']);
});

test('joint consensus: explicit leave, and a joint config needs both majorities', () => {
  const net = new Net([1, 2, 3]);
  net.elect(1);
  net.add(4, MemoryStorage.withVoters([1, 2, 3]));
  net.node(1).proposeConfChange({
    changes: [{ type: 'addNode', nodeId: 4 }, { type: 'removeNode', nodeId: 2 }],
    transition: 'jointExplicit',
  });
  net.stabilize();
  let cs = net.node(1).status().config;
  assert.deepEqual(cs.votersOutgoing, [1, 2, 3]);
  assert.deepEqual(cs.voters, [1, 3, 4]);
  // Only a leave is allowed now.
  assert.throws(() => net.node(1).proposeConfChange(add(5)), ConfChangeInvalidError);
  // {1,3,4} is a majority of the incoming config but only {1,3} of the outgoing one: still both hold.
  net.isolate(2);
  net.propose(1, 'joint-ok');
  assert.deepEqual(appliedStrings(net.peer(4)), ['joint-ok']);
  // Without 3, the outgoing half {1,2,3} has only 1: nothing commits.
  net.heal();
  net.isolate(3);
  net.isolate(2);
  const commit = net.node(1).status().commit;
  net.node(1).propose(bytes('stuck'));
  net.stabilize();
  assert.equal(net.node(1).status().commit, commit);
  net.heal();
  net.tick(2, [1]);
  net.node(1).proposeConfChange({ changes: [], transition: 'auto' });
  net.stabilize();
  cs = net.node(1).status().config;
  assert.deepEqual(cs.votersOutgoing, []);
  assert.deepEqual(cs.voters, [1, 3, 4]);
});

test('a demoted voter becomes a learner only when the joint config is left', () => {
  const net = new Net([1, 2, 3]);
  net.elect(1);
  net.node(1).proposeConfChange({ changes: [{ type: 'addLearner', nodeId: 3 }], transition: 'joint' });
  net.stabilize();
  const h = net.peer(2).confStates;
  assert.deepEqual(h[0]!.learnersNext, [3]);
  assert.deepEqual(h[0]!.voters, [1, 2]);
  assert.deepEqual(h[1]!.learners, [3]);
  assert.deepEqual(h[1]!.learnersNext, []);
});

test('leadership transfer: the transferee campaigns at once and wins', () => {
  const net = new Net([1, 2, 3], { checkQuorum: true, preVote: true });
  net.elect(1);
  net.propose(1, 'a');
  net.node(1).transferLeader(2);
  net.stabilize();
  assert.equal(net.node(2).status().role, 'leader');
  assert.equal(net.node(2).status().term, 2);
  assert.equal(net.node(1).status().lead, 2);
  net.propose(2, 'b');
  assert.deepEqual(appliedStrings(net.peer(1)), ['a', 'b']);
});

test('leadership transfer catches a lagging transferee up and blocks proposals meanwhile', () => {
  const net = new Net([1, 2, 3]);
  net.elect(1);
  net.isolate(3);
  net.propose(1, 'a');
  net.node(1).transferLeader(3);
  net.stabilize();
  assert.equal(net.node(1).status().leadTransferee, 3);
  assert.throws(() => net.node(1).propose(bytes('b')), (e: unknown) => e instanceof ProposalDroppedError && e.reason === 'transferring');
  net.heal();
  net.tick(1, [1]);
  assert.equal(net.node(3).status().role, 'leader');
  assert.deepEqual(appliedStrings(net.peer(3)), ['a']);
});

test('leadership transfer is aborted after an election timeout', () => {
  const net = new Net([1, 2, 3]);
  net.elect(1);
  net.isolate(3);
  net.node(1).transferLeader(3);
  net.stabilize();
  assert.equal(net.node(1).status().leadTransferee, 3);
  net.tick(10, [1]);
  assert.equal(net.node(1).status().leadTransferee, 0);
  assert.equal(net.node(1).status().role, 'leader');
  net.propose(1, 'ok');
  assert.deepEqual(appliedStrings(net.peer(2)), ['ok']);
});

test('a follower forwards transferLeader to the leader', () => {
  const net = new Net([1, 2, 3]);
  net.elect(1);
  net.node(3).transferLeader(3);
  net.stabilize();
  assert.equal(net.node(3).status().role, 'leader');
});

test('shrinking two voters to one by removing the leader does not wedge when the commit-only append is lost', () => {
  const net = new Net([1, 2], { maxSizePerMsg: 0 });
  net.elect(1);
  net.propose(1, 'a');
  const ccIndex = net.node(1).status().lastIndex + 1;
  // Node 2 gets the conf change but neither the commit-only append nor the entry after it, so
  // node 1's log ends up longer than node 2's: without the commit index node 2 still needs
  // node 1's vote, which node 1 must refuse.
  net.filter = (m) =>
    !(m.type === 'app' && m.to === 2 && ((m.entries.length === 0 && m.commit >= ccIndex) || m.entries.some((e) => e.index > ccIndex)));
  net.node(1).proposeConfChange({ changes: [{ type: 'removeNode', nodeId: 1 }], transition: 'auto' });
  net.node(1).propose(bytes('x'));
  net.stabilize();
  assert.equal(net.node(1).status().role, 'follower');
  net.filter = undefined;
  net.tick(30);
  assert.equal(net.node(2).status().role, 'leader');
  assert.deepEqual(net.node(2).status().config.voters, [2]);
});

test('an uninitialized new voter at a higher term deposes the stale leader and then catches up (no checkQuorum, no preVote)', () => {
  // Sim seed 50993: a just-added, still-empty voter granted a vote to a candidate at a higher term,
  // and the candidate then retired. The new voter can't campaign (it is not in its own empty
  // config), so unless it answers the leader's lower-term messages nobody ever tells the leader
  // about the higher term, and the new voter never gets the log.
  const net = new Net([1, 2, 3]);
  net.elect(1);
  net.propose(1, 'a');
  net.add(4, new MemoryStorage());
  // 4 joins the config while cut off, so it stays empty.
  net.isolate(4);
  net.node(1).proposeConfChange(add(4));
  net.stabilize();
  assert.deepEqual(net.node(3).status().config.voters, [1, 2, 3, 4]);
  // 3 campaigns at term 2, cut off from 1 and 2; only 4 hears it and grants its vote.
  net.heal();
  net.cutLink(3, 1);
  net.cutLink(3, 2);
  net.cutLink(4, 1);
  net.cutLink(4, 2);
  net.elect(3);
  assert.equal(net.node(4).status().term, 2, "the empty node adopted the candidate's term");
  assert.equal(net.node(1).status().term, 1);
  // 3 goes away for good; 4 now hears the leader of term 1.
  net.heal();
  net.isolate(3);
  net.tick(60, [1, 2, 4]);
  const leader = net.leaderIds().filter((id) => id !== 3);
  assert.equal(leader.length, 1, 'one leader among 1, 2, 4');
  assert.ok(net.node(leader[0]!).status().term > 2, 'the cluster re-elected above the stray term');
  net.propose(leader[0]!, 'b');
  assert.equal(net.node(4).status().term, net.node(leader[0]!).status().term, 'the new voter follows the leader');
  assert.equal(net.node(4).status().commit, net.node(leader[0]!).status().commit, 'and has caught up');
});
