/**
 * One remote node as seen by the sender: its address, a bounded queue of
 * encoded messages, one long-lived `Send` stream (send-stream.ts, a
 * connection of its own speaking HTTP/2 directly), and reconnection with
 * back-off. Snapshots to this node run on their own streams (and their own
 * connections), at most `snapshotSendsPerPeerMax` at a time.
 *
 * Life cycle: idle → connecting → ready; a failed attempt or a broken stream
 * goes to backoff, which after the delay reconnects if anything is queued and
 * otherwise waits idle for the next message. close() is final.
 *
 * Queue policy (raft tolerates loss; what it needs is recent messages and to
 * hear that a peer is unreachable):
 * - two lanes, each with its own message and byte bounds: *urgent* (votes,
 *   heartbeats, reads, leadership transfer: small, and late ones cause
 *   elections) and *bulk* (appends, their responses, forwarded proposals).
 *   Each batch takes the urgent lane first, so a flood of appends never
 *   delays or crowds out a vote or a heartbeat (etcd likewise keeps appends
 *   on their own stream). Raft tolerates the reordering between lanes, as it
 *   tolerates any reordering by the network; within a lane order is kept;
 * - a full lane (message or byte bound): the newest message is dropped and
 *   counted; the first drop of an overflow episode reports the peer unreachable;
 * - flow control: `bulkRoom()` tells the host how much the bulk lane takes
 *   now, so it takes no more raft work than the queue holds (a burst of
 *   appends past the bound would be dropped and resent, again and again);
 *   `onBulkRoom` tells it when a backed-up stream drained. A peer that is not
 *   connected, or accepted nothing for `peerStallMs`, reports no room figure:
 *   sends to it are not held back (and dropped at the bound), so one stuck
 *   peer never stops the groups that commit through the others;
 * - a failed connection discards everything queued, so that a long outage
 *   cannot deliver a backlog of stale messages later; messages queued during
 *   a back-off period go out if the next attempt succeeds.
 */
import * as grpc from '@grpc/grpc-js';
import type { Message, NodeId } from '../raft/types.js';
import { Backoff } from './backoff.js';
import { encodeBatch } from './codec.js';
import type { TransportLimits } from './limits.js';
import { SendStream } from './send-stream.js';
import { OWN_SERVER_SETTING, SEND_METHOD_PATH, clientChannelOptions } from './service.js';
import { sendSnapshotStream } from './snapshot-stream.js';
import type { PeerState, PeerStatus, TransportStats } from './stats.js';
import { countDrop } from './stats.js';

/** The send queue a message waits in (see the queue policy above). */
export type SendLane = 'urgent' | 'bulk';

/** One lane of a peer's send queue. */
interface Lane {
  messages: Uint8Array[];
  bytes: number;
}

function newLane(): Lane {
  return { messages: [], bytes: 0 };
}

/** The lane of a raft message: votes, heartbeats, reads and transfers are urgent; appends and proposals bulk. */
export function laneOf(msg: Message): SendLane {
  switch (msg.type) {
    case 'app':
    case 'appResp':
    case 'prop':
    case 'snap':
      return 'bulk';
    default:
      return 'urgent';
  }
}

/** What a peer needs from its transport. */
export interface PeerContext {
  readonly localNodeId: NodeId;
  readonly limits: TransportLimits;
  readonly stats: TransportStats;
  /** Uniform in [0, 1), for back-off jitter. */
  readonly random: () => number;
  onUnreachable(nodeId: NodeId): void;
  onSnapshotStatus(nodeId: NodeId, groupId: number, msg: Message, ok: boolean): void;
  /** The stream drained (or connected): the bulk lane may have room again. */
  onBulkRoom(nodeId: NodeId): void;
}

/** Room left in a peer's bulk lane, in messages and encoded bytes, and what it holds now. */
export interface SendRoom {
  readonly messages: number;
  readonly bytes: number;
  /** Messages queued in the lane (0: an empty lane, which always takes the next message). */
  readonly queued: number;
}

/** The sending side of one peer node. Used by the transport only. */
export class Peer {
  private state: PeerState = 'idle';
  private stream: SendStream | undefined;
  /** The stream's buffer or the receiver's windows are full; flushing resumes on the stream's onDrain. */
  private waitingDrain = false;
  /** When the stream last refused a write (Date.now()), for the stall rule of bulkRoom(). */
  private drainWaitSince = 0;
  private backoffTimer: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;
  private readonly lanes: Record<SendLane, Lane> = { urgent: newLane(), bulk: newLane() };
  /** A drop has been reported for the current overflow episode. */
  private overflowReported = false;
  /** The last connection failed, so the next success counts as a reconnect. */
  private hadFailure = false;
  /** In-flight snapshot streams, each on its own connection, cancelled by close(). */
  private readonly snapshots = new Map<grpc.Client, AbortController>();

  constructor(
    readonly nodeId: NodeId,
    readonly address: string,
    private readonly ctx: PeerContext,
  ) {
    this.backoff = new Backoff(ctx.limits.backoffBaseMs, ctx.limits.backoffMaxMs, ctx.random);
  }

  /** A snapshot of this peer's state (for metrics and tests). */
  status(): PeerStatus {
    return {
      nodeId: this.nodeId,
      address: this.address,
      state: this.state,
      queuedMessages: this.queuedMessages,
      queuedBytes: this.lanes.urgent.bytes + this.lanes.bulk.bytes,
      snapshotsInFlight: this.snapshots.size,
      failures: this.backoff.attempts,
    };
  }

  /**
   * What the bulk lane takes now; undefined when sends are not held back: not
   * connected (queued messages are dropped on failure anyway) or stalled for
   * `peerStallMs` (a stuck receiver must not stop every group it is a member of).
   */
  bulkRoom(): SendRoom | undefined {
    if (this.state !== 'ready') return undefined;
    const { peerQueueMessagesMax, peerQueueBytesMax, peerStallMs } = this.ctx.limits;
    if (this.waitingDrain && Date.now() - this.drainWaitSince >= peerStallMs) return undefined;
    const bulk = this.lanes.bulk;
    return {
      messages: Math.max(0, peerQueueMessagesMax - bulk.messages.length),
      bytes: Math.max(0, peerQueueBytesMax - bulk.bytes),
      queued: bulk.messages.length,
    };
  }

  /** Messages queued in both lanes. */
  private get queuedMessages(): number {
    return this.lanes.urgent.messages.length + this.lanes.bulk.messages.length;
  }

  /** Queues one encoded GroupMessage in `lane`; false (and counted) if that lane is full. */
  enqueue(encoded: Uint8Array, lane: SendLane = 'bulk'): boolean {
    if (this.state === 'closed') {
      countDrop(this.ctx.stats, 'closed');
      return false;
    }
    const { peerQueueMessagesMax, peerQueueBytesMax } = this.ctx.limits;
    const q = this.lanes[lane];
    if (q.messages.length >= peerQueueMessagesMax || q.bytes + encoded.length > peerQueueBytesMax) {
      countDrop(this.ctx.stats, 'queueFull');
      if (!this.overflowReported) {
        this.overflowReported = true;
        this.reportUnreachable();
      }
      return false;
    }
    q.messages.push(encoded);
    q.bytes += encoded.length;
    return true;
  }

  /** Writes queued messages as batches while the stream accepts them; connects if idle. */
  flush(): void {
    if (this.queuedMessages === 0) return;
    if (this.state === 'idle') {
      this.connect();
      return;
    }
    const stream = this.stream;
    if (this.state !== 'ready' || stream === undefined || this.waitingDrain) return;
    while (this.queuedMessages > 0) {
      const batch = this.takeBatch();
      const bytes = encodeBatch(this.ctx.localNodeId, this.nodeId, batch);
      const stats = this.ctx.stats;
      stats.batchesSent++;
      stats.messagesSent += batch.length;
      stats.bytesSent += bytes.length;
      if (!stream.write(bytes)) {
        this.waitingDrain = true;
        this.drainWaitSince = Date.now();
        return;
      }
    }
    this.overflowReported = false;
  }

  /** Removes what fits one batch (at least one message): the urgent lane's prefix first, then the bulk lane's. */
  private takeBatch(): Uint8Array[] {
    const { batchMessagesMax, batchBytesMax } = this.ctx.limits;
    const batch: Uint8Array[] = [];
    let bytes = 0;
    for (const lane of [this.lanes.urgent, this.lanes.bulk]) {
      let count = 0;
      let laneBytes = 0;
      for (const m of lane.messages) {
        const n = batch.length + count;
        if (n >= batchMessagesMax || (n > 0 && bytes + laneBytes + m.length > batchBytesMax)) break;
        count++;
        laneBytes += m.length;
      }
      const full = count < lane.messages.length;
      for (const m of lane.messages.splice(0, count)) batch.push(m);
      lane.bytes -= laneBytes;
      bytes += laneBytes;
      if (full) break; // the batch is full: the bulk lane waits for the next one
    }
    return batch;
  }

  /**
   * Streams a 'snap' message on its own connection and reports the outcome
   * through `onSnapshotStatus` (always exactly once, never synchronously).
   */
  sendSnapshot(groupId: number, msg: Message): void {
    const snap = msg.snapshot;
    if (snap === undefined) throw new TypeError('sendSnapshot needs a message with a snapshot');
    const report = (ok: boolean): void => {
      if (ok) this.ctx.stats.snapshotsSent++;
      else this.ctx.stats.snapshotsFailed++;
      this.ctx.onSnapshotStatus(this.nodeId, groupId, msg, ok);
    };
    if (this.state === 'closed' || this.snapshots.size >= this.ctx.limits.snapshotSendsPerPeerMax) {
      // Deferred so the host never sees a status while it is still handing messages over.
      setImmediate(() => report(false));
      return;
    }
    const client = new grpc.Client(this.address, grpc.credentials.createInsecure(), clientChannelOptions(this.ctx.limits));
    const abort = new AbortController();
    this.snapshots.set(client, abort);
    const header = {
      fromNode: this.ctx.localNodeId,
      toNode: this.nodeId,
      groupId,
      message: msg,
      dataBytes: snap.data.length,
    };
    sendSnapshotStream(client, header, snap.data, {
      chunkBytes: this.ctx.limits.snapshotChunkBytes,
      timeoutMs: this.ctx.limits.snapshotTimeoutMs,
      signal: abort.signal,
    }).then(
      () => {
        this.ctx.stats.snapshotBytesSent += snap.data.length;
        return true;
      },
      () => false,
    ).then((ok) => {
      this.snapshots.delete(client);
      client.close();
      report(ok);
    });
  }

  /** Ends the stream, closes connections and drops the queue. Final. */
  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.backoffTimer !== undefined) clearTimeout(this.backoffTimer);
    this.backoffTimer = undefined;
    countDrop(this.ctx.stats, 'closed', this.queuedMessages);
    this.clearLanes();
    this.dropConnection();
    // In-flight snapshots are cancelled; each still reports its failure.
    for (const abort of this.snapshots.values()) abort.abort();
  }

  private connect(): void {
    this.state = 'connecting';
    const { connectTimeoutMs, keepaliveTimeMs, keepaliveTimeoutMs } = this.ctx.limits;
    const stream: SendStream = new SendStream(
      this.address,
      { path: SEND_METHOD_PATH, settings: [[OWN_SERVER_SETTING, 1]] },
      { connectTimeoutMs, keepaliveTimeMs, keepaliveTimeoutMs },
      {
        onReady: () => {
          if (this.stream === stream && this.state === 'connecting') this.onConnected();
        },
        onDrain: () => {
          if (this.stream !== stream) return;
          this.waitingDrain = false;
          this.flush();
          this.ctx.onBulkRoom(this.nodeId);
        },
        // The call ended: the receiver went away, refused us, or never answered.
        onEnd: () => {
          if (this.stream === stream) this.fail();
        },
      },
    );
    this.stream = stream;
  }

  private onConnected(): void {
    this.ctx.stats.streamsOpened++;
    this.waitingDrain = false;
    this.state = 'ready';
    this.backoff.reset();
    if (this.hadFailure) this.ctx.stats.reconnects++;
    this.hadFailure = false;
    this.flush();
    this.ctx.onBulkRoom(this.nodeId);
  }

  /** A connection attempt failed or the stream broke: drop the queue, report, back off. */
  private fail(): void {
    if (this.state === 'closed') return;
    this.dropConnection();
    this.ctx.stats.connectFailures++;
    this.hadFailure = true;
    countDrop(this.ctx.stats, 'peerDown', this.queuedMessages);
    this.clearLanes();
    this.overflowReported = false;
    this.reportUnreachable();
    this.state = 'backoff';
    const delay = this.backoff.next();
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = undefined;
      if (this.state !== 'backoff') return;
      this.state = 'idle';
      this.flush();
    }, delay);
  }

  /**
   * Cancels rather than half-closes the stream: a graceful end would wait for
   * a receiver that may be gone or paused, keeping the handle alive. Anything
   * still in flight is lost, which raft tolerates.
   */
  private dropConnection(): void {
    const stream = this.stream;
    this.stream = undefined;
    this.waitingDrain = false;
    stream?.cancel();
  }

  private clearLanes(): void {
    this.lanes.urgent = newLane();
    this.lanes.bulk = newLane();
  }

  /** Deferred: the host may be in the middle of handing over a Ready's messages. */
  private reportUnreachable(): void {
    this.ctx.stats.unreachableReports++;
    setImmediate(() => {
      if (this.state !== 'closed') this.ctx.onUnreachable(this.nodeId);
    });
  }
}
