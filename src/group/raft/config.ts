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
  readonly disableProposalForwarding: boolean;
  readonly maxCommittedSizePerReady: number;
  readonly stepDownOnRemoval: boolean;
}

export const DEFAULT_MAX_SIZE_PER_MSG = 1024 * 1024;
export const DEFAULT_MAX_INFLIGHT_MSGS = 256;

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
    disableProposalForwarding: c.disableProposalForwarding ?? false,
    maxCommittedSizePerReady: int('maxCommittedSizePerReady', maxCommitted, 0) === 0 ? Infinity : maxCommitted,
    stepDownOnRemoval: c.stepDownOnRemoval ?? true,
  };
}
