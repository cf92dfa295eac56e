/**
 * One hosted raft group: its RawNode, its log, its state machine and the
 * host's per-group bookkeeping (quiescence, backpressure, pending reads,
 * snapshot cache). Pure state: the host's loop does the driving.
 */
import type { NodeId, RawNode, StateRole } from '../raft/index.js';
import type { GroupLog } from '../log-store/index.js';
import type { GroupStateMachine, StateMachineSnapshot } from './state-machine.js';
import { ProposalWindow, type ProposalLimits } from './backpressure.js';

/** Per-group state of the host. */
export class HostedGroup {
  /** Not ticking: an idle group whose leader quiesced it. */
  quiesced = false;
  /** Not ticking: leaderless since creation or reopening, waiting in the host's election queue. */
  dormant = false;
  /** The leader as last reported by raft (0: none). */
  lead: NodeId = 0;
  role: StateRole = 'follower';
  /** ReadIndex requests handed to raft and not yet answered. */
  readsPending = 0;
  /** The host tick at which readsPending last moved; stale reads stop blocking quiescence. */
  readsSinceTick = 0;
  /** The host tick of the last read asked of this replica (a lease read or ReadIndex, local or forwarded). */
  lastReadTick = Number.NEGATIVE_INFINITY;
  /** Set by removeGroup: the loop skips the group from then on. */
  removed = false;
  /** A state-machine snapshot image kept for sending to followers (built on demand, dropped after use). */
  snapshotCache: StateMachineSnapshot | undefined = undefined;
  /** The snapshot source asked for data the host does not hold: build one in the next turn. */
  snapshotWanted = false;
  /** This node's in-flight proposals. */
  readonly proposals: ProposalWindow;

  constructor(
    readonly groupId: number,
    readonly replicaId: NodeId,
    readonly raw: RawNode,
    readonly log: GroupLog,
    public sm: GroupStateMachine,
    limits: ProposalLimits,
  ) {
    this.proposals = new ProposalWindow(groupId, limits);
  }

  /** Is `node` a member (voter, learner, or in a joint config) per the last persisted conf state? */
  hasMember(node: NodeId): boolean {
    const cs = this.log.confState;
    return cs.voters.includes(node) || cs.learners.includes(node) || cs.votersOutgoing.includes(node) || cs.learnersNext.includes(node);
  }
}
