/**
 * The node-to-node raft transport: one gRPC server per node, one batched
 * message stream per peer node (carrying every group's messages), and a
 * separate stream per snapshot.
 *
 * The host hands over every outgoing raft message with `send()`; messages
 * queued within one event-loop turn leave together, one batch per peer, on
 * the next `setImmediate` (or at once on `flush()`). 'snap' messages are
 * recognised and streamed in chunks on their own connection; their outcome
 * comes back through `onSnapshotStatus` (the host calls raft's
 * `reportSnapshot`). Loss is normal: nothing here throws at the host for a
 * down peer; drops are counted and `onUnreachable` tells the host to call
 * raft's `reportUnreachable` for its groups with that peer.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Message, NodeId } from '../raft/types.js';
import { encodeGroupMessage } from './codec.js';
import { TransportUsageError } from './errors.js';
import type { TransportLimits } from './limits.js';
import { resolveLimits } from './limits.js';
import { Peer, type SendRoom, laneOf } from './peer.js';
import { RaftServer } from './server.js';
import type { PeerStatus, TransportStats } from './stats.js';
import { countDrop, newTransportStats } from './stats.js';
import type { GrpcMethod } from '../../h2/grpc-server.js';

/**
 * The host's side of the transport. Callbacks run on the event loop, never
 * inside `send()`, and must not throw (an exception is a host bug and
 * propagates).
 */
export interface TransportHandlers {
  /** A message for a group the host knows (`isKnownGroup` said yes). */
  onMessage(groupId: number, msg: Message, fromNode: NodeId): void;
  /** Does this node host a replica of `groupId`? Without it every group counts as known. */
  isKnownGroup?(groupId: number): boolean;
  /**
   * A message for a group the host does not know: create a replica (a new
   * learner's first message is often a snapshot) or drop a stale message.
   */
  onUnknownGroup?(groupId: number, msg: Message, fromNode: NodeId): void;
  /** `nodeId` could not be reached or its queue overflowed: report it to raft for its groups. */
  onUnreachable?(nodeId: NodeId): void;
  /** The outcome of a 'snap' message sent with `send()`: report it to raft (`reportSnapshot(msg.to, ok)`). */
  onSnapshotStatus?(toNode: NodeId, groupId: number, msg: Message, ok: boolean): void;
  /**
   * A peer's backed-up stream drained (or it connected): its bulk lane has room
   * again (`Transport.bulkRoom`). Work held back for lack of room may go on.
   */
  onBulkRoom?(nodeId: NodeId): void;
}

/** What the node host uses; implemented by `GrpcTransport` and `FaultyTransport`. */
export interface Transport {
  /** This node's id (the `to_node` that incoming batches must carry). */
  readonly nodeId: NodeId;
  /** Counters, as plain fields. */
  readonly stats: TransportStats;
  /** Starts the server; resolves with the bound port. */
  start(): Promise<number>;
  /** The bound port (after `start`). */
  readonly port: number;
  /** Sets or changes the address ("host:port") of a peer node. */
  setPeer(nodeId: NodeId, address: string): void;
  /** Forgets a peer: closes its connection and drops what is queued for it. */
  removePeer(nodeId: NodeId): void;
  /** Queues `msg` of group `groupId` for `toNode`; never throws for delivery problems. */
  send(toNode: NodeId, groupId: number, msg: Message): void;
  /** Sends what is queued now instead of on the next loop turn. */
  flush(): void;
  /**
   * Room left now in the bulk lane (appends, their responses, forwarded
   * proposals) of `nodeId`'s send queue; undefined when sends to it are not
   * held back (unknown peer, not connected, or stalled: peer.ts). The host
   * takes no more raft work per turn than this room holds (docs/host.md).
   */
  bulkRoom(nodeId: NodeId): SendRoom | undefined;
  /** The connection state of one peer, if it is known. */
  peerStatus(nodeId: NodeId): PeerStatus | undefined;
  /** Ends streams and the server; pending messages are dropped. Idempotent. */
  close(): Promise<void>;
}

/** Options of a `GrpcTransport`. */
export interface TransportOptions {
  /** This node's id; must be a positive safe integer. */
  readonly nodeId: NodeId;
  /** Where to listen, "host:port"; port 0 binds an ephemeral port (tests). */
  readonly listenAddress: string;
  readonly handlers: TransportHandlers;
  readonly limits?: Partial<TransportLimits>;
  /**
   * Uniform in [0, 1), for reconnect jitter. Defaults to Math.random: jitter
   * at this I/O edge does not need to be reproducible.
   */
  readonly random?: () => number;
}

const ADDRESS_PATTERN = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;
const PORT_MAX = 65535;

/** Throws unless `address` is "host:port" (IPv6 hosts in brackets). */
export function checkAddress(address: string): void {
  const m = ADDRESS_PATTERN.exec(address);
  if (m === null || Number(m[2]) > PORT_MAX) {
    throw new TransportUsageError(`bad address "${address}": expected host:port`);
  }
}

/** The gRPC raft transport of one node. */
export class GrpcTransport implements Transport {
  readonly nodeId: NodeId;
  readonly stats: TransportStats = newTransportStats();
  private readonly limits: TransportLimits;
  private readonly handlers: TransportHandlers;
  private readonly random: () => number;
  private readonly server: RaftServer;
  private readonly peers = new Map<NodeId, Peer>();
  /** Peers with messages queued since the last flush. */
  private readonly dirty = new Set<Peer>();
  private flushScheduled: NodeJS.Immediate | undefined;
  private closed = false;

  constructor(private readonly options: TransportOptions) {
    if (!Number.isSafeInteger(options.nodeId) || options.nodeId <= 0) {
      throw new TransportUsageError(`node id ${options.nodeId} must be a positive safe integer`);
    }
    checkAddress(options.listenAddress);
    this.nodeId = options.nodeId;
    this.limits = resolveLimits(options.limits);
    this.handlers = options.handlers;
    this.random = options.random ?? Math.random;
    this.server = new RaftServer({
      localNodeId: this.nodeId,
      limits: this.limits,
      stats: this.stats,
      deliver: (groupId, msg, fromNode) => this.deliver(groupId, msg, fromNode),
    });
  }

  async start(): Promise<number> {
    if (this.closed) throw new TransportUsageError('start() after close()');
    return await this.server.listen(this.options.listenAddress);
  }

  get port(): number {
    return this.server.port;
  }

  /** Serves another gRPC service on the peer port (see RaftServer.addService). */
  addService(definition: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation, own?: ReadonlyMap<string, GrpcMethod>): void {
    this.server.addService(definition, implementation, own);
  }

  setPeer(nodeId: NodeId, address: string): void {
    checkAddress(address);
    if (this.closed) return;
    const existing = this.peers.get(nodeId);
    if (existing !== undefined) {
      if (existing.address === address) return;
      this.removePeer(nodeId);
    }
    this.peers.set(
      nodeId,
      new Peer(nodeId, address, {
        localNodeId: this.nodeId,
        limits: this.limits,
        stats: this.stats,
        random: this.random,
        onUnreachable: (id) => {
          if (!this.closed) this.handlers.onUnreachable?.(id);
        },
        // A removed peer's snapshots still report failure (raft must not wait), a closed transport's do not.
        onSnapshotStatus: (id, groupId, msg, ok) => {
          if (!this.closed) this.handlers.onSnapshotStatus?.(id, groupId, msg, ok);
        },
        onBulkRoom: (id) => {
          if (!this.closed) this.handlers.onBulkRoom?.(id);
        },
      }),
    );
  }

  removePeer(nodeId: NodeId): void {
    const peer = this.peers.get(nodeId);
    if (peer === undefined) return;
    this.peers.delete(nodeId);
    this.dirty.delete(peer);
    peer.close();
  }

  send(toNode: NodeId, groupId: number, msg: Message): void {
    if (this.closed) {
      countDrop(this.stats, 'closed');
      return;
    }
    const peer = this.peers.get(toNode);
    if (peer === undefined) {
      countDrop(this.stats, 'noPeer');
      this.stats.unreachableReports++;
      setImmediate(() => {
        if (!this.closed) this.handlers.onUnreachable?.(toNode);
      });
      return;
    }
    if (msg.type === 'snap' && msg.snapshot !== undefined) {
      peer.sendSnapshot(groupId, msg);
      return;
    }
    const encoded = encodeGroupMessage(groupId, msg);
    if (encoded.length > this.limits.messageBytesMax) {
      countDrop(this.stats, 'oversized');
      return;
    }
    if (!peer.enqueue(encoded, laneOf(msg))) return;
    this.dirty.add(peer);
    this.flushScheduled ??= setImmediate(() => {
      this.flushScheduled = undefined;
      this.flush();
    });
  }

  flush(): void {
    if (this.flushScheduled !== undefined) clearImmediate(this.flushScheduled);
    this.flushScheduled = undefined;
    for (const peer of this.dirty) peer.flush();
    this.dirty.clear();
  }

  bulkRoom(nodeId: NodeId): SendRoom | undefined {
    return this.peers.get(nodeId)?.bulkRoom();
  }

  peerStatus(nodeId: NodeId): PeerStatus | undefined {
    return this.peers.get(nodeId)?.status();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.flushScheduled !== undefined) clearImmediate(this.flushScheduled);
    this.flushScheduled = undefined;
    this.dirty.clear();
    for (const peer of this.peers.values()) peer.close();
    this.peers.clear();
    this.server.close();
  }

  private deliver(groupId: number, msg: Message, fromNode: NodeId): void {
    if (this.closed) return;
    const known = this.handlers.isKnownGroup?.(groupId) ?? true;
    if (known) {
      this.stats.messagesReceived++;
      this.handlers.onMessage(groupId, msg, fromNode);
    } else {
      this.stats.unknownGroupMessages++;
      this.handlers.onUnknownGroup?.(groupId, msg, fromNode);
    }
  }
}
