/** Range descriptors, epochs and the typed routing errors shared by replicas and the gateway. */
export * from './descriptor.js';
export * from './errors.js';
