/**
 * The gateway's metrics on the node's registry (go-grpc-prometheus' server
 * metrics, etcd's client byte counters and store gauges) scraped over HTTP
 * from /metrics, and /health's verdicts (healthy; no leader → 503 with a
 * reason).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import type { Embedded } from '../../src/gateway/embedded.js';
import { HEALTH_SERVICE_DEFINITION } from '../../src/gateway/health-service.js';
import type { RangeRouter, RangeTarget } from '../../src/gateway/router.js';
import { EtcdServer } from '../../src/gateway/server.js';
import type { Replica } from '../../src/shard/replica/index.js';
import { b, client, failure, revOf, startTestServer, type EtcdTestClient } from './server-harness.js';

/** Bound on every HTTP request of these tests. */
const HTTP_TIMEOUT_MS = 10_000;

/** One sample of the Prometheus text format. */
interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Parses the Prometheus text exposition format (the subset prom-client writes). */
function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m !== null, `unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] ?? ''] = l[2] ?? '';
    out.push({ name: m[1] ?? '', labels, value: Number(m[3]) });
  }
  return out;
}

/** Samples named `name` whose labels include `labels`. */
function find(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The one sample named `name` with `labels` (fails if there is not exactly one). */
function one(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = find(samples, name, labels);
  assert.equal(found.length, 1, `exactly one ${name}${JSON.stringify(labels)}, got ${found.length}`);
  return found[0]?.value ?? NaN;
}

async function scrape(base: string): Promise<Sample[]> {
  const r = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
  assert.equal(r.status, 200);
  return parseMetrics(await r.text());
}

const KV = { grpc_type: 'unary', grpc_service: 'etcdserverpb.KV' };

describe('gateway metrics and /health on the embedded server', () => {
  let srv: Embedded;
  let base: string;
  let kv: EtcdTestClient;

  before(async () => {
    srv = await startTestServer();
    const address = srv.server.addresses[0] ?? '';
    base = `http://${address}`;
    kv = client('etcdserverpb.KV', address);
  });
  after(async () => {
    kv.close();
    await srv.close();
  });

  it('counts RPCs by service, method and Go code name, with latency, bytes and store gauges', async () => {
    let rev = 0;
    for (let i = 0; i < 3; i++) rev = revOf(await kv.call('Put', { key: b(`m${i}`), value: b('v') }));
    await kv.call('Range', { key: b('m0') });
    await kv.call('Range', { key: b('m'), range_end: b('n') });
    const bad = await failure(kv.call('Put', { key: b(''), value: b('v') }));
    assert.equal(bad.code, grpc.status.INVALID_ARGUMENT);
    // One Put through the JSON gateway counts as the gRPC call it stands for.
    const put = await fetch(`${base}/v3/kv/put`, {
      method: 'POST',
      body: JSON.stringify({ key: b('mjson').toString('base64'), value: b('j').toString('base64') }),
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    });
    assert.equal(put.status, 200);
    rev = Number(((await put.json()) as { header: { revision: string } }).header.revision);

    const s = await scrape(base);
    const put_ = { ...KV, grpc_method: 'Put' };
    const range = { ...KV, grpc_method: 'Range' };
    assert.ok(one(s, 'grpc_server_handled_total', { ...put_, grpc_code: 'OK' }) >= 4);
    assert.ok(one(s, 'grpc_server_handled_total', { ...put_, grpc_code: 'InvalidArgument' }) >= 1);
    assert.ok(one(s, 'grpc_server_handled_total', { ...range, grpc_code: 'OK' }) >= 2);
    // As go-grpc-prometheus: every method's series exist from the start, at 0.
    assert.equal(one(s, 'grpc_server_handled_total', { ...range, grpc_code: 'ResourceExhausted' }), 0);
    assert.equal(one(s, 'grpc_server_started_total', { ...KV, grpc_method: 'Compact' }), 0);
    const putsHandled = find(s, 'grpc_server_handled_total', put_).reduce((a, x) => a + x.value, 0);
    assert.equal(one(s, 'grpc_server_started_total', put_), putsHandled, 'every started Put was handled');
    assert.ok(putsHandled >= 5);
    assert.equal(one(s, 'grpc_server_handling_seconds_count', put_), putsHandled);
    assert.ok(one(s, 'grpc_server_handling_seconds_sum', put_) > 0);
    assert.equal(one(s, 'grpc_server_handling_seconds_bucket', { ...put_, le: '+Inf' }), putsHandled);
    assert.equal(one(s, 'grpc_server_msg_received_total', put_), putsHandled);
    assert.ok(one(s, 'grpc_server_msg_sent_total', put_) >= 4);
    assert.ok(one(s, 'etcd_network_client_grpc_received_bytes_total') > 0);
    assert.ok(one(s, 'etcd_network_client_grpc_sent_bytes_total') > 0);

    assert.equal(one(s, 'etcd_server_has_leader'), 1);
    assert.equal(one(s, 'etcd_server_is_leader'), 1);
    assert.ok(one(s, 'etcd_mvcc_db_total_size_in_bytes') > 0);
    assert.ok(one(s, 'etcd_debugging_mvcc_db_total_size_in_bytes') > 0);
    assert.equal(one(s, 'etcd_debugging_mvcc_current_revision'), rev);
    assert.equal(one(s, 'etcd_debugging_mvcc_keys_total'), 4, 'm0, m1, m2 and mjson');
    await kv.call('DeleteRange', { key: b('m0') });
    assert.equal(one(await scrape(base), 'etcd_debugging_mvcc_keys_total'), 3, 'a delete lowers the key count');
    // The node's registry: its labels are on the gateway's series too.
    assert.equal(find(s, 'grpc_server_started_total', put_)[0]?.labels['node'], '1');
  });

  it('counts the grpc.health.v1 Check like the etcd services', async () => {
    const Ctor = grpc.makeGenericClientConstructor(HEALTH_SERVICE_DEFINITION, 'Health');
    const c = new Ctor(srv.server.addresses[0] ?? '', grpc.credentials.createInsecure()) as unknown as grpc.Client & {
      Check(req: { service: string }, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: { status: number }) => void): void;
    };
    try {
      const res = await new Promise<{ status: number }>((resolve, reject) =>
        c.Check({ service: '' }, { deadline: Date.now() + HTTP_TIMEOUT_MS }, (err, r) => (err ? reject(err) : resolve(r))),
      );
      assert.equal(res.status, 1);
    } finally {
      c.close();
    }
    const s = await scrape(base);
    assert.ok(one(s, 'grpc_server_handled_total', { grpc_type: 'unary', grpc_service: 'grpc.health.v1.Health', grpc_method: 'Check', grpc_code: 'OK' }) >= 1);
  });

  it('/health answers {"health":"true"} and counts the success', async () => {
    const r = await fetch(`${base}/health`, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { health: 'true' });
    const s = await scrape(base);
    assert.ok(one(s, 'etcd_server_health_success') >= 1);
    assert.equal(one(s, 'etcd_server_health_failures'), 0);
  });
});

describe('/health and the store gauges without a leader', () => {
  it('answers 503 {"health":"false","reason":"RAFT NO LEADER"} and reports no leadership', async () => {
    const target: RangeTarget = {
      rangeId: 1,
      replica: { isInitialized: false, onAuthApplied: () => () => undefined } as unknown as Replica,
      epoch: { confVersion: 1, spanVersion: 1 },
      raftStatus: () => ({ leader: 0, term: 3, commit: 0, applied: 0, role: 'follower' }),
    };
    const router: RangeRouter = { route: () => target, ranges: () => [target], invalidate: () => undefined };
    const registry = new Registry();
    const server = await EtcdServer.start({
      listen: [{ host: '127.0.0.1', port: 0 }],
      router,
      clusterId: 7n,
      member: { id: 1n, name: 'x', peerURLs: [], clientURLs: [] },
      memberIdOfNode: (n) => BigInt(n),
      dbSizeBytes: async () => 4096,
      metrics: registry,
    });
    try {
      const base = `http://${server.addresses[0] ?? ''}`;
      const r = await fetch(`${base}/health`, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
      assert.equal(r.status, 503);
      assert.deepEqual(await r.json(), { health: 'false', reason: 'RAFT NO LEADER' });
      const s = await scrape(base);
      assert.equal(one(s, 'etcd_server_health_failures'), 1);
      assert.equal(one(s, 'etcd_server_is_leader'), 0);
      assert.equal(one(s, 'etcd_mvcc_db_total_size_in_bytes'), 4096);
      assert.equal(one(s, 'etcd_debugging_mvcc_current_revision'), 0);
    } finally {
      await server.close();
    }
  });
});
