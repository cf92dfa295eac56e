/**
 * Enforcement of etcd's auth at the gateway (etcd's AuthInfoFromCtx plus the
 * checks of etcdserver/v3_server.go, apply_auth.go and v3rpc/maintenance.go).
 * Every handler asks the guard before it reads or proposes; the guard reads
 * the auth store of range 1's local replica and the token in the call's
 * metadata (`token`; the JSON gateway maps `Authorization` to it).
 *
 * A write is checked here at auth revision R and carries R in its raft
 * command; apply refuses it with "revision of auth store is old" if the auth
 * store moved before it applied (src/shard/auth/apply-auth.ts), so a
 * permission revoked in between never lets it through.
 *
 * Which RPC needs what (etcd 3.4):
 * - Range: READ on its span. Put: WRITE on the key, READ too with prev_kv.
 *   DeleteRange: WRITE on its span, READ too with prev_kv. Txn: READ on every
 *   compare and range op, WRITE (and READ with prev_kv) on every put and
 *   delete, nested txns included. Compact: a valid token only.
 * - Watch: READ on the watched span ({@link AuthGuard.checkWatch}).
 * - LeaseRevoke: WRITE on every key attached to the lease, read on the lease
 *   range's leader just before the revoke is proposed
 *   ({@link AuthGuard.checkLeaseRevoke}); a lease without keys needs nothing.
 * - Auth admin RPCs, UserList, RoleList: the root role; UserGet of oneself
 *   and RoleGet of a role one holds are allowed too.
 * - Defragment, HashKV, Alarm (and Snapshot, Hash, MoveLeader once they
 *   exist): the root role, refused with etcd's raw `auth: ...` texts and
 *   gRPC Unknown, exactly as etcd's maintenance server answers.
 * - Status, MemberList, AuthStatus, Authenticate: nothing.
 */
import type * as grpc from '@grpc/grpc-js';
import {
  AuthError,
  checkAdmin,
  checkKeyAccess,
  type AccessKind,
  type AuthState,
  type Caller,
} from '../shard/auth/index.js';
import { RangeNotInitializedError } from '../shard/replica/index.js';
import { EtcdError, GrpcStatus } from './errors.js';
import type { DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from './messages.js';
import type { RangeRouter, RangeTarget } from './router.js';
import type { SimpleTokenStore } from './auth-tokens.js';
import { TLS_COMMON_NAME_METADATA_KEY } from './tls.js';

/** The range whose replicated state holds the auth store (until the placement driver holds it). */
export const AUTH_RANGE_ID = 1;
/** gRPC metadata key of the auth token (etcd's rpctypes.TokenFieldNameGRPC). */
export const TOKEN_METADATA_KEY = 'token';

/** A key span an RPC touches, with the access it needs. */
export interface KeyAccess {
  readonly key: Uint8Array;
  readonly rangeEnd: Uint8Array | undefined;
  readonly kind: AccessKind;
}

/** The auth checks every service handler runs before reading or proposing. */
export class AuthGuard {
  constructor(
    private readonly router: RangeRouter,
    /** The simple tokens this gateway issued. */
    readonly tokens: SimpleTokenStore,
  ) {}

  /** Where the auth store lives: range {@link AUTH_RANGE_ID} (the node's first range if it has no range 1). */
  target(): RangeTarget {
    const ranges = this.router.ranges();
    const t = ranges.find((r) => r.rangeId === AUTH_RANGE_ID) ?? ranges[0];
    if (t === undefined) throw new RangeNotInitializedError(AUTH_RANGE_ID);
    return t;
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
   * check was made at, for the write's raft command to carry.
   */
  checkKeys(metadata: grpc.Metadata, accesses: Iterable<KeyAccess>): number {
    const state = this.state();
    const caller = this.caller(metadata, state);
    for (const a of accesses) checkKeyAccess(state, caller, a.key, a.rangeEnd, a.kind);
    return state.revision;
  }

  /** Range: READ on its span. */
  checkRange(metadata: grpc.Metadata, req: RangeRequest): number {
    return this.checkKeys(metadata, [{ key: req.key, rangeEnd: req.range_end, kind: 'read' }]);
  }

  /** Put: WRITE on the key, plus READ with prev_kv. */
  checkPut(metadata: grpc.Metadata, req: PutRequest): number {
    return this.checkKeys(metadata, putAccess(req));
  }

  /** DeleteRange: WRITE on the span, plus READ with prev_kv. */
  checkDeleteRange(metadata: grpc.Metadata, req: DeleteRangeRequest): number {
    return this.checkKeys(metadata, deleteAccess(req));
  }

  /** Txn: every compare and op, recursively. */
  checkTxn(metadata: grpc.Metadata, req: TxnRequest): number {
    return this.checkKeys(metadata, txnAccess(req));
  }

  /** Watch: READ on the watched span. A refused watch is created and cancelled (etcd). */
  checkWatch(metadata: grpc.Metadata, key: Uint8Array, rangeEnd: Uint8Array | undefined): void {
    this.checkKeys(metadata, [{ key, rangeEnd, kind: 'read' }]);
  }

  /**
   * LeaseRevoke: WRITE on every key attached to the lease (etcd's
   * checkLeasePuts; root may always). Without a token and with keys
   * attached: "user name is empty", as etcd.
   */
  checkLeaseRevoke(metadata: grpc.Metadata, attachedKeys: readonly Uint8Array[]): number {
    return this.checkKeys(metadata, attachedKeys.map((key) => ({ key, rangeEnd: undefined, kind: 'write' as const })));
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
    try {
      this.checkAdmin(metadata);
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      throw new EtcdError('UNKNOWN', err.message.replace(/^etcdserver: /, 'auth: '), GrpcStatus.UNKNOWN, { cause: err });
    }
  }
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
