/**
 * Typed MVCC errors. Each carries a stable `code`, the gRPC status it maps to,
 * and as `message` the exact text etcd puts on the wire: etcd clients match
 * errors by message string, so the texts are part of the API (see
 * /work/shared/reference/etcd-api.md §3).
 */

/** gRPC status codes used by MVCC errors (numeric values from grpc's spec). */
export const GrpcCode = {
  InvalidArgument: 3,
  NotFound: 5,
  FailedPrecondition: 9,
  OutOfRange: 11,
  Internal: 13,
} as const;

/** One of the gRPC status codes above. */
export type GrpcCode = (typeof GrpcCode)[keyof typeof GrpcCode];

/** Stable identifiers of every MVCC error. */
export type MvccErrorCode =
  | 'COMPACTED'
  | 'FUTURE_REVISION'
  | 'KEY_NOT_PROVIDED'
  | 'KEY_NOT_FOUND'
  | 'VALUE_PROVIDED'
  | 'LEASE_PROVIDED'
  | 'DUPLICATE_KEY'
  | 'LEASE_NOT_FOUND'
  | 'REVISION_NOT_INCREASING'
  | 'PLAN_PENDING';

/** Base class: `message` is the exact etcd wire text, `grpcCode` its status. */
export abstract class MvccError extends Error {
  abstract readonly code: MvccErrorCode;
  abstract readonly grpcCode: GrpcCode;
}

/** A read, watch or compaction asked for a revision below the compacted one. */
export class CompactedError extends MvccError {
  override readonly name = 'CompactedError';
  readonly code = 'COMPACTED';
  readonly grpcCode = GrpcCode.OutOfRange;
  /** etcd's in-process text, without the `etcdserver: ` wire prefix. */
  static readonly mvccMessage = 'mvcc: required revision has been compacted';
  constructor(readonly compactRevision: number) {
    super(`etcdserver: ${CompactedError.mvccMessage}`);
  }
}

/** A read or compaction asked for a revision above the current one. */
export class FutureRevisionError extends MvccError {
  override readonly name = 'FutureRevisionError';
  readonly code = 'FUTURE_REVISION';
  readonly grpcCode = GrpcCode.OutOfRange;
  /** etcd's in-process text, without the `etcdserver: ` wire prefix. */
  static readonly mvccMessage = 'mvcc: required revision is a future revision';
  constructor(readonly currentRevision: number) {
    super(`etcdserver: ${FutureRevisionError.mvccMessage}`);
  }
}

/** An empty key in a request, compare or op. */
export class KeyNotProvidedError extends MvccError {
  override readonly name = 'KeyNotProvidedError';
  readonly code = 'KEY_NOT_PROVIDED';
  readonly grpcCode = GrpcCode.InvalidArgument;
  constructor() {
    super('etcdserver: key is not provided');
  }
}

/** A put with ignore_value/ignore_lease on a missing key (or an empty RequestOp). */
export class KeyNotFoundError extends MvccError {
  override readonly name = 'KeyNotFoundError';
  readonly code = 'KEY_NOT_FOUND';
  readonly grpcCode = GrpcCode.InvalidArgument;
  constructor() {
    super('etcdserver: key not found');
  }
}

/** A put with ignore_value and a non-empty value. */
export class ValueProvidedError extends MvccError {
  override readonly name = 'ValueProvidedError';
  readonly code = 'VALUE_PROVIDED';
  readonly grpcCode = GrpcCode.InvalidArgument;
  constructor() {
    super('etcdserver: value is provided');
  }
}

/** A put with ignore_lease and a non-zero lease. */
export class LeaseProvidedError extends MvccError {
  override readonly name = 'LeaseProvidedError';
  readonly code = 'LEASE_PROVIDED';
  readonly grpcCode = GrpcCode.InvalidArgument;
  constructor() {
    super('etcdserver: lease is provided');
  }
}

/** A txn branch writes one key twice (put/put or put inside a delete range). */
export class DuplicateKeyError extends MvccError {
  override readonly name = 'DuplicateKeyError';
  readonly code = 'DUPLICATE_KEY';
  readonly grpcCode = GrpcCode.InvalidArgument;
  constructor() {
    super('etcdserver: duplicate key given in txn request');
  }
}

/** A put names a lease the caller's lessor does not know. */
export class LeaseNotFoundError extends MvccError {
  override readonly name = 'LeaseNotFoundError';
  readonly code = 'LEASE_NOT_FOUND';
  readonly grpcCode = GrpcCode.NotFound;
  constructor(readonly lease: bigint) {
    super('etcdserver: requested lease not found');
  }
}

/**
 * The caller handed in a write revision that is not above the current one.
 * This is a bug in the layer above (the revision source or apply loop), not
 * a client error, hence Internal.
 */
export class RevisionNotIncreasingError extends MvccError {
  override readonly name = 'RevisionNotIncreasingError';
  readonly code = 'REVISION_NOT_INCREASING';
  readonly grpcCode = GrpcCode.Internal;
  constructor(
    readonly revision: number,
    readonly currentRevision: number,
  ) {
    super(`mvcc: write revision ${revision} is not above current revision ${currentRevision}`);
  }
}

/**
 * A write was planned while another plan was neither committed nor discarded:
 * the apply loop must run plan → engine write → commit one at a time.
 */
export class PlanPendingError extends MvccError {
  override readonly name = 'PlanPendingError';
  readonly code = 'PLAN_PENDING';
  readonly grpcCode = GrpcCode.Internal;
  constructor() {
    super('mvcc: a write plan is pending; commit or discard it first');
  }
}
