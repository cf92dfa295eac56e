/**
 * Typed routing and replica errors (TiKV's errorpb, DESIGN property 7). Each
 * has a stable `code` and carries the data the gateway needs to recover
 * precisely: the leader hint, the current descriptor, the range's span.
 * Messages are for humans; clients of the gateway see etcd's texts, which
 * the gateway chooses (`etcdMessage` suggests one where etcd has a match).
 */
import type { RangeDescriptor } from './descriptor.js';

/** Stable identifiers of every replica error. */
export type ReplicaErrorCode =
  | 'NOT_LEADER'
  | 'EPOCH_MISMATCH'
  | 'KEY_NOT_IN_RANGE'
  | 'RANGE_NOT_FOUND'
  | 'RANGE_NOT_INITIALIZED'
  | 'TOO_MANY_REQUESTS'
  | 'REPLICA_CLOSED'
  | 'REVISION_REJECTED'
  | 'REQUEST_ABORTED'
  | 'REQUEST_TIMEOUT'
  | 'SNAPSHOT_INVALID'
  | 'COMMAND_INVALID'
  | 'MEMBERSHIP_CHANGE_INVALID'
  | 'REQUEST_TOO_LARGE'
  | 'LEARNER_NOT_IN_SYNC';

/** Base class of replica errors. */
export abstract class ReplicaError extends Error {
  abstract readonly code: ReplicaErrorCode;
  /** Whether the gateway may retry (after refreshing its routing data). */
  abstract readonly retryable: boolean;
}

/** A hint at the current leader: its raft id and node, when known. */
export interface LeaderHint {
  readonly replicaId: number;
  /** 0 when the leader's node is not in the local descriptor. */
  readonly nodeId: number;
}

/** This replica is not (or no longer) the leader; the outcome of a pending write is unknown. */
export class NotLeaderError extends ReplicaError {
  override readonly name = 'NotLeaderError';
  readonly code = 'NOT_LEADER';
  readonly retryable = true;
  /** etcd's nearest text (Unavailable). */
  static readonly etcdMessage = 'etcdserver: leader changed';
  constructor(
    readonly rangeId: number,
    /** Undefined when no leader is known. */
    readonly leaderHint: LeaderHint | undefined,
  ) {
    // No stack trace: on a follower this error steers every write to the
    // leader, and capturing the stack was most of its cost.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super(
        leaderHint === undefined
          ? `range ${rangeId}: not leader, leader unknown`
          : `range ${rangeId}: not leader, leader is replica ${leaderHint.replicaId} on node ${leaderHint.nodeId}`,
      );
    } finally {
      Error.stackTraceLimit = limit;
    }
  }
}

/** The request's epoch is not the range's; `current` is the replica's descriptor. */
export class EpochMismatchError extends ReplicaError {
  override readonly name = 'EpochMismatchError';
  readonly code = 'EPOCH_MISMATCH';
  readonly retryable = true;
  constructor(readonly current: RangeDescriptor) {
    super(
      `range ${current.rangeId}: epoch mismatch, current conf version ${current.epoch.confVersion}, span version ${current.epoch.spanVersion}`,
    );
  }
}

/** A key of the request lies outside the range's span. */
export class KeyNotInRangeError extends ReplicaError {
  override readonly name = 'KeyNotInRangeError';
  readonly code = 'KEY_NOT_IN_RANGE';
  readonly retryable = true;
  constructor(
    readonly key: Uint8Array,
    readonly rangeId: number,
    readonly start: Uint8Array,
    readonly end: Uint8Array,
  ) {
    super(`range ${rangeId}: key ${Buffer.from(key).toString('hex')} not in [${Buffer.from(start).toString('hex')}, ${end.length === 0 ? '+inf' : Buffer.from(end).toString('hex')})`);
  }
}

/** This node has no replica of the range (removed, or never created). */
export class RangeNotFoundError extends ReplicaError {
  override readonly name = 'RangeNotFoundError';
  readonly code = 'RANGE_NOT_FOUND';
  readonly retryable = true;
  constructor(readonly rangeId: number) {
    super(`range ${rangeId}: not found on this node`);
  }
}

/** The replica exists but has no data yet (waiting for its first snapshot). */
export class RangeNotInitializedError extends ReplicaError {
  override readonly name = 'RangeNotInitializedError';
  readonly code = 'RANGE_NOT_INITIALIZED';
  readonly retryable = true;
  constructor(readonly rangeId: number) {
    super(`range ${rangeId}: replica not initialized`);
  }
}

/** Too many proposals or reads pending on this replica (backpressure). */
export class TooManyRequestsError extends ReplicaError {
  override readonly name = 'TooManyRequestsError';
  readonly code = 'TOO_MANY_REQUESTS';
  readonly retryable = true;
  /** etcd's text (ResourceExhausted). */
  static readonly etcdMessage = 'etcdserver: too many requests';
  constructor(
    readonly rangeId: number,
    readonly pendingMax: number,
  ) {
    super(`range ${rangeId}: too many pending requests (max ${pendingMax})`);
  }
}

/** The replica was closed (or replaced by a snapshot) with the request pending. */
export class ReplicaClosedError extends ReplicaError {
  override readonly name = 'ReplicaClosedError';
  readonly code = 'REPLICA_CLOSED';
  readonly retryable = true;
  constructor(readonly rangeId: number) {
    super(`range ${rangeId}: replica closed`);
  }
}

/** A command carried a revision (from the TSO) at or below the range's current one. */
export class RevisionRejectedError extends ReplicaError {
  override readonly name = 'RevisionRejectedError';
  readonly code = 'REVISION_REJECTED';
  readonly retryable = true;
  constructor(
    readonly revision: number,
    readonly currentRevision: number,
  ) {
    super(`write revision ${revision} is not above the range's current revision ${currentRevision}`);
  }
}

/** The caller aborted a pending request (its AbortSignal fired). */
export class RequestAbortedError extends ReplicaError {
  override readonly name = 'RequestAbortedError';
  readonly code = 'REQUEST_ABORTED';
  readonly retryable = false;
  constructor(readonly rangeId: number, options?: { cause?: unknown }) {
    super(`range ${rangeId}: request aborted`, options);
  }
}

/**
 * A request's wait on raft outlasted the request timeout (etcd's ReqTimeout):
 * a proposal not applied, or a linearizable read whose read index was not
 * confirmed. Its waiter gave up; a proposal's entry may still apply later.
 */
export class RequestTimeoutError extends ReplicaError {
  override readonly name = 'RequestTimeoutError';
  readonly code = 'REQUEST_TIMEOUT';
  readonly retryable = false;
  constructor(
    readonly rangeId: number,
    readonly timeoutMs: number,
  ) {
    super(`range ${rangeId}: no answer from raft within the request timeout of ${timeoutMs} ms`);
  }
}

/**
 * etcd's request timeout (ServerConfig.ReqTimeout): 5 s plus two election
 * timeouts, 7 s with the default 1 s election timeout. A proposal waits this
 * long to be applied (a linearizable read, for its read index) before it
 * fails with etcd's "request timed out".
 */
export function requestTimeoutMs(electionTimeoutMs: number): number {
  return 5_000 + 2 * electionTimeoutMs;
}

/** A snapshot image is malformed or belongs to another range. */
export class SnapshotInvalidError extends ReplicaError {
  override readonly name = 'SnapshotInvalidError';
  readonly code = 'SNAPSHOT_INVALID';
  readonly retryable = false;
  constructor(message: string) {
    super(`range snapshot invalid: ${message}`);
  }
}

/** A command or stored record could not be encoded or decoded. */
export class CommandInvalidError extends ReplicaError {
  override readonly name = 'CommandInvalidError';
  readonly code = 'COMMAND_INVALID';
  readonly retryable = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(`range command invalid: ${message}`, options);
  }
}

/** A membership change that cannot apply to the current descriptor (e.g. adding a member twice). */
export class MembershipChangeInvalidError extends ReplicaError {
  override readonly name = 'MembershipChangeInvalidError';
  readonly code = 'MEMBERSHIP_CHANGE_INVALID';
  readonly retryable = false;
  constructor(readonly rangeId: number, reason: string) {
    super(`range ${rangeId}: invalid membership change: ${reason}`);
  }
}

/** A learner is promoted while its log lags the leader's (etcd's refusal, same text). */
export class LearnerNotInSyncError extends ReplicaError {
  override readonly name = 'LearnerNotInSyncError';
  readonly code = 'LEARNER_NOT_IN_SYNC';
  readonly retryable = true;
  constructor(
    readonly rangeId: number,
    readonly replicaId: number,
  ) {
    super('etcdserver: can only promote a learner member which is in sync with leader');
  }
}

/** An encoded command is larger than the proposal limit (etcd's --max-request-bytes). */
export class RequestTooLargeError extends ReplicaError {
  override readonly name = 'RequestTooLargeError';
  readonly code = 'REQUEST_TOO_LARGE';
  readonly retryable = false;
  constructor(
    readonly bytes: number,
    readonly bytesMax: number,
  ) {
    // etcd's exact text (InvalidArgument).
    super('etcdserver: request is too large');
  }
}
