/**
 * The key filter: never "absent" for a key it was given, a bounded share of
 * wrong "maybe" answers as it grows, and a store that uses it answering
 * exactly like one that seeks — across reopen, a load racing writes, and
 * keys the filter has not loaded yet.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { KeyFilter } from '../../src/shard/mvcc/key-filter.js';
import { MvccStore } from '../../src/shard/mvcc/index.js';
import { MemoryEngine } from '../../src/storage/index.js';
import { Prng } from '../storage/prng.js';

const seed = Number(process.env['KEYSPAN_SEED'] ?? 20261122);

function randomKeys(n: number, rnd: () => number, tag: string): Buffer[] {
  return Array.from({ length: n }, (_, i) => {
    const len = 1 + Math.floor(rnd() * 24);
    const b = Buffer.alloc(len + tag.length + 4);
    for (let j = 0; j < len; j++) b[j] = Math.floor(rnd() * 256);
    b.write(tag, len, 'latin1');
    b.writeUInt32BE(i, len + tag.length);
    return b;
  });
}

test(`no key added is ever absent; few others are present, as the filter grows (seed ${seed})`, () => {
  const g = new Prng(seed);
  const rnd = (): number => g.uint32() / 2 ** 32;
  const f = new KeyFilter(1024);
  const added = randomKeys(100_000, rnd, 'in');
  for (const k of added) f.add(k);
  assert.equal(f.absent(added[0]!), false);
  assert.equal(f.stats.ready, false);
  const others = randomKeys(50_000, rnd, 'out');
  assert.equal(others.filter((k) => f.absent(k)).length, 0, 'nothing is absent before the filter is marked loaded');
  f.markLoaded();
  for (const k of added) assert.equal(f.absent(k), false, `added key ${k.toString('hex')} reported absent (seed ${seed})`);
  const present = others.filter((k) => !f.absent(k)).length;
  assert.ok(present / others.length < 0.02, `false-positive share ${present / others.length} (seed ${seed})`);
  assert.ok(f.stats.layers > 1, 'the filter grew past its first layer');
  assert.ok(f.stats.bytes < 100_000 * 8, `${f.stats.bytes} bytes for 100,000 keys`);
});

test('re-adding keys does not count them again', () => {
  const f = new KeyFilter(64);
  const keys = Array.from({ length: 50 }, (_, i) => Buffer.from(`k${i}`));
  for (let round = 0; round < 10; round++) for (const k of keys) f.add(k);
  assert.ok(f.stats.keys <= 50 && f.stats.layers === 1, JSON.stringify(f.stats));
  assert.throws(() => new KeyFilter(0), /positive integer/);
});

test('a store answers new keys from the filter and keeps versions exact across reopen', async () => {
  const engine = new MemoryEngine();
  const prefix = Buffer.from('p');
  let rev = 1;
  const s1 = await MvccStore.open(engine, { prefix });
  await s1.keyFilterSettled();
  assert.equal(s1.keyFilterStats?.ready, true);
  for (let i = 0; i < 300; i++) await s1.put({ key: Buffer.from(`k${i}`), value: Buffer.from('a') }, ++rev);
  assert.ok(s1.cacheStats.absent >= 300, `new keys answered by the filter: ${JSON.stringify(s1.cacheStats)}`);
  await s1.close();

  // Reopen with a cache that holds nothing: every existing key must be found through the filter's "maybe".
  const s2 = await MvccStore.open(engine, { prefix, latestCacheBytes: 0 });
  await s2.keyFilterSettled();
  for (let i = 0; i < 300; i++) {
    const r = await s2.put({ key: Buffer.from(`k${i}`), value: Buffer.from('b'), prevKv: true }, ++rev);
    assert.equal(r.prevKv?.version, 1, `k${i} existed before the reopen`);
  }
  const got = await s2.range({ key: Buffer.from('k'), rangeEnd: Buffer.from('l') });
  assert.equal(got.count, 300);
  assert.ok(got.kvs.every((kv) => kv.version === 2 && kv.createRevision < kv.modRevision));
  const missing = await s2.range({ key: Buffer.from('never') });
  assert.equal(missing.count, 0);
  await s2.close();
});

test('writes racing the background load are never reported absent', async () => {
  const engine = new MemoryEngine();
  const prefix = Buffer.from('p');
  let rev = 1;
  const s1 = await MvccStore.open(engine, { prefix, keyFilter: false });
  for (let i = 0; i < 2_000; i++) await s1.put({ key: Buffer.from(`old${i}`), value: Buffer.from('a') }, ++rev);
  await s1.close();
  for (let delay = 0; delay < 6; delay++) {
    const s = await MvccStore.open(engine, { prefix, latestCacheBytes: 0 });
    for (let i = 0; i < delay; i++) await tick();
    // While the filter loads: new keys and rewrites of old ones.
    const key = Buffer.from(`new${delay}`);
    await s.put({ key, value: Buffer.from('x') }, ++rev);
    const old = await s.put({ key: Buffer.from(`old${delay}`), value: Buffer.from('y'), prevKv: true }, ++rev);
    assert.ok(old.prevKv !== undefined, `old${delay} found while the filter loads`);
    await s.keyFilterSettled();
    assert.equal(s.keyFilterStats?.ready, true);
    const again = await s.put({ key, value: Buffer.from('z'), prevKv: true }, ++rev);
    assert.equal(again.prevKv?.version, 1, `a key written during the load is known after it (delay ${delay})`);
    for (const k of [`old0`, `old1999`, `old${delay}`]) {
      const r = await s.range({ key: Buffer.from(k) });
      assert.equal(r.count, 1, `${k} after the load (delay ${delay})`);
    }
    await s.close();
  }
});
