/**
 * Runtime membership in one process (startEmbedded, memory engines, gRPC on
 * loopback, 10 ms ticks): MemberAdd of a voter and a learner through any
 * member (forwarded to range 1's leader), the new members joining with
 * `join` (etcd's --initial-cluster-state existing) and caught up by
 * snapshot, MemberPromote, MemberRemove of a follower and of the leader,
 * and etcd's errors with their codes and texts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { startEmbedded, type Embedded, type EmbeddedCluster } from '../../src/gateway/embedded.js';
import { parseInitialCluster } from '../../src/node/index.js';
import { client, failure, b, type EtcdTestClient } from '../gateway/server-harness.js';
import { freePorts, waitFor } from './helpers.js';

const TICK_MS = 10;

interface Member {
  readonly name: string;
  readonly peerPort: number;
  readonly embedded: Embedded;
  readonly kv: EtcdTestClient;
  readonly cluster: EtcdTestClient;
}

interface MemberRow {
  ID: bigint;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

const url = (port: number): string => `http://127.0.0.1:${port}`;

function clusterOf(list: ReadonlyArray<readonly [string, number]>, localName: string, join: boolean): EmbeddedCluster {
  const ic = parseInitialCluster(list.map(([n, p]) => `${n}=${url(p)}`).join(','));
  const self = ic.members.find((m) => m.name === localName);
  assert.ok(self);
  return { members: ic.members, localNodeId: self.nodeId, record: { initialCluster: ic.canonical, token: 'test' }, join };
}

async function startMember(name: string, peerPort: number, list: ReadonlyArray<readonly [string, number]>, join: boolean): Promise<Member> {
  const embedded = await startEmbedded({
    name,
    engineKind: 'memory',
    listenClient: [{ url: 'http://127.0.0.1:0', host: '127.0.0.1', port: 0 }],
    listenPeer: { url: url(peerPort), host: '127.0.0.1', port: peerPort },
    advertisePeerUrls: [url(peerPort)],
    tickMs: TICK_MS,
    cluster: clusterOf(list, name, join),
    onInternalError: (method, err) => console.error('internal error in', method, err),
  });
  const address = embedded.server.addresses[0] as string;
  return { name, peerPort, embedded, kv: client('etcdserverpb.KV', address), cluster: client('etcdserverpb.Cluster', address) };
}

describe('runtime membership (MemberAdd, Promote, Remove) in one process', () => {
  const members: Member[] = [];
  const stopped = new Set<Member>();
  let ports: [number, number, number, number, number] = [0, 0, 0, 0, 0];

  const running = (): Member[] => members.filter((m) => !stopped.has(m));
  const leader = (): Member | undefined => running().find((m) => m.embedded.node.rangeIds().includes(1) && m.embedded.node.status(1).role === 'leader');
  const follower = (): Member => {
    const l = leader();
    const f = running().find((m) => m !== l && m.embedded.node.rangeIds().includes(1));
    assert.ok(f);
    return f;
  };
  const list = async (m: Member): Promise<MemberRow[]> => (await m.cluster.call('MemberList', {}))['members'] as MemberRow[];
  const stop = async (m: Member): Promise<void> => {
    stopped.add(m);
    m.kv.close();
    m.cluster.close();
    await m.embedded.close();
  };

  before(async () => {
    ports = (await freePorts(5)) as typeof ports;
    const initial = [['m1', ports[0]], ['m2', ports[1]], ['m3', ports[2]]] as const;
    for (const [name, port] of initial) members.push(await startMember(name, port, initial, false));
    await waitFor(() => leader() !== undefined && members.every((m) => m.embedded.node.status(1).leader !== 0), 'a leader known to all', 15_000);
  });

  after(async () => {
    for (const m of running()) await stop(m);
  });

  it('adds a voter through a follower; the new member joins, gets the data and is listed everywhere', async () => {
    const put = await follower().kv.call('Put', { key: b('before'), value: b('v0') });
    const added = await follower().cluster.call('MemberAdd', { peerURLs: [url(ports[3])], isLearner: false });
    const member = added['member'] as MemberRow;
    assert.equal(member.ID, 4n, 'node ids are allocated above every id range 1 has had');
    assert.deepEqual([member.name, member.peerURLs, member.clientURLs, member.isLearner], ['', [url(ports[3])], [], false]);
    assert.deepEqual((added['members'] as MemberRow[]).map((m) => m.ID), [1n, 2n, 3n, 4n]);

    const all = [['m1', ports[0]], ['m2', ports[1]], ['m3', ports[2]], ['infra4', ports[3]]] as const;
    const m4 = await startMember('infra4', ports[3], all, true);
    members.push(m4);
    assert.equal(m4.embedded.node.nodeId, 4);
    await waitFor(async () => {
      if (!m4.embedded.node.rangeIds().includes(1) || !m4.embedded.node.range(1).isInitialized) return false;
      const got = await m4.kv.call('Range', { key: b('before'), serializable: true });
      return (got['kvs'] as unknown[]).length === 1;
    }, 'the new member caught up by snapshot', 15_000);
    const got = await m4.kv.call('Range', { key: b('before') });
    const kv = (got['kvs'] as Array<{ value: Buffer; mod_revision: number }>)[0];
    assert.equal(kv?.value.toString(), 'v0');
    assert.equal(kv?.mod_revision, (put['header'] as { revision: number }).revision);
    assert.equal((got['header'] as { cluster_id: bigint }).cluster_id, ((await members[0]!.kv.call('Range', { key: b('x') }))['header'] as { cluster_id: bigint }).cluster_id);

    for (const m of members) {
      await waitFor(async () => (await list(m)).every((r) => r.name !== '' && r.clientURLs.length > 0), `${m.name} lists every member started`, 15_000);
      const rows = await list(m);
      assert.deepEqual(
        rows.map((r) => [r.ID, r.name, r.peerURLs.join(','), r.clientURLs.join(','), r.isLearner]),
        members.map((o) => [o.embedded.member.id, o.name, url(o.peerPort), o.embedded.clientUrls.join(','), false]),
      );
    }
    // The new voter takes part in writes.
    await m4.kv.call('Put', { key: b('after'), value: b('v1') });
  });

  it('refuses bad MemberAdd, MemberRemove and MemberPromote requests with etcd codes and texts', async () => {
    const c = follower().cluster;
    assert.deepEqual(await failure(c.call('MemberAdd', { peerURLs: [url(ports[0])] })), {
      code: grpc.status.FAILED_PRECONDITION,
      details: 'etcdserver: Peer URLs already exists',
    });
    assert.deepEqual(await failure(c.call('MemberAdd', { peerURLs: ['not a url'] })), {
      code: grpc.status.INVALID_ARGUMENT,
      details: 'etcdserver: given member URLs are invalid',
    });
    assert.deepEqual(await failure(c.call('MemberRemove', { ID: 99n })), { code: grpc.status.NOT_FOUND, details: 'etcdserver: member not found' });
    assert.deepEqual(await failure(c.call('MemberPromote', { ID: 99n })), { code: grpc.status.NOT_FOUND, details: 'etcdserver: member not found' });
    assert.deepEqual(await failure(c.call('MemberUpdate', { ID: 99n, peerURLs: ['http://127.0.0.1:3'] })), {
      code: grpc.status.NOT_FOUND,
      details: 'etcdserver: member not found',
    });
    assert.deepEqual(await failure(c.call('MemberUpdate', { ID: 2n, peerURLs: [url(ports[0])] })), {
      code: grpc.status.FAILED_PRECONDITION,
      details: 'etcdserver: Peer URLs already exists',
    });
    assert.deepEqual(await failure(c.call('MemberPromote', { ID: 2n })), {
      code: grpc.status.FAILED_PRECONDITION,
      details: 'etcdserver: can only promote a learner member',
    });
    // The JSON gateway routes reach the same handlers.
    const res = await fetch(`${follower().embedded.clientUrls[0]}/v3/cluster/member/remove`, { method: 'POST', body: JSON.stringify({ ID: '99' }) });
    assert.equal(res.status, 404);
    assert.match(await res.text(), /etcdserver: member not found/);
    assert.equal((await list(follower())).length, 4, 'nothing changed');
  });

  it('adds a learner, corrects its peer URL with MemberUpdate, refuses a second one and an early promote, promotes it once caught up', async () => {
    const c = follower().cluster;
    // Added with a wrong peer URL first; MemberUpdate gives it the right one before it starts.
    const added = await c.call('MemberAdd', { peerURLs: ['http://127.0.0.1:1'], isLearner: true });
    const member = added['member'] as MemberRow;
    assert.equal(member.ID, 5n);
    assert.equal(member.isLearner, true);
    const updated = await c.call('MemberUpdate', { ID: 5n, peerURLs: [url(ports[4])] });
    assert.deepEqual((updated['members'] as MemberRow[]).find((r) => r.ID === 5n)?.peerURLs, [url(ports[4])]);
    assert.deepEqual(await failure(c.call('MemberAdd', { peerURLs: ['http://127.0.0.1:3'], isLearner: true })), {
      code: grpc.status.FAILED_PRECONDITION,
      details: 'etcdserver: too many learner members in cluster',
    });
    assert.deepEqual(await failure(c.call('MemberPromote', { ID: 5n })), {
      code: grpc.status.FAILED_PRECONDITION,
      details: 'etcdserver: can only promote a learner member which is in sync with leader',
    });
    const all = [['m1', ports[0]], ['m2', ports[1]], ['m3', ports[2]], ['infra4', ports[3]], ['infra5', ports[4]]] as const;
    const m5 = await startMember('infra5', ports[4], all, true);
    members.push(m5);
    await waitFor(async () => {
      if (!m5.embedded.node.rangeIds().includes(1) || !m5.embedded.node.range(1).isInitialized) return false;
      const got = await m5.kv.call('Range', { key: b('after'), serializable: true });
      return (got['kvs'] as unknown[]).length === 1;
    }, 'the learner caught up', 15_000);
    // A learner serves Status and serializable reads only (etcd 3.4).
    assert.deepEqual(await failure(m5.kv.call('Put', { key: b('no'), value: b('x') })), {
      code: grpc.status.UNAVAILABLE,
      details: 'etcdserver: rpc not supported for learner',
    });
    assert.deepEqual(await failure(m5.kv.call('Range', { key: b('after') })), {
      code: grpc.status.UNAVAILABLE,
      details: 'etcdserver: rpc not supported for learner',
    });
    assert.equal((await list(follower())).find((r) => r.ID === 5n)?.isLearner, true);
    await waitFor(async () => {
      try {
        await c.call('MemberPromote', { ID: 5n });
        return true;
      } catch (e) {
        if ((e as grpc.ServiceError).details !== 'etcdserver: can only promote a learner member which is in sync with leader') throw e;
        return false;
      }
    }, 'the learner promoted', 15_000);
    for (const m of running()) {
      await waitFor(async () => (await list(m)).every((r) => !r.isLearner), `${m.name} lists 5 voters`, 10_000);
    }
  });

  it('removes a follower and then the leader; the cluster keeps serving', async () => {
    const l = leader();
    assert.ok(l);
    const victim = running().find((m) => m !== l && m.embedded.node.nodeId <= 3);
    assert.ok(victim);
    const left = await l.cluster.call('MemberRemove', { ID: victim.embedded.member.id });
    assert.deepEqual(
      (left['members'] as MemberRow[]).map((r) => r.ID),
      running().filter((m) => m !== victim).map((m) => m.embedded.member.id),
    );
    await stop(victim);

    const oldLeader = leader();
    assert.ok(oldLeader);
    const asker = running().find((m) => m !== oldLeader);
    assert.ok(asker);
    const res = await asker.cluster.call('MemberRemove', { ID: oldLeader.embedded.member.id });
    assert.equal((res['members'] as MemberRow[]).length, 3);
    await stop(oldLeader);
    await waitFor(() => leader() !== undefined, 'a new leader', 15_000);
    const put = await asker.kv.call('Put', { key: b('after-remove'), value: b('v2') });
    for (const m of running()) {
      await waitFor(async () => (await list(m)).length === 3, `${m.name} lists 3 members`, 10_000);
      const got = await m.kv.call('Range', { key: b('after-remove') });
      assert.equal((got['kvs'] as Array<{ mod_revision: number }>)[0]?.mod_revision, (put['header'] as { revision: number }).revision);
    }
  });

  it('refuses a voter MemberAdd when the started voters would not be a quorum', async () => {
    // Three voters remain; with one stopped only two are started, short of 3 of 4.
    const l = leader();
    assert.ok(l);
    const victim = running().find((m) => m !== l);
    assert.ok(victim);
    await stop(victim);
    assert.deepEqual(await failure(l.cluster.call('MemberAdd', { peerURLs: ['http://127.0.0.1:2'] })), {
      code: grpc.status.FAILED_PRECONDITION,
      details: 'etcdserver: re-configuration failed due to not enough started members',
    });
    assert.equal((await list(l)).length, 3, 'nothing changed');
  });
});
