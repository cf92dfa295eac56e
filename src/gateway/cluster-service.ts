/**
 * etcdserverpb.Cluster: MemberList over the cluster's members (member =
 * node, docs/compatibility.md). In a static cluster the members are the
 * nodes of --initial-cluster; each member's client URLs are learned from the
 * member itself over the peer port (forward-members.ts). MemberAdd, Remove,
 * Update and Promote are not registered (UNIMPLEMENTED): membership changes
 * belong to the placement driver.
 */
import { type GatewayContext, type MemberInfo, nodeHeader, type ServiceHandlers } from './context.js';
import type { EtcdMessage } from './proto.js';

/** The members MemberList reports. */
export interface MemberDirectory {
  /** Every member, in member id order; `signal` fires when the client gives up. */
  list(signal: AbortSignal): Promise<readonly MemberInfo[]>;
}

/** The Cluster service's grpc-js handlers; without `members` this node is the only member. */
export function clusterService(ctx: GatewayContext, members?: MemberDirectory): ServiceHandlers {
  const memberList = async (_m: EtcdMessage, call: { signal: AbortSignal }): Promise<EtcdMessage> => {
    const list = members === undefined ? [ctx.member] : await members.list(call.signal);
    return {
      header: nodeHeader(ctx),
      members: list.map((m) => ({
        ID: m.id,
        name: m.name,
        peerURLs: [...m.peerURLs],
        clientURLs: [...m.clientURLs],
        isLearner: false,
      })),
    };
  };
  return { MemberList: memberList };
}
