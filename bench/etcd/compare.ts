/**
 * `npm run bench:compare -- [flags]`: the side-by-side suite. For each system
 * (etcd with 1 member, etcd with 3 members on the ports of etcd's Procfile,
 * keyspan with 1 node, or any running target), it starts the system with a
 * fresh data directory, runs the workload matrix through the load generator's
 * CLI (`--json`), stops the system and deletes its data. It writes
 * `results.jsonl`, `summary.md` (tables and keyspan/etcd ratios) and two SVG
 * charts (throughput, p99) into --out.
 *
 * Flags:
 *   --systems etcd1,etcd3,keyspan1,keyspan3   systems to start (default all four)
 *   --target name=host:port[+host:port]  an already running system (repeatable; not started or stopped)
 *   --scale quick|full               request counts: quick is a tenth (default full)
 *   --out DIR                        output directory (default dist/bench-compare, which git ignores)
 *   --only put,range-l,...           cases to run (default all)
 *   --from a.jsonl[,b.jsonl]         run nothing: render summary and charts from earlier results
 *   --warmup on|off                  run the warm-up (warmup.ts) on each system before its cases (default on)
 *   --rounds N                       run every system N times, the order reversed every other round;
 *                                    a cell's figures are the medians over its rounds (rounds.ts; default 1)
 *
 * Systems are started only when all of their ports are free: the Procfile
 * ports are shared with anyone else's local cluster.
 *
 * A system of several members is given to the generator leader first (the
 * member that Maintenance.Status names, asked after the warm-up): a single
 * conn talks to the leader, as the "leader only" rows of etcd's performance
 * table do, and a run does not depend on which member an election picked;
 * more conns spread over every member, round-robin.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Conn } from './client.js';
import type { EtcdMessage } from '../../src/gateway/proto.js';
import { barChartSvg } from './chart.js';
import { WARMUP } from './warmup.js';
import { SERVER_NODE_FLAGS } from '../../src/cli/node-flags.js';
import { median, medianFigures, roundOrder, type OpFigures } from './rounds.js';

/** One load setting: conns × clients, requests, worker processes. */
export interface Setting {
  readonly conns: number;
  readonly clients: number;
  readonly total: number;
  readonly workers: number;
}

/** The three settings of the issue: 1×1, 10×100, 100×1000. */
export const SETTINGS: readonly Setting[] = [
  { conns: 1, clients: 1, total: 2_000, workers: 1 },
  { conns: 10, clients: 100, total: 20_000, workers: 1 },
  { conns: 100, clients: 1000, total: 50_000, workers: 2 },
];

/** One benchmark case: a workload and its flags; `fixed` replaces --total for cases bounded otherwise. */
export interface Case {
  readonly name: string;
  readonly workload: string;
  readonly args: readonly string[];
  readonly fixed?: readonly string[];
}

/** The cases: etcd's published put/range settings (8-byte keys, 256-byte values), then the rest. */
export const CASES: readonly Case[] = [
  { name: 'put', workload: 'put', args: ['--key-size', '8', '--val-size', '256', '--sequential-keys', '--key-space-size', '100000'] },
  { name: 'range-l', workload: 'range', args: ['--key-size', '8', '--val-size', '256', '--consistency', 'l'] },
  { name: 'range-s', workload: 'range', args: ['--key-size', '8', '--val-size', '256', '--consistency', 's'] },
  { name: 'txn-put', workload: 'txn-put', args: ['--key-size', '8', '--val-size', '256', '--key-space-size', '10000'] },
  { name: 'lease-keepalive', workload: 'lease-keepalive', args: [] },
  { name: 'watch-latency', workload: 'watch-latency', args: ['--val-size', '256', '--put-rate', '200'], fixed: ['--total', '1000'] },
  { name: 'mixed', workload: 'mixed', args: ['--val-size', '1024', '--key-space-size', '10000'], fixed: ['--duration', '10'] },
  { name: 'list', workload: 'list', args: ['--val-size', '1024', '--key-space-size', '10000'], fixed: ['--duration', '10'] },
];

/** Runs {@link WARMUP} against `system`; a failure is logged and the cases still run. */
async function warmUp(system: System, log: (s: string) => void): Promise<void> {
  for (const w of WARMUP) {
    const args = [w.workload, '--endpoints', system.endpoints.join(','), ...w.args, '--json'];
    log(`${system.name}: warm-up: bench ${args.join(' ')}`);
    try {
      await runCli(args);
    } catch (err) {
      log(`  warm-up failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

/** A system under test. */
interface System {
  readonly name: string;
  readonly endpoints: readonly string[];
  /** Starts it; undefined for a target that is already running. */
  readonly start?: () => Promise<Started>;
}

interface Started {
  stop(): Promise<void>;
}

const ETCD = process.env['ETCD'] ?? 'etcd';
const PROCFILE = [
  { name: 'infra1', client: 2379, peer: 12380 },
  { name: 'infra2', client: 22379, peer: 22380 },
  { name: 'infra3', client: 32379, peer: 32380 },
] as const;

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Waits until a Range answers on `endpoint` (works for etcd and keyspan alike). */
async function waitServing(endpoint: string, deadlineMs: number): Promise<void> {
  let last: unknown;
  while (Date.now() < deadlineMs) {
    const conn = new Conn(endpoint);
    try {
      await conn.ready(2_000);
      await conn.unary('etcdserverpb.KV', 'Range', { key: Buffer.from('bench-health') });
      return;
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 250));
    } finally {
      conn.close();
    }
  }
  throw new Error(`${endpoint} is not serving: ${last instanceof Error ? last.message : String(last)}`);
}

function etcdSystem(members: 1 | 3): System {
  const ms = PROCFILE.slice(0, members);
  return {
    name: `etcd ${members} member${members > 1 ? 's' : ''}`,
    endpoints: ms.map((m) => `127.0.0.1:${m.client}`),
    start: async () => {
      const dirs: string[] = [];
      const children: ChildProcess[] = [];
      const cluster = ms.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(',');
      for (const m of ms) {
        const dir = await mkdtemp(join(tmpdir(), `bench-etcd-${m.name}-`));
        dirs.push(dir);
        const c = `http://127.0.0.1:${m.client}`;
        const p = `http://127.0.0.1:${m.peer}`;
        children.push(
          spawn(ETCD, ['--name', m.name, '--data-dir', dir, '--listen-client-urls', c, '--advertise-client-urls', c, '--listen-peer-urls', p,
            '--initial-advertise-peer-urls', p, '--initial-cluster-token', 'bench-cluster', '--initial-cluster', cluster,
            '--initial-cluster-state', 'new', '--log-level', 'error'], { stdio: 'ignore' }),
        );
      }
      const stop = async (): Promise<void> => {
        await Promise.all(children.map(stopChild));
        await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
      };
      try {
        for (const m of ms) await waitServing(`127.0.0.1:${m.client}`, Date.now() + 30_000);
      } catch (err) {
        await stop();
        throw err;
      }
      return { stop };
    },
  };
}

function keyspanSystem(members: 1 | 3): System {
  const bin = fileURLToPath(new URL('../../../bin/keyspan.js', import.meta.url));
  const ms = PROCFILE.slice(0, members);
  return {
    name: `keyspan ${members} node${members > 1 ? 's' : ''}`,
    endpoints: ms.map((m) => `127.0.0.1:${m.client}`),
    start: async () => {
      const dirs: string[] = [];
      const children: ChildProcess[] = [];
      const cluster = ms.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(',');
      for (const m of ms) {
        const dir = await mkdtemp(join(tmpdir(), `bench-keyspan-${m.name}-`));
        dirs.push(dir);
        const c = `http://127.0.0.1:${m.client}`;
        const p = `http://127.0.0.1:${m.peer}`;
        const clusterFlags = members === 1 ? [] : ['--initial-advertise-peer-urls', p, '--initial-cluster', cluster, '--initial-cluster-state', 'new'];
        children.push(
          spawn(process.execPath, [...SERVER_NODE_FLAGS, bin, 'start', '--name', m.name, '--data-dir', dir, '--listen-client-urls', c, '--advertise-client-urls', c,
            '--listen-peer-urls', p, ...clusterFlags, '--log-level', 'error'], { stdio: 'ignore' }),
        );
      }
      const stop = async (): Promise<void> => {
        await Promise.all(children.map(stopChild));
        await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
      };
      try {
        for (const m of ms) await waitServing(`127.0.0.1:${m.client}`, Date.now() + 30_000);
      } catch (err) {
        await stop();
        throw err;
      }
      return { stop };
    },
  };
}

function systemPorts(name: string): number[] {
  switch (name) {
    case 'etcd1':
      return [2379, 12380];
    case 'etcd3':
      return PROCFILE.flatMap((m) => [m.client, m.peer]);
    case 'keyspan1':
      return [2379, 12380];
    case 'keyspan3':
      return PROCFILE.flatMap((m) => [m.client, m.peer]);
    default:
      return [];
  }
}

/** One run's JSON line, as far as the suite reads it. */
interface RunOutput {
  ops: Record<string, OpFigures>;
  generator: { cpuPercentOfMachine: number };
  counters: Record<string, number>;
}

/** One row of the results. */
interface Row {
  readonly system: string;
  /** The endpoint that led when the system's cases started (several members only). */
  readonly leader?: string;
  readonly caseName: string;
  readonly setting: string;
  readonly op: string;
  readonly output: RunOutput | undefined;
  readonly error?: string;
  /** The round it was measured in (1-based; absent: a single round). */
  readonly round?: number;
  /** A cell combined over rounds: each round's throughput, in round order. */
  readonly byRound?: readonly number[];
}

/**
 * One row per system, case and setting: a cell measured in several rounds
 * gets the medians of its figures (rounds.ts) and its throughput per round.
 */
function combineRounds(rows: readonly Row[]): Row[] {
  const cells = new Map<string, Row[]>();
  for (const r of rows) {
    const key = `${r.system}\0${r.caseName}\0${r.setting}`;
    const cell = cells.get(key);
    if (cell === undefined) cells.set(key, [r]);
    else cell.push(r);
  }
  const out: Row[] = [];
  for (const cell of cells.values()) {
    const first = cell[0]!;
    if (cell.length === 1) {
      out.push(first);
      continue;
    }
    const measuredRounds = cell.filter((r) => r.output?.ops[r.op] !== undefined);
    const byRound = cell.map((r) => r.output?.ops[r.op]?.throughput ?? NaN);
    if (measuredRounds.length === 0) {
      out.push({ ...first, byRound });
      continue;
    }
    const output: RunOutput = {
      ops: { [first.op]: medianFigures(measuredRounds.map((r) => r.output!.ops[r.op]!)) },
      generator: { cpuPercentOfMachine: Math.round(10 * median(measuredRounds.map((r) => r.output!.generator.cpuPercentOfMachine))) / 10 },
      counters: measuredRounds[0]!.output!.counters,
    };
    const { error: _error, round: _round, ...rest } = first;
    out.push({ ...rest, output, byRound });
  }
  return out;
}

const CLI = fileURLToPath(new URL(`../cli.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url));

function runCli(args: readonly string[]): Promise<RunOutput> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [...(CLI.endsWith('.ts') ? ['--import', 'tsx'] : []), CLI, ...args], { timeout: 10 * 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(stderr.trim() || err.message));
      else resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as RunOutput);
    });
  });
}

/** The op whose figures represent a case (its main request type). */
function mainOp(c: Case): string {
  switch (c.name) {
    case 'range-l':
    case 'range-s':
      return c.name;
    case 'lease-keepalive':
      return 'keepalive';
    case 'watch-latency':
      return 'watch-event';
    case 'mixed':
      return 'update';
    case 'list':
      return 'list-page';
    default:
      return c.name;
  }
}

function settingLabel(s: Setting): string {
  return `${s.conns}×${s.clients}`;
}

/**
 * The endpoint whose member leads, by Maintenance.Status (`leader` is the
 * leader's member id, `header.member_id` the answering member's);
 * undefined when the members do not agree on one.
 */
async function leaderEndpoint(endpoints: readonly string[]): Promise<string | undefined> {
  const statuses = await Promise.all(
    endpoints.map(async (endpoint) => {
      const conn = new Conn(endpoint);
      try {
        const res = await conn.unary('etcdserverpb.Maintenance', 'Status', {});
        return { endpoint, member: String((res['header'] as EtcdMessage)['member_id']), leader: String(res['leader']) };
      } finally {
        conn.close();
      }
    }),
  );
  const leaders = new Set(statuses.map((s) => s.leader));
  if (leaders.size !== 1) return undefined;
  return statuses.find((s) => s.member === statuses[0]?.leader)?.endpoint;
}

async function runSuite(system: System, cases: readonly Case[], scale: number, log: (s: string) => void): Promise<Row[]> {
  let leader: string | undefined;
  if (system.endpoints.length > 1) {
    leader = await leaderEndpoint(system.endpoints).catch(() => undefined);
    if (leader === undefined) log(`${system.name}: no agreed leader found; endpoints in the given order`);
    else {
      log(`${system.name}: leader at ${leader}, first endpoint`);
      system = { ...system, endpoints: [leader, ...system.endpoints.filter((e) => e !== leader)] };
    }
  }
  const rows: Row[] = [];
  for (const c of cases) {
    for (const s of SETTINGS) {
      const total = Math.max(100, Math.round(s.total * scale));
      const bound = c.fixed ?? ['--total', String(total)];
      const args = [c.workload, '--endpoints', system.endpoints.join(','), '--conns', String(s.conns), '--clients', String(s.clients),
        '--workers', String(s.workers), ...bound, ...c.args, '--json'];
      log(`${system.name}: ${c.name} ${settingLabel(s)}: bench ${args.join(' ')}`);
      try {
        const output = await runCli(args);
        rows.push({ system: system.name, ...(leader === undefined ? {} : { leader }), caseName: c.name, setting: settingLabel(s), op: mainOp(c), output });
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err);
        log(`  failed: ${error}`);
        rows.push({ system: system.name, caseName: c.name, setting: settingLabel(s), op: mainOp(c), output: undefined, error });
      }
    }
  }
  return rows;
}

function summaryMarkdown(rows: readonly Row[], systems: readonly string[], warmup: boolean, rounds: number): string {
  const lines: string[] = [];
  lines.push(`Machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} at the end.`, '');
  lines.push(warmup ? 'Each started system ran the unmeasured warm-up (`WARMUP` in bench/etcd/warmup.ts) before its cases.' : 'No warm-up: each system was measured from its start (`--warmup off`).', '');
  if (rounds > 1) {
    lines.push(
      `Each system ran the suite ${rounds} times (\`--rounds ${rounds}\`), started afresh each time, in the given order and then reversed, alternately; a cell's figures are the medians over its rounds, and its last column the req/s of each round.`,
      '',
    );
  }
  for (const system of systems) {
    const leader = rows.find((r) => r.system === system && r.leader !== undefined)?.leader;
    if (leader !== undefined) lines.push(`${system}: leader at ${leader}, given first (1×1 talks to the leader; more conns spread over every member).`, '');
  }
  const perRound = rounds > 1 ? ' req/s by round |' : '';
  lines.push(`| system | case | conns×clients | op | req/s | avg ms | p50 ms | p99 ms | p99.9 ms | errors | generator CPU % |${perRound}`);
  lines.push(`|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|${rounds > 1 ? '---|' : ''}`);
  const roundsCell = (r: Row): string => (rounds > 1 ? ` ${(r.byRound ?? []).map((t) => (Number.isNaN(t) ? 'failed' : t.toFixed(0))).join(' / ')} |` : '');
  for (const r of rows) {
    const o = r.output?.ops[r.op];
    if (o === undefined) {
      lines.push(`| ${r.system} | ${r.caseName} | ${r.setting} | ${r.op} | failed: ${r.error ?? 'no data'} | | | | | | |${roundsCell(r)}`);
      continue;
    }
    lines.push(`| ${r.system} | ${r.caseName} | ${r.setting} | ${r.op} | ${o.throughput.toFixed(0)} | ${o.avgMs.toFixed(2)} | ${o.p50Ms.toFixed(2)} | ${o.p99Ms.toFixed(2)} | ${o.p999Ms.toFixed(2)} | ${o.errors} | ${r.output?.generator.cpuPercentOfMachine ?? ''} |${roundsCell(r)}`);
  }
  const base = systems.find((s) => s.startsWith('etcd'));
  const others = systems.filter((s) => s !== base);
  if (base !== undefined && others.length > 0) {
    lines.push('', `Ratios against ${base} (throughput ratio > 1 and p99 ratio < 1 favour the other system):`, '');
    lines.push('| case | conns×clients | system | req/s ratio | p99 ratio |', '|---|---|---|---:|---:|');
    for (const r of rows.filter((x) => x.system !== base)) {
      const b = rows.find((x) => x.system === base && x.caseName === r.caseName && x.setting === r.setting)?.output?.ops[r.op];
      const o = r.output?.ops[r.op];
      if (b === undefined || o === undefined || b.throughput === 0 || b.p99Ms === 0) continue;
      lines.push(`| ${r.caseName} | ${r.setting} | ${r.system} | ${(o.throughput / b.throughput).toFixed(2)} | ${(o.p99Ms / b.p99Ms).toFixed(2)} |`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function charts(rows: readonly Row[], systems: readonly string[]): { throughput: string; p99: string } {
  const keys: string[] = [];
  for (const r of rows) {
    const k = `${r.caseName} ${r.setting}`;
    if (!keys.includes(k)) keys.push(k);
  }
  const value = (k: string, s: string, f: (o: RunOutput['ops'][string]) => number): number | undefined => {
    const r = rows.find((x) => `${x.caseName} ${x.setting}` === k && x.system === s);
    const o = r?.output?.ops[r.op];
    return o === undefined ? undefined : f(o);
  };
  return {
    throughput: barChartSvg({
      title: 'Throughput (higher is better)',
      unit: 'req/s',
      series: systems,
      groups: keys.map((k) => ({ label: k, values: systems.map((s) => value(k, s, (o) => o.throughput)) })),
    }),
    p99: barChartSvg({
      title: 'p99 latency (lower is better)',
      unit: 'ms',
      series: systems,
      groups: keys.map((k) => ({ label: k, values: systems.map((s) => value(k, s, (o) => o.p99Ms)) })),
    }),
  };
}

async function main(argv: readonly string[]): Promise<number> {
  let systemsArg = 'etcd1,etcd3,keyspan1,keyspan3';
  const targets: System[] = [];
  let scale = 1;
  let out = join('dist', 'bench-compare');
  let only: string[] | undefined;
  let from: string[] | undefined;
  let warmup = true;
  let rounds = 1;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined) {
      process.stderr.write(`bench:compare: ${flag} needs a value\n`);
      return 2;
    }
    i++;
    switch (flag) {
      case '--systems':
        systemsArg = value;
        break;
      case '--target': {
        const [name, eps] = value.split('=');
        if (name === undefined || eps === undefined || eps === '') {
          process.stderr.write(`bench:compare: --target must be name=host:port[+host:port], got "${value}"\n`);
          return 2;
        }
        targets.push({ name, endpoints: eps.split('+') });
        break;
      }
      case '--scale':
        if (value !== 'quick' && value !== 'full') {
          process.stderr.write(`bench:compare: --scale must be quick or full, got "${value}"\n`);
          return 2;
        }
        scale = value === 'quick' ? 0.1 : 1;
        break;
      case '--out':
        out = value;
        break;
      case '--only':
        only = value.split(',');
        break;
      case '--from':
        from = value.split(',');
        break;
      case '--warmup':
        if (value !== 'on' && value !== 'off') {
          process.stderr.write(`bench:compare: --warmup must be on or off, got "${value}"\n`);
          return 2;
        }
        warmup = value === 'on';
        break;
      case '--rounds':
        rounds = Number(value);
        if (!Number.isSafeInteger(rounds) || rounds < 1) {
          process.stderr.write(`bench:compare: --rounds must be a positive integer, got "${value}"\n`);
          return 2;
        }
        break;
      default:
        process.stderr.write(`bench:compare: unknown flag ${flag}\n`);
        return 2;
    }
  }
  const cases = only === undefined ? CASES : CASES.filter((c) => only?.includes(c.name));
  const systems: System[] = [];
  for (const s of systemsArg.split(',').filter((x) => x !== '')) {
    if (s === 'etcd1') systems.push(etcdSystem(1));
    else if (s === 'etcd3') systems.push(etcdSystem(3));
    else if (s === 'keyspan1') systems.push(keyspanSystem(1));
    else if (s === 'keyspan3') systems.push(keyspanSystem(3));
    else {
      process.stderr.write(`bench:compare: unknown system ${s} (etcd1, etcd3, keyspan1)\n`);
      return 2;
    }
  }
  const log = (s: string): void => void process.stderr.write(`${s}\n`);
  const rows: Row[] = [];
  const measured: string[] = [];
  if (from !== undefined) {
    for (const f of from) {
      for (const line of (await readFile(f, 'utf8')).split('\n')) {
        if (line.trim() === '') continue;
        const r = JSON.parse(line) as Row;
        rows.push(r);
        if (!measured.includes(r.system)) measured.push(r.system);
      }
    }
    systems.length = 0;
  }
  const names = systemsArg.split(',').filter((x) => x !== '');
  const runs = [...systems.map((system, i) => ({ system, ports: systemPorts(names[i] ?? '') })), ...(from === undefined ? targets : []).map((system) => ({ system, ports: [] }))];
  for (let round = 0; round < (runs.length === 0 ? 0 : rounds); round++) {
    for (const { system, ports } of roundOrder(runs, round)) {
      let started: Started | undefined;
      if (system.start !== undefined) {
        const busy: number[] = [];
        for (const p of ports) if (!(await portFree(p))) busy.push(p);
        if (busy.length > 0) {
          log(`${system.name}: skipped, ports in use: ${busy.join(', ')}`);
          continue;
        }
        try {
          started = await system.start();
        } catch (err) {
          log(`${system.name}: skipped, did not start: ${err instanceof Error ? err.message : String(err)}`);
          continue;
        }
      }
      try {
        if (rounds > 1) log(`round ${round + 1} of ${rounds}: ${system.name}`);
        if (warmup) await warmUp(system, log);
        const suite = await runSuite(system, cases, scale, log);
        rows.push(...(rounds > 1 ? suite.map((r) => ({ ...r, round: round + 1 })) : suite));
        if (!measured.includes(system.name)) measured.push(system.name);
      } finally {
        await started?.stop();
      }
    }
  }
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'results.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const cells = combineRounds(rows);
  const roundsSeen = Math.max(1, ...rows.map((r) => r.round ?? 1));
  await writeFile(join(out, 'summary.md'), summaryMarkdown(cells, measured, warmup, roundsSeen));
  const c = charts(cells, measured);
  await writeFile(join(out, 'throughput.svg'), c.throughput);
  await writeFile(join(out, 'p99.svg'), c.p99);
  log(`wrote ${join(out, 'results.jsonl')}, summary.md, throughput.svg, p99.svg`);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
