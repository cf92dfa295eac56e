/**
 * Configuration of one store node (docs/node.md): who it is, where it keeps
 * its data, where it listens for peers, who its peers are, and which ranges
 * it bootstraps on its very first start. Validation happens here, before
 * anything is opened, so a bad config fails with a clear message and touches
 * no disk.
 */
import type { EngineKind } from '../storage/index.js';
import type { ClusterRecord } from './data-dir.js';
import { checkAddress } from '../group/transport/index.js';
import type { HostLimits, HostRaftConfig } from '../group/host/index.js';
import { INITIAL_EPOCH, assertDescriptor, type RangeDescriptor } from '../shard/range/index.js';
import { RANGE_ENGINE_KINDS, isRangeEngineKind, type RangeEngineKind } from './range-options.js';

/** The engine kind when none is given: DESIGN's default embedded engine. */
export const NODE_ENGINE_KIND_DEFAULT: EngineKind = 'leveldb';
/** Raft tick interval when none is given (etcd's 100 ms heartbeat interval). */
export const NODE_TICK_MS_DEFAULT = 100;
/** Largest number of ranges one bootstrap list may name (a sanity bound, not a capacity limit). */
export const BOOTSTRAP_RANGES_MAX = 10_000;
/** Fewest replicas of a range on the memory engine (docs/node.md "Range engines"). */
export const MEMORY_RANGE_REPLICAS_MIN = 2;
/** Largest number of peers in the static peer map. */
export const PEERS_MAX = 1_000;

/**
 * A range the node creates on its first start. Replica raft ids equal node
 * ids (docs/host.md), so a replica is named by its node id only.
 */
export interface BootstrapRange {
  readonly rangeId: number;
  /** Inclusive start; default empty (the first key). */
  readonly start?: Uint8Array;
  /** Exclusive end; default empty (+infinity). */
  readonly end?: Uint8Array;
  /** Node ids of the range's first voters; each of them bootstraps the same list. */
  readonly replicas: readonly number[];
  /**
   * Where the range keeps its MVCC state on every node that hosts it:
   * 'shared' (default: the node's engine, next to the raft log) or 'memory'
   * (a memory engine per replica: lost on restart, rebuilt from a peer's
   * image; docs/node.md "Range engines"). Recorded on first hosting; a
   * restart naming another engine for the range is refused. Also used for a
   * replica this node gets later (the range listed without this node).
   */
  readonly engine?: RangeEngineKind;
  /** Range 1 of a cluster: the members' names and peer URLs, recorded in its descriptor (the member table). */
  readonly members?: readonly { readonly nodeId: number; readonly name: string; readonly peerUrls: readonly string[] }[];
}

/** Options of {@link StoreNode.open}. */
export interface StoreNodeOptions {
  /** This node's id: a positive safe integer, also its raft replica id in every group. */
  readonly nodeId: number;
  /** Directory of the node's files (docs/node.md); required for durable engine kinds. */
  readonly dataDir?: string;
  /** host:port the raft transport listens on; port 0 picks an ephemeral port (see StoreNode.port). */
  readonly peerListen: string;
  /** Where the other nodes listen for raft traffic (this node's own entry, if present, is skipped). */
  readonly peers: ReadonlyMap<number, string>;
  /** Engine of the node (raft log and range data share it, docs/node.md); default leveldb. */
  readonly engineKind?: EngineKind;
  /**
   * Ranges created on the node's first start, when its data directory is new.
   * Ignored on a restart: the node then reopens exactly the ranges its log
   * store holds (a range removed from it later must not come back).
   */
  readonly ranges: readonly BootstrapRange[];
  /** Raft tick interval in ms; default NODE_TICK_MS_DEFAULT. */
  readonly tickMs?: number;
  /** Raft knobs for every group (election and heartbeat ticks, ...). */
  readonly raft?: Partial<HostRaftConfig>;
  /** Host bounds (proposals pending, snapshot and truncation thresholds, ...). */
  readonly limits?: Partial<HostLimits>;
  /**
   * The cluster this node belongs to: recorded in a new data directory, and a
   * restart naming another cluster is refused (DataDirError). Absent: not
   * recorded, not checked.
   */
  readonly cluster?: ClusterRecord;
  /** Called once if the host's loop stops on an unrecoverable error; the node is unusable afterwards. */
  readonly onFatal?: (error: unknown) => void;
}

/** The bootstrap list of a single-range cluster: range 1 over the whole keyspace, a replica on every node. */
export function wholeKeyspaceRange(nodeIds: readonly number[]): BootstrapRange[] {
  return [{ rangeId: 1, replicas: [...nodeIds].sort((a, b) => a - b) }];
}

/** The descriptor a bootstrap range starts with (the same on every one of its nodes). */
export function bootstrapDescriptor(range: BootstrapRange): RangeDescriptor {
  const desc: RangeDescriptor = {
    rangeId: range.rangeId,
    start: Buffer.from(range.start ?? new Uint8Array()),
    end: Buffer.from(range.end ?? new Uint8Array()),
    replicas: range.replicas.map((nodeId) => {
      const m = range.members?.find((x) => x.nodeId === nodeId);
      const member = m === undefined ? {} : { memberName: m.name, peerUrls: [...m.peerUrls] };
      return { nodeId, replicaId: nodeId, role: 'voter' as const, ...member };
    }),
    epoch: { ...INITIAL_EPOCH },
  };
  assertDescriptor(desc);
  return desc;
}

/** A node configuration error (thrown before anything is opened). */
export class NodeConfigError extends Error {
  override readonly name = 'NodeConfigError';
}

function positiveId(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n <= 0) throw new NodeConfigError(`${what} ${n} must be a positive safe integer`);
}

/** Checks the options; throws NodeConfigError with the first problem found. */
export function validateOptions(options: StoreNodeOptions): void {
  positiveId(options.nodeId, 'nodeId');
  const kind = options.engineKind ?? NODE_ENGINE_KIND_DEFAULT;
  if (kind !== 'memory' && (options.dataDir === undefined || options.dataDir === '')) {
    throw new NodeConfigError(`engine kind '${kind}' needs a dataDir`);
  }
  try {
    checkAddress(options.peerListen);
  } catch (e) {
    throw new NodeConfigError(`peerListen: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (options.peers.size > PEERS_MAX) throw new NodeConfigError(`at most ${PEERS_MAX} peers`);
  for (const [id, address] of options.peers) {
    positiveId(id, 'peer id');
    try {
      checkAddress(address);
    } catch (e) {
      throw new NodeConfigError(`peer ${id}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (options.tickMs !== undefined && (!Number.isFinite(options.tickMs) || options.tickMs <= 0)) {
    throw new NodeConfigError(`tickMs ${options.tickMs} must be positive`);
  }
  if (options.ranges.length > BOOTSTRAP_RANGES_MAX) throw new NodeConfigError(`at most ${BOOTSTRAP_RANGES_MAX} bootstrap ranges`);
  const seen = new Set<number>();
  for (const r of options.ranges) {
    positiveId(r.rangeId, 'rangeId');
    if (seen.has(r.rangeId)) throw new NodeConfigError(`range ${r.rangeId} is listed twice`);
    seen.add(r.rangeId);
    if (r.replicas.length === 0) throw new NodeConfigError(`range ${r.rangeId} has no replicas`);
    for (const n of r.replicas) {
      positiveId(n, `range ${r.rangeId}: replica node`);
      if (n !== options.nodeId && !options.peers.has(n)) {
        throw new NodeConfigError(`range ${r.rangeId}: replica node ${n} is not in peers`);
      }
    }
    if (r.engine !== undefined && !isRangeEngineKind(r.engine)) {
      throw new NodeConfigError(
        `range ${r.rangeId}: engine '${String(r.engine)}' is not a range engine (one of ${RANGE_ENGINE_KINDS.map((k) => `'${k}'`).join(', ')})`,
      );
    }
    if (r.engine === 'memory' && r.replicas.length < MEMORY_RANGE_REPLICAS_MIN) {
      // A restarted memory replica is rebuilt from another replica's state: alone, it could never come back.
      throw new NodeConfigError(
        `range ${r.rangeId}: a memory range needs at least ${MEMORY_RANGE_REPLICAS_MIN} replicas (a restarted replica is rebuilt from another's state)`,
      );
    }
    if (new Set(r.replicas).size !== r.replicas.length) throw new NodeConfigError(`range ${r.rangeId}: a node is listed twice`);
    try {
      bootstrapDescriptor(r);
    } catch (e) {
      throw new NodeConfigError(`range ${r.rangeId}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}
