/**
 * Endpoints written with a scheme: etcdctl 3.4 sends such an endpoint's URL
 * as the HTTP/2 `:authority` for `endpoint status`/`health` and `--cluster`
 * (the gRPC server accepts any authority). Drives the real etcdctl with `--endpoints=http://...`
 * (put, get, watch, endpoint status and health) against one member and
 * `endpoint status --cluster` against a 3-member cluster in this process;
 * and a Node HTTP/2 client sending `:authority: http://...` on many requests
 * of one connection while large varying headers evict the authority from
 * HPACK's dynamic table, so it is sent again as a literal.
 *
 * The etcdctl tests are skipped, with a message, where etcdctl is not installed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import * as http2 from 'node:http2';
import { startEmbedded, type Embedded, type EmbeddedCluster } from '../../src/gateway/embedded.js';
import { parseInitialCluster } from '../../src/node/index.js';
import { freePorts } from '../node/helpers.js';
import { startTestServer } from './server-harness.js';

const ETCDCTL = process.env['ETCDCTL'] ?? 'etcdctl';
const probe = spawnSync(ETCDCTL, ['version'], { encoding: 'utf8' });
const skip = probe.error !== undefined || probe.status !== 0 ? `etcdctl not installed (set ETCDCTL): ${String(probe.error ?? probe.stderr)}` : false;
/** How long a connection stays idle before its first request (clientv3 connects before it calls). */
const IDLE_BEFORE_FIRST_REQUEST_MS = 1_300;
/** Bound on one etcdctl run and on waiting for output. */
const TIMEOUT_MS = 20_000;

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function etcdctl(endpoints: string, args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      ETCDCTL,
      [`--endpoints=${endpoints}`, '--dial-timeout=5s', '--command-timeout=10s', ...args],
      { env: { ...process.env, ETCDCTL_API: '3' }, timeout: TIMEOUT_MS },
      (err, stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }),
    );
  });
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + TIMEOUT_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('etcdctl with http:// endpoints', { skip }, () => {
  let server: Embedded;
  let endpoint = '';
  before(async () => {
    server = await startTestServer();
    endpoint = `http://127.0.0.1:${server.server.port}`;
  });
  after(() => server.close());

  it('puts, gets, and reports endpoint status and health', async () => {
    const put = await etcdctl(endpoint, ['put', 'foo', 'bar']);
    assert.equal(put.stdout, 'OK\n', put.stderr);
    const get = await etcdctl(endpoint, ['get', 'foo']);
    assert.equal(get.stdout, 'foo\nbar\n', get.stderr);
    const status = await etcdctl(endpoint, ['endpoint', 'status', '-w', 'json']);
    assert.equal(status.code, 0, status.stderr);
    const parsed = JSON.parse(status.stdout) as { Endpoint: string; Status: { header: { member_id: number } } }[];
    assert.equal(parsed[0]?.Endpoint, endpoint);
    assert.equal(parsed[0]?.Status.header.member_id, 1);
    const health = await etcdctl(endpoint, ['endpoint', 'health']);
    assert.equal(health.code, 0, health.stderr);
    assert.match(health.stderr + health.stdout, new RegExp(`${endpoint} is healthy`));
  });

  it('watches', async () => {
    const child = spawn(ETCDCTL, [`--endpoints=${endpoint}`, 'watch', 'w'], { env: { ...process.env, ETCDCTL_API: '3' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const killer = setTimeout(() => child.kill(), TIMEOUT_MS);
    try {
      // Writes until the watch (registered at some point) prints one.
      let i = 0;
      while (!out.includes('PUT\nw\n')) {
        assert.equal((await etcdctl(endpoint, ['put', 'w', String(i++)])).code, 0);
        if (i > 50) throw new Error(`watch printed nothing: ${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      clearTimeout(killer);
      child.kill();
    }
  });
});

describe('etcdctl endpoint status --cluster on a 3-member cluster', { skip }, () => {
  const members: Embedded[] = [];
  before(async () => {
    const peerPorts = await freePorts(3);
    const ic = parseInitialCluster(peerPorts.map((p, i) => `m${i + 1}=http://127.0.0.1:${p}`).join(','));
    for (const [i, port] of peerPorts.entries()) {
      const self = ic.members.find((m) => m.name === `m${i + 1}`);
      assert.ok(self);
      const cluster: EmbeddedCluster = { members: ic.members, localNodeId: self.nodeId, record: { initialCluster: ic.canonical, token: 'scheme' } };
      members.push(
        await startEmbedded({
          name: `m${i + 1}`,
          engineKind: 'memory',
          listenClient: [{ url: 'http://127.0.0.1:0', host: '127.0.0.1', port: 0 }],
          listenPeer: { url: `http://127.0.0.1:${port}`, host: '127.0.0.1', port },
          tickMs: 10,
          cluster,
          onInternalError: (method, err) => console.error('internal error in', method, err),
        }),
      );
    }
  });
  after(async () => {
    for (const m of members) await m.close();
  });

  it('reaches every member by its advertised http:// URL', async () => {
    const first = members[0]?.clientUrls[0] ?? '';
    const deadline = Date.now() + TIMEOUT_MS;
    let run: Run;
    // The first call waits out the first election.
    do run = await etcdctl(first, ['endpoint', 'status', '--cluster', '-w', 'json']);
    while (run.code !== 0 && Date.now() < deadline);
    assert.equal(run.code, 0, run.stderr);
    const endpoints = (JSON.parse(run.stdout) as { Endpoint: string }[]).map((s) => s.Endpoint).sort();
    assert.deepEqual(endpoints, members.flatMap((m) => m.clientUrls).sort());
  });
});

describe('HTTP/2 requests with a scheme in :authority', () => {
  let server: Embedded;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  it('are served on every request of a connection, also after HPACK evicts the authority', async () => {
    const port = server.server.port;
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      for (let i = 0; i < 40; i++) {
        const status = await new Promise<string>((resolve, reject) => {
          const req = session.request({
            ':method': 'POST',
            ':path': '/etcdserverpb.Maintenance/Status',
            ':authority': `http://127.0.0.1:${port}`,
            'content-type': 'application/grpc',
            te: 'trailers',
            // A new 1.5 KB value each time: the dynamic table (4 KiB) keeps only the last few entries.
            'x-pad': String(i).padStart(1500, 'p'),
          });
          req.setTimeout(TIMEOUT_MS, () => req.close(http2.constants.NGHTTP2_CANCEL));
          req.on('trailers', (t) => resolve(String(t['grpc-status'])));
          req.on('error', reject);
          req.on('close', () => reject(new Error(`stream closed with code ${req.rstCode}`)));
          req.resume();
          req.end(Buffer.alloc(5)); // an empty StatusRequest, gRPC-framed
        });
        assert.equal(status, '0', `request ${i}`);
      }
    } finally {
      session.close();
    }
  });

  it('serves a connection whose first request comes after the wait for it', async () => {
    const session = http2.connect(`http://127.0.0.1:${server.server.port}`);
    try {
      await new Promise<void>((resolve, reject) => {
        session.once('connect', () => resolve());
        session.once('error', reject);
      });
      await new Promise((r) => setTimeout(r, IDLE_BEFORE_FIRST_REQUEST_MS));
      const status = await new Promise<string>((resolve, reject) => {
        const req = session.request({ ':method': 'POST', ':path': '/etcdserverpb.Maintenance/Status', 'content-type': 'application/grpc', te: 'trailers' });
        req.setTimeout(TIMEOUT_MS, () => req.close(http2.constants.NGHTTP2_CANCEL));
        req.on('trailers', (t) => resolve(String(t['grpc-status'])));
        req.on('error', reject);
        req.on('close', () => reject(new Error(`stream closed with code ${req.rstCode}`)));
        req.resume();
        req.end(Buffer.alloc(5));
      });
      assert.equal(status, '0');
      // The connection outlives the SETTINGS exchange keyspan started (no GOAWAY for a stray acknowledgement).
      assert.equal(session.closed || session.destroyed, false);
    } finally {
      session.close();
    }
  });
});
