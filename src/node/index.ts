/**
 * The store node: one process's composition of engine, log store,
 * multi-raft host, transport and range replicas. See docs/node.md.
 */
export { StoreNode, type RangeStatus } from './store-node.js';
export {
  BOOTSTRAP_RANGES_MAX,
  MEMORY_RANGE_REPLICAS_MIN,
  NODE_ENGINE_KIND_DEFAULT,
  NODE_TICK_MS_DEFAULT,
  PEERS_MAX,
  NodeConfigError,
  bootstrapDescriptor,
  validateOptions,
  wholeKeyspaceRange,
  type BootstrapRange,
  type StoreNodeOptions,
} from './config.js';
export {
  DataDirError,
  ENGINE_DIR,
  NODE_META_FILE,
  NODE_META_FORMAT,
  RAFT_LOG_DIR,
  enginePath,
  raftLogPath,
  readNodeMeta,
  type ClusterRecord,
  type NodeMeta,
} from './data-dir.js';
export {
  RANGE_ENGINE_DEFAULT,
  RANGE_ENGINE_KINDS,
  RANGE_OPTIONS_FILE,
  RangeOptionsTable,
  isRangeEngineKind,
  type RangeEngineKind,
} from './range-options.js';
export { RANGE_IMAGE_FETCH_PATH, fetchRangeImage } from './range-image.js';
export {
  INITIAL_CLUSTER_MEMBERS_MAX,
  InitialClusterError,
  parseInitialCluster,
  selfMember,
  type ClusterMember,
  type InitialCluster,
} from './initial-cluster.js';
