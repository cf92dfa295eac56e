/**
 * The IPC protocol between a test and a node child process
 * (test/node/node-process.ts, started with child_process.fork). Keys and
 * values are UTF-8 strings; every request carries an `id` the reply echoes.
 */

/** The child's config, passed as JSON in argv[2]. */
export interface NodeProcessConfig {
  readonly nodeId: number;
  readonly dataDir: string;
  readonly peerListen: string;
  /** [nodeId, address] pairs of every node (this one included). */
  readonly peers: readonly (readonly [number, string])[];
  readonly engineKind: 'leveldb' | 'rocksdb' | 'memory';
  /** Node ids of range 1's replicas (the whole keyspace). */
  readonly replicas: readonly number[];
  readonly tickMs: number;
  readonly electionTick: number;
  /** Host log truncation thresholds: small values force snapshot catch-up of a restarted node. */
  readonly logTruncateEntries: number;
  readonly logKeepEntries: number;
}

/** A put: `seq` makes retries idempotent (request id {proposer: the test client, seq}). */
export interface PutCommand {
  readonly op: 'put';
  readonly key: string;
  readonly value: string;
  readonly seq: number;
}
/** Every key with `prefix`, at the given consistency. */
export interface ScanCommand {
  readonly op: 'scan';
  readonly prefix: string;
  readonly consistency: 'linearizable' | 'serializable';
}
/** One key, at the given consistency. */
export interface GetCommand {
  readonly op: 'get';
  readonly key: string;
  readonly consistency: 'linearizable' | 'serializable';
}
/** hashKV of the local replica at `revision` (0: current). */
export interface HashCommand {
  readonly op: 'hash';
  readonly revision: number;
}
/** Raft and apply state of range 1 on this node. */
export interface StatusCommand {
  readonly op: 'status';
}
/** Graceful close, then exit 0. */
export interface CloseCommand {
  readonly op: 'close';
}

export type Command = PutCommand | ScanCommand | GetCommand | HashCommand | StatusCommand | CloseCommand;
export type Request = Command & { readonly id: number };

/** A key as the node returns it. */
export interface WireKv {
  readonly key: string;
  readonly value: string;
  readonly modRevision: number;
}

/** Raft and apply state of range 1. */
export interface WireStatus {
  readonly nodeId: number;
  readonly role: string;
  readonly leader: number;
  readonly term: number;
  readonly commit: number;
  readonly applied: number;
  readonly revision: number;
  /** Raft snapshots this process's host received (installed) since it started. */
  readonly snapshotsReceived: number;
}

/** A successful reply; which fields are set depends on the command. */
export interface OkReply {
  readonly id: number;
  readonly ok: true;
  readonly revision?: number;
  readonly kvs?: readonly WireKv[];
  readonly hash?: number;
  readonly hashRevision?: number;
  readonly status?: WireStatus;
}

/** A failed request: the replica error's code, and the leader's node id for NOT_LEADER when known. */
export interface ErrReply {
  readonly id: number;
  readonly ok: false;
  readonly code: string;
  readonly message: string;
  readonly leaderNodeId?: number;
}

export type Reply = OkReply | ErrReply;

/** The first message of a child: the node is open and listening. */
export interface ReadyMessage {
  readonly ready: true;
  readonly nodeId: number;
  readonly port: number;
}

/** Sent by a child whose host loop stopped on a fatal error, just before it exits. */
export interface FatalMessage {
  readonly fatal: string;
}

/** Proposer id of the test client's requests (so retries across nodes dedupe). */
export const TEST_PROPOSER = 'kill9-client';
/** Most keys a scan returns (a bound; the test writes far fewer). */
export const SCAN_LIMIT = 10_000;
