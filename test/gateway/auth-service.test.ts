/**
 * etcdserverpb.Auth over raw gRPC and the JSON gateway against the embedded
 * server: users, roles, enable/disable, Authenticate and tokens, permission
 * enforcement on KV and Maintenance with etcd's codes and texts, and the
 * auth store surviving a restart (LevelDB).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import type { CallInfo } from '../../src/gateway/context.js';
import type { Embedded } from '../../src/gateway/embedded.js';
import type { ForwardScope } from '../../src/gateway/forward-scope.js';
import { ETCD_ERRORS, toEtcdError } from '../../src/gateway/errors.js';
import { AUTH_ERROR_MESSAGES, AuthError, type AuthErrorCode } from '../../src/shard/auth/index.js';
import { b, client, failure, keysOf, startTestServer, withToken, type EtcdTestClient } from './server-harness.js';

const PERM = { READ: 0, WRITE: 1, READWRITE: 2 } as const;

/** Creates root (rootpw, role root), role r1 (READWRITE on prefix /foo/, READ on k1), user u1 (p1, role r1), and enables auth. */
async function setUp(auth: EtcdTestClient): Promise<void> {
  await auth.call('UserAdd', { name: 'root', password: 'rootpw' });
  await auth.call('RoleAdd', { name: 'root' });
  await auth.call('UserGrantRole', { user: 'root', role: 'root' });
  await auth.call('RoleAdd', { name: 'r1' });
  await auth.call('RoleGrantPermission', { name: 'r1', perm: { permType: PERM.READWRITE, key: b('/foo/'), range_end: b('/foo0') } });
  await auth.call('RoleGrantPermission', { name: 'r1', perm: { permType: PERM.READ, key: b('k1') } });
  await auth.call('UserAdd', { name: 'u1', password: 'p1' });
  await auth.call('UserGrantRole', { user: 'u1', role: 'r1' });
  await auth.call('AuthEnable', {});
}

async function tokenOf(auth: EtcdTestClient, name: string, password: string): Promise<string> {
  const res = await auth.call('Authenticate', { name, password });
  return res['token'] as string;
}

describe('Auth service', () => {
  let server: Embedded;
  let auth: EtcdTestClient;
  let kv: EtcdTestClient;
  let maint: EtcdTestClient;
  let lease: EtcdTestClient;
  let rootToken: string;
  let userToken: string;

  before(async () => {
    server = await startTestServer();
    const addr = server.server.addresses[0] ?? '';
    auth = client('etcdserverpb.Auth', addr);
    kv = client('etcdserverpb.KV', addr);
    maint = client('etcdserverpb.Maintenance', addr);
    lease = client('etcdserverpb.Lease', addr);
  });
  after(async () => {
    auth.close();
    kv.close();
    maint.close();
    lease.close();
    await server.close();
  });

  it('refuses AuthEnable without root, and Authenticate while disabled', async () => {
    assert.deepEqual(await failure(auth.call('AuthEnable', {})), { code: grpc.status.FAILED_PRECONDITION, details: 'etcdserver: root user does not exist' });
    assert.deepEqual(await failure(auth.call('Authenticate', { name: 'x', password: 'y' })), {
      code: grpc.status.FAILED_PRECONDITION,
      details: 'etcdserver: authentication is not enabled',
    });
    const status = await auth.call('AuthStatus', {});
    assert.equal(status['enabled'], false);
    assert.equal(status['authRevision'], 1);
  });

  it('enables auth; Authenticate answers a simple token "<16 letters>.<index>"', async () => {
    await setUp(auth);
    const status = await auth.call('AuthStatus', {});
    assert.equal(status['enabled'], true);
    assert.equal(status['authRevision'], 10);
    rootToken = await tokenOf(auth, 'root', 'rootpw');
    userToken = await tokenOf(auth, 'u1', 'p1');
    assert.match(rootToken, /^[A-Za-z]{16}\.\d+$/);
    assert.deepEqual(await failure(auth.call('Authenticate', { name: 'u1', password: 'wrong' })), {
      code: grpc.status.INVALID_ARGUMENT,
      details: 'etcdserver: authentication failed, invalid user ID or password',
    });
    assert.deepEqual(await failure(auth.call('Authenticate', { name: 'nobody', password: 'p' })), {
      code: grpc.status.INVALID_ARGUMENT,
      details: 'etcdserver: authentication failed, invalid user ID or password',
    });
  });

  it('enforces KV permissions with etcd codes and texts', async () => {
    const user = withToken(userToken);
    await kv.call('Put', { key: b('/foo/a'), value: b('1') }, user);
    assert.deepEqual(keysOf(await kv.call('Range', { key: b('/foo/'), range_end: b('/foo0') }, user)), ['/foo/a']);
    await kv.call('Range', { key: b('k1') }, user);
    const denied = { code: grpc.status.PERMISSION_DENIED, details: 'etcdserver: permission denied' };
    assert.deepEqual(await failure(kv.call('Put', { key: b('k1'), value: b('1') }, user)), denied, 'READ only on k1');
    assert.deepEqual(await failure(kv.call('Range', { key: b('/foo/'), range_end: b('\0') }, user)), denied);
    assert.deepEqual(await failure(kv.call('DeleteRange', { key: b('/foo/'), range_end: b('/fop') }, user)), denied);
    assert.deepEqual(
      await failure(kv.call('Txn', { compare: [], success: [{ request_put: { key: b('/foo/b'), value: b('x') } }, { request_range: { key: b('zzz') } }] }, user)),
      denied,
      'a txn needs every op permitted',
    );
    await kv.call('Txn', { compare: [{ key: b('k1'), target: 0, result: 0, version: 0 }], success: [{ request_put: { key: b('/foo/b'), value: b('x') } }] }, user);
    assert.deepEqual(await failure(kv.call('Range', { key: b('/foo/a') })), { code: grpc.status.INVALID_ARGUMENT, details: 'etcdserver: user name is empty' });
    assert.deepEqual(await failure(kv.call('Range', { key: b('/foo/a') }, withToken('bogus.1'))), {
      code: grpc.status.UNAUTHENTICATED,
      details: 'etcdserver: invalid auth token',
    });
    // Root holds every permission.
    await kv.call('Put', { key: b('anything'), value: b('1') }, withToken(rootToken));
  });

  it('admin RPCs need root; UserGet of oneself and RoleGet of one\'s role are allowed', async () => {
    const user = withToken(userToken);
    const denied = { code: grpc.status.PERMISSION_DENIED, details: 'etcdserver: permission denied' };
    assert.deepEqual(await failure(auth.call('UserAdd', { name: 'x', password: 'y' }, user)), denied);
    assert.deepEqual(await failure(auth.call('UserList', {}, user)), denied);
    assert.deepEqual(await failure(auth.call('UserGet', { name: 'root' }, user)), denied);
    assert.deepEqual((await auth.call('UserGet', { name: 'u1' }, user))['roles'], ['r1']);
    const r1 = await auth.call('RoleGet', { role: 'r1' }, user);
    assert.deepEqual(
      (r1['perm'] as Array<{ permType: number; key: Buffer; range_end: Buffer }>).map((p) => [p.permType, p.key.toString(), p.range_end.toString()]),
      [
        [PERM.READWRITE, '/foo/', '/foo0'],
        [PERM.READ, 'k1', ''],
      ],
    );
    const root = withToken(rootToken);
    assert.deepEqual((await auth.call('UserList', {}, root))['users'], ['root', 'u1']);
    assert.deepEqual((await auth.call('RoleList', {}, root))['roles'], ['r1', 'root']);
    assert.deepEqual((await auth.call('RoleGet', { role: 'root' }, root))['perm'], []);
    assert.deepEqual(await failure(auth.call('UserDelete', { name: 'root' }, root)), { code: grpc.status.INVALID_ARGUMENT, details: 'etcdserver: invalid auth management' });
    // Maintenance answers with etcd's raw auth texts and gRPC Unknown.
    assert.deepEqual(await failure(maint.call('Defragment', {}, user)), { code: grpc.status.UNKNOWN, details: 'auth: permission denied' });
    assert.deepEqual(await failure(maint.call('HashKV', {}, user)), { code: grpc.status.UNKNOWN, details: 'auth: permission denied' });
    // Alarm needs no permission in etcd 3.4.23 (any caller may list, raise or clear), only a valid token.
    assert.deepEqual(await maint.call('Alarm', { action: 0 }), { alarms: [] });
    assert.deepEqual(await maint.call('Alarm', { action: 0 }, user), { alarms: [] });
    assert.deepEqual(await failure(maint.call('Alarm', { action: 0 }, withToken('bogus.token'))), { code: grpc.status.UNKNOWN, details: 'auth: invalid auth token' });
    await maint.call('Defragment', {}, root);
    await maint.call('Status', {}, user);
    // LeaseGrant needs no permission, but an invalid token is refused before anything is proposed (etcd's raftRequest).
    assert.deepEqual(await failure(lease.call('LeaseGrant', { TTL: 60, ID: 0n }, withToken('bogus.token'))), {
      code: grpc.status.UNAUTHENTICATED,
      details: 'etcdserver: invalid auth token',
    });
    assert.ok(BigInt((await lease.call('LeaseGrant', { TTL: 60, ID: 0n }))['ID'] as bigint) > 0n, 'without a token');
    assert.ok(BigInt((await lease.call('LeaseGrant', { TTL: 60, ID: 0n }, user))['ID'] as bigint) > 0n, 'a user without permissions');
  });

  it('a revoked permission applies at once; a changed password or deleted user invalidates tokens', async () => {
    const root = withToken(rootToken);
    await auth.call('RoleRevokePermission', { role: 'r1', key: b('/foo/'), range_end: b('/foo0') }, root);
    assert.deepEqual(await failure(kv.call('Put', { key: b('/foo/a'), value: b('2') }, withToken(userToken))), {
      code: grpc.status.PERMISSION_DENIED,
      details: 'etcdserver: permission denied',
    });
    await auth.call('UserChangePassword', { name: 'u1', password: 'p2' }, root);
    assert.deepEqual(await failure(kv.call('Range', { key: b('k1') }, withToken(userToken))), {
      code: grpc.status.UNAUTHENTICATED,
      details: 'etcdserver: invalid auth token',
    });
    await assert.rejects(tokenOf(auth, 'u1', 'p1'));
    const fresh = await tokenOf(auth, 'u1', 'p2');
    await kv.call('Range', { key: b('k1') }, withToken(fresh));
    await auth.call('UserDelete', { name: 'u1' }, root);
    assert.equal((await failure(kv.call('Range', { key: b('k1') }, withToken(fresh)))).details, 'etcdserver: invalid auth token');
  });

  it('an Authenticate the auth store outran is proposed again under a new request id, also as the receiving end of a forward', async () => {
    const handler = server.server.unaryHandler('etcdserverpb.Auth/Authenticate');
    assert.ok(handler !== undefined);
    const scopes: (ForwardScope | undefined)[] = [
      undefined,
      // A forwarded call's id is fixed by the node the client called; the refusal is recorded under it.
      { localNodeId: server.node.nodeId, forwarded: true, requestId: { proposer: randomBytes(8), seq: 1 } },
    ];
    for (const [i, forward] of scopes.entries()) {
      const before = Number((await auth.call('AuthStatus', {}))['authRevision']);
      const call: CallInfo = { signal: new AbortController().signal, metadata: new grpc.Metadata(), ...(forward === undefined ? {} : { forward }) };
      // The handler reads the auth store now, then checks the password (bcrypt: tens of ms) ...
      const pending = handler({ name: 'root', password: 'rootpw' }, call);
      // ... while the store moves on: its first proposal is refused at apply (revision of auth store is old).
      await auth.call('RoleAdd', { name: `race${i}` }, withToken(rootToken));
      const res = await pending;
      assert.match(String(res['token']), /^[a-zA-Z]{16}\.\d+$/, `scope ${i}`);
      assert.equal(Number((await auth.call('AuthStatus', {}))['authRevision']), before + 1, 'the role add moved the store once');
    }
  });

  it('the JSON gateway: /v3/auth/authenticate, then /v3/kv/range with the Authorization header', async () => {
    const base = `http://${server.server.addresses[0] ?? ''}`;
    const post = async (path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, unknown> }> => {
      const r = await fetch(`${base}${path}`, { method: 'POST', body: JSON.stringify(body), headers, signal: AbortSignal.timeout(10_000) });
      return { status: r.status, json: (await r.json()) as Record<string, unknown> };
    };
    const authn = await post('/v3/auth/authenticate', { name: 'root', password: 'rootpw' });
    assert.equal(authn.status, 200);
    const token = authn.json['token'] as string;
    assert.match(token, /^[A-Za-z]{16}\.\d+$/);
    const read = await post('/v3/kv/range', { key: Buffer.from('/foo/a').toString('base64') }, { Authorization: token });
    assert.equal(read.status, 200);
    assert.equal((read.json['kvs'] as Array<{ value: string }>)[0]?.value, Buffer.from('1').toString('base64'));
    const anonymous = await post('/v3/kv/range', { key: Buffer.from('/foo/a').toString('base64') });
    assert.equal(anonymous.json['message'], 'etcdserver: user name is empty');
    assert.equal(anonymous.json['code'], grpc.status.INVALID_ARGUMENT);
    const status = await post('/v3/auth/status', {});
    assert.equal(status.json['enabled'], true);
    // /health stays healthy with auth on (the anonymous read reached the store).
    assert.equal((await fetch(`${base}/health`)).status, 200);
  });

  it('AuthDisable (root only) lifts every check', async () => {
    assert.deepEqual(await failure(auth.call('AuthDisable', {})), { code: grpc.status.INVALID_ARGUMENT, details: 'etcdserver: user name is empty' });
    await auth.call('AuthDisable', {}, withToken(rootToken));
    await kv.call('Put', { key: b('free'), value: b('1') });
    assert.equal((await auth.call('AuthStatus', {}))['enabled'], false);
  });
});

describe('Auth store across a restart', () => {
  it('keeps users, roles, permissions and the enabled flag', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keyspan-gw-auth-'));
    try {
      const first = await startTestServer({ dataDir: dir });
      const auth1 = client('etcdserverpb.Auth', first.server.addresses[0] ?? '');
      await setUp(auth1);
      const revision = (await auth1.call('AuthStatus', {}))['authRevision'];
      auth1.close();
      await first.close();

      const second = await startTestServer({ dataDir: dir });
      const auth2 = client('etcdserverpb.Auth', second.server.addresses[0] ?? '');
      const kv2 = client('etcdserverpb.KV', second.server.addresses[0] ?? '');
      try {
        const status = await auth2.call('AuthStatus', {});
        assert.equal(status['enabled'], true);
        assert.equal(status['authRevision'], revision);
        const token = await tokenOf(auth2, 'u1', 'p1');
        await kv2.call('Put', { key: b('/foo/x'), value: b('1') }, withToken(token));
        assert.equal((await failure(kv2.call('Put', { key: b('other'), value: b('1') }, withToken(token)))).details, 'etcdserver: permission denied');
      } finally {
        auth2.close();
        kv2.close();
        await second.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('auth errors', () => {
  it('every auth error maps to the etcd table row with the same code, text and gRPC code', () => {
    for (const code of Object.keys(AUTH_ERROR_MESSAGES) as AuthErrorCode[]) {
      const e = toEtcdError(new AuthError(code));
      assert.equal(e.code, code);
      assert.equal(e.message, ETCD_ERRORS[code].message);
      assert.equal(e.grpcCode, ETCD_ERRORS[code].grpcCode);
    }
    assert.equal(toEtcdError(new AuthError('AUTH_OLD_REVISION')).grpcCode, grpc.status.INVALID_ARGUMENT);
  });
});
