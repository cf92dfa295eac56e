/**
 * Differential randomized test: several groups share one LogStore, each with
 * a MemoryStorage model; a seeded PRNG drives appends (with conflicts and
 * gaps), hard states, snapshots (created and installed), compactions, reads
 * with random bounds and limits, flushes and reopens, and every answer must
 * match the model's. Reproduce a failure with KEYSPAN_SEED=<printed seed>.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Entry, Storage } from '../../../src/group/raft/index.js';
import { LogStore } from '../../../src/group/log-store/index.js';
import { type Engine, type EngineKind, MemoryEngine, openEngine } from '../../../src/storage/index.js';
import { Prng, testSeed } from '../../storage/prng.js';
import { type Harness, modelHarness, storeHarness } from './harness.js';
import { observe, outcome, plainEntry, removeDir, tempDir, voters } from './helpers.js';

/** Groups sharing the store in one run. */
const GROUPS = 4;
/** Random steps per run (a few thousand keeps it to seconds). */
const STEPS_MEMORY = 4000;
const STEPS_LEVELDB = 1500;
/** Largest entry payload drawn. */
const DATA_BYTES_MAX = 40;

interface Pair {
  readonly model: ReturnType<typeof modelHarness>;
  store: Harness;
}

function randomEntries(rng: Prng, start: number, count: number): Entry[] {
  let term = 1 + rng.int(8);
  const out: Entry[] = [];
  for (let i = 0; i < count; i++) {
    if (rng.chance(0.2)) term++;
    out.push({ index: start + i, term, type: rng.chance(0.1) ? 'confChange' : 'normal', data: rng.bytes(rng.int(DATA_BYTES_MAX + 1)) });
  }
  return out;
}

/** One random write, applied to both sides; returns the outcomes for comparison. */
function randomWrite(rng: Prng, pair: Pair): unknown[] {
  const m = pair.model.model;
  const first = m.firstIndex();
  const last = m.lastIndex();
  const both = (f: (h: Harness) => unknown): unknown[] => [outcome(() => f(pair.model)), outcome(() => f(pair.store))];
  const r = rng.int(100);
  if (r < 45) {
    // Mostly extend, sometimes overwrite a suffix, rarely leave a gap or go below the compaction point.
    const start = rng.chance(0.03) ? last + 2 : Math.max(1, last + 1 - (rng.chance(0.3) ? rng.int(last - first + 4) : 0));
    const ents = randomEntries(rng, start, 1 + rng.int(5));
    return both((h) => h.append(ents));
  }
  if (r < 60) {
    const hs = { term: rng.int(20), vote: rng.int(4), commit: rng.int(last + 2) };
    return both((h) => h.setHardState(hs));
  }
  if (r < 72) {
    // Negative indexes are INVALID_ARGUMENT in the store (MemoryStorage calls them compacted).
    const i = Math.max(0, first - 2 + rng.int(last - first + 4));
    return both((h) => h.compact(i));
  }
  if (r < 84) {
    // Not below the compaction point: MemoryStorage cannot look up that term (a host bug either way).
    const i = first - 1 + rng.int(last - first + 3);
    const cs = rng.chance(0.5) ? undefined : voters(1 + rng.int(3), 5);
    const data = rng.bytes(rng.int(8));
    return both((h) => h.createSnapshot(i, cs, data)).map((o) =>
      typeof o === 'object' && o !== null && 'ok' in o ? { ok: (o.ok as { meta: unknown }).meta } : o,
    );
  }
  const cur = m.snapshot().meta.index;
  // Raft never installs a snapshot at index 0 (its data would not survive a restart: index 0 means "none").
  const at = Math.max(1, cur - 1 + rng.int(last - cur + 6));
  const snap = { meta: { index: at, term: 1 + rng.int(10), confState: voters(1 + rng.int(4)) }, data: rng.bytes(4) };
  return both((h) => h.applySnapshot(snap));
}

/** One random read from both sides. */
function randomRead(rng: Prng, a: Storage, b: Storage): [unknown, unknown] {
  const first = a.firstIndex();
  const last = a.lastIndex();
  const lo = first - 2 + rng.int(last - first + 4);
  const hi = lo - 1 + rng.int(last - lo + 4);
  const max = rng.pick([0, 1, 20, 40, 60, 100, 1000, Infinity]);
  const i = first - 3 + rng.int(last - first + 6);
  const read = (s: Storage): unknown => ({
    entries: outcome(() => s.entries(lo, hi, max).map(plainEntry)),
    term: outcome(() => s.term(i)),
    first: s.firstIndex(),
    last: s.lastIndex(),
    init: s.initialState(),
    snap: outcome(() => s.snapshot().meta),
  });
  return [read(a), read(b)];
}

async function run(kind: EngineKind, steps: number, seed: number): Promise<void> {
  const rng = new Prng(seed);
  const dir = kind === 'memory' ? undefined : await tempDir(kind);
  const open = (): Promise<Engine> => (dir === undefined ? Promise.resolve(new MemoryEngine()) : openEngine({ kind, path: dir }));
  let engine = await open();
  let store = await LogStore.open(engine, { gcKeysPerFlushMax: 1 + rng.int(16) });
  const pairs: Pair[] = [];
  for (let g = 1; g <= GROUPS; g++) {
    const cs = voters(1, 2, 3);
    store.createGroup(g, { confState: cs });
    pairs.push({ model: modelHarness(cs), store: storeHarness(store, g) });
  }
  try {
    for (let step = 0; step < steps; step++) {
      const g = rng.int(GROUPS);
      const pair = pairs[g]!;
      const where = `seed ${seed}, step ${step}, group ${g + 1}`;
      const [expected, actual] = randomWrite(rng, pair);
      assert.deepEqual(actual, expected, `write outcome (${where})`);
      const [ra, rb] = randomRead(rng, pair.model.storage, pair.store.storage);
      assert.deepEqual(rb, ra, `read (${where})`);
      if (rng.chance(0.2)) await store.flush({ sync: rng.chance(0.5) });
      if (rng.chance(0.01)) {
        await store.close();
        if (dir !== undefined) {
          await engine.close();
          engine = await open();
        }
        store = await LogStore.open(engine, { gcKeysPerFlushMax: 1 + rng.int(16) });
        for (const [i, p] of pairs.entries()) {
          p.store = storeHarness(store, i + 1);
          const modelSnap = p.model.model.snapshot();
          store.group(i + 1).setSnapshotSource((meta) => (meta.index === modelSnap.meta.index ? modelSnap : undefined));
          assert.deepEqual(observe(p.store.storage), observe(p.model.storage), `after reopen (seed ${seed}, step ${step}, group ${i + 1})`);
        }
      }
    }
    await store.close();
  } finally {
    await engine.close();
    if (dir !== undefined) await removeDir(dir);
  }
}

describe('LogStore vs MemoryStorage, randomized', () => {
  const seed = testSeed();
  test(`memory engine (seed ${seed})`, (t) => {
    t.diagnostic(`seed ${seed} (replay with KEYSPAN_SEED=${seed})`);
    return run('memory', STEPS_MEMORY, seed);
  });
  test(`leveldb engine (seed ${seed})`, (t) => {
    t.diagnostic(`seed ${seed} (replay with KEYSPAN_SEED=${seed})`);
    return run('leveldb', STEPS_LEVELDB, seed);
  });
});
