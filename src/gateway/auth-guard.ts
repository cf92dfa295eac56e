/**
 * Enforcement of etcd's auth at the gateway (etcd's AuthInfoFromCtx plus the
 * checks of etcdserver/v3_server.go, apply_auth.go and v3rpc/maintenance.go).
 * Every handler asks the guard before it reads or proposes; the guard reads
 * the auth store of range 1's local replica and the token in the call's
 * metadata (`token`; the JSON gateway maps `Authorization` to it).
 *
 * A write is checked here at auth revision R and carries R and the caller's
 * user name in its raft command; apply refuses it with "revision of auth
 * store is old" if the auth store moved before it applied
 * (src/shard/auth/apply-auth.ts), so a permission revoked in between never
 * lets it through, and checks there what depends on replicated state (the
 * keys attached to a lease).
 *
 * Tokens: the guard follows the auth range's local replica and keeps its
 * token store as the replica applies auth commands (an Authenticate assigns
 * its token, a user deleted or with a new password loses its tokens, auth
 * disabled drops them all), so every member knows every token, as etcd's
 * do. A call whose token this member has not applied yet (it names a raft
 * index above the local applied index: issued a moment ago elsewhere) waits
 * for it, bounded by {@link TOKEN_APPLY_WAIT_MS} ({@link withAppliedTokens}).
 *
 * Which RPC needs what (etcd 3.4):
 * - Range: READ on its span. Put: WRITE on the key, READ too with prev_kv.
 *   DeleteRange: WRITE on its span, READ too with prev_kv. Txn: READ on every
 *   compare and range op, WRITE (and READ with prev_kv) on every put and
 *   delete, nested txns included. Compact: a valid token only.
 * - Watch: READ on the watched span ({@link AuthGuard.checkWatch}).
 * - LeaseRevoke, and Put with a lease: WRITE on every key attached to the
 *   lease, checked at apply against the attachments of that moment (the
 *   command carries the caller, {@link AuthGuard.stampLeaseRevoke}); a lease
 *   without keys needs nothing.
 * - Auth admin RPCs, UserList, RoleList: the root role; UserGet of oneself
 *   and RoleGet of a role one holds are allowed too.
 * - Defragment, HashKV (and Snapshot, Hash, MoveLeader once they exist): the
 *   root role, refused with etcd's raw `auth: ...` texts and gRPC Unknown,
 *   exactly as etcd's maintenance server answers.
 * - Alarm (every action): a valid token or none, refused as the maintenance
 *   RPCs are (etcd 3.4.23 checks no permission for it).
 * - LeaseGrant: a valid token or none (etcd refuses every raft request
 *   that carries an invalid token). KeepAlive, TimeToLive, Leases: nothing.
 * - Status, MemberList, AuthStatus, Authenticate: nothing.
 */
import type * as grpc from '@grpc/grpc-js';
import {
  AuthError,
  checkAdmin,
  checkKeyAccess,
  type AccessKind,
  type AuthRequest,
  type AuthResult,
  type AuthState,
  type Caller,
} from '../shard/auth/index.js';
import { RangeNotInitializedError, type Replica } from '../shard/replica/index.js';
import { isStreamHandler, type ServiceHandlers } from './context.js';
import { EtcdError, GrpcStatus } from './errors.js';
import type { DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from './messages.js';
import type { RangeRouter, RangeTarget } from './router.js';
import type { SimpleTokenStore } from './auth-tokens.js';
import { TLS_COMMON_NAME_METADATA_KEY } from './tls.js';

/** The range whose replicated state holds the auth store (until the placement driver holds it). */
export const AUTH_RANGE_ID = 1;
/** gRPC metadata key of the auth token (etcd's rpctypes.TokenFieldNameGRPC). */
export const TOKEN_METADATA_KEY = 'token';

/**
 * Longest a call waits for this member to apply the Authenticate its token
 * names (issued on another member a moment ago); after it, the token is
 * refused as unknown. Bounds the delay a made-up token with a large index
 * causes too.
 */
export const TOKEN_APPLY_WAIT_MS = 2_000;
/** Most calls waiting for a token at once; more are answered at once. */
export const TOKEN_WAITERS_MAX = 10_000;

/** What a write's raft command carries of its auth check (RequestOptions' fields). */
export interface AuthStamp {
  /** The auth revision the check was made at. */
  readonly authRevision: number;
  /** The caller's user name ('' without one). */
  readonly authUser: string;
}

/** A key span an RPC touches, with the access it needs. */
export interface KeyAccess {
  readonly key: Uint8Array;
  readonly rangeEnd: Uint8Array | undefined;
  readonly kind: AccessKind;
}

/** The auth checks every service handler runs before reading or proposing. */
export class AuthGuard {
  /** The replica whose applied auth commands the token store follows. */
  private followed: Replica | undefined;
  private unfollow: (() => void) | undefined;
  /** Calls waiting for a token to be applied here, by token. */
  private readonly tokenWaiters = new Map<string, Set<() => void>>();
  private waiting = 0;

  constructor(
    private readonly router: RangeRouter,
    /** The simple tokens valid on this member (assigned as the auth range's replica applies Authenticates). */
    readonly tokens: SimpleTokenStore,
  ) {
    try {
      this.target();
    } catch (err) {
      // No range yet (a joining member): followed on first use.
      if (!(err instanceof RangeNotInitializedError)) throw err;
    }
  }

  /** Where the auth store lives: range {@link AUTH_RANGE_ID} (the node's first range if it has no range 1). */
  target(): RangeTarget {
    const t = this.router.rangeTarget?.(AUTH_RANGE_ID) ?? this.anyTarget();
    if (t === undefined) throw new RangeNotInitializedError(AUTH_RANGE_ID);
    if (t.replica !== this.followed) this.follow(t.replica);
    return t;
  }

  /** Range {@link AUTH_RANGE_ID} or else the first range, from the router's whole listing. */
  private anyTarget(): RangeTarget | undefined {
    const ranges = this.router.ranges();
    return ranges.find((r) => r.rangeId === AUTH_RANGE_ID) ?? ranges[0];
  }

  private follow(replica: Replica): void {
    this.unfollow?.();
    this.followed = replica;
    this.unfollow = replica.onAuthApplied((req, result) => this.applied(req, result));
  }

  /** etcd's token provider at apply: assign on Authenticate, invalidate on user delete / password change, drop all on disable. */
  private applied(req: AuthRequest, result: AuthResult): void {
    switch (req.type) {
      case 'authenticate':
        if (result.token === undefined) return;
        this.tokens.assign(result.token, req.name);
        for (const w of [...(this.tokenWaiters.get(result.token) ?? [])]) w();
        return;
      case 'userDelete':
      case 'userChangePassword':
        this.tokens.invalidateUser(req.name);
        return;
      case 'disable':
        this.tokens.clear();
        return;
      default:
        return;
    }
  }

  /**
   * Waits until the call's token is known here if it names an Authenticate
   * this member has not applied yet (see the module comment); returns at
   * once otherwise. Never throws: the checks that follow answer for the token.
   */
  awaitToken(metadata: grpc.Metadata, signal?: AbortSignal): Promise<void> {
    return this.tokenWait({ metadata, signal }) ?? Promise.resolve();
  }

  /**
   * {@link awaitToken} without a promise when there is nothing to wait for
   * (the common case: no token, or one known here), so the per-call wrapper
   * of {@link withAppliedTokens} costs no extra turn. The call's signal is
   * read only when there is something to wait for (it may be made on first use).
   */
  tokenWait(call: { readonly metadata: grpc.Metadata; readonly signal?: AbortSignal | undefined }): Promise<void> | undefined {
    const value = call.metadata.get(TOKEN_METADATA_KEY)[0];
    if (value === undefined) return undefined;
    const token = String(value);
    const index = tokenIndex(token);
    if (index === undefined || this.tokens.has(token) || this.waiting >= TOKEN_WAITERS_MAX) return undefined;
    let replica: Replica;
    try {
      replica = this.target().replica;
    } catch {
      return undefined;
    }
    if (replica.appliedIndex() >= index) return undefined;
    const signal = call.signal;
    if (signal?.aborted === true) return undefined;
    this.waiting++;
    return new Promise<void>((resolve) => {
      const waiters = this.tokenWaiters.get(token) ?? new Set<() => void>();
      this.tokenWaiters.set(token, waiters);
      let settled = false;
      // Runs once: on the token's assignment, the time limit or the call's end.
      const done = (): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        waiters.delete(done);
        if (waiters.size === 0 && this.tokenWaiters.get(token) === waiters) this.tokenWaiters.delete(token);
        this.waiting--;
        resolve();
      };
      const timer = setTimeout(done, TOKEN_APPLY_WAIT_MS);
      waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** The auth store as the local replica of its range has applied it. */
  state(): AuthState {
    return this.target().replica.authState;
  }

  /**
   * etcd's AuthInfoFromCtx: the caller named by the call's token, at the
   * current auth revision; without a token, the CN of the connection's
   * verified client certificate (etcd's AuthInfoFromTLS, gRPC only);
   * undefined when auth is disabled or neither is there. Throws
   * INVALID_AUTH_TOKEN for an unknown or expired token.
   */
  caller(metadata: grpc.Metadata, state: AuthState = this.state()): Caller | undefined {
    if (!state.enabled) return undefined;
    const values = metadata.get(TOKEN_METADATA_KEY);
    if (values.length === 0) {
      const cn = metadata.get(TLS_COMMON_NAME_METADATA_KEY)[0];
      return cn === undefined ? undefined : { user: String(cn), revision: state.revision };
    }
    const user = this.tokens.lookup(String(values[0]));
    if (user === undefined) throw new AuthError('INVALID_AUTH_TOKEN');
    return { user, revision: state.revision };
  }

  /**
   * Checks the caller's access to every span; returns the auth revision the
   * check was made at and the caller, for the write's raft command to carry.
   */
  checkKeys(metadata: grpc.Metadata, accesses: Iterable<KeyAccess>): AuthStamp {
    const state = this.state();
    // Auth off: no caller and every access allowed, so the accesses (a txn's walk) are not listed.
    if (!state.enabled) return { authRevision: state.revision, authUser: '' };
    const caller = this.caller(metadata, state);
    for (const a of accesses) checkKeyAccess(state, caller, a.key, a.rangeEnd, a.kind);
    return { authRevision: state.revision, authUser: caller?.user ?? '' };
  }

  /** Range: READ on its span. */
  checkRange(metadata: grpc.Metadata, req: RangeRequest): AuthStamp {
    return this.checkKeys(metadata, [{ key: req.key, rangeEnd: req.range_end, kind: 'read' }]);
  }

  /** Put: WRITE on the key, plus READ with prev_kv; with a lease, apply checks the lease's keys (etcd's checkLeasePuts). */
  checkPut(metadata: grpc.Metadata, req: PutRequest): AuthStamp {
    return this.checkKeys(metadata, putAccess(req));
  }

  /** DeleteRange: WRITE on the span, plus READ with prev_kv. */
  checkDeleteRange(metadata: grpc.Metadata, req: DeleteRangeRequest): AuthStamp {
    return this.checkKeys(metadata, deleteAccess(req));
  }

  /** Txn: every compare and op, recursively. */
  checkTxn(metadata: grpc.Metadata, req: TxnRequest): AuthStamp {
    return this.checkKeys(metadata, txnAccess(req));
  }

  /** Watch: READ on the watched span. A refused watch is created and cancelled (etcd). */
  checkWatch(metadata: grpc.Metadata, key: Uint8Array, rangeEnd: Uint8Array | undefined): void {
    this.checkKeys(metadata, [{ key, rangeEnd, kind: 'read' }]);
  }

  /**
   * LeaseRevoke: an invalid token is refused here; WRITE on every key
   * attached to the lease is checked at apply against the keys attached then
   * (etcd's checkLeasePuts in its auth applier; root may always; without a
   * token and with keys attached: "user name is empty"), for the caller this
   * stamp names.
   */
  stampLeaseRevoke(metadata: grpc.Metadata): AuthStamp {
    return this.checkKeys(metadata, []);
  }

  /** Only a token check (Compact: etcd needs no permission, but refuses an invalid token). */
  checkToken(metadata: grpc.Metadata): void {
    this.caller(metadata);
  }

  /** Auth management: the root role (etcd's IsAdminPermitted). Returns the auth revision checked at. */
  checkAdmin(metadata: grpc.Metadata): number {
    const state = this.state();
    checkAdmin(state, this.caller(metadata, state));
    return state.revision;
  }

  /**
   * Maintenance RPCs that need the root role. etcd's maintenance server
   * returns the auth package's raw errors (`auth: permission denied`, ...)
   * without mapping them, so clients see gRPC Unknown with those texts.
   */
  checkMaintenanceAdmin(metadata: grpc.Metadata): void {
    asMaintenanceError(() => this.checkAdmin(metadata));
  }

  /** Maintenance RPCs that need no permission but refuse an invalid token (Alarm), answered as {@link checkMaintenanceAdmin}. */
  checkMaintenanceToken(metadata: grpc.Metadata): void {
    asMaintenanceError(() => this.caller(metadata));
  }
}

/** Runs an auth check, turning its refusal into the maintenance server's raw `auth: ...` text with gRPC Unknown. */
function asMaintenanceError(check: () => unknown): void {
  try {
    check();
  } catch (err) {
    if (!(err instanceof AuthError)) throw err;
    throw new EtcdError('UNKNOWN', err.message.replace(/^etcdserver: /, 'auth: '), GrpcStatus.UNKNOWN, { cause: err });
  }
}

/** The raft index a simple token names (`<letters>.<index>`), if it names one. */
function tokenIndex(token: string): number | undefined {
  const dot = token.lastIndexOf('.');
  if (dot < 0) return undefined;
  const digits = token.slice(dot + 1);
  if (!/^[1-9][0-9]{0,15}$/.test(digits)) return undefined;
  const n = Number(digits);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * Every handler of `services` waits first for its call's token to be applied
 * on this member ({@link AuthGuard.awaitToken}): a client that authenticated
 * through another member, or through this one while the Authenticate ran on
 * the leader's node, is not refused for a token this member is about to learn.
 */
export function withAppliedTokens<K extends string>(services: ReadonlyMap<K, ServiceHandlers>, guard: AuthGuard): Map<K, ServiceHandlers> {
  const out = new Map<K, ServiceHandlers>();
  for (const [service, handlers] of services) {
    const wrapped: Record<string, ServiceHandlers[string]> = {};
    for (const [method, h] of Object.entries(handlers)) {
      wrapped[method] = isStreamHandler(h)
        ? {
            streaming: h.streaming,
            run: (stream) => {
              const wait = guard.tokenWait(stream.call);
              return wait === undefined ? h.run(stream) : wait.then(() => h.run(stream));
            },
          }
        : (request, call) => {
            const wait = guard.tokenWait(call);
            return wait === undefined ? h(request, call) : wait.then(() => h(request, call));
          };
    }
    out.set(service, wrapped);
  }
  return out;
}

function putAccess(req: PutRequest): KeyAccess[] {
  const a: KeyAccess[] = [{ key: req.key, rangeEnd: undefined, kind: 'write' }];
  if (req.prev_kv) a.push({ key: req.key, rangeEnd: undefined, kind: 'read' });
  return a;
}

function deleteAccess(req: DeleteRangeRequest): KeyAccess[] {
  const a: KeyAccess[] = [{ key: req.key, rangeEnd: req.range_end, kind: 'write' }];
  if (req.prev_kv) a.push({ key: req.key, rangeEnd: req.range_end, kind: 'read' });
  return a;
}

function* txnAccess(req: TxnRequest): Generator<KeyAccess> {
  for (const c of req.compare ?? []) yield { key: c.key, rangeEnd: c.range_end, kind: 'read' };
  for (const op of [...(req.success ?? []), ...(req.failure ?? [])]) yield* opAccess(op);
}

function* opAccess(op: RequestOp): Generator<KeyAccess> {
  if (op.request_range !== undefined) yield { key: op.request_range.key, rangeEnd: op.request_range.range_end, kind: 'read' };
  else if (op.request_put !== undefined) yield* putAccess(op.request_put);
  else if (op.request_delete_range !== undefined) yield* deleteAccess(op.request_delete_range);
  else if (op.request_txn !== undefined) yield* txnAccess(op.request_txn);
}
