/**
 * The hot-key cache: LRU bounds, revision-exact lookups and fills, and a
 * store whose reads race its writes never serving or caching a stale version.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { LatestCache } from '../../src/shard/mvcc/latest-cache.js';
import { MvccStore } from '../../src/shard/mvcc/index.js';
import { MemoryEngine } from '../../src/storage/index.js';

const entry = (seg: string, revision: number, bytes = 10) => ({ keySegment: Buffer.from(seg), revision, record: Buffer.alloc(bytes) });

test('lookups and fills only at the current revision; commits move it', () => {
  const c = new LatestCache(5, 1 << 20);
  c.fill(Buffer.from('a'), entry('a', 3), 5);
  assert.equal(c.lookup(Buffer.from('a'), 5)?.revision, 3);
  assert.equal(c.lookup(Buffer.from('a'), 4), undefined, 'a read at an older revision never uses the cache');
  c.fill(Buffer.from('b'), null, 5);
  assert.equal(c.lookup(Buffer.from('b'), 5), null, 'absent keys are cached as null');
  c.commit(6, [entry('a', 6)]);
  assert.equal(c.lookup(Buffer.from('a'), 5), undefined);
  assert.equal(c.lookup(Buffer.from('a'), 6)?.revision, 6);
  c.fill(Buffer.from('c'), entry('c', 1), 5);
  assert.equal(c.lookup(Buffer.from('c'), 6), undefined, 'a fill from a read that began before a commit is dropped');
  assert.equal(c.lookup(Buffer.from('b'), 6), null, 'untouched keys stay valid across commits');
});

test('evicts least recently used entries beyond the byte bound', () => {
  const c = new LatestCache(1, 1000);
  for (let i = 0; i < 20; i++) c.fill(Buffer.from(`k${i}`), entry(`k${i}`, 1, 100), 1);
  assert.ok(c.stats.bytes <= 1000);
  assert.equal(c.lookup(Buffer.from('k0'), 1), undefined, 'the oldest entries went first');
  assert.notEqual(c.lookup(Buffer.from('k19'), 1), undefined);
  const off = new LatestCache(1, 0);
  off.fill(Buffer.from('a'), entry('a', 1), 1);
  assert.equal(off.lookup(Buffer.from('a'), 1), undefined, 'size 0 disables the cache');
});

test('evicts in exact LRU order through fills, touches, commits and clears (model check, 30,000 steps)', () => {
  // The reference: an array, least recently used first, with the cache's byte charge per entry.
  const charge = (id: string, bytes: number): number => 96 + 2 * id.length + bytes;
  const bytesMax = 40 * charge('k00', 50);
  const cache = new LatestCache(1, bytesMax);
  let model: { id: string; bytes: number }[] = [];
  let revision = 1;
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const put = (id: string, bytes: number): void => {
    model = model.filter((e) => e.id !== id);
    model.push({ id, bytes });
    let total = model.reduce((a, e) => a + charge(e.id, e.bytes), 0);
    while (total > bytesMax) total -= charge(model[0]!.id, model.shift()!.bytes);
  };
  for (let step = 0; step < 30_000; step++) {
    const id = `k${String(rand(80)).padStart(2, '0')}`;
    const op = rand(100);
    if (op < 40) {
      const bytes = rand(3) * 50;
      cache.fill(Buffer.from(id), entry(id, revision, bytes), revision);
      put(id, bytes);
    } else if (op < 60) {
      revision++;
      const bytes = 50;
      cache.commit(revision, [entry(id, revision, bytes)]);
      put(id, bytes);
    } else if (op < 99) {
      const hit = cache.lookup(Buffer.from(id), revision) !== undefined;
      const i = model.findIndex((e) => e.id === id);
      assert.equal(hit, i >= 0, `step ${step}: lookup of ${id}`);
      if (i >= 0) model.push(...model.splice(i, 1));
    } else {
      cache.clear(revision);
      model = [];
    }
    assert.equal(cache.stats.keys, model.length, `step ${step}: keys`);
    assert.equal(cache.stats.bytes, model.reduce((a, e) => a + charge(e.id, e.bytes), 0), `step ${step}: bytes`);
  }
});

test('reads racing writes see the version current when they began, and the cache ends exact', async () => {
  const engine = new MemoryEngine();
  const key = Buffer.from('k');
  let rev = 1;
  await MvccStore.open(engine, { prefix: Buffer.from('p') }).then(async (s) => {
    await s.put({ key, value: Buffer.from('v0') }, ++rev);
    await s.close();
  });
  for (let delay = 0; delay < 12; delay++) {
    // A fresh store: its cache is empty, so the read below goes to the engine.
    const store = await MvccStore.open(engine, { prefix: Buffer.from('p') });
    const before = store.currentRevision;
    const read = store.range({ key });
    for (let i = 0; i < delay; i++) await tick();
    const value = `v${delay + 1}`;
    await store.put({ key, value: Buffer.from(value) }, ++rev);
    const old = await read;
    assert.equal(old.revision, before);
    assert.equal(old.kvs[0]?.modRevision, before, `a read begun at ${before} sees that revision's version (delay ${delay})`);
    const now = await store.range({ key });
    assert.equal(now.kvs[0]?.value.toString(), value, `the cache holds the newest version after the race (delay ${delay})`);
    assert.equal(now.kvs[0]?.modRevision, rev);
    await store.close();
  }
});
