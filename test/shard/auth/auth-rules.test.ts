/**
 * The auth store's pure rules (src/shard/auth): user/role mutations with
 * etcd 3.4's errors and revision bumps, permission checks on key spans, and
 * the encoding of state and commands.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyAuthRequest,
  AuthError,
  authRequestFromWire,
  authRequestToWire,
  checkAdmin,
  checkKeyAccess,
  decodeAuthState,
  emptyAuthState,
  encodeAuthState,
  staleAuthRevision,
  type AccessKind,
  type AuthErrorCode,
  type AuthRequest,
  type AuthState,
  type Permission,
} from '../../../src/shard/auth/index.js';
import { lookupRangeType } from '../../../src/shard/replica/proto.js';
import { decodeCommand, encodeCommand, type RangeCommand } from '../../../src/shard/replica/index.js';
import { decodeDedupeRecord, encodeDedupeRecord } from '../../../src/shard/replica/command-codec.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Applies requests in order, returning the final state. */
function run(state: AuthState, ...reqs: AuthRequest[]): AuthState {
  for (const r of reqs) state = applyAuthRequest(state, r).state;
  return state;
}

function refused(state: AuthState, req: AuthRequest): AuthErrorCode {
  try {
    applyAuthRequest(state, req);
  } catch (err) {
    assert.ok(err instanceof AuthError);
    return err.code;
  }
  throw new Error(`expected ${req.type} to be refused`);
}

const user = (name: string): AuthRequest => ({ type: 'userAdd', name, passwordHash: `hash-${name}`, noPassword: false });
const grantRole = (name: string, role: string): AuthRequest => ({ type: 'userGrantRole', name, role });
const perm = (type: Permission['type'], key: string, rangeEnd = ''): Permission => ({ type, key: b(key), rangeEnd: b(rangeEnd) });
const grantPerm = (name: string, p: Permission): AuthRequest => ({ type: 'roleGrantPermission', name, permission: p });

/** root (with role root) and u1 (role r1), auth enabled. */
function enabledStore(...perms: Permission[]): AuthState {
  return run(
    emptyAuthState(),
    user('root'),
    grantRole('root', 'root'),
    user('u1'),
    { type: 'roleAdd', name: 'r1' },
    ...perms.map((p) => grantPerm('r1', p)),
    grantRole('u1', 'r1'),
    { type: 'enable' },
  );
}

function allowed(state: AuthState, who: string, key: string, rangeEnd: string | undefined, kind: AccessKind): boolean | AuthErrorCode {
  try {
    checkKeyAccess(state, { user: who, revision: state.revision }, b(key), rangeEnd === undefined ? undefined : b(rangeEnd), kind);
    return true;
  } catch (err) {
    if (!(err instanceof AuthError)) throw err;
    return err.code === 'PERMISSION_DENIED' ? false : err.code;
  }
}

describe('auth mutations', () => {
  it('AuthEnable() needs user root holding role root', () => {
    const s0 = emptyAuthState();
    assert.equal(s0.revision, 1);
    assert.equal(refused(s0, { type: 'enable' }), 'ROOT_USER_NOT_EXIST');
    const s1 = run(s0, user('root'));
    assert.equal(refused(s1, { type: 'enable' }), 'ROOT_ROLE_NOT_EXIST');
    // Granting "root" needs no role record (etcd special-cases it).
    const s2 = run(s1, grantRole('root', 'root'), { type: 'enable' });
    assert.equal(s2.enabled, true);
    assert.equal(s2.revision, 4);
  });

  it('every change bumps the auth revision; no-ops and Authenticate do not', () => {
    const s = enabledStore();
    const again = applyAuthRequest(s, { type: 'enable' });
    assert.equal(again.changed, false);
    assert.equal(again.state.revision, s.revision);
    const regrant = applyAuthRequest(s, grantRole('u1', 'r1'));
    assert.equal(regrant.changed, false);
    const auth = applyAuthRequest(s, { type: 'authenticate', name: 'u1', checkedRevision: s.revision, tokenPrefix: 'abc' });
    assert.equal(auth.state.revision, s.revision);
    const off = run(s, { type: 'disable' });
    assert.equal(off.revision, s.revision + 1);
    assert.equal(applyAuthRequest(off, { type: 'disable' }).changed, false);
  });

  it('refuses with etcd errors and changes nothing', () => {
    const s = enabledStore();
    assert.equal(refused(s, user('')), 'USER_EMPTY');
    assert.equal(refused(s, user('u1')), 'USER_ALREADY_EXIST');
    assert.equal(refused(s, { type: 'userDelete', name: 'nobody' }), 'USER_NOT_FOUND');
    assert.equal(refused(s, { type: 'userDelete', name: 'root' }), 'INVALID_AUTH_MGMT');
    // etcd refuses deleting root before looking the role up.
    assert.equal(refused(s, { type: 'roleDelete', name: 'root' }), 'INVALID_AUTH_MGMT');
    assert.equal(refused(s, { type: 'roleDelete', name: 'r9' }), 'ROLE_NOT_FOUND');
    assert.equal(refused(s, { type: 'userRevokeRole', name: 'root', role: 'root' }), 'INVALID_AUTH_MGMT');
    assert.equal(refused(s, { type: 'userRevokeRole', name: 'u1', role: 'r9' }), 'ROLE_NOT_GRANTED');
    assert.equal(refused(s, grantRole('u1', 'r9')), 'ROLE_NOT_FOUND');
    assert.equal(refused(s, grantRole('nobody', 'r1')), 'USER_NOT_FOUND');
    assert.equal(refused(s, { type: 'roleAdd', name: '' }), 'ROLE_EMPTY');
    assert.equal(refused(s, { type: 'roleAdd', name: 'r1' }), 'ROLE_ALREADY_EXIST');
    assert.equal(refused(s, grantPerm('r9', perm('READ', 'a'))), 'ROLE_NOT_FOUND');
    assert.equal(refused(s, { type: 'roleRevokePermission', name: 'r1', key: b('a'), rangeEnd: b('') }), 'PERMISSION_NOT_GRANTED');
    assert.equal(refused(s, { type: 'userChangePassword', name: 'nobody', passwordHash: 'x' }), 'USER_NOT_FOUND');
    assert.equal(refused(s, { type: 'authenticate', name: 'nobody', checkedRevision: s.revision, tokenPrefix: 'abc' }), 'AUTH_FAILED');
    assert.equal(refused(s, { type: 'authenticate', name: 'u1', checkedRevision: s.revision - 1, tokenPrefix: 'abc' }), 'AUTH_OLD_REVISION');
    assert.equal(refused(run(s, { type: 'disable' }), { type: 'authenticate', name: 'u1', checkedRevision: s.revision + 1, tokenPrefix: 'abc' }), 'AUTH_NOT_ENABLED');
  });

  it('role delete revokes the role from its users; grants keep roles and permissions sorted', () => {
    let s = run(emptyAuthState(), user('u'), { type: 'roleAdd', name: 'b' }, { type: 'roleAdd', name: 'a' }, grantRole('u', 'b'), grantRole('u', 'a'));
    assert.deepEqual(s.users.get('u')?.roles, ['a', 'b']);
    s = run(s, grantPerm('a', perm('READ', 'z')), grantPerm('a', perm('READ', 'k', 'm')), grantPerm('a', perm('WRITE', 'k')));
    assert.deepEqual(s.roles.get('a')?.permissions.map((p) => `${p.type}:${p.key.toString()}-${p.rangeEnd.toString()}`), ['WRITE:k-', 'READ:k-m', 'READ:z-']);
    // The same span granted again replaces its type.
    s = run(s, grantPerm('a', perm('READWRITE', 'z')));
    assert.equal(s.roles.get('a')?.permissions.length, 3);
    assert.equal(s.roles.get('a')?.permissions[2]?.type, 'READWRITE');
    s = run(s, { type: 'roleDelete', name: 'a' });
    assert.deepEqual(s.users.get('u')?.roles, ['b']);
  });

  it('never mutates the state it was given', () => {
    const s = enabledStore(perm('READ', 'a'));
    const before = encodeAuthState(s);
    run(s, { type: 'roleDelete', name: 'r1' }, { type: 'userDelete', name: 'u1' }, { type: 'disable' });
    assert.deepEqual(encodeAuthState(s), before);
  });
});

describe('permission checks', () => {
  it('single keys, ranges, prefixes and from-key grants', () => {
    const s = enabledStore(perm('READWRITE', '/foo/', '/foo0'), perm('READ', 'k1'), perm('WRITE', 'a', 'z'), perm('READ', 'x', '\0'));
    assert.equal(allowed(s, 'u1', '/foo/a', undefined, 'read'), true);
    assert.equal(allowed(s, 'u1', '/foo/', '/foo0', 'write'), true);
    assert.equal(allowed(s, 'u1', '/foo', undefined, 'read'), false);
    assert.equal(allowed(s, 'u1', '/foo/', '\0', 'read'), false, 'from-key request beyond the grant');
    assert.equal(allowed(s, 'u1', 'k1', undefined, 'read'), true);
    assert.equal(allowed(s, 'u1', 'k1', undefined, 'write'), true, 'k1 is inside [a, z) WRITE');
    assert.equal(allowed(s, 'u1', 'k10', undefined, 'read'), false);
    assert.equal(allowed(s, 'u1', 'b', 'y', 'write'), true);
    assert.equal(allowed(s, 'u1', 'b', 'z\0', 'write'), false);
    assert.equal(allowed(s, 'u1', 'xyz', '\0', 'read'), true, 'from-key grant covers a from-key request');
    assert.equal(allowed(s, 'u1', 'zzz', 'zzzz', 'read'), true);
    assert.equal(allowed(s, 'root', '', '\0', 'write'), true, 'root holds every permission');
  });

  it('adjacent and overlapping grants cover a span together, a gap does not', () => {
    const s = enabledStore(perm('READ', 'a', 'c'), perm('READ', 'b', 'e'), perm('READ', 'e', 'g'), perm('READ', 'h', 'j'));
    assert.equal(allowed(s, 'u1', 'a', 'g', 'read'), true);
    assert.equal(allowed(s, 'u1', 'a', 'i', 'read'), false);
    assert.equal(allowed(s, 'u1', 'h', 'j', 'read'), true);
    assert.equal(allowed(s, 'u1', 'a', 'c', 'write'), false);
  });

  it('no user, an old revision, an unknown user; nothing checked while auth is disabled', () => {
    const s = enabledStore(perm('READ', 'a'));
    assert.throws(() => checkKeyAccess(s, undefined, b('a'), undefined, 'read'), { code: 'USER_EMPTY' });
    assert.throws(() => checkKeyAccess(s, { user: 'u1', revision: s.revision - 1 }, b('a'), undefined, 'read'), { code: 'AUTH_OLD_REVISION' });
    assert.throws(() => checkKeyAccess(s, { user: 'gone', revision: s.revision }, b('a'), undefined, 'read'), { code: 'PERMISSION_DENIED' });
    const off = run(s, { type: 'disable' });
    checkKeyAccess(off, undefined, b('zzz'), undefined, 'write');
    checkAdmin(off, undefined);
  });

  it('admin: root role only', () => {
    const s = enabledStore();
    checkAdmin(s, { user: 'root', revision: s.revision });
    assert.throws(() => checkAdmin(s, { user: 'u1', revision: s.revision }), { code: 'PERMISSION_DENIED' });
    assert.throws(() => checkAdmin(s, { user: 'gone', revision: s.revision }), { code: 'USER_NOT_FOUND' });
    assert.throws(() => checkAdmin(s, undefined), { code: 'USER_EMPTY' });
  });

  it('stale auth revision at apply: refused only while enabled and moved', () => {
    const s = enabledStore();
    assert.equal(staleAuthRevision(s, s.revision), undefined);
    assert.equal(staleAuthRevision(s, undefined), undefined);
    assert.equal(staleAuthRevision(s, s.revision - 1)?.code, 'AUTH_OLD_REVISION');
    assert.equal(staleAuthRevision(run(s, { type: 'disable' }), s.revision - 1), undefined);
  });
});

describe('auth encoding', () => {
  it('state round-trips through its stored form', () => {
    const s = run(enabledStore(perm('READWRITE', '/foo/', '/foo0'), perm('READ', 'x', '\0')), {
      type: 'userAdd',
      name: 'np',
      passwordHash: '',
      noPassword: true,
    });
    const back = decodeAuthState(encodeAuthState(s));
    assert.deepEqual(encodeAuthState(back), encodeAuthState(s));
    assert.equal(back.enabled, true);
    assert.equal(back.revision, s.revision);
    assert.deepEqual([...back.users.keys()].sort(), ['np', 'root', 'u1']);
    assert.equal(back.users.get('np')?.noPassword, true);
    assert.deepEqual(back.roles.get('r1')?.permissions.map((p) => p.type), ['READWRITE', 'READ']);
  });

  it('every command round-trips through the AuthCommand proto', () => {
    const type = lookupRangeType('AuthCommand');
    const reqs: AuthRequest[] = [
      { type: 'enable' },
      { type: 'disable' },
      { type: 'userAdd', name: 'u', passwordHash: '$2a$10$x', noPassword: false },
      { type: 'userDelete', name: 'u' },
      { type: 'userChangePassword', name: 'u', passwordHash: 'h' },
      { type: 'userGrantRole', name: 'u', role: 'r' },
      { type: 'userRevokeRole', name: 'u', role: 'r' },
      { type: 'roleAdd', name: 'r' },
      { type: 'roleDelete', name: 'r' },
      { type: 'roleGrantPermission', name: 'r', permission: perm('WRITE', 'a', 'b') },
      { type: 'roleRevokePermission', name: 'r', key: b('a'), rangeEnd: b('b') },
      { type: 'authenticate', name: 'u', checkedRevision: 42, tokenPrefix: 'abc' },
    ];
    for (const req of reqs) {
      const bytes = type.encode(type.fromObject(authRequestToWire(req))).finish();
      const wire = type.toObject(type.decode(bytes), { longs: String, enums: String, defaults: false, oneofs: true });
      const back = authRequestFromWire(wire as Record<string, unknown>);
      assert.deepEqual(JSON.stringify(back), JSON.stringify(req), req.type);
    }
  });

  it('range commands carry an auth body or the auth revision they were checked at; results round-trip in dedupe records', () => {
    const requestId = { proposer: b('gw'), seq: 7 };
    const epoch = { confVersion: 1, spanVersion: 0 };
    const auth: RangeCommand = { requestId, epoch, authRevision: 12, body: { type: 'auth', request: { type: 'roleAdd', name: 'r' } } };
    assert.deepEqual(decodeCommand(encodeCommand(auth)), auth);
    const put: RangeCommand = { requestId, epoch, authRevision: 3, body: { type: 'put', request: { key: b('k'), value: b('v') } } };
    const back = decodeCommand(encodeCommand(put));
    assert.equal(back.authRevision, 3);
    const unchecked = decodeCommand(encodeCommand({ requestId, epoch, body: put.body }));
    assert.equal('authRevision' in unchecked, false, 'no auth revision when none was checked');
    const record = { index: 9, result: { raftTerm: 2, ok: true as const, result: { type: 'auth' as const, response: { revision: 5, authRevision: 13, index: 9 } } } };
    assert.deepEqual(decodeDedupeRecord(encodeDedupeRecord(record)), record);
  });
});
