import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Net, appliedStrings, bytes } from './net.js';
import { MemoryStorage, StorageCompactedError, StorageUnavailableError, SnapshotOutOfDateError } from '../../../src/group/raft/index.js';

test('MemoryStorage: entries, term, compaction and errors', () => {
  const s = MemoryStorage.withVoters([1]);
  s.append([1, 2, 3, 4, 5].map((i) => ({ term: 1, index: i, type: 'normal' as const, data: new Uint8Array(10) })));
  assert.equal(s.firstIndex(), 1);
  assert.equal(s.lastIndex(), 5);
  assert.equal(s.entries(2, 5, Infinity).length, 3);
  assert.equal(s.entries(2, 5, 0).length, 1, 'at least one entry');
  assert.equal(s.entries(2, 5, 60).length, 2);
  s.append([{ term: 2, index: 4, type: 'normal', data: new Uint8Array(0) }]); // truncates 4,5
  assert.equal(s.lastIndex(), 4);
  assert.equal(s.term(4), 2);
  s.createSnapshot(3, undefined, bytes('state'));
  s.compact(3);
  assert.equal(s.firstIndex(), 4);
  assert.equal(s.term(3), 1);
  assert.throws(() => s.term(2), StorageCompactedError);
  assert.throws(() => s.entries(3, 4, Infinity), StorageCompactedError);
  assert.throws(() => s.term(9), StorageUnavailableError);
  assert.throws(() => s.createSnapshot(2, undefined, bytes('old')), SnapshotOutOfDateError);
  assert.deepEqual(s.snapshot().meta.confState.voters, [1]);
});

test('a follower behind the compaction point gets a snapshot and then the rest of the log', () => {
  const net = new Net([1, 2, 3]);
  net.elect(1);
  net.isolate(3);
  for (let i = 0; i < 10; i++) net.propose(1, `v${i}`);
  const leader = net.peer(1);
  const applied = leader.node.status().applied;
  assert.equal(applied, 11);
  leader.storage.createSnapshot(applied, leader.node.status().config, bytes('sm-state@11'));
  leader.storage.compact(applied);
  net.heal();
  net.tick(2, [1]);
  const snaps = net.log.filter((m) => m.type === 'snap');
  assert.equal(snaps.length, 1);
  assert.equal(snaps[0]!.to, 3);
  const s3 = net.peer(3).storage;
  assert.equal(s3.snapshot().meta.index, 11);
  assert.equal(new TextDecoder().decode(s3.snapshot().data), 'sm-state@11');
  assert.equal(net.node(3).status().applied, 11);
  net.propose(1, 'after');
  assert.deepEqual(appliedStrings(net.peer(3)), ['after']);
  assert.equal(net.node(1).status().progress!.get(3)!.state, 'replicate');
});

test('a failed snapshot send returns the follower to probing, and a retry succeeds', () => {
  const net = new Net([1, 2, 3]);
  net.elect(1);
  net.isolate(3);
  for (let i = 0; i < 5; i++) net.propose(1, `v${i}`);
  const leader = net.peer(1);
  leader.storage.createSnapshot(6, leader.node.status().config, bytes('s6'));
  leader.storage.compact(6);
  net.heal();
  net.filter = (m) => m.type !== 'snap';
  net.hold = (m) => m.type === 'snap';
  net.tick(1, [1]);
  net.hold = undefined;
  assert.equal(net.held.length, 1);
  assert.equal(net.node(1).status().progress!.get(3)!.state, 'snapshot');
  net.held = [];
  net.node(1).reportSnapshot(3, false);
  assert.equal(net.node(1).status().progress!.get(3)!.state, 'probe');
  net.filter = undefined;
  net.tick(3, [1]);
  assert.equal(net.peer(3).storage.snapshot().meta.index, 6);
  assert.equal(net.node(3).status().commit, net.node(1).status().commit);
});

test('a restarted node resumes from its persisted state', () => {
  const net = new Net([1, 2, 3]);
  net.elect(1);
  net.propose(1, 'a');
  net.restart(2);
  assert.equal(net.node(2).status().term, 1);
  assert.equal(net.node(2).status().commit, 2);
  net.stabilize();
  assert.deepEqual(appliedStrings(net.peer(2)), ['a'], 'committed entries are re-applied after restart');
  net.propose(1, 'b');
  assert.deepEqual(appliedStrings(net.peer(2)), ['a', 'b']);
});

test('a snapshot is refused while committed entries handed to the host are not applied yet', () => {
  const net = new Net([1, 2, 3]);
  // Node 3 gets the entries but not the commit index.
  net.transform = (m) => (m.to === 3 && (m.type === 'app' || m.type === 'heartbeat') ? { ...m, commit: 0 } : m);
  net.elect(1);
  net.propose(1, 'a');
  net.propose(1, 'b');
  net.transform = undefined;
  net.isolate(3);
  net.propose(1, 'c');
  const leader = net.peer(1);
  const snapIndex = leader.node.status().applied;
  leader.storage.createSnapshot(snapIndex, leader.node.status().config, bytes('s'));
  leader.storage.compact(snapIndex);
  const n3 = net.node(3);
  assert.equal(n3.status().commit, 0);
  // A heartbeat tells node 3 that 1..3 are committed: a Ready with committed entries is handed out...
  n3.step({ type: 'heartbeat', from: 1, to: 3, term: 1, logTerm: 0, index: 0, entries: [], commit: 3, reject: false, rejectHint: 0 });
  const rd = n3.ready();
  assert.equal(rd.committedEntries.length, 3);
  // ...and before it is applied, a newer snapshot arrives: it must be refused.
  n3.step({ type: 'snap', from: 1, to: 3, term: 1, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, snapshot: leader.storage.snapshot() });
  net.peer(3).storage.append(rd.entries);
  n3.advance(rd);
  const rd2 = n3.ready();
  assert.equal(rd2.snapshot, undefined);
  assert.deepEqual(rd2.messages.map((m) => [m.type, m.index]), [['appResp', 3]]);
  n3.advance(rd2);
  // Later the leader's retry succeeds.
  net.heal();
  net.tick(3, [1]);
  assert.equal(net.peer(3).storage.snapshot().meta.index, snapIndex);
  assert.equal(n3.status().commit, net.node(1).status().commit);
});

test('a node added after the latest snapshot installs it and learns its addition from the log', () => {
  const net = new Net([1, 2, 3]);
  net.elect(1);
  net.propose(1, 'a');
  const leader = net.peer(1);
  const idx = leader.node.status().applied;
  leader.storage.createSnapshot(idx, leader.node.status().config, bytes('s'));
  leader.storage.compact(idx);
  net.add(4, MemoryStorage.withVoters([1, 2, 3]));
  net.node(1).proposeConfChange({ changes: [{ type: 'addLearner', nodeId: 4 }], transition: 'auto' });
  net.stabilize();
  net.tick(3, [1]);
  assert.equal(net.peer(4).storage.snapshot().meta.index, idx);
  assert.deepEqual(net.node(4).status().config.learners, [4]);
  net.propose(1, 'b');
  assert.deepEqual(appliedStrings(net.peer(4)), ['b']);
});

test('restart with an applied index beyond the persisted commit (lost commit-only hard state) is accepted', async () => {
  const { RawNode } = await import('../../../src/group/raft/index.js');
  const net = new Net([1, 2, 3]);
  net.elect(1);
  net.propose(1, 'a');
  net.propose(1, 'b');
  const s2 = net.peer(2).storage;
  const hs = s2.getHardState();
  s2.setHardState({ ...hs, commit: 1 }); // the last commit-only hard state was not synced
  const n = new RawNode({ id: 2, electionTick: 10, heartbeatTick: 1, random: { intn: () => 0 }, applied: 3 }, s2);
  assert.equal(n.status().commit, 3);
  assert.equal(n.status().applied, 3);
  assert.equal(n.hasReady(), false, 'nothing is re-applied');
});
