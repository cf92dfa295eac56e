/**
 * v3lockpb.Lock and v3electionpb.Election end to end over gRPC: mutual
 * exclusion in create-revision order, cancellation cleaning up its waiter
 * key, lease revocation handing the lock on, and elections with Proclaim,
 * Leader, Observe and Resign, with etcd's errors.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { Embedded } from '../../src/gateway/embedded.js';
import { etcdServiceDefinition, type EtcdMessage } from '../../src/gateway/proto.js';
import { b, client, failure, revOf, startTestServer, type EtcdTestClient } from './server-harness.js';

const S = grpc.status;

/** Resolves with `p`'s value, or 'pending' if it has not settled within `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<'pending'>((resolve) => (timer = setTimeout(() => resolve('pending'), ms)));
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

describe('Lock and Election services', () => {
  let srv: Embedded;
  let kv: EtcdTestClient;
  let lease: EtcdTestClient;
  let lock: EtcdTestClient;
  let election: EtcdTestClient;
  let address: string;

  before(async () => {
    srv = await startTestServer();
    address = srv.server.addresses[0] ?? '';
    kv = client('etcdserverpb.KV', address);
    lease = client('etcdserverpb.Lease', address);
    lock = client('v3lockpb.Lock', address);
    election = client('v3electionpb.Election', address);
  });
  after(async () => {
    for (const c of [kv, lease, lock, election]) c.close();
    await srv.close();
  });

  const grant = async (ttl = 60): Promise<bigint> => (await lease.call('LeaseGrant', { TTL: ttl }))['ID'] as bigint;
  const get = async (key: Buffer | string): Promise<EtcdMessage[]> =>
    (await kv.call('Range', { key: typeof key === 'string' ? b(key) : key }))['kvs'] as EtcdMessage[];

  it('grants an uncontended lock at once with key <name>/<lease hex> held by the lease', async () => {
    const id = await grant();
    const res = await lock.call('Lock', { name: b('l1'), lease: id });
    assert.equal((res['key'] as Buffer).toString(), `l1/${id.toString(16)}`);
    const kvs = await get(res['key'] as Buffer);
    assert.equal(kvs.length, 1);
    assert.equal(kvs[0]?.['lease'], id);
    assert.equal(revOf(res), kvs[0]?.['mod_revision']);
    await lock.call('Unlock', { key: res['key'] });
    assert.deepEqual(await get(res['key'] as Buffer), []);
  });

  it('makes a second locker wait until the holder unlocks, in create-revision order', async () => {
    const [a, c] = [await grant(), await grant()];
    const first = await lock.call('Lock', { name: b('l2'), lease: a });
    const second = lock.call('Lock', { name: b('l2'), lease: c });
    assert.equal(await within(second, 300), 'pending', 'the second locker waits while the first holds the lock');
    const unlocked = await lock.call('Unlock', { key: first['key'] });
    const got = await second;
    assert.equal((got['key'] as Buffer).toString(), `l2/${c.toString(16)}`);
    assert.ok(revOf(got) >= revOf(unlocked), 'acquired after the unlock');
    await lock.call('Unlock', { key: got['key'] });
  });

  it('hands the lock on when the holder\'s lease is revoked', async () => {
    const [a, c] = [await grant(), await grant()];
    await lock.call('Lock', { name: b('l3'), lease: a });
    const second = lock.call('Lock', { name: b('l3'), lease: c });
    assert.equal(await within(second, 200), 'pending');
    await lease.call('LeaseRevoke', { ID: a });
    const got = await second;
    assert.equal((got['key'] as Buffer).toString(), `l3/${c.toString(16)}`);
  });

  it('removes a waiter\'s key when its Lock call is cancelled', async () => {
    const [a, c] = [await grant(), await grant()];
    const held = await lock.call('Lock', { name: b('l4'), lease: a });
    const Ctor = grpc.makeGenericClientConstructor(etcdServiceDefinition('v3lockpb.Lock'), 'v3lockpb.Lock');
    const raw = new Ctor(address, grpc.credentials.createInsecure()) as unknown as grpc.Client &
      Record<string, (req: EtcdMessage, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null) => void) => void>;
    const err = await new Promise<grpc.ServiceError | null>((resolve) =>
      raw['Lock']!.call(raw, { name: b('l4'), lease: c }, new grpc.Metadata(), { deadline: Date.now() + 300 }, resolve),
    );
    raw.close();
    assert.equal(err?.code, S.DEADLINE_EXCEEDED);
    const waiterKey = `l4/${c.toString(16)}`;
    const deadline = Date.now() + 5_000;
    while ((await get(waiterKey)).length > 0) {
      assert.ok(Date.now() < deadline, 'the cancelled waiter key is deleted');
      await new Promise((r) => setTimeout(r, 20));
    }
    await lock.call('Unlock', { key: held['key'] });
  });

  it('grants a session lease when Lock names lease 0', async () => {
    const res = await lock.call('Lock', { name: b('l5') });
    const kvs = await get(res['key'] as Buffer);
    const id = kvs[0]?.['lease'] as bigint;
    assert.ok(id > 0n, 'the key is held by a new lease');
    assert.equal((res['key'] as Buffer).toString(), `l5/${id.toString(16)}`);
    const ttl = await lease.call('LeaseTimeToLive', { ID: id });
    assert.equal(ttl['grantedTTL'], 60);
    await lease.call('LeaseRevoke', { ID: id });
  });

  it('elects in campaign order; Proclaim, Leader, Observe and Resign behave as etcd', async () => {
    const [a, c] = [await grant(), await grant()];
    assert.deepEqual(await failure(election.call('Leader', { name: b('e1') })), { code: S.UNKNOWN, details: 'election: no leader' });

    const Ctor = grpc.makeGenericClientConstructor(etcdServiceDefinition('v3electionpb.Election'), 'v3electionpb.Election');
    const raw = new Ctor(address, grpc.credentials.createInsecure()) as unknown as grpc.Client &
      Record<string, (req: EtcdMessage, md?: grpc.Metadata) => grpc.ClientReadableStream<EtcdMessage>>;
    const observed: string[] = [];
    const stream = raw['Observe']!.call(raw, { name: b('e1') });
    stream.on('data', (m: EtcdMessage) => observed.push(((m['kv'] as { value: Buffer }).value).toString()));
    stream.on('error', () => undefined);

    const won = await election.call('Campaign', { name: b('e1'), lease: a, value: b('a') });
    const leaderA = won['leader'] as { name: Buffer; key: Buffer; rev: number; lease: bigint };
    assert.equal(leaderA.key.toString(), `e1/${a.toString(16)}`);
    assert.equal(leaderA.lease, a);
    assert.equal(leaderA.rev, revOf(won));

    const challenger = election.call('Campaign', { name: b('e1'), lease: c, value: b('c') });
    assert.equal(await within(challenger, 200), 'pending');

    await election.call('Proclaim', { leader: leaderA, value: b('a2') });
    const now = await election.call('Leader', { name: b('e1') });
    assert.equal(((now['kv'] as { value: Buffer }).value).toString(), 'a2');

    await election.call('Resign', { leader: leaderA });
    const wonC = await challenger;
    assert.equal(((wonC['leader'] as { key: Buffer }).key).toString(), `e1/${c.toString(16)}`);
    assert.deepEqual(await failure(election.call('Proclaim', { leader: leaderA, value: b('stale') })), {
      code: S.UNKNOWN,
      details: 'election: not leader',
    });
    assert.deepEqual(await failure(election.call('Proclaim', { value: b('x') })), {
      code: S.UNKNOWN,
      details: '"leader" field must be provided',
    });

    const deadline = Date.now() + 5_000;
    while (observed.length < 3) {
      assert.ok(Date.now() < deadline, `observed ${JSON.stringify(observed)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(observed.slice(0, 3), ['a', 'a2', 'c']);
    stream.cancel();
    raw.close();
  });
});
