/**
 * Command-line flags of the etcd API load generator (`npm run bench -- <workload> [flags]`),
 * named after etcd's `tools/benchmark` flags where a counterpart exists.
 * Parsing is pure: it returns options or throws a {@link FlagError} whose
 * message names the flag and what was wrong, so the CLI can print it verbatim.
 */

/** The workloads the generator knows. */
export const WORKLOADS = ['put', 'range', 'txn-put', 'watch-latency', 'lease-keepalive', 'mixed', 'list'] as const;

/** One of {@link WORKLOADS}. */
export type WorkloadName = (typeof WORKLOADS)[number];

/** Read consistency of Range requests: linearizable (`l`) or serializable (`s`). */
export type Consistency = 'l' | 's';

/** Everything a run needs, after defaults are applied. */
export interface BenchOptions {
  readonly workload: WorkloadName;
  /** `host:port` targets; conns are spread over them round-robin. */
  readonly endpoints: readonly string[];
  /** HTTP/2 connections (gRPC channels) in total, over all workers. */
  readonly conns: number;
  /** Concurrent clients in total; each issues one request at a time, multiplexed over the conns. */
  readonly clients: number;
  /** Requests to issue in total (unset when the run is bounded by {@link durationSec}). */
  readonly total: number | undefined;
  /** Run length in seconds (unset when the run is bounded by {@link total}). */
  readonly durationSec: number | undefined;
  readonly keySize: number;
  readonly valSize: number;
  /** Keys are drawn from [0, keySpaceSize). */
  readonly keySpaceSize: number;
  readonly sequentialKeys: boolean;
  readonly consistency: Consistency;
  /** One JSON line on stdout instead of the text report. */
  readonly json: boolean;
  /** Generator processes; 1 runs in the CLI's own process. */
  readonly workers: number;
  /** watch-latency: puts per second in total (0 = as fast as one putter goes). */
  readonly putRate: number;
  /** Seed of the key generators, so a run's key sequence can be repeated. */
  readonly seed: number;
}

/** A bad command line; the message is meant for the user as is. */
export class FlagError extends Error {
  override readonly name = 'FlagError';
  readonly code = 'BAD_FLAG';
}

/** Usage text printed with `--help` and after a {@link FlagError}. */
export const USAGE = `usage: npm run bench -- <workload> [flags]
workloads: ${WORKLOADS.join(', ')}
flags:
  --endpoints h:p[,h:p]   targets (default 127.0.0.1:2379)
  --conns N               gRPC connections (default 1)
  --clients N             concurrent clients multiplexed over the conns (default 1)
  --total N               requests in total (default 10000 unless --duration)
  --duration S            run for S seconds instead of --total
  --key-size B            key size in bytes (default 8)
  --val-size B            value size in bytes (default 8)
  --key-space-size N      keys are drawn from N distinct keys (default 1; 1000 for txn-put, mixed; 10000 for list)
  --sequential-keys       keys 0,1,2,... instead of uniformly random
  --consistency l|s       range reads linearizable or serializable (default l)
  --put-rate N            watch-latency: puts per second (default 100)
  --workers N             generator processes (default 1)
  --seed N                key generator seed (default random)
  --json                  one machine-readable JSON line, no progress bar`;

/** Upper bounds that keep a typo from starting a run that never ends. */
const LIMITS = {
  conns: 10_000,
  clients: 100_000,
  total: 100_000_000,
  durationSec: 24 * 3600,
  keySize: 1 << 20,
  valSize: 1 << 24,
  keySpaceSize: 100_000_000,
  workers: 64,
  putRate: 1_000_000,
} as const;

const VALUE_FLAGS = new Set([
  'endpoints',
  'conns',
  'clients',
  'total',
  'duration',
  'key-size',
  'val-size',
  'key-space-size',
  'consistency',
  'workers',
  'put-rate',
  'seed',
]);
const BOOLEAN_FLAGS = new Set(['sequential-keys', 'json']);

function isWorkload(s: string): s is WorkloadName {
  return (WORKLOADS as readonly string[]).includes(s);
}

/** A positive integer flag value, at most `max`. */
function positiveInt(flag: string, raw: string, max: number, allowZero = false): number {
  if (!/^\d+$/.test(raw)) throw new FlagError(`--${flag} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got "${raw}"`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n > max) throw new FlagError(`--${flag} must be at most ${max}, got ${raw}`);
  if (n === 0 && !allowZero) throw new FlagError(`--${flag} must be a positive integer, got 0`);
  return n;
}

function positiveNumber(flag: string, raw: string, max: number): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n <= 0) throw new FlagError(`--${flag} must be a positive number of seconds, got "${raw}"`);
  if (n > max) throw new FlagError(`--${flag} must be at most ${max}, got ${raw}`);
  return n;
}

function parseEndpoint(raw: string): string {
  // Accept etcdctl's http:// form too, since users paste it from etcd's flags.
  const bare = raw.replace(/^https?:\/\//, '').replace(/\/$/, '');
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(bare);
  if (m === null || Number(m[2]) < 1 || Number(m[2]) > 65535) {
    throw new FlagError(`--endpoints: "${raw}" is not host:port`);
  }
  return bare;
}

/**
 * Parses `argv` (without node and the script): the workload name first (or
 * anywhere), then flags as `--name value` or `--name=value`.
 */
export function parseFlags(argv: readonly string[], randomSeed: () => number = () => Math.floor(Math.random() * 2 ** 31)): BenchOptions {
  const values = new Map<string, string>();
  const booleans = new Set<string>();
  let workload: WorkloadName | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--')) {
      if (workload !== undefined) throw new FlagError(`unexpected argument "${arg}" (workload is already ${workload})`);
      if (!isWorkload(arg)) throw new FlagError(`unknown workload "${arg}"; expected one of ${WORKLOADS.join(', ')}`);
      workload = arg;
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    if (BOOLEAN_FLAGS.has(name)) {
      if (eq !== -1) {
        const v = arg.slice(eq + 1);
        if (v !== 'true' && v !== 'false') throw new FlagError(`--${name} takes no value (or =true/=false), got "${v}"`);
        if (v === 'true') booleans.add(name);
      } else {
        booleans.add(name);
      }
      continue;
    }
    if (!VALUE_FLAGS.has(name)) throw new FlagError(`unknown flag --${name}`);
    let value: string;
    if (eq !== -1) {
      value = arg.slice(eq + 1);
    } else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new FlagError(`--${name} needs a value`);
      value = next;
      i++;
    }
    if (values.has(name)) throw new FlagError(`--${name} given twice`);
    values.set(name, value);
  }
  if (workload === undefined) throw new FlagError(`missing workload; expected one of ${WORKLOADS.join(', ')}`);

  const get = (n: string): string | undefined => values.get(n);
  const endpointsRaw = get('endpoints') ?? '127.0.0.1:2379';
  const endpoints = endpointsRaw.split(',').filter((e) => e !== '').map(parseEndpoint);
  if (endpoints.length === 0) throw new FlagError('--endpoints must name at least one host:port');

  const totalRaw = get('total');
  const durationRaw = get('duration');
  if (totalRaw !== undefined && durationRaw !== undefined) throw new FlagError('give --total or --duration, not both');
  const durationSec = durationRaw === undefined ? undefined : positiveNumber('duration', durationRaw, LIMITS.durationSec);
  const total = totalRaw !== undefined ? positiveInt('total', totalRaw, LIMITS.total) : durationSec === undefined ? 10_000 : undefined;

  const conns = positiveInt('conns', get('conns') ?? '1', LIMITS.conns);
  const clients = positiveInt('clients', get('clients') ?? '1', LIMITS.clients);
  if (conns > clients) throw new FlagError(`--conns (${conns}) must not exceed --clients (${clients}): a conn without a client sends nothing`);
  const workers = positiveInt('workers', get('workers') ?? '1', LIMITS.workers);
  if (workers > clients) throw new FlagError(`--workers (${workers}) must not exceed --clients (${clients})`);
  if (workers > conns) throw new FlagError(`--workers (${workers}) must not exceed --conns (${conns}): each worker needs its own conns`);

  const consistency = get('consistency') ?? 'l';
  if (consistency !== 'l' && consistency !== 's') throw new FlagError(`--consistency must be l or s, got "${consistency}"`);

  const defaultKeySpace = workload === 'list' ? '10000' : workload === 'txn-put' || workload === 'mixed' ? '1000' : '1';
  const keySize = positiveInt('key-size', get('key-size') ?? '8', LIMITS.keySize);
  const valSize = positiveInt('val-size', get('val-size') ?? '8', LIMITS.valSize);
  if ((workload === 'watch-latency' || workload === 'mixed') && valSize < 8) {
    throw new FlagError(`--val-size must be at least 8 for ${workload}: values carry the send time`);
  }
  const seedRaw = get('seed');
  return {
    workload,
    endpoints,
    conns,
    clients,
    total,
    durationSec,
    keySize,
    valSize,
    keySpaceSize: positiveInt('key-space-size', get('key-space-size') ?? defaultKeySpace, LIMITS.keySpaceSize),
    sequentialKeys: booleans.has('sequential-keys'),
    consistency,
    json: booleans.has('json'),
    workers,
    putRate: positiveInt('put-rate', get('put-rate') ?? '100', LIMITS.putRate, true),
    seed: seedRaw === undefined ? randomSeed() : positiveInt('seed', seedRaw, 2 ** 31, true),
  };
}
