/**
 * The raft core: a pure, deterministic consensus state machine in the
 * etcd-io/raft RawNode/Ready/Storage model. See docs/raft.md.
 */
export * from './types.js';
export { RawNode, LEAVE_JOINT, type BasicRaftStatus, type RaftStatus, type ProgressStatus } from './rawnode.js';
export { type RaftConfig, DEFAULT_MAX_INFLIGHT_MSGS, DEFAULT_MAX_SIZE_PER_MSG, defaultLeaseDriftMarginTicks } from './config.js';
export { MemoryStorage, type MemoryStorageOptions, cloneConfState } from './storage.js';
export { encodeConfChange, decodeConfChange } from './confchange.js';
export type { ProgressState } from './progress.js';
export type { RaftDropCounters, RaftReadCounters } from './raft.js';
export { CAMPAIGN_TRANSFER_CTX } from './raft.js';
export { READ_INDEX_QUEUE_MAX } from './read-only.js';
export { ENTRY_OVERHEAD_BYTES, EMPTY_CONF_STATE, entrySize, isEmptySnapshot, limitSize } from './util.js';
export {
  RaftError,
  ProposalDroppedError,
  type ProposalDropReason,
  ConfChangePendingError,
  ConfChangeInvalidError,
  StepLocalMessageError,
  RaftConfigError,
  RaftStorageError,
  StorageCompactedError,
  StorageUnavailableError,
  SnapshotOutOfDateError,
  SnapshotTemporarilyUnavailableError,
  RaftInvariantError,
} from './errors.js';
