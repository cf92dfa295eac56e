/**
 * RaftConfig: the knobs of one raft group member, with their defaults.
 */
import type { NodeId, RandomSource } from './types.js';
import { RaftConfigError } from './errors.js';

/** Configuration of one raft node (one member of one group). */
export interface RaftConfig {
  /** This node's id; never 0, never reused after removal. */
  id: NodeId;
  /** Ticks without hearing from a leader before campaigning (randomized to [electionTick, 2*electionTick)). */
  electionTick: number;
  /** Ticks between leader heartbeats; must be < electionTick. */
  heartbeatTick: number;
  /** The only source of randomness (election timeout jitter). */
  random: RandomSource;
  /** Last applied index when restarting (entries up to it are not handed out again). */
  applied?: number;
  /** Byte cap of one append message (after the first entry). Default 1 MiB. */
  maxSizePerMsg?: number;
  /** Append messages in flight per follower in replicate state. Default 256. */
  maxInflightMsgs?: number;
  /** Cap on payload bytes of the leader's uncommitted tail; 0 = no cap (default). */
  maxUncommittedEntriesSize?: number;
  /** Leader steps down without a quorum of recent contact; followers honour leader leases. Default false. */
  checkQuorum?: boolean;
  /** Run a pre-vote round before bumping the term. Default false. */
  preVote?: boolean;
  /** 'safe' (heartbeat round per read, default) or 'leaseBased' (requires checkQuorum). */
  readOnlyOption?: 'safe' | 'leaseBased';
  /**
   * Lease-based reads only: ticks the leader's lease ends before the followers' vote-refusal
   * window (electionTick ticks after they last heard from it), to absorb clock-rate differences
   * between nodes and the phase of the tick. A lease confirmed by heartbeats sent at leader tick
   * s serves reads while now < s + electionTick - leaseDriftMarginTicks. Safe when every pair of
   * nodes satisfies leaderTickPeriod / followerTickPeriod <= (electionTick - 1) / (electionTick -
   * leaseDriftMarginTicks). In [1, electionTick - 1]; default min(electionTick - 1, 1 +
   * ceil(electionTick / 10)) (about 10% of rate difference).
   */
  leaseDriftMarginTicks?: number;
  /**
   * This replica's raft state was just created (bootstrapped or empty), not reopened: it has
   * never acknowledged a leader's heartbeat in this group, so it owes no leader a lease and may
   * grant (pre-)votes at once. Without it a replica with a nonzero term (a restart, or a
   * bootstrap at an initial term) refuses votes for electionTick ticks first. Default false.
   */
  freshReplica?: boolean;
  /** Followers drop proposals instead of forwarding them to the leader. */
  disableProposalForwarding?: boolean;
  /** Byte cap on committed entries per Ready (at least one entry is always returned). Default unbounded. */
  maxCommittedSizePerReady?: number;
  /** A leader removed from (or demoted in) the config steps down. Default true. */
  stepDownOnRemoval?: boolean;
}

/** RaftConfig with every default filled in. */
export interface ResolvedRaftConfig {
  readonly id: NodeId;
  readonly electionTick: number;
  readonly heartbeatTick: number;
  readonly random: RandomSource;
  readonly applied: number;
  readonly maxSizePerMsg: number;
  readonly maxInflightMsgs: number;
  readonly maxUncommittedEntriesSize: number;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly readOnlyOption: 'safe' | 'leaseBased';
  readonly leaseDriftMarginTicks: number;
  readonly freshReplica: boolean;
  readonly disableProposalForwarding: boolean;
  readonly maxCommittedSizePerReady: number;
  readonly stepDownOnRemoval: boolean;
}

export const DEFAULT_MAX_SIZE_PER_MSG = 1024 * 1024;
export const DEFAULT_MAX_INFLIGHT_MSGS = 256;

/**
 * The default lease margin: one tick for the tick phase (a heartbeat is stamped with the tick it
 * follows, so it may leave up to one leader tick later) plus about 10% of electionTick for
 * tick-rate differences; always leaves at least one tick of lease.
 */
export function defaultLeaseDriftMarginTicks(electionTick: number): number {
  return Math.max(1, Math.min(electionTick - 1, 1 + Math.ceil(electionTick / 10)));
}

/** Validates and fills defaults; throws RaftConfigError. */
export function resolveConfig(c: RaftConfig): ResolvedRaftConfig {
  const int = (name: string, v: number, min: number): number => {
    if (!Number.isSafeInteger(v) || v < min) throw new RaftConfigError(`${name} must be an integer >= ${min}, got ${v}`);
    return v;
  };
  int('id', c.id, 1);
  int('heartbeatTick', c.heartbeatTick, 1);
  int('electionTick', c.electionTick, 1);
  if (c.electionTick <= c.heartbeatTick) throw new RaftConfigError('electionTick must be greater than heartbeatTick');
  const readOnlyOption = c.readOnlyOption ?? 'safe';
  const checkQuorum = c.checkQuorum ?? false;
  if (readOnlyOption === 'leaseBased' && !checkQuorum) {
    throw new RaftConfigError("readOnlyOption 'leaseBased' requires checkQuorum");
  }
  const leaseDriftMarginTicks = c.leaseDriftMarginTicks ?? defaultLeaseDriftMarginTicks(c.electionTick);
  int('leaseDriftMarginTicks', leaseDriftMarginTicks, 1);
  if (leaseDriftMarginTicks >= c.electionTick) {
    // A margin of electionTick or more leaves no lease at all (every lease read would take the safe path).
    throw new RaftConfigError(`leaseDriftMarginTicks must be < electionTick (${c.electionTick}), got ${leaseDriftMarginTicks}`);
  }
  const maxUncommitted = c.maxUncommittedEntriesSize ?? 0;
  const maxCommitted = c.maxCommittedSizePerReady ?? 0;
  return {
    id: c.id,
    electionTick: c.electionTick,
    heartbeatTick: c.heartbeatTick,
    random: c.random,
    applied: int('applied', c.applied ?? 0, 0),
    maxSizePerMsg: int('maxSizePerMsg', c.maxSizePerMsg ?? DEFAULT_MAX_SIZE_PER_MSG, 0),
    maxInflightMsgs: int('maxInflightMsgs', c.maxInflightMsgs ?? DEFAULT_MAX_INFLIGHT_MSGS, 1),
    maxUncommittedEntriesSize: int('maxUncommittedEntriesSize', maxUncommitted, 0) === 0 ? Infinity : maxUncommitted,
    checkQuorum,
    preVote: c.preVote ?? false,
    readOnlyOption,
    leaseDriftMarginTicks,
    freshReplica: c.freshReplica ?? false,
    disableProposalForwarding: c.disableProposalForwarding ?? false,
    maxCommittedSizePerReady: int('maxCommittedSizePerReady', maxCommitted, 0) === 0 ? Infinity : maxCommitted,
    stepDownOnRemoval: c.stepDownOnRemoval ?? true,
  };
}
