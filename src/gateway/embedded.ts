/**
 * One member process: a StoreNode hosting range 1 over the whole keyspace,
 * plus the etcd client server on top of it. Alone it is the embedded default
 * (DESIGN "Process model"); with a static cluster (`cluster`, from etcd's
 * --initial-cluster) every member bootstraps range 1 with all members as
 * voters, serves its Forward service on the peer port, and forwards calls
 * its replica cannot serve to the leader's node. Used by `keyspan start` and
 * by the gateway's end-to-end tests.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { NODE_TICK_MS_DEFAULT, StoreNode, enginePath, readNodeMeta, wholeKeyspaceRange, type ClusterRecord } from '../node/index.js';
import { ALL_RANGES_SPAN } from '../shard/replica/index.js';
import { HOST_RAFT_DEFAULTS, type HostLimits, type HostRaftConfig } from '../group/host/index.js';
import { Forwarding } from './forward.js';
import type { StaticMember } from './forward-members.js';
import { discoverJoin } from './join.js';
import { memberGuard, type MemberRole } from './member-guard.js';
import { MEMBERSHIP_SERVICE_DEFINITION, membershipService, memberTable, RemovalWatcher } from './member-removal.js';
import { ReplicatedMembers } from './replicated-members.js';
import { type EngineKind, WalEngine } from '../storage/index.js';
import type { MemberInfo, UnaryHandler } from './context.js';
import { AutoCompactor, type CompactorEvent } from './compactor.js';
import type { CompactionPolicy } from './compactor-schedule.js';
import { LocalRangeRouter } from './router.js';
import { requestTimeoutMs } from '../shard/range/index.js';
import { EtcdServer } from './server.js';
import type { ListenUrl } from './urls.js';
import type { ClientTls } from './tls.js';

/** The node id of the embedded default's only node. */
export const EMBEDDED_NODE_ID = 1;

/** Options of {@link startEmbedded}. */
export interface EmbeddedOptions {
  /** etcd's --name (member name). */
  readonly name: string;
  /** Node data directory (unused by the memory engine). */
  readonly dataDir?: string;
  readonly engineKind: EngineKind;
  /** Client listeners (gRPC + JSON gateway on each); `https://` ones are served with {@link clientTls}. */
  readonly listenClient: readonly ListenUrl[];
  /** Certificates of the `https://` client listeners. */
  readonly clientTls?: ClientTls;
  /** Client URLs advertised in MemberList; default: the listen URLs (with bound ports). */
  readonly advertiseClientUrls?: readonly string[];
  /** Raft transport listener. */
  readonly listenPeer: ListenUrl;
  /** Peer URLs advertised in MemberList; default: the peer listen URL. */
  readonly advertisePeerUrls?: readonly string[];
  readonly maxRequestBytes?: number;
  /** etcd's --quota-backend-bytes: 0 or unset = 2 GiB, negative = no quota. */
  readonly quotaBackendBytes?: number;
  /** etcd's --auth-token-ttl, in ms: an unused simple token expires after it (default 300 s). */
  readonly authTokenTtlMs?: number;
  /** etcd's --listen-metrics-urls: plain-HTTP listeners serving /metrics, /health and /version. */
  readonly listenMetrics?: readonly ListenUrl[];
  /** etcd's --auto-compaction-mode/--auto-compaction-retention; absent: no automatic compaction. */
  readonly autoCompaction?: CompactionPolicy;
  /** Check interval of revision-mode compaction (default etcd's 5 minutes; tests shorten it). */
  readonly revisionCompactionCheckIntervalMs?: number;
  /** Automatic compactions, for the log. */
  readonly onCompaction?: (event: CompactorEvent) => void;
  /** etcd's --experimental-watch-progress-notify-interval; default 10 minutes. */
  readonly progressNotifyIntervalMs?: number;
  /** Raft tick in ms (tests shorten elections). */
  readonly tickMs?: number;
  /** Cluster id in response headers; default derived from the name ({@link clusterIdOf}). */
  readonly clusterToken?: string;
  /** A static cluster of several members; absent: a cluster of this one node (id EMBEDDED_NODE_ID). */
  readonly cluster?: EmbeddedCluster;
  /** Raft knobs (tests shorten elections). */
  readonly raft?: Partial<HostRaftConfig>;
  /** Host bounds (tests shorten log truncation). */
  readonly limits?: Partial<HostLimits>;
  /** Server-side failures, for the log. */
  readonly onInternalError?: (method: string, err: unknown) => void;
  readonly onFatal?: (err: unknown) => void;
  /**
   * Called once when this cluster member finds that it was removed from the
   * cluster (member-removal.ts); from then on it answers every call with
   * "etcdserver: server stopped". etcd stops such a member: `keyspan start`
   * closes and exits 0.
   */
  readonly onRemoved?: () => void;
}

/** The static cluster a member belongs to (all members are given the same list). */
export interface EmbeddedCluster {
  /** Every member, this one included, with node ids derived identically everywhere. */
  readonly members: readonly StaticMember[];
  /** This member's node id. */
  readonly localNodeId: number;
  /** Recorded in the data directory; a restart with another one is refused. */
  readonly record: ClusterRecord;
  /**
   * etcd's `--initial-cluster-state existing`: a new data directory joins
   * the running cluster as the member MemberAdd created (its node id and the
   * cluster id are asked of the other members, join.ts); an existing one
   * restarts as the node it records.
   */
  readonly join?: boolean;
}

/** How often the transport's peer addresses are refreshed from range 1's member table. */
export const PEER_SYNC_INTERVAL_MS = 200;

/** A running embedded default. */
export interface Embedded {
  readonly node: StoreNode;
  readonly server: EtcdServer;
  /** Client URLs as served (ports resolved). */
  readonly clientUrls: readonly string[];
  /** Metrics URLs as served (ports resolved); empty without --listen-metrics-urls. */
  readonly metricsUrls: readonly string[];
  readonly member: MemberInfo;
  /** Stops the client server, then the node. */
  close(): Promise<void>;
}

/**
 * etcd's cluster id is derived from the members and a token; keyspan derives
 * it from a token string (FNV-1a, 64 bit), so it is stable across restarts
 * and equal on every node given the same token.
 */
export function clusterIdOf(token: string): bigint {
  const prime = 0x100000001b3n;
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(token, 'utf8')) {
    h ^= BigInt(b);
    h = (h * prime) & 0xffffffffffffffffn;
  }
  return h === 0n ? 1n : h;
}

/** etcd member id of a node: the node id itself (member = node). */
export function memberIdOfNode(nodeId: number): bigint {
  return BigInt(nodeId);
}

/** `host:port` a member's raft transport is dialled at: its first peer URL. */
function peerHostPort(member: StaticMember): string {
  const first = member.peerUrls[0];
  if (first === undefined) throw new Error(`member ${member.name} has no peer URL`);
  return new URL(first).host;
}

/** Opens the node, waits for nothing (requests wait out the first election), serves clients. */
export async function startEmbedded(options: EmbeddedOptions): Promise<Embedded> {
  const cluster = options.cluster;
  let nodeId = cluster?.localNodeId ?? EMBEDDED_NODE_ID;
  const peers = new Map<number, string>();
  for (const m of cluster?.members ?? []) if (m.nodeId !== nodeId) peers.set(m.nodeId, peerHostPort(m));
  let record = cluster?.record;
  if (cluster?.join === true) {
    const meta = options.engineKind === 'memory' || options.dataDir === undefined ? undefined : await readNodeMeta(options.dataDir);
    if (meta !== undefined && meta.cluster !== undefined) {
      // A restart: the node is who its directory says (ids of joined members
      // are not derived from names); a member that joined (its record holds
      // the cluster id) dials the peers of its own copy of the member table
      // (syncPeers below), not name-derived ones.
      nodeId = meta.nodeId;
      record = meta.cluster;
      if (meta.cluster.clusterId !== undefined) peers.clear();
    } else {
      const selfUrls = options.advertisePeerUrls ?? [`http://${options.listenPeer.host}:${options.listenPeer.port}`];
      const joined = await discoverJoin(cluster.members.flatMap((m) => m.peerUrls), selfUrls);
      nodeId = joined.nodeId;
      record = { ...cluster.record, clusterId: joined.clusterId.toString() };
      peers.clear();
      for (const [id, address] of joined.peers) if (id !== nodeId) peers.set(id, address);
    }
  }
  const node = await StoreNode.open({
    nodeId,
    ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
    engineKind: options.engineKind,
    peerListen: `${options.listenPeer.host}:${options.listenPeer.port}`,
    peers,
    // A joining node creates no range: range 1 arrives from its leader by snapshot.
    ranges:
      cluster === undefined
        ? wholeKeyspaceRange([EMBEDDED_NODE_ID])
        : cluster.join === true
          ? []
          : wholeKeyspaceRange(cluster.members.map((m) => m.nodeId)).map((r) => ({ ...r, members: cluster.members })),
    ...(record !== undefined ? { cluster: record } : {}),
    ...(options.tickMs !== undefined ? { tickMs: options.tickMs } : {}),
    ...(options.raft !== undefined ? { raft: options.raft } : {}),
    ...(options.limits !== undefined ? { limits: options.limits } : {}),
    ...(options.onFatal !== undefined ? { onFatal: options.onFatal } : {}),
  });
  const peerUrls = options.advertisePeerUrls ?? [`http://${options.listenPeer.host}:${node.port}`];
  // The member's client URLs need the bound ports, known only after listening;
  // the context reads them through this mutable holder.
  const member: { id: bigint; name: string; peerURLs: readonly string[]; clientURLs: readonly string[] } = {
    id: memberIdOfNode(nodeId),
    name: options.name,
    peerURLs: peerUrls,
    clientURLs: options.advertiseClientUrls ?? [],
  };
  // A cluster member forwards what its replicas cannot serve and answers
  // other members' forwards; the handlers exist once the server does.
  let server: EtcdServer | undefined;
  const forwarding =
    cluster === undefined
      ? undefined
      : new Forwarding({
          localNodeId: nodeId,
          member: () => member,
          deadlineMs: requestTimeoutMs((options.raft?.electionTick ?? HOST_RAFT_DEFAULTS.electionTick) * (options.tickMs ?? NODE_TICK_MS_DEFAULT)),
          peerAddress: (id) => node.memberPeerAddress(id) ?? peers.get(id),
          ...(options.onInternalError !== undefined
            ? { onForwardError: (method: string, from: number, err: unknown) => options.onInternalError?.(`${method} (forwarded by node ${from})`, err) }
            : {}),
        });
  if (forwarding !== undefined) {
    const lookup = (method: string): UnaryHandler | undefined => server?.unaryHandler(method);
    const svc = forwarding.service(lookup);
    node.addPeerService(svc.definition, svc.implementation, forwarding.ownStreamMethods(lookup));
    node.addPeerService(MEMBERSHIP_SERVICE_DEFINITION, membershipService(node));
  }
  const removal =
    cluster === undefined
      ? undefined
      : new RemovalWatcher({ node, peerAddress: (id) => node.memberPeerAddress(id) ?? peers.get(id), onRemoved: () => options.onRemoved?.() });
  const router = new LocalRangeRouter(node);
  const members =
    cluster === undefined || forwarding === undefined
      ? undefined
      : new ReplicatedMembers({ node, router, forwarding, self: () => member, fallback: cluster.join === true ? [] : cluster.members, memberIdOfNode });
  const clusterId =
    cluster === undefined || record === undefined
      ? clusterIdOf(options.clusterToken ?? `keyspan/${options.name}`)
      : record.clusterId !== undefined
        ? BigInt(record.clusterId)
        : clusterIdOf(`${record.token}/${record.initialCluster}`);
  // Members added later are dialled where range 1's member table says.
  node.syncPeers();
  const peerSync = cluster === undefined ? undefined : setInterval(() => node.syncPeers(), PEER_SYNC_INTERVAL_MS);
  peerSync?.unref();
  try {
    server = await EtcdServer.start({
      listen: options.listenClient.map((u) => ({ host: u.host, port: u.port, tls: u.secure === true })),
      ...(options.clientTls !== undefined ? { tls: options.clientTls } : {}),
      ...(options.listenMetrics !== undefined ? { listenMetrics: options.listenMetrics.map((u) => ({ host: u.host, port: u.port })) } : {}),
      router,
      clusterId,
      member,
      memberIdOfNode,
      ...(forwarding !== undefined
        ? { wrapUnary: (method: string, h: UnaryHandler) => memberGuard(method, forwarding.wrap(method, h), () => (removal?.removed === true ? 'removed' : memberRole(node))) }
        : {}),
      ...(members !== undefined ? { members } : {}),
      dbSizeBytes: () => dbSize(node, options.engineKind === 'memory' ? undefined : options.dataDir),
      metrics: node.metrics,
      ...(options.maxRequestBytes !== undefined ? { maxRequestBytes: options.maxRequestBytes } : {}),
      ...(options.quotaBackendBytes !== undefined ? { quotaBackendBytes: options.quotaBackendBytes } : {}),
      ...(options.authTokenTtlMs !== undefined ? { authTokenTtlMs: options.authTokenTtlMs } : {}),
      ...(options.progressNotifyIntervalMs !== undefined ? { progressNotifyIntervalMs: options.progressNotifyIntervalMs } : {}),
      ...(options.onInternalError !== undefined ? { onInternalError: options.onInternalError } : {}),
    });
  } catch (err) {
    clearInterval(peerSync);
    removal?.close();
    forwarding?.close();
    await node.close();
    throw err;
  }
  const running = server;
  const clientUrls = running.addresses.map((a, i) => `${options.listenClient[i]?.secure === true ? 'https' : 'http'}://${a}`);
  if (options.advertiseClientUrls === undefined) member.clientURLs = clientUrls;
  // Every member runs the schedule; only the range leader's compacts (compactor.ts).
  const compactor =
    options.autoCompaction === undefined
      ? undefined
      : AutoCompactor.start({
          policy: options.autoCompaction,
          router,
          ...(options.revisionCompactionCheckIntervalMs !== undefined ? { revisionCheckIntervalMs: options.revisionCompactionCheckIntervalMs } : {}),
          ...(options.onCompaction !== undefined ? { onEvent: options.onCompaction } : {}),
        });
  return {
    node,
    server: running,
    clientUrls,
    metricsUrls: running.metricsAddresses.map((a) => `http://${a}`),
    member,
    close: async () => {
      await compactor?.close();
      clearInterval(peerSync);
      removal?.close();
      await running.close();
      forwarding?.close();
      await node.close();
    },
  };
}

/**
 * The member role of `node`: its replica's role in range 1's applied
 * descriptor; 'removed' once that descriptor no longer lists it (a node
 * whose range 1 has no state yet is joining: served as a voter would be).
 */
function memberRole(node: StoreNode): MemberRole {
  const desc = memberTable(node);
  if (desc === undefined) return 'voter';
  return desc.replicas.find((r) => r.nodeId === node.nodeId)?.role ?? 'removed';
}

/** Files of an engine directory counted for Status.dbSize (an LSM directory holds few, large files). */
const DB_FILES_COUNTED_MAX = 100_000;

/**
 * Status.dbSize: etcd reports its bolt file's size. For a durable engine the
 * bytes of its directory (LevelDB's approximate size leaves out data not yet
 * flushed to tables), for the WAL engine the bytes of its log in use (not the
 * zeros segments are preallocated with); for the memory engine its
 * approximate size.
 */
async function dbSize(node: StoreNode, dataDir: string | undefined): Promise<number> {
  if (node.engine instanceof WalEngine) return node.engine.logBytes;
  // In memory: the ranges' state only, like etcd's bolt file without its WAL
  // (counting the raft log too would keep the quota exceeded after compaction
  // until the log is truncated).
  if (dataDir === undefined) return node.engine.approximateSize(ALL_RANGES_SPAN.start, ALL_RANGES_SPAN.end);
  const dir = enginePath(dataDir);
  const names = await readdir(dir).catch(() => [] as string[]);
  // All at once: one pool round trip's wait rather than one per file.
  const stats = await Promise.all(names.slice(0, DB_FILES_COUNTED_MAX).map((name) => stat(join(dir, name)).catch(() => undefined)));
  let total = 0;
  for (const st of stats) if (st?.isFile() === true) total += st.size;
  return total;
}
