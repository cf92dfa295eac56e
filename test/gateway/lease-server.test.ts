/**
 * etcdserverpb.Lease through the real server (embedded default, memory
 * engine) with raw gRPC clients and the JSON gateway.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { b, client, failure, keysOf, revOf, startTestServer, type EtcdTestClient } from './server-harness.js';
import type { Embedded } from '../../src/gateway/embedded.js';
import { etcdServiceDefinition, type EtcdMessage } from '../../src/gateway/proto.js';

/** Sends `ids` on one LeaseKeepAlive stream and collects one response per request. */
async function keepAlive(address: string, ids: readonly bigint[]): Promise<EtcdMessage[]> {
  const Ctor = grpc.makeGenericClientConstructor(etcdServiceDefinition('etcdserverpb.Lease'), 'Lease');
  const c = new Ctor(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    LeaseKeepAlive(md: grpc.Metadata, opts: grpc.CallOptions): grpc.ClientDuplexStream<EtcdMessage, EtcdMessage>;
  };
  try {
    const call = c.LeaseKeepAlive(new grpc.Metadata(), { deadline: Date.now() + 10_000 });
    const out: EtcdMessage[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', (m: EtcdMessage) => {
        out.push(m);
        if (out.length === ids.length) resolve();
      });
      call.on('error', reject);
    });
    for (const id of ids) call.write({ ID: id });
    await done;
    call.end();
    return out;
  } finally {
    c.close();
  }
}

describe('Lease service', () => {
  let server: Embedded;
  let lease: EtcdTestClient;
  let kv: EtcdTestClient;
  let address: string;
  let base: string;

  before(async () => {
    server = await startTestServer();
    address = `127.0.0.1:${server.server.port}`;
    base = `http://${address}`;
    lease = client('etcdserverpb.Lease', address);
    kv = client('etcdserverpb.KV', address);
  });
  after(async () => {
    lease.close();
    kv.close();
    await server.close();
  });

  it('LeaseGrant: server-chosen and client-chosen ids, TTL raised to the minimum, etcd errors', async () => {
    const put = await kv.call('Put', { key: b('rev'), value: b('x') });
    const g = await lease.call('LeaseGrant', { TTL: 60, ID: 0n });
    assert.equal(typeof g['ID'], 'bigint');
    assert.ok((g['ID'] as bigint) > 0n);
    assert.equal(g['TTL'], 60);
    assert.equal(revOf(g), revOf(put), 'a grant consumes no revision');
    // Test nodes tick every 10 ms: minimum TTL = ceil(15 ticks * 10 ms) = 1 s.
    const short = await lease.call('LeaseGrant', { TTL: 0, ID: 4242n });
    assert.deepEqual([short['ID'], short['TTL']], [4242n, 1]);
    assert.deepEqual(await failure(lease.call('LeaseGrant', { TTL: 30, ID: 4242n })), {
      code: grpc.status.FAILED_PRECONDITION,
      details: 'etcdserver: lease already exists',
    });
    assert.deepEqual(await failure(lease.call('LeaseGrant', { TTL: 9_000_000_001, ID: 0n })), {
      code: grpc.status.OUT_OF_RANGE,
      details: 'etcdserver: too large lease TTL',
    });
    const list = await lease.call('LeaseLeases', {});
    const listed = (list['leases'] as Array<{ ID: bigint }>).map((l) => l.ID);
    assert.ok(listed.includes(g['ID'] as bigint) && listed.includes(4242n));
    await lease.call('LeaseRevoke', { ID: 4242n });
  });

  it('Put and Txn with a lease; TimeToLive with keys; Revoke deletes them at one revision', async () => {
    const g = await lease.call('LeaseGrant', { TTL: 100, ID: 0n });
    const id = g['ID'] as bigint;
    await kv.call('Put', { key: b('l/a'), value: b('1'), lease: id });
    // etcd refuses only when the branch that runs names an unknown lease.
    const txn = await kv.call('Txn', {
      compare: [{ key: b('l/a'), target: 3, result: 0, value: b('1') }],
      success: [{ request_put: { key: b('l/b'), value: b('2'), lease: id } }],
      failure: [{ request_put: { key: b('l/c'), value: b('3'), lease: 999n } }],
    });
    assert.equal(txn['succeeded'], true);
    assert.deepEqual(await failure(kv.call('Put', { key: b('l/x'), value: b('1'), lease: 999n })), {
      code: grpc.status.NOT_FOUND,
      details: 'etcdserver: requested lease not found',
    });
    const ttl = await lease.call('LeaseTimeToLive', { ID: id, keys: true });
    assert.equal(ttl['ID'], id);
    assert.equal(ttl['grantedTTL'], 100);
    assert.ok((ttl['TTL'] as number) >= 98 && (ttl['TTL'] as number) <= 100, String(ttl['TTL']));
    assert.deepEqual((ttl['keys'] as Buffer[]).map(String), ['l/a', 'l/b']);
    const noKeys = await lease.call('LeaseTimeToLive', { ID: id, keys: false });
    assert.deepEqual(noKeys['keys'], []);
    const before = revOf(await kv.call('Range', { key: b('l/a') }));
    const rv = await lease.call('LeaseRevoke', { ID: id });
    assert.equal(revOf(rv), before + 1, 'one revision for all deleted keys');
    const left = await kv.call('Range', { key: b('l/'), range_end: b('l0') });
    assert.deepEqual(keysOf(left), []);
    const gone = await lease.call('LeaseTimeToLive', { ID: id, keys: true });
    assert.deepEqual([gone['ID'], gone['TTL'], gone['grantedTTL']], [id, -1, 0]);
    assert.deepEqual(await failure(lease.call('LeaseRevoke', { ID: id })), {
      code: grpc.status.NOT_FOUND,
      details: 'etcdserver: requested lease not found',
    });
    // A revoke with no key attached consumes no revision.
    const empty = await lease.call('LeaseGrant', { TTL: 100, ID: 0n });
    const rv2 = await lease.call('LeaseRevoke', { ID: empty['ID'] });
    assert.equal(revOf(rv2), before + 1);
  });

  it('LeaseKeepAlive answers each request in order; an unknown lease gets TTL 0 with its ID', async () => {
    const a = (await lease.call('LeaseGrant', { TTL: 30, ID: 0n }))['ID'] as bigint;
    const c = (await lease.call('LeaseGrant', { TTL: 45, ID: 0n }))['ID'] as bigint;
    const out = await keepAlive(address, [a, 12345n, c, a]);
    assert.deepEqual(
      out.map((m) => [m['ID'], m['TTL']]),
      [[a, 30], [12345n, 0], [c, 45], [a, 30]],
    );
    assert.ok(revOf(out[0]!) >= 1);
  });

  it('JSON gateway: grant, keepalive stream, timetolive and leases under /v3/lease and /v3/kv/lease', async () => {
    const post = async (path: string, body: string): Promise<{ status: number; text: string }> => {
      const r = await fetch(`${base}${path}`, { method: 'POST', body, signal: AbortSignal.timeout(10_000) });
      return { status: r.status, text: await r.text() };
    };
    const g = await post('/v3/lease/grant', JSON.stringify({ TTL: '40', ID: '777' }));
    assert.equal(g.status, 200, g.text);
    const grant = JSON.parse(g.text) as { ID: string; TTL: string };
    assert.deepEqual([grant.ID, grant.TTL], ['777', '40']);
    await kv.call('Put', { key: b('j/k'), value: b('v'), lease: 777n });
    const ttl = JSON.parse((await post('/v3/kv/lease/timetolive', JSON.stringify({ ID: '777', keys: true }))).text) as Record<string, unknown>;
    assert.equal(ttl['grantedTTL'], '40');
    assert.deepEqual(ttl['keys'], [b('j/k').toString('base64')]);
    const ka = await post('/v3/lease/keepalive', `${JSON.stringify({ ID: '777' })}${JSON.stringify({ ID: '5' })}`);
    assert.equal(ka.status, 200, ka.text);
    const lines = ka.text.trim().split('\n').map((l) => JSON.parse(l) as { result: { ID: string; TTL?: string } });
    assert.deepEqual(lines.map((l) => [l.result.ID, l.result.TTL]), [['777', '40'], ['5', undefined]]);
    const leases = JSON.parse((await post('/v3/lease/leases', '{}')).text) as { leases: Array<{ ID: string }> };
    assert.ok(leases.leases.some((l) => l.ID === '777'));
    const rv = await post('/v3/kv/lease/revoke', JSON.stringify({ ID: '777' }));
    assert.equal(rv.status, 200, rv.text);
    const again = await post('/v3/lease/revoke', JSON.stringify({ ID: '777' }));
    assert.equal(again.status, 404);
    assert.deepEqual(JSON.parse(again.text), { error: 'etcdserver: requested lease not found', message: 'etcdserver: requested lease not found', code: 5 });
    assert.deepEqual(keysOf(await kv.call('Range', { key: b('j/k') })), []);
  });

  it('an expired lease is revoked by the leader and its key disappears', async () => {
    const id = (await lease.call('LeaseGrant', { TTL: 1, ID: 0n }))['ID'] as bigint;
    await kv.call('Put', { key: b('exp/k'), value: b('v'), lease: id });
    const deadline = Date.now() + 10_000;
    for (;;) {
      const r = await kv.call('Range', { key: b('exp/k') });
      if (keysOf(r).length === 0) break;
      assert.ok(Date.now() < deadline, 'the key of a 1 s lease is still there after 10 s');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const ttl = await lease.call('LeaseTimeToLive', { ID: id, keys: false });
    assert.equal(ttl['TTL'], -1);
  });

  it('lease metrics are exported under etcd\'s names', async () => {
    const text = await (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    for (const name of ['etcd_debugging_lease_granted_total', 'etcd_debugging_lease_revoked_total', 'etcd_debugging_lease_renewed_total', 'etcd_debugging_lease_ttl_total_bucket']) {
      assert.match(text, new RegExp(`^${name}\\{[^}]*\\} [1-9]`, 'm'), name);
    }
  });
});
