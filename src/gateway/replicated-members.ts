/**
 * The cluster's members as range 1's replicated descriptor records them
 * (member = node; docs/operations.md "Membership"): every replica of range 1
 * is a member, its raft role is the member's learner flag, and the member's
 * name and peer URLs travel with it in the descriptor. MemberAdd, Remove and
 * Promote are membership changes of range 1 proposed on its leader (the
 * calls are forwarded there), so the member table is exactly as replicated,
 * durable and epoch-checked as the range itself.
 *
 * Client URLs are not replicated: each member is asked over the peer port
 * (Forward.MemberInfo) and they are kept once known, as before.
 */
import type { StoreNode } from '../node/index.js';
import { maxReplicaIdOf, type RangeDescriptor, type ReplicaDescriptor } from '../shard/replica/index.js';
import type { MemberDirectory, MemberRecord } from './cluster-service.js';
import type { CallInfo, MemberInfo } from './context.js';
import { EtcdError } from './errors.js';
import type { Forwarding } from './forward.js';
import type { StaticMember } from './forward-members.js';
import { routed, routeOptionsOf, type RangeRouter, type RangeTarget } from './router.js';

/** etcd allows one learner at a time (etcd 3.4 maxLearners). */
export const LEARNERS_MAX = 1;
/** Most peer URLs one member may have. */
export const MEMBER_PEER_URLS_MAX = 16;

/** Options of {@link ReplicatedMembers}. */
export interface ReplicatedMembersOptions {
  readonly node: StoreNode;
  readonly router: RangeRouter;
  readonly forwarding: Forwarding;
  /** This member (client URLs known once listening). */
  readonly self: () => MemberInfo;
  /** Names and peer URLs of members a descriptor made before they were recorded lacks. */
  readonly fallback: readonly StaticMember[];
  readonly memberIdOfNode: (nodeId: number) => bigint;
}

/** Parses and normalizes peer URLs as etcd's types.NewURLs does; MEMBER_BAD_URLS otherwise. */
export function parsePeerUrls(urls: readonly string[]): string[] {
  if (urls.length === 0 || urls.length > MEMBER_PEER_URLS_MAX) throw EtcdError.of('MEMBER_BAD_URLS');
  const out: string[] = [];
  for (const text of urls) {
    let u: URL;
    try {
      u = new URL(text);
    } catch {
      throw EtcdError.of('MEMBER_BAD_URLS');
    }
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.port === '' || (u.pathname !== '/' && u.pathname !== '')) {
      throw EtcdError.of('MEMBER_BAD_URLS');
    }
    const norm = `${u.protocol}//${u.host}`;
    if (!out.includes(norm)) out.push(norm);
  }
  return out.sort();
}

/** Time a started-check may wait for one member's answer. */
export const STARTED_CHECK_TIMEOUT_MS = 500;

const quorum = (voters: number): number => Math.floor(voters / 2) + 1;

/** {@link MemberDirectory} backed by range 1's replicated descriptor. */
export class ReplicatedMembers implements MemberDirectory {
  private readonly clientUrls = new Map<number, { name: string; urls: readonly string[] }>();

  constructor(private readonly options: ReplicatedMembersOptions) {}

  /**
   * Voters counted as started (etcd's strict reconfiguration check): this
   * node (the leader) and every voter that answers over the peer port now —
   * a member added but not started yet, or stopped, does not.
   */
  private async startedVoters(desc: RangeDescriptor): Promise<Set<number>> {
    const started = new Set<number>();
    await Promise.all(
      desc.replicas
        .filter((r) => r.role === 'voter')
        .map(async (r) => {
          if (r.nodeId === this.options.node.nodeId) {
            started.add(r.replicaId);
            return;
          }
          try {
            const info = await this.options.forwarding.memberInfo(r.nodeId, STARTED_CHECK_TIMEOUT_MS);
            if (info.node_id === r.nodeId) started.add(r.replicaId);
          } catch {
            // Not answering: not started.
          }
        }),
    );
    return started;
  }

  /** Range 1's descriptor as applied on this node; undefined before its replica has state. */
  private localDescriptor(): RangeDescriptor | undefined {
    const ids = this.options.node.rangeIds();
    if (!ids.includes(1)) return undefined;
    const replica = this.options.node.range(1);
    return replica.isInitialized ? replica.descriptor : undefined;
  }

  async list(signal: AbortSignal): Promise<readonly MemberRecord[]> {
    this.options.node.syncPeers();
    const desc = this.localDescriptor();
    const local = this.options.node.nodeId;
    if (desc === undefined) return [{ ...this.options.self(), isLearner: false }];
    const unknown = desc.replicas.filter((r) => r.nodeId !== local && !this.clientUrls.has(r.nodeId));
    if (unknown.length > 0 && !signal.aborted) {
      await Promise.all(
        unknown.map(async (r) => {
          try {
            const info = await this.options.forwarding.memberInfo(r.nodeId);
            if (info.node_id === r.nodeId) this.clientUrls.set(r.nodeId, { name: info.name, urls: [...info.client_urls] });
          } catch {
            // Not reachable (or not started): listed without client URLs, asked again next time.
          }
        }),
      );
    }
    return [...desc.replicas].sort((a, b) => a.nodeId - b.nodeId).map((r) => this.record(r));
  }

  private record(r: ReplicaDescriptor): MemberRecord {
    const isLearner = r.role === 'learner';
    if (r.nodeId === this.options.node.nodeId) {
      const self = this.options.self();
      return { ...self, peerURLs: r.peerUrls ?? self.peerURLs, isLearner };
    }
    const fallback = this.options.fallback.find((m) => m.nodeId === r.nodeId);
    const learned = this.clientUrls.get(r.nodeId);
    // etcd lists a member with no name until it has started and published it.
    const name = r.memberName !== undefined && r.memberName !== '' ? r.memberName : (learned?.name ?? fallback?.name ?? '');
    return {
      id: this.options.memberIdOfNode(r.nodeId),
      name,
      peerURLs: r.peerUrls ?? fallback?.peerUrls ?? [],
      clientURLs: learned?.urls ?? [],
      isLearner,
    };
  }

  /**
   * Runs `f` on range 1's leader replica for `call` (forwarded there when
   * the call's scope allows and the leader is elsewhere, retried on stale epochs).
   */
  private onLeader<T>(call: CallInfo, f: (target: RangeTarget) => Promise<T>): Promise<T> {
    // The checks read the leader's applied member table: a leader just elected may not have
    // applied a change committed before it (a MemberAdd answered by its predecessor), so it
    // first applies everything committed.
    const checked = async (target: RangeTarget): Promise<T> => {
      await target.replica.readBarrier(call.signal);
      return f(target);
    };
    return routed(this.options.router, new Uint8Array(), undefined, checked, routeOptionsOf(call));
  }

  private nodeOfMember(desc: RangeDescriptor, memberId: bigint): ReplicaDescriptor | undefined {
    return desc.replicas.find((r) => this.options.memberIdOfNode(r.nodeId) === memberId);
  }

  async add(peerURLs: readonly string[], isLearner: boolean, call: CallInfo): Promise<{ member: MemberRecord; members: readonly MemberRecord[] }> {
    const urls = parsePeerUrls(peerURLs);
    const desc = await this.onLeader(call, async (target) => {
      const d = target.replica.descriptor;
      const taken = new Set(d.replicas.flatMap((r) => r.peerUrls ?? this.options.fallback.find((m) => m.nodeId === r.nodeId)?.peerUrls ?? []));
      if (urls.some((u) => taken.has(u))) throw EtcdError.of('PEER_URL_EXIST');
      if (isLearner) {
        if (d.replicas.filter((r) => r.role === 'learner').length >= LEARNERS_MAX) throw EtcdError.of('TOO_MANY_LEARNERS');
      } else {
        // etcd's strict reconfiguration check: the started voters must still
        // be a quorum once the new, not yet started, voter counts.
        const started = await this.startedVoters(d);
        const voters = d.replicas.filter((r) => r.role === 'voter').length;
        if (started.size < quorum(voters + 1)) throw EtcdError.of('MEMBER_NOT_ENOUGH_STARTED');
      }
      // Node ids (= replica ids, docs/host.md) are never reused: above every id range 1 ever had.
      const id = maxReplicaIdOf(d) + 1;
      const member = { name: '', peerUrls: urls };
      const options = { epoch: target.epoch };
      return isLearner ? target.replica.addLearner(id, id, options, member) : target.replica.addVoter(id, id, options, member);
    });
    this.options.node.syncPeers();
    const added = desc.replicas.find((r) => (r.peerUrls ?? []).join(',') === urls.join(','));
    if (added === undefined) throw new Error('the applied descriptor lacks the member just added');
    return { member: this.record(added), members: [...desc.replicas].sort((a, b) => a.nodeId - b.nodeId).map((r) => this.record(r)) };
  }

  async remove(memberId: bigint, call: CallInfo): Promise<readonly MemberRecord[]> {
    const desc = await this.onLeader(call, async (target) => {
      const d = target.replica.descriptor;
      const victim = this.nodeOfMember(d, memberId);
      if (victim === undefined) throw EtcdError.of('MEMBER_NOT_FOUND');
      const status = this.options.node.host.handle(1).status();
      if (victim.role === 'voter') {
        const voters = d.replicas.filter((r) => r.role === 'voter').length;
        const started = await this.startedVoters(d);
        started.delete(victim.replicaId);
        if (started.size < quorum(voters - 1)) throw EtcdError.of('MEMBER_NOT_ENOUGH_STARTED');
      }
      if (victim.replicaId === status.id) {
        // The leader is removed: hand leadership to the most caught-up voter
        // first; the call then fails here with NotLeaderError and is
        // forwarded to the new leader, which removes this node.
        const next = d.replicas
          .filter((r) => r.role === 'voter' && r.replicaId !== victim.replicaId)
          .sort((a, b) => (status.progress?.get(b.replicaId)?.match ?? 0) - (status.progress?.get(a.replicaId)?.match ?? 0))[0];
        if (next === undefined) throw EtcdError.of('MEMBER_NOT_ENOUGH_STARTED');
        await target.replica.transferLeader(next.replicaId, { epoch: target.epoch, signal: call.signal });
      }
      return target.replica.remove(victim.replicaId, { epoch: target.epoch });
    });
    return [...desc.replicas].sort((a, b) => a.nodeId - b.nodeId).map((r) => this.record(r));
  }

  async update(memberId: bigint, peerURLs: readonly string[], call: CallInfo): Promise<readonly MemberRecord[]> {
    const urls = parsePeerUrls(peerURLs);
    const desc = await this.onLeader(call, async (target) => {
      const d = target.replica.descriptor;
      const member = this.nodeOfMember(d, memberId);
      if (member === undefined) throw EtcdError.of('MEMBER_NOT_FOUND');
      const others = d.replicas.filter((r) => r !== member);
      const taken = new Set(others.flatMap((r) => r.peerUrls ?? this.options.fallback.find((m) => m.nodeId === r.nodeId)?.peerUrls ?? []));
      if (urls.some((u) => taken.has(u))) throw EtcdError.of('PEER_URL_EXIST');
      return target.replica.updateMember(member.replicaId, urls, { epoch: target.epoch });
    });
    this.options.node.syncPeers();
    return [...desc.replicas].sort((a, b) => a.nodeId - b.nodeId).map((r) => this.record(r));
  }

  async promote(memberId: bigint, call: CallInfo): Promise<readonly MemberRecord[]> {
    const desc = await this.onLeader(call, async (target) => {
      const learner = this.nodeOfMember(target.replica.descriptor, memberId);
      if (learner === undefined) throw EtcdError.of('MEMBER_NOT_FOUND');
      if (learner.role !== 'learner') throw EtcdError.of('MEMBER_NOT_LEARNER');
      return target.replica.promote(learner.replicaId, { epoch: target.epoch });
    });
    return [...desc.replicas].sort((a, b) => a.nodeId - b.nodeId).map((r) => this.record(r));
  }
}
