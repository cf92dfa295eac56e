/**
 * Range descriptors and their epochs (DESIGN property 7, TiKV's
 * `metapb.Region`): a range's id, key span `[start, end)`, replicas and the
 * epoch that versions them. Requests carry the epoch they were routed with;
 * a replica compares it with its own descriptor and rejects a stale one.
 */

/** The version of a range descriptor (TiKV's RegionEpoch). */
export interface Epoch {
  /** Bumped by every membership change. */
  readonly confVersion: number;
  /** Bumped by splits and merges. */
  readonly spanVersion: number;
}

/** A replica's role in its group. */
export type ReplicaRole = 'voter' | 'learner';

/** One replica of a range: which node hosts it and its raft id. */
export interface ReplicaDescriptor {
  readonly nodeId: number;
  /** The replica's raft id in the range's group; never reused. */
  readonly replicaId: number;
  readonly role: ReplicaRole;
  /** Range 1 only: the etcd member name of the node (member = node; empty until it has started). */
  readonly memberName?: string;
  /** Range 1 only: the node's peer URLs (where every node dials it). */
  readonly peerUrls?: readonly string[];
}

/** A range's id, span, replicas and epoch. */
export interface RangeDescriptor {
  readonly rangeId: number;
  /** Inclusive start; empty = the first key. */
  readonly start: Uint8Array;
  /** Exclusive end; empty = +infinity. */
  readonly end: Uint8Array;
  readonly replicas: readonly ReplicaDescriptor[];
  readonly epoch: Epoch;
  /** Highest replica id the range ever had (absent: the highest current one); ids are never reused. */
  readonly maxReplicaId?: number;
}

/** The epoch of a range that has just been created (before any change). */
export const INITIAL_EPOCH: Epoch = Object.freeze({ confVersion: 1, spanVersion: 1 });

/** Which parts of the epoch a command must match exactly (TiKV's admin_cmd_epoch_lookup). */
export interface EpochCheck {
  readonly confVersion: boolean;
  readonly spanVersion: boolean;
}

/** Reads and writes of data check the span version only: membership changes don't move keys. */
export const DATA_EPOCH_CHECK: EpochCheck = Object.freeze({ confVersion: false, spanVersion: true });
/**
 * Both parts: membership changes and leader transfers. TiKV checks only the
 * conf version for ChangePeer; the placement driver always knows the whole
 * epoch, and checking both also refuses a change routed before a split.
 */
export const FULL_EPOCH_CHECK: EpochCheck = Object.freeze({ confVersion: true, spanVersion: true });

/**
 * Whether `epoch` matches `current` on the checked parts. Strict equality,
 * not "at least", as TiKV: a request with a newer epoch than this replica
 * has applied (e.g. a merge not yet applied here) must not be served from a
 * stale state either.
 */
export function epochMatches(epoch: Epoch, current: Epoch, check: EpochCheck): boolean {
  if (check.confVersion && epoch.confVersion !== current.confVersion) return false;
  if (check.spanVersion && epoch.spanVersion !== current.spanVersion) return false;
  return true;
}

/** Whether `key` lies in the descriptor's span. */
export function spanContainsKey(desc: Pick<RangeDescriptor, 'start' | 'end'>, key: Uint8Array): boolean {
  if (Buffer.compare(key, desc.start) < 0) return false;
  return desc.end.length === 0 || Buffer.compare(key, desc.end) < 0;
}

/**
 * Whether etcd's `[key, rangeEnd)` lies in the span. An absent/empty
 * `rangeEnd` means the single key; "\0" means every key >= key (only an
 * unbounded range holds that).
 */
export function spanContainsRange(
  desc: Pick<RangeDescriptor, 'start' | 'end'>,
  key: Uint8Array,
  rangeEnd: Uint8Array | undefined,
): boolean {
  if (!spanContainsKey(desc, key)) return false;
  if (rangeEnd === undefined || rangeEnd.length === 0) return true;
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return desc.end.length === 0;
  // [key, rangeEnd) with rangeEnd <= key is empty: nothing outside the span is touched.
  if (Buffer.compare(rangeEnd, key) <= 0) return true;
  return desc.end.length === 0 || Buffer.compare(rangeEnd, desc.end) <= 0;
}

/** A copy of `desc` with another epoch and replica list. */
export function withReplicas(desc: RangeDescriptor, replicas: readonly ReplicaDescriptor[], epoch: Epoch): RangeDescriptor {
  return { ...desc, replicas: [...replicas], epoch: { ...epoch } };
}

/** The replica with raft id `replicaId`, if it is a member. */
export function findReplica(desc: RangeDescriptor, replicaId: number): ReplicaDescriptor | undefined {
  return desc.replicas.find((r) => r.replicaId === replicaId);
}

/** Checks the shape of a descriptor (safe-integer ids, versions); throws RangeError. */
export function assertDescriptor(desc: RangeDescriptor): void {
  const safe = (n: number, what: string): void => {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`range descriptor: ${what}=${n} is not a safe integer`);
  };
  safe(desc.rangeId, 'rangeId');
  safe(desc.epoch.confVersion, 'confVersion');
  safe(desc.epoch.spanVersion, 'spanVersion');
  for (const r of desc.replicas) {
    safe(r.nodeId, 'nodeId');
    safe(r.replicaId, 'replicaId');
  }
  if (desc.end.length > 0 && Buffer.compare(desc.start, desc.end) >= 0) {
    throw new RangeError('range descriptor: start must be below end');
  }
}
