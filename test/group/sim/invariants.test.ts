/**
 * The checker on its own: each invariant fires on a hand-made history that
 * breaks it (so a green simulator sweep means "held", not "never checked").
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SimDisk } from './disk.js';
import { InvariantChecker, InvariantViolation } from './invariants.js';
import type { ConfState, Entry } from './raft.js';

const conf = (voters: number[], extra: Partial<ConfState> = {}): ConfState => ({
  voters,
  learners: [],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
  ...extra,
});

const entry = (index: number, term: number, payload: number): Entry => ({ index, term, type: 'normal', data: new Uint8Array([payload]) });

function write(c: InvariantChecker, id: number, disk: SimDisk, entries: Entry[], commit = 0, term = 1): void {
  disk.stage({ entries, hardState: { term, vote: 0, commit } });
  c.onDurable(id, disk.flush(), disk);
}

function violates(name: string, fn: () => void): void {
  assert.throws(fn, (err: unknown) => err instanceof InvariantViolation && err.invariant === name);
}

test('electionSafety: two leaders in one term', () => {
  const c = new InvariantChecker();
  c.onLeader(1, 5, new Set([2]), conf([1, 2, 3]));
  violates('electionSafety', () => c.onLeader(2, 5, new Set([3]), conf([1, 2, 3])));
});

test('electionQuorum: grants from a learner do not count', () => {
  const c = new InvariantChecker();
  violates('electionQuorum', () => c.onLeader(1, 2, new Set([4]), conf([1, 2, 3], { learners: [4] })));
});

test('electionQuorum: a joint config needs a majority of both halves', () => {
  const c = new InvariantChecker();
  violates('electionQuorum', () => c.onLeader(1, 2, new Set([2]), conf([1, 2, 3], { votersOutgoing: [1, 4, 5] })));
  c.onLeader(1, 3, new Set([2, 4]), conf([1, 2, 3], { votersOutgoing: [1, 4, 5] }));
});

test('logMatching: same index and term with different prefixes', () => {
  const c = new InvariantChecker();
  write(c, 1, new SimDisk(), [entry(1, 1, 10), entry(2, 1, 20)]);
  violates('logMatching', () => write(c, 2, new SimDisk(), [entry(1, 1, 99), entry(2, 1, 20)]));
});

test('committedDurable: a durable log truncates a committed entry', () => {
  const c = new InvariantChecker();
  const d = new SimDisk();
  write(c, 1, d, [entry(1, 1, 1), entry(2, 1, 2), entry(3, 1, 3)], 3);
  violates('committedDurable', () => write(c, 1, d, [entry(2, 2, 9)], 3, 2));
});

test('committedDurable: a stale leader may append where others committed (no violation)', () => {
  const c = new InvariantChecker();
  write(c, 1, new SimDisk(), [entry(1, 1, 1), entry(2, 2, 2)], 2, 2);
  write(c, 2, new SimDisk(), [entry(1, 1, 1), entry(2, 1, 7)], 0, 1);
});

test('committedDurable: a leader of the commit term overwrites an entry above the node commit', () => {
  const c = new InvariantChecker();
  // 2@1 committed in term 3 (node 1 in term 3 durably commits it); node 2 holds it uncommitted.
  write(c, 1, new SimDisk(), [entry(1, 1, 1), entry(2, 1, 2)], 2, 3);
  const d = new SimDisk();
  write(c, 2, d, [entry(1, 1, 1), entry(2, 1, 2)], 1, 1);
  violates('committedDurable', () => write(c, 2, d, [entry(2, 3, 9)], 1, 3));
});

test('committedDurable: a leader older than the commit term may overwrite it above the node commit (seed 80705)', () => {
  const c = new InvariantChecker();
  // Term 5's leader appended 2@1 but only committed it in term 9; node 2 (commit 1) is paused
  // in term 1, and a leader of term 2, elected without 2@1, overwrites it there: legal raft.
  write(c, 1, new SimDisk(), [entry(1, 1, 1), entry(2, 1, 2), entry(3, 9, 0)], 3, 9);
  const d = new SimDisk();
  write(c, 2, d, [entry(1, 1, 1), entry(2, 1, 2)], 1, 1);
  write(c, 2, d, [entry(2, 2, 9)], 1, 2);
  // ...but not below the node's own commit index.
  const e = new SimDisk();
  write(c, 3, e, [entry(1, 1, 1), entry(2, 1, 2)], 2, 1);
  violates('committedDurable', () => write(c, 3, e, [entry(2, 2, 9)], 2, 2));
});

test('stateMachineSafety: two nodes reach different states at one index', () => {
  const c = new InvariantChecker();
  c.onApply(1, 1, 4, 1, 0xabc, 111);
  violates('stateMachineSafety', () => c.onApply(2, 1, 4, 1, 0xabc, 222));
});

test('leaderCompleteness: a leader without an entry committed in an earlier term', () => {
  const c = new InvariantChecker();
  const a = new SimDisk();
  write(c, 1, a, [entry(1, 1, 1), entry(2, 1, 2)], 2);
  const b = new SimDisk();
  write(c, 2, b, [entry(1, 1, 1)]);
  c.onLeader(2, 3, new Set([3]), conf([1, 2, 3]));
  violates('leaderCompleteness', () => write(c, 2, b, [entry(2, 3, 0)], 1, 3));
});

test('readIndex: a read misses a write acknowledged before it was issued', () => {
  const c = new InvariantChecker();
  c.onAck(10);
  c.onReadIssued(1, 2, false);
  violates('readIndex', () => c.onReadServed(1, 9, 12));
  c.onReadIssued(2, 2, true);
  violates('readIndex', () => c.onReadServed(2, 9, 9)); // lease-based, clocks within the margin
  c.onReadIssued(3, 2, true);
  c.onReadServed(3, 9, 9, true); // lease-based, answered by a leader whose clock stopped: counted
  assert.equal(c.leaseStaleReadsClockStopped, 1);
  c.onReadIssued(4, 2, false);
  violates('readIndex', () => c.onReadServed(4, 9, 9, true)); // the safe path has no such excuse
});
