/**
 * Three cluster members in one process (startEmbedded with a static
 * cluster, memory engines, gRPC on loopback, 10 ms ticks): writes sent to a
 * follower are forwarded to the leader and answered with the follower's
 * member id; errors come back with etcd's code and text; MemberList and
 * Status agree on every member; every handler that routes hands the call's
 * forwarding scope to routing and takes its write's request id from it; a
 * write whose leader fails over still lands exactly once; and a data
 * directory refuses another --initial-cluster.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { CallInfo } from '../../src/gateway/context.js';
import { startEmbedded, type Embedded } from '../../src/gateway/embedded.js';
import { LeaderElsewhereError } from '../../src/gateway/forward-scope.js';
import { decodeEtcdMessage, encodeEtcdMessage, etcdMethods, type EtcdMessage, type EtcdServiceName } from '../../src/gateway/proto.js';
import { loopbackCluster } from './embedded-cluster.js';
import { parseInitialCluster } from '../../src/node/index.js';
import { client, failure, b, type EtcdTestClient } from '../gateway/server-harness.js';
import { freePorts, tempDir, waitFor } from './helpers.js';

const TICK_MS = 10;

interface Member {
  readonly name: string;
  readonly peerPort: number;
  embedded: Embedded;
}

async function startMember(name: string, peerPorts: readonly number[], dataDir?: string): Promise<Embedded> {
  const peerPort = peerPorts[Number(name.slice(1)) - 1] as number;
  return startEmbedded({
    name,
    engineKind: dataDir === undefined ? 'memory' : 'leveldb',
    ...(dataDir !== undefined ? { dataDir } : {}),
    listenClient: [{ url: 'http://127.0.0.1:0', host: '127.0.0.1', port: 0 }],
    listenPeer: { url: `http://127.0.0.1:${peerPort}`, host: '127.0.0.1', port: peerPort },
    tickMs: TICK_MS,
    cluster: loopbackCluster(peerPorts, name),
    onInternalError: (method, err) => console.error('internal error in', method, err),
  });
}

describe('cluster members in one process', () => {
  const members: Member[] = [];
  const clients = new Map<string, { kv: EtcdTestClient; cluster: EtcdTestClient; maint: EtcdTestClient }>();
  let peerPorts: number[] = [];

  const leaderIndex = (): number => members.findIndex((m) => m.embedded.node.status(1).role === 'leader');
  const c = (m: Member) => {
    const x = clients.get(m.name);
    assert.ok(x);
    return x;
  };

  before(async () => {
    peerPorts = await freePorts(3);
    for (const name of ['m1', 'm2', 'm3']) {
      const embedded = await startMember(name, peerPorts);
      members.push({ name, peerPort: peerPorts[members.length] as number, embedded });
      const address = embedded.server.addresses[0] as string;
      clients.set(name, {
        kv: client('etcdserverpb.KV', address),
        cluster: client('etcdserverpb.Cluster', address),
        maint: client('etcdserverpb.Maintenance', address),
      });
    }
    await waitFor(() => leaderIndex() >= 0 && members.every((m) => m.embedded.node.status(1).leader !== 0), 'a leader known to all', 15_000);
  });

  after(async () => {
    for (const x of clients.values()) for (const cl of Object.values(x)) cl.close();
    for (const m of members) await m.embedded.close();
  });

  it('derives node ids from the sorted member names, identically everywhere', () => {
    assert.deepEqual(members.map((m) => m.embedded.node.nodeId), [1, 2, 3]);
    assert.deepEqual(
      parseInitialCluster('b=http://127.0.0.1:2,c=http://127.0.0.1:3,a=http://127.0.0.1:1').members.map((m) => [m.name, m.nodeId]),
      [['a', 1], ['b', 2], ['c', 3]],
    );
  });

  it('forwards a put sent to a follower and answers with the follower as member', async () => {
    const follower = members[(leaderIndex() + 1) % 3] as Member;
    const res = await c(follower).kv.call('Put', { key: b('fwd/a'), value: b('1') });
    const header = res['header'] as { member_id: bigint; revision: number };
    assert.equal(header.member_id, follower.embedded.member.id);
    const other = members[(leaderIndex() + 2) % 3] as Member;
    const got = await c(other).kv.call('Range', { key: b('fwd/a') });
    const kvs = got['kvs'] as Array<{ value: Buffer; mod_revision: number }>;
    assert.equal(kvs[0]?.value.toString(), '1');
    assert.equal(kvs[0]?.mod_revision, header.revision);
  });

  it('forwards a JSON gateway put sent to a follower', async () => {
    const follower = members[(leaderIndex() + 1) % 3] as Member;
    const res = await fetch(`${follower.embedded.clientUrls[0]}/v3/kv/put`, {
      method: 'POST',
      body: JSON.stringify({ key: Buffer.from('fwd/json').toString('base64'), value: Buffer.from('j').toString('base64') }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { header: { member_id: string } };
    assert.equal(body.header.member_id, follower.embedded.member.id.toString());
    const got = await c(members[leaderIndex()] as Member).kv.call('Range', { key: b('fwd/json') });
    assert.equal((got['kvs'] as Array<{ value: Buffer }>)[0]?.value.toString(), 'j');
  });

  it('forwards Txn, DeleteRange and Compact, and passes etcd errors back unchanged', async () => {
    const follower = members[(leaderIndex() + 1) % 3] as Member;
    const kv = c(follower).kv;
    const t = await kv.call('Txn', {
      compare: [{ key: b('fwd/a'), target: 3, result: 0, value: b('1') }],
      success: [{ request_put: { key: b('fwd/b'), value: b('2') } }],
      failure: [],
    });
    assert.equal(t['succeeded'], true);
    const d = await kv.call('DeleteRange', { key: b('fwd/b') });
    assert.equal(Number(d['deleted']), 1);
    const rev = (d['header'] as { revision: number }).revision;
    const tooFar = await failure(kv.call('Compact', { revision: rev + 1000 }));
    assert.deepEqual(tooFar, { code: grpc.status.OUT_OF_RANGE, details: 'etcdserver: mvcc: required revision is a future revision' });
    await kv.call('Compact', { revision: rev });
    const again = await failure(kv.call('Compact', { revision: rev }));
    assert.deepEqual(again, { code: grpc.status.OUT_OF_RANGE, details: 'etcdserver: mvcc: required revision has been compacted' });
  });

  it('lists all three members on every member; Status names the real leader', async () => {
    const leaderId = members[leaderIndex()]?.embedded.member.id;
    for (const m of members) {
      const list = await c(m).cluster.call('MemberList', {});
      const rows = (list['members'] as Array<{ ID: bigint; name: string; peerURLs: string[]; clientURLs: string[] }>).map((x) => [
        x.ID,
        x.name,
        x.peerURLs.join(','),
        x.clientURLs.join(','),
      ]);
      assert.deepEqual(
        rows,
        members.map((o) => [o.embedded.member.id, o.name, `http://127.0.0.1:${o.peerPort}`, o.embedded.clientUrls.join(',')]),
      );
      const st = await c(m).maint.call('Status', {});
      assert.equal(st['leader'], leaderId);
      assert.equal((st['header'] as { member_id: bigint }).member_id, m.embedded.member.id);
    }
  });

  /** The request message type of `service/method` (the internal keepalive-once takes a LeaseKeepAliveRequest). */
  const requestType = (method: string): string => {
    const [service, name] = method.split('/') as [string, string];
    if (name === 'LeaseKeepAliveOnce') return 'etcdserverpb.LeaseKeepAliveRequest';
    const info = etcdMethods(service as EtcdServiceName).find((x) => x.method === name);
    assert.ok(info !== undefined, method);
    return info.requestType;
  };

  /**
   * Runs `method` on member `m`'s handler as the receiving end of a forward
   * does: the request decoded from its wire form, in a call whose scope says
   * forwarded, with request id `seq` of `proposer`.
   */
  const forwardedCall = (m: Member, method: string, fields: EtcdMessage, proposer: Buffer, seq: number): Promise<EtcdMessage> => {
    const handler = m.embedded.server.unaryHandler(method);
    assert.ok(handler !== undefined, method);
    const type = requestType(method);
    const request = decodeEtcdMessage(type, encodeEtcdMessage(type, fields));
    const call: CallInfo = {
      signal: new AbortController().signal,
      metadata: new grpc.Metadata(),
      forward: { localNodeId: m.embedded.node.nodeId, forwarded: true, requestId: { proposer, seq } },
    };
    return handler(request, call);
  };

  it("every handler that routes hands a forwarded call's scope to routing: a follower names the leader at once", async () => {
    const leader = members[leaderIndex()] as Member;
    const follower = members[(leaderIndex() + 1) % 3] as Member;
    const proposer = randomBytes(8);
    // Without the scope a follower would retry locally until the routing
    // deadline and fail with NotLeaderError instead.
    const calls: Array<[string, EtcdMessage]> = [
      ['etcdserverpb.KV/Put', { key: b('scope/f'), value: b('1') }],
      ['etcdserverpb.KV/DeleteRange', { key: b('scope/f') }],
      ['etcdserverpb.KV/Txn', { compare: [], success: [{ request_put: { key: b('scope/f'), value: b('1') } }], failure: [] }],
      ['etcdserverpb.KV/Compact', { revision: 1 }],
      ['etcdserverpb.Lease/LeaseGrant', { TTL: 60, ID: 0n }],
      ['etcdserverpb.Lease/LeaseRevoke', { ID: 12345n }],
      ['etcdserverpb.Lease/LeaseTimeToLive', { ID: 12345n, keys: false }],
      ['etcdserverpb.Lease/LeaseKeepAliveOnce', { ID: 12345n }],
      ['etcdserverpb.Auth/RoleAdd', { name: 'scope-follower' }],
      ['etcdserverpb.Cluster/MemberUpdate', { ID: follower.embedded.member.id, peerURLs: [`http://127.0.0.1:${follower.peerPort}`] }],
    ];
    for (const [i, [method, request]] of calls.entries()) {
      await assert.rejects(
        forwardedCall(follower, method, request, proposer, i + 1),
        (err: unknown) => err instanceof LeaderElsewhereError && err.leaderNodeId === leader.embedded.node.nodeId,
        method,
      );
    }
  });

  it("a forwarded call's write takes the scope's request id: the leader answers a repeat from the dedupe table", async () => {
    const leader = members[leaderIndex()] as Member;
    const proposer = randomBytes(8);
    const twice = async (method: string, first: EtcdMessage, second: EtcdMessage, seq: number): Promise<[EtcdMessage, EtcdMessage]> => [
      await forwardedCall(leader, method, first, proposer, seq),
      await forwardedCall(leader, method, second, proposer, seq),
    ];
    const rev = (m: EtcdMessage): number => Number((m['header'] as { revision: number }).revision);
    // Applied again, each repeat below would change the data or fail.
    const [p1, p2] = await twice('etcdserverpb.KV/Put', { key: b('scope/p'), value: b('1') }, { key: b('scope/p'), value: b('2') }, 1);
    assert.equal(rev(p2), rev(p1));
    const txn = (value: string): EtcdMessage => ({ compare: [], success: [{ request_put: { key: b('scope/t'), value: b(value) } }], failure: [] });
    const [t1, t2] = await twice('etcdserverpb.KV/Txn', txn('1'), txn('2'), 2);
    assert.equal(rev(t2), rev(t1));
    const got = await c(leader).kv.call('Range', { key: b('scope/'), range_end: b('scope0') });
    assert.deepEqual(
      (got['kvs'] as Array<{ key: Buffer; value: Buffer; version: number }>).map((kv) => [kv.key.toString(), kv.value.toString(), Number(kv.version)]),
      [['scope/p', '1', 1], ['scope/t', '1', 1]],
    );
    const [d1, d2] = await twice('etcdserverpb.KV/DeleteRange', { key: b('scope/p') }, { key: b('scope/p') }, 3);
    assert.deepEqual([Number(d1['deleted']), Number(d2['deleted'])], [1, 1]);
    const [g1, g2] = await twice('etcdserverpb.Lease/LeaseGrant', { TTL: 60, ID: 0n }, { TTL: 60, ID: 0n }, 4);
    assert.equal(g2['ID'], g1['ID'], 'the same lease, not a second one');
    const [r1, r2] = await twice('etcdserverpb.Lease/LeaseRevoke', { ID: g1['ID'] }, { ID: g1['ID'] }, 5);
    assert.equal(rev(r2), rev(r1));
    const [a1, a2] = await twice('etcdserverpb.Auth/RoleAdd', { name: 'scope-leader' }, { name: 'scope-leader' }, 6);
    assert.equal(rev(a2), rev(a1));
    const now = rev(await c(leader).kv.call('Range', { key: b('scope/t') }));
    await twice('etcdserverpb.KV/Compact', { revision: now }, { revision: now }, 7);
  });

  it('a write through a follower survives the leader stopping: applied exactly once under the new leader', async () => {
    const li = leaderIndex();
    const old = members[li] as Member;
    const follower = members[(li + 1) % 3] as Member;
    await old.embedded.close();
    // The follower has not seen the leader go yet; its forward fails or is
    // refused until the election is over, then lands on the new leader.
    const res = await c(follower).kv.call('Put', { key: b('fwd/after'), value: b('x') });
    const rev = (res['header'] as { revision: number }).revision;
    const got = await c(follower).kv.call('Range', { key: b('fwd/after') });
    const kv = (got['kvs'] as Array<{ version: number; mod_revision: number }>)[0];
    assert.equal(kv?.version, 1);
    assert.equal(kv?.mod_revision, rev);
    // Bring the member back (memory engine: it rejoins empty and is caught up).
    clients.get(old.name)?.kv.close();
    old.embedded = await startMember(old.name, peerPorts);
    const address = old.embedded.server.addresses[0] as string;
    clients.set(old.name, {
      kv: client('etcdserverpb.KV', address),
      cluster: client('etcdserverpb.Cluster', address),
      maint: client('etcdserverpb.Maintenance', address),
    });
  });
});

describe('cluster identity in the data directory', () => {
  it('refuses a restart with another --initial-cluster, with a clear error', async () => {
    const dir = await tempDir('keyspan-cluster-id-');
    try {
      const ports = await freePorts(2);
      const solo = await startEmbedded({
        name: 'm1',
        engineKind: 'leveldb',
        dataDir: dir.path,
        listenClient: [{ url: 'http://127.0.0.1:0', host: '127.0.0.1', port: 0 }],
        listenPeer: { url: `http://127.0.0.1:${ports[0]}`, host: '127.0.0.1', port: ports[0] as number },
        tickMs: TICK_MS,
        cluster: loopbackCluster([ports[0] as number], 'm1'),
      });
      await solo.close();
      await assert.rejects(
        startEmbedded({
          name: 'm1',
          engineKind: 'leveldb',
          dataDir: dir.path,
          listenClient: [{ url: 'http://127.0.0.1:0', host: '127.0.0.1', port: 0 }],
          listenPeer: { url: `http://127.0.0.1:${ports[0]}`, host: '127.0.0.1', port: ports[0] as number },
          tickMs: TICK_MS,
          cluster: loopbackCluster(ports, 'm1'),
        }),
        /was created for --initial-cluster m1=http:\/\/127\.0\.0\.1:\d+, not m1=.*m2=.*restart with the original --initial-cluster/,
      );
    } finally {
      await dir.cleanup();
    }
  });
});
