/**
 * The simulator's command line.
 *
 *   npm run sim -- --seeds N [--start S]     run seeds S..S+N-1 (S defaults to 1)
 *   npm run sim -- --seed S [--trace]         replay one seed (verbose with --trace)
 * Options: --duration MS (fault phase, virtual), --bug forgetVote|sendBeforeDurable|earlyAppendResponses|countSelfEarly|grantAllVotes|serveReadsEarly|staleReadIndex,
 *          --no-faults, --stop-on-failure, --set key=number (scenario override, e.g. crashAfterVoteRate=1).
 * Exits 0 only if every seed held every invariant.
 */
import { performance } from 'node:perf_hooks';
import { runSeed } from './cluster.js';
import type { SimOptions } from './cluster.js';
import type { HostBugs } from './node-host.js';
import type { Scenario } from './scenario.js';
import { addToSummary, formatFailure, formatSummary, newSummary } from './report.js';

interface Args {
  start: number;
  count: number;
  trace: boolean;
  durationMs: number | undefined;
  bug: keyof HostBugs | undefined;
  faults: boolean;
  stopOnFailure: boolean;
  overrides: Record<string, number>;
}

const BUGS: readonly (keyof HostBugs)[] = ['forgetVote', 'sendBeforeDurable', 'earlyAppendResponses', 'countSelfEarly', 'grantAllVotes', 'serveReadsEarly', 'staleReadIndex'];

function parseArgs(argv: readonly string[]): Args {
  const a: Args = { start: 1, count: 100, trace: false, durationMs: undefined, bug: undefined, faults: true, stopOnFailure: false, overrides: {} };
  const int = (i: number): number => {
    const v = Number(argv[i]);
    if (!Number.isSafeInteger(v)) throw new Error(`${argv[i - 1]} needs an integer, got ${argv[i]}`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    switch (arg) {
      case '--seeds':
        a.count = int(++i);
        break;
      case '--start':
        a.start = int(++i);
        break;
      case '--seed':
        a.start = int(++i);
        a.count = 1;
        break;
      case '--trace':
        a.trace = true;
        break;
      case '--duration':
        a.durationMs = int(++i);
        break;
      case '--bug': {
        const b = argv[++i];
        const found = BUGS.find((x) => x === b);
        if (found === undefined) throw new Error(`--bug must be one of ${BUGS.join(', ')}`);
        a.bug = found;
        break;
      }
      case '--no-faults':
        a.faults = false;
        break;
      case '--set': {
        // Scenario overrides for numeric fields, e.g. --set crashAfterVoteRate=1
        const [key, value] = (argv[++i] ?? '').split('=');
        const v = Number(value);
        if (key === undefined || key === '' || !Number.isFinite(v)) throw new Error('--set needs key=number');
        a.overrides[key] = v;
        break;
      }
      case '--stop-on-failure':
        a.stopOnFailure = true;
        break;
      default:
        throw new Error(`unknown argument ${arg}`);
    }
  }
  return a;
}

function main(): number {
  const args = parseArgs(process.argv.slice(2));
  const summary = newSummary();
  const t0 = performance.now();
  const bugFlag =
    (args.bug === undefined ? '' : ` --bug ${args.bug}`) +
    Object.entries(args.overrides)
      .map(([k, v]) => ` --set ${k}=${v}`)
      .join('');
  console.log(`sim: seeds ${args.start}..${args.start + args.count - 1}${bugFlag}`);
  for (let seed = args.start; seed < args.start + args.count; seed++) {
    let opts: SimOptions = { seed, faults: args.faults };
    if (args.durationMs !== undefined) opts = { ...opts, durationMs: args.durationMs };
    if (args.bug !== undefined) opts = { ...opts, bugs: { [args.bug]: true } };
    if (Object.keys(args.overrides).length > 0) opts = { ...opts, scenario: args.overrides as Partial<Scenario> };
    if (args.trace) opts = { ...opts, trace: (line) => console.log(line) };
    const r = runSeed(opts);
    addToSummary(summary, r);
    if (args.count === 1) console.log(`seed ${seed}: ${r.ok ? 'ok' : 'FAILED'}, ${r.events} events, ${r.virtualMs}ms virtual, digest ${r.digest}`);
    if (!r.ok) {
      console.log(formatFailure(r, bugFlag));
      if (args.stopOnFailure) break;
    }
  }
  console.log(formatSummary(summary, performance.now() - t0));
  return summary.failed.length === 0 ? 0 : 1;
}

process.exitCode = main();
