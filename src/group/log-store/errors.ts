/**
 * Typed errors of the log store. Raft-facing read errors (compacted,
 * unavailable, snapshot out of date or temporarily unavailable) are the raft
 * core's own classes, because the core switches on them; everything else the
 * store reports is a {@link LogStoreError} with a stable `code`.
 */

/**
 * Stable codes: GROUP_EXISTS (createGroup on a live id), GROUP_NOT_FOUND (no
 * such group), GROUP_BUSY (the id's old keys are still being deleted),
 * INVALID_ARGUMENT (a malformed id, entry, hard state or range; nothing was
 * changed), BATCH_FULL (the pending batch is at its byte cap: flush, then
 * stage again), CORRUPT (the engine holds bytes the store cannot have
 * written), UNSUPPORTED_FORMAT (a newer on-disk format), CLOSED (used after
 * close()), FAILED (an engine write failed earlier; memory may be ahead of
 * disk, so the store refuses everything until it is reopened).
 */
export type LogStoreErrorCode =
  | 'GROUP_EXISTS'
  | 'GROUP_NOT_FOUND'
  | 'GROUP_BUSY'
  | 'INVALID_ARGUMENT'
  | 'BATCH_FULL'
  | 'CORRUPT'
  | 'UNSUPPORTED_FORMAT'
  | 'CLOSED'
  | 'FAILED';

/** An error of the log store; switch on `code`, not on the message. */
export class LogStoreError extends Error {
  override readonly name: string = 'LogStoreError';
  constructor(
    readonly code: LogStoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`log store: ${message}`, options);
  }
}
