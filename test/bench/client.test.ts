/**
 * The generator's etcd client (bench/etcd/client.ts, over src/h2's client
 * connection) against the embedded keyspan server: unary calls multiplexed
 * on one connection, etcd's errors as gRPC codes and grpc-js' wording, a
 * response larger than the default HTTP/2 windows, Watch and LeaseKeepAlive
 * as bidi streams, cancellation, and an endpoint that does not listen.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { Conn, StreamPinger } from '../../bench/etcd/client.js';
import { GrpcCallError } from '../../src/h2/client-bidi.js';
import type { Embedded } from '../../src/gateway/embedded.js';
import type { EtcdMessage } from '../../src/gateway/proto.js';
import { startTestServer } from '../gateway/server-harness.js';

/** Bound on each test: a call or stream event that never comes fails the test instead of stalling the run. */
const TEST_TIMEOUT_MS = 20_000;

describe('the bench client against keyspan', { timeout: TEST_TIMEOUT_MS }, () => {
  let srv: Embedded;
  let conn: Conn;

  before(async () => {
    srv = await startTestServer();
    conn = new Conn(srv.server.addresses[0] ?? '');
    await conn.ready();
  });

  after(async () => {
    conn.close();
    await srv.close();
  });

  test('200 puts in flight at once share one connection; each answer is its own', async () => {
    const revisions = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        conn.unary('etcdserverpb.KV', 'Put', { key: Buffer.from(`bench-${i}`), value: Buffer.from(`v${i}`) }).then((r) => Number((r['header'] as EtcdMessage)['revision'])),
      ),
    );
    assert.equal(new Set(revisions).size, 200, 'one revision per put');
    const res = await conn.unary('etcdserverpb.KV', 'Range', { key: Buffer.from('bench-'), range_end: Buffer.from('bench.'), count_only: true });
    assert.equal(Number(res['count']), 200);
    const one = await conn.unary('etcdserverpb.KV', 'Range', { key: Buffer.from('bench-7') });
    assert.deepEqual(((one['kvs'] as EtcdMessage[])[0] as EtcdMessage)['value'], Buffer.from('v7'));
  });

  test("an etcd error comes back as its gRPC code and etcd's text, worded as grpc-js words it", async () => {
    await assert.rejects(conn.unary('etcdserverpb.KV', 'Put', { key: Buffer.alloc(0), value: Buffer.from('x') }), (e: unknown) => {
      assert.ok(e instanceof GrpcCallError);
      assert.equal(e.code, 3);
      assert.equal(e.details, 'etcdserver: key is not provided');
      assert.equal(e.message, '3 INVALID_ARGUMENT: etcdserver: key is not provided');
      return true;
    });
  });

  test("a 2.6 MB range answer arrives whole, past the protocol's 64 KiB default windows", async () => {
    const value = Buffer.alloc(64 * 1024, 9);
    for (let i = 0; i < 40; i++) await conn.unary('etcdserverpb.KV', 'Put', { key: Buffer.from(`big-${String(i).padStart(2, '0')}`), value });
    const res = await conn.unary('etcdserverpb.KV', 'Range', { key: Buffer.from('big-'), range_end: Buffer.from('big.') });
    const kvs = res['kvs'] as EtcdMessage[];
    assert.equal(kvs.length, 40);
    assert.ok(kvs.every((kv) => (kv['value'] as Buffer).equals(value)));
  });

  test('a watch stream delivers events, and cancel ends it with CANCELLED', async () => {
    const stream = conn.bidi('etcdserverpb.Watch', 'Watch');
    const messages: EtcdMessage[] = [];
    const created = new Promise<void>((resolve) => {
      stream.on('data', (m: EtcdMessage) => {
        messages.push(m);
        if (m['created'] === true) resolve();
      });
    });
    const ended = new Promise<GrpcCallError>((resolve) => stream.on('error', resolve));
    stream.write({ create_request: { key: Buffer.from('watched') } });
    await created;
    const event = new Promise<void>((resolve) => stream.on('data', (m: EtcdMessage) => ((m['events'] as EtcdMessage[]).length > 0 ? resolve() : undefined)));
    await conn.unary('etcdserverpb.KV', 'Put', { key: Buffer.from('watched'), value: Buffer.from('now') });
    await event;
    const events = messages.flatMap((m) => m['events'] as EtcdMessage[]);
    assert.deepEqual((events[0]?.['kv'] as EtcdMessage)['value'], Buffer.from('now'));
    stream.cancel();
    assert.equal((await ended).code, 1);
  });

  test('LeaseKeepAlive answers each ping in order on one stream', async () => {
    const grant = await conn.unary('etcdserverpb.Lease', 'LeaseGrant', { TTL: 30 });
    const ID = grant['ID'];
    const pinger = new StreamPinger(conn.bidi('etcdserverpb.Lease', 'LeaseKeepAlive'));
    for (let i = 0; i < 5; i++) {
      const res = await pinger.ping({ ID });
      assert.equal(String(res['ID']), String(ID));
      assert.ok(Number(res['TTL']) > 0);
    }
    pinger.close();
    await assert.rejects(pinger.ping({ ID }), /closed/);
  });
});

test('an endpoint that does not listen fails ready and calls with UNAVAILABLE', { timeout: TEST_TIMEOUT_MS }, async () => {
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
  const conn = new Conn(`127.0.0.1:${port}`);
  await assert.rejects(conn.ready(2_000), /cannot connect to 127\.0\.0\.1:\d+: connect ECONNREFUSED/);
  await assert.rejects(conn.unary('etcdserverpb.KV', 'Range', { key: Buffer.from('k') }), (e: unknown) => {
    assert.ok(e instanceof GrpcCallError);
    assert.equal(e.code, 14);
    assert.match(e.details, /ECONNREFUSED/);
    return true;
  });
  conn.close();
});
