/**
 * Runtime reconfiguration with real processes and the real etcdctl, as
 * etcd's "runtime reconfiguration" guide does it: three `keyspan start`
 * members; `etcdctl member add infra4 --peer-urls=...` prints the new
 * member and the ETCD_* lines; the fourth process is started with them and
 * --initial-cluster-state existing; it serves the data written before (a
 * serializable get on it) and every member lists four; `member remove`
 * takes it out again, and the removed process stops on its own and exits 0
 * as etcd 3.4.23 does (also when restarted on its old data directory).
 * Skipped where etcdctl is not installed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { etcdctl, skipEtcdctl as skip } from '../gateway/etcd-diff.js';
import { freePorts, tempDir, waitFor } from './helpers.js';

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const COMPILED = fileURLToPath(import.meta.url).endsWith('.js');
const CLI_MAIN = join(REPO, COMPILED ? 'src/cli/main.js' : 'src/cli/main.ts');
const NODE_LOADER_ARGS: readonly string[] = COMPILED ? [] : ['--import', 'tsx'];
/** Bound on a removed member's process stopping by itself (etcd: about a second). */
const REMOVED_EXIT_TIMEOUT_MS = 20_000;

interface Member {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  child?: ChildProcess;
  log: string;
}

describe('etcdctl member add / remove on a 3-process cluster', { skip }, () => {
  const members: Member[] = [];
  let dir: { path: string; cleanup: () => Promise<void> };
  const endpoint = (m: Member): string => `127.0.0.1:${m.clientPort}`;

  /** Spawns `keyspan start` for `m`; its stderr (the log) collects in `m.log`. */
  function spawnMember(m: Member, cluster: string, state: 'new' | 'existing'): ChildProcess {
    const flags = [
      'start',
      '--name', m.name,
      '--listen-client-urls', `http://127.0.0.1:${m.clientPort}`,
      '--advertise-client-urls', `http://127.0.0.1:${m.clientPort}`,
      '--listen-peer-urls', `http://127.0.0.1:${m.peerPort}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peerPort}`,
      '--initial-cluster', cluster,
      '--initial-cluster-state', state,
      '--data-dir', m.dataDir,
      '--heartbeat-interval', '25',
      '--election-timeout', '300',
    ];
    const child = spawn(process.execPath, [...NODE_LOADER_ARGS, CLI_MAIN, ...flags], { stdio: ['ignore', 'ignore', 'pipe'] });
    m.child = child;
    child.stderr?.on('data', (d: Buffer) => (m.log += d.toString()));
    return child;
  }

  async function startMember(m: Member, cluster: string, state: 'new' | 'existing'): Promise<void> {
    const child = spawnMember(m, cluster, state);
    await waitFor(() => m.log.includes('"msg":"ready to serve client requests"') || child.exitCode !== null, `${m.name} ready`, 30_000);
    assert.equal(child.exitCode, null, m.log);
  }

  function kill(m: Member): Promise<void> {
    const child = m.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((done) => {
      child.once('exit', () => done());
      child.kill('SIGKILL');
    });
  }

  before(async () => {
    dir = await tempDir('cluster-members');
    const ports = await freePorts(8);
    ['infra1', 'infra2', 'infra3', 'infra4'].forEach((name, i) => {
      members.push({ name, clientPort: ports[i] as number, peerPort: ports[i + 4] as number, dataDir: join(dir.path, name), log: '' });
    });
    const initial = members.slice(0, 3);
    const cluster = initial.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(',');
    await Promise.all(initial.map((m) => startMember(m, cluster, 'new')));
  });

  after(async () => {
    for (const m of members) await kill(m);
    if (process.exitCode !== undefined && process.exitCode !== 0) for (const m of members) console.error(`--- ${m.name}\n${m.log.slice(-3000)}`);
    await dir.cleanup();
  });

  it('adds infra4, which joins with --initial-cluster-state existing and serves the data', async () => {
    const [m1, m2, m3, m4] = members as [Member, Member, Member, Member];
    const first = members.slice(0, 3).map(endpoint).join(',');
    assert.equal((await etcdctl(first, ['put', 'before-join', 'v1'])).stdout, 'OK\n');

    const add = await etcdctl(endpoint(m2), ['member', 'add', 'infra4', `--peer-urls=http://127.0.0.1:${m4.peerPort}`]);
    assert.equal(add.code, 0, add.errors);
    const expectedCluster = [m1, m2, m3, m4].map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(',');
    const lines = add.stdout.split('\n');
    assert.match(lines[0] ?? '', /^Member +4 added to cluster +[0-9a-f]+$/);
    assert.deepEqual(lines.slice(1), [
      '',
      'ETCD_NAME="infra4"',
      `ETCD_INITIAL_CLUSTER="${expectedCluster}"`,
      `ETCD_INITIAL_ADVERTISE_PEER_URLS="http://127.0.0.1:${m4.peerPort}"`,
      'ETCD_INITIAL_CLUSTER_STATE="existing"',
      '',
    ]);

    await startMember(m4, expectedCluster, 'existing');
    await waitFor(async () => (await etcdctl(endpoint(m4), ['get', 'before-join', '--consistency=s'])).stdout === 'before-join\nv1\n', 'infra4 caught up', 30_000);
    for (const m of members) {
      await waitFor(async () => {
        const r = await etcdctl(endpoint(m), ['member', 'list']);
        const rows = r.stdout.trim().split('\n');
        return rows.length === 4 && rows.every((row) => row.includes(', started, '));
      }, `${m.name} lists 4 started members`, 20_000);
    }
    const list = await etcdctl(endpoint(m1), ['member', 'list']);
    assert.deepEqual(
      list.stdout.trim().split('\n'),
      [m1, m2, m3, m4].map((m, i) => `${i + 1}, started, ${m.name}, http://127.0.0.1:${m.peerPort}, http://127.0.0.1:${m.clientPort}, false`),
    );
    assert.equal((await etcdctl(endpoint(m4), ['put', 'via-infra4', 'v2'])).stdout, 'OK\n');
    assert.equal((await etcdctl(endpoint(m1), ['get', 'via-infra4', '--print-value-only'])).stdout, 'v2\n');
  });

  it('restarts infra4 as the node it joined as; it catches up on what it missed', async () => {
    const [m1, m2, m3, m4] = members as [Member, Member, Member, Member];
    await kill(m4);
    assert.equal((await etcdctl(endpoint(m1), ['put', 'while-down', 'v4'])).stdout, 'OK\n');
    m4.log = '';
    await startMember(m4, [m1, m2, m3, m4].map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(','), 'existing');
    assert.match(m4.log, /"nodeId":4/);
    await waitFor(async () => (await etcdctl(endpoint(m4), ['get', 'while-down', '--consistency=s'])).stdout === 'while-down\nv4\n', 'infra4 caught up after its restart', 30_000);
  });

  /** Waits for `m`'s process to exit by itself; resolves its exit code. */
  async function exitOnItsOwn(m: Member, what: string): Promise<number | null> {
    const child = m.child;
    assert.ok(child);
    try {
      await waitFor(() => child.exitCode !== null || child.signalCode !== null, what, REMOVED_EXIT_TIMEOUT_MS);
    } catch (err) {
      await kill(m); // a member that does not stop must not outlive the test
      throw err;
    }
    return child.exitCode;
  }

  it('removes infra4 again; it stops serving and exits 0 by itself, as etcd; the others keep serving', async () => {
    const [m1, , m3, m4] = members as [Member, Member, Member, Member];
    const rm = await etcdctl(endpoint(m3), ['member', 'remove', '4']);
    assert.equal(rm.code, 0, rm.errors);
    assert.match(rm.stdout, /^Member +4 removed from cluster +[0-9a-f]+\n$/);
    assert.equal(await exitOnItsOwn(m4, 'the removed infra4 to exit'), 0, m4.log);
    assert.match(m4.log, /"level":"error"[^\n]*"msg":"the member has been permanently removed from the cluster"/);
    assert.match(m4.log, /"msg":"the data-dir used by this member must be removed."/);
    assert.match(m4.log, /"msg":"stopped"/);
    const gone = await etcdctl(endpoint(m4), ['get', 'x', '--dial-timeout=1s', '--command-timeout=2s']);
    assert.notEqual(gone.code, 0);
    const bad = await etcdctl(endpoint(m3), ['member', 'remove', '4']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.errors, /etcdserver: member not found/);
    assert.equal((await etcdctl(endpoint(m1), ['put', 'after-remove', 'v3'])).stdout, 'OK\n');
    assert.equal((await etcdctl(endpoint(m1), ['member', 'list'])).stdout.trim().split('\n').length, 3);
  });

  it('a removed member restarted on its old data directory stops again by itself', async () => {
    const [m1, m2, m3, m4] = members as [Member, Member, Member, Member];
    m4.log = '';
    spawnMember(m4, [m1, m2, m3, m4].map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(','), 'existing');
    assert.equal(await exitOnItsOwn(m4, 'the restarted removed infra4 to exit'), 0, m4.log);
    assert.match(m4.log, /"msg":"ready to serve client requests"/);
    assert.match(m4.log, /"msg":"the member has been permanently removed from the cluster"/);
    assert.equal((await etcdctl(endpoint(m1), ['member', 'list'])).stdout.trim().split('\n').length, 3);
  });
});
