/**
 * ProgressTracker: the current membership (possibly joint) plus the
 * leader's per-peer Progress and the candidate's vote tally.
 */
import type { ConfState, NodeId } from './types.js';
import { Progress } from './progress.js';
import { jointCommitted, jointVoteResult, type VoteResult } from './quorum.js';
import { sortedIds } from './util.js';
import { invariant } from './errors.js';

/** Membership as sets (the ConfState is the sorted-array form). */
export interface TrackerConfig {
  /** Voters of the incoming (or only) majority. */
  readonly voters: Set<NodeId>;
  /** Voters of the outgoing majority; non-empty only while joint. */
  readonly outgoing: Set<NodeId>;
  readonly learners: Set<NodeId>;
  /** Outgoing voters that become learners when the joint config is left. */
  readonly learnersNext: Set<NodeId>;
  autoLeave: boolean;
}

export function emptyTrackerConfig(): TrackerConfig {
  return { voters: new Set(), outgoing: new Set(), learners: new Set(), learnersNext: new Set(), autoLeave: false };
}

export function cloneTrackerConfig(c: TrackerConfig): TrackerConfig {
  return {
    voters: new Set(c.voters),
    outgoing: new Set(c.outgoing),
    learners: new Set(c.learners),
    learnersNext: new Set(c.learnersNext),
    autoLeave: c.autoLeave,
  };
}

export function isJoint(c: TrackerConfig): boolean {
  return c.outgoing.size > 0;
}

export function confStateOf(c: TrackerConfig): ConfState {
  return {
    voters: sortedIds(c.voters),
    learners: sortedIds(c.learners),
    votersOutgoing: sortedIds(c.outgoing),
    learnersNext: sortedIds(c.learnersNext),
    autoLeave: c.autoLeave,
  };
}

export class ProgressTracker {
  config: TrackerConfig = emptyTrackerConfig();
  progress = new Map<NodeId, Progress>();
  votes = new Map<NodeId, boolean>();
  readonly maxInflight: number;
  // Cached sorted arrays of the config (recomputed on every config switch).
  private incomingArr: NodeId[] = [];
  private outgoingArr: NodeId[] = [];
  private allVotersArr: NodeId[] = [];
  private allIdsArr: NodeId[] = [];

  constructor(maxInflight: number) {
    this.maxInflight = maxInflight;
  }

  /** Installs a config and its progress map (from the Changer or a restore). */
  setConfig(config: TrackerConfig, progress: Map<NodeId, Progress>): void {
    this.config = config;
    this.progress = progress;
    this.incomingArr = sortedIds(config.voters);
    this.outgoingArr = sortedIds(config.outgoing);
    this.allVotersArr = sortedIds(new Set([...config.voters, ...config.outgoing]));
    this.allIdsArr = sortedIds(progress.keys());
    for (const id of this.allVotersArr) invariant(progress.has(id), () => `voter ${id} has no progress`);
  }

  confState(): ConfState {
    return confStateOf(this.config);
  }

  /** Every voter of either half, sorted. */
  voterIds(): readonly NodeId[] {
    return this.allVotersArr;
  }

  /** Every tracked peer (voters and learners), sorted: deterministic iteration. */
  ids(): readonly NodeId[] {
    return this.allIdsArr;
  }

  isVoter(id: NodeId): boolean {
    return this.config.voters.has(id) || this.config.outgoing.has(id);
  }

  /** Only one voter, and not joint. */
  isSingleton(): boolean {
    return this.incomingArr.length === 1 && this.outgoingArr.length === 0;
  }

  /** Highest index replicated on a (joint) quorum. */
  committed(): number {
    const prs = this.progress;
    return jointCommitted(this.incomingArr, this.outgoingArr, (id) => prs.get(id)!.match);
  }

  /** Has a (joint) quorum been active in the last interval? */
  quorumActive(selfId: NodeId): boolean {
    const votes = new Map<NodeId, boolean>();
    for (const [id, pr] of this.progress) {
      if (pr.isLearner) continue;
      votes.set(id, id === selfId || pr.recentActive);
    }
    return jointVoteResult(this.incomingArr, this.outgoingArr, votes) === 'won';
  }

  /**
   * Lease-based reads: the newest leader-clock stamp s such that a (joint) quorum of voters
   * acknowledged heartbeats sent at s or later (the leader itself counts with `now`). Every
   * member of that quorum heard from the leader no earlier than s, so refuses votes until
   * electionTick of its own ticks after s; any election quorum contains one of them.
   */
  quorumLeaseStamp(selfId: NodeId, now: number): number {
    const prs = this.progress;
    return jointCommitted(this.incomingArr, this.outgoingArr, (id) => (id === selfId ? now : prs.get(id)!.leaseAckStamp));
  }

  resetVotes(): void {
    this.votes.clear();
  }

  /** Records a vote (the first answer from a peer wins; duplicates are ignored). */
  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.allVotersArr) {
      const v = this.votes.get(id);
      if (v === undefined) continue;
      if (v) granted++;
      else rejected++;
    }
    return { granted, rejected, result: this.voteResult(this.votes) };
  }

  voteResult(votes: ReadonlyMap<NodeId, boolean>): VoteResult {
    return jointVoteResult(this.incomingArr, this.outgoingArr, votes);
  }
}
