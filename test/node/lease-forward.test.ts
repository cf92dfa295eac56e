/**
 * LeaseKeepAlive on a cluster follower (three members in one process,
 * memory engines, 10 ms ticks): each keepalive request sent to a follower's
 * node is answered by the leader's lessor, in order, so a lease kept alive
 * only through a follower outlives its TTL; an unknown lease answers TTL 0;
 * it keeps working after leadership moves; TimeToLive and Leases through a
 * follower answer as the leader does.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { startEmbedded, type Embedded } from '../../src/gateway/embedded.js';
import { loopbackCluster } from './embedded-cluster.js';
import { etcdServiceDefinition, type EtcdMessage } from '../../src/gateway/proto.js';
import { client, type EtcdTestClient } from '../gateway/server-harness.js';
import { delay, freePorts, waitFor } from './helpers.js';

const TICK_MS = 10;
/** Bound on one keepalive answer. */
const ANSWER_TIMEOUT_MS = 10_000;

/** One open LeaseKeepAlive stream: `send(id)` resolves the answer to that request. */
class KeepAliveStream {
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<EtcdMessage, EtcdMessage>;
  private readonly waiting: Array<{ resolve: (m: EtcdMessage) => void; reject: (e: Error) => void }> = [];
  private failed: Error | undefined;

  constructor(address: string) {
    const Ctor = grpc.makeGenericClientConstructor(etcdServiceDefinition('etcdserverpb.Lease'), 'Lease');
    const c = new Ctor(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
      LeaseKeepAlive(md: grpc.Metadata): grpc.ClientDuplexStream<EtcdMessage, EtcdMessage>;
    };
    this.client = c;
    this.call = c.LeaseKeepAlive(new grpc.Metadata());
    this.call.on('data', (m: EtcdMessage) => this.waiting.shift()?.resolve(m));
    this.call.on('error', (err: Error) => {
      this.failed = err;
      for (const w of this.waiting.splice(0)) w.reject(err);
    });
  }

  send(id: bigint): Promise<EtcdMessage> {
    if (this.failed !== undefined) return Promise.reject(this.failed);
    const answer = new Promise<EtcdMessage>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      setTimeout(() => reject(new Error(`no keepalive answer within ${ANSWER_TIMEOUT_MS} ms`)), ANSWER_TIMEOUT_MS).unref();
    });
    this.call.write({ ID: id });
    return answer;
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

describe('LeaseKeepAlive through a follower', () => {
  const members: Embedded[] = [];
  const lease = new Map<Embedded, EtcdTestClient>();
  const maint = new Map<Embedded, EtcdTestClient>();
  const streams: KeepAliveStream[] = [];

  const leaderIndex = (): number => members.findIndex((m) => m.node.status(1).role === 'leader');
  const leader = (): Embedded => members[leaderIndex()] as Embedded;
  const follower = (): Embedded => members[(leaderIndex() + 1) % 3] as Embedded;
  const leaseClient = (m: Embedded): EtcdTestClient => lease.get(m) as EtcdTestClient;
  const open = (m: Embedded): KeepAliveStream => {
    const s = new KeepAliveStream(m.server.addresses[0] as string);
    streams.push(s);
    return s;
  };

  before(async () => {
    const ports = await freePorts(3);
    for (const name of ['m1', 'm2', 'm3']) {
      const port = ports[members.length] as number;
      const m = await startEmbedded({
        name,
        engineKind: 'memory',
        listenClient: [{ url: 'http://127.0.0.1:0', host: '127.0.0.1', port: 0 }],
        listenPeer: { url: `http://127.0.0.1:${port}`, host: '127.0.0.1', port },
        tickMs: TICK_MS,
        cluster: loopbackCluster(ports, name),
        onInternalError: (method, err) => console.error('internal error in', method, err),
      });
      members.push(m);
      lease.set(m, client('etcdserverpb.Lease', m.server.addresses[0] as string));
      maint.set(m, client('etcdserverpb.Maintenance', m.server.addresses[0] as string));
    }
    await waitFor(() => leaderIndex() >= 0 && members.every((m) => m.node.status(1).leader !== 0), 'a leader known to all', 15_000);
  });

  after(async () => {
    for (const s of streams) s.close();
    for (const c of [...lease.values(), ...maint.values()]) c.close();
    for (const m of members) await m.close();
  });

  /** Keeps `id` alive through `stream` every `everyMs` for `forMs`; returns the TTLs answered. */
  async function keepAliveFor(stream: KeepAliveStream, id: bigint, everyMs: number, forMs: number): Promise<number[]> {
    const ttls: number[] = [];
    const end = Date.now() + forMs;
    while (Date.now() < end) {
      const r = await stream.send(id);
      assert.equal(r['ID'], id);
      ttls.push(Number(r['TTL']));
      await delay(everyMs);
    }
    return ttls;
  }

  it('keeps a lease alive past its TTL with keepalives sent only to a follower', async () => {
    const f = follower();
    const g = await leaseClient(f).call('LeaseGrant', { TTL: 2, ID: 0n });
    const id = g['ID'] as bigint;
    const ttl = Number(g['TTL']);
    assert.ok(ttl >= 2, `granted TTL ${ttl}`);
    const stream = open(f);
    const ttls = await keepAliveFor(stream, id, 400, (ttl + 1) * 1000);
    assert.ok(ttls.every((t) => t === ttl), `every answer renews to the granted TTL: ${ttls.join(',')}`);
    const header = (await stream.send(id))['header'] as { member_id: bigint };
    assert.equal(header.member_id, f.member.id, 'answered as the member the client called');
    const left = await leaseClient(leader()).call('LeaseTimeToLive', { ID: id, keys: false });
    assert.ok(Number(left['TTL']) > 0, `still alive on the leader: TTL ${String(left['TTL'])}`);
  });

  it('answers TTL 0 for an unknown lease, in order with known ones', async () => {
    const f = follower();
    const g = await leaseClient(f).call('LeaseGrant', { TTL: 5, ID: 0n });
    const id = g['ID'] as bigint;
    const stream = open(f);
    const answers = await Promise.all([stream.send(id), stream.send(0x7777n), stream.send(id)]);
    assert.deepEqual(
      answers.map((a) => [a['ID'], Number(a['TTL'])]),
      [[id, Number(g['TTL'])], [0x7777n, 0], [id, Number(g['TTL'])]],
    );
  });

  it('TimeToLive and Leases through a follower answer as the leader', async () => {
    const f = follower();
    const g = await leaseClient(f).call('LeaseGrant', { TTL: 30, ID: 0n });
    const id = g['ID'] as bigint;
    const ttl = await leaseClient(f).call('LeaseTimeToLive', { ID: id, keys: true });
    assert.equal(ttl['grantedTTL'], g['TTL']);
    assert.ok(Number(ttl['TTL']) > 0);
    const unknown = await leaseClient(f).call('LeaseTimeToLive', { ID: 0x7778n, keys: false });
    assert.equal(Number(unknown['TTL']), -1);
    const list = await leaseClient(f).call('LeaseLeases', {});
    assert.ok((list['leases'] as Array<{ ID: bigint }>).some((l) => l.ID === id));
  });

  it('keeps working on the same follower stream after leadership moves', async () => {
    const old = leader();
    const f = follower();
    const third = members.find((m) => m !== old && m !== f) as Embedded;
    const g = await leaseClient(f).call('LeaseGrant', { TTL: 2, ID: 0n });
    const id = g['ID'] as bigint;
    const ttl = Number(g['TTL']);
    const stream = open(f);
    assert.equal(Number((await stream.send(id))['TTL']), ttl);
    await maint.get(old)?.call('MoveLeader', { targetID: third.member.id });
    await waitFor(() => third.node.status(1).role === 'leader' && f.node.status(1).leader === third.node.nodeId, 'leadership on the third member', 15_000);
    // The old leader is now a follower too: keep alive through both followers' streams.
    const viaOld = open(old);
    const ttls = await keepAliveFor(stream, id, 400, (ttl + 1) * 1000);
    assert.ok(ttls.every((t) => t === ttl), `renewed after the move: ${ttls.join(',')}`);
    assert.equal(Number((await viaOld.send(id))['TTL']), ttl);
    const left = await leaseClient(third).call('LeaseTimeToLive', { ID: id, keys: false });
    assert.ok(Number(left['TTL']) > 0, `alive on the new leader: TTL ${String(left['TTL'])}`);
  });
});
