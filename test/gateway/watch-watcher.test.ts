/**
 * The pure rules of a watch stream (src/gateway/watch/watcher.ts): how a
 * create request's span and filters are read, watch ID allocation, event
 * selection, the bounded watcher buffer, fragment cutting and the
 * leader-loss counter.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { MvccEvent } from '../../src/shard/mvcc/index.js';
import type { WatchCreateRequest } from '../../src/gateway/messages.js';
import {
  eventsFor,
  fragmentLengths,
  LeaderLossCounter,
  watchSpecOf,
  WatcherBuffer,
  WatchIds,
  type WatchSpec,
} from '../../src/gateway/watch/watcher.js';

const create = (over: Partial<WatchCreateRequest>): WatchCreateRequest => ({
  key: Buffer.alloc(0),
  range_end: Buffer.alloc(0),
  start_revision: 0,
  progress_notify: false,
  filters: [],
  prev_kv: false,
  watch_id: 0,
  fragment: false,
  ...over,
});

const spec = (over: Partial<WatchCreateRequest>): WatchSpec => {
  const s = watchSpecOf(create(over));
  if ('cancelReason' in s) throw new Error(s.cancelReason);
  return s;
};

const kv = (key: string, rev: number, value = 'v') => ({
  key: Buffer.from(key),
  createRevision: rev,
  modRevision: rev,
  version: 1,
  value: Buffer.from(value),
  lease: 0n,
});
const put = (key: string, rev: number, prev?: string): MvccEvent => ({
  type: 'PUT',
  kv: kv(key, rev),
  ...(prev === undefined ? {} : { prevKv: kv(key, rev - 1, prev) }),
});
const del = (key: string, rev: number): MvccEvent => ({ type: 'DELETE', kv: { ...kv(key, rev, ''), version: 0, createRevision: 0 } });
const keys = (events: MvccEvent[]): string[] => events.map((e) => `${e.type} ${e.kv.key.toString()}`);

describe('watchSpecOf', () => {
  it('reads an empty key as "\\0", range_end "\\0" as from-key, and refuses an empty range with etcd\'s reason', () => {
    assert.deepEqual(spec({}).key, Buffer.from([0]));
    assert.equal(spec({ key: Buffer.from('a') }).span.kind, 'single');
    assert.deepEqual(spec({ key: Buffer.from('a'), range_end: Buffer.from([0]) }).span, { kind: 'span', start: Buffer.from('a'), end: null });
    assert.deepEqual(watchSpecOf(create({ key: Buffer.from('b'), range_end: Buffer.from('a') })), { cancelReason: 'mvcc: watcher range is empty' });
    assert.deepEqual(watchSpecOf(create({ key: Buffer.from('a'), range_end: Buffer.from('a') })), { cancelReason: 'mvcc: watcher range is empty' });
  });

  it('reads filters, ignoring values etcd does not define', () => {
    const s = spec({ key: Buffer.from('a'), filters: [1, 7] });
    assert.deepEqual([s.noPut, s.noDelete], [false, true]);
    const t = spec({ key: Buffer.from('a'), filters: [0] });
    assert.deepEqual([t.noPut, t.noDelete], [true, false]);
  });
});

describe('eventsFor', () => {
  const events = [put('a', 5, 'old'), put('b', 5), del('c', 5), put('d', 5)];

  it('keeps the span\'s events in order and strips prev_kv unless asked', () => {
    const s = spec({ key: Buffer.from('b'), range_end: Buffer.from('d') });
    assert.deepEqual(keys(eventsFor(s, events)), ['PUT b', 'DELETE c']);
    const all = eventsFor(spec({ key: Buffer.from('a'), range_end: Buffer.from([0]) }), events);
    assert.equal(all[0]?.prevKv, undefined);
    const withPrev = eventsFor(spec({ key: Buffer.from('a'), prev_kv: true }), events);
    assert.equal(withPrev[0]?.prevKv?.value.toString(), 'old');
  });

  it('drops puts with NOPUT and deletes with NODELETE', () => {
    const from = { key: Buffer.from('a'), range_end: Buffer.from([0]) };
    assert.deepEqual(keys(eventsFor(spec({ ...from, filters: [0] }), events)), ['DELETE c']);
    assert.deepEqual(keys(eventsFor(spec({ ...from, filters: [1] }), events)), ['PUT a', 'PUT b', 'PUT d']);
  });
});

describe('WatchIds', () => {
  it('hands out automatic IDs from 0, skipping chosen ones, and refuses a chosen ID in use', () => {
    const ids = new WatchIds();
    assert.equal(ids.claim(0), 0);
    assert.equal(ids.claim(2), 2);
    assert.equal(ids.claim(0), 1);
    assert.equal(ids.claim(0), 3, 'skips 2, which the client chose');
    assert.equal(ids.claim(2), undefined, 'duplicate');
    assert.equal(ids.release(2), true);
    assert.equal(ids.release(2), false);
    assert.equal(ids.claim(2), 2);
    assert.equal(ids.claim(0), 4, 'automatic IDs never go back');
    assert.equal(ids.size, 5);
  });
});

describe('WatcherBuffer', () => {
  it('takes one item of any size when empty, then only what fits both bounds', () => {
    const buf = new WatcherBuffer(3, 100);
    const big = [put('k', 1), put('l', 1), put('m', 1), put('n', 1)];
    assert.equal(buf.fits(big.length, 1000), true, 'an empty buffer takes a whole revision');
    buf.push({ kind: 'events', events: big, revision: 1 });
    assert.equal(buf.fits(1, 1), false);
    assert.deepEqual(buf.room(), { events: 1, bytes: 92 });
    assert.equal(buf.shift()?.kind, 'events');
    assert.equal(buf.isEmpty, true);
    buf.push({ kind: 'events', events: [put('k', 2)], revision: 2 });
    assert.equal(buf.fits(2, 10), true);
    assert.equal(buf.fits(3, 10), false, 'events bound');
    assert.equal(buf.fits(1, 99), false, 'bytes bound');
    buf.push({ kind: 'progress', revision: 2 });
    assert.equal(buf.events, 1);
    buf.clear();
    assert.equal(buf.isEmpty, true);
    assert.throws(() => new WatcherBuffer(0, 1), RangeError);
  });

  it('sends buffered revisions together up to the merge bounds, never past a progress item', () => {
    const buf = new WatcherBuffer(100, 10_000);
    for (let rev = 1; rev <= 5; rev++) buf.push({ kind: 'events', events: [put(`k${rev}`, rev), put(`l${rev}`, rev)], revision: rev });
    buf.push({ kind: 'progress', revision: 5 });
    buf.push({ kind: 'events', events: [put('k6', 6)], revision: 6 });
    // Each event costs 3 bytes (2-byte key, 1-byte value): bytes bound 12 = two revisions.
    const first = buf.shiftMerged(100, 12);
    assert.equal(first?.kind, 'events');
    assert.deepEqual(first?.kind === 'events' ? [keys(first.events), first.revision] : [], [['PUT k1', 'PUT l1', 'PUT k2', 'PUT l2'], 2]);
    const second = buf.shiftMerged(5, 10_000);
    assert.deepEqual(second?.kind === 'events' ? [keys(second.events), second.revision] : [], [['PUT k3', 'PUT l3', 'PUT k4', 'PUT l4'], 4], 'events bound, revisions never split');
    const third = buf.shiftMerged(100, 10_000);
    assert.deepEqual(third?.kind === 'events' ? third.revision : undefined, 5, 'stops at the progress item');
    assert.equal(buf.events, 1, 'the buffer counts what is left');
    assert.deepEqual(buf.shiftMerged(100, 10_000), { kind: 'progress', revision: 5 });
    const last = buf.shiftMerged(1, 1);
    assert.deepEqual(last?.kind === 'events' ? keys(last.events) : [], ['PUT k6'], 'one item is taken whatever its size');
    assert.equal(buf.isEmpty, true);
    assert.equal(buf.events, 0);
  });
});

describe('fragmentLengths', () => {
  it('leaves a response below the limit or with one event whole', () => {
    assert.deepEqual(fragmentLengths([10, 10, 10], 5, 100), [3]);
    assert.deepEqual(fragmentLengths([500], 5, 100), [1]);
  });

  it('cuts at the event that would reach the limit, at least one event per chunk', () => {
    // base 10, limit 100: 40+40 = 90 fits, +40 reaches 130.
    assert.deepEqual(fragmentLengths([40, 40, 40, 40, 40], 10, 100), [2, 2, 1]);
    assert.deepEqual(fragmentLengths([200, 10, 300], 10, 100), [1, 1, 1]);
    const sizes = [30, 70, 20, 90, 5, 5, 5];
    const lengths = fragmentLengths(sizes, 1, 100);
    assert.equal(lengths.reduce((a, n) => a + n, 0), sizes.length, 'every event in exactly one chunk');
  });
});

describe('LeaderLossCounter', () => {
  it('closes after three consecutive checks without a leader, a leader in between resets', () => {
    const c = new LeaderLossCounter();
    assert.deepEqual([c.check(false), c.check(false), c.check(true), c.check(false), c.check(false)], [false, false, false, false, false]);
    assert.equal(c.check(false), true);
  });
});
