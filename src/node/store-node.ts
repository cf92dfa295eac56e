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
import { RangeNotFoundError, RangeNotInitializedError, requestTimeoutMs, type Epoch } from '../shard/range/index.js';
import { WalEngine, openEngine, type Engine, type EngineKind } from '../storage/index.js';
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
import { DataDirError, NODE_META_FORMAT, checkNodeMeta, enginePath, raftLogPath, readNodeMeta, writeNodeMeta, type NodeMeta } from './data-dir.js';
import { RANGE_ENGINE_DEFAULT, RANGE_OPTIONS_FILE, RangeOptionsTable, type RangeEngineKind } from './range-options.js';
import { RANGE_IMAGE_SERVICE_DEFINITION, fetchRangeImage, rangeImageService } from './range-image.js';
import type { GrpcMethod } from '../h2/grpc-server.js';
import { registerWalMetrics } from './wal-metrics.js';

/** First wait between rounds of a range's image fetch from its peers; doubles up to the max. */
const RANGE_RECOVERY_BACKOFF_MS = 50;
const RANGE_RECOVERY_BACKOFF_MS_MAX = 2_000;

/** What the node keeps beside the host: the log store, range options and the bootstrap list. */
interface NodeParts {
  readonly logStore: LogStore;
  /** The log store's own engine (raft-log/), or undefined when it shares the node's engine. */
  readonly logEngine: Engine | undefined;
  readonly rangeOptions: RangeOptionsTable;
  /** The options' range list (bootstrap ranges; also names the engine of ranges adopted later). */
  readonly ranges: readonly BootstrapRange[];
  readonly peers: ReadonlyMap<number, string>;
  /** How long a replica's proposal may wait to apply, or a read for its read index (etcd's request timeout for the node's raft timing). */
  readonly requestTimeoutMs: number;
}

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
  /** Peer addresses as given at open or by setPeer, by node id. */
  private readonly peerAddresses: Map<number, string>;
  /** Replicas whose state is being rebuilt from a peer's image; their groups are not hosted yet. */
  private readonly recovering = new Map<number, Replica>();
  private rangesChanged = 0;
  private readonly recoveries = new Set<Promise<void>>();
  private readonly recoveryAbort = new AbortController();
  /** Engines of ranges kept off the shared engine (memory ranges), by range id; owned by the node. */
  private readonly rangeEngines = new Map<number, Engine>();
  /** False until open() has hosted the ranges it found: until then a peer's message adopts nothing (the open loop hosts it). */
  private opened = false;
  /** Range images fetched from peers and installed (docs/node.md "Range engines"). */
  rangeImagesInstalled = 0;

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
    private readonly parts: NodeParts,
  ) {
    this.peerAddresses = new Map(parts.peers);
  }

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
        ...(durable ? { raftLog: 'wal' as const } : {}),
      };
      // Claim the directory before the engine writes anything into it.
      if (durable) await writeNodeMeta(dataDir, meta);
    }

    const engine = await openEngine(durable ? { kind, path: enginePath(dataDir) } : { kind });
    let logEngine: Engine | undefined;
    let host: MultiRaftHost | undefined;
    let node: StoreNode | undefined;
    try {
      // The raft log in a WAL of its own (docs/node.md): one synced append per flush,
      // instead of an LSM tree's put, delete and compaction of every entry.
      if (meta.raftLog === 'wal') logEngine = await openEngine({ kind: 'wal', path: raftLogPath(dataDir) });
      const logStore = await LogStore.open(logEngine ?? engine);
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
      if (logEngine instanceof WalEngine) registerWalMetrics(host.metrics.registry, logEngine);
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
      const rangeOptions = await RangeOptionsTable.load(durable ? dataDir : undefined);
      checkRangeEngines(options.ranges, rangeOptions, logStore, dataDir);
      node = new StoreNode(options.nodeId, kind, engine, host, port, leaseOptions, transport, {
        logStore,
        logEngine,
        rangeOptions,
        ranges: options.ranges,
        peers: options.peers,
        requestTimeoutMs: requestTimeoutMs(electionTicks * tickMs),
      });
      const served = node;
      transport.addService(RANGE_IMAGE_SERVICE_DEFINITION, rangeImageService((id) => served.replicas.get(id)));

      const fresh = !meta.bootstrapped;
      const bootstrap = new Map<number, BootstrapRange>();
      if (fresh) for (const r of options.ranges) if (r.replicas.includes(options.nodeId)) bootstrap.set(r.rangeId, r);
      const rangeIds = new Set<number>([...logStore.groupIds(), ...bootstrap.keys()]);
      for (const rangeId of [...rangeIds].sort((a, b) => a - b)) {
        await node.hostRange(rangeId, logStore.has(rangeId) ? undefined : bootstrap.get(rangeId));
      }
      node.opened = true;
      if (fresh) {
        // The replicas' bootstrap writes were synced before their groups were
        // created (hostGroup), or, with the log in the node's engine, precede
        // the log store's records in its log; this flush makes the groups
        // durable. Only then may node.json say that the ranges exist.
        await logStore.flush({ sync: true });
        if (durable) await writeNodeMeta(dataDir, { ...meta, bootstrapped: true });
      }
      return node;
    } catch (e) {
      if (node !== undefined) await node.close().catch(() => undefined);
      else {
        await host?.stop().catch(() => undefined);
        await logEngine?.close().catch(() => undefined);
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
   * The replica keeps its state on the range's engine (recorded first); one
   * whose state is behind what its raft log needs (a memory range after a
   * restart) is rebuilt from a peer's image before its group is hosted.
   */
  private async hostRange(rangeId: number, bootstrap: BootstrapRange | undefined): Promise<void> {
    const desc = bootstrap === undefined ? undefined : bootstrapDescriptor(bootstrap);
    const engine = await this.openRangeEngine(rangeId);
    let replica: Replica;
    try {
      replica = await Replica.open(engine, {
        rangeId,
        lease: this.leaseOptions,
        requestTimeoutMs: this.parts.requestTimeoutMs,
        ...(desc !== undefined ? { bootstrap: desc, bootstrapAppliedIndex: RANGE_INIT_LOG_INDEX } : {}),
      });
    } catch (e) {
      await this.closeRangeEngine(rangeId, engine);
      throw e;
    }
    const needed = this.imageNeeded(rangeId, replica);
    if (needed !== undefined) {
      this.recovering.set(rangeId, replica);
      this.rangesChanged++;
      const p = this.recoverRange(rangeId, replica, engine, needed).finally(() => this.recoveries.delete(p));
      this.recoveries.add(p);
      return;
    }
    await this.hostGroup(rangeId, replica, engine, bootstrap);
  }

  /** Creates the raft group of an opened replica; closes the replica (and its own engine) on failure. */
  private async hostGroup(rangeId: number, replica: Replica, engine: Engine, bootstrap: BootstrapRange | undefined): Promise<void> {
    try {
      // With the log in an engine of its own, a new group's raft state must not become
      // durable before the replica state it was created over (a bootstrap descriptor):
      // a restart would find the group and no state, which only a peer's image could mend.
      if (this.parts.logEngine !== undefined && !this.parts.logStore.has(rangeId)) await replica.engine.write([], { sync: true });
      await this.host.createGroup(rangeId, {
        peers: bootstrap?.replicas ?? [],
        stateMachine: (handle: GroupHandle) => {
          replica.attach(handle);
          return replica;
        },
        // The first listed replica of a brand-new range campaigns at once: saves an election timeout.
        campaign: bootstrap !== undefined && bootstrap.replicas[0] === this.nodeId,
      });
    } catch (e) {
      await replica.close();
      await this.closeRangeEngine(rangeId, engine);
      throw e;
    }
    this.replicas.set(rangeId, replica);
    this.rangesChanged++;
  }

  /**
   * The engine range `rangeId` keeps its state on: the recorded choice for a
   * range hosted before, else the options' (recorded now, before anything
   * of the range is written), else the shared engine.
   */
  private async openRangeEngine(rangeId: number): Promise<Engine> {
    let kind: RangeEngineKind | undefined = this.parts.rangeOptions.recorded(rangeId);
    if (kind === undefined && !this.parts.logStore.has(rangeId)) {
      kind = this.parts.ranges.find((r) => r.rangeId === rangeId)?.engine ?? RANGE_ENGINE_DEFAULT;
      await this.parts.rangeOptions.record(rangeId, kind);
    }
    if ((kind ?? RANGE_ENGINE_DEFAULT) === 'shared') return this.engine;
    // A memory range: a fresh engine. Whatever it held before a restart is gone (imageNeeded).
    const engine = await openEngine({ kind: 'memory' });
    this.rangeEngines.set(rangeId, engine);
    return engine;
  }

  /** Closes `engine` if it is range `rangeId`'s own engine (the shared engine stays open). */
  private async closeRangeEngine(rangeId: number, engine: Engine): Promise<void> {
    const own = this.rangeEngines.get(rangeId);
    if (own === undefined || own !== engine) return;
    this.rangeEngines.delete(rangeId);
    await own.close();
  }

  /**
   * The raft index a reopened replica's state must reach before its group
   * may run, or undefined if it already does. Raft's log store may have
   * recorded a snapshot (and truncated the entries below it) that the state
   * does not hold: a memory range's state is gone after a restart, and a
   * crash between raft recording a received snapshot and the install leaves
   * the old state. Replaying the log cannot rebuild either, so the replica
   * needs an image at that index or later. A replica waiting for its first
   * snapshot (a group with no members yet) gets it from raft as usual.
   */
  private imageNeeded(rangeId: number, replica: Replica): number | undefined {
    if (!this.parts.logStore.has(rangeId)) return undefined;
    const log = this.parts.logStore.group(rangeId);
    const cs = log.confState;
    if (cs.voters.length + cs.learners.length + cs.votersOutgoing.length === 0) return undefined;
    const needed = Math.max(log.snapshotMeta.index, log.truncatedState.index);
    if (replica.isInitialized && replica.appliedIndex() >= needed) return undefined;
    return needed;
  }

  /**
   * Rebuilds `replica` from an image at `minIndex` or later, fetched from
   * one of the range's other members (as the log store's membership lists
   * them; any member's applied state is committed state), then hosts its
   * group. Raft then restarts at min(image index, commit): entries up to the
   * image's index that it hands out again are skipped by the replica, later
   * ones applied from this node's log or the leader's. Retried with backoff
   * until a member can serve or the node closes; meanwhile the range is not
   * hosted here (its messages are dropped, as for a down replica).
   */
  private async recoverRange(rangeId: number, replica: Replica, engine: Engine, minIndex: number): Promise<void> {
    const signal = this.recoveryAbort.signal;
    const cs = this.parts.logStore.group(rangeId).confState;
    const members = [...new Set([...cs.voters, ...cs.learners, ...cs.votersOutgoing])].filter((id) => id !== this.nodeId);
    for (let round = 0; !signal.aborted; round++) {
      for (const id of members) {
        const address = this.memberPeers.get(id) ?? this.peerAddresses.get(id);
        if (address === undefined || signal.aborted) continue;
        let data: Uint8Array;
        try {
          data = await fetchRangeImage(address, rangeId, minIndex, signal);
          await replica.installImage(data, minIndex);
        } catch {
          continue; // that member cannot serve it now: the next one, or the next round
        }
        this.rangeImagesInstalled++;
        this.recovering.delete(rangeId);
        this.rangesChanged++;
        if (signal.aborted) {
          await replica.close();
          await this.closeRangeEngine(rangeId, engine);
          return;
        }
        await this.hostGroup(rangeId, replica, engine, undefined).catch(() => undefined);
        return;
      }
      const wait = Math.min(RANGE_RECOVERY_BACKOFF_MS * 2 ** Math.min(round, 16), RANGE_RECOVERY_BACKOFF_MS_MAX);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          signal.removeEventListener('abort', stop);
          resolve();
        }, wait);
        signal.addEventListener('abort', stop, { once: true });
      });
    }
  }

  /** Ids of the ranges whose replica is being rebuilt from a peer's image (not hosted yet). */
  recoveringRangeIds(): number[] {
    return [...this.recovering.keys()].sort((a, b) => a - b);
  }

  /** The engine kind range `rangeId` keeps its state on here ('shared' or 'memory'). */
  rangeEngineOf(rangeId: number): RangeEngineKind {
    return this.rangeEngines.has(rangeId) ? 'memory' : 'shared';
  }

  /**
   * Hosts an uninitialized replica of range `rangeId` (this node was added
   * to it: docs/operations.md "Membership"). Failures are reported to
   * onFatal-free logging only: the leader retries, so the next message tries again.
   */
  private adoptRange(rangeId: number): void {
    if (!this.opened || this.closing !== undefined || this.replicas.has(rangeId) || this.recovering.has(rangeId) || this.adopting.has(rangeId)) return;
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
    if (this.recovering.has(rangeId)) throw new RangeNotInitializedError(rangeId);
    const r = this.replicas.get(rangeId);
    if (r === undefined) throw new RangeNotFoundError(rangeId);
    return r;
  }

  /** Changes whenever a range is added or finishes recovering (the gateway's router indexes the ranges by it). */
  get rangesVersion(): number {
    return this.rangesChanged;
  }

  /** Ids of the hosted ranges, ascending. */
  rangeIds(): number[] {
    return [...this.replicas.keys()].sort((a, b) => a - b);
  }

  /** Raft and apply state of range `rangeId` on this node. */
  status(rangeId: number): RangeStatus {
    const replica = this.range(rangeId);
    const st = this.host.handle(rangeId).basicStatus();
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
  addPeerService(definition: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation, own?: ReadonlyMap<string, GrpcMethod>): void {
    this.transport.addService(definition, implementation, own);
  }

  /** Sets or changes where peer `nodeId` listens (e.g. a peer restarted elsewhere). */
  setPeer(nodeId: number, address: string): void {
    this.host.transport.setPeer(nodeId, address);
    this.peerAddresses.set(nodeId, address);
  }

  /** The node's Prometheus registry (host, transport, log-store and WAL metrics, labelled node=<id>). */
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
      this.recoveryAbort.abort();
      await Promise.all([...this.recoveries]);
      await step(() => this.host.stop());
      for (const r of this.replicas.values()) await step(() => r.close());
      for (const r of this.recovering.values()) await step(() => r.close());
      for (const e of this.rangeEngines.values()) await step(() => e.close());
      const logEngine = this.parts.logEngine;
      if (logEngine !== undefined) await step(() => logEngine.close());
      await step(() => this.engine.close());
      if (first !== undefined) throw first;
    })();
    return this.closing;
  }
}

/**
 * Refuses options that name another engine for a range than the one it was
 * created on (its data is where it was put; switching would silently lose
 * it or leave it behind): DataDirError, before any range is opened.
 */
function checkRangeEngines(ranges: readonly BootstrapRange[], table: RangeOptionsTable, logStore: LogStore, dataDir: string): void {
  for (const r of ranges) {
    if (r.engine === undefined) continue;
    const recorded = table.recorded(r.rangeId) ?? (logStore.has(r.rangeId) ? RANGE_ENGINE_DEFAULT : undefined);
    if (recorded !== undefined && recorded !== r.engine) {
      throw new DataDirError(
        `range ${r.rangeId} keeps its data in the '${recorded}' engine (${dataDir === '' ? 'this node' : `${dataDir}/${RANGE_OPTIONS_FILE}`}), not '${r.engine}'; ` +
          "a range's engine cannot change under its data",
      );
    }
  }
}
