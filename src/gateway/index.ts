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
