/**
 * `keyspan start` as a child process with etcd's operational flags, driven
 * by the real etcdctl and plain HTTP: --quota-backend-bytes raises NOSPACE
 * (seen by `etcdctl alarm list`), --listen-metrics-urls serves /metrics,
 * /health and /version on its own port, revision-mode auto-compaction
 * compacts old revisions (its check interval shortened through the test-only
 * environment knob), and --experimental-watch-progress-notify-interval sets
 * how often an idle watch gets progress notifications.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { TEST_REVISION_COMPACTION_CHECK_MS_ENV } from '../../src/cli/start.js';
import { etcdServiceDefinition, type EtcdMessage } from '../../src/gateway/proto.js';
import { freePorts, tempDir } from '../node/helpers.js';
import { etcdctl, skipEtcdctl as skip, stopChild, until } from '../gateway/etcd-diff.js';


const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const COMPILED = fileURLToPath(import.meta.url).endsWith('.js');
const CLI_MAIN = join(REPO, COMPILED ? 'src/cli/main.js' : 'src/cli/main.ts');
const NODE_LOADER_ARGS: readonly string[] = COMPILED ? [] : ['--import', 'tsx'];
/** Bound on startup, on one etcdctl run, and on waiting for a compaction or a notification. */
const STARTUP_TIMEOUT_MS = 30_000;

interface Member {
  readonly child: ChildProcess;
  readonly endpoint: string;
  log(): string;
}

/** Starts `keyspan start` on fresh loopback ports with `flags`; `env` adds environment variables. */
async function startMember(dataDir: string, clientPort: number, peerPort: number, flags: readonly string[], env: Record<string, string> = {}): Promise<Member> {
  const entry = `const { main } = await import(${JSON.stringify(CLI_MAIN)}); process.exitCode = await main(process.argv.slice(1));`;
  const child = spawn(
    process.execPath,
    [
      ...NODE_LOADER_ARGS,
      '--input-type=module',
      '-e',
      entry,
      'start',
      `--data-dir=${dataDir}`,
      `--listen-client-urls=http://127.0.0.1:${clientPort}`,
      `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
      ...flags,
    ],
    { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    await until(async () => stderr.includes('ready to serve client requests') || child.exitCode !== null, 'keyspan start', STARTUP_TIMEOUT_MS);
    assert.equal(child.exitCode, null, stderr);
  } catch (err) {
    // Never leave a member running behind a failed start: it would hold the test runner open.
    await stopChild(child, 'SIGKILL');
    throw err;
  }
  return { child, endpoint: `127.0.0.1:${clientPort}`, log: () => stderr };
}

describe('keyspan start with etcd operational flags', { skip }, () => {
  it('--quota-backend-bytes raises NOSPACE; --listen-metrics-urls serves /metrics, /health and /version', async () => {
    const dir = await tempDir('keyspan-flags-quota-');
    const [clientPort, peerPort, metricsPort] = (await freePorts(3)) as [number, number, number];
    let m: Member | undefined;
    try {
      m = await startMember(dir.path, clientPort, peerPort, [
        '--quota-backend-bytes=1',
        `--listen-metrics-urls=http://127.0.0.1:${metricsPort}`,
      ]);
      const metricsUrl = `http://127.0.0.1:${metricsPort}`;
      // Logged right after "ready to serve client requests", which startMember waits for; the two
      // lines may reach this process in separate reads of the pipe.
      const member = m;
      await until(async () => member.log().includes('"msg":"serving metrics"'), 'the serving-metrics log line', STARTUP_TIMEOUT_MS);
      assert.match(m.log(), new RegExp(`"msg":"serving metrics","metricsUrls":\\["${metricsUrl.replace(/[/.]/g, '\\$&')}"\\]`));
      const health = await fetch(`${metricsUrl}/health`);
      assert.equal(health.status, 200);
      assert.deepEqual(await health.json(), { health: 'true' });
      const version = (await (await fetch(`${metricsUrl}/version`)).json()) as { etcdserver: string };
      assert.match(version.etcdserver, /^3\./);
      const metrics = await fetch(`${metricsUrl}/metrics`);
      assert.equal(metrics.status, 200);
      const text = await metrics.text();
      assert.match(text, /^etcd_server_has_leader(\{[^}]*\})? 1$/m);
      // Only the operator endpoints: no JSON gateway on the metrics port.
      assert.equal((await fetch(`${metricsUrl}/v3/kv/range`, { method: 'POST', body: '{}' })).status, 404);

      const put = await etcdctl(m.endpoint, ['put', 'k', 'v']);
      assert.notEqual(put.code, 0);
      assert.match(put.errors, /Error: etcdserver: mvcc: database space exceeded/);
      const alarms = await etcdctl(m.endpoint, ['alarm', 'list']);
      assert.equal(alarms.code, 0, alarms.errors);
      assert.match(alarms.stdout, /^memberID:\d+ alarm:NOSPACE\s*$/);
      assert.equal(await stopChild(m.child), 0);
    } finally {
      if (m !== undefined) await stopChild(m.child);
      await dir.cleanup();
    }
  });

  it('revision auto-compaction compacts to current - retention; the progress-notify interval is applied', async () => {
    const dir = await tempDir('keyspan-flags-compact-');
    const [clientPort, peerPort] = (await freePorts(2)) as [number, number];
    let m: Member | undefined;
    let watchClient: grpc.Client | undefined;
    try {
      m = await startMember(
        dir.path,
        clientPort,
        peerPort,
        ['--auto-compaction-mode=revision', '--auto-compaction-retention=2', '--experimental-watch-progress-notify-interval=200ms'],
        { [TEST_REVISION_COMPACTION_CHECK_MS_ENV]: '100' },
      );
      const member = m;
      let last = 0;
      for (let i = 1; i <= 5; i++) {
        const put = await etcdctl(member.endpoint, ['put', 'k', `v${i}`, '-w', 'json']);
        assert.equal(put.code, 0, put.errors);
        last = Number((JSON.parse(put.stdout) as { header: { revision: number } }).header.revision);
      }
      // Compacted up to last - 2: the revision before that reads as compacted.
      await until(async () => member.log().includes(`"msg":"finished auto-compaction","compactRevision":${last - 2}}`), `compaction at ${last - 2}`);
      const old = await etcdctl(member.endpoint, ['get', 'k', `--rev=${last - 3}`]);
      assert.match(old.errors, /Error: etcdserver: mvcc: required revision has been compacted/);
      const kept = await etcdctl(member.endpoint, ['get', 'k', `--rev=${last - 2}`, '--print-value-only']);
      assert.equal(kept.stdout, `v${5 - 2}\n`);

      // An idle watch asking for progress notifications gets one within a few intervals.
      const Ctor = grpc.makeGenericClientConstructor(etcdServiceDefinition('etcdserverpb.Watch'), 'Watch');
      const wc = new Ctor(member.endpoint, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
        Watch(md: grpc.Metadata): grpc.ClientDuplexStream<EtcdMessage, EtcdMessage>;
      };
      watchClient = wc;
      const stream = wc.Watch(new grpc.Metadata());
      const responses: EtcdMessage[] = [];
      stream.on('data', (r: EtcdMessage) => responses.push(r));
      stream.on('error', () => undefined);
      const startedMs = Date.now();
      stream.write({ create_request: { key: Buffer.from('idle'), progress_notify: true } });
      const isProgress = (r: EtcdMessage): boolean => r['created'] !== true && ((r['events'] as unknown[] | undefined) ?? []).length === 0;
      await until(async () => responses.some(isProgress), 'a progress notification', 10_000);
      // Far below etcd's 10-minute default: the flag took effect.
      assert.ok(Date.now() - startedMs < 10_000);
      stream.cancel();
      assert.equal(await stopChild(member.child), 0);
    } finally {
      watchClient?.close();
      if (m !== undefined) await stopChild(m.child);
      await dir.cleanup();
    }
  });
});
