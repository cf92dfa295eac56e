/**
 * The parent side of a run: the workload's one-off setup, splitting clients,
 * conns and requests over workers, starting them together, showing progress,
 * and merging their histograms and CPU use into one {@link BenchResult}.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { Conn } from './client.js';
import type { BenchOptions } from './flags.js';
import { Recorder, summarize, type LatencySummary } from './histogram.js';
import { runWorker, WORKER_ENV, type ChildMessage, type ParentMessage, type WorkerResult } from './worker.js';
import { workloadOf, type Budget, type WorkerPlan } from './workloads/index.js';

/** `n` split into `parts` near-equal integers, larger shares first. */
export function splitEvenly(n: number, parts: number): number[] {
  const base = Math.floor(n / parts);
  const rest = n % parts;
  return Array.from({ length: parts }, (_, i) => base + (i < rest ? 1 : 0));
}

/**
 * Each worker's share of clients, conns and requests. watch-latency has a
 * single putter, so worker 0 gets all of its requests.
 */
export function planWorkers(opts: BenchOptions): WorkerPlan[] {
  const clients = splitEvenly(opts.clients, opts.workers);
  const conns = splitEvenly(opts.conns, opts.workers);
  const totals =
    opts.total === undefined
      ? undefined
      : opts.workload === 'watch-latency'
        ? [opts.total, ...new Array<number>(opts.workers - 1).fill(0)]
        : splitEvenly(opts.total, opts.workers);
  const plans: WorkerPlan[] = [];
  let connOffset = 0;
  let keyStart = 0;
  for (let w = 0; w < opts.workers; w++) {
    const total = totals?.[w];
    plans.push({ workerIndex: w, clients: clients[w] as number, conns: conns[w] as number, connOffset, total, keyStart });
    connOffset += conns[w] as number;
    keyStart += total ?? 0;
  }
  return plans;
}

/** Everything a run measured. */
export interface BenchResult {
  readonly workload: string;
  readonly options: BenchOptions;
  /** Wall-clock seconds from the start signal until every worker finished. */
  readonly elapsedSec: number;
  /** Requests issued (the budget spent). */
  readonly requests: number;
  readonly ops: Record<string, LatencySummary>;
  readonly counters: Record<string, number>;
  readonly errorSamples: readonly string[];
  /** The generator's own CPU use during the timed part, all workers plus the parent. */
  readonly generator: {
    readonly workers: number;
    readonly cpuUserSec: number;
    readonly cpuSystemSec: number;
    /** CPU seconds per wall-clock second divided by the machine's cores, in %. */
    readonly cpuPercentOfMachine: number;
    readonly cores: number;
    readonly loadAvg1m: number;
  };
}

/** A running worker, in this process or a child. */
interface WorkerHandle {
  readonly ready: Promise<void>;
  go(): void;
  readonly result: Promise<WorkerResult>;
  taken(): number;
  kill(): void;
}

function inlineWorker(opts: BenchOptions, plan: WorkerPlan): WorkerHandle {
  let budget: Budget | undefined;
  let readyResolve!: () => void;
  let goResolve!: () => void;
  const ready = new Promise<void>((r) => (readyResolve = r));
  const go = new Promise<void>((r) => (goResolve = r));
  const result = runWorker(opts, plan, {
    readyAndWaitForGo: () => {
      readyResolve();
      return go;
    },
    onBudget: (b) => (budget = b),
  });
  return {
    // A failure during prepare must reject ready too, not leave it pending.
    ready: Promise.race([ready, result.then(() => undefined)]),
    go: goResolve,
    result,
    taken: () => budget?.taken ?? 0,
    kill: () => undefined,
  };
}

/** The worker module to fork: worker.js beside this file, or worker.ts when run from source. */
function workerModule(): URL {
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
  return new URL(`./worker.${ext}`, import.meta.url);
}

function forkedWorker(opts: BenchOptions, plan: WorkerPlan): WorkerHandle {
  const child: ChildProcess = fork(workerModule(), [], {
    env: { ...process.env, [WORKER_ENV]: '1' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let taken = 0;
  let readyResolve!: () => void;
  let readyReject!: (e: Error) => void;
  let doneResolve!: (r: WorkerResult) => void;
  let doneReject!: (e: Error) => void;
  const ready = new Promise<void>((res, rej) => ((readyResolve = res), (readyReject = rej)));
  const result = new Promise<WorkerResult>((res, rej) => ((doneResolve = res), (doneReject = rej)));
  const fail = (e: Error): void => {
    readyReject(e);
    doneReject(e);
  };
  child.on('message', (m: ChildMessage) => {
    switch (m.type) {
      case 'ready':
        readyResolve();
        return;
      case 'progress':
        taken = m.taken;
        return;
      case 'done':
        taken = m.result.taken;
        doneResolve(m.result);
        return;
      case 'failed':
        fail(new Error(`worker ${plan.workerIndex}: ${m.message}`));
        return;
    }
  });
  child.on('error', fail);
  child.on('exit', (code) => fail(new Error(`worker ${plan.workerIndex} exited with code ${code} before reporting`)));
  const send = (m: ParentMessage): void => {
    child.send(m);
  };
  send({ type: 'init', opts, plan });
  // Keep the rejections observed; callers await them in order.
  ready.catch(() => undefined);
  result.catch(() => undefined);
  return {
    ready,
    go: () => send({ type: 'go' }),
    result,
    taken: () => taken,
    kill: () => {
      if (child.exitCode === null && child.pid !== undefined) child.kill();
    },
  };
}

/** Progress callback: requests issued so far and the expected total (undefined for a timed run). */
export type ProgressFn = (taken: number, elapsedSec: number) => void;
/** How often progress is reported. */
const PROGRESS_INTERVAL_MS = 200;

/** Runs a benchmark. */
export async function runBench(opts: BenchOptions, onProgress?: ProgressFn): Promise<BenchResult> {
  const workload = workloadOf(opts.workload);
  if (workload.setup !== undefined) {
    const conn = new Conn(opts.endpoints[0] as string);
    try {
      await conn.ready();
      await workload.setup(conn, opts);
    } finally {
      conn.close();
    }
  }
  const plans = planWorkers(opts);
  const handles = plans.map((p) => (opts.workers === 1 ? inlineWorker(opts, p) : forkedWorker(opts, p)));
  try {
    await Promise.all(handles.map((h) => h.ready));
    const load = loadavg()[0] ?? 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (const h of handles) h.go();
    const timer =
      onProgress === undefined
        ? undefined
        : setInterval(() => onProgress(handles.reduce((s, h) => s + h.taken(), 0), (performance.now() - t0) / 1000), PROGRESS_INTERVAL_MS);
    let results: WorkerResult[];
    try {
      results = await Promise.all(handles.map((h) => h.result));
    } finally {
      if (timer !== undefined) clearInterval(timer);
    }
    const elapsedSec = (performance.now() - t0) / 1000;
    const parentCpu = process.cpuUsage(cpu0);
    // In-process, the parent's CPU already includes the worker's.
    const forked = opts.workers > 1;
    const userUs = parentCpu.user + (forked ? results.reduce((s, r) => s + r.cpuUserUs, 0) : 0);
    const systemUs = parentCpu.system + (forked ? results.reduce((s, r) => s + r.cpuSystemUs, 0) : 0);

    const recorder = new Recorder();
    for (const r of results) recorder.merge(r.recorder);
    const ops: Record<string, LatencySummary> = {};
    const names = new Set([...recorder.histograms.keys(), ...recorder.errors.keys()]);
    for (const op of [...names].sort()) ops[op] = summarize(recorder.histograms.get(op), recorder.errors.get(op) ?? 0, elapsedSec);
    const cores = cpus().length;
    return {
      workload: opts.workload,
      options: opts,
      elapsedSec: Math.round(elapsedSec * 1000) / 1000,
      requests: results.reduce((s, r) => s + r.taken, 0),
      ops,
      counters: Object.fromEntries(recorder.counters),
      errorSamples: recorder.errorSamples,
      generator: {
        workers: opts.workers,
        cpuUserSec: Math.round(userUs / 1000) / 1000,
        cpuSystemSec: Math.round(systemUs / 1000) / 1000,
        cpuPercentOfMachine: Math.round(((userUs + systemUs) / 1e6 / elapsedSec / cores) * 1000) / 10,
        cores,
        loadAvg1m: Math.round(load * 100) / 100,
      },
    };
  } finally {
    for (const h of handles) h.kill();
  }
}
