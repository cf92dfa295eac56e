/**
 * Permission checks of the auth store (etcd's auth/range_perm_cache.go and
 * store.go isOpPermitted / IsAdminPermitted), pure functions of the state.
 *
 * A request on `[key, rangeEnd)` is permitted when the union of the spans
 * the user's roles grant for the access kind covers the whole request span;
 * the root role grants everything. Spans follow etcd's range conventions:
 * an empty end is the key alone, "\0" is every key from `key` on.
 */
import { AuthError } from './errors.js';
import { ROOT, type AuthState, type AuthUser, type Permission, type PermissionType } from './types.js';

/** The access a request needs on a key span. */
export type AccessKind = 'read' | 'write';

/** Who a request comes from, as the token named it at check time. */
export interface Caller {
  readonly user: string;
  /** The auth revision the caller was identified at. */
  readonly revision: number;
}

/** A half-open key span; `end` undefined = no upper bound. */
interface Span {
  readonly start: Buffer;
  readonly end: Buffer | undefined;
}

/** Whether two permissions name the same span (a second grant replaces the first). */
export function samePermissionSpan(a: { key: Uint8Array; rangeEnd: Uint8Array }, b: { key: Uint8Array; rangeEnd: Uint8Array }): boolean {
  return Buffer.compare(a.key, b.key) === 0 && Buffer.compare(a.rangeEnd, b.rangeEnd) === 0;
}

/** Order of a role's permissions: by key, then range end. */
export function comparePermissions(a: Permission, b: Permission): number {
  return Buffer.compare(a.key, b.key) || Buffer.compare(a.rangeEnd, b.rangeEnd);
}

/** Whether the user holds the root role. */
export function hasRootRole(user: AuthUser): boolean {
  return user.roles.includes(ROOT);
}

/**
 * etcd's IsAdminPermitted: with auth enabled, the caller must be a user
 * holding the root role. Throws USER_EMPTY (no token), USER_NOT_FOUND, or
 * PERMISSION_DENIED.
 */
export function checkAdmin(state: AuthState, caller: Caller | undefined): void {
  if (!state.enabled) return;
  if (caller === undefined || caller.user === '') throw new AuthError('USER_EMPTY');
  const user = state.users.get(caller.user);
  if (user === undefined) throw new AuthError('USER_NOT_FOUND');
  if (!hasRootRole(user)) throw new AuthError('PERMISSION_DENIED');
}

/**
 * etcd's isOpPermitted: with auth enabled, `kind` access on
 * `[key, rangeEnd)` must be granted to the caller. Throws USER_EMPTY,
 * AUTH_OLD_REVISION (the caller was identified at an older revision), or
 * PERMISSION_DENIED (also for a user deleted since its token was issued).
 */
export function checkKeyAccess(state: AuthState, caller: Caller | undefined, key: Uint8Array, rangeEnd: Uint8Array | undefined, kind: AccessKind): void {
  if (!state.enabled) return;
  if (caller === undefined || caller.user === '') throw new AuthError('USER_EMPTY');
  if (caller.revision < state.revision) throw new AuthError('AUTH_OLD_REVISION');
  const user = state.users.get(caller.user);
  if (user === undefined) throw new AuthError('PERMISSION_DENIED');
  if (hasRootRole(user)) return;
  if (!spanCovered(grantedSpans(state, user, kind), toSpan(key, rangeEnd ?? new Uint8Array(0)))) {
    throw new AuthError('PERMISSION_DENIED');
  }
}

/** Whether the user may see the role (etcd's RoleGet: admins, or holders of the role). */
export function userHasRole(state: AuthState, caller: Caller | undefined, role: string): boolean {
  if (caller === undefined) return false;
  return state.users.get(caller.user)?.roles.includes(role) ?? false;
}

/** The spans the user's roles grant for `kind`, sorted by start. */
function grantedSpans(state: AuthState, user: AuthUser, kind: AccessKind): Span[] {
  const spans: Span[] = [];
  for (const name of user.roles) {
    for (const p of state.roles.get(name)?.permissions ?? []) {
      if (grants(p.type, kind)) spans.push(toSpan(p.key, p.rangeEnd));
    }
  }
  return spans.sort((a, b) => Buffer.compare(a.start, b.start));
}

function grants(type: PermissionType, kind: AccessKind): boolean {
  return type === 'READWRITE' || (kind === 'read' ? type === 'READ' : type === 'WRITE');
}

/** `[key, rangeEnd)` as a span; an empty or inverted end means the key alone. */
function toSpan(key: Uint8Array, rangeEnd: Uint8Array): Span {
  const start = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { start, end: undefined };
  const single = Buffer.concat([start, Buffer.of(0)]);
  if (rangeEnd.length === 0) return { start, end: single };
  const end = Buffer.from(rangeEnd.buffer, rangeEnd.byteOffset, rangeEnd.byteLength);
  return Buffer.compare(end, start) <= 0 ? { start, end: single } : { start, end };
}

/** Whether the union of `granted` (sorted by start) covers `want`. */
function spanCovered(granted: readonly Span[], want: Span): boolean {
  let reach = want.start; // [want.start, reach) is covered
  for (const g of granted) {
    if (Buffer.compare(g.start, reach) > 0) break; // a gap at `reach`
    if (g.end === undefined) return true; // covered to the end of the keyspace
    if (Buffer.compare(g.end, reach) > 0) reach = g.end;
  }
  return want.end !== undefined && Buffer.compare(reach, want.end) >= 0;
}
