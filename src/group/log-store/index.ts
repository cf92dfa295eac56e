/**
 * The node's durable raft log store, shared by every raft group on a node
 * (docs/log-store.md). Other folders import from here only.
 */
export {
  LogStore,
  type LogStoreOptions,
  type LogStoreCounters,
  type StageOps,
  type FlushOptions,
  type CreateGroupOptions,
  BATCH_BYTES_MAX_DEFAULT,
  GC_KEYS_PER_FLUSH_MAX_DEFAULT,
} from './store.js';
export { GroupLog, type SnapshotSource } from './group-log.js';
/** Entry size as the raft core counts it (re-exported for log-store users). */
export { entrySize } from '../raft/index.js';
export { LogStoreError, type LogStoreErrorCode } from './errors.js';
export { type TruncatedState, FORMAT_VERSION, CONF_STATE_MEMBERS_MAX } from './codec.js';
