/**
 * Watch with the real clients: etcdctl 3.4 `watch` (plain, --prefix, --rev,
 * --prev-kv) against keyspan's server, asserting on what it prints; and,
 * where a real etcd 3.4 is installed, the same etcdctl script and a raw
 * gRPC watch scenario (watch-script.ts) run against both, whose outputs
 * must agree.
 *
 * Skipped, with a message, where etcdctl (or etcd, for the comparisons) is
 * not installed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Embedded } from '../../src/gateway/embedded.js';
import { startTestServer } from './server-harness.js';
import { runWatchScript } from './watch-script.js';

const ETCDCTL = process.env['ETCDCTL'] ?? 'etcdctl';
const ETCD = process.env['ETCD'] ?? 'etcd';
const probe = spawnSync(ETCDCTL, ['version'], { encoding: 'utf8' });
const skip = probe.error !== undefined || probe.status !== 0 ? `etcdctl not installed (or set ETCDCTL): ${String(probe.error ?? probe.stderr)}` : false;
const etcdProbe = spawnSync(ETCD, ['--version'], { encoding: 'utf8' });
const skipDiff =
  skip !== false ? skip : etcdProbe.error !== undefined || etcdProbe.status !== 0 ? 'real etcd not installed (or set ETCD): comparison skipped' : false;

/** Bound on one etcdctl run and on waiting for a watch's output. */
const WAIT_MS = 20_000;

/** The watches of the script and what each prints on keyspan's server. */
const WATCHES: ReadonlyArray<{ args: string[]; expect: string }> = [
  { args: ['watch', 'foo'], expect: 'PUT\nfoo\n1\nDELETE\nfoo\n\n' },
  { args: ['watch', '--prefix', 'p/'], expect: 'PUT\np/a\nx\nPUT\np/b\ny\n' },
  { args: ['watch', '--rev=2', 'foo'], expect: 'PUT\nfoo\n0\nPUT\nfoo\n1\nDELETE\nfoo\n\n' },
  { args: ['watch', '--prev-kv', 'foo'], expect: 'PUT\nfoo\n0\nfoo\n1\nDELETE\nfoo\n1\nfoo\n\n' },
];

function etcdctl(endpoint: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(ETCDCTL, [`--endpoints=${endpoint}`, '--dial-timeout=5s', '--command-timeout=10s', ...args], { env: { ...process.env, ETCDCTL_API: '3' }, timeout: WAIT_MS }, (err, stdout) =>
      err === null ? resolve(stdout) : reject(err),
    );
  });
}

/** A running `etcdctl watch`, its stdout so far. */
interface WatchProc {
  readonly child: ChildProcess;
  out: string;
}

function startWatch(endpoint: string, args: readonly string[]): WatchProc {
  const child = spawn(ETCDCTL, [`--endpoints=${endpoint}`, '--dial-timeout=5s', ...args], {
    env: { ...process.env, ETCDCTL_API: '3' },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const p: WatchProc = { child, out: '' };
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (s: string) => (p.out += s));
  return p;
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** Polls until `check` holds. */
async function until(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Watchers a server reports on /metrics (etcd and keyspan export the same gauge). */
async function watcherCount(endpoint: string): Promise<number> {
  const text = await (await fetch(`http://${endpoint}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  const line = text.split('\n').find((l) => /^etcd_debugging_mvcc_watcher_total[ {]/.test(l));
  return line === undefined ? NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** The etcdctl script: starts the watches, writes, returns each watch's output once complete. */
async function runEtcdctlScript(endpoint: string, expectLengths: readonly number[]): Promise<string[]> {
  await etcdctl(endpoint, ['put', 'foo', '0']); // revision 2
  const procs = WATCHES.map((w) => startWatch(endpoint, w.args));
  try {
    await until(async () => (await watcherCount(endpoint)) >= WATCHES.length, 'etcdctl watches to be registered');
    await etcdctl(endpoint, ['put', 'foo', '1']);
    await etcdctl(endpoint, ['put', 'p/a', 'x']);
    await etcdctl(endpoint, ['del', 'foo']);
    await etcdctl(endpoint, ['put', 'p/b', 'y']);
    await until(() => procs.every((p, i) => p.out.length >= (expectLengths[i] ?? 0)), 'watch output');
    return procs.map((p) => p.out);
  } finally {
    await Promise.all(procs.map((p) => stop(p.child)));
  }
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** Starts a real etcd on free loopback ports in a temp dir; returns its endpoint and a stop function. */
async function startRealEtcd(): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'keyspan-etcd-watch-'));
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const endpoint = `127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const child = spawn(
    ETCD,
    ['--name=ref', `--data-dir=${dir}`, `--listen-client-urls=http://${endpoint}`, `--advertise-client-urls=http://${endpoint}`, `--listen-peer-urls=${peer}`, `--initial-advertise-peer-urls=${peer}`, `--initial-cluster=ref=${peer}`],
    { stdio: 'ignore' },
  );
  const stopAll = async (): Promise<void> => {
    await stop(child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await until(async () => etcdctl(endpoint, ['endpoint', 'health']).then(() => true, () => false), 'real etcd');
  } catch (err) {
    await stopAll();
    throw err;
  }
  return { endpoint, stop: stopAll };
}

/**
 * etcd orders one revision's events by the order of the txn's operations,
 * keyspan by key (docs/compatibility.md): events inside a response are
 * compared as sorted sets; responses and revisions exactly.
 */
function sortEventsInLines(steps: string[][]): string[][] {
  return steps.map((lines) =>
    lines.map((l) => {
      const i = l.search(/ (PUT|DELETE) /);
      if (i < 0) return l;
      const events = l.slice(i + 1).split(/ (?=PUT |DELETE )/);
      return `${l.slice(0, i)} ${events.sort().join(' ')}`;
    }),
  );
}

describe('etcdctl watch against keyspan', { skip }, () => {
  let srv: Embedded;
  let ep: string;
  let outputs: string[];

  before(async () => {
    srv = await startTestServer();
    ep = srv.server.addresses[0] ?? '';
  });
  after(async () => {
    await srv.close();
  });

  it('prints the events of watch, --prefix, --rev and --prev-kv', async () => {
    outputs = await runEtcdctlScript(
      ep,
      WATCHES.map((w) => w.expect.length),
    );
    WATCHES.forEach((w, i) => assert.equal(outputs[i], w.expect, `etcdctl ${w.args.join(' ')}`));
  });

  it('prints the same as against a real etcd 3.4, and the raw gRPC scenario answers the same', { skip: skipDiff }, async () => {
    const etcd = await startRealEtcd();
    try {
      const reference = await runEtcdctlScript(
        etcd.endpoint,
        WATCHES.map((w) => w.expect.length),
      );
      WATCHES.forEach((w, i) => assert.equal(outputs[i], reference[i], `etcdctl ${w.args.join(' ')}`));
      const refScript = await runWatchScript(etcd.endpoint);
      const fresh = await startTestServer();
      let ours: string[][];
      try {
        ours = await runWatchScript(fresh.server.addresses[0] ?? '');
      } finally {
        await fresh.close();
      }
      assert.deepEqual(sortEventsInLines(ours), sortEventsInLines(refScript));
    } finally {
      await etcd.stop();
    }
  });
});
