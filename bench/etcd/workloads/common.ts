/**
 * What every workload gets and returns: a worker's share of the run, its
 * conns, a budget that bounds the run, and a recorder.
 */
import type { BenchOptions } from '../flags.js';
import type { Conn } from '../client.js';
import type { Recorder } from '../histogram.js';
import { keyGenerator, makeValue, type KeyGenerator } from '../keys.js';

/** One worker's share of a run. */
export interface WorkerPlan {
  readonly workerIndex: number;
  /** Clients of this worker. */
  readonly clients: number;
  /** Conns of this worker. */
  readonly conns: number;
  /** Index of this worker's first conn over all workers (spreads workers over endpoints). */
  readonly connOffset: number;
  /** Requests this worker issues (undefined when bounded by duration). */
  readonly total: number | undefined;
  /** Where this worker's sequential keys start, so workers do not write the same keys. */
  readonly keyStart: number;
}

/**
 * Bounds a worker's loops: a fixed number of requests, or a deadline. Every
 * client loop asks {@link take} before each request.
 */
export class Budget {
  /** Requests handed out so far (the progress shown to the user). */
  taken = 0;
  private endAtMs = Number.POSITIVE_INFINITY;

  constructor(
    private readonly total: number | undefined,
    private readonly durationSec: number | undefined,
  ) {
    if (total === undefined && durationSec === undefined) throw new Error('Budget: a total or a duration is required');
  }

  /** Starts the clock of a duration-bounded run. */
  start(nowMs: number): void {
    if (this.durationSec !== undefined) this.endAtMs = nowMs + this.durationSec * 1000;
  }

  /** True when one more request may be issued (and counts it). */
  take(): boolean {
    if (this.total !== undefined && this.taken >= this.total) return false;
    if (this.durationSec !== undefined && Date.now() >= this.endAtMs) return false;
    this.taken++;
    return true;
  }

  /** When the run ends at the latest (Infinity for a total-bounded run). */
  get deadlineMs(): number {
    return this.endAtMs;
  }
}

/** What a workload's prepare step receives. */
export interface WorkloadContext {
  readonly opts: BenchOptions;
  readonly plan: WorkerPlan;
  readonly conns: readonly Conn[];
  readonly recorder: Recorder;
  readonly budget: Budget;
}

/** A workload: optional one-off setup by the parent, then per-worker prepare and run. */
export interface Workload {
  /** Run once, before any worker starts (e.g. writing the keys that will be read). */
  setup?(conn: Conn, opts: BenchOptions): Promise<void>;
  /** Opens streams, grants leases, ...; returns the timed part. Not timed. */
  prepare(ctx: WorkloadContext): Promise<RunFn>;
}

/** The timed part of a workload; resolves when the budget is spent. */
export type RunFn = () => Promise<void>;

/** The conn of client `c`: clients are spread over conns round-robin, as etcd's tool does. */
export function connOf(ctx: WorkloadContext, client: number): Conn {
  return ctx.conns[client % ctx.conns.length] as Conn;
}

/** Runs `fn` once per client, each client a sequential loop that stops when the budget is spent. */
export async function runClients(ctx: WorkloadContext, fn: (client: number) => Promise<void>): Promise<void> {
  const loops: Promise<void>[] = [];
  for (let c = 0; c < ctx.plan.clients; c++) {
    loops.push(
      (async () => {
        while (ctx.budget.take()) await fn(c);
      })(),
    );
  }
  await Promise.all(loops);
}

/** Times `call` into the recorder under `op`; errors count, never throw. Returns the result or undefined. */
export async function timed<T>(recorder: Recorder, op: string, call: () => Promise<T>): Promise<T | undefined> {
  const t0 = performance.now();
  try {
    const res = await call();
    recorder.record(op, (performance.now() - t0) * 1000);
    return res;
  } catch (err) {
    recorder.error(op, err);
    return undefined;
  }
}

/** The key generator of a worker. */
export function workerKeys(ctx: WorkloadContext, prefix = ''): KeyGenerator {
  return keyGenerator({
    keySize: ctx.opts.keySize,
    keySpaceSize: ctx.opts.keySpaceSize,
    sequential: ctx.opts.sequentialKeys,
    prefix,
    start: ctx.plan.keyStart,
    // Distinct streams per worker; the same streams for the same --seed.
    seed: (ctx.opts.seed + ctx.plan.workerIndex * 0x9e3779b1) >>> 0,
  });
}

/** Keys setup writes at most; a larger key space is rejected rather than loaded for minutes. */
export const SETUP_KEYS_MAX = 1_000_000;
/** Setup puts in flight at once. */
const SETUP_IN_FLIGHT = 64;

/** Writes every key of the key space once (under `prefix`), so reads and compares find them. */
export async function populate(conn: Conn, opts: BenchOptions, prefix: string, value: Buffer = makeValue(opts.valSize)): Promise<void> {
  if (opts.keySpaceSize > SETUP_KEYS_MAX) {
    throw new Error(`--key-space-size ${opts.keySpaceSize} is too large to preload (at most ${SETUP_KEYS_MAX})`);
  }
  const keys = keyGenerator({ keySize: opts.keySize, keySpaceSize: opts.keySpaceSize, sequential: true, prefix, seed: 0 });
  let next = 0;
  const lanes: Promise<void>[] = [];
  for (let l = 0; l < Math.min(SETUP_IN_FLIGHT, opts.keySpaceSize); l++) {
    lanes.push(
      (async () => {
        while (next < opts.keySpaceSize) {
          const key = keys.keyOf(next++);
          await conn.unary('etcdserverpb.KV', 'Put', { key, value });
        }
      })(),
    );
  }
  await Promise.all(lanes);
}

/** Keys per page when learning revisions. */
const LEARN_PAGE_KEYS = 10_000;
/** Pages read at most when learning revisions (other keys may share the key space's range). */
const LEARN_PAGES_MAX = 1_000;

/**
 * The mod_revision of every key under `prefix` whose index the generator
 * knows, read with keys-only pages before the timed part (as a Kubernetes
 * watch cache starts from a list), so compare-and-put workloads do not start
 * with a conflict on every key. Only the generator's own keys count: keys of
 * another length share the range (the warm-up's 16-byte "0000000000000123"
 * sorts among the 8-byte keys and would read as index 123), so a key is
 * taken only when it is exactly `keys.keyOf` of its index, and pages are
 * read until the range ends (at most {@link LEARN_PAGES_MAX}).
 */
export async function learnRevisions(conn: Pick<Conn, 'unary'>, prefix: string, keys: KeyGenerator, keySpaceSize: number): Promise<Map<number, number>> {
  const seen = new Map<number, number>();
  const first = keys.keyOf(0);
  const end = keys.keyOf(keySpaceSize - 1);
  const rangeEnd = Buffer.concat([end, Buffer.from([0])]);
  const prefixBytes = Buffer.byteLength(prefix);
  let key = first;
  for (let page = 0; page < LEARN_PAGES_MAX; page++) {
    const res = await conn.unary('etcdserverpb.KV', 'Range', { key, range_end: rangeEnd, keys_only: true, limit: LEARN_PAGE_KEYS });
    const kvs = (res['kvs'] as Array<Record<string, unknown>> | undefined) ?? [];
    for (const kv of kvs) {
      const full = kv['key'] as Buffer;
      const k = full.subarray(prefixBytes).toString();
      if (!/^\d+$/.test(k)) continue;
      const index = Number(k);
      if (index < keySpaceSize && keys.keyOf(index).equals(full)) seen.set(index, kv['mod_revision'] as number);
    }
    const last = kvs[kvs.length - 1];
    if (res['more'] !== true || last === undefined) break;
    key = Buffer.concat([last['key'] as Buffer, Buffer.from([0])]);
  }
  return seen;
}
