/**
 * The auth store's state machine: one request in, the next state out (or an
 * AuthError and no change), with etcd 3.4's rules (auth/store.go) — the
 * order of checks decides which error a request gets, so it follows etcd's.
 * Every change bumps the auth revision; requests that change nothing (a
 * second enable, a role granted twice) leave it alone, as in etcd.
 */
import { AuthError } from './errors.js';
import { comparePermissions, samePermissionSpan } from './permissions.js';
import { ROOT, type AuthRequest, type AuthRole, type AuthState, type AuthUser } from './types.js';

/** The outcome of a request that was accepted. */
export interface AuthTransition {
  readonly state: AuthState;
  /** False when the request was accepted but changed nothing (Authenticate, repeated grants). */
  readonly changed: boolean;
}

/** Applies `req` to `state`; throws AuthError when a rule refuses it. */
export function applyAuthRequest(state: AuthState, req: AuthRequest): AuthTransition {
  switch (req.type) {
    case 'enable':
      return enable(state);
    case 'disable':
      return state.enabled ? changed(state, { enabled: false }) : unchanged(state);
    case 'userAdd': {
      if (req.name === '') throw new AuthError('USER_EMPTY');
      if (state.users.has(req.name)) throw new AuthError('USER_ALREADY_EXIST');
      const user: AuthUser = { name: req.name, passwordHash: req.passwordHash, noPassword: req.noPassword, roles: [] };
      return changed(state, { users: withEntry(state.users, req.name, user) });
    }
    case 'userDelete': {
      if (state.enabled && req.name === ROOT) throw new AuthError('INVALID_AUTH_MGMT');
      requireUser(state, req.name);
      return changed(state, { users: withoutEntry(state.users, req.name) });
    }
    case 'userChangePassword': {
      const user = requireUser(state, req.name);
      // etcd keeps the user's options: a no-password user stays one.
      return changed(state, { users: withEntry(state.users, req.name, { ...user, passwordHash: req.passwordHash }) });
    }
    case 'userGrantRole': {
      const user = requireUser(state, req.name);
      if (req.role !== ROOT && !state.roles.has(req.role)) throw new AuthError('ROLE_NOT_FOUND');
      if (user.roles.includes(req.role)) return unchanged(state);
      const roles = [...user.roles, req.role].sort(compareStrings);
      return changed(state, { users: withEntry(state.users, req.name, { ...user, roles }) });
    }
    case 'userRevokeRole': {
      if (state.enabled && req.name === ROOT && req.role === ROOT) throw new AuthError('INVALID_AUTH_MGMT');
      const user = requireUser(state, req.name);
      if (!user.roles.includes(req.role)) throw new AuthError('ROLE_NOT_GRANTED');
      const roles = user.roles.filter((r) => r !== req.role);
      return changed(state, { users: withEntry(state.users, req.name, { ...user, roles }) });
    }
    case 'roleAdd': {
      if (req.name === '') throw new AuthError('ROLE_EMPTY');
      if (state.roles.has(req.name)) throw new AuthError('ROLE_ALREADY_EXIST');
      return changed(state, { roles: withEntry(state.roles, req.name, { name: req.name, permissions: [] }) });
    }
    case 'roleDelete': {
      if (state.enabled && req.name === ROOT) throw new AuthError('INVALID_AUTH_MGMT');
      if (!state.roles.has(req.name)) throw new AuthError('ROLE_NOT_FOUND');
      // The role is revoked from every user holding it, in the same change.
      const users = new Map<string, AuthUser>();
      for (const [name, u] of state.users) {
        users.set(name, u.roles.includes(req.name) ? { ...u, roles: u.roles.filter((r) => r !== req.name) } : u);
      }
      return changed(state, { roles: withoutEntry(state.roles, req.name), users });
    }
    case 'roleGrantPermission': {
      const role = requireRole(state, req.name);
      const perm = req.permission;
      const i = role.permissions.findIndex((p) => samePermissionSpan(p, perm));
      // The same span granted again replaces its type (etcd updates in place).
      const permissions = i >= 0 ? role.permissions.map((p, j) => (j === i ? perm : p)) : [...role.permissions, perm].sort(comparePermissions);
      return changed(state, { roles: withEntry(state.roles, req.name, { ...role, permissions }) });
    }
    case 'roleRevokePermission': {
      const role = requireRole(state, req.name);
      const span = { key: req.key, rangeEnd: req.rangeEnd };
      const permissions = role.permissions.filter((p) => !samePermissionSpan(p, span));
      if (permissions.length === role.permissions.length) throw new AuthError('PERMISSION_NOT_GRANTED');
      return changed(state, { roles: withEntry(state.roles, req.name, { ...role, permissions }) });
    }
    case 'authenticate': {
      if (!state.enabled) throw new AuthError('AUTH_NOT_ENABLED');
      if (!state.users.has(req.name)) throw new AuthError('AUTH_FAILED');
      // The password was checked against an older store: the user may have changed since.
      if (req.checkedRevision !== state.revision) throw new AuthError('AUTH_OLD_REVISION');
      return unchanged(state);
    }
  }
}

function enable(state: AuthState): AuthTransition {
  if (state.enabled) return unchanged(state);
  const root = state.users.get(ROOT);
  if (root === undefined) throw new AuthError('ROOT_USER_NOT_EXIST');
  if (!root.roles.includes(ROOT)) throw new AuthError('ROOT_ROLE_NOT_EXIST');
  return changed(state, { enabled: true });
}

function requireUser(state: AuthState, name: string): AuthUser {
  const user = state.users.get(name);
  if (user === undefined) throw new AuthError('USER_NOT_FOUND');
  return user;
}

function requireRole(state: AuthState, name: string): AuthRole {
  const role = state.roles.get(name);
  if (role === undefined) throw new AuthError('ROLE_NOT_FOUND');
  return role;
}

function changed(state: AuthState, patch: Partial<AuthState>): AuthTransition {
  return { state: { ...state, ...patch, revision: state.revision + 1 }, changed: true };
}

function unchanged(state: AuthState): AuthTransition {
  return { state, changed: false };
}

function withEntry<V>(map: ReadonlyMap<string, V>, key: string, value: V): Map<string, V> {
  const next = new Map(map);
  next.set(key, value);
  return next;
}

function withoutEntry<V>(map: ReadonlyMap<string, V>, key: string): Map<string, V> {
  const next = new Map(map);
  next.delete(key);
  return next;
}

/** Byte-order comparison of names (Go's sort.Strings on UTF-8). */
export function compareStrings(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
