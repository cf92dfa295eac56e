/**
 * Per-seed scenario: the cluster size, raft feature flags, timing, workload
 * rates, disk and network conditions, and the fault mix. Everything is drawn
 * from the seed, so a seed names one scenario exactly.
 */
import type { NetworkConditions } from './network.js';
import type { RaftKnobs, SnapshotPolicy } from './node-host.js';
import type { SimRandom } from './random.js';

/** The faults the schedule injects. */
export const FAULT_KINDS = [
  'crash',
  'crashAll',
  'partition',
  'oneWay',
  'isolateLeader',
  'heal',
  'lossyNetwork',
  'slowDisk',
  'addLearner',
  'promoteLearner',
  'removeVoter',
  'replaceNode',
  'transferLeader',
  'truncateLog',
  'pause',
  // Targeted crashes (BUGGIFY-style, drawn per write, not by the schedule):
  'crashAfterVote',
  'crashMidWrite',
] as const;

/** One kind of injected fault. */
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Relative weights of each fault kind in the schedule. */
const FAULT_WEIGHTS: Readonly<Record<FaultKind, number>> = {
  crash: 10,
  crashAll: 1,
  partition: 8,
  oneWay: 5,
  isolateLeader: 6,
  heal: 4,
  lossyNetwork: 5,
  slowDisk: 5,
  addLearner: 4,
  promoteLearner: 4,
  removeVoter: 3,
  replaceNode: 4,
  transferLeader: 6,
  truncateLog: 5,
  pause: 5,
  crashAfterVote: 0,
  crashMidWrite: 0,
};

/** Everything a seed decides before the run starts. */
export interface Scenario {
  readonly clusterSize: 3 | 5;
  readonly knobs: RaftKnobs;
  /** Virtual milliseconds per raft tick. */
  readonly tickMs: number;
  /** Per-node clock-rate error: each node's tick period is tickMs ± up to this (ms). */
  readonly tickDriftMs: number;
  readonly snapshots: SnapshotPolicy;
  /** Network conditions outside fault windows. */
  readonly baseNetwork: NetworkConditions;
  /** Normal persistence delay range (ms) and the rare slow tail. */
  readonly diskMsMin: number;
  readonly diskMsMax: number;
  readonly diskSlowRate: number;
  readonly diskMsSlow: number;
  /** Mean gap (ms) between client proposals and between client reads. */
  readonly proposeGapMs: number;
  readonly readGapMs: number;
  /** Gap range (ms) between faults. */
  readonly faultGapMsMin: number;
  readonly faultGapMsMax: number;
  /** Probability a membership change goes through an explicit joint config. */
  readonly jointRate: number;
  /**
   * Probability that a node crashes right after a write that changed its
   * vote became durable (and its grant left), restarting within a few ms:
   * the window where a forgotten vote turns into a double vote.
   */
  readonly crashAfterVoteRate: number;
  /** Probability that a node crashes while a write is pending (losing it). */
  readonly crashMidWriteRate: number;
}

/** Draws a scenario from a seed's random stream. */
export function drawScenario(r: SimRandom): Scenario {
  const readOnlyOption = r.chance(0.25) ? 'leaseBased' : 'safe';
  const electionTick = r.range(8, 14);
  return {
    clusterSize: r.chance(0.5) ? 3 : 5,
    knobs: {
      electionTick,
      heartbeatTick: r.range(1, 3),
      preVote: r.chance(0.5),
      // Lease-based reads require check-quorum (the core refuses otherwise).
      checkQuorum: readOnlyOption === 'leaseBased' || r.chance(0.5),
      readOnlyOption,
      leaseDriftMarginTicks: 1, // set by withLeaseMargin once the drift is final
      maxSizePerMsg: r.pick([64, 1024, 1024 * 1024]),
      maxInflightMsgs: r.pick([1, 4, 256]),
      maxUncommittedEntriesSize: r.pick([0, 0, 200, 4096]),
      maxCommittedSizePerReady: r.pick([0, 0, 1, 100]),
      disableProposalForwarding: r.chance(0.1),
      stepDownOnRemoval: r.chance(0.7),
    },
    tickMs: 10,
    tickDriftMs: r.chance(0.3) ? r.range(1, 2) : 0,
    snapshots: { everyEntries: r.range(5, 60), keepEntries: r.range(0, 10), afterAddingNode: r.chance(0.5) },
    baseNetwork: {
      lossRate: r.pick([0, 0, 0.01, 0.05]),
      duplicateRate: r.pick([0, 0.01, 0.05]),
      delayMsMin: 1,
      delayMsMax: r.range(2, 15),
      slowRate: r.pick([0, 0.01, 0.05]),
      delayMsSlow: r.range(20, 150),
    },
    diskMsMin: 0,
    diskMsMax: r.range(1, 5),
    diskSlowRate: r.pick([0, 0.01, 0.03]),
    diskMsSlow: r.range(20, 200),
    proposeGapMs: r.range(3, 20),
    readGapMs: r.range(5, 40),
    faultGapMsMin: 50,
    faultGapMsMax: r.range(150, 600),
    jointRate: 0.3,
    crashAfterVoteRate: r.chance(0.4) ? r.pick([0.1, 0.3]) : 0,
    crashMidWriteRate: r.chance(0.4) ? r.pick([0.002, 0.01]) : 0,
  };
}

/**
 * The smallest lease margin that keeps the scenario's tick drift within bounds. Node tick
 * periods lie in [tickMs - drift, tickMs + drift]. A lease read at leader clock t < s +
 * electionTick - m happens less than (electionTick - m) leader periods after the heartbeat
 * stamped s left; a follower that got it refuses votes for at least (electionTick - 1) of its
 * periods after receipt. So m must satisfy (electionTick - m) * slowest <= (electionTick - 1) *
 * fastest. Scenario overrides (--set tickDriftMs=...) keep this derived, so drift is always
 * within the margin; only pauses (a stopped clock) break leases (see leaseClockStopped).
 */
export function leaseMarginTicks(electionTick: number, tickMs: number, tickDriftMs: number): number {
  const fastest = tickMs - tickDriftMs;
  const slowest = tickMs + tickDriftMs;
  if (fastest <= 0) throw new Error(`tickDriftMs ${tickDriftMs} must be below tickMs ${tickMs}`);
  const m = electionTick - Math.floor(((electionTick - 1) * fastest) / slowest);
  if (m >= electionTick) throw new Error(`tick drift ${tickDriftMs}ms too large for a lease with electionTick ${electionTick}`);
  return Math.max(1, m);
}

/** The scenario with its lease margin derived from its (possibly overridden) timing. */
export function withLeaseMargin(s: Scenario): Scenario {
  return { ...s, knobs: { ...s.knobs, leaseDriftMarginTicks: leaseMarginTicks(s.knobs.electionTick, s.tickMs, s.tickDriftMs) } };
}

/** Draws the next fault kind by weight. */
export function drawFault(r: SimRandom): FaultKind {
  let total = 0;
  for (const k of FAULT_KINDS) total += FAULT_WEIGHTS[k];
  let x = r.intn(total);
  for (const k of FAULT_KINDS) {
    x -= FAULT_WEIGHTS[k];
    if (x < 0) return k;
  }
  return 'heal';
}

/** A short description of a scenario for failure reports and traces. */
export function describeScenario(s: Scenario): string {
  const k = s.knobs;
  return (
    `nodes=${s.clusterSize} preVote=${k.preVote} checkQuorum=${k.checkQuorum} readOnly=${k.readOnlyOption} ` +
    `election=${k.electionTick} heartbeat=${k.heartbeatTick} maxSizePerMsg=${k.maxSizePerMsg} inflight=${k.maxInflightMsgs} ` +
    `maxUncommitted=${k.maxUncommittedEntriesSize} maxCommittedPerReady=${k.maxCommittedSizePerReady === 0 ? 'inf' : k.maxCommittedSizePerReady} ` +
    `noForwarding=${k.disableProposalForwarding} stepDownOnRemoval=${k.stepDownOnRemoval} leaseMargin=${k.leaseDriftMarginTicks} ` +
    `tickDrift=${s.tickDriftMs} snapEvery=${s.snapshots.everyEntries} keep=${s.snapshots.keepEntries} snapAfterAdd=${s.snapshots.afterAddingNode} ` +
    `crashAfterVote=${s.crashAfterVoteRate} crashMidWrite=${s.crashMidWriteRate}`
  );
}
