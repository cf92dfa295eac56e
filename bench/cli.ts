/**
 * `npm run bench -- <workload> [flags]`: the etcd v3 API load generator (see
 * bench/etcd/flags.ts for the flags, docs/benchmarks.md "etcd API benchmark"
 * for figures). Prints a text report, or one JSON line with --json. Exit
 * codes: 0 ok, 1 the run failed, 2 bad flags.
 */
import cliProgress from 'cli-progress';
import { FlagError, parseFlags, USAGE } from './etcd/flags.js';
import { toJsonLine, toText } from './etcd/report.js';
import { runBench, type ProgressFn } from './etcd/runner.js';

/** Runs the CLI with `argv` (without node and the script); resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let opts;
  try {
    opts = parseFlags(argv);
  } catch (err) {
    if (err instanceof FlagError) {
      process.stderr.write(`bench: ${err.message}\n${USAGE}\n`);
      return 2;
    }
    throw err;
  }
  // A bar only for a person watching: never in --json mode or when stderr is a pipe.
  const showBar = !opts.json && process.stderr.isTTY === true;
  let bar: cliProgress.SingleBar | undefined;
  let onProgress: ProgressFn | undefined;
  if (showBar) {
    const byTime = opts.total === undefined;
    bar = new cliProgress.SingleBar(
      { format: `${opts.workload} [{bar}] {percentage}% | {value}/{total}${byTime ? ' s' : ''} | {requests} req`, stream: process.stderr, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    bar.start(byTime ? Math.ceil(opts.durationSec ?? 0) : (opts.total ?? 0), 0, { requests: 0 });
    onProgress = (taken, elapsedSec) => bar?.update(byTime ? Math.min(Math.floor(elapsedSec), bar.getTotal()) : taken, { requests: taken });
  }
  try {
    const result = await runBench(opts, onProgress);
    bar?.stop();
    process.stdout.write(`${opts.json ? toJsonLine(result) : toText(result)}\n`);
    return 0;
  } catch (err) {
    bar?.stop();
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
