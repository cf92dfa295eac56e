import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Net, ZERO_RANDOM, bytes } from './net.js';
import { ProposalDroppedError, RawNode, MemoryStorage, RaftConfigError } from '../../../src/group/raft/index.js';

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
  net.tick(1, [1]); // one heartbeat round acked by a quorum: the lease starts at its send
  net.isolate(1); // no message needs to be delivered
  net.node(1).readIndex(bytes('l'));
  const rd = net.node(1).ready();
  assert.deepEqual(rd.readStates.map((r) => [r.index, text(r.requestCtx)]), [[2, 'l']]);
  assert.equal(rd.earlyMessages.length + rd.messages.length, 0);
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
  assert.deepEqual(rd.earlyMessages.map((m) => m.type).sort(), ['heartbeat', 'heartbeat']);
  net.node(1).advance(rd);
  for (const m of rd.earlyMessages) net.deliver(m);
  net.stabilize();
  assert.deepEqual(net.peer(1).readStates.map((r) => text(r.requestCtx)), ['t']);
});

test('a healthy leader keeps answering lease reads without a round trip', () => {
  const net = new Net([1, 2, 3], { checkQuorum: true, readOnlyOption: 'leaseBased' });
  net.elect(1);
  net.propose(1, 'a');
  for (let i = 0; i < 35; i++) {
    net.tick(1); // heartbeats renew the lease every tick
    net.node(1).readIndex(bytes(`h${i}`));
    const rd = net.node(1).ready();
    assert.deepEqual(rd.readStates.map((r) => text(r.requestCtx)), [`h${i}`], `tick ${i}: answered at once`);
    assert.equal(rd.earlyMessages.length + rd.messages.length, 0, `tick ${i}: no heartbeat round`);
    net.node(1).advance(rd);
  }
  assert.deepEqual(net.leaderIds(), [1]);
});

test('a lease-based read before any heartbeat round is confirmed by a quorum round instead', () => {
  const net = new Net([1, 2, 3], { checkQuorum: true, readOnlyOption: 'leaseBased' });
  net.elect(1);
  net.propose(1, 'a'); // appends were acked, heartbeats not: no lease yet
  net.node(1).readIndex(bytes('n'));
  const rd = net.node(1).ready();
  assert.equal(rd.readStates.length, 0);
  assert.deepEqual(rd.earlyMessages.map((m) => m.type), ['heartbeat', 'heartbeat']);
  net.node(1).advance(rd);
  for (const m of rd.earlyMessages) net.deliver(m);
  net.stabilize();
  assert.deepEqual(net.peer(1).readStates.map((r) => text(r.requestCtx)), ['n']);
});

for (const preVote of [false, true]) {
  test(`an isolated leader stops answering lease reads before a new leader can be elected (preVote=${preVote})`, () => {
    const electionTick = 10;
    const net = new Net([1, 2, 3], { checkQuorum: true, preVote, readOnlyOption: 'leaseBased', electionTick });
    // Node 2 times out after exactly electionTick ticks: the earliest any follower may campaign.
    net.add(2, net.peer(2).storage, { checkQuorum: true, preVote, readOnlyOption: 'leaseBased', electionTick, random: ZERO_RANDOM });
    net.elect(1);
    net.propose(1, 'a');
    net.tick(1); // the last heartbeat round the followers hear
    net.isolate(1);
    let lastLeaseRead = -1;
    let firstFallback = -1;
    let newLeaderAt = -1;
    for (let k = 1; k <= 3 * electionTick && newLeaderAt < 0; k++) {
      net.tick(1); // every node ticks in lockstep (no drift); 2 and 3 still talk
      if (net.leaderIds().some((id) => id !== 1)) newLeaderAt = k;
      if (net.node(1).status().role !== 'leader') continue;
      const before = net.peer(1).readStates.length;
      net.node(1).readIndex(bytes(`k${k}`));
      net.stabilize();
      if (net.peer(1).readStates.length > before) lastLeaseRead = k;
      else if (firstFallback < 0) firstFallback = k;
    }
    assert.ok(newLeaderAt > 0, 'the majority side elects a new leader');
    assert.ok(lastLeaseRead >= 0, 'the lease served reads right after isolation');
    assert.ok(firstFallback > lastLeaseRead, 'then reads fall back to the safe path');
    assert.ok(lastLeaseRead < newLeaderAt, `lease read at tick ${lastLeaseRead} but a new leader at tick ${newLeaderAt}`);
    // The lease ends leaseDriftMarginTicks (default 2 here) before the followers' vote refusal does.
    assert.equal(lastLeaseRead, electionTick - 2 - 1);
    // The fallen-back reads never complete without a quorum (the old leader stepped down or waits).
    assert.equal(net.peer(1).readStates.length, lastLeaseRead);
  });
}

test('after sending timeoutNow the leader serves no lease reads for the rest of its term', () => {
  const net = new Net([1, 2, 3], { checkQuorum: true, readOnlyOption: 'leaseBased' });
  net.elect(1);
  net.propose(1, 'a');
  net.tick(1);
  net.filter = (m) => m.type !== 'timeoutNow'; // lost (or, worse, only delayed)
  net.node(1).transferLeader(2);
  net.stabilize();
  net.tick(10); // the transfer is abandoned after an election timeout
  assert.equal(net.node(1).status().leadTransferee, 0);
  assert.deepEqual(net.leaderIds(), [1]);
  net.node(1).readIndex(bytes('x'));
  const rd = net.node(1).ready();
  assert.equal(rd.readStates.length, 0, 'a delayed timeoutNow could still elect node 2: no lease');
  assert.deepEqual(rd.earlyMessages.map((m) => m.type), ['heartbeat', 'heartbeat']);
  net.node(1).advance(rd);
  for (const m of rd.earlyMessages) net.deliver(m);
  net.stabilize();
  assert.deepEqual(net.peer(1).readStates.map((r) => text(r.requestCtx)), ['x']);
});

test('leaseDriftMarginTicks is validated', () => {
  const base = { id: 1, electionTick: 10, heartbeatTick: 1, random: ZERO_RANDOM, checkQuorum: true, readOnlyOption: 'leaseBased' as const };
  for (const bad of [0, -1, 1.5, 10, 11]) {
    assert.throws(() => new RawNode({ ...base, leaseDriftMarginTicks: bad }, new MemoryStorage()), RaftConfigError, `margin ${bad}`);
  }
  for (const ok of [1, 9]) assert.doesNotThrow(() => new RawNode({ ...base, leaseDriftMarginTicks: ok }, new MemoryStorage()));
});

test('a restarted follower keeps refusing votes for an election timeout, so it cannot break a lease', () => {
  const opts = { checkQuorum: true, readOnlyOption: 'leaseBased' as const, electionTick: 10 };
  const net = new Net([1, 2, 3], opts);
  net.elect(1);
  net.propose(1, 'a');
  net.tick(1); // 2 and 3 acknowledge a heartbeat: the lease starts
  net.isolate(1);
  net.restart(2); // 2 forgets that it heard from 1 (its term is durable)
  net.node(3).campaign(); // a disruptive candidate asks 2 at once
  net.stabilize();
  assert.notEqual(net.node(3).status().role, 'leader', 'the restarted follower must not grant its vote yet');
  net.node(1).readIndex(bytes('r'));
  net.stabilize();
  assert.deepEqual(net.peer(1).readStates.map((r) => text(r.requestCtx)), ['r'], 'the lease still holds');
  // After an election timeout of 2's own ticks, the lease (and the leader's) is over: 3 can win.
  net.tick(10, [2]);
  net.node(3).campaign();
  net.stabilize();
  assert.equal(net.node(3).status().role, 'leader');
});

test('a fresh node (term 0) has acknowledged nothing and votes at once', () => {
  const net = new Net([1, 2, 3], { checkQuorum: true, readOnlyOption: 'leaseBased' });
  net.elect(1);
  assert.deepEqual(net.leaderIds(), [1]);
});

test('a follower that learns a higher term from a stray message still refuses votes during the lease', () => {
  const net = new Net([1, 2, 3], { checkQuorum: true, readOnlyOption: 'leaseBased', electionTick: 10 });
  net.elect(1);
  net.propose(1, 'a');
  net.tick(1); // 2 and 3 acknowledge a heartbeat: the lease starts
  net.isolate(1);
  // Delayed rejections of old vote requests carry a higher term: both forget leader 1.
  const stray = (from: number, to: number) => ({
    type: 'voteResp' as const, from, to, term: 5, logTerm: 0, index: 0, entries: [], commit: 0, reject: true, rejectHint: 0,
  });
  net.deliver(stray(2, 3));
  net.deliver(stray(3, 2));
  net.stabilize();
  assert.equal(net.node(2).status().lead, 0);
  assert.equal(net.node(2).status().term, 5);
  net.node(3).campaign(); // term 6: node 2 must not grant while 1's lease may still hold
  net.stabilize();
  assert.notEqual(net.node(3).status().role, 'leader');
  net.node(1).readIndex(bytes('r'));
  net.stabilize();
  assert.deepEqual(net.peer(1).readStates.map((r) => text(r.requestCtx)), ['r'], 'the lease still holds');
  net.tick(10, [2, 3]);
  net.node(3).campaign();
  net.stabilize();
  assert.equal(net.node(3).status().role, 'leader');
});

test('leaseReadIndex gives the commit index at once only while the lease is valid, and counts how reads were confirmed', () => {
  const net = new Net([1, 2, 3], { checkQuorum: true, readOnlyOption: 'leaseBased' });
  net.elect(1);
  net.propose(1, 'a');
  assert.equal(net.node(2).leaseReadIndex(), undefined, 'a follower has no lease');
  net.tick(1, [1]);
  assert.equal(net.node(1).leaseReadIndex(), 2);
  assert.deepEqual({ ...net.node(1).readCounters }, { lease: 1, heartbeatQuorum: 0, singleVoter: 0 });
  net.isolate(1);
  // electionTick 10, default margin 2: the lease confirmed at the last acked stamp runs out.
  let ticks = 0;
  while (net.node(1).leaseReadIndex() !== undefined && ticks < 20) {
    net.tick(1, [1]);
    ticks++;
  }
  assert.equal(net.node(1).leaseReadIndex(), undefined);
  assert.ok(ticks <= 8, `lease outlived its bound (${ticks} ticks)`);
  net.heal();
  net.node(1).readIndex(bytes('q')); // no lease: a quorum round
  net.stabilize();
  assert.deepEqual(net.peer(1).readStates.map((r) => text(r.requestCtx)), ['q']);
  assert.equal(net.node(1).readCounters.heartbeatQuorum, 1);
});

test('forfeitLease ends the lease; acks of heartbeats stamped before it never revive it', () => {
  const net = new Net([1, 2, 3], { checkQuorum: true, readOnlyOption: 'leaseBased' });
  net.elect(1);
  net.propose(1, 'a');
  net.tick(1, [1]);
  assert.equal(net.node(1).leaseReadIndex(), 2);
  // Heartbeats of the current clock are in flight when the lease is forfeited.
  net.node(1).tick(); // its heartbeats are not delivered yet
  const inFlight = net.drain(1).filter((m) => m.type === 'heartbeat');
  assert.equal(inFlight.length, 2);
  net.node(1).forfeitLease();
  assert.equal(net.node(1).leaseReadIndex(), undefined);
  for (const m of inFlight) net.deliver(m);
  net.stabilize();
  assert.equal(net.node(1).leaseReadIndex(), undefined, 'acks of stamps taken before the forfeit do not count');
  net.tick(1, [1]); // heartbeats stamped after the forfeit
  assert.equal(net.node(1).leaseReadIndex(), 2);
});

test('leaseReadIndex on a single voter answers at once, without leaseBased', () => {
  const net = new Net([1]);
  const n = net.node(1);
  assert.equal(n.leaseReadIndex(), undefined, 'not leader yet');
  net.elect(1);
  assert.equal(n.leaseReadIndex(), 1);
  assert.equal(n.readCounters.singleVoter, 1);
});

test('a replica created with freshReplica votes at once although its raft state starts at a nonzero term', () => {
  // The host bootstraps a new group's replicas at an initial term (GROUP_INIT_INDEX): without
  // the flag they would refuse votes for an election timeout, as after a restart.
  const voteFrom3 = {
    type: 'vote' as const, from: 3, to: 2, term: 6, logTerm: 5, index: 5,
    entries: [], commit: 0, reject: false, rejectHint: 0,
  };
  const answer = (freshReplica: boolean): string => {
    const storage = MemoryStorage.withVoters([1, 2, 3]);
    storage.setHardState({ term: 5, vote: 0, commit: 0 });
    const node = new RawNode(
      { id: 2, electionTick: 10, heartbeatTick: 1, random: ZERO_RANDOM, checkQuorum: true, readOnlyOption: 'leaseBased', freshReplica },
      storage,
    );
    node.step(voteFrom3);
    const rd = node.ready();
    const resp = [...rd.messages, ...rd.earlyMessages].find((m) => m.type === 'voteResp');
    return resp === undefined ? 'none' : resp.reject ? 'reject' : 'grant';
  };
  assert.equal(answer(true), 'grant');
  assert.notEqual(answer(false), 'grant', 'a reopened replica keeps its refusal window');
});
