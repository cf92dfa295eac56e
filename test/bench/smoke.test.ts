/**
 * End-to-end smoke test of the load generator against a real etcd (Debian's
 * etcd-server, 3.4.x) started here on free loopback ports: `put`, `range` and `list`
 * with --total 200 and --json, checking counts, throughput and percentile
 * order. Skipped, with a message, where the `etcd` binary is not installed
 * (set ETCD to its path otherwise).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ETCD = process.env['ETCD'] ?? 'etcd';
const probe = spawnSync(ETCD, ['--version'], { encoding: 'utf8' });
const skip =
  probe.error !== undefined || probe.status !== 0
    ? `etcd not installed (apt-get install etcd-server, or set ETCD): ${String(probe.error ?? probe.stderr)}`
    : false;

/** Compiled CLI beside this test in dist/ (or the source when run with tsx). */
const CLI = fileURLToPath(new URL(`../../bench/cli.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

let etcd: ChildProcess | undefined;
let dataDir = '';
let endpoint = '';

async function waitForEtcd(url: string, deadlineMs: number): Promise<void> {
  while (Date.now() < deadlineMs) {
    try {
      const res = await fetch(`${url}/health`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('etcd did not become healthy in time');
}

before(async () => {
  if (skip !== false) return;
  dataDir = await mkdtemp(join(tmpdir(), 'keyspan-bench-etcd-'));
  const [client, peer] = [await freePort(), await freePort()];
  const c = `http://127.0.0.1:${client}`;
  const p = `http://127.0.0.1:${peer}`;
  endpoint = `127.0.0.1:${client}`;
  etcd = spawn(
    ETCD,
    ['--data-dir', dataDir, '--listen-client-urls', c, '--advertise-client-urls', c, '--listen-peer-urls', p,
      '--initial-advertise-peer-urls', p, '--initial-cluster', `default=${p}`, '--log-level', 'error'],
    { stdio: 'ignore' },
  );
  await waitForEtcd(c, Date.now() + 20_000);
});

after(async () => {
  if (etcd?.pid !== undefined && etcd.exitCode === null) {
    const exited = new Promise((r) => etcd?.once('exit', r));
    etcd.kill('SIGTERM');
    await exited;
  }
  if (dataDir !== '') await rm(dataDir, { recursive: true, force: true });
});

interface JsonOp {
  count: number;
  errors: number;
  throughput: number;
  minMs: number;
  avgMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...(CLI.endsWith('.ts') ? ['--import', 'tsx'] : []), CLI, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

function checkOp(op: JsonOp | undefined, count: number): void {
  assert.ok(op !== undefined);
  assert.equal(op.count, count);
  assert.equal(op.errors, 0);
  assert.ok(op.throughput > 0);
  const ordered = [op.minMs, op.p50Ms, op.p90Ms, op.p99Ms, op.p999Ms, op.maxMs];
  assert.ok(ordered.every((v, i) => i === 0 || v >= (ordered[i - 1] as number)), `percentiles out of order: ${ordered.join(' ')}`);
  assert.ok(op.minMs > 0 && op.avgMs >= op.minMs && op.avgMs <= op.maxMs);
}

for (const [workload, extra, op] of [
  ['put', [], 'put'],
  ['range', ['--consistency', 's'], 'range-s'],
  ['range', ['--workers', '2'], 'range-l'],
  ['list', ['--key-space-size', '1200', '--val-size', '64'], 'list-page'],
] as const) {
  test(`bench ${[workload, ...extra].join(' ')} --total 200 --json reports 200 requests against real etcd`, { skip, timeout: 90_000 }, async () => {
    const res = await runCli([workload, '--endpoints', endpoint, '--total', '200', '--conns', '2', '--clients', '4', '--json', ...extra]);
    assert.equal(res.code, 0, res.stderr);
    const lines = res.stdout.trim().split('\n');
    assert.equal(lines.length, 1, 'exactly one JSON line');
    const out = JSON.parse(lines[0] as string) as { workload: string; requests: number; ops: Record<string, JsonOp>; generator: { cpuUserSec: number } };
    assert.equal(out.workload, workload);
    assert.equal(out.requests, 200);
    checkOp(out.ops[op], 200);
    assert.ok(out.generator.cpuUserSec > 0);
  });
}

test('bench exits with code 2 and names the flag on a bad command line', async () => {
  const res = await runCli(['put', '--conns', 'x']);
  assert.equal(res.code, 2);
  assert.match(res.stderr, /--conns must be a positive integer, got "x"/);
});
