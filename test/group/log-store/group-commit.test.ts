/**
 * Group commit: the Readys of many groups staged in one turn go to the
 * engine as ONE batch with ONE fsync; concurrent flushes are serialized and
 * coalesced; a failed write fails the store.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LogStore } from '../../../src/group/log-store/index.js';
import { MemoryEngine, openEngine } from '../../../src/storage/index.js';
import { CountingEngine, ent, removeDir, tempDir, voters } from './helpers.js';

/** Throughput measurement: groups per flush, flushes, payload bytes per entry. */
const THROUGHPUT_GROUPS = 500;
const THROUGHPUT_FLUSHES = 20;
const THROUGHPUT_ENTRY_BYTES = 128;

const CS = voters(1, 2, 3);

async function storeWithGroups(n: number): Promise<{ store: LogStore; engine: CountingEngine }> {
  const engine = new CountingEngine(new MemoryEngine());
  const store = await LogStore.open(engine);
  for (let g = 1; g <= n; g++) store.createGroup(g, { confState: CS });
  await store.flush();
  engine.writes.length = 0;
  return { store, engine };
}

describe('LogStore group commit', () => {
  test('one flush writes every staged group in one synced batch', async () => {
    const { store, engine } = await storeWithGroups(200);
    const before = { ...store.counters };
    for (let g = 1; g <= 200; g++) {
      store.stage(g, { entries: [ent(1, 1), ent(2, 1)], hardState: { term: 1, vote: 1, commit: 1 } });
    }
    assert.equal(store.pendingOps, 200 * 3);
    await store.flush({ sync: true });
    assert.deepEqual(engine.writes, [{ ops: 600, sync: true }]);
    assert.equal(store.counters.batchesFlushed - before.batchesFlushed, 1);
    assert.equal(store.counters.fsyncs - before.fsyncs, 1);
    assert.equal(store.counters.entriesWritten - before.entriesWritten, 400);
    assert.ok(store.counters.bytesWritten - before.bytesWritten > 400 * 27);
    assert.equal(store.pendingOps, 0);
    assert.equal(store.pendingBytes, 0);
  });

  test('concurrent flushes: one in flight, later calls share the next batch', async () => {
    const { store, engine } = await storeWithGroups(3);
    store.stage(1, { entries: [ent(1, 1)] });
    const first = store.flush();
    // Staged while the first write is in flight: these go in the second batch.
    store.stage(2, { entries: [ent(1, 1)] });
    const second = store.flush({ sync: false });
    store.stage(3, { entries: [ent(1, 1)] });
    const third = store.flush({ sync: true });
    assert.equal(second, third, 'calls made during a flight share one promise');
    await Promise.all([first, second, third]);
    assert.deepEqual(engine.writes, [
      { ops: 1, sync: true },
      { ops: 2, sync: true }, // any caller asking for sync makes the shared flush synced
    ]);
  });

  test('a flush with nothing staged writes nothing, unless earlier writes are unsynced', async () => {
    const { store, engine } = await storeWithGroups(1);
    await store.flush();
    assert.deepEqual(engine.writes, []);
    store.stage(1, { entries: [ent(1, 1)] });
    await store.flush({ sync: false });
    await store.flush({ sync: true });
    assert.deepEqual(engine.writes, [
      { ops: 1, sync: false },
      { ops: 1, sync: true }, // a synced marker write forces the unsynced one to disk
    ]);
    await store.flush({ sync: true });
    assert.equal(engine.writes.length, 2);
  });

  test('stage refuses BATCH_FULL past the byte cap unless the batch is empty', async () => {
    const engine = new MemoryEngine();
    const store = await LogStore.open(engine, { batchBytesMax: 4096 });
    store.createGroup(1, { confState: CS });
    await store.flush();
    store.stage(1, { entries: [ent(1, 1, 8000)] }); // alone in the batch: accepted
    assert.throws(() => store.stage(1, { entries: [ent(2, 1, 100)] }), { code: 'BATCH_FULL' });
    assert.equal(store.group(1).lastIndex(), 1, 'a refused stage changes nothing');
    await store.flush();
    store.stage(1, { entries: [ent(2, 1, 100)] });
    await store.flush();
    assert.equal(store.group(1).lastIndex(), 2);
  });

  test('truncation deletes entry keys in bounded chunks across flushes', async () => {
    const inner = new MemoryEngine();
    const engine = new CountingEngine(inner);
    const store = await LogStore.open(engine, { gcKeysPerFlushMax: 10 });
    store.createGroup(1, { confState: CS });
    const ents = Array.from({ length: 35 }, (_, i) => ent(i + 1, 1));
    store.stage(1, { entries: ents });
    await store.flush();
    store.truncate(1, 30, 1);
    assert.equal(store.garbageKeys, 30);
    engine.writes.length = 0;
    for (let i = 0; i < 3; i++) await store.flush();
    assert.deepEqual(engine.writes.map((w) => w.ops), [11, 10, 10]); // first batch: truncated state + 10 deletes
    assert.equal(store.garbageKeys, 0);
    assert.equal(store.counters.garbageKeysDeleted, 30);
    let left = 0;
    for await (const _ of inner.iterate({ gte: Buffer.from([1, 0x72]), lt: Buffer.from([1, 0x73]) })) left++;
    assert.equal(left, 5);
  });

  test('an engine write failure rejects the flush and fails the store', async () => {
    const { store, engine } = await storeWithGroups(1);
    store.stage(1, { entries: [ent(1, 1)] });
    engine.failNextWrite = new Error('disk on fire');
    await assert.rejects(store.flush(), (e: Error & { code?: string; cause?: unknown }) => {
      assert.equal(e.code, 'FAILED');
      assert.equal((e.cause as Error).message, 'disk on fire');
      return true;
    });
    assert.equal(store.failed, true);
    assert.equal(store.counters.flushFailures, 1);
    assert.throws(() => store.stage(1, { entries: [ent(2, 1)] }), { code: 'FAILED' });
    await assert.rejects(store.flush(), { code: 'FAILED' });
  });

  test('close() flushes what is staged and refuses further use', async () => {
    const { store, engine } = await storeWithGroups(1);
    store.stage(1, { entries: [ent(1, 1)] });
    await store.close();
    assert.deepEqual(engine.writes, [{ ops: 1, sync: true }]);
    assert.throws(() => store.stage(1, { entries: [ent(2, 1)] }), { code: 'CLOSED' });
    await assert.rejects(store.flush(), { code: 'CLOSED' });
  });

  test(`flush throughput on leveldb: ${THROUGHPUT_GROUPS} groups per synced flush (reported)`, async (t) => {
    const dir = await tempDir('throughput');
    const engine = await openEngine({ kind: 'leveldb', path: dir });
    try {
      const store = await LogStore.open(engine);
      for (let g = 1; g <= THROUGHPUT_GROUPS; g++) store.createGroup(g, { confState: CS });
      await store.flush();
      const started = performance.now();
      for (let f = 1; f <= THROUGHPUT_FLUSHES; f++) {
        for (let g = 1; g <= THROUGHPUT_GROUPS; g++) {
          store.stage(g, { entries: [ent(f, 1, THROUGHPUT_ENTRY_BYTES)], hardState: { term: 1, vote: 1, commit: f } });
        }
        await store.flush({ sync: true });
      }
      const ms = performance.now() - started;
      const entries = THROUGHPUT_GROUPS * THROUGHPUT_FLUSHES;
      t.diagnostic(
        `${THROUGHPUT_FLUSHES} synced flushes of ${THROUGHPUT_GROUPS} groups: ${ms.toFixed(0)} ms, ` +
          `${(ms / THROUGHPUT_FLUSHES).toFixed(1)} ms/flush, ${Math.round((entries / ms) * 1000)} entries/s`,
      );
      // One entry per group per flush; a lone synced flush of one group for the latency floor.
      const one = performance.now();
      store.stage(1, { entries: [ent(THROUGHPUT_FLUSHES + 1, 1, THROUGHPUT_ENTRY_BYTES)] });
      await store.flush({ sync: true });
      t.diagnostic(`one group, one entry, synced: ${(performance.now() - one).toFixed(2)} ms`);
      assert.equal(store.group(THROUGHPUT_GROUPS).lastIndex(), THROUGHPUT_FLUSHES);
      await store.close();
    } finally {
      await engine.close();
      await removeDir(dir);
    }
  });
});
