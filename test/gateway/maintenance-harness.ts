/**
 * Helpers of the Maintenance tests: a StoreNode plus the etcd server on it,
 * composed as the embedded default composes them, with the server options
 * the embedded default does not expose (the space quota) and any number of
 * nodes (MoveLeader needs three). Loopback, ephemeral ports.
 */
import { ALL_RANGES_SPAN } from '../../src/shard/replica/index.js';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { StoreNode, enginePath, wholeKeyspaceRange } from '../../src/node/index.js';
import { clusterIdOf, memberIdOfNode } from '../../src/gateway/embedded.js';
import { LocalRangeRouter } from '../../src/gateway/router.js';
import { EtcdServer } from '../../src/gateway/server.js';
import type { EngineKind } from '../../src/storage/index.js';
import { TEST_TICK_MS } from './server-harness.js';

/** A node with its etcd server. */
export interface NodeServer {
  readonly node: StoreNode;
  readonly server: EtcdServer;
  /** The client address, host:port. */
  readonly address: string;
  close(): Promise<void>;
}

/** Options of {@link startNodeServer}. */
export interface NodeServerOptions {
  readonly nodeId?: number;
  /** Voters of range 1 (default: this node alone). */
  readonly replicas?: readonly number[];
  /** Peer raft addresses by node id (the other replicas). */
  readonly peers?: ReadonlyMap<number, string>;
  /** This node's raft listen address; default an ephemeral port. */
  readonly peerListen?: string;
  readonly engineKind?: EngineKind;
  readonly dataDir?: string;
  readonly quotaBackendBytes?: number;
}

/** Bytes of the files in a directory (a durable engine's size, as the embedded default reports it). */
async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) {
    const st = await stat(join(dir, name)).catch(() => undefined);
    if (st?.isFile() === true) total += st.size;
  }
  return total;
}

/**
 * Opens a node hosting range 1 and serves the etcd API on it. Status.dbSize
 * as the embedded default: the engine directory's bytes, or the memory
 * engine's approximate size.
 */
export async function startNodeServer(options: NodeServerOptions = {}): Promise<NodeServer> {
  const nodeId = options.nodeId ?? 1;
  const node = await StoreNode.open({
    nodeId,
    engineKind: options.engineKind ?? 'memory',
    ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
    peerListen: options.peerListen ?? '127.0.0.1:0',
    peers: new Map(options.peers ?? []),
    ranges: wholeKeyspaceRange(options.replicas ?? [nodeId]),
    tickMs: TEST_TICK_MS,
  });
  try {
    const server = await EtcdServer.start({
      listen: [{ host: '127.0.0.1', port: 0 }],
      router: new LocalRangeRouter(node),
      clusterId: clusterIdOf('keyspan/maintenance-test'),
      member: { id: memberIdOfNode(nodeId), name: `node${nodeId}`, peerURLs: [`http://127.0.0.1:${node.port}`], clientURLs: [] },
      memberIdOfNode,
      dbSizeBytes: () =>
        // As the embedded default: in memory the ranges' state only, not the raft log.
        options.dataDir === undefined ? node.engine.approximateSize(ALL_RANGES_SPAN.start, ALL_RANGES_SPAN.end) : dirBytes(enginePath(options.dataDir)),
      ...(options.quotaBackendBytes !== undefined ? { quotaBackendBytes: options.quotaBackendBytes } : {}),
      onInternalError: (method, err) => console.error('internal error in', method, err),
    });
    return {
      node,
      server,
      address: server.addresses[0] ?? '',
      close: async () => {
        await server.close();
        await node.close();
      },
    };
  } catch (err) {
    await node.close();
    throw err;
  }
}
