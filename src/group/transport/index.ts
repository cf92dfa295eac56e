/**
 * The node-to-node raft transport: protobuf over gRPC, one batched stream per
 * peer node for every group's messages, snapshots streamed in chunks on their
 * own connections, reconnect with back-off, bounded queues, and a
 * fault-injecting wrapper for tests. See docs/transport.md.
 */
export {
  GrpcTransport,
  checkAddress,
  type Transport,
  type TransportHandlers,
  type TransportOptions,
} from './transport.js';
export { DelegatingTransport } from './delegating.js';
export { laneOf, type SendLane, type SendRoom } from './peer.js';
export {
  FaultyTransport,
  NetworkFaults,
  FAULT_DELAY_MS_MAX,
  FAULT_DELAYED_MESSAGES_MAX,
  type FaultDecision,
  type FaultStats,
  type PartitionOptions,
} from './faulty.js';
export {
  ALL_MESSAGE_TYPES,
  encodeMessage,
  decodeMessage,
  encodeGroupMessage,
  encodeBatch,
  decodeBatch,
  encodeSnapshotHeader,
  encodeSnapshotData,
  decodeSnapshotChunk,
  safeFromWire,
  type GroupMessage,
  type DecodedBatch,
  type SnapshotHeader,
  type DecodedSnapshotChunk,
} from './codec.js';
export * from './limits.js';
export {
  newTransportStats,
  type TransportStats,
  type DropCounters,
  type PeerState,
  type PeerStatus,
} from './stats.js';
export { Backoff } from './backoff.js';
export { raftProtoPath, findPackageRoot, RAFT_PROTO_PACKAGE } from './proto-root.js';
export { raftServiceDefinition, SEND_METHOD_PATH, SEND_SNAPSHOT_METHOD_PATH } from './service.js';
export { TransportError, TransportCodecError, TransportEncodeError, TransportUsageError } from './errors.js';
