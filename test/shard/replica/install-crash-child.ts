/**
 * Child process of install-crash.test.ts (not a test file itself). Opens
 * range RANGE_ID's replica over LevelDB in argv[2] and installs the images
 * in the files argv[3..] one after the other, round and round, printing
 * `installed <n>` after install n resolved, until the parent SIGKILLs it (or
 * a safety bound ends it).
 */
import { readFile } from 'node:fs/promises';
import { Replica } from '../../../src/shard/replica/index.js';
import { openEngine } from '../../../src/storage/index.js';
import { RANGE_ID } from './harness.js';

/** Safety bound: the child stops by itself after this many installs. */
const INSTALLS_MAX = 10_000;

async function main(): Promise<void> {
  const [dir, ...files] = process.argv.slice(2);
  if (dir === undefined || files.length === 0) throw new Error('usage: install-crash-child <dir> <image>...');
  const images = await Promise.all(files.map((f) => readFile(f)));
  const engine = await openEngine({ kind: 'leveldb', path: dir });
  const replica = await Replica.open(engine, { rangeId: RANGE_ID });
  process.stdout.write('ready\n');
  for (let n = 0; n < INSTALLS_MAX; n++) {
    await replica.installImage(images[n % images.length]!, 0);
    process.stdout.write(`installed ${n}\n`);
  }
  await replica.close();
  await engine.close();
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
