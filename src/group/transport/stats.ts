/**
 * The transport's counters, as plain mutable fields: the metrics layer reads
 * them (no dependency on a metrics library here), tests assert on them.
 */

/** Why an outgoing message was not sent. */
export interface DropCounters {
  /** The peer's queue was at its message or byte bound (the newest message is dropped). */
  queueFull: number;
  /** Queued when the connection failed, or sent while it was being re-established and lost then. */
  peerDown: number;
  /** No address is known for the destination node. */
  noPeer: number;
  /** Encoded larger than `messageBytesMax`. */
  oversized: number;
  /** Sent after `close()`, or still queued when the transport or the peer was closed. */
  closed: number;
}

/** Counters of one transport (all peers together). */
export interface TransportStats {
  messagesSent: number;
  messagesReceived: number;
  /** Every message dropped on the send side; the reasons are in `drops`. */
  messagesDropped: number;
  drops: DropCounters;
  batchesSent: number;
  batchesReceived: number;
  bytesSent: number;
  bytesReceived: number;
  snapshotsSent: number;
  snapshotsReceived: number;
  /** Outgoing snapshots that failed (reported to raft as failures). */
  snapshotsFailed: number;
  /** Incoming snapshot streams that were refused or broke off. */
  snapshotsReceiveFailed: number;
  snapshotBytesSent: number;
  snapshotBytesReceived: number;
  /** `Send` streams this node opened (one per peer, plus one after each reconnect). */
  streamsOpened: number;
  /** `Send` streams other nodes opened to this node. */
  streamsAccepted: number;
  /** Successful connections that followed a failure. */
  reconnects: number;
  connectFailures: number;
  unreachableReports: number;
  /** Received messages for groups the host does not know (handed to onUnknownGroup). */
  unknownGroupMessages: number;
  /** Incoming batches or chunks that did not decode (the stream is then failed). */
  decodeErrors: number;
  /** Incoming streams addressed to another node id (a stale address book). */
  misaddressed: number;
}

/** Fresh, zeroed counters. */
export function newTransportStats(): TransportStats {
  return {
    messagesSent: 0,
    messagesReceived: 0,
    messagesDropped: 0,
    drops: { queueFull: 0, peerDown: 0, noPeer: 0, oversized: 0, closed: 0 },
    batchesSent: 0,
    batchesReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    snapshotsSent: 0,
    snapshotsReceived: 0,
    snapshotsFailed: 0,
    snapshotsReceiveFailed: 0,
    snapshotBytesSent: 0,
    snapshotBytesReceived: 0,
    streamsOpened: 0,
    streamsAccepted: 0,
    reconnects: 0,
    connectFailures: 0,
    unreachableReports: 0,
    unknownGroupMessages: 0,
    decodeErrors: 0,
    misaddressed: 0,
  };
}

/** Counts `count` dropped messages for `reason`. */
export function countDrop(stats: TransportStats, reason: keyof DropCounters, count = 1): void {
  stats.messagesDropped += count;
  stats.drops[reason] += count;
}

/** The connection state of one peer. */
export type PeerState = 'idle' | 'connecting' | 'ready' | 'backoff' | 'closed';

/** What one peer looks like right now (for metrics and tests). */
export interface PeerStatus {
  readonly nodeId: number;
  readonly address: string;
  readonly state: PeerState;
  readonly queuedMessages: number;
  readonly queuedBytes: number;
  readonly snapshotsInFlight: number;
  /** Connection failures since the last success. */
  readonly failures: number;
}
