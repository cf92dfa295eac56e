/**
 * The warm-up of `bench:compare` (compare.ts): unmeasured runs on each
 * freshly started system before its cases.
 */

/** One warm-up run: a workload and its CLI flags (endpoints and --json are added). */
export interface WarmupRun {
  readonly workload: string;
  readonly args: readonly string[];
}

/**
 * Unmeasured runs on each freshly started system before its cases, the same
 * for every system: keyspan runs on a JIT, which compiles its hot paths only
 * after they have run for a while, so a cold process would be measured on
 * its first seconds of unoptimised code (etcd, compiled ahead of time, loses
 * nothing by it). Every request path of the suite runs here once, the
 * single-client one too; keys are 16 bytes long where the cases use 8, so no
 * measured put finds its key already written (mixed writes its own objects,
 * which its setup writes again before the measured run).
 *
 * The single-client writes run for seconds, not a few hundred requests: V8
 * tiers a function up after an amount of its own execution, so paths taken
 * once per request at one client's rate settle only after several seconds
 * there, whatever ran before at 100 clients. One node, after the 10 × 100
 * put above, single-client put p50 per 1,500 puts: 1.67, 1.27, 1.06, 1.11,
 * 1.02 ms, then 0.9–1.1 (docs/benchmarks.md). The measured 1 × 1 cases are
 * 2,000 requests, shorter than that settling.
 */
export const WARMUP: readonly WarmupRun[] = [
  { workload: 'put', args: ['--conns', '10', '--clients', '100', '--total', '5000', '--key-size', '16', '--val-size', '256', '--sequential-keys', '--key-space-size', '100000'] },
  { workload: 'put', args: ['--conns', '1', '--clients', '1', '--duration', '10', '--key-size', '16', '--val-size', '256', '--sequential-keys', '--key-space-size', '100000'] },
  { workload: 'range', args: ['--conns', '10', '--clients', '100', '--total', '5000', '--key-size', '16', '--consistency', 'l'] },
  { workload: 'range', args: ['--conns', '10', '--clients', '100', '--total', '5000', '--key-size', '16', '--consistency', 's'] },
  { workload: 'txn-put', args: ['--conns', '10', '--clients', '100', '--total', '3000', '--key-size', '16', '--key-space-size', '1000'] },
  { workload: 'txn-put', args: ['--conns', '1', '--clients', '1', '--duration', '5', '--key-size', '16', '--key-space-size', '1000'] },
  { workload: 'lease-keepalive', args: ['--conns', '10', '--clients', '100', '--total', '5000'] },
  { workload: 'watch-latency', args: ['--conns', '10', '--clients', '100', '--total', '300', '--put-rate', '200'] },
  { workload: 'mixed', args: ['--conns', '10', '--clients', '100', '--duration', '3', '--val-size', '1024', '--key-space-size', '10000'] },
  { workload: 'list', args: ['--conns', '10', '--clients', '100', '--total', '300', '--val-size', '1024', '--key-space-size', '10000'] },
];

