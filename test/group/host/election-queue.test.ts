/**
 * The election queue (election-queue.ts): bounded admission of dormant
 * leaderless groups, campaigners first, waiters after their "not before"
 * tick, slots freed by a known leader or by expiry.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ElectionQueue } from '../../../src/group/host/election-queue.js';

describe('election queue', () => {
  it('admits at most inFlightMax, campaigners first and in order, then waiters', () => {
    const q = new ElectionQueue<string>(3, 30);
    q.enqueue('w1', false);
    q.enqueue('c1', true);
    q.enqueue('w2', false);
    q.enqueue('c2', true);
    q.enqueue('c1', true); // already queued: no duplicate
    assert.equal(q.queued, 4);
    assert.deepEqual(q.admit(0), [
      { item: 'c1', campaign: true },
      { item: 'c2', campaign: true },
      { item: 'w1', campaign: false },
    ]);
    assert.equal(q.electing, 3);
    assert.deepEqual(q.admit(1), [], 'no slot is free');
    q.settle('c2'); // its group knows a leader
    assert.deepEqual(q.admit(2), [{ item: 'w2', campaign: false }]);
    assert.equal(q.queued, 0);
  });

  it('keeps a waiter until its not-before tick', () => {
    const q = new ElectionQueue<number>(10, 30);
    q.enqueue(1, false, 20);
    q.enqueue(2, false, 0);
    assert.deepEqual(q.admit(5).map((a) => a.item), [2]);
    assert.deepEqual(q.admit(19), []);
    assert.deepEqual(q.admit(20).map((a) => a.item), [1]);
  });

  it('frees the slots of elections older than timeoutTicks, so a stuck group never blocks the queue', () => {
    const q = new ElectionQueue<number>(2, 30);
    for (let i = 1; i <= 4; i++) q.enqueue(i, true);
    assert.equal(q.admit(0).length, 2);
    q.expire(30);
    assert.equal(q.electing, 2, 'not yet: exactly timeoutTicks old');
    assert.deepEqual(q.admit(30), []);
    q.expire(31);
    assert.equal(q.electing, 0);
    assert.deepEqual(q.admit(31).map((a) => a.item), [3, 4]);
  });

  it('a woken group leaves the queue and says whether it had asked to campaign', () => {
    const q = new ElectionQueue<number>(1, 30);
    q.enqueue(1, true);
    q.enqueue(2, false);
    assert.equal(q.remove(1), true);
    assert.equal(q.remove(2), false);
    assert.equal(q.remove(3), undefined);
    assert.equal(q.has(1), false);
    assert.deepEqual(q.admit(0), []);
  });

  it('refuses nonsensical bounds', () => {
    assert.throws(() => new ElectionQueue(0, 30), RangeError);
    assert.throws(() => new ElectionQueue(1, 0), RangeError);
  });
});
