/**
 * Protobuf encoding of the auth store (proto/keyspan/rangepb-auth.proto):
 * the stored state record, and the `auth` body and result of range commands
 * in the wire-object shape command-codec.ts hands to protobufjs.
 *
 * Integer rule (docs/integers.md): revisions and indexes decode to checked
 * safe integers.
 */
import { CommandInvalidError } from '../range/errors.js';
import { lookupRangeType } from '../replica/proto.js';
import type { AuthRequest, AuthResult, AuthRole, AuthState, AuthUser, Permission, PermissionType } from './types.js';

type Wire = Record<string, unknown>;

const PERMISSION_TYPES: readonly PermissionType[] = ['READ', 'WRITE', 'READWRITE'];

/** Encodes the whole auth state (the value of the range's auth key). */
export function encodeAuthState(state: AuthState): Uint8Array {
  const type = lookupRangeType('AuthStoreState');
  const wire = {
    enabled: state.enabled,
    revision: state.revision,
    users: [...state.users.values()].map((u) => ({ name: u.name, password_hash: u.passwordHash, no_password: u.noPassword, roles: [...u.roles] })),
    roles: [...state.roles.values()].map((r) => ({ name: r.name, permissions: r.permissions.map(permissionToWire) })),
  };
  return type.encode(type.fromObject(wire)).finish();
}

/** Decodes a stored auth state; throws CommandInvalidError. */
export function decodeAuthState(bytes: Uint8Array): AuthState {
  return guard('AuthStoreState', () => {
    const type = lookupRangeType('AuthStoreState');
    const w = type.toObject(type.decode(bytes), { longs: String, enums: String, defaults: false }) as Wire;
    const users = new Map<string, AuthUser>();
    for (const u of list(w['users'])) {
      const name = str(u['name']);
      users.set(name, { name, passwordHash: str(u['password_hash']), noPassword: u['no_password'] === true, roles: list(u['roles']).map(str) });
    }
    const roles = new Map<string, AuthRole>();
    for (const r of list(w['roles'])) {
      const name = str(r['name']);
      roles.set(name, { name, permissions: list(r['permissions']).map(permissionFromWire) });
    }
    return { enabled: w['enabled'] === true, revision: uint(w['revision'], 'revision'), users, roles };
  });
}

/** The `AuthCommand` wire object of a request. */
export function authRequestToWire(req: AuthRequest): Wire {
  switch (req.type) {
    case 'enable':
      return { enable: {} };
    case 'disable':
      return { disable: {} };
    case 'userAdd':
      return { user_add: { name: req.name, password_hash: req.passwordHash, no_password: req.noPassword } };
    case 'userDelete':
      return { user_delete: { name: req.name } };
    case 'userChangePassword':
      return { user_change_password: { name: req.name, password_hash: req.passwordHash } };
    case 'userGrantRole':
      return { user_grant_role: { name: req.name, role: req.role } };
    case 'userRevokeRole':
      return { user_revoke_role: { name: req.name, role: req.role } };
    case 'roleAdd':
      return { role_add: { name: req.name } };
    case 'roleDelete':
      return { role_delete: { name: req.name } };
    case 'roleGrantPermission':
      return { role_grant_permission: { name: req.name, permission: permissionToWire(req.permission) } };
    case 'roleRevokePermission':
      return { role_revoke_permission: { name: req.name, key: req.key, range_end: req.rangeEnd } };
    case 'authenticate':
      return { authenticate: { name: req.name, checked_revision: req.checkedRevision, token_prefix: req.tokenPrefix } };
  }
}

/** The request of a decoded `AuthCommand` wire object; throws CommandInvalidError. */
export function authRequestFromWire(w: Wire): AuthRequest {
  const op = w['op'];
  const m = (field: string): Wire => {
    const v = w[field];
    if (typeof v !== 'object' || v === null) throw new CommandInvalidError(`auth command ${field} is missing`);
    return v as Wire;
  };
  switch (op) {
    case 'enable':
      return { type: 'enable' };
    case 'disable':
      return { type: 'disable' };
    case 'user_add': {
      const a = m('user_add');
      return { type: 'userAdd', name: str(a['name']), passwordHash: str(a['password_hash']), noPassword: a['no_password'] === true };
    }
    case 'user_delete':
      return { type: 'userDelete', name: str(m('user_delete')['name']) };
    case 'user_change_password': {
      const a = m('user_change_password');
      return { type: 'userChangePassword', name: str(a['name']), passwordHash: str(a['password_hash']) };
    }
    case 'user_grant_role': {
      const a = m('user_grant_role');
      return { type: 'userGrantRole', name: str(a['name']), role: str(a['role']) };
    }
    case 'user_revoke_role': {
      const a = m('user_revoke_role');
      return { type: 'userRevokeRole', name: str(a['name']), role: str(a['role']) };
    }
    case 'role_add':
      return { type: 'roleAdd', name: str(m('role_add')['name']) };
    case 'role_delete':
      return { type: 'roleDelete', name: str(m('role_delete')['name']) };
    case 'role_grant_permission': {
      const a = m('role_grant_permission');
      const p = a['permission'];
      if (typeof p !== 'object' || p === null) throw new CommandInvalidError('auth role grant without a permission');
      return { type: 'roleGrantPermission', name: str(a['name']), permission: permissionFromWire(p as Wire) };
    }
    case 'role_revoke_permission': {
      const a = m('role_revoke_permission');
      return { type: 'roleRevokePermission', name: str(a['name']), key: bytes(a['key']), rangeEnd: bytes(a['range_end']) };
    }
    case 'authenticate': {
      const a = m('authenticate');
      return {
        type: 'authenticate',
        name: str(a['name']),
        checkedRevision: uint(a['checked_revision'], 'checked_revision'),
        tokenPrefix: str(a['token_prefix']),
      };
    }
    default:
      throw new CommandInvalidError(`unknown auth command ${String(op)}`);
  }
}

/** The `AuthCommandResponse` wire object of a result. */
export function authResultToWire(r: AuthResult): Wire {
  return { revision: r.revision, auth_revision: r.authRevision, index: r.index, token: r.token ?? '' };
}

/** The result of a decoded `AuthCommandResponse` wire object. */
export function authResultFromWire(w: Wire): AuthResult {
  const r = { revision: uint(w['revision'], 'revision'), authRevision: uint(w['auth_revision'], 'auth_revision'), index: uint(w['index'], 'index') };
  const token = str(w['token']);
  return token === '' ? r : { ...r, token };
}

function permissionToWire(p: Permission): Wire {
  return { perm_type: p.type, key: p.key, range_end: p.rangeEnd };
}

function permissionFromWire(w: Wire): Permission {
  const t = w['perm_type'] ?? 'READ';
  if (!PERMISSION_TYPES.includes(t as PermissionType)) throw new CommandInvalidError(`unknown permission type ${String(t)}`);
  return { type: t as PermissionType, key: bytes(w['key']), rangeEnd: bytes(w['range_end']) };
}

function guard<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof CommandInvalidError) throw err;
    throw new CommandInvalidError(`cannot decode ${what}: ${String(err)}`, { cause: err });
  }
}

function list(v: unknown): Wire[] {
  return Array.isArray(v) ? (v as Wire[]) : [];
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function bytes(v: unknown): Uint8Array {
  if (v === undefined || v === null) return new Uint8Array(0);
  if (v instanceof Uint8Array) return v;
  throw new CommandInvalidError('field is not bytes');
}

function uint(v: unknown, field: string): number {
  if (v === undefined || v === null) return 0;
  const n = typeof v === 'number' ? v : Number(v as string);
  if (!Number.isSafeInteger(n) || n < 0) throw new CommandInvalidError(`${field}=${String(v)} is not a non-negative safe integer`);
  return n;
}
