/**
 * Auth tokens across the members of a three-member cluster (in one process,
 * memory engines, 10 ms ticks), as etcd 3.4: a simple token issued by any
 * member is valid on every member — for reads served locally, for writes
 * and keep-alives forwarded to the range leader's node, and for watches —
 * and a user's permissions give the same answers (etcd's exact errors)
 * through every member. Driven by the real etcdctl (one member per
 * endpoint, so each Authenticate and each call goes to that member) and by
 * raw gRPC for a token taken from one member to the others.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { startEmbedded, type Embedded } from '../../src/gateway/embedded.js';
import { loopbackCluster } from './embedded-cluster.js';
import { b, client, failure, keysOf, withToken, type EtcdTestClient } from '../gateway/server-harness.js';
import { etcdctl, skipEtcdctl, spawnEtcdctl } from '../gateway/etcd-diff.js';
import { openWatch } from '../gateway/watch-harness.js';
import { freePorts, waitFor } from './helpers.js';

const TICK_MS = 10;
const ROOT = '--user=root:rootpw';
const ALICE = '--user=alice:alicepw';
const DENIED = { code: grpc.status.PERMISSION_DENIED, details: 'etcdserver: permission denied' };

describe('auth tokens across cluster members', () => {
  const members: Embedded[] = [];
  const clients = new Map<string, EtcdTestClient>();

  const leaderIndex = (): number => members.findIndex((m) => m.node.status(1).role === 'leader');
  const endpoint = (m: Embedded): string => m.server.addresses[0] as string;
  /** The members ordered leader first, then the two followers. */
  const byRole = (): Embedded[] => {
    const l = leaderIndex();
    return [0, 1, 2].map((i) => members[(l + i) % 3] as Embedded);
  };
  const rpc = (m: Embedded, service: 'KV' | 'Lease' | 'Auth'): EtcdTestClient => {
    const k = `${endpoint(m)}/${service}`;
    let c = clients.get(k);
    if (c === undefined) {
      c = client(`etcdserverpb.${service}`, endpoint(m));
      clients.set(k, c);
    }
    return c;
  };
  const tokenFrom = async (m: Embedded, name: string, password: string): Promise<grpc.Metadata> =>
    withToken((await rpc(m, 'Auth').call('Authenticate', { name, password }))['token'] as string);

  before(async () => {
    const ports = await freePorts(3);
    for (const name of ['m1', 'm2', 'm3']) {
      const port = ports[members.length] as number;
      members.push(
        await startEmbedded({
          name,
          engineKind: 'memory',
          listenClient: [{ url: 'http://127.0.0.1:0', host: '127.0.0.1', port: 0 }],
          listenPeer: { url: `http://127.0.0.1:${port}`, host: '127.0.0.1', port },
          tickMs: TICK_MS,
          cluster: loopbackCluster(ports, name, 'auth-cluster'),
          onInternalError: (method, err) => console.error('internal error in', method, err),
        }),
      );
    }
    await waitFor(() => leaderIndex() >= 0 && members.every((m) => m.node.status(1).leader !== 0), 'a leader known to all', 15_000);
    // Auth set up through a follower: every admin call is forwarded to the leader's node.
    const f = byRole()[1] as Embedded;
    const auth = rpc(f, 'Auth');
    await auth.call('UserAdd', { name: 'root', password: 'rootpw' });
    await auth.call('RoleAdd', { name: 'root' });
    await auth.call('UserGrantRole', { user: 'root', role: 'root' });
    await auth.call('RoleAdd', { name: 'ra' });
    await auth.call('RoleGrantPermission', { name: 'ra', perm: { permType: 2, key: b('a/'), range_end: b('a0') } });
    await auth.call('UserAdd', { name: 'alice', password: 'alicepw' });
    await auth.call('UserGrantRole', { user: 'alice', role: 'ra' });
    await auth.call('AuthEnable', {});
  });

  after(async () => {
    for (const c of clients.values()) c.close();
    for (const m of members) await m.close();
  });

  it('a root token from any member serves put, range, txn, lease grant, put with a lease, time-to-live and revoke, and watch on every member', async () => {
    for (const issuer of byRole()) {
      const root = await tokenFrom(issuer, 'root', 'rootpw');
      for (const [i, m] of byRole().entries()) {
        const key = b(`k/${endpoint(issuer)}/${i}`);
        await rpc(m, 'KV').call('Put', { key, value: b('v') }, root);
        assert.deepEqual(keysOf(await rpc(m, 'KV').call('Range', { key }, root)), [key.toString()]);
        const txn = await rpc(m, 'KV').call('Txn', { compare: [{ key, target: 0, result: 0, version: 1 }], success: [{ request_put: { key, value: b('w') } }] }, root);
        assert.equal(txn['succeeded'], true);
        const id = (await rpc(m, 'Lease').call('LeaseGrant', { TTL: 60 }, root))['ID'] as bigint;
        await rpc(m, 'KV').call('Put', { key, value: b('x'), lease: id }, root);
        const ttl = await rpc(m, 'Lease').call('LeaseTimeToLive', { ID: id, keys: true }, root);
        assert.equal((ttl['keys'] as Buffer[]).length, 1);
        await rpc(m, 'Lease').call('LeaseRevoke', { ID: id }, root);
        const w = openWatch(endpoint(m), root);
        try {
          w.write({ create_request: { key, start_revision: 1 } });
          const created = await w.next();
          assert.equal(created['created'], true);
          assert.equal(created['canceled'] ?? false, false, `watch on ${i} refused: ${String(created['cancel_reason'])}`);
        } finally {
          w.close();
        }
      }
    }
  });

  it('a non-root token from one member: allowed and denied keys answer alike on every member', async () => {
    for (const issuer of byRole()) {
      const alice = await tokenFrom(issuer, 'alice', 'alicepw');
      for (const m of byRole()) {
        const kv = rpc(m, 'KV');
        await kv.call('Put', { key: b('a/1'), value: b('v') }, alice);
        assert.deepEqual(keysOf(await kv.call('Range', { key: b('a/1') }, alice)), ['a/1']);
        assert.deepEqual(await failure(kv.call('Put', { key: b('b/1'), value: b('v') }, alice)), DENIED);
        assert.deepEqual(await failure(kv.call('Range', { key: b('b/1') }, alice)), DENIED);
        assert.deepEqual(await failure(kv.call('Txn', { success: [{ request_put: { key: b('b/1'), value: b('v') } }] }, alice)), DENIED);
        assert.deepEqual(await failure(kv.call('Put', { key: b('a/1'), value: b('v') }, withToken('bogusbogusbogusb.1'))), {
          code: grpc.status.UNAUTHENTICATED,
          details: 'etcdserver: invalid auth token',
        });
        assert.deepEqual(await failure(kv.call('Put', { key: b('a/1'), value: b('v') })), {
          code: grpc.status.INVALID_ARGUMENT,
          details: 'etcdserver: user name is empty',
        });
      }
    }
  });

  it('a user deleted through one member loses its token on every member', async () => {
    const [leader, f1] = byRole() as [Embedded, Embedded, Embedded];
    const rootMd = await tokenFrom(leader, 'root', 'rootpw');
    await rpc(f1, 'Auth').call('UserAdd', { name: 'bob', password: 'bobpw' }, rootMd);
    const bob = await tokenFrom(f1, 'bob', 'bobpw');
    await rpc(leader, 'Auth').call('UserGet', { name: 'bob' }, bob);
    await rpc(leader, 'Auth').call('UserDelete', { name: 'bob' }, rootMd);
    for (const m of byRole()) {
      await waitFor(async () => {
        const e = await failure(rpc(m, 'Auth').call('UserGet', { name: 'bob' }, bob));
        return e.details === 'etcdserver: invalid auth token';
      }, 'the deleted user\'s token refused', 10_000);
    }
  });

  describe('with etcdctl, one member per endpoint', { skip: skipEtcdctl }, () => {
    it('root and alice get the same answers through the leader and both followers', async () => {
      for (const [i, m] of byRole().entries()) {
        const ep = endpoint(m);
        const run = async (args: readonly string[], stdin?: string): Promise<string> => {
          const r = await etcdctl(ep, args, stdin === undefined ? {} : { stdin });
          return `[exit ${r.code}] ${r.stdout}${r.errors}`;
        };
        const where = `member ${i} (${i === 0 ? 'leader' : 'follower'})`;
        assert.equal(await run([ROOT, 'put', `c/${i}`, 'v']), '[exit 0] OK\n', where);
        assert.equal(await run([ROOT, 'get', `c/${i}`]), `[exit 0] c/${i}\nv\n`, where);
        assert.equal(await run([ROOT, 'txn'], `value("c/${i}") = "v"\n\nput c/${i} w\n\n\n`), '[exit 0] SUCCESS\n\nOK\n', where);
        const grant = await etcdctl(ep, [ROOT, 'lease', 'grant', '60']);
        const id = /^lease ([0-9a-f]+) granted with TTL\(60s\)/.exec(grant.stdout)?.[1];
        assert.ok(id !== undefined, `${where}: ${grant.stdout}${grant.errors}`);
        assert.equal(await run([ROOT, 'put', `--lease=${id}`, `c/${i}`, 'x']), '[exit 0] OK\n', where);
        assert.equal(await run([ROOT, 'lease', 'keep-alive', '--once', id]), `[exit 0] lease ${id} keepalived with TTL(60)\n`, where);
        const watch = spawnEtcdctl(ep, [ROOT, 'watch', '--rev=1', `c/${i}`]);
        try {
          await watch.waitFor((out) => out.includes(`c/${i}\nx\n`), `${where}: watch replays c/${i}`);
        } finally {
          await watch.stop();
        }
        assert.equal(await run([ALICE, 'put', `a/${i}`, 'v']), '[exit 0] OK\n', where);
        assert.equal(await run([ALICE, 'get', `a/${i}`]), `[exit 0] a/${i}\nv\n`, where);
        assert.equal(await run([ALICE, 'put', `c/${i}`, 'v']), '[exit 1] Error: etcdserver: permission denied', where);
        assert.equal(await run([ALICE, 'get', `c/${i}`]), '[exit 1] Error: etcdserver: permission denied', where);
        assert.equal(await run(['--user=alice:wrong', 'get', `a/${i}`]), '[exit 2] Error: etcdserver: authentication failed, invalid user ID or password', where);
        assert.equal(await run(['get', `a/${i}`]), '[exit 1] Error: etcdserver: user name is empty', where);
      }
    });
  });
});
