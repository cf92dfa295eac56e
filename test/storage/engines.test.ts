/**
 * Runs the conformance suite unchanged against every engine, then a seeded
 * randomized differential test of all engines against the sorted-array model.
 * Reproduce a failure with KEYSPAN_SEED=<printed seed>.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { describe, test } from 'node:test';
import {
  type BatchOp,
  type Engine,
  type EngineKind,
  type EngineSnapshot,
  EngineError,
  type IterateOptions,
  engineKinds,
  openEngine,
} from '../../src/storage/index.js';
import { type EngineHarness, collect, defineConformanceSuite, expected, rejectsWith, tempDir } from './conformance.js';
import { Model } from './model.js';
import { Prng, testSeed } from './prng.js';

/** Small WAL segments and checkpoints, so the suites roll segments over and checkpoint often. */
const walOptions = { segmentBytes: 16 * 1024, checkpointBytesMin: 64 * 1024 };

function harnessFor(kind: EngineKind): EngineHarness {
  return {
    kind,
    durable: kind !== 'memory',
    open: (dir) => openEngine({ kind, path: dir, wal: walOptions }),
    // The durable engines count their open native scans; memory has none.
    openScans: (engine) => ('openScanCount' in engine ? (engine as { openScanCount: number }).openScanCount : 0),
  };
}

for (const kind of engineKinds) defineConformanceSuite(harnessFor(kind));

describe('openEngine()', () => {
  test('rejects a durable kind without a path, and an unknown kind', async () => {
    await rejectsWith(openEngine({ kind: 'leveldb' }), 'INVALID_ARGUMENT');
    await rejectsWith(openEngine({ kind: 'rocksdb', path: '' }), 'INVALID_ARGUMENT');
    await rejectsWith(openEngine({ kind: 'btrfs' as EngineKind }), 'INVALID_ARGUMENT');
  });

  test('opens engines of several kinds side by side in one process', async () => {
    const dirs = await Promise.all(engineKinds.map((kind) => tempDir(kind)));
    const engines = await Promise.all(engineKinds.map((kind, i) => openEngine({ kind, path: dirs[i]!, wal: walOptions })));
    try {
      assert.deepEqual(engines.map((e) => e.kind), [...engineKinds]);
      await Promise.all(engines.map((e, i) => e.write([{ type: 'put', key: Buffer.from('who'), value: Buffer.from(engineKinds[i]!) }])));
      for (const [i, e] of engines.entries()) assert.equal((await e.get(Buffer.from('who')))?.toString(), engineKinds[i]);
    } finally {
      await Promise.all(engines.map((e) => e.destroy()));
      await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
    }
  });
});

/** Steps of the differential run; a few thousand keeps it to seconds. */
const differentialSteps = 3000;
/** Snapshots held at once by the differential run. */
const differentialSnapshotsMax = 4;
/** Bytes keys are drawn from: the edges of the byte range plus a few ordinary ones. */
const keyAlphabet = [0x00, 0x01, 0x61, 0x62, 0x7f, 0x80, 0xfe, 0xff];

function randomKey(prng: Prng): Buffer {
  const out = Buffer.alloc(1 + prng.int(4));
  for (let i = 0; i < out.length; i++) out[i] = prng.pick(keyAlphabet);
  return out;
}

/** A bound that may be the empty key, which scans must treat as open or empty. */
function randomBound(prng: Prng): Buffer {
  return prng.chance(0.05) ? Buffer.alloc(0) : randomKey(prng);
}

function randomScan(prng: Prng): IterateOptions {
  const options: { -readonly [K in keyof IterateOptions]: IterateOptions[K] } = {};
  if (prng.chance(0.5)) options[prng.chance(0.5) ? 'gte' : 'gt'] = randomBound(prng);
  if (prng.chance(0.5)) options[prng.chance(0.5) ? 'lte' : 'lt'] = randomBound(prng);
  if (prng.chance(0.05)) options.gt = randomBound(prng);
  if (prng.chance(0.5)) options.reverse = true;
  if (prng.chance(0.4)) options.limit = prng.pick([0, 1, 2, 5, 50, -1]);
  return options;
}

function randomOp(prng: Prng): BatchOp {
  return prng.chance(0.7)
    ? { type: 'put', key: randomKey(prng), value: prng.bytes(prng.int(12)) }
    : { type: 'del', key: randomKey(prng) };
}

/** A model and the matching snapshot of each engine. */
interface HeldSnapshot {
  readonly model: Model;
  readonly views: EngineSnapshot[];
}

describe('differential: all engines against the model', () => {
  test('a seeded random workload gives identical results everywhere', { timeout: 120_000 }, async (t) => {
    const seed = testSeed();
    t.diagnostic(`KEYSPAN_SEED=${seed}`);
    console.log(`storage differential test: KEYSPAN_SEED=${seed}`);
    const prng = new Prng(seed);
    const dirs = await Promise.all(engineKinds.map((kind) => tempDir(kind)));
    const engines: Engine[] = await Promise.all(engineKinds.map((kind, i) => openEngine({ kind, path: dirs[i]!, wal: walOptions })));
    const model = new Model();
    const held: HeldSnapshot[] = [];
    let step = 0;
    const where = (what: string, kind?: EngineKind): string =>
      `seed ${seed}, step ${step}, ${what}${kind === undefined ? '' : ` on ${kind}`}`;
    try {
      for (step = 0; step < differentialSteps; step++) {
        const roll = prng.int(100);
        if (roll < 25) {
          const op = randomOp(prng);
          await Promise.all(engines.map((e) => e.write([op])));
          model.write([op]);
        } else if (roll < 40) {
          const ops = Array.from({ length: 1 + prng.int(8) }, () => randomOp(prng));
          const sync = prng.chance(0.05);
          if (prng.chance(0.1)) {
            // One bad op spoils the batch everywhere, and nothing changes.
            ops.splice(prng.int(ops.length), 0, { type: 'put', key: 'oops' } as unknown as BatchOp);
            for (const [i, e] of engines.entries()) await rejectsWith(e.write(ops, { sync }), 'INVALID_ARGUMENT').catch((err: unknown) => assert.fail(`${where('invalid batch', engineKinds[i])}: ${String(err)}`));
          } else {
            await Promise.all(engines.map((e) => e.write(ops, { sync })));
            model.write(ops);
          }
        } else if (roll < 43) {
          const [a, b] = [randomBound(prng), randomBound(prng)];
          await Promise.all(engines.map((e) => e.deleteSpan(a, b)));
          if (Buffer.compare(a, b) < 0) model.deleteSpan(a, b);
        } else if (roll < 47) {
          if (held.length >= differentialSnapshotsMax) {
            const [gone] = held.splice(prng.int(held.length), 1);
            await Promise.all(gone!.views.map((v) => v.release()));
          }
          held.push({ model: model.clone(), views: engines.map((e) => e.snapshot()) });
        } else if (roll < 50 && held.length > 0) {
          const [gone] = held.splice(prng.int(held.length), 1);
          await Promise.all(gone!.views.map((v) => v.release()));
        } else if (roll < 70) {
          const key = randomKey(prng);
          const snap = held.length > 0 && prng.chance(0.5) ? prng.pick(held) : undefined;
          const want = (snap?.model ?? model).get(key)?.toString('hex');
          for (const [i, e] of engines.entries()) {
            const got = await (snap?.views[i] ?? e).get(key);
            assert.equal(got?.toString('hex'), want, where(`get(${key.toString('hex')})${snap ? ' on a snapshot' : ''}`, engineKinds[i]));
          }
        } else {
          const options = randomScan(prng);
          const snap = held.length > 0 && prng.chance(0.5) ? prng.pick(held) : undefined;
          const want = expected(snap?.model ?? model, options);
          for (const [i, e] of engines.entries()) {
            const got = await collect(snap?.views[i] ?? e, options);
            assert.deepEqual(got, want, where(`iterate(${describeScan(options)})${snap ? ' on a snapshot' : ''}`, engineKinds[i]));
          }
        }
      }
      // A final full comparison, including every held snapshot.
      for (const [i, e] of engines.entries()) {
        assert.deepEqual(await collect(e), expected(model), where('final scan', engineKinds[i]));
        for (const snap of held) assert.deepEqual(await collect(snap.views[i]!), expected(snap.model), where('final snapshot scan', engineKinds[i]));
      }
      t.diagnostic(`model ends with ${model.size} keys`);
    } finally {
      for (const snap of held) await Promise.all(snap.views.map((v) => v.release().catch(() => undefined)));
      await Promise.all(engines.map((e) => e.destroy().catch((err: unknown) => (err instanceof EngineError ? undefined : Promise.reject(err)))));
      await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
    }
  });
});

function describeScan(options: IterateOptions): string {
  return Object.entries(options)
    .map(([k, v]) => `${k}: ${v instanceof Uint8Array ? Buffer.from(v).toString('hex') : String(v)}`)
    .join(', ');
}
