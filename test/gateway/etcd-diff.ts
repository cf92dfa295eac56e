/**
 * Shared pieces of the tests that drive the real etcdctl 3.4 against
 * keyspan and, for the differential checks, against a real etcd 3.4 started
 * on free loopback ports: running etcdctl (one-shot or long-running),
 * starting and stopping the reference etcd, and the normalisers that remove
 * what legitimately differs between two servers (ids, terms, timings).
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The etcdctl binary (3.4); `ETCDCTL` overrides. */
export const ETCDCTL = process.env['ETCDCTL'] ?? 'etcdctl';
/** The etcd server binary (3.4) of the differential checks; `ETCD` overrides. */
export const ETCD = process.env['ETCD'] ?? 'etcd';

const etcdctlProbe = spawnSync(ETCDCTL, ['version'], { encoding: 'utf8' });
/** A skip reason where etcdctl is not installed, else false. */
export const skipEtcdctl: string | false =
  etcdctlProbe.error !== undefined || etcdctlProbe.status !== 0
    ? `etcdctl not installed (apt-get install etcd-client, or set ETCDCTL): ${String(etcdctlProbe.error ?? etcdctlProbe.stderr)}`
    : false;
const etcdProbe = spawnSync(ETCD, ['--version'], { encoding: 'utf8' });
/** A skip reason where either etcdctl or the real etcd is missing, else false. */
export const skipDiff: string | false =
  skipEtcdctl !== false
    ? skipEtcdctl
    : etcdProbe.error !== undefined || etcdProbe.status !== 0
      ? 'real etcd not installed (apt-get install etcd-server, or set ETCD): differential check skipped'
      : false;

/** Bound on one one-shot etcdctl run. */
export const ETCDCTL_TIMEOUT_MS = 20_000;
/** Bound on waiting for a started server or a condition. */
export const WAIT_TIMEOUT_MS = 30_000;

/** The result of one etcdctl run as the tests compare it. */
export interface EtcdctlRun {
  readonly code: number;
  readonly stdout: string;
  /** Only etcdctl's `Error: ...` lines and health verdicts (its retry warnings carry timestamps). */
  readonly errors: string;
}

/** Keeps the stderr lines that are part of etcdctl's answer. */
function answerLines(stderr: string): string {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('Error:') || / is (un)?healthy: /.test(l))
    .join('\n');
}

/** Runs etcdctl once against `endpoint` (async: an in-process server shares this event loop). */
export function etcdctl(endpoint: string, args: readonly string[], options: { stdin?: string; timeoutMs?: number } = {}): Promise<EtcdctlRun> {
  return new Promise((resolve) => {
    const child = execFile(
      ETCDCTL,
      [`--endpoints=${endpoint}`, '--dial-timeout=5s', '--command-timeout=10s', ...args],
      { env: { ...process.env, ETCDCTL_API: '3' }, timeout: options.timeoutMs ?? ETCDCTL_TIMEOUT_MS, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        resolve({ code, stdout, errors: answerLines(stderr) });
      },
    );
    // etcdctl may exit before reading its input (a failed dial): ignore EPIPE.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(options.stdin ?? '');
  });
}

/** A long-running etcdctl (lock, elect, watch) whose output is read as it comes. */
export interface RunningEtcdctl {
  /** Everything it printed on stdout so far. */
  stdout(): string;
  /** Waits until stdout satisfies `done`, bounded by WAIT_TIMEOUT_MS. */
  waitFor(done: (stdout: string) => boolean, what: string): Promise<string>;
  /** Sends `signal` (default SIGINT, as a user's ^C) and waits for the exit; resolves the run. */
  stop(signal?: NodeJS.Signals): Promise<EtcdctlRun>;
  /** Resolves when it exits on its own. */
  exited(): Promise<EtcdctlRun>;
}

/** Starts etcdctl with `args` against `endpoint` and keeps it running. */
export function spawnEtcdctl(endpoint: string, args: readonly string[]): RunningEtcdctl {
  const child = spawn(ETCDCTL, [`--endpoints=${endpoint}`, '--dial-timeout=5s', '--command-timeout=10s', ...args], {
    env: { ...process.env, ETCDCTL_API: '3' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = new Promise<EtcdctlRun>((resolve) => {
    child.once('close', (code, signal) => resolve({ code: code ?? (signal !== null ? 128 : 1), stdout: out, errors: answerLines(err) }));
  });
  // A hard bound so a stuck etcdctl never outlives its test.
  const killer = setTimeout(() => child.kill('SIGKILL'), 2 * WAIT_TIMEOUT_MS);
  void exit.then(() => clearTimeout(killer));
  return {
    stdout: () => out,
    async waitFor(done, what) {
      await until(async () => done(out), `${what} (stdout so far: ${JSON.stringify(out)}, stderr: ${JSON.stringify(err)})`);
      return out;
    },
    async stop(signal = 'SIGINT') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exit;
    },
    exited: () => exit,
  };
}

/** Polls `check` until it resolves true, bounded by `timeoutMs`. */
export async function until(check: () => Promise<boolean>, what: string, timeoutMs = WAIT_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A free loopback port (bound and released just before a server takes it). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** Stops a child this test started (by its handle) and waits for its exit; resolves its exit code. */
export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    child.kill(signal);
  });
}

/** A real etcd 3.4 started for a differential check. */
export interface ReferenceEtcd {
  /** host:port of its client URL. */
  readonly endpoint: string;
  /** Stops it and removes its data dir. */
  close(): Promise<void>;
}

/** Options of {@link startReferenceEtcd}. */
export interface ReferenceEtcdOptions {
  /** More etcd flags (e.g. `--quota-backend-bytes=...`). */
  readonly flags?: readonly string[];
}

/** Starts a fresh single-member etcd on free loopback ports with a temp data dir; waits until it is healthy. */
export async function startReferenceEtcd(options: ReferenceEtcdOptions = {}): Promise<ReferenceEtcd> {
  const dir = await mkdtemp(join(tmpdir(), 'keyspan-etcd-ref-'));
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const endpoint = `127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const etcd = spawn(
    ETCD,
    [
      '--name=ref',
      `--data-dir=${dir}`,
      `--listen-client-urls=http://${endpoint}`,
      `--advertise-client-urls=http://${endpoint}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=ref=${peerUrl}`,
      ...(options.flags ?? []),
    ],
    { stdio: 'ignore' },
  );
  const close = async (): Promise<void> => {
    await stopChild(etcd);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await until(async () => (await etcdctl(endpoint, ['endpoint', 'health'])).code === 0, 'the reference etcd to answer');
  } catch (err) {
    await close();
    throw err;
  }
  return { endpoint, close };
}

/**
 * Replaces every distinct match of `pattern` (global) in `text` by
 * `<label><n>`, numbered in order of first appearance — ids that differ
 * between servers but must correspond one to one.
 */
export function numberByOrder(text: string, pattern: RegExp, label: string): string {
  const seen = new Map<string, number>();
  return text.replace(pattern, (m) => {
    let n = seen.get(m);
    if (n === undefined) {
      n = seen.size + 1;
      seen.set(m, n);
    }
    return `${label}${n}`;
  });
}

/** Removes an endpoint address, member/cluster ids, raft terms and timings from etcdctl output. */
export function normalizeEtcdctl(text: string, endpoint: string): string {
  return text
    .split(endpoint)
    .join('<EP>')
    .replace(/"cluster_id":\d+,"member_id":\d+,/g, '')
    .replace(/,?"raft_term":\d+/g, '')
    .replace(/^"(ClusterID|MemberID|RaftTerm)" : \d+\n/gm, '')
    .replace(/took = \S+/g, 'took = <T>');
}
