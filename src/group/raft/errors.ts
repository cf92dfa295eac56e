/**
 * Typed errors of the raft core. Each has a stable `code` the host can switch
 * on; messages are for humans and may change.
 *
 * Operating conditions (no leader, storage compacted, a pending conf change)
 * are reported with these errors. Broken invariants throw `RaftInvariantError`
 * instead: they mean a bug, and continuing would risk corrupting the log.
 */

/** Why a proposal (or a local read/transfer request) was not accepted. */
export type ProposalDropReason =
  | 'noLeader'
  | 'forwardingDisabled'
  | 'transferring'
  | 'uncommittedSizeExceeded'
  | 'notLeader'
  | 'removed';

/** Base class: every error thrown by the raft core on purpose extends it. */
export class RaftError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RaftError';
    this.code = code;
  }
}

/** A proposal, read or transfer request was dropped; `reason` says why. */
export class ProposalDroppedError extends RaftError {
  readonly reason: ProposalDropReason;
  constructor(reason: ProposalDropReason, detail?: string) {
    super('PROPOSAL_DROPPED', `raft proposal dropped: ${reason}${detail === undefined ? '' : ` (${detail})`}`);
    this.name = 'ProposalDroppedError';
    this.reason = reason;
  }
}

/** A conf change was proposed while another one is still uncommitted or unapplied. */
export class ConfChangePendingError extends RaftError {
  readonly pendingIndex: number;
  constructor(pendingIndex: number, applied: number) {
    super(
      'CONF_CHANGE_PENDING',
      `raft conf change refused: a previous conf change at index ${pendingIndex} is not applied yet (applied=${applied})`,
    );
    this.name = 'ConfChangePendingError';
    this.pendingIndex = pendingIndex;
  }
}

/** A conf change that can never be applied (e.g. removes every voter, or leaves a non-joint config). */
export class ConfChangeInvalidError extends RaftError {
  constructor(message: string) {
    super('CONF_CHANGE_INVALID', `raft conf change invalid: ${message}`);
    this.name = 'ConfChangeInvalidError';
  }
}

/** `RawNode.step()` was handed a message type that only the core itself may generate. */
export class StepLocalMessageError extends RaftError {
  constructor(type: string) {
    super('STEP_LOCAL_MESSAGE', `raft: cannot step local message type '${type}' from the network`);
    this.name = 'StepLocalMessageError';
  }
}

/** A configuration value is out of range. */
export class RaftConfigError extends RaftError {
  constructor(message: string) {
    super('INVALID_CONFIG', `raft config invalid: ${message}`);
    this.name = 'RaftConfigError';
  }
}

/** Base of the errors `Storage` implementations throw (see `Storage` in types.ts). */
export class RaftStorageError extends RaftError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = 'RaftStorageError';
  }
}

/** The requested index is older than the storage's first retained entry. */
export class StorageCompactedError extends RaftStorageError {
  constructor(index: number, firstIndex: number) {
    super('STORAGE_COMPACTED', `raft storage: index ${index} is compacted (first index ${firstIndex})`);
    this.name = 'StorageCompactedError';
  }
}

/** The requested index is newer than the storage's last entry. */
export class StorageUnavailableError extends RaftStorageError {
  constructor(index: number, lastIndex: number) {
    super('STORAGE_UNAVAILABLE', `raft storage: index ${index} is unavailable (last index ${lastIndex})`);
    this.name = 'StorageUnavailableError';
  }
}

/** A snapshot request that was out of date (older than the storage's current snapshot). */
export class SnapshotOutOfDateError extends RaftStorageError {
  constructor(index: number, current: number) {
    super('SNAPSHOT_OUT_OF_DATE', `raft storage: snapshot at ${index} is older than the current snapshot at ${current}`);
    this.name = 'SnapshotOutOfDateError';
  }
}

/** The storage cannot produce a snapshot right now; raft retries later. */
export class SnapshotTemporarilyUnavailableError extends RaftStorageError {
  constructor() {
    super('SNAPSHOT_TEMPORARILY_UNAVAILABLE', 'raft storage: snapshot temporarily unavailable');
    this.name = 'SnapshotTemporarilyUnavailableError';
  }
}

/** A broken invariant: a bug in the core or a host that broke the Ready contract. */
export class RaftInvariantError extends RaftError {
  constructor(message: string) {
    super('INVARIANT', `raft invariant violated: ${message}`);
    this.name = 'RaftInvariantError';
  }
}

/** Throws `RaftInvariantError` unless `cond` holds. */
export function invariant(cond: boolean, message: string | (() => string)): asserts cond {
  if (!cond) throw new RaftInvariantError(typeof message === 'string' ? message : message());
}
