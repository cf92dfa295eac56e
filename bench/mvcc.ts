/**
 * MVCC micro-benchmark: puts/s, point gets/s and 100-key range scans/s of one
 * MvccStore per engine, with 256-byte values, at 100k and 1M keys, plus
 * memory (RSS, heap) after loading. Run: `npm run bench:mvcc -- [flags]`.
 *
 * Flags: --engines=memory,leveldb,rocksdb  --sizes=100000,1000000
 *        --value-bytes=256  --gets=20000  --scans=2000  --scan-keys=100
 *        --concurrency=1 (reads in flight at once)
 *
 * Puts are applied one by one, each its own revision and engine batch (as
 * the raft apply loop would without batching), without fsync. Keys are
 * loaded in a scrambled order so durable engines do not get a sorted load.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { type Engine, type EngineKind, engineKinds, openEngine } from '../src/storage/index.js';
import { MvccStore } from '../src/shard/index.js';

interface Flags {
  engines: EngineKind[];
  sizes: number[];
  valueBytes: number;
  gets: number;
  scans: number;
  scanKeys: number;
  concurrency: number;
}

function parseFlags(argv: readonly string[]): Flags {
  const get = (name: string): string | undefined =>
    argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const list = (name: string, fallback: string): string[] => (get(name) ?? fallback).split(',').filter((x) => x !== '');
  const engines = list('engines', engineKinds.join(',')) as EngineKind[];
  for (const e of engines) if (!engineKinds.includes(e)) throw new Error(`unknown engine ${e}`);
  return {
    engines,
    sizes: list('sizes', '100000,1000000').map(Number),
    valueBytes: Number(get('value-bytes') ?? 256),
    gets: Number(get('gets') ?? 20000),
    scans: Number(get('scans') ?? 2000),
    scanKeys: Number(get('scan-keys') ?? 100),
    concurrency: Number(get('concurrency') ?? 1),
  };
}

const keyOf = (i: number): Buffer => Buffer.from(`bench/key/${i.toString().padStart(9, '0')}`);

/** A bijection of [0, n) that scatters consecutive indexes. */
function scramble(i: number, n: number): number {
  return (i * 1_000_003) % n;
}

/** Throughput of one phase: wall-clock rate and this process's CPU time per op. */
interface Rate {
  readonly perSecond: number;
  readonly cpuMicrosPerOp: number;
}

/** Runs `total` calls of `op` with `concurrency` in flight. */
async function measure(total: number, concurrency: number, op: (i: number) => Promise<void>): Promise<Rate> {
  let next = 0;
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < total; i = next++) await op(i);
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const used = process.cpuUsage(cpu);
  return { perSecond: total / seconds, cpuMicrosPerOp: (used.user + used.system) / total };
}

let seed = 12345;
/** Deterministic LCG so runs are comparable. */
function random(n: number): number {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed % n;
}

const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(0);
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const rate = (r: Rate): string => `${fmt(r.perSecond)} (${r.cpuMicrosPerOp.toFixed(0)} µs)`;

async function runOne(kind: EngineKind, size: number, flags: Flags): Promise<string> {
  let dir: string | undefined;
  let engine: Engine;
  if (kind === 'memory') engine = await openEngine({ kind });
  else {
    dir = await mkdtemp(join(tmpdir(), `keyspan-bench-${kind}-`));
    engine = await openEngine({ kind, path: dir });
  }
  try {
    const store = await MvccStore.open(engine, { prefix: Buffer.from([0, 0, 0, 0, 0, 0, 0, 1]) });
    const value = Buffer.alloc(flags.valueBytes, 0x61);
    const puts = await measure(size, 1, async (i) => {
      await store.put({ key: keyOf(scramble(i, size)), value }, store.currentRevision + 1);
    });
    globalThis.gc?.();
    const mem = process.memoryUsage();

    const gets = await measure(flags.gets, flags.concurrency, async () => {
      const r = await store.range({ key: keyOf(random(size)) });
      if (r.kvs.length !== 1) throw new Error('bench: point get missed');
    });
    const scans = await measure(flags.scans, flags.concurrency, async () => {
      const start = random(size - flags.scanKeys);
      const r = await store.range({ key: keyOf(start), rangeEnd: keyOf(start + flags.scanKeys) });
      if (r.kvs.length !== flags.scanKeys) throw new Error('bench: scan returned the wrong number of keys');
    });
    await store.close();
    return `| ${kind} | ${fmt(size)} | ${rate(puts)} | ${rate(gets)} | ${rate(scans)} | ${mib(mem.rss)} | ${mib(mem.heapUsed)} |`;
  } finally {
    await engine.destroy().catch(() => undefined);
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  console.log(
    `# MVCC micro-benchmark: node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ` +
      `${mib(totalmem())} MiB RAM; values ${flags.valueBytes} B, ${flags.gets} gets, ` +
      `${flags.scans} scans of ${flags.scanKeys} keys, read concurrency ${flags.concurrency}`,
  );
  console.log(`load average at start: ${loadavg().map((x) => x.toFixed(1)).join(' ')}; cells: ops/s (CPU µs per op)`);
  console.log(`| engine | keys | puts/s | point gets/s | ${flags.scanKeys}-key scans/s | RSS MiB | heap MiB |`);
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const size of flags.sizes) {
    for (const kind of flags.engines) console.log(await runOne(kind, size, flags));
  }
}

await main();
