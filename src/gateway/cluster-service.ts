/**
 * etcdserverpb.Cluster: MemberList, with this node as the one member (member
 * = node, docs/compatibility.md). MemberAdd/Remove/Update/Promote are not
 * registered (UNIMPLEMENTED): membership is the placement driver's, later.
 */
import { type GatewayContext, nodeHeader, type ServiceHandlers } from './context.js';
import type { EtcdMessage } from './proto.js';

/** The Cluster service's grpc-js handlers. */
export function clusterService(ctx: GatewayContext): ServiceHandlers {
  const memberList = async (): Promise<EtcdMessage> => ({
    header: nodeHeader(ctx),
    members: [
      {
        ID: ctx.member.id,
        name: ctx.member.name,
        peerURLs: [...ctx.member.peerURLs],
        clientURLs: [...ctx.member.clientURLs],
        isLearner: false,
      },
    ],
  });
  return { MemberList: memberList };
}
