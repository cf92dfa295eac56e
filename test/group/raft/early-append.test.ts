/**
 * A leader's appends and heartbeats leave before its own write is durable
 * (Ready.earlyMessages, raft thesis §10.2.1); its own copy counts toward
 * the commit quorum only once advance() says it is durable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Net, bytes } from './net.js';
import type { Ready } from '../../../src/group/raft/index.js';

/** Persists the leader's Ready into its storage, as a host does before advance(). */
function persist(net: Net, id: number, rd: Ready): void {
  const p = net.peer(id);
  p.storage.append(rd.entries);
  if (rd.hardState !== undefined) p.storage.setHardState(rd.hardState);
}

test('a leader sends its appends early and counts its own copy only once it is durable', () => {
  const net = new Net([1, 2, 3]);
  net.elect(1);
  const leader = net.node(1);
  leader.propose(bytes('x'));
  const rd = leader.ready();
  const index = rd.entries[0]!.index;
  assert.equal(rd.mustSync, true);
  assert.deepEqual(rd.earlyMessages.map((m) => [m.type, m.to, m.entries.length]), [['app', 2, 1], ['app', 3, 1]]);
  assert.equal(rd.messages.length, 0);
  // Follower 2 persists and acknowledges while the leader's write is still in flight.
  net.deliver(rd.earlyMessages[0]!);
  for (const m of net.drain(2)) net.deliver(m);
  assert.equal(leader.status().progress!.get(2)!.match, index);
  assert.equal(leader.status().commit, index - 1, 'one durable follower copy and a leader copy in flight are no quorum');
  // The leader's write is durable: now it counts, and the commit goes out at once.
  persist(net, 1, rd);
  leader.advance(rd);
  assert.equal(leader.status().commit, index);
  const rd2 = leader.ready();
  assert.deepEqual(rd2.committedEntries.map((e) => e.index), [index]);
  assert.ok(rd2.earlyMessages.some((m) => m.type === 'app' && m.to === 2 && m.commit === index), 'commit broadcast to follower 2');
  assert.equal(rd2.mustSync, false, 'a commit-only hard state needs no fsync');
  persist(net, 1, rd2);
  leader.advance(rd2);
});

test('a quorum of followers commits an entry the leader has not written yet', () => {
  const net = new Net([1, 2, 3]);
  net.elect(1);
  const leader = net.node(1);
  leader.propose(bytes('x'));
  const rd = leader.ready();
  const index = rd.entries[0]!.index;
  for (const m of rd.earlyMessages) net.deliver(m);
  for (const id of [2, 3]) for (const m of net.drain(id)) net.deliver(m);
  assert.equal(leader.status().commit, index);
  // Applied only after the leader's own write (the next Ready hands it out).
  assert.equal(rd.committedEntries.length, 0);
  persist(net, 1, rd);
  leader.advance(rd);
  const rd2 = leader.ready();
  assert.deepEqual(rd2.committedEntries.map((e) => e.index), [index]);
  leader.advance(rd2);
});

test('nothing leaves early in a Ready that changes the term or vote', () => {
  // A single voter with a learner becomes leader in one step: its appends to the learner
  // carry the new term, which must be durable first.
  const net = new Net([1], {}, [2]);
  const leader = net.node(1);
  leader.campaign();
  leader.propose(bytes('x')); // broadcast with this Ready
  const rd = leader.ready();
  assert.equal(leader.status().role, 'leader');
  assert.notEqual(rd.hardState, undefined);
  assert.deepEqual(rd.earlyMessages, []);
  assert.ok(rd.messages.some((m) => m.type === 'app' && m.to === 2));
  persist(net, 1, rd);
  leader.advance(rd);
});

test('a leader with no peers commits and applies a proposal in the Ready that persists it', () => {
  const net = new Net([1]);
  net.elect(1);
  const leader = net.node(1);
  leader.propose(bytes('x'));
  const rd = leader.ready();
  assert.equal(rd.entries.length, 1);
  assert.deepEqual(rd.committedEntries.map((e) => e.index), [rd.entries[0]!.index]);
  persist(net, 1, rd);
  leader.advance(rd);
});

test('a leader only counts what is durable when a learner joins while its write is in flight', () => {
  const net = new Net([1]);
  net.elect(1);
  const leader = net.node(1);
  leader.proposeConfChange({ changes: [{ type: 'addLearner', nodeId: 2 }], transition: 'auto' });
  net.stabilize();
  assert.deepEqual(leader.status().config.learners, [2]);
  leader.propose(bytes('x'));
  const rd = leader.ready();
  const index = rd.entries[rd.entries.length - 1]!.index;
  assert.ok(leader.status().progress!.get(1)!.match < index, 'with a peer, the leader does not count its entry at append');
  persist(net, 1, rd);
  leader.advance(rd);
  assert.equal(leader.status().progress!.get(1)!.match, index);
  assert.equal(leader.status().commit, index);
});
