import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Net, appliedStrings, bytes, ZERO_RANDOM } from './net.js';
import { MemoryStorage, RawNode, type Entry, type Message } from '../../../src/group/raft/index.js';

function ents(terms: number[]): Entry[] {
  return terms.map((term, i) => ({ term, index: i + 1, type: 'normal' as const, data: bytes(`e${i + 1}`) }));
}

function logTerms(s: MemoryStorage): number[] {
  const out: number[] = [];
  for (let i = s.firstIndex(); i <= s.lastIndex(); i++) out.push(s.term(i));
  return out;
}

test('election timeout is randomized in [electionTick, 2*electionTick) from the injected source', () => {
  const seen = new Set<number>();
  for (let r = 0; r < 10; r++) {
    const storage = MemoryStorage.withVoters([1, 2, 3]);
    const n = new RawNode({ id: 1, electionTick: 10, heartbeatTick: 1, random: { intn: () => r } }, storage);
    let ticks = 0;
    while (n.status().role === 'follower') {
      n.tick();
      ticks++;
      assert.ok(ticks < 100);
    }
    seen.add(ticks);
    assert.equal(ticks, 10 + r);
  }
  assert.equal(seen.size, 10);
});

test('a candidate that loses steps back to follower; the node with the newer log wins', () => {
  const net = new Net([1, 2, 3]);
  net.elect(1);
  net.isolate(3);
  net.propose(1, 'a'); // 3 misses it
  net.heal();
  net.isolate(1);
  net.node(3).campaign(); // 2 must refuse: 3's log is behind
  net.stabilize();
  assert.notEqual(net.node(3).status().role, 'leader');
  net.node(2).campaign();
  net.stabilize();
  assert.equal(net.node(2).status().role, 'leader');
  assert.deepEqual(appliedStrings(net.peer(3)), ['a']);
});

test('Figure 7: a new leader repairs followers with divergent logs', () => {
  const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
  const followers: Record<string, number[]> = {
    a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
    b: [1, 1, 1, 4],
    c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    e: [1, 1, 1, 4, 4, 4, 4],
    f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
  };
  for (const [name, flog] of Object.entries(followers)) {
    const s1 = MemoryStorage.withVoters([1, 2, 3]);
    s1.append(ents(leaderLog));
    s1.setHardState({ term: 8, vote: 0, commit: leaderLog.length });
    const s2 = MemoryStorage.withVoters([1, 2, 3]);
    s2.append(ents(flog));
    s2.setHardState({ term: 7, vote: 0, commit: 0 });
    const net = new Net([]);
    net.add(1, s1, { random: ZERO_RANDOM });
    net.add(2, s2, { random: ZERO_RANDOM });
    net.add(3, MemoryStorage.withVoters([1, 2, 3]));
    net.isolate(3);
    net.node(1).campaign();
    net.stabilize();
    // Node 3 (a black hole otherwise) grants its vote, so 1 wins even where 2's log is newer.
    net.node(1).step({ type: 'voteResp', from: 3, to: 1, term: 9, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 });
    net.stabilize();
    assert.equal(net.node(1).status().role, 'leader', name);
    net.propose(1, 'new');
    net.tick(2, [1]);
    assert.deepEqual(logTerms(s2), logTerms(s1), `follower ${name}`);
    assert.deepEqual(logTerms(s1), [...leaderLog, 9, 9], name);
    assert.equal(net.node(2).status().commit, 12, name);
  }
});

test('Figure 8: an entry of a previous term is committed only once an entry of the current term is', () => {
  const net = new Net([1, 2, 3, 4, 5], { maxSizePerMsg: 0 });
  net.elect(1); // term 1; noop at index 1 committed everywhere
  // (a) 1 replicates index 2 (term 1) to 2 only.
  for (const id of [3, 4, 5]) net.cutLink(1, id);
  net.propose(1, 'a');
  assert.equal(net.node(1).status().commit, 1);
  // (b) 1 is gone; 5 wins term 2 with votes of 3 and 4 and appends at index 2 only locally.
  net.heal();
  net.isolate(1);
  net.cutLink(5, 2);
  net.filter = (m) => !(m.from === 5 && m.type === 'app');
  net.node(5).campaign();
  net.stabilize();
  assert.equal(net.node(5).status().role, 'leader');
  assert.equal(net.node(5).status().term, 2);
  // (c) 5 is gone; 1 comes back and wins term 3, and replicates its index 2 (term 1) to a
  // majority, but the current-term entry (index 3) is held back.
  net.heal();
  net.filter = undefined;
  net.isolate(5);
  net.restart(1);
  net.transform = (m) => (m.type === 'app' ? { ...m, entries: m.entries.filter((e) => e.term < 3) } : m);
  while (net.node(1).status().role !== 'leader') {
    net.node(1).campaign();
    net.stabilize();
  }
  assert.equal(net.node(1).status().term, 3);
  net.tick(3, [1]);
  const pr = net.node(1).status().progress!;
  for (const id of [2, 3, 4]) assert.equal(pr.get(id)!.match, 2, `match of ${id}`);
  assert.equal(net.peer(3).storage.term(2), 1, 'index 2 (term 1) is on a majority');
  assert.equal(net.node(1).status().commit, 1, 'but it is not committed by counting replicas');
  // (e) once the term-3 entry reaches a majority, both commit.
  net.transform = undefined;
  net.tick(3, [1]);
  assert.equal(net.node(1).status().commit, 3);
  assert.deepEqual(appliedStrings(net.peer(3)), ['a']);
});

test('pre-vote: a rejoining partitioned node does not inflate terms or depose the leader', () => {
  const net = new Net([1, 2, 3], { preVote: true });
  net.elect(1);
  net.isolate(3);
  net.tick(50, [3]);
  assert.equal(net.node(3).status().term, 1, 'pre-candidate keeps its term');
  assert.equal(net.node(3).status().role, 'preCandidate');
  net.heal();
  net.tick(3);
  for (const id of [1, 2, 3]) {
    assert.equal(net.node(id).status().term, 1);
    assert.equal(net.node(id).status().lead, 1);
  }
});

test('without pre-vote the same rejoin inflates the term (contrast)', () => {
  const net = new Net([1, 2, 3]);
  net.elect(1);
  net.isolate(3);
  net.tick(50, [3]);
  assert.ok(net.node(3).status().term > 1);
});

test('pre-vote: an election after leader loss still succeeds', () => {
  const net = new Net([1, 2, 3], { preVote: true, checkQuorum: true });
  net.elect(1);
  net.isolate(1);
  net.tick(40, [2, 3]);
  const leaders = [2, 3].filter((id) => net.node(id).status().role === 'leader');
  assert.equal(leaders.length, 1);
  assert.equal(net.node(leaders[0]!).status().term, 2);
});

test('check-quorum: an isolated leader steps down after an election timeout', () => {
  const net = new Net([1, 2, 3], { checkQuorum: true });
  net.elect(1);
  net.isolate(1);
  net.tick(25, [1]);
  assert.equal(net.node(1).status().role, 'follower');
  assert.equal(net.node(1).status().lead, 0);
});

test('check-quorum: a connected leader keeps leading', () => {
  const net = new Net([1, 2, 3], { checkQuorum: true });
  net.elect(1);
  net.tick(50, [1]);
  assert.equal(net.node(1).status().role, 'leader');
});

test('leader lease: followers ignore vote requests while they hear from a leader', () => {
  const net = new Net([1, 2, 3], { checkQuorum: true });
  net.elect(1);
  const vote: Message = { type: 'vote', from: 3, to: 2, term: 5, logTerm: 1, index: 1, entries: [], commit: 0, reject: false, rejectHint: 0 };
  net.node(2).step(vote);
  assert.equal(net.node(2).status().term, 1);
  assert.equal(net.drain(2).length, 0, 'no answer at all');
  // After an election timeout without the leader, the lease is over.
  net.isolate(1);
  net.tick(10, [2]);
  net.node(2).step(vote);
  assert.equal(net.node(2).status().term, 5);
});

test('stale-term messages are ignored and a stale leader learns the new term', () => {
  const net = new Net([1, 2, 3], { checkQuorum: true });
  net.elect(1);
  net.isolate(1);
  net.tick(30, [2, 3]);
  const newLeader = [2, 3].find((id) => net.node(id).status().role === 'leader')!;
  assert.ok(newLeader !== undefined);
  net.heal();
  net.node(1).propose(bytes('lost?')); // 1 may still think it leads (or already stepped down)
  net.stabilize();
  net.tick(3);
  assert.equal(net.node(1).status().role, 'follower');
  assert.equal(net.node(1).status().lead, newLeader);
});
