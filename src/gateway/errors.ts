/**
 * etcd's client-visible errors (api/v3rpc/rpctypes/error.go, 3.4 and 3.5,
 * plus the 3.6 additions marked as such), and the mapping from keyspan's
 * internal errors to them.
 *
 * Clients match errors by their exact message (clientv3's errStringToError,
 * the `etcd3` npm package, Kubernetes), and clientv3 decides retry safety by
 * the gRPC code, so both are API: keep every text byte for byte.
 */
import * as grpc from '@grpc/grpc-js';
import { RaftError, ProposalDroppedError } from '../group/raft/errors.js';
import { HostError } from '../group/host/errors.js';
import { MvccError } from '../shard/mvcc/errors.js';
import { ReplicaError } from '../shard/range/errors.js';
import { AuthError } from '../shard/auth/errors.js';
import { EngineError } from '../storage/engine.js';
import { WireFormatError } from './proto.js';

/** gRPC status codes (numeric, from grpc's spec; re-exported from grpc-js). */
export const GrpcStatus = grpc.status;
/** A gRPC status code. */
export type GrpcStatus = grpc.status;

/** One row of etcd's error table. */
export interface EtcdErrorSpec {
  /** The exact wire message, `etcdserver: ` prefix included. */
  readonly message: string;
  readonly grpcCode: GrpcStatus;
  /** The rpctypes variable etcd declares it as (for cross-reading etcd's source). */
  readonly goName: string;
  /** First etcd minor version that returns it; absent for 3.4. */
  readonly since?: '3.5' | '3.6';
}

const S = grpc.status;

function spec(goName: string, grpcCode: GrpcStatus, text: string, since?: '3.5' | '3.6'): EtcdErrorSpec {
  const base = { message: `etcdserver: ${text}`, grpcCode, goName };
  return since === undefined ? base : { ...base, since };
}

/**
 * Every error etcd's gRPC API returns with a fixed text, keyed by a stable
 * keyspan code. Codes are as in etcd 3.4/3.5 (where 3.6 changed a code, the
 * 3.5 one is kept, since that is what 3.4/3.5 clients were written against).
 */
export const ETCD_ERRORS = {
  // KV request validation
  EMPTY_KEY: spec('ErrGRPCEmptyKey', S.INVALID_ARGUMENT, 'key is not provided'),
  KEY_NOT_FOUND: spec('ErrGRPCKeyNotFound', S.INVALID_ARGUMENT, 'key not found'),
  VALUE_PROVIDED: spec('ErrGRPCValueProvided', S.INVALID_ARGUMENT, 'value is provided'),
  LEASE_PROVIDED: spec('ErrGRPCLeaseProvided', S.INVALID_ARGUMENT, 'lease is provided'),
  TOO_MANY_OPS: spec('ErrGRPCTooManyOps', S.INVALID_ARGUMENT, 'too many operations in txn request'),
  DUPLICATE_KEY: spec('ErrGRPCDuplicateKey', S.INVALID_ARGUMENT, 'duplicate key given in txn request'),
  INVALID_SORT_OPTION: spec('ErrGRPCInvalidSortOption', S.INVALID_ARGUMENT, 'invalid sort option', '3.6'),
  // MVCC
  COMPACTED: spec('ErrGRPCCompacted', S.OUT_OF_RANGE, 'mvcc: required revision has been compacted'),
  FUTURE_REV: spec('ErrGRPCFutureRev', S.OUT_OF_RANGE, 'mvcc: required revision is a future revision'),
  NO_SPACE: spec('ErrGRPCNoSpace', S.RESOURCE_EXHAUSTED, 'mvcc: database space exceeded'),
  // Lease
  LEASE_NOT_FOUND: spec('ErrGRPCLeaseNotFound', S.NOT_FOUND, 'requested lease not found'),
  LEASE_EXIST: spec('ErrGRPCLeaseExist', S.FAILED_PRECONDITION, 'lease already exists'),
  LEASE_TTL_TOO_LARGE: spec('ErrGRPCLeaseTTLTooLarge', S.OUT_OF_RANGE, 'too large lease TTL'),
  // Watch
  WATCH_CANCELED: spec('ErrGRPCWatchCanceled', S.CANCELLED, 'watch canceled'),
  // Membership
  MEMBER_EXIST: spec('ErrGRPCMemberExist', S.FAILED_PRECONDITION, 'member ID already exist'),
  PEER_URL_EXIST: spec('ErrGRPCPeerURLExist', S.FAILED_PRECONDITION, 'Peer URLs already exists'),
  MEMBER_NOT_ENOUGH_STARTED: spec(
    'ErrGRPCMemberNotEnoughStarted',
    S.FAILED_PRECONDITION,
    're-configuration failed due to not enough started members',
  ),
  MEMBER_BAD_URLS: spec('ErrGRPCMemberBadURLs', S.INVALID_ARGUMENT, 'given member URLs are invalid'),
  MEMBER_NOT_FOUND: spec('ErrGRPCMemberNotFound', S.NOT_FOUND, 'member not found'),
  MEMBER_NOT_LEARNER: spec('ErrGRPCMemberNotLearner', S.FAILED_PRECONDITION, 'can only promote a learner member'),
  LEARNER_NOT_READY: spec(
    'ErrGRPCLearnerNotReady',
    S.FAILED_PRECONDITION,
    'can only promote a learner member which is in sync with leader',
  ),
  TOO_MANY_LEARNERS: spec('ErrGRPCTooManyLearners', S.FAILED_PRECONDITION, 'too many learner members in cluster'),
  CLUSTER_ID_MISMATCH: spec('ErrGRPCClusterIdMismatch', S.FAILED_PRECONDITION, 'cluster ID mismatch', '3.5'),
  // Limits
  REQUEST_TOO_LARGE: spec('ErrGRPCRequestTooLarge', S.INVALID_ARGUMENT, 'request is too large'),
  TOO_MANY_REQUESTS: spec('ErrGRPCRequestTooManyRequests', S.RESOURCE_EXHAUSTED, 'too many requests'),
  // Auth
  ROOT_USER_NOT_EXIST: spec('ErrGRPCRootUserNotExist', S.FAILED_PRECONDITION, 'root user does not exist'),
  ROOT_ROLE_NOT_EXIST: spec('ErrGRPCRootRoleNotExist', S.FAILED_PRECONDITION, 'root user does not have root role'),
  USER_ALREADY_EXIST: spec('ErrGRPCUserAlreadyExist', S.FAILED_PRECONDITION, 'user name already exists'),
  USER_EMPTY: spec('ErrGRPCUserEmpty', S.INVALID_ARGUMENT, 'user name is empty'),
  USER_NOT_FOUND: spec('ErrGRPCUserNotFound', S.FAILED_PRECONDITION, 'user name not found'),
  ROLE_ALREADY_EXIST: spec('ErrGRPCRoleAlreadyExist', S.FAILED_PRECONDITION, 'role name already exists'),
  ROLE_NOT_FOUND: spec('ErrGRPCRoleNotFound', S.FAILED_PRECONDITION, 'role name not found'),
  ROLE_EMPTY: spec('ErrGRPCRoleEmpty', S.INVALID_ARGUMENT, 'role name is empty'),
  AUTH_FAILED: spec('ErrGRPCAuthFailed', S.INVALID_ARGUMENT, 'authentication failed, invalid user ID or password'),
  PERMISSION_NOT_GIVEN: spec('ErrGRPCPermissionNotGiven', S.INVALID_ARGUMENT, 'permission not given', '3.5'),
  PERMISSION_DENIED: spec('ErrGRPCPermissionDenied', S.PERMISSION_DENIED, 'permission denied'),
  ROLE_NOT_GRANTED: spec('ErrGRPCRoleNotGranted', S.FAILED_PRECONDITION, 'role is not granted to the user'),
  PERMISSION_NOT_GRANTED: spec(
    'ErrGRPCPermissionNotGranted',
    S.FAILED_PRECONDITION,
    'permission is not granted to the role',
  ),
  AUTH_NOT_ENABLED: spec('ErrGRPCAuthNotEnabled', S.FAILED_PRECONDITION, 'authentication is not enabled'),
  INVALID_AUTH_TOKEN: spec('ErrGRPCInvalidAuthToken', S.UNAUTHENTICATED, 'invalid auth token'),
  INVALID_AUTH_MGMT: spec('ErrGRPCInvalidAuthMgmt', S.INVALID_ARGUMENT, 'invalid auth management'),
  AUTH_OLD_REVISION: spec('ErrGRPCAuthOldRevision', S.INVALID_ARGUMENT, 'revision of auth store is old'),
  // Server state
  NO_LEADER: spec('ErrGRPCNoLeader', S.UNAVAILABLE, 'no leader'),
  NOT_LEADER: spec('ErrGRPCNotLeader', S.FAILED_PRECONDITION, 'not leader'),
  LEADER_CHANGED: spec('ErrGRPCLeaderChanged', S.UNAVAILABLE, 'leader changed'),
  NOT_CAPABLE: spec('ErrGRPCNotCapable', S.UNAVAILABLE, 'not capable'),
  STOPPED: spec('ErrGRPCStopped', S.UNAVAILABLE, 'server stopped'),
  TIMEOUT: spec('ErrGRPCTimeout', S.UNAVAILABLE, 'request timed out'),
  TIMEOUT_DUE_TO_LEADER_FAIL: spec(
    'ErrGRPCTimeoutDueToLeaderFail',
    S.UNAVAILABLE,
    'request timed out, possibly due to previous leader failure',
  ),
  TIMEOUT_DUE_TO_CONNECTION_LOST: spec(
    'ErrGRPCTimeoutDueToConnectionLost',
    S.UNAVAILABLE,
    'request timed out, possibly due to connection lost',
  ),
  TIMEOUT_WAIT_APPLIED_INDEX: spec(
    'ErrGRPCTimeoutWaitAppliedIndex',
    S.UNAVAILABLE,
    'request timed out, waiting for the applied index took too long',
  ),
  UNHEALTHY: spec('ErrGRPCUnhealthy', S.UNAVAILABLE, 'unhealthy cluster'),
  CORRUPT: spec('ErrGRPCCorrupt', S.DATA_LOSS, 'corrupt cluster'),
  NOT_SUPPORTED_FOR_LEARNER: spec('ErrGPRCNotSupportedForLearner', S.UNAVAILABLE, 'rpc not supported for learner'),
  BAD_LEADER_TRANSFEREE: spec('ErrGRPCBadLeaderTransferee', S.FAILED_PRECONDITION, 'bad leader transferee'),
  // Downgrade (3.5+)
  CLUSTER_VERSION_UNAVAILABLE: spec(
    'ErrGRPCClusterVersionUnavailable',
    S.UNAVAILABLE,
    'cluster version not found during downgrade',
    '3.5',
  ),
  WRONG_DOWNGRADE_VERSION_FORMAT: spec(
    'ErrGRPCWrongDowngradeVersionFormat',
    S.INVALID_ARGUMENT,
    'wrong downgrade target version format',
    '3.5',
  ),
  INVALID_DOWNGRADE_TARGET_VERSION: spec(
    'ErrGRPCInvalidDowngradeTargetVersion',
    S.INVALID_ARGUMENT,
    'invalid downgrade target version',
    '3.5',
  ),
  DOWNGRADE_IN_PROCESS: spec(
    'ErrGRPCDowngradeInProcess',
    S.FAILED_PRECONDITION,
    'cluster has a downgrade job in progress',
    '3.5',
  ),
  NO_INFLIGHT_DOWNGRADE: spec('ErrGRPCNoInflightDowngrade', S.FAILED_PRECONDITION, 'no inflight downgrade job', '3.5'),
  // Context (3.5+; 3.4 let grpc-go produce "context canceled" itself)
  CANCELED: spec('ErrGRPCCanceled', S.CANCELLED, 'request canceled', '3.5'),
  DEADLINE_EXCEEDED: spec('ErrGRPCDeadlineExceeded', S.DEADLINE_EXCEEDED, 'context deadline exceeded', '3.5'),
} as const satisfies Record<string, EtcdErrorSpec>;

/** Stable keyspan code of an etcd error (a key of {@link ETCD_ERRORS}). */
export type EtcdErrorCode = keyof typeof ETCD_ERRORS;

/**
 * Texts etcd sends outside the rpctypes table: as `cancel_reason` of a watch
 * response, or with gRPC code Unknown (etcd's togRPCError passes unmapped
 * server errors through that way).
 */
export const ETCD_RAW_MESSAGES = {
  WATCHER_RANGE_EMPTY: 'mvcc: watcher range is empty',
  WATCHER_DUPLICATE_ID: 'mvcc: duplicate watch ID provided on the WatchStream',
  WATCHER_NOT_EXIST: 'mvcc: watcher does not exist',
  ELECTION_NOT_LEADER: 'election: not leader',
  ELECTION_NO_LEADER: 'election: no leader',
  ELECTION_MISSING_LEADER_KEY: '"leader" field must be provided',
  MUTEX_SESSION_EXPIRED: 'mutex: session is expired',
} as const;

/** An etcd error outside the rpctypes table: gRPC code Unknown with etcd's text. */
export function rawEtcdError(name: keyof typeof ETCD_RAW_MESSAGES): EtcdError {
  return new EtcdError('UNKNOWN', ETCD_RAW_MESSAGES[name], GrpcStatus.UNKNOWN);
}

/** An error as etcd returns it: a fixed message and gRPC code, plus a stable `code`. */
export class EtcdError extends Error {
  override readonly name = 'EtcdError';
  readonly grpcCode: GrpcStatus;
  /**
   * Stable code: a row of {@link ETCD_ERRORS}; `UNKNOWN` for a raw message
   * passed through with gRPC code Unknown (as etcd does); `INTERNAL` for a
   * keyspan bug; `BAD_REQUEST` for a gateway body that is not valid JSON for
   * the message (InvalidArgument, as grpc-gateway).
   */
  readonly code: EtcdErrorCode | 'UNKNOWN' | 'INTERNAL' | 'BAD_REQUEST';

  constructor(
    code: EtcdErrorCode | 'UNKNOWN' | 'INTERNAL' | 'BAD_REQUEST',
    message: string,
    grpcCode: GrpcStatus,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = code;
    this.grpcCode = grpcCode;
  }

  /** The error for a row of the table. */
  static of(code: EtcdErrorCode, options?: { cause?: unknown }): EtcdError {
    const s: EtcdErrorSpec = ETCD_ERRORS[code];
    return new EtcdError(code, s.message, s.grpcCode, options);
  }

  /** What a grpc-js handler passes to its callback or `emit('error')`. */
  toServiceError(): grpc.ServerErrorResponse {
    const err = new Error(this.message) as grpc.ServerErrorResponse;
    err.code = this.grpcCode;
    err.details = this.message;
    return err;
  }
}

const BY_MESSAGE: ReadonlyMap<string, EtcdErrorCode> = new Map(
  (Object.entries(ETCD_ERRORS) as Array<[EtcdErrorCode, EtcdErrorSpec]>).map(([code, s]) => [s.message, code]),
);

/** The table row with exactly this message (clientv3's errStringToError lookup), if any. */
export function etcdErrorCodeOfMessage(message: string): EtcdErrorCode | undefined {
  return BY_MESSAGE.get(message);
}

// ------------------------------------------------------------------ mapping

/**
 * Maps an internal error to an EtcdError, or returns undefined to pass it on.
 * Mappers run in registration order after the built-in ones.
 */
export type ErrorMapper = (err: unknown) => EtcdError | undefined;

/** Bound on registered mappers: registration is a startup act, not per request. */
const ERROR_MAPPERS_MAX = 32;
const mappers: ErrorMapper[] = [];

/**
 * Adds a mapper for errors of a module the gateway does not know (placement
 * driver, transactions, ...). Returns a function that removes it again.
 */
export function registerErrorMapper(mapper: ErrorMapper): () => void {
  if (mappers.length >= ERROR_MAPPERS_MAX) throw new RangeError(`more than ${ERROR_MAPPERS_MAX} error mappers`);
  mappers.push(mapper);
  return () => {
    const i = mappers.indexOf(mapper);
    if (i >= 0) mappers.splice(i, 1);
  };
}

function fromMvcc(err: MvccError): EtcdError {
  // MVCC errors already carry etcd's wire text and code; reuse the table's
  // stable code where the text is etcd's, so callers can switch on it.
  const code = etcdErrorCodeOfMessage(err.message);
  return new EtcdError(code ?? 'INTERNAL', err.message, err.grpcCode as GrpcStatus, { cause: err });
}

function fromReplica(err: ReplicaError): EtcdError {
  switch (err.code) {
    case 'NOT_LEADER':
    case 'EPOCH_MISMATCH':
    case 'KEY_NOT_IN_RANGE':
    case 'RANGE_NOT_FOUND':
    case 'RANGE_NOT_INITIALIZED':
    case 'REPLICA_CLOSED':
    case 'REVISION_REJECTED':
      // Routing errors are retried by the gateway; one that still reaches the
      // client means the outcome is unknown, which etcd reports as a leader change.
      return EtcdError.of('LEADER_CHANGED', { cause: err });
    case 'TOO_MANY_REQUESTS':
      return EtcdError.of('TOO_MANY_REQUESTS', { cause: err });
    case 'REQUEST_ABORTED':
      return EtcdError.of('CANCELED', { cause: err });
    case 'REQUEST_TIMEOUT':
      return EtcdError.of('TIMEOUT', { cause: err });
    case 'REQUEST_TOO_LARGE':
      return EtcdError.of('REQUEST_TOO_LARGE', { cause: err });
    case 'LEARNER_NOT_IN_SYNC':
      return EtcdError.of('LEARNER_NOT_READY', { cause: err });
    case 'SNAPSHOT_INVALID':
    case 'COMMAND_INVALID':
    case 'MEMBERSHIP_CHANGE_INVALID':
      return new EtcdError('INTERNAL', err.message, GrpcStatus.INTERNAL, { cause: err });
  }
}

function fromRaft(err: RaftError): EtcdError {
  if (err instanceof ProposalDroppedError) {
    switch (err.reason) {
      case 'noLeader':
        return EtcdError.of('NO_LEADER', { cause: err });
      case 'notLeader':
      case 'forwardingDisabled':
      case 'transferring':
      case 'removed':
        return EtcdError.of('LEADER_CHANGED', { cause: err });
      case 'uncommittedSizeExceeded':
        return EtcdError.of('TOO_MANY_REQUESTS', { cause: err });
    }
  }
  return new EtcdError('INTERNAL', err.message, GrpcStatus.INTERNAL, { cause: err });
}

function fromHost(err: HostError): EtcdError {
  switch (err.code) {
    case 'TOO_MANY_REQUESTS':
      return EtcdError.of('TOO_MANY_REQUESTS', { cause: err });
    case 'STOPPED':
      return EtcdError.of('STOPPED', { cause: err });
    case 'GROUP_NOT_FOUND':
      return EtcdError.of('LEADER_CHANGED', { cause: err });
    case 'GROUP_EXISTS':
    case 'INVALID_ARGUMENT':
      return new EtcdError('INTERNAL', err.message, GrpcStatus.INTERNAL, { cause: err });
  }
}

function builtIn(err: unknown): EtcdError | undefined {
  if (err instanceof EtcdError) return err;
  if (err instanceof MvccError) return fromMvcc(err);
  if (err instanceof ReplicaError) return fromReplica(err);
  // Auth error codes are rows of the table (src/shard/auth/errors.ts).
  if (err instanceof AuthError) return EtcdError.of(err.code, { cause: err });
  if (err instanceof RaftError) return fromRaft(err);
  if (err instanceof HostError) return fromHost(err);
  if (err instanceof EngineError) {
    // A closed engine means the node is shutting down; anything else is ours.
    return err.code === 'ENGINE_CLOSED'
      ? EtcdError.of('STOPPED', { cause: err })
      : new EtcdError('INTERNAL', err.message, GrpcStatus.INTERNAL, { cause: err });
  }
  if (err instanceof WireFormatError) {
    return new EtcdError('INTERNAL', err.message, GrpcStatus.INTERNAL, { cause: err });
  }
  return undefined;
}

/**
 * The EtcdError a client should see for `err`. Unmapped errors become gRPC
 * Unknown with their own message, as etcd's togRPCError does, so nothing is
 * swallowed; an AbortError becomes etcd's "request canceled".
 */
export function toEtcdError(err: unknown): EtcdError {
  const known = builtIn(err);
  if (known !== undefined) return known;
  for (const mapper of mappers) {
    const mapped = mapper(err);
    if (mapped !== undefined) return mapped;
  }
  if (err instanceof Error && err.name === 'AbortError') return EtcdError.of('CANCELED', { cause: err });
  const message = err instanceof Error ? err.message : String(err);
  return new EtcdError('UNKNOWN', message, GrpcStatus.UNKNOWN, { cause: err });
}
