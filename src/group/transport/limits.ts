/**
 * Every bound of the raft transport, named, with its default. A transport
 * takes `Partial<TransportLimits>` to override them (tests shrink them).
 */

const KiB = 1024;
const MiB = 1024 * KiB;

/** Messages per `RaftMessageBatch` (TiKV's raft client uses 256). */
export const BATCH_MESSAGES_MAX = 256;
/** Encoded bytes per batch; a single larger message still travels alone. */
export const BATCH_BYTES_MAX = 4 * MiB;
/** Largest encoded message the transport sends or accepts; larger ones are dropped. */
export const MESSAGE_BYTES_MAX = 64 * MiB;
/** Messages queued for one peer before the newest are dropped. */
export const PEER_QUEUE_MESSAGES_MAX = 8192;
/** Encoded bytes queued for one peer before the newest are dropped. */
export const PEER_QUEUE_BYTES_MAX = 64 * MiB;
/**
 * A peer whose stream has accepted nothing for this long no longer reports
 * its bulk room (`Transport.bulkRoom`): a stuck peer must not hold back the
 * groups that can commit through the others; its messages are dropped instead.
 * Long, because a busy receiver (three hosts of 10,000 groups on one loaded
 * thread) stops reading for seconds, and dropping then is the collapse that flow
 * control prevents; a dead one is found by the keepalive within 15 s anyway.
 */
export const PEER_STALL_MS = 10_000;
/** Snapshot data bytes per chunk on a snapshot stream. */
export const SNAPSHOT_CHUNK_BYTES = 512 * KiB;
/** Largest snapshot a receiver accepts (it allocates this much up front). */
export const SNAPSHOT_BYTES_MAX = 1024 * MiB;
/** Concurrent outgoing snapshots to one peer; more fail at once (raft retries later). */
export const SNAPSHOT_SENDS_PER_PEER_MAX = 4;
/** Concurrent incoming snapshots per node; more are refused with RESOURCE_EXHAUSTED. */
export const SNAPSHOT_RECEIVES_MAX = 8;
/** Deadline of one snapshot stream, from its start to the receiver's answer. */
export const SNAPSHOT_TIMEOUT_MS = 10 * 60_000;
/** How long one connection attempt may take before it counts as failed. */
export const CONNECT_TIMEOUT_MS = 5_000;
/** First reconnect delay after a failure (before jitter). */
export const BACKOFF_BASE_MS = 100;
/** Largest reconnect delay (before jitter). */
export const BACKOFF_MAX_MS = 5_000;
/** HTTP/2 keepalive ping interval: finds peers that vanished without closing TCP. */
export const KEEPALIVE_TIME_MS = 10_000;
/** A keepalive ping unanswered this long closes the connection. */
export const KEEPALIVE_TIMEOUT_MS = 5_000;

/** The transport's bounds; see the constants above for meaning and defaults. */
export interface TransportLimits {
  readonly batchMessagesMax: number;
  readonly batchBytesMax: number;
  readonly messageBytesMax: number;
  readonly peerQueueMessagesMax: number;
  readonly peerQueueBytesMax: number;
  readonly peerStallMs: number;
  readonly snapshotChunkBytes: number;
  readonly snapshotBytesMax: number;
  readonly snapshotSendsPerPeerMax: number;
  readonly snapshotReceivesMax: number;
  readonly snapshotTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly keepaliveTimeMs: number;
  readonly keepaliveTimeoutMs: number;
}

/** The defaults, as one object. */
export const DEFAULT_TRANSPORT_LIMITS: TransportLimits = {
  batchMessagesMax: BATCH_MESSAGES_MAX,
  batchBytesMax: BATCH_BYTES_MAX,
  messageBytesMax: MESSAGE_BYTES_MAX,
  peerQueueMessagesMax: PEER_QUEUE_MESSAGES_MAX,
  peerQueueBytesMax: PEER_QUEUE_BYTES_MAX,
  peerStallMs: PEER_STALL_MS,
  snapshotChunkBytes: SNAPSHOT_CHUNK_BYTES,
  snapshotBytesMax: SNAPSHOT_BYTES_MAX,
  snapshotSendsPerPeerMax: SNAPSHOT_SENDS_PER_PEER_MAX,
  snapshotReceivesMax: SNAPSHOT_RECEIVES_MAX,
  snapshotTimeoutMs: SNAPSHOT_TIMEOUT_MS,
  connectTimeoutMs: CONNECT_TIMEOUT_MS,
  backoffBaseMs: BACKOFF_BASE_MS,
  backoffMaxMs: BACKOFF_MAX_MS,
  keepaliveTimeMs: KEEPALIVE_TIME_MS,
  keepaliveTimeoutMs: KEEPALIVE_TIMEOUT_MS,
};

/** Defaults overridden by `overrides`; every value must be a positive safe integer. */
export function resolveLimits(overrides: Partial<TransportLimits> | undefined): TransportLimits {
  const limits = { ...DEFAULT_TRANSPORT_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new RangeError(`transport limit ${name}=${String(value)} must be a positive integer`);
    }
  }
  if (limits.backoffBaseMs > limits.backoffMaxMs) {
    throw new RangeError(`transport limit backoffBaseMs exceeds backoffMaxMs`);
  }
  return limits;
}

/**
 * gRPC's own message size cap, set on both ends: the largest single message
 * plus room for the batch and chunk framing around it.
 */
export function grpcMessageBytesMax(limits: TransportLimits): number {
  const FRAMING_SLACK_BYTES = 64 * KiB;
  return Math.max(limits.messageBytesMax, limits.batchBytesMax, limits.snapshotChunkBytes) + FRAMING_SLACK_BYTES;
}
