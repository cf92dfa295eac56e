/** Public entry of the range replica: the state machine of a range's raft group and its request API. */
export {
  Replica,
  PROPOSALS_PENDING_MAX,
  REQUEST_BYTES_MAX,
  RANGE_INIT_LOG_INDEX,
  PROMOTE_MATCH_RATIO_MIN,
  type ReplicaOptions,
  type RequestOptions,
  type ReadOptions,
  type ResponseHeader,
  type Reply,
} from './replica.js';
export {
  encodeCommand,
  decodeCommand,
  encodeDescriptor,
  decodeDescriptor,
  PROPOSER_ID_BYTES_MAX,
  type RangeCommand,
  type CommandBody,
  type CommandResult,
  type ApplyResult,
  type RequestId,
  type CompactionRequest,
  type CompactionResult,
  type ChangeReplicas,
  type StoredError,
} from './command-codec.js';
export { RANGE_COUNTER_REVISION_SOURCE, writeRevision, type RevisionSource } from './revision.js';
export { DEDUPE_RECORDS_MAX } from './dedupe.js';
export { READS_PENDING_MAX } from './reads.js';
export { SNAPSHOT_BYTES_MAX } from './snapshot.js';
export { ALL_RANGES_SPAN, RangeKeys } from './keys.js';
export { maxReplicaIdOf } from './membership.js';
export { StoredCommandError } from './apply.js';
export {
  DEFAULT_MIN_LEASE_TTL_SECONDS,
  DEFAULT_PROMOTE_EXTEND_MS,
  type ReplicaLeaseOptions,
  type KeepAliveResult,
  type TimeToLiveResult,
} from './range-leases.js';
export type {
  LeaseGrantCommand,
  LeaseRevokeCommand,
  LeaseGrantResult,
  LeaseRevokeResult,
} from './lease-codec.js';
export * from '../range/index.js';
