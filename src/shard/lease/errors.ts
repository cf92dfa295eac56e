/**
 * Typed lease errors. Like the MVCC errors they carry a stable `code`, the
 * gRPC status and, as `message`, etcd's exact wire text (clients match by
 * text). An unknown lease is the MVCC layer's LeaseNotFoundError, shared with
 * a Put naming one.
 */

/** Base class of lease errors: deterministic results of a lease command. */
export abstract class LeaseError extends Error {
  abstract readonly code: 'LEASE_EXISTS' | 'LEASE_TTL_TOO_LARGE';
  /** gRPC status code (numeric). */
  abstract readonly grpcCode: number;
}

/** A grant naming an id that is in use. */
export class LeaseExistsError extends LeaseError {
  override readonly name = 'LeaseExistsError';
  readonly code = 'LEASE_EXISTS';
  readonly grpcCode = 9; // FailedPrecondition
  constructor(readonly lease: bigint) {
    super('etcdserver: lease already exists');
  }
}

/** A grant above LEASE_TTL_SECONDS_MAX. */
export class LeaseTtlTooLargeError extends LeaseError {
  override readonly name = 'LeaseTtlTooLargeError';
  readonly code = 'LEASE_TTL_TOO_LARGE';
  readonly grpcCode = 11; // OutOfRange
  constructor(readonly ttlSeconds: number) {
    super('etcdserver: too large lease TTL');
  }
}
