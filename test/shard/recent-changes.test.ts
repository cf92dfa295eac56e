/**
 * The change stream held in memory (recent-changes.ts): whole revisions,
 * oldest forgotten first; pages read from it equal the engine's, page
 * bounds, prev_kv and compaction included; and a watcher that keeps up reads
 * the revisions just written without an engine read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MvccStore, type MvccStoreOptions } from '../../src/shard/mvcc/index.js';
import { RecentChanges } from '../../src/shard/mvcc/recent-changes.js';
import { MemoryEngine } from '../../src/storage/index.js';

const PREFIX = Buffer.from('p');
const key = (i: number): Buffer => Buffer.from(`k/${String(i).padStart(3, '0')}`);

test('holds whole revisions within its bounds and unlinks a forgotten previous version', () => {
  const recent = new RecentChanges(4, 1 << 20, 10);
  const v = (k: number, created = false) => ({ key: key(k), record: Buffer.from([1]), created });
  recent.add(11, [v(1, true), v(2, true)]);
  recent.add(12, [v(1)]);
  assert.equal(recent.holdsFrom(11), true);
  assert.equal(recent.holdsFrom(10), false);
  const [second] = recent.between(12, 12, () => true);
  assert.equal(second?.prev?.revision, 11, 'the previous version is held');
  // Over four versions: revision 11 goes whole (both of its versions), 12's link to it with it.
  recent.add(13, [v(2), v(3, true)]);
  assert.equal(recent.holdsFrom(11), false);
  assert.equal(recent.holdsFrom(12), true);
  assert.deepEqual(recent.between(0, 99, () => true).map((c) => c.revision), [12, 13, 13]);
  assert.equal(second?.prev, undefined, 'not held any more: read from the engine');
  assert.equal(recent.between(13, 13, (k) => k.equals(key(3)))[0]?.prev, null, 'a created key has no previous version');
  // A write larger than the bound holds nothing and forgets everything before it.
  recent.add(14, [v(4), v(5), v(6), v(7), v(8)]);
  assert.equal(recent.holdsFrom(14), false);
  assert.equal(recent.holdsFrom(15), true);
  assert.deepEqual(recent.between(0, 99, () => true), []);
});

/** The same history on two stores: one reads the change stream from memory, one from the engine only. */
async function twoStores(extra: Partial<MvccStoreOptions> = {}): Promise<{ held: MvccStore; engineOnly: MvccStore; engine: MemoryEngine }> {
  const engine = new MemoryEngine();
  const held = await MvccStore.open(engine, { prefix: PREFIX, ...extra });
  // The first change read starts the holding.
  assert.deepEqual((await held.changes({ key: key(0), startRevision: 2 })).events, []);
  const engineOnly = await MvccStore.open(new MemoryEngine(), { prefix: PREFIX, recentChanges: { events: 0, bytes: 0 } });
  let rev = 1;
  for (const store of [held, engineOnly]) {
    rev = 1;
    for (let i = 0; i < 30; i++) await store.put({ key: key(i), value: Buffer.from(`a${i}`) }, ++rev);
    for (let i = 0; i < 30; i += 2) await store.put({ key: key(i), value: Buffer.from(`bb${i}`) }, ++rev);
    await store.deleteRange({ key: key(5), rangeEnd: key(9) }, ++rev);
    await store.txn(
      {
        success: [
          { type: 'put', request: { key: key(20), value: Buffer.from('txn') } },
          { type: 'put', request: { key: key(3), value: Buffer.from('txn') } },
          { type: 'deleteRange', request: { key: key(10) } },
          { type: 'put', request: { key: key(6), value: Buffer.from('back') } },
        ],
      },
      ++rev,
    );
    for (let i = 0; i < 30; i += 3) await store.put({ key: key(i), value: Buffer.from(`ccc${i}`) }, (rev += 2));
    await store.compact(40, { physical: true });
  }
  return { held, engineOnly, engine };
}

test('pages read from memory equal the engine\'s: bounds, prev_kv, single keys and the compacted revision', async () => {
  const { held, engineOnly } = await twoStores();
  assert.equal(held.currentRevision, engineOnly.currentRevision);
  const spans = [{ key: key(0), rangeEnd: key(99) }, { key: key(4), rangeEnd: key(12) }, { key: key(6) }, { key: key(20) }];
  for (const span of spans) {
    for (const startRevision of [40, 41, 47, 55, held.currentRevision]) {
      for (const prevKv of [false, true]) {
        for (const bounds of [{}, { maxEvents: 1 }, { maxEvents: 3 }, { maxBytes: 5 }, { maxEvents: 2, maxBytes: 9 }]) {
          const req = { ...span, startRevision, prevKv, ...bounds };
          assert.deepEqual(await held.changes(req), await engineOnly.changes(req), JSON.stringify({ ...req, key: req.key.toString() }));
        }
      }
    }
  }
  await held.close();
  await engineOnly.close();
});

test('a watcher that keeps up reads the revisions just written without an engine read', async () => {
  const engine = new MemoryEngine();
  const store = await MvccStore.open(engine, { prefix: PREFIX });
  let reads = 0;
  const snapshot = engine.snapshot.bind(engine);
  engine.snapshot = () => {
    const snap = snapshot();
    const get = snap.get.bind(snap);
    const iterate = snap.iterate.bind(snap);
    snap.get = (k) => {
      reads++;
      return get(k);
    };
    snap.iterate = (o) => {
      reads++;
      return iterate(o);
    };
    return snap;
  };
  let rev = 1;
  // A store nobody has read changes from holds none: the first read goes to the engine and starts the holding.
  await store.put({ key: key(99), value: Buffer.from('first') }, ++rev);
  assert.equal((await store.changes({ key: key(0), rangeEnd: key(100), startRevision: 2 })).events.length, 1);
  assert.ok(reads > 0, 'the first read is the engine\'s');
  reads = 0;
  for (let i = 0; i < 20; i++) await store.put({ key: key(i), value: Buffer.from('v') }, ++rev);
  for (let round = 0; round < 5; round++) {
    const from = store.currentRevision + 1;
    await store.put({ key: key(round), value: Buffer.from(`r${round}`) }, ++rev);
    await store.deleteRange({ key: key(10 + round) }, ++rev);
    const page = await store.changes({ key: key(0), rangeEnd: key(99), startRevision: from, prevKv: true });
    assert.deepEqual(
      page.events.map((e) => [e.type, e.kv.key.toString(), e.prevKv?.value.toString()]),
      [
        ['PUT', key(round).toString(), 'v'],
        ['DELETE', key(10 + round).toString(), 'v'],
      ],
    );
  }
  assert.equal(reads, 0, 'no engine read');
  // Reopened, the store holds nothing before: a reader from an older revision goes to the engine.
  await store.close();
  const reopened = await MvccStore.open(engine, { prefix: PREFIX });
  await reopened.changes({ key: key(0), startRevision: reopened.currentRevision + 1 });
  const old = await reopened.changes({ key: key(0), rangeEnd: key(99), startRevision: 3, maxEvents: 5 });
  assert.equal(old.events.length, 5);
  assert.ok(reads > 0, 'read from the engine');
  await reopened.close();
});

test('a store reopened holds nothing older than its reopening', async () => {
  const { held, engine } = await twoStores();
  const before = await held.changes({ key: key(0), rangeEnd: key(99), startRevision: 45 });
  await held.close();
  const reopened = await MvccStore.open(engine, { prefix: PREFIX } as MvccStoreOptions);
  assert.deepEqual(await reopened.changes({ key: key(0), rangeEnd: key(99), startRevision: 45 }), before);
  await reopened.close();
});
