/**
 * The node's data directory (docs/node.md):
 *
 *   <dataDir>/node.json   identity and bootstrap marker (NodeMeta), replaced atomically
 *   <dataDir>/engine/     the node's engine: the ranges' data (and the raft log in
 *                         directories made before raft-log/)
 *   <dataDir>/raft-log/   the raft log store's WAL engine (NodeMeta.raftLog 'wal')
 *   <dataDir>/ranges.json the ranges kept in another engine than the node's (range-options.ts)
 *
 * node.json guards against the two operator mistakes that silently corrupt a
 * cluster: starting a node on another node's directory (its raft state would
 * be taken for this node's), and switching the engine kind under existing data.
 */
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { EngineKind } from '../storage/index.js';

/** Version of node.json's format. */
export const NODE_META_FORMAT = 1;
/** File name of the node's identity record. */
export const NODE_META_FILE = 'node.json';
/** Directory name of the node's engine. */
export const ENGINE_DIR = 'engine';
/** Directory name of the raft log's WAL engine. */
export const RAFT_LOG_DIR = 'raft-log';
/** node.json is tiny; refuse to parse anything bigger (a wrong file). */
const NODE_META_BYTES_MAX = 64 * 1024;

/** What node.json records. */
export interface NodeMeta {
  readonly format: number;
  readonly nodeId: number;
  readonly engineKind: EngineKind;
  /** True once the bootstrap ranges were created and their raft state made durable. */
  readonly bootstrapped: boolean;
  /** The cluster the node was created for (absent in directories made before it was recorded). */
  readonly cluster?: ClusterRecord;
  /**
   * Where the raft log store lives: 'wal', a WAL engine of its own in
   * raft-log/; absent, in the node's engine (directories made before
   * raft-log/, which keep that layout).
   */
  readonly raftLog?: 'wal';
}

/**
 * The identity of the cluster a data directory belongs to: etcd's
 * --initial-cluster (canonical form, see node/initial-cluster.ts) and
 * --initial-cluster-token. Node ids are derived from the member list, so a
 * directory reused under another list would take another node's identity.
 */
export interface ClusterRecord {
  readonly initialCluster: string;
  readonly token: string;
  /** Cluster id (decimal) of a member that joined a running cluster; others derive it from the list and token. */
  readonly clusterId?: string;
}

/** A data directory that belongs to another node, another engine, or is unreadable. */
export class DataDirError extends Error {
  override readonly name = 'DataDirError';
}

/** Path of the engine directory under `dataDir`. */
export function enginePath(dataDir: string): string {
  return join(dataDir, ENGINE_DIR);
}

/** Path of the raft log's WAL directory under `dataDir`. */
export function raftLogPath(dataDir: string): string {
  return join(dataDir, RAFT_LOG_DIR);
}

/** Reads node.json; undefined for a new directory. */
export async function readNodeMeta(dataDir: string): Promise<NodeMeta | undefined> {
  let text: string;
  try {
    const buf = await readFile(join(dataDir, NODE_META_FILE));
    if (buf.byteLength > NODE_META_BYTES_MAX) throw new DataDirError(`${NODE_META_FILE} is larger than ${NODE_META_BYTES_MAX} bytes`);
    text = buf.toString('utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new DataDirError(`${join(dataDir, NODE_META_FILE)} is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  const m = parsed as Partial<NodeMeta> | null;
  if (
    m === null ||
    typeof m !== 'object' ||
    m.format !== NODE_META_FORMAT ||
    typeof m.nodeId !== 'number' ||
    typeof m.engineKind !== 'string' ||
    typeof m.bootstrapped !== 'boolean'
  ) {
    throw new DataDirError(`${join(dataDir, NODE_META_FILE)}: unsupported or malformed node record`);
  }
  const c = m.cluster as Partial<ClusterRecord> | undefined;
  if (c !== undefined && (c === null || typeof c.initialCluster !== 'string' || typeof c.token !== 'string' || (c.clusterId !== undefined && !/^[0-9]+$/.test(String(c.clusterId))))) {
    throw new DataDirError(`${join(dataDir, NODE_META_FILE)}: malformed cluster record`);
  }
  if (m.raftLog !== undefined && m.raftLog !== 'wal') {
    throw new DataDirError(`${join(dataDir, NODE_META_FILE)}: unknown raftLog '${String(m.raftLog)}'`);
  }
  const base = {
    format: m.format,
    nodeId: m.nodeId,
    engineKind: m.engineKind,
    bootstrapped: m.bootstrapped,
    ...(m.raftLog !== undefined ? { raftLog: m.raftLog } : {}),
  };
  if (c === undefined) return base;
  const cluster = { initialCluster: c.initialCluster as string, token: c.token as string };
  return { ...base, cluster: c.clusterId === undefined ? cluster : { ...cluster, clusterId: String(c.clusterId) } };
}

/**
 * Writes node.json atomically and durably: temp file, fsync, rename, fsync
 * of the directory — a crash leaves the old record or the new one.
 */
export async function writeNodeMeta(dataDir: string, meta: NodeMeta): Promise<void> {
  await writeJsonFileDurably(dataDir, NODE_META_FILE, meta);
}

/** Writes `value` as JSON to `<dataDir>/<name>`: temp file, fsync, rename, fsync of the directory. */
export async function writeJsonFileDurably(dataDir: string, name: string, value: unknown): Promise<void> {
  await mkdir(dataDir, { recursive: true });
  const final = join(dataDir, name);
  const tmp = `${final}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(`${JSON.stringify(value, null, 2)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, final);
  const dir = await open(dataDir, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/**
 * Refuses a directory recorded for another node id, engine kind or cluster
 * (`cluster` undefined: the caller names none, nothing to compare).
 */
export function checkNodeMeta(dataDir: string, meta: NodeMeta, nodeId: number, engineKind: EngineKind, cluster?: ClusterRecord): void {
  if (cluster !== undefined && meta.cluster !== undefined) {
    if (meta.cluster.initialCluster !== cluster.initialCluster) {
      throw new DataDirError(
        `${dataDir} was created for --initial-cluster ${meta.cluster.initialCluster}, not ${cluster.initialCluster}; ` +
          'restart with the original --initial-cluster, or use a new --data-dir for a new cluster',
      );
    }
    if (meta.cluster.token !== cluster.token) {
      throw new DataDirError(
        `${dataDir} was created with --initial-cluster-token '${meta.cluster.token}', not '${cluster.token}'`,
      );
    }
  }
  if (meta.nodeId !== nodeId) {
    throw new DataDirError(`${dataDir} belongs to node ${meta.nodeId}, not node ${nodeId}`);
  }
  if (meta.engineKind !== engineKind) {
    throw new DataDirError(`${dataDir} holds a '${meta.engineKind}' engine, not '${engineKind}'`);
  }
}
