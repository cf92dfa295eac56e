/**
 * Typed errors of the multi-raft host. Each has a stable `code`; messages
 * that clients see keep etcd's exact texts (clients match on them).
 */

/** Stable codes of {@link HostError}. */
export type HostErrorCode =
  | 'TOO_MANY_REQUESTS'
  | 'GROUP_NOT_FOUND'
  | 'GROUP_EXISTS'
  | 'STOPPED'
  | 'INVALID_ARGUMENT';

/** Base class of every error the host throws on purpose; switch on `code`. */
export class HostError extends Error {
  override readonly name: string = 'HostError';
  constructor(
    readonly code: HostErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** etcd's text for the same condition (api/v3rpc/rpctypes: ErrTooManyRequests). */
export const TOO_MANY_REQUESTS_MESSAGE = 'etcdserver: too many requests';

/**
 * A group's proposal queue is full (count or bytes): the caller should back
 * off and retry. Nothing was proposed.
 */
export class TooManyRequestsError extends HostError {
  override readonly name: string = 'TooManyRequestsError';
  constructor(
    readonly groupId: number,
    detail: string,
  ) {
    super('TOO_MANY_REQUESTS', TOO_MANY_REQUESTS_MESSAGE, { cause: detail });
  }
}
