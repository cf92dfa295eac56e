/**
 * The Live family (live-index.ts): it holds exactly the live keys through
 * creates, deletes, txns and compaction; a store written without it builds
 * it on open; and a page read from a new start key counts the rest of its
 * span from it, reading no value beyond the page.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Family, KeyCodec, MetaName, MvccStore } from '../../src/shard/mvcc/index.js';
import { MemoryEngine } from '../../src/storage/index.js';

const PREFIX = Buffer.from('p');
const key = (i: number): Buffer => Buffer.from(`obj/${String(i).padStart(4, '0')}`);

/** The user keys the Live family holds, in order. */
async function liveFamily(engine: MemoryEngine): Promise<string[]> {
  const codec = new KeyCodec(PREFIX);
  const out: string[] = [];
  for await (const e of engine.iterate({ gte: codec.familyStart(Family.Live), lt: codec.familyEnd(Family.Live), keysOnly: true })) {
    // A live key is a data key's floor with the family byte changed: parse it as one.
    const asData = Buffer.concat([e.key, Buffer.alloc(8, 0xff)]);
    asData[PREFIX.length] = Family.Data;
    out.push(codec.userKeyOfSegment(codec.parseDataKey(asData).keySegment).toString());
  }
  return out;
}

/** A memory engine that counts the entries and value bytes its scans hand out. */
function readCountingEngine(): { engine: MemoryEngine; read: { entries: number; valueBytes: number } } {
  const engine = new MemoryEngine();
  const iterate = engine.iterate.bind(engine);
  const read = { entries: 0, valueBytes: 0 };
  engine.iterate = async function* (options) {
    for await (const e of iterate(options)) {
      read.entries++;
      read.valueBytes += e.value.length;
      yield e;
    }
  };
  return { engine, read };
}

/** Writes keys 0..n-1 with `value`, one revision each; returns the last revision. */
async function putKeys(store: MvccStore, n: number, value: Buffer): Promise<number> {
  let rev = store.currentRevision;
  for (let i = 0; i < n; i++) await store.put({ key: key(i), value }, ++rev);
  return rev;
}

/** Writes a history with creates, updates, deletes, a txn and a compaction; returns the live keys. */
async function writeHistory(store: MvccStore): Promise<Set<string>> {
  const live = new Set<string>();
  let rev = 1;
  for (let i = 0; i < 40; i++) {
    await store.put({ key: key(i), value: Buffer.from(`v${i}`) }, ++rev);
    live.add(key(i).toString());
  }
  for (let i = 0; i < 40; i += 3) await store.put({ key: key(i), value: Buffer.from('again') }, ++rev);
  await store.deleteRange({ key: key(10), rangeEnd: key(20) }, ++rev);
  for (let i = 10; i < 20; i++) live.delete(key(i).toString());
  await store.txn(
    {
      success: [
        { type: 'deleteRange', request: { key: key(5) } },
        { type: 'put', request: { key: key(15), value: Buffer.from('back') } },
        { type: 'put', request: { key: key(50), value: Buffer.from('new') } },
      ],
    },
    ++rev,
  );
  live.delete(key(5).toString());
  live.add(key(15).toString());
  live.add(key(50).toString());
  await store.compact(rev - 1, { physical: true });
  await store.deleteRange({ key: key(0) }, ++rev);
  live.delete(key(0).toString());
  return live;
}

test('the Live family holds exactly the live keys through creates, deletes, txns and compaction', async () => {
  const engine = new MemoryEngine();
  const store = await MvccStore.open(engine, { prefix: PREFIX });
  const live = await writeHistory(store);
  assert.deepEqual(await liveFamily(engine), [...live].sort());
  for (let start = 0; start < 55; start += 7) {
    const page = await store.range({ key: key(start), rangeEnd: Buffer.from('obj0'), limit: 3 });
    const expected = [...live].filter((k) => k >= key(start).toString()).length;
    assert.equal(page.count, expected, `count from ${start}`);
    assert.equal(page.more, expected > 3);
  }
  await store.close();
});

test('a store written before the Live family builds it on open', async () => {
  const engine = new MemoryEngine();
  const codec = new KeyCodec(PREFIX);
  let store = await MvccStore.open(engine, { prefix: PREFIX });
  const live = await writeHistory(store);
  await store.close();
  // As an older build left it: no Live family, no marker, no kept key count.
  await engine.deleteSpan(codec.familyStart(Family.Live), codec.familyEnd(Family.Live));
  await engine.write([
    { type: 'del', key: codec.metaKey(MetaName.LiveIndex) },
    { type: 'del', key: codec.metaKey(MetaName.KeyCount) },
  ]);
  assert.deepEqual(await liveFamily(engine), []);

  store = await MvccStore.open(engine, { prefix: PREFIX });
  assert.deepEqual(await liveFamily(engine), [...live].sort());
  assert.ok((await engine.get(codec.metaKey(MetaName.LiveIndex))) !== undefined, 'marker written');
  assert.equal(store.keyCount, live.size);
  const page = await store.range({ key: key(21), rangeEnd: Buffer.from('obj0'), limit: 2 });
  assert.equal(page.count, [...live].filter((k) => k >= key(21).toString()).length);
  // Writes after the build keep it exact.
  await store.put({ key: key(60), value: Buffer.from('x') }, store.currentRevision + 1);
  await store.deleteRange({ key: key(21) }, store.currentRevision + 1);
  live.add(key(60).toString());
  live.delete(key(21).toString());
  assert.deepEqual(await liveFamily(engine), [...live].sort());
  await store.close();
});

test('a page from a new start key counts the rest of its span without reading its values', async () => {
  const { engine, read } = readCountingEngine();
  const store = await MvccStore.open(engine, { prefix: PREFIX });
  const value = Buffer.alloc(1024, 7);
  await putKeys(store, 1000, value);
  for (const start of [137, 420, 777, 901]) {
    read.valueBytes = 0;
    const page = await store.range({ key: key(start), rangeEnd: Buffer.from('obj0'), limit: 10 });
    assert.equal(page.count, 1000 - start);
    assert.equal(page.kvs.length, 10);
    assert.equal(page.kvs[0]?.key.toString(), key(start).toString());
    // The page's 10 keys and the one that shows there are more; the count reads keys only.
    assert.ok(read.valueBytes <= 11 * (value.length + 64), `value bytes read: ${read.valueBytes}`);
  }
  await store.close();
});

test('a Kubernetes-style paged list at its first page\'s revision counts exactly while writes go on', async () => {
  const { engine, read } = readCountingEngine();
  const store = await MvccStore.open(engine, { prefix: PREFIX });
  const value = Buffer.alloc(512, 7);
  let rev = await putKeys(store, 300, value);
  const end = Buffer.from('obj0');
  const first = await store.range({ key: key(0), rangeEnd: end, limit: 50 });
  const pinned = first.revision;
  const liveAtPin = 300;
  let from = Buffer.concat([first.kvs[first.kvs.length - 1]!.key, Buffer.of(0)]);
  let seen = first.kvs.length;
  let more = first.more;
  let churn = 0;
  while (more) {
    // Between pages, creates and deletes move the current revision on.
    await store.put({ key: key(1000 + churn), value }, ++rev);
    await store.deleteRange({ key: key(299 - churn) }, ++rev);
    churn++;
    read.valueBytes = 0;
    const page = await store.range({ key: from, rangeEnd: end, limit: 50, revision: pinned });
    assert.equal(page.count, liveAtPin - seen, `count of the rest at revision ${pinned}`);
    // The page, the key after it and the newer versions stepped over (tombstones); not the rest of the span.
    assert.ok(read.valueBytes <= 60 * (value.length + 64), `value bytes read: ${read.valueBytes}`);
    seen += page.kvs.length;
    more = page.more;
    from = Buffer.concat([page.kvs[page.kvs.length - 1]!.key, Buffer.of(0)]);
  }
  assert.equal(seen, liveAtPin, 'the pages list the state at the pinned revision');
  await store.close();
});

test('the next page of a list counts only the keys between its start and a cached page\'s', async () => {
  const { engine, read } = readCountingEngine();
  const store = await MvccStore.open(engine, { prefix: PREFIX });
  await putKeys(store, 1000, Buffer.from('v'));
  const end = Buffer.from('obj0');
  assert.equal((await store.range({ key: key(500), rangeEnd: end, limit: 10 })).count, 500);
  // Below the cached start, then above it, then between two cached starts: every count exact,
  // each from the keys between the page's start and the nearest cached one.
  for (const [start, between] of [
    [490, 10],
    [520, 20],
    [505, 5],
  ] as const) {
    read.entries = 0;
    const page = await store.range({ key: key(start), rangeEnd: end, limit: 10 });
    assert.equal(page.count, 1000 - start, `count from ${start}`);
    assert.ok(read.entries <= between + 11 + 2, `entries read from ${start}: ${read.entries}`);
  }
  // Another end: no neighbour, a whole count.
  assert.equal((await store.range({ key: key(500), rangeEnd: key(900), limit: 10 })).count, 400);
  await store.close();
});

test('after a page, the next page of a list has its count without counting', async () => {
  const { engine, read } = readCountingEngine();
  const store = await MvccStore.open(engine, { prefix: PREFIX });
  let rev = await putKeys(store, 1000, Buffer.from('v'));
  await store.deleteRange({ key: key(40), rangeEnd: key(60) }, ++rev);
  const end = Buffer.from('obj0');
  const first = await store.range({ key: key(0), rangeEnd: end, limit: 100 });
  assert.equal(first.count, 980);
  let from = Buffer.concat([first.kvs[first.kvs.length - 1]!.key, Buffer.of(0)]);
  let seen = first.kvs.length;
  for (let page = 1; page < 5; page++) {
    read.entries = 0;
    const r = await store.range({ key: from, rangeEnd: end, limit: 100, revision: first.revision });
    assert.equal(r.count, 980 - seen, `count of page ${page}`);
    // The page's keys and one more; nothing counted.
    assert.ok(read.entries <= 101, `entries read for page ${page}: ${read.entries}`);
    seen += r.kvs.length;
    from = Buffer.concat([r.kvs[r.kvs.length - 1]!.key, Buffer.of(0)]);
  }
  // A sorted page is not cut in key order: the page after it is counted, exactly.
  const sorted = await store.range({ key: key(500), rangeEnd: end, limit: 10, sortTarget: 'MOD' });
  const after = Buffer.concat([sorted.kvs[sorted.kvs.length - 1]!.key, Buffer.of(0)]);
  const expected = (await store.range({ key: after, rangeEnd: end, countOnly: true, revision: store.currentRevision })).count;
  assert.equal((await store.range({ key: after, rangeEnd: end, limit: 5 })).count, expected);
  await store.close();
});

test('a list over keys with many versions reads one entry per key, at the current and at an older revision', async () => {
  const { engine, read } = readCountingEngine();
  const store = await MvccStore.open(engine, { prefix: PREFIX });
  const value = Buffer.alloc(256, 7);
  let rev = 0;
  for (let round = 0; round < 6; round++) rev = await putKeys(store, 200, value);
  const end = Buffer.from('obj0');
  const pinned = rev;
  for (const revision of [undefined, pinned]) {
    read.entries = 0;
    read.valueBytes = 0;
    const page = await store.range({ key: key(0), rangeEnd: end, limit: 50, ...(revision === undefined ? {} : { revision }) });
    assert.equal(page.kvs.length, 50);
    assert.equal(page.kvs[49]?.version, 6);
    assert.equal(page.count, 200);
    // The page and the key after it: no superseded version read.
    assert.ok(read.valueBytes <= 51 * (value.length + 64), `value bytes read: ${read.valueBytes}`);
  }
  // Writes after the pinned revision: the keys they touched are looked up at it, the rest read as they stand.
  await store.put({ key: key(3), value: Buffer.from('newer') }, ++rev);
  await store.put({ key: key(7), value: Buffer.from('newer') }, ++rev);
  const page = await store.range({ key: key(0), rangeEnd: end, limit: 10, revision: pinned });
  assert.deepEqual(page.kvs.map((kv) => kv.value.length), Array<number>(10).fill(value.length));
  assert.deepEqual(page.kvs.map((kv) => kv.modRevision <= pinned), Array<boolean>(10).fill(true));
  // Most keys changed since: past a few lookups the read walks versions instead, with the same result.
  for (let i = 0; i < 150; i++) await store.put({ key: key(i), value: Buffer.from('newer') }, ++rev);
  const old = await store.range({ key: key(0), rangeEnd: end, revision: pinned });
  assert.equal(old.kvs.length, 200);
  assert.ok(old.kvs.every((kv) => kv.value.length === value.length && kv.version === 6), 'every key as it stood at the pinned revision');
  await store.close();
});

/** Writes a history for older-revision reads: returns the revision to read at and what a read there must see. */
async function historyAroundPin(store: MvccStore): Promise<{ pinned: number; expected: Map<string, string> }> {
  let rev = store.currentRevision;
  for (let i = 0; i < 60; i++) await store.put({ key: key(i), value: Buffer.from(`a${i}`) }, ++rev);
  for (let i = 0; i < 60; i += 4) await store.put({ key: key(i), value: Buffer.from(`b${i}`) }, ++rev);
  await store.deleteRange({ key: key(50), rangeEnd: key(55) }, ++rev);
  const pinned = rev;
  const expected = new Map<string, string>();
  for (let i = 0; i < 60; i++) if (i < 50 || i >= 55) expected.set(key(i).toString(), i % 4 === 0 ? `b${i}` : `a${i}`);
  // After the pin: overwrites, deletes, re-creates and creates.
  for (let i = 0; i < 60; i += 3) await store.put({ key: key(i), value: Buffer.from(`c${i}`) }, ++rev);
  await store.deleteRange({ key: key(20), rangeEnd: key(30) }, ++rev);
  await store.put({ key: key(52), value: Buffer.from('again') }, ++rev);
  await store.put({ key: key(25), value: Buffer.from('again') }, ++rev);
  await store.put({ key: key(70), value: Buffer.from('new') }, ++rev);
  return { pinned, expected };
}

test('reads at an older revision see its state whether keys changed, went or came since; with or without the delete log', async () => {
  for (const recentDeletes of [undefined, 1, 0]) {
    const store = await MvccStore.open(new MemoryEngine(), { prefix: PREFIX, ...(recentDeletes === undefined ? {} : { recentDeletes }) });
    const { pinned, expected } = await historyAroundPin(store);
    const end = Buffer.from('obj0');
    const all = await store.range({ key: key(0), rangeEnd: end, revision: pinned });
    assert.deepEqual(new Map(all.kvs.map((kv) => [kv.key.toString(), kv.value.toString()])), expected, `recentDeletes ${String(recentDeletes)}`);
    assert.equal(all.count, expected.size);
    // Paged, as a Kubernetes list reads it.
    const seen: string[] = [];
    let from = key(0);
    for (;;) {
      const page = await store.range({ key: from, rangeEnd: end, limit: 7, revision: pinned });
      seen.push(...page.kvs.map((kv) => kv.key.toString()));
      if (!page.more) break;
      from = Buffer.concat([page.kvs[page.kvs.length - 1]!.key, Buffer.of(0)]);
    }
    assert.deepEqual(seen, [...expected.keys()]);
    // A delete inside a txn's read at the current revision, and a range after it in the same txn.
    const r = await store.txn(
      {
        success: [
          { type: 'deleteRange', request: { key: key(0), rangeEnd: key(10) } },
          { type: 'range', request: { key: key(0), rangeEnd: key(13) } },
        ],
      },
      store.currentRevision + 1,
    );
    const inner = r.responses[1];
    assert.ok(inner?.type === 'range');
    assert.deepEqual(
      inner.response.kvs.map((kv) => kv.key.toString()),
      [10, 11, 12].map((i) => key(i).toString()),
    );
    await store.close();
  }
});

test('a store whose Live family held keys only rebuilds it with each key\'s newest version', async () => {
  const engine = new MemoryEngine();
  const codec = new KeyCodec(PREFIX);
  let store = await MvccStore.open(engine, { prefix: PREFIX });
  const live = await writeHistory(store);
  const before = await store.range({ key: key(0), rangeEnd: Buffer.from('obj0') });
  await store.close();
  // As the previous build left it: empty Live values and its marker.
  const entries: { key: Buffer; value: Buffer }[] = [];
  for await (const e of engine.iterate({ gte: codec.familyStart(Family.Live), lt: codec.familyEnd(Family.Live) })) entries.push(e);
  await engine.write([
    ...entries.map((e) => ({ type: 'put' as const, key: e.key, value: Buffer.alloc(0) })),
    { type: 'del', key: codec.metaKey(MetaName.LiveIndex) },
    { type: 'put', key: codec.metaKey(MetaName.LiveKeysOnly), value: Buffer.alloc(0) },
  ]);
  store = await MvccStore.open(engine, { prefix: PREFIX });
  assert.deepEqual(await liveFamily(engine), [...live].sort());
  assert.equal(await engine.get(codec.metaKey(MetaName.LiveKeysOnly)), undefined, 'old marker removed');
  assert.deepEqual(await store.range({ key: key(0), rangeEnd: Buffer.from('obj0') }), before);
  await store.close();
});
