/**
 * StoreNode: the composition of one node process (docs/node.md) — one
 * engine, one log store over it, one MultiRaftHost with a gRPC transport,
 * and one range Replica per hosted range. This is what `keyspan start` and
 * the gateway sit on; the gateway reaches replicas through `range(id)`.
 *
 * Start:   validate → node.json (identity check) → engine → log store →
 *          host.start (transport listening, clock running) → peers →
 *          one Replica + raft group per range → (first start only) flush the
 *          bootstrap durably, then mark node.json bootstrapped.
 * Restart: the same path; the ranges are those the log store holds, each
 *          Replica reopens from the engine and raft replays what is committed
 *          above its applied index.
 * Close:   host (loop, transport, log store flushed) → replicas → engine.
 */
import {
  GROUP_INIT_INDEX,
  HOST_RAFT_DEFAULTS,
  IntervalTicker,
  MultiRaftHost,
  type GroupHandle,
} from '../group/host/index.js';
import { LogStore } from '../group/log-store/index.js';
import { GrpcTransport } from '../group/transport/index.js';
import { RANGE_INIT_LOG_INDEX, Replica, type ReplicaLeaseOptions } from '../shard/replica/index.js';
import { LeaseMetrics, minLeaseTtlSeconds } from '../shard/lease/index.js';
import { RangeNotFoundError, type Epoch } from '../shard/range/index.js';
import { openEngine, type Engine, type EngineKind } from '../storage/index.js';
import type { Registry } from 'prom-client';
import type * as grpc from '@grpc/grpc-js';
import {
  NODE_ENGINE_KIND_DEFAULT,
  NODE_TICK_MS_DEFAULT,
  bootstrapDescriptor,
  validateOptions,
  type BootstrapRange,
  type StoreNodeOptions,
} from './config.js';
import { NODE_META_FORMAT, checkNodeMeta, enginePath, readNodeMeta, writeNodeMeta, type NodeMeta } from './data-dir.js';

// The host bootstraps a group's log at GROUP_INIT_INDEX and the replica writes its
// bootstrap applied index at RANGE_INIT_LOG_INDEX: they must name the same entry.
if (GROUP_INIT_INDEX !== RANGE_INIT_LOG_INDEX) {
  throw new Error(`GROUP_INIT_INDEX ${GROUP_INIT_INDEX} != RANGE_INIT_LOG_INDEX ${RANGE_INIT_LOG_INDEX}`);
}

/** A range's state as this node sees it (for status pages, tests and routing hints). */
export interface RangeStatus {
  readonly rangeId: number;
  readonly role: string;
  /** Node id of the leader this replica knows, 0 if none. */
  readonly leader: number;
  readonly term: number;
  /** Raft's commit index on this replica. */
  readonly commit: number;
  /** The replica's applied index (as its engine has it). */
  readonly applied: number;
  /** The range's current MVCC revision on this replica. */
  readonly revision: number;
  readonly epoch: Epoch;
}

/** One node: engine, log store, multi-raft host, transport and range replicas. */
export class StoreNode {
  private readonly replicas = new Map<number, Replica>();
  /** Ranges whose replica is being created on a peer's first message. */
  private readonly adopting = new Set<number>();
  private closing: Promise<void> | undefined;
  /** Peer URLs last set from range 1's member table, by node id (see syncPeers). */
  private readonly memberPeers = new Map<number, string>();

  private constructor(
    readonly nodeId: number,
    readonly engineKind: EngineKind,
    /** The node's engine (raft log and range data); owned by the node. */
    readonly engine: Engine,
    readonly host: MultiRaftHost,
    /** The port the raft transport is bound to. */
    readonly port: number,
    /** Lease timing of every replica, from the node's raft timing (docs/lease.md). */
    private readonly leaseOptions: ReplicaLeaseOptions,
    private readonly transport: GrpcTransport,
  ) {}

  /**
   * Opens the node: bootstraps its ranges on the first start (new data
   * directory), reopens them from its engine on a restart. Resolves once the
   * transport listens and every range is hosted (elections may still be
   * running: poll `status()` or retry on NotLeaderError).
   */
  static async open(options: StoreNodeOptions): Promise<StoreNode> {
    validateOptions(options);
    const kind = options.engineKind ?? NODE_ENGINE_KIND_DEFAULT;
    const durable = kind !== 'memory';
    const dataDir = options.dataDir ?? '';

    let meta: NodeMeta | undefined = durable ? await readNodeMeta(dataDir) : undefined;
    if (meta !== undefined) checkNodeMeta(dataDir, meta, options.nodeId, kind, options.cluster);
    else {
      meta = {
        format: NODE_META_FORMAT,
        nodeId: options.nodeId,
        engineKind: kind,
        bootstrapped: false,
        ...(options.cluster !== undefined ? { cluster: options.cluster } : {}),
      };
      // Claim the directory before the engine writes anything into it.
      if (durable) await writeNodeMeta(dataDir, meta);
    }

    const engine = await openEngine(durable ? { kind, path: enginePath(dataDir) } : { kind });
    let host: MultiRaftHost | undefined;
    let node: StoreNode | undefined;
    try {
      const logStore = await LogStore.open(engine);
      const listenAddress = options.peerListen;
      let transport: GrpcTransport | undefined;
      host = new MultiRaftHost({
        nodeId: options.nodeId,
        logStore,
        transport: (handlers) => (transport = new GrpcTransport({ nodeId: options.nodeId, listenAddress, handlers })),
        ticker: new IntervalTicker(options.tickMs ?? NODE_TICK_MS_DEFAULT),
        ...(options.raft !== undefined ? { raft: options.raft } : {}),
        ...(options.limits !== undefined ? { limits: options.limits } : {}),
        metricsLabels: { node: String(options.nodeId) },
        onFatal: (e) => options.onFatal?.(e),
        // A leader's message for a range this node does not host: the node was
        // just added to it; its replica starts uninitialized and is caught up by snapshot.
        onUnknownGroup: (groupId, msg) => {
          if (msg.type === 'app' || msg.type === 'heartbeat' || msg.type === 'snap') node?.adoptRange(groupId);
        },
      });
      const port = await host.start();
      for (const [id, address] of options.peers) if (id !== options.nodeId) host.transport.setPeer(id, address);
      if (transport === undefined) throw new Error('the host did not create its transport');
      const tickMs = options.tickMs ?? NODE_TICK_MS_DEFAULT;
      const electionTicks = options.raft?.electionTick ?? HOST_RAFT_DEFAULTS.electionTick;
      const leaseOptions = {
        minTtlSeconds: minLeaseTtlSeconds(electionTicks, tickMs),
        promoteExtendMs: electionTicks * tickMs,
        metrics: LeaseMetrics.of(host.metrics.registry),
      };
      node = new StoreNode(options.nodeId, kind, engine, host, port, leaseOptions, transport);

      const fresh = !meta.bootstrapped;
      const bootstrap = new Map<number, BootstrapRange>();
      if (fresh) for (const r of options.ranges) if (r.replicas.includes(options.nodeId)) bootstrap.set(r.rangeId, r);
      const rangeIds = new Set<number>([...logStore.groupIds(), ...bootstrap.keys()]);
      for (const rangeId of [...rangeIds].sort((a, b) => a - b)) {
        await node.hostRange(rangeId, logStore.has(rangeId) ? undefined : bootstrap.get(rangeId));
      }
      if (fresh) {
        // The replicas' bootstrap writes precede the log store's records in the
        // engine's log, so this one synced flush makes both durable; only then
        // may node.json say that the ranges exist.
        await logStore.flush({ sync: true });
        if (durable) await writeNodeMeta(dataDir, { ...meta, bootstrapped: true });
      }
      return node;
    } catch (e) {
      if (node !== undefined) await node.close().catch(() => undefined);
      else {
        await host?.stop().catch(() => undefined);
        await engine.close().catch(() => undefined);
      }
      throw e;
    }
  }

  /**
   * Opens range `rangeId`'s replica and hosts its raft group. With
   * `bootstrap` (a new range on a new node) the replica writes the initial
   * descriptor at RANGE_INIT_LOG_INDEX and the host creates the group's log
   * truncated at the same index; without it both reopen from the engine.
   */
  private async hostRange(rangeId: number, bootstrap: BootstrapRange | undefined): Promise<void> {
    const desc = bootstrap === undefined ? undefined : bootstrapDescriptor(bootstrap);
    const replica = await Replica.open(this.engine, {
      rangeId,
      lease: this.leaseOptions,
      ...(desc !== undefined ? { bootstrap: desc, bootstrapAppliedIndex: RANGE_INIT_LOG_INDEX } : {}),
    });
    try {
      await this.host.createGroup(rangeId, {
        peers: desc?.replicas.map((r) => r.nodeId) ?? [],
        stateMachine: (handle: GroupHandle) => {
          replica.attach(handle);
          return replica;
        },
        // The first listed replica of a brand-new range campaigns at once: saves an election timeout.
        campaign: bootstrap !== undefined && bootstrap.replicas[0] === this.nodeId,
      });
    } catch (e) {
      await replica.close();
      throw e;
    }
    this.replicas.set(rangeId, replica);
  }

  /**
   * Hosts an uninitialized replica of range `rangeId` (this node was added
   * to it: docs/operations.md "Membership"). Failures are reported to
   * onFatal-free logging only: the leader retries, so the next message tries again.
   */
  private adoptRange(rangeId: number): void {
    if (this.closing !== undefined || this.replicas.has(rangeId) || this.adopting.has(rangeId)) return;
    this.adopting.add(rangeId);
    void this.hostRange(rangeId, undefined)
      .catch(() => undefined)
      .finally(() => this.adopting.delete(rangeId));
  }

  /**
   * Points the transport at every member's first peer URL as range 1's
   * member table (its replicated descriptor) lists them, so members added
   * after this node started are dialled where they listen. Cheap: only
   * changed addresses are set. Called after membership changes and by the
   * gateway's member directory.
   */
  syncPeers(): void {
    const replica = this.replicas.get(1);
    if (replica === undefined || !replica.isInitialized) return;
    for (const r of replica.descriptor.replicas) {
      const url = r.peerUrls?.[0];
      if (r.nodeId === this.nodeId || url === undefined) continue;
      let address: string;
      try {
        address = new URL(url).host;
      } catch {
        continue;
      }
      if (this.memberPeers.get(r.nodeId) === address) continue;
      this.memberPeers.set(r.nodeId, address);
      this.host.transport.setPeer(r.nodeId, address);
    }
  }

  /** `host:port` of node `nodeId` as range 1's member table gives it (after syncPeers), if it does. */
  memberPeerAddress(nodeId: number): string | undefined {
    return this.memberPeers.get(nodeId);
  }

  /** The replica of range `rangeId`; throws RangeNotFoundError if this node does not host it. */
  range(rangeId: number): Replica {
    const r = this.replicas.get(rangeId);
    if (r === undefined) throw new RangeNotFoundError(rangeId);
    return r;
  }

  /** Ids of the hosted ranges, ascending. */
  rangeIds(): number[] {
    return [...this.replicas.keys()].sort((a, b) => a - b);
  }

  /** Raft and apply state of range `rangeId` on this node. */
  status(rangeId: number): RangeStatus {
    const replica = this.range(rangeId);
    const st = this.host.handle(rangeId).status();
    return {
      rangeId,
      role: st.role,
      leader: st.lead,
      term: st.term,
      commit: st.commit,
      applied: replica.appliedIndex(),
      revision: replica.isInitialized ? replica.currentRevision : 0,
      epoch: replica.descriptor.epoch,
    };
  }

  /**
   * Serves an extra gRPC service on the node's peer port, next to the raft
   * transport (the gateway's forwarding and member-info RPCs). Stops with
   * the node.
   */
  addPeerService(definition: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void {
    this.transport.addService(definition, implementation);
  }

  /** Sets or changes where peer `nodeId` listens (e.g. a peer restarted elsewhere). */
  setPeer(nodeId: number, address: string): void {
    this.host.transport.setPeer(nodeId, address);
  }

  /** The node's Prometheus registry (host, transport and log-store metrics, labelled node=<id>). */
  get metrics(): Registry {
    return this.host.metrics.registry;
  }

  /** The error that stopped the host's loop, if any (the node must then be closed and reopened). */
  get fatalError(): unknown {
    return this.host.fatalError;
  }

  /**
   * Graceful stop: the host first (no more applies; the log store is flushed),
   * then the replicas (pending requests fail with ReplicaClosedError: their
   * outcome is unknown), then the engine. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      let first: unknown;
      const step = async (f: () => Promise<void>): Promise<void> => {
        try {
          await f();
        } catch (e) {
          first ??= e;
        }
      };
      await step(() => this.host.stop());
      for (const r of this.replicas.values()) await step(() => r.close());
      await step(() => this.engine.close());
      if (first !== undefined) throw first;
    })();
    return this.closing;
  }
}
