/**
 * The `etcd3` npm client (1.1.x) against keyspan end to end: KV (put, get,
 * delete, prefix and range reads with sort and limit), transactions built
 * with if().then().else(), leases kept alive and left to expire, watches
 * delivering put and delete events in order with previous values, its
 * lock() and election() recipes, and the client's error classes for etcd's
 * errors (the client matches them by message text).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EtcdLeaseInvalidError, EtcdLockFailedError, Etcd3, GRPCInvalidArgumentError, GRPCOutOfRangeError, type IKeyValue } from 'etcd3';
import type { Embedded } from '../../src/gateway/embedded.js';
import { startTestServer } from './server-harness.js';
import { until } from './etcd-diff.js';

/** A rejection's error, or a failure if `p` resolves. */
async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the call to fail');
}

describe('etcd3 npm client against keyspan', () => {
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

  it('puts, gets, deletes; reads prefixes and ranges with sort, limit and count', async () => {
    for (const [k, v] of [['kv/b', '2'], ['kv/a', '1'], ['kv/c', '3'], ['kv0', 'out']] as const) await etcd.put(k).value(v);
    assert.equal(await etcd.get('kv/a').string(), '1');
    assert.equal(await etcd.get('kv/none').string(), null);
    assert.deepEqual(await etcd.getAll().prefix('kv/').strings(), { 'kv/a': '1', 'kv/b': '2', 'kv/c': '3' });
    assert.deepEqual(await etcd.getAll().prefix('kv/').sort('Create', 'Descend').keys(), ['kv/c', 'kv/a', 'kv/b']);
    assert.deepEqual(await etcd.getAll().prefix('kv/').sort('Key', 'Descend').limit(2).keys(), ['kv/c', 'kv/b']);
    assert.deepEqual(await etcd.getAll().inRange({ start: 'kv/b', end: 'kv0' }).keys(), ['kv/b', 'kv/c']);
    assert.equal(await etcd.getAll().prefix('kv').count(), 4);

    const before = await etcd.get('kv/a').exec();
    const put = await etcd.put('kv/a').value('1b').exec();
    assert.equal(Number(put.header.revision), Number(before.header.revision) + 1);
    assert.equal(await etcd.get('kv/a').revision(before.header.revision).string(), '1');
    const prev = await etcd.delete().key('kv/a').getPrevious();
    assert.deepEqual(prev.map((kv) => [kv.key.toString(), kv.value.toString(), kv.version]), [['kv/a', '1b', '2']]);
    const del = await etcd.delete().prefix('kv').exec();
    assert.equal(del.deleted, '3');
    assert.equal(await etcd.getAll().prefix('kv').count(), 0);
  });

  it('runs transactions with if().then().else() on value, version and create revision', async () => {
    await etcd.put('tx/k').value('v1');
    const yes = await etcd.if('tx/k', 'Value', '==', 'v1').and('tx/k', 'Version', '==', 1).then(etcd.put('tx/k').value('v2'), etcd.get('tx/k')).else(etcd.put('tx/else').value('x')).commit();
    assert.equal(yes.succeeded, true);
    assert.equal(yes.responses.length, 2);
    const got = yes.responses[1]?.response_range?.kvs?.[0];
    assert.equal(got?.value.toString(), 'v2', 'the get in the same txn sees the put before it');
    const no = await etcd.if('tx/k', 'Value', '==', 'v1').then(etcd.put('tx/k').value('never')).else(etcd.get('tx/k'), etcd.delete().key('tx/k')).commit();
    assert.equal(no.succeeded, false);
    assert.equal(no.responses[0]?.response_range?.kvs?.[0]?.value.toString(), 'v2');
    assert.equal(no.responses[1]?.response_delete_range?.deleted, '1');
    const absent = await etcd.if('tx/k', 'Create', '==', 0).then(etcd.put('tx/k').value('fresh')).commit();
    assert.equal(absent.succeeded, true);
    assert.equal(await etcd.get('tx/k').string(), 'fresh');
    assert.equal(await etcd.get('tx/else').string(), null);
  });

  it('keeps a lease alive past its TTL, then lets a released lease expire with its key', async () => {
    const lease = etcd.lease(2);
    const lost: Error[] = [];
    lease.on('lost', (err) => lost.push(err));
    let renewals = 0;
    lease.on('keepaliveSucceeded', () => renewals++);
    await lease.put('ls/kept').value('alive');
    const id = await lease.grant();
    // Keepalives come every TTL/3; after four of them more than the 2 s TTL has passed.
    await until(async () => renewals >= 4, 'four keepalives');
    assert.equal(await etcd.get('ls/kept').string(), 'alive');
    const kv = (await etcd.get('ls/kept').exec()).kvs[0];
    assert.equal(kv?.lease, id);
    lease.release(); // Stops the keepalives without revoking.
    await until(async () => (await etcd.get('ls/kept').string()) === null, 'the released lease to expire');
    assert.deepEqual(lost, []);
    const err = await rejection(etcd.put('ls/again').value('x').lease(id).exec());
    assert.ok(err instanceof EtcdLeaseInvalidError, String(err));
    assert.match(err.message, /etcdserver: requested lease not found/);
  });

  it('watches a key: puts and deletes arrive in order with their previous values', async () => {
    const watcher = await etcd.watch().key('wt/k').withPreviousKV().create();
    const seen: string[] = [];
    const show = (kv: IKeyValue | null | undefined): string => (kv === undefined || kv === null ? '-' : `${kv.value.toString()}@${kv.mod_revision}`);
    watcher.on('put', (kv, prev) => seen.push(`put ${show(kv)} prev ${show(prev)}`));
    watcher.on('delete', (kv, prev) => seen.push(`delete ${kv.key.toString()} prev ${show(prev)}`));
    try {
      const r1 = Number((await etcd.put('wt/k').value('a').exec()).header.revision);
      await etcd.put('wt/other').value('ignored');
      await etcd.put('wt/k').value('b');
      await etcd.delete().key('wt/k');
      await until(async () => seen.length >= 3, `three watch events (seen ${JSON.stringify(seen)})`);
      assert.deepEqual(seen, [`put a@${r1} prev -`, `put b@${r1 + 2} prev a@${r1}`, `delete wt/k prev b@${r1 + 2}`]);
    } finally {
      await watcher.cancel();
    }
  });

  it('watches a prefix from a past revision, replaying history first', async () => {
    const start = Number((await etcd.put('wp/1').value('x').exec()).header.revision);
    await etcd.put('wp/2').value('y');
    await etcd.delete().key('wp/1');
    const watcher = await etcd.watch().prefix('wp/').startRevision(String(start)).create();
    const seen: string[] = [];
    watcher.on('put', (kv) => seen.push(`put ${kv.key.toString()}=${kv.value.toString()}`));
    watcher.on('delete', (kv) => seen.push(`delete ${kv.key.toString()}`));
    try {
      await until(async () => seen.length >= 3, 'the replayed events');
      await etcd.put('wp/3').value('z');
      await until(async () => seen.length >= 4, 'the live event');
      assert.deepEqual(seen, ['put wp/1=x', 'put wp/2=y', 'delete wp/1', 'put wp/3=z']);
    } finally {
      await watcher.cancel();
    }
  });

  it('lock(): a second acquire fails with EtcdLockFailedError while held, succeeds after release', async () => {
    const first = etcd.lock('lk/res').ttl(10);
    await first.acquire();
    const err = await rejection(etcd.lock('lk/res').ttl(10).acquire());
    assert.ok(err instanceof EtcdLockFailedError, String(err));
    await first.release();
    const second = etcd.lock('lk/res').ttl(10);
    await second.acquire();
    assert.equal((await etcd.getAll().prefix('lk/res').keys()).length, 1);
    await second.release();
    assert.deepEqual(await etcd.getAll().prefix('lk/res').keys(), []);
  });

  it('election(): campaigns in order, observers follow proclaims and the hand-over on resign', async () => {
    const election = etcd.election('el/x', 10);
    const c1 = election.campaign('one');
    await c1.wait();
    assert.equal(await election.leader(), 'one');
    const observer = await election.observe();
    const changes: (string | undefined)[] = [];
    observer.on('change', (v) => changes.push(v));
    try {
      const c2 = etcd.election('el/x', 10).campaign('two');
      let elected2 = false;
      c2.on('elected', () => (elected2 = true));
      await until(async () => (await etcd.getAll().prefix('election/el/x/').count()) === 2, 'the second candidate to queue');
      assert.equal(elected2, false);
      await c1.proclaim('one-b');
      await until(async () => changes.includes('one-b'), 'the observer to see the proclaim');
      await c1.resign();
      await c2.wait();
      assert.equal(await election.leader(), 'two');
      await until(async () => changes.includes('two'), 'the observer to see the new leader');
      assert.deepEqual(changes, ['one-b', 'two']);
      await c2.resign();
      assert.equal(await election.leader(), undefined);
    } finally {
      await observer.cancel();
    }
  });

  it('maps etcd errors to its error classes by gRPC code and text: compacted and future revisions (OutOfRange), empty key (InvalidArgument)', async () => {
    const r1 = Number((await etcd.put('er/k').value('1').exec()).header.revision);
    const r2 = Number((await etcd.put('er/k').value('2').exec()).header.revision);
    await etcd.kv.compact({ revision: String(r2) });
    const compacted = await rejection(etcd.get('er/k').revision(r1).string());
    assert.ok(compacted instanceof GRPCOutOfRangeError, String(compacted));
    assert.match(compacted.message, /etcdserver: mvcc: required revision has been compacted/);
    assert.equal(await etcd.get('er/k').revision(r2).string(), '2');
    const future = await rejection(etcd.get('er/k').revision(r2 + 1000).string());
    assert.ok(future instanceof GRPCOutOfRangeError, String(future));
    assert.match(future.message, /etcdserver: mvcc: required revision is a future revision/);
    const again = await rejection(etcd.kv.compact({ revision: String(r1) }));
    assert.ok(again instanceof GRPCOutOfRangeError, String(again));
    assert.match(again.message, /etcdserver: mvcc: required revision has been compacted/);
    const empty = await rejection(etcd.put('').value('x').exec());
    assert.ok(empty instanceof GRPCInvalidArgumentError, String(empty));
    assert.match(empty.message, /etcdserver: key is not provided/);
  });
});
