/**
 * Span counts (span-count-cache.ts): lookups only at the current revision,
 * commits adjusting the spans they touch, counts measured at an older
 * revision brought forward from the change log or refused when the log no
 * longer reaches back, LRU bounds; and a store whose limited reads race its
 * creates and deletes always reporting the exact count.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { SpanCountCache } from '../../src/shard/mvcc/span-count-cache.js';
import { resolveSpan } from '../../src/shard/mvcc/span.js';
import { MvccStore } from '../../src/shard/mvcc/index.js';
import { MemoryEngine } from '../../src/storage/index.js';

const span = (from: string, to: string) => resolveSpan(Buffer.from(from), Buffer.from(to));
const create = (key: string) => ({ key: Buffer.from(key), delta: 1 as const });
const remove = (key: string) => ({ key: Buffer.from(key), delta: -1 as const });

test('lookups only at the current revision; commits adjust the spans holding their keys', () => {
  const c = new SpanCountCache(5);
  c.fill(span('a', 'c'), 10, 5);
  c.fill(span('x', 'z'), 3, 5);
  assert.equal(c.lookup(span('a', 'c'), 5), 10);
  assert.equal(c.lookup(span('a', 'c'), 4), undefined, 'a read at another revision never uses the counts');
  assert.equal(c.lookup(resolveSpan(Buffer.from('a'), undefined), 5), undefined, 'single keys are not counted here');
  c.commit(6, [create('b'), remove('y'), create('q')]);
  assert.equal(c.lookup(span('a', 'c'), 6), 11);
  assert.equal(c.lookup(span('x', 'z'), 6), 2);
  c.commit(7, []);
  assert.equal(c.lookup(span('a', 'c'), 7), 11, 'updates of existing keys change no count');
  assert.equal(c.lookup(span('a', 'b'), 7), undefined, 'an overlapping span is its own entry');
});

test('a count measured at an older revision is brought forward with the changes since', () => {
  const c = new SpanCountCache(1, 8, 8);
  c.commit(2, [create('a1')]);
  c.commit(3, [create('a2'), create('b1')]);
  c.commit(4, [remove('a1')]);
  // A scan that began at revision 2 counted 1 key in [a, b): since then a2 came and a1 went.
  c.fill(span('a', 'b'), 1, 2);
  assert.equal(c.lookup(span('a', 'b'), 4), 1);
  c.fill(span('a', 'c'), 2, 3);
  assert.equal(c.lookup(span('a', 'c'), 4), 1);
  c.fill(span('a', 'z'), 0, 5);
  assert.equal(c.lookup(span('a', 'z'), 4), undefined, 'a count from the future is refused');
});

test('a cached count is taken back to an older revision the log reaches', () => {
  const c = new SpanCountCache(1, 8, 8);
  c.commit(2, [create('a1'), create('a2')]);
  c.commit(3, [create('a3'), create('b1')]);
  c.commit(4, [remove('a1')]);
  c.fill(span('a', 'b'), 2, 4);
  assert.equal(c.lookupAt(span('a', 'b'), 4), 2);
  assert.equal(c.lookupAt(span('a', 'b'), 3), 3, 'before a1 went');
  assert.equal(c.lookupAt(span('a', 'b'), 2), 2, 'before a3 came');
  assert.equal(c.lookupAt(span('a', 'b'), 1), 0);
  assert.equal(c.lookupAt(span('a', 'b'), 0), undefined, 'below the log floor');
  assert.equal(c.lookupAt(span('a', 'b'), 5), undefined, 'a future revision');
  assert.equal(c.lookupAt(span('b', 'c'), 3), undefined, 'a span not cached');
  for (let r = 5; r <= 20; r++) c.commit(r, [create(`x${r}`)]);
  assert.equal(c.lookupAt(span('a', 'b'), 2), undefined, 'the log dropped what lay between');
  assert.equal(c.lookupAt(span('a', 'b'), 20), 2);
});

test('counts older than the change log are refused; the log stays bounded', () => {
  const c = new SpanCountCache(0, 8, 4);
  for (let r = 1; r <= 10; r++) c.commit(r, [create(`k${r}`)]);
  c.fill(span('k', 'l'), 1, 1);
  assert.equal(c.lookup(span('k', 'l'), 10), undefined, 'revision 1 is below the kept log');
  c.fill(span('k', 'l'), 9, 9);
  assert.equal(c.lookup(span('k', 'l'), 10), 10);
});

test('evicts the least recently used span beyond the bound; 0 disables', () => {
  const c = new SpanCountCache(1, 2);
  c.fill(span('a', 'b'), 1, 1);
  c.fill(span('c', 'd'), 2, 1);
  c.lookup(span('a', 'b'), 1);
  c.fill(span('e', 'f'), 3, 1);
  assert.equal(c.lookup(span('c', 'd'), 1), undefined, 'the least recently used span went');
  assert.equal(c.lookup(span('a', 'b'), 1), 1);
  assert.equal(c.lookup(span('e', 'f'), 1), 3);
  const off = new SpanCountCache(1, 0);
  off.fill(span('a', 'b'), 1, 1);
  assert.equal(off.lookup(span('a', 'b'), 1), undefined);
});

test('limited reads racing creates and deletes report the exact count', async () => {
  const engine = new MemoryEngine();
  const store = await MvccStore.open(engine, { prefix: Buffer.from('p') });
  const prefix = (i: number): Buffer => Buffer.from(`obj/${String(i).padStart(3, '0')}`);
  let rev = 1;
  for (let i = 0; i < 50; i++) await store.put({ key: prefix(i), value: Buffer.from('v') }, ++rev);
  const list = { key: Buffer.from('obj/'), rangeEnd: Buffer.from('obj0'), limit: 5 };
  let live = 50;
  for (let delay = 0; delay < 16; delay++) {
    // The read begins, then a create or a delete commits a few turns in.
    const read = store.range(list);
    const before = live;
    const revBefore = rev;
    for (let i = 0; i < delay; i++) await tick();
    if (delay % 2 === 0) {
      await store.put({ key: prefix(100 + delay), value: Buffer.from('v') }, ++rev);
      live++;
    } else {
      await store.deleteRange({ key: prefix(delay) }, ++rev);
      live--;
    }
    const r = await read;
    // The read may be answered at the revision it began at or at the racing write's
    // (fresher is allowed); either way its count is exact at the revision it reports.
    assert.ok(r.revision === revBefore || r.revision === rev, `revision ${r.revision} (delay ${delay})`);
    assert.equal(r.count, r.revision === revBefore ? before : live, `the racing read counts its own revision (delay ${delay})`);
    const now = await store.range(list);
    assert.equal(now.count, live, `the next read counts every commit (delay ${delay})`);
    assert.equal(now.kvs.length, 5);
    assert.equal((await store.range({ ...list, countOnly: true })).count, live);
  }
  await store.close();
});

/** A memory engine that counts the entries its scans hand out, and can fail the next scan. */
function countingEngine(): { engine: MemoryEngine; read: () => number; failNextScan: () => void } {
  const engine = new MemoryEngine();
  const iterate = engine.iterate.bind(engine);
  let read = 0;
  let fail = false;
  engine.iterate = async function* (options) {
    const failing = fail;
    fail = false;
    for await (const e of iterate(options)) {
      if (failing) throw new Error('injected scan failure');
      read++;
      yield e;
    }
  };
  return { engine, read: () => read, failNextScan: () => (fail = true) };
}

test('concurrent pages of a span whose count is unknown share one counting scan', async () => {
  const { engine, read } = countingEngine();
  const store = await MvccStore.open(engine, { prefix: Buffer.from('p'), keyFilter: false });
  const keys = 2000;
  let rev = 1;
  for (let i = 0; i < keys; i++) await store.put({ key: Buffer.from(`obj/${String(i).padStart(4, '0')}`), value: Buffer.from('v') }, ++rev);
  const page = { key: Buffer.from('obj/'), rangeEnd: Buffer.from('obj0'), limit: 5 };
  const before = read();
  const results = await Promise.all(Array.from({ length: 10 }, () => store.range(page)));
  for (const r of results) {
    assert.equal(r.count, keys);
    assert.equal(r.kvs.length, 5);
    assert.equal(r.more, true);
    assert.equal(r.kvs[0]?.key.toString(), 'obj/0000');
  }
  // One scan counts all keys; the nine others wait for its count and read 6 entries each.
  assert.ok(read() - before <= keys + 9 * 6, `entries read: ${read() - before}`);
  await store.close();
});

test('pages waiting for a counting scan that fails count the span themselves', async () => {
  const { engine, failNextScan } = countingEngine();
  const store = await MvccStore.open(engine, { prefix: Buffer.from('p'), keyFilter: false });
  let rev = 1;
  for (let i = 0; i < 300; i++) await store.put({ key: Buffer.from(`obj/${String(i).padStart(3, '0')}`), value: Buffer.from('v') }, ++rev);
  const page = { key: Buffer.from('obj/'), rangeEnd: Buffer.from('obj0'), limit: 5 };
  failNextScan();
  const [first, ...rest] = await Promise.allSettled(Array.from({ length: 4 }, () => store.range(page)));
  assert.equal(first?.status, 'rejected');
  for (const r of rest) {
    assert.equal(r.status, 'fulfilled');
    if (r.status === 'fulfilled') assert.equal(r.value.count, 300);
  }
  assert.equal((await store.range(page)).count, 300);
  await store.close();
});
