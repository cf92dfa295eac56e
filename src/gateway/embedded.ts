/**
 * The embedded default (DESIGN "Process model"): one StoreNode hosting range 1
 * over the whole keyspace, plus the etcd client server on top of it. Used by
 * `keyspan start` and by the gateway's end-to-end tests.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { StoreNode, enginePath, wholeKeyspaceRange } from '../node/index.js';
import type { EngineKind } from '../storage/index.js';
import type { MemberInfo } from './context.js';
import { LocalRangeRouter } from './router.js';
import { EtcdServer } from './server.js';
import type { ListenUrl } from './urls.js';

/** The node id of the embedded default's only node. */
export const EMBEDDED_NODE_ID = 1;

/** Options of {@link startEmbedded}. */
export interface EmbeddedOptions {
  /** etcd's --name (member name). */
  readonly name: string;
  /** Node data directory (unused by the memory engine). */
  readonly dataDir?: string;
  readonly engineKind: EngineKind;
  /** Client listeners (gRPC + JSON gateway on each). */
  readonly listenClient: readonly ListenUrl[];
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
  /** Server-side failures, for the log. */
  readonly onInternalError?: (method: string, err: unknown) => void;
  readonly onFatal?: (err: unknown) => void;
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

/** Opens the node, waits for nothing (requests wait out the first election), serves clients. */
export async function startEmbedded(options: EmbeddedOptions): Promise<Embedded> {
  const node = await StoreNode.open({
    nodeId: EMBEDDED_NODE_ID,
    ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
    engineKind: options.engineKind,
    peerListen: `${options.listenPeer.host}:${options.listenPeer.port}`,
    peers: new Map(),
    ranges: wholeKeyspaceRange([EMBEDDED_NODE_ID]),
    ...(options.tickMs !== undefined ? { tickMs: options.tickMs } : {}),
    ...(options.onFatal !== undefined ? { onFatal: options.onFatal } : {}),
  });
  const peerUrls = options.advertisePeerUrls ?? [`http://${options.listenPeer.host}:${node.port}`];
  // The member's client URLs need the bound ports, known only after listening;
  // the context reads them through this mutable holder.
  const member: { id: bigint; name: string; peerURLs: readonly string[]; clientURLs: readonly string[] } = {
    id: memberIdOfNode(EMBEDDED_NODE_ID),
    name: options.name,
    peerURLs: peerUrls,
    clientURLs: options.advertiseClientUrls ?? [],
  };
  let server: EtcdServer;
  try {
    server = await EtcdServer.start({
      listen: options.listenClient.map((u) => ({ host: u.host, port: u.port })),
      router: new LocalRangeRouter(node),
      clusterId: clusterIdOf(options.clusterToken ?? `keyspan/${options.name}`),
      member,
      memberIdOfNode,
      dbSizeBytes: () => dbSize(node, options.engineKind === 'memory' ? undefined : options.dataDir),
      metrics: node.metrics,
      ...(options.maxRequestBytes !== undefined ? { maxRequestBytes: options.maxRequestBytes } : {}),
      ...(options.onInternalError !== undefined ? { onInternalError: options.onInternalError } : {}),
    });
  } catch (err) {
    await node.close();
    throw err;
  }
  const clientUrls = server.addresses.map((a) => `http://${a}`);
  if (options.advertiseClientUrls === undefined) member.clientURLs = clientUrls;
  return {
    node,
    server,
    clientUrls,
    member,
    close: async () => {
      await server.close();
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
