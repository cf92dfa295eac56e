/**
 * `keyspan cluster start` / `keyspan cluster stop` on free loopback ports:
 * start returns once all three members are healthy and prints the
 * endpoints; the members form one cluster (a write through one is read
 * through another with etcdctl); stop sends SIGTERM, waits, and removes the
 * pid files; a second stop finds nothing running. Layout and flag errors are
 * checked without starting anything.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { localCluster, memberArgs } from '../../src/cli/cluster.js';
import { freePorts, tempDir } from '../node/helpers.js';

const ETCDCTL = process.env['ETCDCTL'] ?? 'etcdctl';
const probe = spawnSync(ETCDCTL, ['version'], { encoding: 'utf8' });
const skip = probe.error !== undefined || probe.status !== 0 ? 'etcdctl not installed (apt-get install etcd-client, or set ETCDCTL)' : false;
const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const COMPILED = fileURLToPath(import.meta.url).endsWith('.js');
const CLI_MAIN = join(REPO, COMPILED ? 'src/cli/main.js' : 'src/cli/main.ts');
const NODE_LOADER_ARGS: readonly string[] = COMPILED ? [] : ['--import', 'tsx'];
const RUN_TIMEOUT_MS = 90_000;

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(file: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((done) => {
    execFile(file, [...args], { env, timeout: RUN_TIMEOUT_MS }, (err, stdout, stderr) =>
      done({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }),
    );
  });
}

const keyspan = (args: readonly string[]): Promise<Run> => run(process.execPath, [...NODE_LOADER_ARGS, CLI_MAIN, ...args]);

describe('keyspan cluster layout', () => {
  it("defaults to etcd's Procfile ports and takes ports from flags or the environment", () => {
    const d = localCluster([]);
    assert.deepEqual(d.members.map((m) => [m.name, m.clientPort, m.peerPort]), [
      ['infra1', 2379, 12380],
      ['infra2', 22379, 22380],
      ['infra3', 32379, 32380],
    ]);
    assert.equal(d.dir, resolve('./data/cluster'));
    const e = localCluster(['--dir', '/tmp/x', '--peer-ports', '4,5,6'], { KEYSPAN_CLUSTER_CLIENT_PORTS: '1,2,3' });
    assert.deepEqual(e.members.map((m) => [m.clientPort, m.peerPort]), [[1, 4], [2, 5], [3, 6]]);
    assert.deepEqual(memberArgs(e, e.members[1] as (typeof e.members)[number]), [
      'start', '--name', 'infra2',
      '--listen-client-urls', 'http://127.0.0.1:2', '--advertise-client-urls', 'http://127.0.0.1:2',
      '--listen-peer-urls', 'http://127.0.0.1:5', '--initial-advertise-peer-urls', 'http://127.0.0.1:5',
      '--initial-cluster', 'infra1=http://127.0.0.1:4,infra2=http://127.0.0.1:5,infra3=http://127.0.0.1:6',
      '--initial-cluster-token', 'keyspan-local-cluster', '--initial-cluster-state', 'new',
      '--data-dir', '/tmp/x/infra2',
    ]);
    assert.throws(() => localCluster(['--client-ports', '1,2']), /--client-ports needs 3 ports/);
    assert.throws(() => localCluster(['--client-ports', '1,2,3', '--peer-ports', '3,4,5']), /must all differ/);
  });
});

describe('keyspan cluster start/stop', { skip }, () => {
  let dir: { path: string; cleanup: () => Promise<void> } | undefined;
  let ports: number[] = [];
  const flags = (): string[] => [
    '--dir', dir?.path ?? '',
    '--client-ports', ports.slice(0, 3).join(','),
    '--peer-ports', ports.slice(3).join(','),
    '--heartbeat-interval', '25',
    '--election-timeout', '300',
  ];

  after(async () => {
    if (dir === undefined) return;
    await keyspan(['cluster', 'stop', ...flags()]);
    await dir.cleanup();
  });

  it('starts three members in the background, serves etcdctl, and stops them', async () => {
    dir = await tempDir('cluster-cmd');
    ports = await freePorts(6);
    const started = await keyspan(['cluster', 'start', ...flags()]);
    assert.equal(started.code, 0, started.stderr);
    const endpoints = ports.slice(0, 3).map((p) => `127.0.0.1:${p}`);
    assert.match(started.stdout, new RegExp(`endpoints: ${endpoints.join(',').replace(/\./g, '\\.')}\\n$`));
    const pids: number[] = [];
    for (const name of ['infra1', 'infra2', 'infra3']) {
      pids.push(Number(await readFile(join(dir.path, `${name}.pid`), 'utf8')));
      assert.match(await readFile(join(dir.path, `${name}.log`), 'utf8'), /"msg":"ready to serve client requests"/);
    }
    const again = await keyspan(['cluster', 'start', ...flags()]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /infra1 is already running \(pid \d+\)/);

    const env = { ...process.env, ETCDCTL_API: '3' };
    const put = await run(ETCDCTL, [`--endpoints=${endpoints[0]}`, 'put', 'hello', 'cluster'], env);
    assert.equal(put.stdout, 'OK\n', put.stderr);
    const get = await run(ETCDCTL, [`--endpoints=${endpoints[2]}`, 'get', 'hello'], env);
    assert.equal(get.stdout, 'hello\ncluster\n', get.stderr);

    const stopped = await keyspan(['cluster', 'stop', ...flags()]);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal(stopped.stdout, pids.map((pid, i) => `stopped infra${i + 1} (pid ${pid})\n`).join(''));
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/);
    for (const name of ['infra1', 'infra2', 'infra3']) {
      assert.equal(existsSync(join(dir.path, `${name}.pid`)), false);
      assert.match(await readFile(join(dir.path, `${name}.log`), 'utf8'), /"msg":"stopped"/);
    }
    const none = await keyspan(['cluster', 'stop', ...flags()]);
    assert.deepEqual([none.code, none.stdout], [0, 'no member was running\n']);
  });
});
