/**
 * Child process of crash.test.ts (not a test file itself). Opens a LogStore
 * over the engine named by argv[5] (LevelDB or the WAL engine, with small
 * segments and checkpoints so kills land in rollovers and checkpoints too)
 * in the directory given as argv[2], then forever (until the
 * parent SIGKILLs it, or a safety bound) stages appends, hard states and
 * truncations for random groups and flushes them with sync. After each
 * flush resolves it prints one line, `ack <json>`, listing [group, last
 * index, commit] of every group in that flush: the parent holds it to those.
 *
 * Entry terms and payloads are functions of (group, index), so the parent can
 * check every byte after the crash without a copy of what was written.
 */
import { LogStore } from '../../../src/group/log-store/index.js';
import { type EngineKind, openEngine } from '../../../src/storage/index.js';
import { Prng } from '../../storage/prng.js';
import { CRASH_WAL_OPTIONS, crashEntry } from './crash-shape.js';

/** Safety bound: the writer stops by itself after this many flushes. */
const FLUSHES_MAX = 100_000;
/** Groups written to. */
const GROUPS = Number(process.argv[3] ?? '50');
/** Truncate a group once it retains more than this many entries. */
const RETAINED_MAX = 24;

async function main(): Promise<void> {
  const dir = process.argv[2];
  if (dir === undefined) throw new Error('usage: crash-writer <dir> [groups] [seed] [engine kind]');
  const rng = new Prng(Number(process.argv[4] ?? '1'));
  const kind = (process.argv[5] ?? 'leveldb') as EngineKind;
  const engine = await openEngine({ kind, path: dir, wal: CRASH_WAL_OPTIONS });
  const store = await LogStore.open(engine, { gcKeysPerFlushMax: 64 });
  for (let g = 1; g <= GROUPS; g++) {
    if (!store.has(g)) store.createGroup(g, { confState: { voters: [1, 2, 3], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } });
  }
  await store.flush({ sync: true });
  process.stdout.write('ready\n');
  for (let flush = 0; flush < FLUSHES_MAX; flush++) {
    const acks: [number, number, number][] = [];
    // What earlier flushes acknowledged: a truncation may only cover those entries,
    // since the ack of this flush can die with the process after the flush is durable.
    const acknowledged = new Map<number, number>();
    for (let g = 1; g <= GROUPS; g++) acknowledged.set(g, store.group(g).lastIndex());
    const touched = 1 + rng.int(GROUPS);
    for (let k = 0; k < touched; k++) {
      const g = 1 + rng.int(GROUPS);
      const log = store.group(g);
      const last = log.lastIndex();
      const count = 1 + rng.int(3);
      const entries = Array.from({ length: count }, (_, i) => crashEntry(g, last + 1 + i));
      const newLast = last + count;
      const commit = newLast - 1;
      store.stage(g, { entries, hardState: { term: entries[count - 1]!.term, vote: 1, commit } });
      if (log.retainedEntries > RETAINED_MAX && rng.chance(0.5)) {
        const at = Math.min(newLast - 8, (acknowledged.get(g) ?? 0) - 1);
        if (at >= log.firstIndex()) store.truncate(g, at, log.term(at));
      }
      acks.push([g, newLast, commit]);
    }
    await store.flush({ sync: true });
    process.stdout.write(`ack ${JSON.stringify(acks)}\n`);
  }
  await store.close();
  await engine.close();
}

main().catch((e: unknown) => {
  process.stderr.write(`crash-writer failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(2);
});
