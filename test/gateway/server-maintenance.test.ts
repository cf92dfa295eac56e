/**
 * Maintenance, Cluster and grpc.health.v1 over gRPC, the JSON gateway and
 * the HTTP endpoints on the same client port, and the require-leader rule.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { Embedded } from '../../src/gateway/embedded.js';
import { EtcdServer } from '../../src/gateway/server.js';
import type { RangeRouter, RangeTarget } from '../../src/gateway/router.js';
import { HEALTH_SERVICE_DEFINITION } from '../../src/gateway/health-service.js';
import type { Replica } from '../../src/shard/replica/index.js';
import { b, client, failure, revOf, startTestServer, type EtcdTestClient } from './server-harness.js';

const S = grpc.status;

describe('Maintenance, Cluster, health and the JSON gateway', () => {
  let srv: Embedded;
  let address: string;
  let kv: EtcdTestClient;
  let mt: EtcdTestClient;
  let cl: EtcdTestClient;

  before(async () => {
    srv = await startTestServer();
    address = srv.server.addresses[0] ?? '';
    kv = client('etcdserverpb.KV', address);
    mt = client('etcdserverpb.Maintenance', address);
    cl = client('etcdserverpb.Cluster', address);
  });
  after(async () => {
    for (const c of [kv, mt, cl]) c.close();
    await srv.close();
  });

  it('Status reports version, leader, raft indexes and the db size', async () => {
    await kv.call('Put', { key: b('s'), value: b('1') });
    const st = await mt.call('Status', {});
    assert.equal(st['version'], '3.4.0');
    assert.equal(st['leader'], srv.member.id, 'the single node leads');
    assert.ok((st['raftTerm'] as number) > 0);
    assert.ok((st['raftIndex'] as number) >= (st['raftAppliedIndex'] as number));
    assert.ok((st['raftAppliedIndex'] as number) > 0);
    assert.equal(st['isLearner'], false);
    assert.deepEqual(st['errors'], []);
    assert.equal(typeof st['dbSize'], 'number');
    assert.equal((st['header'] as { member_id: bigint }).member_id, srv.member.id);
  });

  it('HashKV is stable for the same state and changes with a write', async () => {
    const h1 = await mt.call('HashKV', { revision: 0 });
    const h2 = await mt.call('HashKV', { revision: 0 });
    assert.equal(h1['hash'], h2['hash']);
    const rev = revOf(await kv.call('Put', { key: b('hash'), value: b('x') }));
    const h3 = await mt.call('HashKV', { revision: 0 });
    assert.notEqual(h3['hash'], h1['hash']);
    assert.equal(h3['hash_revision'], rev);
    const atOld = await mt.call('HashKV', { revision: rev - 1 });
    assert.equal(atOld['hash'], h1['hash'], 'a hash at the older revision equals the hash taken then');
    assert.deepEqual(await failure(mt.call('HashKV', { revision: rev + 100 })), {
      code: S.OUT_OF_RANGE,
      details: 'etcdserver: mvcc: required revision is a future revision',
    });
  });

  it('Alarm GET lists no alarms; Defragment succeeds; Downgrade is unimplemented', async () => {
    const a = await mt.call('Alarm', { action: 0, memberID: 0n, alarm: 0 });
    assert.deepEqual(a['alarms'], []);
    await mt.call('Defragment', {});
    assert.equal((await failure(mt.call('Downgrade', { action: 0, version: '3.4.0' }))).code, S.UNIMPLEMENTED);
  });

  it('MemberList names this node as the one member', async () => {
    const r = await cl.call('MemberList', {});
    const members = r['members'] as Array<Record<string, unknown>>;
    assert.equal(members.length, 1);
    assert.equal(members[0]?.['ID'], srv.member.id);
    assert.equal(members[0]?.['name'], 'test');
    assert.deepEqual(members[0]?.['clientURLs'], [`http://${address}`]);
    assert.equal((members[0]?.['peerURLs'] as string[]).length, 1);
    assert.equal(members[0]?.['isLearner'], false);
    // etcd's cluster server header carries no revision (3.4.23: {"cluster_id","member_id","raft_term"}).
    const header = r['header'] as { revision: number; raft_term: number; member_id: bigint };
    assert.equal(Number(header.revision), 0);
    assert.ok(Number(header.raft_term) > 0);
    assert.equal(header.member_id, srv.member.id);
  });

  it('grpc.health.v1 Check answers SERVING', async () => {
    const Ctor = grpc.makeGenericClientConstructor(HEALTH_SERVICE_DEFINITION, 'Health');
    const c = new Ctor(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
      Check: (r: unknown, cb: (e: grpc.ServiceError | null, res: { status: number }) => void) => void;
    };
    const res = await new Promise<{ status: number }>((resolve, reject) => c.Check({ service: '' }, (e, r) => (e ? reject(e) : resolve(r))));
    c.close();
    assert.equal(res.status, 1);
  });

  it('serves the JSON gateway, /health, /version and /metrics on the gRPC port', async () => {
    const base = `http://${address}`;
    const post = async (path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
      const r = await fetch(`${base}${path}`, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
      return { status: r.status, json: (await r.json()) as Record<string, unknown> };
    };
    const put = await post('/v3/kv/put', { key: b('json').toString('base64'), value: b('yes').toString('base64') });
    assert.equal(put.status, 200);
    const header = put.json['header'] as Record<string, string>;
    assert.equal(header['member_id'], srv.member.id.toString());
    assert.match(header['revision'] ?? '', /^\d+$/, 'int64 as a decimal string');
    const got = await post('/v3beta/kv/range', { key: b('json').toString('base64') });
    assert.equal(got.status, 200);
    const kvs = got.json['kvs'] as Array<Record<string, string>>;
    assert.equal(Buffer.from(kvs[0]?.['value'] ?? '', 'base64').toString(), 'yes');
    assert.equal(got.json['count'], '1');

    const empty = await post('/v3/kv/range', { key: '' });
    assert.equal(empty.status, 400);
    assert.deepEqual(empty.json, { error: 'etcdserver: key is not provided', message: 'etcdserver: key is not provided', code: 3 });
    const bad = await post('/v3/kv/range', { key: 12 });
    assert.equal(bad.status, 400);
    // A route whose RPC is not served.
    const downgrade = await post('/v3/maintenance/downgrade', {});
    assert.equal(downgrade.status, 501);
    const status = await post('/v3/maintenance/status', {});
    assert.equal(status.json['version'], '3.4.0');
    const members = await post('/v3/cluster/member/list', {});
    assert.equal((members.json['members'] as unknown[]).length, 1);

    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { health: 'true' });
    const version = await fetch(`${base}/version`);
    assert.deepEqual(await version.json(), { etcdserver: '3.4.0', etcdcluster: '3.4.0' });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /^etcd_server_has_leader\{node="1"\} 1$/m);
    assert.equal((await fetch(`${base}/nope`)).status, 404);
  });
});

describe('require-leader and routing retries', () => {
  /** A router over one fake range whose leader the test controls; data requests fail as "not leader". */
  function fakeRouter(leader: () => number): RangeRouter {
    const target: RangeTarget = {
      rangeId: 1,
      replica: { isInitialized: false, onAuthApplied: () => () => undefined } as unknown as Replica,
      epoch: { confVersion: 1, spanVersion: 1 },
      raftStatus: () => ({ leader: leader(), term: 3, commit: 0, applied: 0, role: 'follower' }),
    };
    return {
      route: () => target,
      ranges: () => [target],
      invalidate: () => undefined,
    };
  }

  it('fails hasleader=true requests with "etcdserver: no leader" while no leader is known', async () => {
    let leader = 0;
    const server = await EtcdServer.start({
      listen: [{ host: '127.0.0.1', port: 0 }],
      router: fakeRouter(() => leader),
      clusterId: 7n,
      member: { id: 1n, name: 'x', peerURLs: [], clientURLs: [] },
      memberIdOfNode: (n) => BigInt(n),
      dbSizeBytes: async () => 0,
    });
    const mt = client('etcdserverpb.Maintenance', server.addresses[0] ?? '');
    const kv = client('etcdserverpb.KV', server.addresses[0] ?? '');
    try {
      const md = new grpc.Metadata();
      md.set('hasleader', 'true');
      assert.deepEqual(await failure(kv.call('Range', { key: b('a') }, md)), { code: S.UNAVAILABLE, details: 'etcdserver: no leader' });
      assert.deepEqual(await failure(mt.call('Status', {}, md)), { code: S.UNAVAILABLE, details: 'etcdserver: no leader' });
      const st = await mt.call('Status', {});
      assert.equal(st['leader'], 0n, 'without the metadata Status still answers, showing no leader');
      leader = 1;
      const st2 = await mt.call('Status', {}, md);
      assert.equal(st2['leader'], 1n);
    } finally {
      mt.close();
      kv.close();
      await server.close();
    }
  });
});
