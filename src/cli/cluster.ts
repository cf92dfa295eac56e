/**
 * `keyspan cluster start|stop`: a local three-member cluster in the
 * background, like etcd's Procfile — members infra1..infra3, clients on
 * 127.0.0.1:2379/22379/32379, peers on 12380/22380/32380, data under
 * <dir>/<name>, logs in <dir>/<name>.log, pid files <dir>/<name>.pid
 * (<dir> defaults to ./data/cluster).
 *
 * `start` spawns the members detached (each is a `keyspan start` process),
 * waits until every member answers /health, and prints the endpoints;
 * `stop` sends SIGTERM to each member and waits for it to exit.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { serverNodeArgs } from './node-flags.js';

/** Members of the local cluster. */
export const LOCAL_CLUSTER_NAMES = ['infra1', 'infra2', 'infra3'] as const;
/** Default client ports (etcd's Procfile). */
export const LOCAL_CLUSTER_CLIENT_PORTS = [2379, 22379, 32379] as const;
/** Default peer ports (etcd's Procfile). */
export const LOCAL_CLUSTER_PEER_PORTS = [12380, 22380, 32380] as const;
/** Default directory of the cluster's data, logs and pid files. */
export const LOCAL_CLUSTER_DIR = './data/cluster';
/** Time `cluster start` waits for every member to be healthy. */
export const CLUSTER_READY_TIMEOUT_MS = 60_000;
/** Time `cluster stop` waits for a member to exit after SIGTERM. */
export const CLUSTER_STOP_TIMEOUT_MS = 30_000;
/** Poll interval while waiting. */
const POLL_MS = 100;
/** Bound on one /health probe. */
const HEALTH_PROBE_TIMEOUT_MS = 2_000;

/** Help text of `keyspan cluster`. */
export const CLUSTER_USAGE = `Usage: keyspan cluster <start|stop> [flags]

Runs a local 3-member cluster (infra1..infra3) in the background.
  --dir <dir>                 Data, logs (<name>.log) and pid files (<name>.pid) (default ./data/cluster)
  --client-ports <p1,p2,p3>   Client ports on 127.0.0.1 (default 2379,22379,32379; env KEYSPAN_CLUSTER_CLIENT_PORTS)
  --peer-ports <p1,p2,p3>     Peer ports on 127.0.0.1 (default 12380,22380,32380; env KEYSPAN_CLUSTER_PEER_PORTS)
  --engine <kind>             Storage engine of every member (default leveldb)
  --heartbeat-interval <ms>   Passed to every member (default 100)
  --election-timeout <ms>     Passed to every member (default 1000)
`;

/** A cluster command's usage error (exit 2). */
class ClusterUsageError extends Error {
  override readonly name = 'ClusterUsageError';
}

/** One member of the local cluster. */
export interface LocalMember {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
}

/** The local cluster's layout. */
export interface LocalCluster {
  readonly dir: string;
  readonly members: readonly LocalMember[];
  /** Extra flags passed to every member. */
  readonly memberFlags: readonly string[];
}

function ports(flag: string, text: string | undefined, defaults: readonly number[]): number[] {
  if (text === undefined || text === '') return [...defaults];
  const list = text.split(',').map((p) => Number(p.trim()));
  if (list.length !== LOCAL_CLUSTER_NAMES.length || list.some((p) => !Number.isSafeInteger(p) || p < 1 || p > 65535)) {
    throw new ClusterUsageError(`--${flag} needs ${LOCAL_CLUSTER_NAMES.length} ports in 1..65535, comma-separated, not '${text}'`);
  }
  return list;
}

/** The cluster's layout from the command's flags and environment. */
export function localCluster(args: readonly string[], env: NodeJS.ProcessEnv = process.env): LocalCluster {
  let values;
  try {
    values = parseArgs({
      args: [...args],
      options: {
        dir: { type: 'string' },
        'client-ports': { type: 'string' },
        'peer-ports': { type: 'string' },
        engine: { type: 'string' },
        'heartbeat-interval': { type: 'string' },
        'election-timeout': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err: unknown) {
    throw new ClusterUsageError((err as Error).message);
  }
  const client = ports('client-ports', values['client-ports'] ?? env['KEYSPAN_CLUSTER_CLIENT_PORTS'], LOCAL_CLUSTER_CLIENT_PORTS);
  const peer = ports('peer-ports', values['peer-ports'] ?? env['KEYSPAN_CLUSTER_PEER_PORTS'], LOCAL_CLUSTER_PEER_PORTS);
  const all = [...client, ...peer];
  if (new Set(all).size !== all.length) throw new ClusterUsageError('the client and peer ports must all differ');
  const memberFlags: string[] = [];
  for (const k of ['engine', 'heartbeat-interval', 'election-timeout'] as const) {
    const v = values[k];
    if (v !== undefined) memberFlags.push(`--${k}`, v);
  }
  return {
    dir: resolve(values.dir ?? LOCAL_CLUSTER_DIR),
    members: LOCAL_CLUSTER_NAMES.map((name, i) => ({ name, clientPort: client[i] as number, peerPort: peer[i] as number })),
    memberFlags,
  };
}

/** The `keyspan start` arguments of one member. */
export function memberArgs(cluster: LocalCluster, m: LocalMember): string[] {
  const initial = cluster.members.map((x) => `${x.name}=http://127.0.0.1:${x.peerPort}`).join(',');
  return [
    'start',
    '--name', m.name,
    '--listen-client-urls', `http://127.0.0.1:${m.clientPort}`,
    '--advertise-client-urls', `http://127.0.0.1:${m.clientPort}`,
    '--listen-peer-urls', `http://127.0.0.1:${m.peerPort}`,
    '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peerPort}`,
    '--initial-cluster', initial,
    '--initial-cluster-token', 'keyspan-local-cluster',
    '--initial-cluster-state', 'new',
    '--data-dir', join(cluster.dir, m.name),
    ...cluster.memberFlags,
  ];
}

const pidFile = (cluster: LocalCluster, m: LocalMember): string => join(cluster.dir, `${m.name}.pid`);
const logFile = (cluster: LocalCluster, m: LocalMember): string => join(cluster.dir, `${m.name}.log`);

/** Whether process `pid` exists (signal 0 probes without signalling). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err: unknown) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The pid in a member's pid file if that process still runs and is a
 * keyspan member (on Linux its command line is checked, so a reused pid of
 * an unrelated process is never signalled).
 */
async function runningPid(cluster: LocalCluster, m: LocalMember): Promise<number | undefined> {
  const text = await readFile(pidFile(cluster, m), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const pid = Number(text.trim());
  if (!Number.isSafeInteger(pid) || pid <= 0 || !alive(pid)) return undefined;
  // /proc/<pid>/cmdline holds the arguments NUL-separated (Linux only; elsewhere the pid is trusted).
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
  if (cmdline !== undefined && !(cmdline.includes('\0start\0') && cmdline.includes(`\0--name\0${m.name}\0`))) return undefined;
  return pid;
}

/** One /health probe: true when the member answers {"health":"true"}. */
function healthy(port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/health', timeout: HEALTH_PROBE_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolvePromise(res.statusCode === 200 && /"health"\s*:\s*"true"/.test(body)));
      res.on('error', () => resolvePromise(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolvePromise(false));
  });
}

/** The last lines of a member's log, for an error message. */
async function logTail(path: string, lines = 15): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.split('\n').slice(-lines - 1).join('\n');
}

/** The CLI entry of this module (`node …/main.js`). */
function cliEntry(): string {
  return fileURLToPath(new URL('./main.js', import.meta.url));
}

async function clusterStart(cluster: LocalCluster): Promise<number> {
  await mkdir(cluster.dir, { recursive: true });
  for (const m of cluster.members) {
    const pid = await runningPid(cluster, m);
    if (pid !== undefined) {
      process.stderr.write(`keyspan cluster start: ${m.name} is already running (pid ${pid}); run 'keyspan cluster stop' first\n`);
      return 1;
    }
  }
  const started: { m: LocalMember; pid: number }[] = [];
  for (const m of cluster.members) {
    const fd = openSync(logFile(cluster, m), 'a');
    try {
      const child = spawn(process.execPath, [...serverNodeArgs(process.execArgv), cliEntry(), ...memberArgs(cluster, m)], {
        detached: true,
        stdio: ['ignore', fd, fd],
      });
      if (child.pid === undefined) throw new Error(`could not start ${m.name}`);
      child.unref();
      await writeFile(pidFile(cluster, m), `${child.pid}\n`);
      started.push({ m, pid: child.pid });
    } finally {
      closeSync(fd);
    }
  }
  const deadline = Date.now() + CLUSTER_READY_TIMEOUT_MS;
  const pending = new Set(started);
  while (pending.size > 0) {
    for (const s of [...pending]) {
      if (!alive(s.pid)) {
        process.stderr.write(`keyspan cluster start: ${s.m.name} exited; its log ${logFile(cluster, s.m)} ends with:\n${await logTail(logFile(cluster, s.m))}\n`);
        await clusterStop(cluster);
        return 1;
      }
      if (await healthy(s.m.clientPort)) pending.delete(s);
    }
    if (pending.size === 0) break;
    if (Date.now() >= deadline) {
      process.stderr.write(`keyspan cluster start: not ready within ${CLUSTER_READY_TIMEOUT_MS} ms: ${[...pending].map((s) => s.m.name).join(', ')}\n`);
      await clusterStop(cluster);
      return 1;
    }
    await sleep(POLL_MS);
  }
  process.stdout.write(`keyspan cluster is ready (data, logs and pid files in ${cluster.dir})\n`);
  for (const s of started) process.stdout.write(`${s.m.name}  pid ${s.pid}  client http://127.0.0.1:${s.m.clientPort}  peer http://127.0.0.1:${s.m.peerPort}\n`);
  process.stdout.write(`endpoints: ${cluster.members.map((m) => `127.0.0.1:${m.clientPort}`).join(',')}\n`);
  return 0;
}

async function clusterStop(cluster: LocalCluster): Promise<number> {
  let failed = false;
  const running: { m: LocalMember; pid: number }[] = [];
  for (const m of cluster.members) {
    const pid = await runningPid(cluster, m);
    if (pid === undefined) {
      await rm(pidFile(cluster, m), { force: true });
      continue;
    }
    process.kill(pid, 'SIGTERM');
    running.push({ m, pid });
  }
  for (const r of running) {
    const deadline = Date.now() + CLUSTER_STOP_TIMEOUT_MS;
    while (alive(r.pid) && Date.now() < deadline) await sleep(POLL_MS);
    if (alive(r.pid)) {
      process.stderr.write(`keyspan cluster stop: ${r.m.name} (pid ${r.pid}) did not exit within ${CLUSTER_STOP_TIMEOUT_MS} ms\n`);
      failed = true;
      continue;
    }
    await rm(pidFile(cluster, r.m), { force: true });
    process.stdout.write(`stopped ${r.m.name} (pid ${r.pid})\n`);
  }
  if (running.length === 0) process.stdout.write('no member was running\n');
  return failed ? 1 : 0;
}

/** Runs `keyspan cluster <start|stop>`; resolves with the exit code. */
export async function clusterCommand(args: readonly string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h') {
    process.stdout.write(CLUSTER_USAGE);
    return sub === undefined ? 2 : 0;
  }
  let cluster: LocalCluster;
  try {
    cluster = localCluster(rest);
  } catch (err: unknown) {
    if (!(err instanceof ClusterUsageError)) throw err;
    process.stderr.write(`keyspan cluster ${sub}: ${err.message}\n\n${CLUSTER_USAGE}`);
    return 2;
  }
  switch (sub) {
    case 'start':
      return clusterStart(cluster);
    case 'stop':
      return clusterStop(cluster);
    default:
      process.stderr.write(`keyspan cluster: unknown subcommand '${sub}'\n\n${CLUSTER_USAGE}`);
      return 2;
  }
}
