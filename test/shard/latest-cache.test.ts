/**
 * The hot-key cache: LRU bounds of both tiers, demotion to metadata,
 * revision-exact lookups and fills, and a store whose reads race its
 * writes never serving or caching a stale version.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { LatestCache } from '../../src/shard/mvcc/latest-cache.js';
import { KeyFilter } from '../../src/shard/mvcc/key-filter.js';
import { MvccStore } from '../../src/shard/mvcc/index.js';
import { MemoryEngine } from '../../src/storage/index.js';
import { TOMBSTONE_RECORD, encodePut } from '../../src/shard/mvcc/value.js';

// A put record of `bytes` value bytes: create revision 1, version = revision, lease = revision.
const entry = (seg: string, revision: number, bytes = 10) => ({
  keySegment: Buffer.from(seg),
  revision,
  record: encodePut(1, revision, BigInt(revision), Buffer.alloc(bytes)),
});
const RECORD_HEADER = encodePut(1, 1, 0n, Buffer.alloc(0)).length;

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
  const c = new LatestCache(1, 1000, undefined, 0);
  for (let i = 0; i < 20; i++) c.fill(Buffer.from(`k${i}`), entry(`k${i}`, 1, 100), 1);
  assert.ok(c.stats.bytes <= 1000);
  assert.equal(c.lookup(Buffer.from('k0'), 1), undefined, 'the oldest entries went first');
  assert.notEqual(c.lookup(Buffer.from('k19'), 1), undefined);
  const off = new LatestCache(1, 0, undefined, 0);
  off.fill(Buffer.from('a'), entry('a', 1), 1);
  assert.equal(off.lookup(Buffer.from('a'), 1), undefined, 'size 0 disables the cache');
  assert.equal(off.lookupMeta(Buffer.from('a'), 1), undefined);
});

test('evicted entries keep their metadata; entries too large for the first tier keep only it', () => {
  const c = new LatestCache(1, 1000);
  for (let i = 0; i < 20; i++) c.fill(Buffer.from(`k${i}`), entry(`k${i}`, 1, 100), 1);
  assert.equal(c.lookup(Buffer.from('k0'), 1), undefined, 'the whole entry is gone');
  assert.deepEqual(c.lookupMeta(Buffer.from('k0'), 1), { modRevision: 1, createRevision: 1, version: 1, lease: 1n });
  assert.equal(c.lookupMeta(Buffer.from('k0'), 2), undefined, 'metadata too is exact at one revision only');
  c.commit(2, [entry('k0', 2, 5000)]);
  assert.equal(c.lookup(Buffer.from('k0'), 2), undefined, 'larger than the first tier');
  assert.deepEqual(c.lookupMeta(Buffer.from('k0'), 2), { modRevision: 2, createRevision: 1, version: 2, lease: 2n }, 'the commit replaced the metadata');
  c.commit(3, [{ keySegment: Buffer.from('k1'), revision: 3, record: TOMBSTONE_RECORD }]);
  assert.equal(c.lookupMeta(Buffer.from('k1'), 3), null, 'a tombstone is no live key');
  c.fill(Buffer.from('k2'), null, 3);
  assert.equal(c.lookupMeta(Buffer.from('k2'), 3), null, 'neither is an absent key');
  const s = c.stats;
  assert.ok(s.metaKeys > 0 && s.metaHits === 2, JSON.stringify(s));
});

test('holds() says whether a lookup would answer, without counting or reordering anything', () => {
  const filter = new KeyFilter();
  filter.markLoaded();
  const c = new LatestCache(1, 1000, filter);
  for (let i = 0; i < 20; i++) c.commit(1, [entry(`k${i}`, 1, 100)]);
  const before = c.stats;
  assert.equal(c.holds(Buffer.from('k19'), 1, true), true, 'a whole entry answers both');
  assert.equal(c.holds(Buffer.from('k19'), 1, false), true);
  assert.equal(c.holds(Buffer.from('k0'), 1, false), true, 'a demoted key answers its metadata');
  assert.equal(c.holds(Buffer.from('k0'), 1, true), false, 'but not its value');
  assert.equal(c.holds(Buffer.from('new'), 1, true), true, 'the key filter answers a key never written');
  assert.equal(c.holds(Buffer.from('k19'), 2, false), false, 'only at the current revision');
  const whole = Array.from({ length: 20 }, (_, i) => `k${i}`).filter((k) => c.holds(Buffer.from(k), 1, true));
  assert.ok(whole.length >= 2 && whole.at(-1) === 'k19', whole.join());
  assert.deepEqual(c.stats, before);
  // The least recently used whole entry stays so though holds() asked about it: the next commit demotes it.
  const [oldest, second] = whole as [string, string];
  assert.equal(c.holds(Buffer.from(oldest), 1, true), true);
  c.commit(1, [entry('x', 1, 100)]);
  assert.equal(c.holds(Buffer.from(oldest), 1, true), false);
  assert.equal(c.holds(Buffer.from(second), 1, true), true);
});

test('a damaged record read into the cache is not demoted, and its eviction does not fail a commit', () => {
  const c = new LatestCache(1, 500);
  c.fill(Buffer.from('bad'), { keySegment: Buffer.from('bad'), revision: 1, record: Buffer.from([9, 9, 9]) }, 1);
  for (let i = 0; i < 5; i++) c.commit(2 + i, [entry(`k${i}`, 2 + i, 100)]);
  assert.equal(c.lookup(Buffer.from('bad'), 6), undefined, 'evicted');
  assert.equal(c.lookupMeta(Buffer.from('bad'), 6), undefined, 'not demoted: a miss, so the reader goes to the engine');
  assert.equal(c.lookupMeta(Buffer.from('k0'), 6)?.version, 2, 'the others were demoted');
});

test('both tiers evict in exact LRU order through fills, touches, commits and clears (model check, 30,000 steps)', () => {
  // The reference: two arrays, least recently used first, with the cache's byte charge per entry.
  const charge = (id: string, bytes: number): number => 96 + 2 * id.length + RECORD_HEADER + bytes;
  const metaCharge = (id: string): number => 96 + 2 * id.length + 32;
  const bytesMax = 40 * charge('k00', 50);
  const metaBytesMax = 25 * metaCharge('k00');
  const cache = new LatestCache(1, bytesMax, undefined, metaBytesMax);
  let model: { id: string; bytes: number; revision: number }[] = [];
  let metas: { id: string; revision: number }[] = [];
  let revision = 1;
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const total = <T extends { id: string }>(list: T[], f: (e: T) => number): number => list.reduce((a, e) => a + f(e), 0);
  const demote = (id: string, rev: number): void => {
    metas.push({ id, revision: rev });
    while (total(metas, (e) => metaCharge(e.id)) > metaBytesMax) metas.shift();
  };
  const put = (id: string, bytes: number, rev: number): void => {
    model = model.filter((e) => e.id !== id);
    metas = metas.filter((e) => e.id !== id);
    if (charge(id, bytes) > bytesMax) return demote(id, rev);
    model.push({ id, bytes, revision: rev });
    while (total(model, (e) => charge(e.id, e.bytes)) > bytesMax) {
      const old = model.shift()!;
      demote(old.id, old.revision);
    }
  };
  const touch = <T extends { id: string }>(list: T[], i: number): void => {
    list.push(...list.splice(i, 1));
  };
  for (let step = 0; step < 30_000; step++) {
    const id = `k${String(rand(80)).padStart(2, '0')}`;
    const op = rand(100);
    if (op < 35) {
      const bytes = rand(3) * 50 + (rand(50) === 0 ? 5000 : 0);
      cache.fill(Buffer.from(id), entry(id, revision, bytes), revision);
      put(id, bytes, revision);
    } else if (op < 55) {
      revision++;
      cache.commit(revision, [entry(id, revision, 50)]);
      put(id, 50, revision);
    } else if (op < 75) {
      const hit = cache.lookup(Buffer.from(id), revision) !== undefined;
      const i = model.findIndex((e) => e.id === id);
      assert.equal(hit, i >= 0, `step ${step}: lookup of ${id}`);
      if (i >= 0) touch(model, i);
    } else if (op < 99) {
      const got = cache.lookupMeta(Buffer.from(id), revision);
      const i = model.findIndex((e) => e.id === id);
      const j = metas.findIndex((e) => e.id === id);
      const want = i >= 0 ? model[i]!.revision : j >= 0 ? metas[j]!.revision : undefined;
      assert.equal(got?.modRevision, want, `step ${step}: lookupMeta of ${id}`);
      if (i >= 0) touch(model, i);
      else if (j >= 0) touch(metas, j);
    } else {
      cache.clear(revision);
      model = [];
      metas = [];
    }
    const s = cache.stats;
    assert.equal(s.keys, model.length, `step ${step}: keys`);
    assert.equal(s.bytes, total(model, (e) => charge(e.id, e.bytes)), `step ${step}: bytes`);
    assert.equal(s.metaKeys, metas.length, `step ${step}: metadata keys`);
    assert.equal(s.metaBytes, total(metas, (e) => metaCharge(e.id)), `step ${step}: metadata bytes`);
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
