/**
 * Membership changes of a range: building the raft conf change for a
 * placement-driver request, and the descriptor that results when raft has
 * applied one.
 *
 * The host applies every committed conf change to raft before handing the
 * entry to the state machine (the GroupStateMachine contract), so the state
 * machine cannot refuse one at apply time; the epoch check for membership
 * commands is done when the leader proposes them. Raft allows only one
 * unapplied conf change in the leader's log, and the conf version is bumped
 * by each applied change, so a change proposed against conf version v can
 * only apply on a descriptor at v.
 */
import type { ConfChange, ConfState } from '../../group/raft/index.js';
import type { RangeDescriptor, ReplicaDescriptor } from '../range/descriptor.js';
import type { ChangeReplicas } from './command-codec.js';

/**
 * The raft conf change for a replica change against `desc`; `context`
 * carries the encoded command. A member update re-adds the replica in its
 * current role: raft's membership stays the same, the entry only carries the
 * new member attributes to every replica's descriptor.
 */
export function confChangeFor(change: ChangeReplicas, context: Uint8Array, desc: RangeDescriptor): ConfChange {
  switch (change.changeType) {
    case 'updateMember': {
      const learner = desc.replicas.find((r) => r.replicaId === change.replicaId)?.role === 'learner';
      return { changes: [{ type: learner ? 'addLearner' : 'addNode', nodeId: change.replicaId }], transition: 'auto', context };
    }
    case 'addLearner':
      return { changes: [{ type: 'addLearner', nodeId: change.replicaId }], transition: 'auto', context };
    case 'promote':
    case 'addVoter':
      return { changes: [{ type: 'addNode', nodeId: change.replicaId }], transition: 'auto', context };
    case 'remove':
      return { changes: [{ type: 'removeNode', nodeId: change.replicaId }], transition: 'auto', context };
  }
}

/**
 * The descriptor after a conf change: replicas as in `confState` (voters,
 * outgoing voters → voter; learners, next learners → learner), node ids from
 * the old descriptor or from `change` for a new replica, conf version + 1.
 */
export function descriptorAfterConfChange(
  desc: RangeDescriptor,
  confState: ConfState,
  change: ChangeReplicas | undefined,
): RangeDescriptor {
  const known = (replicaId: number): ReplicaDescriptor | undefined => desc.replicas.find((r) => r.replicaId === replicaId);
  const fresh = (replicaId: number): boolean => change !== undefined && change.replicaId === replicaId && known(replicaId) === undefined;
  const nodeOf = (replicaId: number): number => known(replicaId)?.nodeId ?? (fresh(replicaId) ? (change?.nodeId ?? 0) : 0);
  // Member attributes (range 1) stay with the replica; a new one takes the change's.
  const memberOf = (replicaId: number): { memberName?: string; peerUrls?: readonly string[] } => {
    const k = known(replicaId);
    if (k !== undefined && change?.changeType === 'updateMember' && change.replicaId === replicaId) {
      return { memberName: k.memberName ?? '', peerUrls: [...(change.peerUrls ?? [])] };
    }
    const src = k ?? (fresh(replicaId) ? change : undefined);
    if (src?.peerUrls === undefined && src?.memberName === undefined) return {};
    return { memberName: src.memberName ?? '', peerUrls: [...(src.peerUrls ?? [])] };
  };
  const voters = new Set([...confState.voters, ...confState.votersOutgoing]);
  const learners = new Set([...confState.learners, ...confState.learnersNext].filter((id) => !voters.has(id)));
  const replicas: ReplicaDescriptor[] = [
    ...[...voters].map((id) => ({ nodeId: nodeOf(id), replicaId: id, role: 'voter' as const, ...memberOf(id) })),
    ...[...learners].map((id) => ({ nodeId: nodeOf(id), replicaId: id, role: 'learner' as const, ...memberOf(id) })),
  ].sort((a, b) => a.replicaId - b.replicaId);
  const maxReplicaId = Math.max(maxReplicaIdOf(desc), ...replicas.map((r) => r.replicaId));
  return {
    ...desc,
    replicas,
    epoch: { confVersion: desc.epoch.confVersion + 1, spanVersion: desc.epoch.spanVersion },
    maxReplicaId,
  };
}

/** The highest replica id `desc`'s range has had (the recorded one, or its highest current one). */
export function maxReplicaIdOf(desc: RangeDescriptor): number {
  return Math.max(desc.maxReplicaId ?? 0, 0, ...desc.replicas.map((r) => r.replicaId));
}

/**
 * Why a change cannot be proposed against `desc`, or undefined if it can
 * (the same checks etcd makes for member add/promote/remove).
 */
export function invalidChangeReason(desc: RangeDescriptor, change: ChangeReplicas): string | undefined {
  const current = desc.replicas.find((r) => r.replicaId === change.replicaId);
  switch (change.changeType) {
    case 'addLearner':
    case 'addVoter':
      return current === undefined ? undefined : `replica ${change.replicaId} is already a member`;
    case 'promote':
      if (current === undefined) return `replica ${change.replicaId} is not a member`;
      return current.role === 'learner' ? undefined : `replica ${change.replicaId} is not a learner`;
    case 'remove':
    case 'updateMember':
      return current === undefined ? `replica ${change.replicaId} is not a member` : undefined;
  }
}
