/**
 * The `etcd3` npm client (1.1.x) against keyspan's Lease service: its Lease
 * object (grant on first use, puts with the lease, keepalive stream,
 * revoke) and its Lock helper, which is built on a lease and a txn with a
 * leased put.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import type { Embedded } from '../../src/gateway/embedded.js';
import { startTestServer } from './server-harness.js';

describe('etcd3 npm client: leases and locks', () => {
  let server: Embedded;
  let etcd: Etcd3;

  before(async () => {
    server = await startTestServer();
    etcd = new Etcd3({ hosts: `http://127.0.0.1:${server.server.port}`, dialTimeout: 10_000 });
  });
  after(async () => {
    etcd?.close();
    await server?.close();
  });

  it('grants a lease on first use, puts with it, keeps it alive and revokes it', async () => {
    const lease = etcd.lease(30, { autoKeepAlive: false });
    const lost: unknown[] = [];
    lease.on('lost', (err) => lost.push(err));
    await lease.put('etcd3/a').value('1');
    await lease.put('etcd3/b').value('2');
    const id = await lease.grant();
    const kvs = await etcd.getAll().prefix('etcd3/').exec();
    assert.deepEqual(kvs.kvs.map((kv) => [kv.key.toString(), kv.lease]), [
      ['etcd3/a', id],
      ['etcd3/b', id],
    ]);
    const ka = await lease.keepaliveOnce();
    assert.equal(ka.ID, id);
    assert.equal(ka.TTL, '30');
    await lease.revoke();
    assert.deepEqual(await etcd.getAll().prefix('etcd3/').keys(), []);
    assert.deepEqual(lost, []);
  });

  it('lock().do() holds a lease-backed lock key while the callback runs and removes it after', async () => {
    let heldKeys: string[] = [];
    await etcd.lock('etcd3-lock').ttl(10).do(async () => {
      heldKeys = await etcd.getAll().prefix('etcd3-lock').keys();
    });
    assert.equal(heldKeys.length, 1);
    assert.deepEqual(await etcd.getAll().prefix('etcd3-lock').keys(), []);
  });
});
