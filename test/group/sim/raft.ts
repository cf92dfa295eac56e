/**
 * The simulator's single import point for the raft core, so the core's
 * module layout can change without touching every simulator file.
 */
export * from '../../../src/group/raft/index.js';
