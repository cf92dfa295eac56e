/**
 * The Go etcd client library (clientv3 of etcd 3.4) against keyspan: the
 * program under test/clients/go/clientv3check drives KV with options, Txn,
 * Watch, Lease, the concurrency mutex and election, Compact, MemberList and
 * Status, checking etcd's guarantees itself and printing one JSON line. It
 * is built offline in GOPATH mode from the Debian etcd sources
 * (golang-etcd-server-dev); where the real etcd is installed, its output
 * against a fresh etcd 3.4 must equal its output against keyspan.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Embedded } from '../../src/gateway/embedded.js';
import { startTestServer } from './server-harness.js';
import { skipDiff, startReferenceEtcd } from './etcd-diff.js';

const here = fileURLToPath(import.meta.url);
/** The repository root (this file runs compiled under dist/test/gateway, or as source under test/gateway). */
const REPO = resolve(here, here.endsWith('.js') ? '../../../..' : '../../..');
/** The Go program's package directory. */
const PROGRAM_DIR = join(REPO, 'test', 'clients', 'go', 'clientv3check');
/** The Go toolchain; `GO` overrides. */
const GO = process.env['GO'] ?? 'go';
/** Where Debian installs Go sources for GOPATH builds; `KEYSPAN_GOPATH` overrides. */
const DEBIAN_GOPATH = process.env['KEYSPAN_GOPATH'] ?? '/usr/share/gocode';
/** Bound on building the program (a cold build compiles grpc and clientv3). */
const BUILD_TIMEOUT_MS = 240_000;
/** Bound on one run of the program (it bounds itself at 60 s). */
const RUN_TIMEOUT_MS = 90_000;

/** Why the test cannot run here, or false. */
function skipReason(): string | false {
  const probe = spawnSync(GO, ['version'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) return `Go not installed (apt-get install golang-go, or set GO): ${String(probe.error ?? probe.stderr)}`;
  const clientv3 = join(DEBIAN_GOPATH, 'src', 'go.etcd.io', 'etcd', 'clientv3');
  if (!existsSync(clientv3)) return `clientv3 sources not found at ${clientv3} (apt-get install golang-etcd-server-dev, or set KEYSPAN_GOPATH)`;
  return false;
}
const skip = skipReason();

/** Runs a command; resolves its stdout, rejects with its stderr on failure or timeout. */
function run(cmd: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    execFile(
      cmd,
      args,
      { cwd: options.cwd, env: options.env ?? process.env, timeout: options.timeoutMs, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        if (err !== null) reject(new Error(`${cmd} ${args.join(' ')} failed (${err.message}):\n${stderr}\n${stdout}`));
        else resolvePromise(stdout);
      },
    );
  });
}

/**
 * Builds the program offline: GOPATH mode over the Debian sources, no
 * module proxy, a build cache under the temp dir (kept across runs, since a
 * cold build takes tens of seconds; Go's cache is safe to share).
 */
async function buildProgram(outDir: string): Promise<string> {
  const binary = join(outDir, 'clientv3check');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    GO111MODULE: 'off',
    GOPATH: `${join(outDir, 'gopath')}:${DEBIAN_GOPATH}`,
    GOCACHE: process.env['GOCACHE'] ?? join(tmpdir(), 'keyspan-go-build-cache'),
    GOPROXY: 'off',
    GOFLAGS: '',
    GOTOOLCHAIN: 'local',
    CGO_ENABLED: '0',
  };
  await run(GO, ['build', '-o', binary, '.'], { cwd: PROGRAM_DIR, env, timeoutMs: BUILD_TIMEOUT_MS });
  return binary;
}

/** Runs the program against `endpoint`; returns its parsed JSON line. */
async function check(binary: string, endpoint: string): Promise<Record<string, unknown>> {
  const out = await run(binary, ['-endpoints', endpoint], { timeoutMs: RUN_TIMEOUT_MS });
  const lines = out.trim().split('\n');
  assert.equal(lines.length, 1, `one JSON line expected, got:\n${out}`);
  return JSON.parse(lines[0] ?? '') as Record<string, unknown>;
}

describe('Go clientv3 (etcd 3.4) against keyspan', { skip }, () => {
  let dir = '';
  let binary = '';
  let server: Embedded;
  let ours: Record<string, unknown>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyspan-clientv3check-'));
    binary = await buildProgram(dir);
    server = await startTestServer();
  });
  after(async () => {
    await server?.close();
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('passes every clientv3 check against keyspan', async () => {
    ours = await check(binary, `127.0.0.1:${server.server.port}`);
    // What etcd 3.4 answers (see reference/etcd-api.md); the program also checks these itself.
    assert.deepEqual(ours['getSortedLimited'], ['k/3=v3', 'k/2=v2']);
    assert.equal(ours['getMore'], true);
    assert.equal(ours['getCount'], 3);
    assert.deepEqual(ours['getAtRev'], ['k/1=v1']);
    assert.deepEqual(ours['deletePrevKVs'], ['k/2=v2']);
    assert.equal(ours['txnSucceeded'], true);
    assert.equal(ours['txnElseSucceeded'], false);
    assert.deepEqual(ours['watchEvents'], ['PUT w/a=1 prev=- rev=9', 'PUT w/a=2 prev=1 rev=11', 'DELETE w/a= prev=2 rev=12']);
    assert.deepEqual(ours['leaseKeys'], ['l/k']);
    assert.equal(ours['leaseTTLAfterRevoke'], -1);
    assert.equal(ours['revokeTwiceError'], 'etcdserver: requested lease not found');
    assert.equal(ours['mutexHandover'], true);
    assert.equal(ours['electionLeaderAfterProclaim'], 'p1b');
    assert.equal(ours['electionAfterResign'], 'election: no leader');
    assert.equal(ours['compactedReadError'], 'etcdserver: mvcc: required revision has been compacted');
    assert.equal(ours['compactFutureError'], 'etcdserver: mvcc: required revision is a future revision');
    assert.equal(ours['memberCount'], 1);
    assert.equal(ours['statusIsLeader'], true);
    assert.equal(ours['statusVersion'], '3.4.0');
  });

  it('gives the same results as a real etcd 3.4', { skip: skipDiff }, async () => {
    assert.ok(ours !== undefined, 'the keyspan run must have passed');
    const ref = await startReferenceEtcd();
    try {
      const theirs = await check(binary, ref.endpoint);
      // keyspan reports the protocol version 3.4.0, not etcd's patch release (docs/compatibility.md, Status).
      assert.match(String(theirs['statusVersion']), /^3\.4\.\d+$/);
      assert.deepEqual({ ...ours, statusVersion: 'the 3.4 version' }, { ...theirs, statusVersion: 'the 3.4 version' });
    } finally {
      await ref.close();
    }
  });
});
