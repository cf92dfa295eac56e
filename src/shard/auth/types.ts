/**
 * The auth store's replicated state and the mutations that travel through
 * raft (etcd's authpb User/Role/Permission and the Auth* internal requests).
 * Pure data: no I/O. Passwords are bcrypt hashes computed by the gateway
 * before proposing, so applying a mutation stays cheap and deterministic.
 */

/** etcd's authpb.Permission.Type. */
export type PermissionType = 'READ' | 'WRITE' | 'READWRITE';

/** A grant on `[key, rangeEnd)` with etcd's range conventions (empty end: the key alone; "\0": every key from `key`). */
export interface Permission {
  readonly type: PermissionType;
  readonly key: Uint8Array;
  readonly rangeEnd: Uint8Array;
}

/** A user: bcrypt hash (empty with `noPassword`) and granted roles, sorted. */
export interface AuthUser {
  readonly name: string;
  readonly passwordHash: string;
  readonly noPassword: boolean;
  readonly roles: readonly string[];
}

/** A role and its permissions, sorted by key then range end (as etcd keeps them). */
export interface AuthRole {
  readonly name: string;
  readonly permissions: readonly Permission[];
}

/** The whole auth store of a cluster. Never mutated: every change makes a new state. */
export interface AuthState {
  readonly enabled: boolean;
  /** etcd's auth revision: 1 for a new store, +1 per change. */
  readonly revision: number;
  readonly users: ReadonlyMap<string, AuthUser>;
  readonly roles: ReadonlyMap<string, AuthRole>;
}

/** A mutation of the auth store, or an Authenticate (which changes nothing but is ordered by raft). */
export type AuthRequest =
  | { readonly type: 'enable' }
  | { readonly type: 'disable' }
  | { readonly type: 'userAdd'; readonly name: string; readonly passwordHash: string; readonly noPassword: boolean }
  | { readonly type: 'userDelete'; readonly name: string }
  | { readonly type: 'userChangePassword'; readonly name: string; readonly passwordHash: string }
  | { readonly type: 'userGrantRole'; readonly name: string; readonly role: string }
  | { readonly type: 'userRevokeRole'; readonly name: string; readonly role: string }
  | { readonly type: 'roleAdd'; readonly name: string }
  | { readonly type: 'roleDelete'; readonly name: string }
  | { readonly type: 'roleGrantPermission'; readonly name: string; readonly permission: Permission }
  | { readonly type: 'roleRevokePermission'; readonly name: string; readonly key: Uint8Array; readonly rangeEnd: Uint8Array }
  | {
      readonly type: 'authenticate';
      readonly name: string;
      /** The auth revision the password was checked at; the token is issued only if nothing changed since. */
      readonly checkedRevision: number;
      /**
       * The random part of the token, chosen by the proposing gateway: every
       * member assigns `<tokenPrefix>.<raft index>` to the user when it
       * applies the command, so the token is valid on every member (etcd's
       * simple tokens). Empty: no token is assigned.
       */
      readonly tokenPrefix: string;
    };

/** What applying an auth command answers. */
export interface AuthResult {
  /** The range's current MVCC revision (the response header's revision). */
  readonly revision: number;
  /** The auth revision after the command. */
  readonly authRevision: number;
  /** The raft index the command applied at (an Authenticate's token names it). */
  readonly index: number;
  /** Authenticate: the token assigned to the user. */
  readonly token?: string;
}

/** The name of the user and of the role that hold every permission. */
export const ROOT = 'root';

/** A new, disabled auth store. */
export function emptyAuthState(): AuthState {
  return { enabled: false, revision: 1, users: new Map(), roles: new Map() };
}
