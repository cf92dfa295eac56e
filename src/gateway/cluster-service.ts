/**
 * etcdserverpb.Cluster over the cluster's members (member = node,
 * docs/compatibility.md). MemberList always; MemberAdd, MemberRemove,
 * MemberUpdate and MemberPromote when the directory can change membership (a
 * cluster member: replicated-members.ts); a single node has none of them
 * (UNIMPLEMENTED).
 */
import { type CallInfo, type GatewayContext, type MemberInfo, nodeHeader, type ServiceHandlers } from './context.js';
import type { ResponseHeader } from './messages.js';
import { EtcdError } from './errors.js';
import type { EtcdMessage } from './proto.js';

/** A member as the Cluster service reports it. */
export interface MemberRecord extends MemberInfo {
  /** A learner member (a non-voting raft replica of range 1). */
  readonly isLearner?: boolean;
}

/**
 * The members MemberList reports, and membership changes where the directory
 * supports them. A change takes the client's call: its signal fires when the
 * client gives up, and its forwarding scope routes the change to the leader.
 */
export interface MemberDirectory {
  /** Every member, in member id order; `signal` fires when the client gives up. */
  list(signal: AbortSignal): Promise<readonly MemberRecord[]>;
  /** Adds a member with these peer URLs; resolves with it and the new member list. */
  add?(peerURLs: readonly string[], isLearner: boolean, call: CallInfo): Promise<{ member: MemberRecord; members: readonly MemberRecord[] }>;
  /** Removes member `id`; resolves with the remaining members. */
  remove?(id: bigint, call: CallInfo): Promise<readonly MemberRecord[]>;
  /** Gives member `id` new peer URLs; resolves with the members. */
  update?(id: bigint, peerURLs: readonly string[], call: CallInfo): Promise<readonly MemberRecord[]>;
  /** Promotes learner `id` to a voter; resolves with the members. */
  promote?(id: bigint, call: CallInfo): Promise<readonly MemberRecord[]>;
}

function toWire(m: MemberRecord): EtcdMessage {
  return {
    ID: m.id,
    name: m.name,
    peerURLs: [...m.peerURLs],
    clientURLs: [...m.clientURLs],
    isLearner: m.isLearner ?? false,
  };
}

/** A member id field of a request (uint64, as a bigint or a decimal string). */
function memberIdOf(m: EtcdMessage): bigint {
  const v = m['ID'];
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' || typeof v === 'string') return BigInt(v);
  if (v !== null && typeof v === 'object' && 'toString' in v) return BigInt(String(v));
  return 0n;
}

/** The Cluster service's grpc-js handlers; without `members` this node is the only member. */
/** etcd's cluster server header: cluster, member and raft term, no revision (membership is not in the keyspace). */
function clusterHeader(ctx: GatewayContext): ResponseHeader {
  return { ...nodeHeader(ctx), revision: 0 };
}

export function clusterService(ctx: GatewayContext, members?: MemberDirectory): ServiceHandlers {
  const memberList = async (_m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
    const list = members === undefined ? [ctx.member] : await members.list(call.signal);
    return { header: clusterHeader(ctx), members: list.map(toWire) };
  };
  const handlers: Record<string, ServiceHandlers[string]> = { MemberList: memberList };
  const dir = members;
  if (dir?.add !== undefined) {
    const add = dir.add.bind(dir);
    handlers['MemberAdd'] = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
      const urls = Array.isArray(m['peerURLs']) ? (m['peerURLs'] as unknown[]).map(String) : [];
      const r = await add(urls, m['isLearner'] === true, call);
      return { header: clusterHeader(ctx), member: toWire(r.member), members: r.members.map(toWire) };
    };
  }
  if (dir?.remove !== undefined) {
    const remove = dir.remove.bind(dir);
    handlers['MemberRemove'] = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
      const list = await remove(memberIdOf(m), call);
      return { header: clusterHeader(ctx), members: list.map(toWire) };
    };
  }
  if (dir?.update !== undefined) {
    const update = dir.update.bind(dir);
    handlers['MemberUpdate'] = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
      const urls = Array.isArray(m['peerURLs']) ? (m['peerURLs'] as unknown[]).map(String) : [];
      const list = await update(memberIdOf(m), urls, call);
      return { header: clusterHeader(ctx), members: list.map(toWire) };
    };
  }
  if (dir?.promote !== undefined) {
    const promote = dir.promote.bind(dir);
    handlers['MemberPromote'] = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
      const id = memberIdOf(m);
      if (id === 0n) throw EtcdError.of('MEMBER_NOT_FOUND');
      const list = await promote(id, call);
      return { header: clusterHeader(ctx), members: list.map(toWire) };
    };
  }
  return handlers;
}
