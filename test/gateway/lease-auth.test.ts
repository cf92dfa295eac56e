/**
 * LeaseRevoke with auth enabled (etcd 3.4 apply_auth.go checkLeasePuts): the
 * caller needs WRITE on every key attached to the lease (a Put naming the
 * lease too, in the etcdctl script); root always may; a
 * lease without keys needs no permission; without a token and with keys
 * attached the answer is "user name is empty". Checked over raw gRPC on the
 * embedded server, and with the real etcdctl against keyspan and, where
 * installed, the real etcd 3.4 (outputs identical modulo lease ids).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { Embedded } from '../../src/gateway/embedded.js';
import { b, client, failure, keysOf, startTestServer, withToken, type EtcdTestClient } from './server-harness.js';
import { etcdctl, skipDiff, skipEtcdctl, startReferenceEtcd } from './etcd-diff.js';

const PERM = { READ: 0, WRITE: 1, READWRITE: 2 } as const;

describe('LeaseRevoke permissions over gRPC', () => {
  let server: Embedded;
  let auth: EtcdTestClient;
  let kv: EtcdTestClient;
  let lease: EtcdTestClient;
  let root: grpc.Metadata;
  let alice: grpc.Metadata;

  before(async () => {
    server = await startTestServer();
    const addr = server.server.addresses[0] ?? '';
    auth = client('etcdserverpb.Auth', addr);
    kv = client('etcdserverpb.KV', addr);
    lease = client('etcdserverpb.Lease', addr);
    await auth.call('UserAdd', { name: 'root', password: 'rootpw' });
    await auth.call('RoleAdd', { name: 'root' });
    await auth.call('UserGrantRole', { user: 'root', role: 'root' });
    // alice may write under a/ and only read under r/.
    await auth.call('RoleAdd', { name: 'ra' });
    await auth.call('RoleGrantPermission', { name: 'ra', perm: { permType: PERM.READWRITE, key: b('a/'), range_end: b('a0') } });
    await auth.call('RoleGrantPermission', { name: 'ra', perm: { permType: PERM.READ, key: b('r/'), range_end: b('r0') } });
    await auth.call('UserAdd', { name: 'alice', password: 'pw' });
    await auth.call('UserGrantRole', { user: 'alice', role: 'ra' });
    await auth.call('AuthEnable', {});
    root = withToken((await auth.call('Authenticate', { name: 'root', password: 'rootpw' }))['token'] as string);
    alice = withToken((await auth.call('Authenticate', { name: 'alice', password: 'pw' }))['token'] as string);
  });
  after(async () => {
    auth.close();
    kv.close();
    lease.close();
    await server.close();
  });

  /** A lease granted by root with `keys` attached (put by root). */
  async function leaseWith(keys: readonly string[]): Promise<bigint> {
    const id = (await lease.call('LeaseGrant', { TTL: 100 }, root))['ID'] as bigint;
    for (const k of keys) await kv.call('Put', { key: b(k), value: b('v'), lease: id }, root);
    return id;
  }

  it('refuses a revoke by a user who cannot write every attached key; the keys and the lease stay', async () => {
    const id = await leaseWith(['a/1', 'r/1']);
    assert.deepEqual(await failure(lease.call('LeaseRevoke', { ID: id }, alice)), { code: grpc.status.PERMISSION_DENIED, details: 'etcdserver: permission denied' });
    assert.deepEqual(keysOf(await kv.call('Range', { key: b('a/1') }, root)), ['a/1']);
    assert.deepEqual(keysOf(await kv.call('Range', { key: b('r/1') }, root)), ['r/1']);
    const ttl = await lease.call('LeaseTimeToLive', { ID: id, keys: true }, root);
    assert.ok((ttl['TTL'] as number) > 0);
    // Root always may.
    await lease.call('LeaseRevoke', { ID: id }, root);
    assert.deepEqual(keysOf(await kv.call('Range', { key: b('a/'), range_end: b('a0') }, root)), []);
  });

  it('allows a revoke when every attached key is writable, or when none is attached', async () => {
    const writable = await leaseWith(['a/2', 'a/3']);
    await lease.call('LeaseRevoke', { ID: writable }, alice);
    assert.deepEqual(keysOf(await kv.call('Range', { key: b('a/2'), range_end: b('a/4') }, root)), []);
    const empty = await leaseWith([]);
    await lease.call('LeaseRevoke', { ID: empty }, alice);
    assert.equal((await lease.call('LeaseTimeToLive', { ID: empty }, root))['TTL'], -1);
  });

  it('without a token: "user name is empty" if keys are attached, allowed if none; an unknown lease is not found', async () => {
    const withKeys = await leaseWith(['a/4']);
    assert.deepEqual(await failure(lease.call('LeaseRevoke', { ID: withKeys })), { code: grpc.status.INVALID_ARGUMENT, details: 'etcdserver: user name is empty' });
    const empty = await leaseWith([]);
    await lease.call('LeaseRevoke', { ID: empty });
    assert.deepEqual(await failure(lease.call('LeaseRevoke', { ID: 0x1234n }, alice)), { code: grpc.status.NOT_FOUND, details: 'etcdserver: requested lease not found' });
    assert.deepEqual(await failure(lease.call('LeaseRevoke', { ID: withKeys }, withToken('bogus.1'))), { code: grpc.status.UNAUTHENTICATED, details: 'etcdserver: invalid auth token' });
  });
});

const ROOT = '--user=root:rootpw';
const ALICE = '--user=alice:pw';

/** The etcdctl script: set up auth, then revokes of leases with keys alice can and cannot write. Lease ids become L1, L2, ... */
async function revokeScript(endpoint: string): Promise<string[]> {
  const out: string[] = [];
  const leases: string[] = [];
  const norm = (t: string): string => leases.reduce((acc, id, i) => acc.replaceAll(id, `L${i + 1}`).replaceAll(BigInt(`0x${id}`).toString(), `L${i + 1}`), t);
  const step = async (args: readonly string[]): Promise<string> => {
    const r = await etcdctl(endpoint, args);
    const granted = /^lease ([0-9a-f]+) granted/.exec(r.stdout)?.[1];
    if (granted !== undefined) leases.push(granted);
    const line = norm(`$ ${args.join(' ')}\n[exit ${r.code}]\n${r.stdout}${r.errors}`);
    out.push(line);
    return granted ?? '';
  };
  for (const args of [
    ['user', 'add', 'root:rootpw', '--interactive=false'],
    ['user', 'add', 'alice:pw', '--interactive=false'],
    ['role', 'add', 'ra'],
    ['role', 'grant-permission', '--prefix', 'ra', 'readwrite', 'a/'],
    ['user', 'grant-role', 'alice', 'ra'],
    ['auth', 'enable'],
  ]) {
    await step(args);
  }
  const mixed = await step([ROOT, 'lease', 'grant', '100']);
  await step([ROOT, 'put', `--lease=${mixed}`, 'a/1', 'x']);
  await step([ROOT, 'put', `--lease=${mixed}`, 'b/1', 'y']);
  await step([ALICE, 'put', `--lease=${mixed}`, 'a/9', 'z']);
  await step([ALICE, 'lease', 'revoke', mixed]);
  await step(['lease', 'revoke', mixed]);
  await step([ROOT, 'get', '--prefix', '', '--keys-only']);
  const own = await step([ROOT, 'lease', 'grant', '100']);
  await step([ROOT, 'put', `--lease=${own}`, 'a/2', 'x']);
  await step([ALICE, 'lease', 'revoke', own]);
  const empty = await step([ROOT, 'lease', 'grant', '100']);
  await step(['lease', 'revoke', empty]);
  await step([ALICE, 'lease', 'revoke', '1234']);
  await step([ROOT, 'lease', 'revoke', mixed]);
  await step([ROOT, 'get', '--prefix', '', '--keys-only']);
  return out;
}

describe('etcdctl lease revoke and put with a lease, with auth', { skip: skipEtcdctl }, () => {
  let srv: Embedded;
  let outputs: string[] = [];

  before(async () => {
    srv = await startTestServer();
    outputs = await revokeScript(srv.server.addresses[0] ?? '');
  });
  after(async () => {
    await srv?.close();
  });

  it('refuses alice a revoke of, or a put onto, a lease with a key outside a/; allows root, an all-a/ lease and a lease without keys', () => {
    const find = (prefix: string, nth = 0): string => outputs.filter((o) => o.startsWith(prefix))[nth] ?? '';
    assert.equal(find(`$ ${ALICE} put --lease=L1`), `$ ${ALICE} put --lease=L1 a/9 z\n[exit 1]\nError: etcdserver: permission denied`);
    assert.equal(find(`$ ${ALICE} lease revoke L1`), `$ ${ALICE} lease revoke L1\n[exit 1]\nError: failed to revoke lease (etcdserver: permission denied)`);
    assert.equal(find('$ lease revoke L1'), '$ lease revoke L1\n[exit 1]\nError: failed to revoke lease (etcdserver: user name is empty)');
    assert.equal(find(`$ ${ROOT} get`), `$ ${ROOT} get --prefix  --keys-only\n[exit 0]\na/1\n\nb/1\n\n`);
    assert.equal(find(`$ ${ALICE} lease revoke L2`), `$ ${ALICE} lease revoke L2\n[exit 0]\nlease L2 revoked\n`);
    assert.equal(find('$ lease revoke L3'), '$ lease revoke L3\n[exit 0]\nlease L3 revoked\n');
    assert.equal(find(`$ ${ROOT} lease revoke L1`), `$ ${ROOT} lease revoke L1\n[exit 0]\nlease L1 revoked\n`);
    assert.equal(find(`$ ${ROOT} get`, 1), `$ ${ROOT} get --prefix  --keys-only\n[exit 0]\n`);
  });

  it('gives the same outputs as a real etcd 3.4', { skip: skipDiff }, async () => {
    const ref = await startReferenceEtcd();
    try {
      assert.deepEqual(outputs, await revokeScript(ref.endpoint));
    } finally {
      await ref.close();
    }
  });
});
