/**
 * One generator worker: opens its conns, prepares its workload, waits for the
 * start signal, runs until its budget is spent, and returns what it recorded
 * and the CPU it used. The same code runs inside the CLI's process (one
 * worker) or in forked child processes (several), which talk to the parent
 * over Node's IPC channel with the {@link ParentMessage}/{@link ChildMessage} protocol.
 */
import { openConns } from './client.js';
import type { BenchOptions } from './flags.js';
import { Recorder, type RecorderWire } from './histogram.js';
import { Budget, workloadOf, type WorkerPlan } from './workloads/index.js';

/** What a worker hands back. */
export interface WorkerResult {
  readonly recorder: RecorderWire;
  /** CPU used by this worker's process between start and end, µs (process.cpuUsage). */
  readonly cpuUserUs: number;
  readonly cpuSystemUs: number;
  /** Requests issued. */
  readonly taken: number;
}

/** Hooks a worker calls, so the caller controls start and sees progress. */
export interface WorkerHooks {
  /** Called when prepared; the timed run starts when the returned promise resolves. */
  readyAndWaitForGo(): Promise<void>;
  /** Gives the caller the budget, whose `taken` is the worker's progress. */
  onBudget?(budget: Budget): void;
}

/** Runs one worker's share of a benchmark. */
export async function runWorker(opts: BenchOptions, plan: WorkerPlan, hooks: WorkerHooks): Promise<WorkerResult> {
  const recorder = new Recorder();
  const budget = new Budget(plan.total, opts.durationSec);
  hooks.onBudget?.(budget);
  const conns = openConns(opts.endpoints, plan.conns, plan.connOffset);
  try {
    await Promise.all(conns.map((c) => c.ready()));
    const run = await workloadOf(opts.workload).prepare({ opts, plan, conns, recorder, budget });
    await hooks.readyAndWaitForGo();
    const cpu0 = process.cpuUsage();
    budget.start(Date.now());
    await run();
    const cpu = process.cpuUsage(cpu0);
    return { recorder: recorder.toWire(), cpuUserUs: cpu.user, cpuSystemUs: cpu.system, taken: budget.taken };
  } finally {
    for (const c of conns) c.close();
  }
}

/** Parent → child. */
export type ParentMessage = { type: 'init'; opts: BenchOptions; plan: WorkerPlan } | { type: 'go' };

/** Child → parent. */
export type ChildMessage =
  | { type: 'ready' }
  | { type: 'progress'; taken: number }
  | { type: 'done'; result: WorkerResult }
  | { type: 'failed'; message: string };

/** Environment variable that marks a forked worker process. */
export const WORKER_ENV = 'KEYSPAN_BENCH_WORKER';
/** How often a forked worker reports progress. */
const PROGRESS_INTERVAL_MS = 250;

function send(msg: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined) resolve();
    else process.send(msg, undefined, {}, () => resolve());
  });
}

/** Entry point of a forked worker: waits for `init`, runs, reports, exits. */
function workerMain(): void {
  let goResolve: (() => void) | undefined;
  const go = new Promise<void>((r) => (goResolve = r));
  process.on('message', (msg: ParentMessage) => {
    if (msg.type === 'go') {
      goResolve?.();
      return;
    }
    let budget: Budget | undefined;
    const timer = setInterval(() => {
      if (budget !== undefined) void send({ type: 'progress', taken: budget.taken });
    }, PROGRESS_INTERVAL_MS);
    runWorker(msg.opts, msg.plan, {
      readyAndWaitForGo: async () => {
        await send({ type: 'ready' });
        await go;
      },
      onBudget: (b) => (budget = b),
    })
      .then((result) => send({ type: 'done', result }))
      .catch((err: unknown) => send({ type: 'failed', message: err instanceof Error ? err.message : String(err) }))
      .finally(() => {
        clearInterval(timer);
        process.disconnect?.();
      });
  });
  // The parent going away must not leave an orphan generating load.
  process.on('disconnect', () => setTimeout(() => process.exit(0), 100).unref());
}

if (process.env[WORKER_ENV] === '1' && process.send !== undefined) workerMain();
