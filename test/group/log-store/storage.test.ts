/**
 * GroupLog answers exactly as MemoryStorage on a common scenario set: every
 * scenario runs against both, and every answer (value or error class) must
 * match; then the store is flushed and reopened and must still match.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type ConfState, type Entry, type Snapshot } from '../../../src/group/raft/index.js';
import { LogStore } from '../../../src/group/log-store/index.js';
import { MemoryEngine } from '../../../src/storage/index.js';
import { HARNESS_GROUP, type Harness, freshStore, modelHarness, storeHarness } from './harness.js';
import { ent, observe, outcome, plainEntry, voters } from './helpers.js';

const CS = voters(1, 2, 3);

function snap(index: number, term: number, cs: ConfState = CS, data = 'snap'): Snapshot {
  return { meta: { index, term, confState: cs }, data: Buffer.from(data) };
}

/** Log [3/3 (snapshot point), 4/4, 5/5, 6/6], each entry 4 bytes of data (20 counted bytes). */
function setup(h: Harness): void {
  h.applySnapshot(snap(3, 3));
  h.append([ent(4, 4), ent(5, 5), ent(6, 6)]);
}

type Scenario = (h: Harness) => unknown[];

const plain = (es: Entry[]): unknown => es.map(plainEntry);

const scenarios: Record<string, Scenario> = {
  'a new group answers the empty log and the initial conf state': (h) => [observe(h.storage)],
  'term() at the boundaries': (h) => {
    setup(h);
    return [2, 3, 4, 6, 7].map((i) => outcome(() => h.storage.term(i)));
  },
  'entries() with compacted, unavailable and maxBytes limits': (h) => {
    setup(h);
    const calls: [number, number, number][] = [
      [2, 6, Infinity], [3, 4, Infinity], [4, 5, Infinity], [4, 6, Infinity], [4, 7, Infinity],
      [4, 7, 0], [4, 7, 39], [4, 7, 40], [4, 7, 59], [4, 7, 60], [4, 8, Infinity], [7, 7, Infinity], [6, 5, Infinity],
    ];
    return calls.map(([lo, hi, max]) => outcome(() => plain(h.storage.entries(lo, hi, max))));
  },
  'compact() below, at and above the bounds': (h) => {
    setup(h);
    const out: unknown[] = [];
    for (const i of [2, 3, 4, 4, 7, 6]) {
      out.push(outcome(() => h.compact(i)));
      out.push(observe(h.storage));
    }
    return out;
  },
  'createSnapshot() records metadata and refuses stale or future indexes': (h) => {
    setup(h);
    return [
      outcome(() => h.createSnapshot(5, voters(1, 2), Buffer.from('five'))),
      outcome(() => h.createSnapshot(4, undefined, Buffer.from('four'))),
      outcome(() => h.createSnapshot(5, undefined, Buffer.from('again'))),
      outcome(() => h.createSnapshot(9, undefined, Buffer.from('nine'))),
      observe(h.storage),
      outcome(() => h.createSnapshot(6, undefined, Buffer.from('six'))),
      outcome(() => h.compact(6)),
      observe(h.storage),
    ];
  },
  'append() of the same entries changes nothing': (h) => {
    setup(h);
    h.append([ent(4, 4), ent(5, 5), ent(6, 6)]);
    return [observe(h.storage)];
  },
  'append() truncates a conflicting suffix': (h) => {
    setup(h);
    h.append([ent(5, 6, 9), ent(6, 6, 9)]);
    const a = observe(h.storage);
    h.append([ent(5, 7)]);
    return [a, observe(h.storage)];
  },
  'append() extends the log': (h) => {
    setup(h);
    h.append([ent(4, 4), ent(5, 5), ent(6, 6), ent(7, 6)]);
    h.append([ent(8, 6)]);
    return [observe(h.storage)];
  },
  'append() ignores entries at or below the snapshot point': (h) => {
    setup(h);
    h.append([ent(2, 3), ent(3, 3), ent(4, 5)]);
    const a = observe(h.storage);
    h.append([ent(1, 1), ent(2, 2)]);
    return [a, observe(h.storage)];
  },
  'append() with a gap is an invariant error': (h) => {
    setup(h);
    return [outcome(() => h.append([ent(8, 6)])), observe(h.storage)];
  },
  'applySnapshot() replaces the log and refuses older snapshots': (h) => {
    setup(h);
    h.setHardState({ term: 6, vote: 2, commit: 5 });
    const out: unknown[] = [outcome(() => h.applySnapshot(snap(2, 2)))];
    out.push(outcome(() => h.applySnapshot(snap(5, 5, voters(1, 2, 4), 'five'))), observe(h.storage));
    out.push(outcome(() => h.applySnapshot(snap(10, 8, CS, 'ten'))), observe(h.storage));
    h.append([ent(11, 8), ent(12, 8)]);
    out.push(observe(h.storage));
    return out;
  },
  'applySnapshot() above the log and then appends reuse old positions': (h) => {
    h.append([ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2)]);
    h.compact(2);
    h.applySnapshot(snap(3, 2));
    h.append([ent(4, 3), ent(5, 3)]);
    return [observe(h.storage)];
  },
  'hard state round-trips through initialState()': (h) => {
    h.setHardState({ term: 3, vote: 2, commit: 0 });
    h.append([ent(1, 3)]);
    h.setHardState({ term: 3, vote: 2, commit: 1 });
    return [h.storage.initialState()];
  },
};

async function runBoth(name: string, scenario: Scenario): Promise<void> {
  const model = modelHarness(CS);
  const engine = new MemoryEngine();
  const store = await freshStore(CS, engine);
  const expected = scenario(model);
  const actual = scenario(storeHarness(store));
  assert.deepEqual(actual, expected, name);
  // The same state must come back from the engine.
  await store.close();
  const reopened = await LogStore.open(engine);
  const log = reopened.group(HARNESS_GROUP);
  const modelSnap = model.model.snapshot();
  log.setSnapshotSource((meta) => (meta.index === modelSnap.meta.index ? modelSnap : undefined));
  assert.deepEqual(observe(log), observe(model.storage), `${name} (after reopen)`);
}

describe('GroupLog matches MemoryStorage', () => {
  for (const [name, scenario] of Object.entries(scenarios)) test(name, () => runBoth(name, scenario));

  test('a few answers spelled out (so both cannot be wrong the same way)', async () => {
    const store = await freshStore(CS);
    const h = storeHarness(store);
    setup(h);
    const log = store.group(HARNESS_GROUP);
    assert.equal(log.firstIndex(), 4);
    assert.equal(log.lastIndex(), 6);
    assert.equal(log.term(3), 3);
    assert.throws(() => log.term(2), { name: 'StorageCompactedError' });
    assert.throws(() => log.term(7), { name: 'StorageUnavailableError' });
    assert.throws(() => log.entries(3, 5, Infinity), { name: 'StorageCompactedError' });
    assert.throws(() => log.entries(4, 8, Infinity), { name: 'StorageUnavailableError' });
    assert.deepEqual(log.entries(4, 7, 40).map((e) => e.index), [4, 5]);
    assert.deepEqual(log.entries(4, 7, 0).map((e) => e.index), [4]);
    assert.equal(log.retainedEntries, 3);
    assert.equal(log.retainedBytes, 60);
    assert.deepEqual(log.initialState().hardState, { term: 0, vote: 0, commit: 3 });
    await store.close();
  });

  test('snapshot() after a restart comes from the source, else is temporarily unavailable', async () => {
    const engine = new MemoryEngine();
    const store = await freshStore(CS, engine);
    const h = storeHarness(store);
    h.append([ent(1, 1), ent(2, 1)]);
    const taken = h.createSnapshot(2, undefined, Buffer.from('state'));
    assert.equal(store.group(HARNESS_GROUP).snapshot(), taken);
    await store.close();
    const log = (await LogStore.open(engine)).group(HARNESS_GROUP);
    assert.throws(() => log.snapshot(), { name: 'SnapshotTemporarilyUnavailableError' });
    log.setSnapshotSource(() => undefined);
    assert.throws(() => log.snapshot(), { name: 'SnapshotTemporarilyUnavailableError' });
    log.setSnapshotSource((meta) => ({ meta, data: Buffer.from('rebuilt') }));
    assert.deepEqual(log.snapshot().meta, { index: 2, term: 1, confState: CS });
    assert.equal(Buffer.from(log.snapshot().data).toString(), 'rebuilt');
  });

  test('createSnapshot() without data keeps only metadata and asks the source', async () => {
    const store = await freshStore(CS);
    store.stage(HARNESS_GROUP, { entries: [ent(1, 1)] });
    store.createSnapshot(HARNESS_GROUP, 1, undefined);
    const log = store.group(HARNESS_GROUP);
    assert.throws(() => log.snapshot(), { name: 'SnapshotTemporarilyUnavailableError' });
    log.setSnapshotSource((meta) => ({ meta, data: Buffer.from('x') }));
    assert.equal(log.snapshot().meta.index, 1);
    await store.close();
  });

  test('truncate() checks the term and rejects invalid input without changing anything', async () => {
    const store = await freshStore(CS);
    store.stage(HARNESS_GROUP, { entries: [ent(1, 1), ent(2, 2)] });
    assert.throws(() => store.truncate(HARNESS_GROUP, 2, 1), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => store.stage(HARNESS_GROUP, { entries: [ent(3, 2), ent(5, 2)] }), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => store.stage(HARNESS_GROUP, { hardState: { term: 2 ** 53, vote: 0, commit: 0 } }), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => store.stage(HARNESS_GROUP, { entries: [ent(3, 2)], snapshot: snap(9, 2) , hardState: { term: -1, vote: 0, commit: 0 } }), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => store.stage(99, { entries: [] }), { code: 'GROUP_NOT_FOUND' });
    const log = store.group(HARNESS_GROUP);
    assert.deepEqual([log.firstIndex(), log.lastIndex()], [1, 2]);
    assert.equal(store.pendingOps, 4 + 2);
    store.truncate(HARNESS_GROUP, 2, 2);
    assert.deepEqual([log.firstIndex(), log.lastIndex(), log.term(2)], [3, 2, 2]);
    await store.close();
  });
});
