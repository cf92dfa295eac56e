/**
 * etcdserverpb.Auth: AuthEnable/Disable/Status, Authenticate, and the user
 * and role RPCs (docs/auth.md). Mutations are raft commands on range 1
 * (src/shard/auth); reads (UserGet, RoleList, AuthStatus, ...) answer from
 * the local replica's applied auth store. Passwords are hashed with bcrypt
 * here, before proposing, so apply stays cheap and deterministic.
 */
import bcrypt from 'bcryptjs';
import {
  AuthError,
  checkAdmin,
  compareStrings,
  ROOT,
  userHasRole,
  type AuthRequest,
  type AuthResult,
  type Permission,
  type PermissionType,
} from '../shard/auth/index.js';
import type { Reply, RequestId } from '../shard/replica/index.js';
import type { AuthGuard } from './auth-guard.js';
import { type CallInfo, type GatewayContext, nodeHeader, responseHeader, type ServiceHandlers } from './context.js';
import { EtcdError } from './errors.js';
import { RequestIds } from './kv-service.js';
import type { EtcdMessage } from './proto.js';
import { routed, routeOptionsOf, type RangeRouter } from './router.js';

/** bcrypt cost of stored passwords (etcd's default --bcrypt-cost). */
export const BCRYPT_COST = 10;
/** Attempts of an Authenticate whose password check raced an auth change (etcd retries the same way). */
export const AUTHENTICATE_ATTEMPTS_MAX = 3;
/** authpb.Permission.Type by wire number. */
const PERM_TYPES: readonly PermissionType[] = ['READ', 'WRITE', 'READWRITE'];

/** The Auth service's handlers; `guard` holds the token store and the checks. */
export function authService(ctx: GatewayContext, guard: AuthGuard): ServiceHandlers {
  const ids = new RequestIds();
  // Routes every auth command to the range holding the auth store, with the gateway's routing retries.
  const authRouter: RangeRouter = {
    route: () => guard.target(),
    ranges: () => ctx.router.ranges(),
    invalidate: (t, e) => ctx.router.invalidate(t, e),
  };

  const propose = async (req: AuthRequest, call: CallInfo, authRevision?: number, requestId: RequestId = ids.next(call)): Promise<Reply<AuthResult>> => {
    return routed(
      authRouter,
      new Uint8Array(0),
      undefined,
      (t) => t.replica.auth(req, { epoch: t.epoch, requestId, ...(authRevision === undefined ? {} : { authRevision }) }),
      routeOptionsOf(call),
    );
  };

  const header = (reply: Reply<AuthResult>): EtcdMessage => ({ header: responseHeader(ctx, reply.header.revision, reply.header.raftTerm) });

  /** An admin-only mutation: checked, proposed carrying the auth revision it was checked at. */
  const adminMutation = async (call: CallInfo, req: AuthRequest): Promise<Reply<AuthResult>> => {
    const checkedAt = guard.checkAdmin(call.metadata);
    return propose(req, call, checkedAt);
  };

  const hashOf = async (password: string, hashed: string): Promise<string> => {
    // etcd 3.5 clients may send a hash made by themselves.
    if (hashed !== '') return hashed;
    return bcrypt.hash(password, BCRYPT_COST);
  };

  const authEnable = async (_m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => header(await adminMutation(call, { type: 'enable' }));

  // Every member drops all tokens when it applies the disable (AuthGuard follows the applied auth commands).
  const authDisable = async (_m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => header(await adminMutation(call, { type: 'disable' }));

  const authStatus = async (): Promise<EtcdMessage> => {
    const state = guard.state();
    return { header: nodeHeader(ctx), enabled: state.enabled, authRevision: state.revision };
  };

  const authenticate = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
    const name = str(m['name']);
    const password = str(m['password']);
    for (let attempt = 1; ; attempt++) {
      const state = guard.state();
      if (!state.enabled) throw new AuthError('AUTH_NOT_ENABLED');
      const user = state.users.get(name);
      if (user === undefined || user.noPassword) throw new AuthError('AUTH_FAILED');
      if (!(await bcrypt.compare(password, user.passwordHash))) throw new AuthError('AUTH_FAILED');
      try {
        // Every member assigns `<prefix>.<index>` to the user when it applies this (etcd's simple tokens).
        const tokenPrefix = guard.tokens.newPrefix();
        // A retry is a new proposal: the refused one is recorded under the call's id, so that id would only replay the refusal.
        const requestId = attempt === 1 ? ids.next(call) : ids.fresh();
        const reply = await propose({ type: 'authenticate', name, checkedRevision: state.revision, tokenPrefix }, call, undefined, requestId);
        const token = reply.result.token;
        if (token === undefined) throw new Error('an applied Authenticate answered no token');
        return { ...header(reply), token };
      } catch (err) {
        // The store changed while the password was checked: check again against the new one.
        if (err instanceof AuthError && err.code === 'AUTH_OLD_REVISION' && attempt < AUTHENTICATE_ATTEMPTS_MAX) continue;
        throw err;
      }
    }
  };

  const userAdd = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
    const name = str(m['name']);
    // Cheap refusals before the (slow) hash.
    const checkedAt = guard.checkAdmin(call.metadata);
    if (name === '') throw new AuthError('USER_EMPTY');
    if (guard.state().users.has(name)) throw new AuthError('USER_ALREADY_EXIST');
    const noPassword = (m['options'] as { no_password?: boolean } | undefined)?.no_password === true;
    const passwordHash = noPassword ? '' : await hashOf(str(m['password']), str(m['hashedPassword']));
    return header(await propose({ type: 'userAdd', name, passwordHash, noPassword }, call, checkedAt));
  };

  const userGet = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
    const name = str(m['name']);
    const state = guard.state();
    const caller = guard.caller(call.metadata, state);
    // etcd: admins, or a user asking about itself.
    if (caller?.user !== name) checkAdmin(state, caller);
    const user = state.users.get(name);
    if (user === undefined) throw new AuthError('USER_NOT_FOUND');
    return { header: nodeHeader(ctx), roles: [...user.roles] };
  };

  const userList = async (_m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
    guard.checkAdmin(call.metadata);
    return { header: nodeHeader(ctx), users: [...guard.state().users.keys()].sort(compareStrings) };
  };

  const userDelete = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
    const name = str(m['name']);
    // Every member drops the user's tokens when it applies the delete.
    return header(await adminMutation(call, { type: 'userDelete', name }));
  };

  const userChangePassword = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
    const name = str(m['name']);
    const checkedAt = guard.checkAdmin(call.metadata);
    if (!guard.state().users.has(name)) throw new AuthError('USER_NOT_FOUND');
    const passwordHash = await hashOf(str(m['password']), str(m['hashedPassword']));
    // Every member drops the user's tokens when it applies the change.
    return header(await propose({ type: 'userChangePassword', name, passwordHash }, call, checkedAt));
  };

  const userGrantRole = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> =>
    header(await adminMutation(call, { type: 'userGrantRole', name: str(m['user']), role: str(m['role']) }));

  const userRevokeRole = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> =>
    header(await adminMutation(call, { type: 'userRevokeRole', name: str(m['name']), role: str(m['role']) }));

  const roleAdd = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> =>
    header(await adminMutation(call, { type: 'roleAdd', name: str(m['name']) }));

  const roleGet = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
    const name = str(m['role']);
    const state = guard.state();
    const caller = guard.caller(call.metadata, state);
    // etcd: admins, or a user holding the role.
    if (!userHasRole(state, caller, name)) checkAdmin(state, caller);
    const role = state.roles.get(name);
    if (role === undefined) throw new AuthError('ROLE_NOT_FOUND');
    // etcd 3.4 lists no permissions for the root role: it holds them all implicitly.
    const perm = name === ROOT ? [] : role.permissions.map(permissionToWire);
    return { header: nodeHeader(ctx), perm };
  };

  const roleList = async (_m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
    guard.checkAdmin(call.metadata);
    return { header: nodeHeader(ctx), roles: [...guard.state().roles.keys()].sort(compareStrings) };
  };

  const roleDelete = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> =>
    header(await adminMutation(call, { type: 'roleDelete', name: str(m['role']) }));

  const roleGrantPermission = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
    const permission = permissionFromWire(m['perm']);
    return header(await adminMutation(call, { type: 'roleGrantPermission', name: str(m['name']), permission }));
  };

  const roleRevokePermission = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> =>
    header(
      await adminMutation(call, {
        type: 'roleRevokePermission',
        name: str(m['role']),
        key: buf(m['key']),
        rangeEnd: buf(m['range_end']),
      }),
    );

  return {
    AuthEnable: authEnable,
    AuthDisable: authDisable,
    AuthStatus: authStatus,
    Authenticate: authenticate,
    UserAdd: userAdd,
    UserGet: userGet,
    UserList: userList,
    UserDelete: userDelete,
    UserChangePassword: userChangePassword,
    UserGrantRole: userGrantRole,
    UserRevokeRole: userRevokeRole,
    RoleAdd: roleAdd,
    RoleGet: roleGet,
    RoleList: roleList,
    RoleDelete: roleDelete,
    RoleGrantPermission: roleGrantPermission,
    RoleRevokePermission: roleRevokePermission,
  };
}

/** A request's authpb.Permission; etcd 3.5 refuses a missing one with "permission not given". */
function permissionFromWire(v: unknown): Permission {
  if (typeof v !== 'object' || v === null) throw EtcdError.of('PERMISSION_NOT_GIVEN');
  const p = v as { permType?: number; key?: Uint8Array; range_end?: Uint8Array };
  const type = PERM_TYPES[p.permType ?? 0];
  if (type === undefined) throw EtcdError.of('PERMISSION_NOT_GIVEN');
  return { type, key: buf(p.key), rangeEnd: buf(p.range_end) };
}

function permissionToWire(p: Permission): EtcdMessage {
  return { permType: PERM_TYPES.indexOf(p.type), key: Buffer.from(p.key), range_end: Buffer.from(p.rangeEnd) };
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function buf(v: unknown): Uint8Array {
  return v instanceof Uint8Array ? v : new Uint8Array(0);
}
