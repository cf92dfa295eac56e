/**
 * Crash safety of a snapshot install: a child process installs two
 * different images of a range over LevelDB, alternately, and the test
 * SIGKILLs it at a random moment (seeded) during the installs. After each
 * kill the range's keys in the engine must be exactly one image's records
 * (or nothing, before the first install): never a mix, never a half-deleted
 * range. The reopened replica must then agree with that image's source
 * (applied index, revision, hashKV).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { INITIAL_EPOCH } from '../../../src/shard/range/index.js';
import { Replica } from '../../../src/shard/replica/index.js';
import { RangeKeys } from '../../../src/shard/replica/keys.js';
import { parseImage } from '../../../src/shard/replica/snapshot.js';
import { openEngine, type Engine } from '../../../src/storage/index.js';
import { Prng, testSeed } from '../../storage/prng.js';
import { removeDir, tempDir } from '../../group/log-store/helpers.js';
import { Harness, RANGE_ID, b } from './harness.js';

/** Kill/reopen cycles on one directory. */
const CYCLES = 4;
/** Installs to see acknowledged before the kill: 2 + a seeded draw below this (then a random extra delay). */
const INSTALLS_BEFORE_KILL_SPREAD = 3;
/** Upper bound on the random delay between that acknowledgement and the kill. */
const KILL_DELAY_MS_MAX = 40;
/** One cycle fails if the child takes longer than this to get there. */
const CYCLE_MS_MAX = 60_000;

function childPath(): string {
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
  return fileURLToPath(new URL(`./install-crash-child.${ext}`, import.meta.url));
}

interface Source {
  readonly file: string;
  readonly data: Uint8Array;
  readonly appliedIndex: number;
  readonly revision: number;
  readonly hash: number;
}

/** A range filled by `puts` writes of `tag`-prefixed keys, imaged to `file`. */
async function source(dir: string, tag: string, puts: number): Promise<Source> {
  const h = await Harness.start([1]);
  const r = h.replica(1);
  for (let i = 0; i < puts; i++) {
    await r.put({ key: b(`${tag}${String(i).padStart(5, '0')}`), value: Buffer.alloc(512, i % 251) }, { epoch: INITIAL_EPOCH });
  }
  const snap = await r.buildSnapshot();
  const file = join(dir, `image-${tag}`);
  await writeFile(file, snap.data);
  const hash = (await r.hashKV()).hash;
  return { file, data: snap.data, appliedIndex: snap.index, revision: r.currentRevision, hash };
}

async function runAndKill(dir: string, files: readonly string[], seed: number): Promise<number> {
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--test'));
  const child: ChildProcess = spawn(process.execPath, [...execArgv, childPath(), join(dir, 'engine'), ...files], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const rng = new Prng(seed);
  const installsBeforeKill = 2 + rng.int(INSTALLS_BEFORE_KILL_SPREAD);
  let installs = 0;
  const enough = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child too slow; stderr: ${stderr}`)), CYCLE_MS_MAX);
    child.stdout!.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n')) {
        if (!line.startsWith('installed ')) continue;
        if (++installs === installsBeforeKill) {
          clearTimeout(timer);
          resolve();
        }
      }
    });
    void exited.then((code) => reject(new Error(`child exited early (${String(code)}): ${stderr}`)));
  });
  try {
    await enough;
    await new Promise((r) => setTimeout(r, rng.int(KILL_DELAY_MS_MAX)));
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
  return installs;
}

/** The range's keys and values in the engine, hex-encoded. */
async function rangeContents(engine: Engine): Promise<Map<string, string>> {
  const keys = new RangeKeys(RANGE_ID);
  const out = new Map<string, string>();
  for await (const { key, value } of engine.iterate({ gte: keys.start, lt: keys.end })) out.set(key.toString('hex'), value.toString('hex'));
  return out;
}

function imageContents(data: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of parseImage(data, new RangeKeys(RANGE_ID)).records) out.set(r.key.toString('hex'), r.value.toString('hex'));
  return out;
}

test('a SIGKILL during snapshot installs leaves the old state or the whole new image (leveldb)', { timeout: CYCLES * CYCLE_MS_MAX + 30_000 }, async (t) => {
  const dir = await tempDir('install-crash');
  const seed = testSeed();
  t.diagnostic(`seed ${seed}`);
  try {
    // Disjoint key sets and different sizes, so any mix of the two is visible.
    const sources = [await source(dir, 'a', 400), await source(dir, 'b', 700)];
    const images = sources.map((s) => imageContents(s.data));
    const seen = new Set<string>();
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const installs = await runAndKill(dir, sources.map((s) => s.file), seed + cycle);
      const engine = await openEngine({ kind: 'leveldb', path: join(dir, 'engine') });
      try {
        const contents = await rangeContents(engine);
        const which = images.findIndex((img) => img.size === contents.size && [...img].every(([k, v]) => contents.get(k) === v));
        assert.ok(which >= 0, `cycle ${cycle}: the range holds ${contents.size} keys, matching neither image`);
        const src = sources[which]!;
        const replica = await Replica.open(engine, { rangeId: RANGE_ID });
        assert.equal(replica.isInitialized, true);
        assert.equal(replica.appliedIndex(), src.appliedIndex);
        assert.equal(replica.currentRevision, src.revision);
        assert.equal((await replica.hashKV()).hash, src.hash);
        await replica.close();
        seen.add(['a', 'b'][which]!);
        t.diagnostic(`cycle ${cycle}: ${installs} installs acknowledged, killed; range holds image ${['a', 'b'][which]!} (${contents.size} keys)`);
      } finally {
        await engine.close();
      }
    }
  } finally {
    await removeDir(dir);
  }
});
