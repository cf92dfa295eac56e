/**
 * The public entry of src/group: the raft core, the node's durable log
 * store, the node-to-node transport and the multi-raft host. Other folders
 * import from here only. Each part also has its own entry (raft/index.ts,
 * log-store/index.ts, transport/index.ts, host/index.ts).
 */
export * from './raft/index.js';
export * from './log-store/index.js';
export * from './transport/index.js';
export * from './host/index.js';
