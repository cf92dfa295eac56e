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
import { StoreNode, enginePath, wholeKeyspaceRange, type ClusterRecord } from '../node/index.js';
import type { HostLimits, HostRaftConfig } from '../group/host/index.js';
import { Forwarding } from './forward.js';
import { StaticMembers, type StaticMember } from './forward-members.js';
import type { EngineKind } from '../storage/index.js';
import type { MemberInfo, UnaryHandler } from './context.js';
import { LocalRangeRouter } from './router.js';
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
}

/** The static cluster a member belongs to (all members are given the same list). */
export interface EmbeddedCluster {
  /** Every member, this one included, with node ids derived identically everywhere. */
  readonly members: readonly StaticMember[];
  /** This member's node id. */
  readonly localNodeId: number;
  /** Recorded in the data directory; a restart with another one is refused. */
  readonly record: ClusterRecord;
}

/** A running embedded default. */
export interface Embedded {
  readonly node: StoreNode;
  readonly server: EtcdServer;
  /** Client URLs as served (ports resolved). */
  readonly clientUrls: readonly string[];
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
  const nodeId = cluster?.localNodeId ?? EMBEDDED_NODE_ID;
  const peers = new Map<number, string>();
  for (const m of cluster?.members ?? []) if (m.nodeId !== nodeId) peers.set(m.nodeId, peerHostPort(m));
  const node = await StoreNode.open({
    nodeId,
    ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
    engineKind: options.engineKind,
    peerListen: `${options.listenPeer.host}:${options.listenPeer.port}`,
    peers,
    ranges: wholeKeyspaceRange(cluster === undefined ? [EMBEDDED_NODE_ID] : cluster.members.map((m) => m.nodeId)),
    ...(cluster !== undefined ? { cluster: cluster.record } : {}),
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
          peerAddress: (id) => peers.get(id),
          ...(options.onInternalError !== undefined
            ? { onForwardError: (method: string, from: number, err: unknown) => options.onInternalError?.(`${method} (forwarded by node ${from})`, err) }
            : {}),
        });
  if (forwarding !== undefined) {
    const svc = forwarding.service((method) => server?.unaryHandler(method));
    node.addPeerService(svc.definition, svc.implementation);
  }
  const members =
    cluster === undefined || forwarding === undefined
      ? undefined
      : new StaticMembers({ members: cluster.members, localNodeId: nodeId, self: () => member, memberIdOfNode, forwarding });
  const clusterId =
    cluster === undefined
      ? clusterIdOf(options.clusterToken ?? `keyspan/${options.name}`)
      : clusterIdOf(`${cluster.record.token}/${cluster.record.initialCluster}`);
  try {
    server = await EtcdServer.start({
      listen: options.listenClient.map((u) => ({ host: u.host, port: u.port, tls: u.secure === true })),
      ...(options.clientTls !== undefined ? { tls: options.clientTls } : {}),
      router: new LocalRangeRouter(node),
      clusterId,
      member,
      memberIdOfNode,
      ...(forwarding !== undefined ? { wrapUnary: (method: string, h: UnaryHandler) => forwarding.wrap(method, h) } : {}),
      ...(members !== undefined ? { members } : {}),
      dbSizeBytes: () => dbSize(node, options.engineKind === 'memory' ? undefined : options.dataDir),
      metrics: node.metrics,
      ...(options.maxRequestBytes !== undefined ? { maxRequestBytes: options.maxRequestBytes } : {}),
      ...(options.onInternalError !== undefined ? { onInternalError: options.onInternalError } : {}),
    });
  } catch (err) {
    forwarding?.close();
    await node.close();
    throw err;
  }
  const running = server;
  const clientUrls = running.addresses.map((a, i) => `${options.listenClient[i]?.secure === true ? 'https' : 'http'}://${a}`);
  if (options.advertiseClientUrls === undefined) member.clientURLs = clientUrls;
  return {
    node,
    server: running,
    clientUrls,
    member,
    close: async () => {
      await running.close();
      forwarding?.close();
      await node.close();
    },
  };
}

/** Files of an engine directory counted for Status.dbSize (an LSM directory holds few, large files). */
const DB_FILES_COUNTED_MAX = 100_000;

/**
 * Status.dbSize: etcd reports its bolt file's size. For a durable engine the
 * bytes of its directory (LevelDB's approximate size leaves out data not yet
 * flushed to tables); for the memory engine its approximate size.
 */
async function dbSize(node: StoreNode, dataDir: string | undefined): Promise<number> {
  if (dataDir === undefined) return node.engine.approximateSize(new Uint8Array(), Buffer.alloc(16, 0xff));
  const dir = enginePath(dataDir);
  let total = 0;
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names.slice(0, DB_FILES_COUNTED_MAX)) {
    const st = await stat(join(dir, name)).catch(() => undefined);
    if (st?.isFile() === true) total += st.size;
  }
  return total;
}
