/**
 * Crash safety: a child process writes many groups' logs through the
 * LogStore over LevelDB, or over the WAL engine, with synced flushes and prints each acknowledged
 * flush; the test SIGKILLs it mid-run, reopens the store and checks that
 * every acknowledged entry and hard state is there, intact, and that every
 * log is contiguous. Several kill/reopen cycles run on the same directory.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { LogStore } from '../../../src/group/log-store/index.js';
import { type EngineKind, openEngine } from '../../../src/storage/index.js';
import { Prng, testSeed } from '../../storage/prng.js';
import { CRASH_WAL_OPTIONS, crashEntry, crashTerm } from './crash-shape.js';
import { removeDir, tempDir } from './helpers.js';

/** Kill/reopen cycles on one directory. */
const CYCLES = 3;
/** Groups the writer uses. */
const GROUPS = 40;
/** Acknowledged flushes to wait for before the kill (then a random extra delay). */
const ACKS_BEFORE_KILL = 25;
/** Upper bound on the random delay between the last awaited ack and the kill. */
const KILL_DELAY_MS_MAX = 30;
/** One cycle fails if the writer takes longer than this to produce its acks. */
const CYCLE_MS_MAX = 30_000;

/** The writer script beside this file: .ts under tsx, .js once compiled to dist. */
function writerPath(): string {
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
  return fileURLToPath(new URL(`./crash-writer.${ext}`, import.meta.url));
}

interface Ack {
  readonly last: number;
  readonly commit: number;
}

/** Runs the writer until ACKS_BEFORE_KILL flushes are acknowledged, then SIGKILLs it. Returns the latest ack per group. */
async function runAndKill(kind: EngineKind, dir: string, seed: number, acks: Map<number, Ack>): Promise<number> {
  // Same loader as this process (tsx when run from source), minus the test runner's own flags.
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--test'));
  const child: ChildProcess = spawn(process.execPath, [...execArgv, writerPath(), dir, String(GROUPS), String(seed), kind], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let seen = 0;
  let buffered = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const enough = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`writer too slow; stderr: ${stderr}`)), CYCLE_MS_MAX);
    child.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (!line.startsWith('ack ')) continue;
        for (const [g, last, commit] of JSON.parse(line.slice(4)) as [number, number, number][]) {
          const old = acks.get(g);
          if (old === undefined || old.last < last) acks.set(g, { last, commit });
        }
        if (++seen === ACKS_BEFORE_KILL) {
          clearTimeout(timer);
          resolve();
        }
      }
    });
    void exited.then((code) => reject(new Error(`writer exited early (${String(code)}): ${stderr}`)));
  });
  try {
    await enough;
    await new Promise((r) => setTimeout(r, new Prng(seed).int(KILL_DELAY_MS_MAX)));
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
  // Acks printed between the kill decision and the kill still count: read what is left.
  for (const line of buffered.split('\n')) {
    if (!line.startsWith('ack ') || !line.endsWith(']')) continue;
    try {
      for (const [g, last, commit] of JSON.parse(line.slice(4)) as [number, number, number][]) {
        const old = acks.get(g);
        if (old === undefined || old.last < last) acks.set(g, { last, commit });
      }
    } catch {
      // a torn final line was never acknowledged in full
    }
  }
  return seen;
}

async function verify(kind: EngineKind, dir: string, acks: ReadonlyMap<number, Ack>): Promise<number> {
  const engine = await openEngine({ kind, path: dir, wal: CRASH_WAL_OPTIONS });
  let checked = 0;
  try {
    const store = await LogStore.open(engine);
    assert.equal(store.groupCount, GROUPS);
    for (const [g, ack] of acks) {
      const log = store.group(g);
      const first = log.firstIndex();
      const last = log.lastIndex();
      assert.ok(last >= ack.last, `group ${g}: last index ${last} < acknowledged ${ack.last}`);
      assert.ok(log.hardState.commit >= ack.commit, `group ${g}: commit ${log.hardState.commit} < acknowledged ${ack.commit}`);
      assert.equal(log.hardState.commit, last - 1, `group ${g}: hard state and entries were written together`);
      assert.ok(first <= ack.last, `group ${g}: truncated past the acknowledged entries`);
      assert.equal(log.term(first - 1), first === 1 ? 0 : crashTerm(first - 1));
      const entries = log.entries(first, last + 1, Infinity);
      assert.equal(entries.length, last - first + 1, `group ${g}: log has holes`);
      for (const e of entries) {
        const want = crashEntry(g, e.index);
        assert.equal(e.term, want.term, `group ${g} entry ${e.index}: term`);
        assert.ok(Buffer.from(e.data).equals(Buffer.from(want.data)), `group ${g} entry ${e.index}: data`);
        checked++;
      }
    }
    await store.close();
  } finally {
    await engine.close();
  }
  return checked;
}

describe('LogStore crash safety', () => {
  for (const kind of ['leveldb', 'wal'] as const) {
    test(`SIGKILL mid-run loses no acknowledged entry or hard state (${kind})`, { timeout: CYCLES * CYCLE_MS_MAX + 10_000 }, async (t) => {
      const dir = await tempDir('crash');
      const seed = testSeed();
      t.diagnostic(`seed ${seed}`);
      const acks = new Map<number, Ack>();
      try {
        for (let cycle = 0; cycle < CYCLES; cycle++) {
          const flushes = await runAndKill(kind, dir, seed + cycle, acks);
          const entries = await verify(kind, dir, acks);
          t.diagnostic(`cycle ${cycle}: ${flushes} acknowledged flushes, ${acks.size} groups, ${entries} entries verified`);
        }
      } finally {
        await removeDir(dir);
      }
    });
  }
});
