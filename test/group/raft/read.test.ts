import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Net, bytes } from './net.js';
import { ProposalDroppedError } from '../../../src/group/raft/index.js';

const text = (b: Uint8Array): string => new TextDecoder().decode(b);

test('ReadIndex (safe) on the leader is answered after a heartbeat round to a quorum', () => {
  const net = new Net([1, 2, 3]);
  net.elect(1);
  net.propose(1, 'a');
  net.node(1).readIndex(bytes('r1'));
  const msgs = net.drain(1);
  assert.deepEqual(msgs.map((m) => m.type), ['heartbeat', 'heartbeat']);
  assert.equal(net.peer(1).readStates.length, 0, 'not before the quorum acked');
  for (const m of msgs) net.deliver(m);
  net.stabilize();
  assert.deepEqual(net.peer(1).readStates.map((r) => [r.index, text(r.requestCtx)]), [[2, 'r1']]);
});

test('ReadIndex (safe) waits while the leader cannot reach a quorum', () => {
  const net = new Net([1, 2, 3]);
  net.elect(1);
  net.isolate(1);
  net.node(1).readIndex(bytes('r1'));
  net.stabilize();
  net.tick(3, [1]);
  assert.equal(net.peer(1).readStates.length, 0);
  net.heal();
  net.tick(1, [1]); // the next heartbeat carries the pending context
  assert.deepEqual(net.peer(1).readStates.map((r) => text(r.requestCtx)), ['r1']);
});

test('ReadIndex on a new leader waits until it has committed an entry of its term', () => {
  const net = new Net([1, 2, 3]);
  net.elect(1);
  net.propose(1, 'a');
  // Node 2 becomes leader but the acks of its no-op are held back.
  net.hold = (m) => m.type === 'appResp' && m.to === 2;
  net.node(2).campaign();
  net.stabilize();
  assert.equal(net.node(2).status().role, 'leader');
  assert.equal(net.node(2).status().commit, 2, 'no-op of term 2 not committed yet');
  net.node(2).readIndex(bytes('r'));
  net.stabilize();
  assert.equal(net.peer(2).readStates.length, 0);
  net.hold = undefined;
  for (const m of net.held) net.deliver(m);
  net.held = [];
  net.stabilize();
  assert.deepEqual(net.peer(2).readStates.map((r) => [r.index, text(r.requestCtx)]), [[3, 'r']]);
});

test('a follower forwards ReadIndex to the leader and gets the read index back', () => {
  const net = new Net([1, 2, 3]);
  net.elect(1);
  net.propose(1, 'a');
  net.node(3).readIndex(bytes('f'));
  net.stabilize();
  assert.deepEqual(net.peer(3).readStates.map((r) => [r.index, text(r.requestCtx)]), [[2, 'f']]);
  assert.equal(net.peer(1).readStates.length, 0);
});

test('ReadIndex without a leader is dropped with a reason', () => {
  const net = new Net([1, 2, 3]);
  assert.throws(() => net.node(2).readIndex(bytes('x')), (e: unknown) => e instanceof ProposalDroppedError && e.reason === 'noLeader');
});

test('lease-based reads are answered without a heartbeat round', () => {
  const net = new Net([1, 2, 3], { checkQuorum: true, readOnlyOption: 'leaseBased' });
  net.elect(1);
  net.propose(1, 'a');
  net.isolate(1); // no message needs to be delivered
  net.node(1).readIndex(bytes('l'));
  const rd = net.node(1).ready();
  assert.deepEqual(rd.readStates.map((r) => [r.index, text(r.requestCtx)]), [[2, 'l']]);
  assert.equal(rd.messages.length, 0);
  net.node(1).advance(rd);
});

test('leaseBased without checkQuorum is a config error', async () => {
  const { RawNode, MemoryStorage, RaftConfigError } = await import('../../../src/group/raft/index.js');
  assert.throws(
    () => new RawNode({ id: 1, electionTick: 10, heartbeatTick: 1, random: { intn: () => 0 }, readOnlyOption: 'leaseBased' }, new MemoryStorage()),
    RaftConfigError,
  );
});

test('several reads confirmed by one later heartbeat are all answered, in order', () => {
  const net = new Net([1, 2, 3]);
  net.elect(1);
  net.isolate(1);
  for (const c of ['a', 'b', 'c']) net.node(1).readIndex(bytes(c));
  net.stabilize();
  net.heal();
  net.tick(1, [1]);
  assert.deepEqual(net.peer(1).readStates.map((r) => text(r.requestCtx)), ['a', 'b', 'c']);
});

test('single-voter leader answers ReadIndex immediately', () => {
  const net = new Net([1]);
  net.elect(1);
  net.node(1).readIndex(bytes('s'));
  net.stabilize();
  assert.deepEqual(net.peer(1).readStates.map((r) => r.index), [1]);
});

test('lease-based reads fall back to a quorum round during a leadership transfer', () => {
  const net = new Net([1, 2, 3], { checkQuorum: true, readOnlyOption: 'leaseBased' });
  net.elect(1);
  net.isolate(3);
  net.node(1).transferLeader(3); // 3 is unreachable, so the transfer stays pending
  net.stabilize();
  assert.equal(net.node(1).status().leadTransferee, 3);
  net.node(1).readIndex(bytes('t'));
  const rd = net.node(1).ready();
  assert.equal(rd.readStates.length, 0, 'no immediate lease answer');
  assert.deepEqual(rd.messages.map((m) => m.type).sort(), ['heartbeat', 'heartbeat']);
  net.node(1).advance(rd);
  for (const m of rd.messages) net.deliver(m);
  net.stabilize();
  assert.deepEqual(net.peer(1).readStates.map((r) => text(r.requestCtx)), ['t']);
});
