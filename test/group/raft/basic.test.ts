import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Net, appliedStrings, bytes } from './net.js';
import { ProposalDroppedError, RawNode, MemoryStorage, StepLocalMessageError } from '../../../src/group/raft/index.js';
import { SeqRandom } from './net.js';

test('single node elects itself and commits proposals', () => {
  const net = new Net([1]);
  net.elect(1);
  const st = net.node(1).status();
  assert.equal(st.role, 'leader');
  assert.equal(st.term, 1);
  net.propose(1, 'a');
  net.propose(1, 'b');
  assert.deepEqual(appliedStrings(net.peer(1)), ['a', 'b']);
  assert.equal(net.node(1).status().commit, 3); // no-op + 2
  assert.equal(net.peer(1).storage.getHardState().commit, 3);
});

test('single node campaigns on its own after the election timeout', () => {
  const net = new Net([1]);
  net.tick(20);
  assert.equal(net.node(1).status().role, 'leader');
});

test('three nodes elect a leader and replicate', () => {
  const net = new Net([1, 2, 3]);
  net.elect(1);
  assert.deepEqual(net.leaderIds(), [1]);
  for (const id of [2, 3]) {
    assert.equal(net.node(id).status().lead, 1);
    assert.equal(net.node(id).status().term, 1);
  }
  net.propose(1, 'x');
  net.propose(2, 'y'); // forwarded to the leader
  for (const id of [1, 2, 3]) assert.deepEqual(appliedStrings(net.peer(id)), ['x', 'y']);
  const pr = net.node(1).status().progress!;
  assert.equal(pr.get(2)!.match, 3);
  assert.equal(pr.get(2)!.state, 'replicate');
});

test('hard state is persisted and only emitted when it changes', () => {
  const net = new Net([1, 2, 3]);
  net.elect(1);
  net.propose(1, 'x');
  const n = net.node(2);
  assert.equal(n.hasReady(), false);
  n.tick();
  if (n.hasReady()) {
    const rd = n.ready();
    assert.equal(rd.hardState, undefined);
    n.advance(rd);
  }
  assert.deepEqual(net.peer(2).storage.getHardState(), { term: 1, vote: 1, commit: 2 });
});

test('campaign emits term and vote in the same Ready as the vote requests', () => {
  const net = new Net([1, 2, 3]);
  const n = net.node(1);
  n.campaign();
  const rd = n.ready();
  assert.deepEqual(rd.hardState, { term: 1, vote: 1, commit: 0 });
  assert.equal(rd.mustSync, true);
  assert.deepEqual(rd.messages.map((m) => [m.type, m.to, m.term]), [['vote', 2, 1], ['vote', 3, 1]]);
  n.advance(rd);
});

test('propose without a leader throws ProposalDroppedError(noLeader)', () => {
  const net = new Net([1, 2, 3]);
  assert.throws(() => net.node(1).propose(bytes('x')), (e: unknown) => e instanceof ProposalDroppedError && e.reason === 'noLeader');
});

test('followers drop proposals with forwardingDisabled when configured', () => {
  const net = new Net([1, 2, 3], { disableProposalForwarding: true });
  net.elect(1);
  assert.throws(
    () => net.node(2).propose(bytes('x')),
    (e: unknown) => e instanceof ProposalDroppedError && e.reason === 'forwardingDisabled' && e.code === 'PROPOSAL_DROPPED',
  );
});

test('step rejects local message types', () => {
  const n = new RawNode({ id: 1, electionTick: 10, heartbeatTick: 1, random: new SeqRandom() }, MemoryStorage.withVoters([1]));
  for (const type of ['hup', 'beat', 'unreachable', 'snapStatus', 'checkQuorum'] as const) {
    assert.throws(
      () => n.step({ type, to: 1, from: 2, term: 0, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 }),
      StepLocalMessageError,
    );
  }
});

test('uncommitted size cap drops proposals with a reason and recovers after commit', () => {
  const net = new Net([1, 2, 3], { maxUncommittedEntriesSize: 1000 });
  net.elect(1);
  net.isolate(1);
  const big = new Uint8Array(400);
  net.node(1).propose(big);
  net.node(1).propose(big);
  assert.throws(
    () => net.node(1).propose(big),
    (e: unknown) => e instanceof ProposalDroppedError && e.reason === 'uncommittedSizeExceeded',
  );
  net.stabilize();
  net.heal();
  net.tick(2);
  assert.equal(net.peer(2).applied.length, 2);
  net.node(1).propose(big); // room again after commit
  net.stabilize();
  assert.equal(net.peer(3).applied.length, 3);
});

test('maxSizePerMsg batches entries and maxInflightMsgs bounds the window', () => {
  const net = new Net([1, 2, 3], { maxSizePerMsg: 256, maxInflightMsgs: 2 });
  net.elect(1);
  net.cutLink(1, 2);
  for (let i = 0; i < 20; i++) net.node(1).propose(new Uint8Array(100));
  const msgs = net.drain(1).filter((m) => m.type === 'app' && m.to === 2);
  // Follower 2 is in replicate state: at most 2 appends in flight, each <= 256 bytes (+1 entry).
  assert.equal(msgs.length, 2);
  for (const m of msgs) assert.ok(m.entries.length <= 2);
  net.heal();
  net.tick(3);
  for (const id of [1, 2, 3]) assert.equal(net.peer(id).applied.length, 20);
});

test('duplicate and reordered appends are harmless and commit never regresses', () => {
  const net = new Net([1, 2, 3]);
  net.elect(1);
  const saved: import('../../../src/group/raft/index.js').Message[] = [];
  net.hold = (m) => m.type === 'app' && m.to === 3;
  net.propose(1, 'a');
  net.propose(1, 'b');
  net.hold = undefined;
  assert.ok(net.held.length >= 2);
  saved.push(...net.held);
  net.held = [];
  // Deliver out of order, twice.
  for (const m of [...saved].reverse()) net.deliver(m);
  for (const m of saved) net.deliver(m);
  net.stabilize();
  net.tick(2);
  assert.deepEqual(appliedStrings(net.peer(3)), ['a', 'b']);
  const commit = net.node(3).status().commit;
  for (const m of saved) net.deliver(m); // stale appends again
  net.stabilize();
  assert.equal(net.node(3).status().commit, commit);
});
