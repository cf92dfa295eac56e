/**
 * The write path below the gateway: puts of 256-byte values straight into
 * range 1's replica of one StoreNode (LevelDB engine, real raft host, log
 * store with fsync, apply, MVCC), with `--in-flight` puts outstanding at
 * once. It measures what a put costs between the gRPC handler and the
 * answer, without the client, the HTTP/2 server or the generator sharing
 * the machine's cores. Run: `npm run bench:write -- [flags]`.
 *
 * Flags: --in-flight=100 --total=40000 --warmup=20000 --value-bytes=256
 *
 * Reports puts/s, this process's CPU per put (all threads: V8's GC helpers,
 * the LevelDB and fsync work of libuv's pool) and latency p50/p99 per put.
 * The warm-up writes other keys first, so the measured puts create keys on
 * a warm JIT and a non-empty engine.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { StoreNode, wholeKeyspaceRange } from '../src/node/index.js';
import { INITIAL_EPOCH } from '../src/shard/range/index.js';

interface Flags {
  readonly inFlight: number;
  readonly total: number;
  readonly warmup: number;
  readonly valueBytes: number;
}

function parseFlags(argv: readonly string[]): Flags {
  const get = (name: string, fallback: number): number => {
    const raw = argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
    const v = raw === undefined ? fallback : Number(raw);
    if (!Number.isSafeInteger(v) || v < (name === 'warmup' ? 0 : 1)) throw new Error(`--${name} must be a positive integer, got ${raw}`);
    return v;
  };
  return { inFlight: get('in-flight', 100), total: get('total', 40_000), warmup: get('warmup', 20_000), valueBytes: get('value-bytes', 256) };
}

/** A free loopback port for the node's (unused) peer listener. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      s.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Latencies (ms, sorted) of `count` puts of keys `${prefix}N`, `inFlight` at a time. */
async function putLoad(node: StoreNode, flags: Flags, count: number, prefix: string): Promise<number[]> {
  const replica = node.range(1);
  const value = Buffer.alloc(flags.valueBytes, 7);
  const latencies: number[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < count; i = next++) {
      const t0 = performance.now();
      await replica.put({ key: Buffer.from(`${prefix}${String(i).padStart(9, '0')}`), value }, { epoch: INITIAL_EPOCH });
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: flags.inFlight }, worker));
  return latencies.sort((a, b) => a - b);
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const dir = await mkdtemp(join(tmpdir(), 'keyspan-write-path-'));
  const address = `127.0.0.1:${await freePort()}`;
  const node = await StoreNode.open({
    nodeId: 1,
    dataDir: dir,
    peerListen: address,
    peers: new Map([[1, address]]),
    engineKind: 'leveldb',
    ranges: wholeKeyspaceRange([1]),
  });
  try {
    const deadline = Date.now() + 10_000;
    while (node.status(1).role !== 'leader') {
      if (Date.now() > deadline) throw new Error('range 1 elected no leader within 10 s');
      await new Promise((r) => setTimeout(r, 10));
    }
    if (flags.warmup > 0) await putLoad(node, flags, flags.warmup, 'warm/');
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const lat = await putLoad(node, flags, flags.total, 'key/');
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const pick = (q: number): number => lat[Math.min(lat.length - 1, Math.floor(lat.length * q))]!;
    console.log(
      JSON.stringify({
        inFlight: flags.inFlight,
        puts: flags.total,
        putsPerSecond: Math.round(flags.total / seconds),
        cpuMicrosPerPut: Math.round((cpu.user + cpu.system) / flags.total),
        p50Ms: +pick(0.5).toFixed(3),
        p99Ms: +pick(0.99).toFixed(3),
        cpus: cpus().length,
      }),
    );
  } finally {
    await node.close();
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
