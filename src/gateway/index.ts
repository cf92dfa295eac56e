/**
 * The etcd v3 protocol layer of the gateway: wire definitions, in-memory
 * message shapes, etcd's error table, request validation and the JSON
 * gateway's routes and codec. The server wiring builds on these.
 */
export * from './proto.js';
export * from './messages.js';
export * from './errors.js';
export * from './validate.js';
export * from './http-paths.js';
export { EtcdServer, type EtcdServerOptions } from './server.js';
export {
  LocalRangeRouter,
  routed,
  ROUTING_ATTEMPTS_MAX,
  ROUTING_DEADLINE_MS,
  type RangeRouter,
  type RangeTarget,
  type RangeRaftStatus,
  type LocalRanges,
} from './router.js';
export type { GatewayContext, MemberInfo } from './context.js';
export { ETCD_VERSION_REPORTED, ETCD_CLUSTER_VERSION_REPORTED } from './maintenance-service.js';
export { parseUrlList, UrlFlagError, type ListenUrl } from './urls.js';
export { startEmbedded, clusterIdOf, memberIdOfNode, EMBEDDED_NODE_ID, type Embedded, type EmbeddedOptions } from './embedded.js';
