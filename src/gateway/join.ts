/**
 * Joining a running cluster (`--initial-cluster-state existing` on an empty
 * data directory, after MemberAdd): the new member learns its node id and
 * the cluster id from a member that is already running. It asks the members
 * named in --initial-cluster, over their peer port (the Forward service
 * running Cluster/MemberList), for the member list, and finds itself there
 * by its peer URLs — as etcd's new member finds itself in the list it gets
 * from the cluster.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { forwardServiceDefinition, type ForwardRequest, type ForwardResponse } from './forward-proto.js';
import { decodeEtcdMessage, encodeEtcdMessage } from './proto.js';

/** How long a new member keeps asking before it gives up. */
export const JOIN_DEADLINE_MS = 30_000;
/** Time one MemberList call to one member may take. */
const JOIN_CALL_TIMEOUT_MS = 2_000;
/** Pause between rounds over the members. */
const JOIN_RETRY_MS = 200;

const MEMBER_LIST = 'etcdserverpb.Cluster/MemberList';
const MEMBER_LIST_REQUEST = 'etcdserverpb.MemberListRequest';
const MEMBER_LIST_RESPONSE = 'etcdserverpb.MemberListResponse';

/** What a joining member learns. */
export interface JoinInfo {
  /** This member's node id (= member id), allocated by MemberAdd. */
  readonly nodeId: number;
  readonly clusterId: bigint;
  /** Every member's node id and `host:port` peer address (this one included). */
  readonly peers: ReadonlyMap<number, string>;
}

/** The member list could not be fetched, or does not list this member. */
export class JoinError extends Error {
  override readonly name = 'JoinError';
}

type ForwardClient = grpc.Client & {
  Unary(req: ForwardRequest, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: ForwardResponse) => void): void;
};

async function memberList(address: string): Promise<Record<string, unknown>> {
  const Ctor = grpc.makeGenericClientConstructor(forwardServiceDefinition() as grpc.ServiceDefinition<grpc.UntypedServiceImplementation>, 'Forward');
  const client = new Ctor(address, grpc.credentials.createInsecure()) as unknown as ForwardClient;
  try {
    const req: ForwardRequest = {
      method: MEMBER_LIST,
      request: encodeEtcdMessage(MEMBER_LIST_REQUEST, {}),
      metadata: [],
      from_node: 0,
      proposer: new Uint8Array(),
      seq: 0,
    };
    const res = await new Promise<ForwardResponse>((resolve, reject) => {
      client.Unary(req, new grpc.Metadata(), { deadline: Date.now() + JOIN_CALL_TIMEOUT_MS }, (err, r) => (err === null ? resolve(r) : reject(err)));
    });
    return decodeEtcdMessage(MEMBER_LIST_RESPONSE, res.response);
  } finally {
    client.close();
  }
}

/** `host:port` of a peer URL. */
function hostPort(url: string): string {
  return new URL(url).host;
}

/**
 * Asks the members at `peerUrls` (round after round, until `deadlineMs`)
 * for the member list and finds the member whose peer URLs are `selfPeerUrls`.
 */
export async function discoverJoin(peerUrls: readonly string[], selfPeerUrls: readonly string[], deadlineMs = JOIN_DEADLINE_MS): Promise<JoinInfo> {
  const self = new Set(selfPeerUrls.map(hostPort));
  const targets = [...new Set(peerUrls.map(hostPort))].filter((a) => !self.has(a));
  if (targets.length === 0) throw new JoinError('--initial-cluster names no other member to join through');
  const deadline = Date.now() + deadlineMs;
  let last = 'no member answered';
  for (;;) {
    for (const address of targets) {
      try {
        const res = await memberList(address);
        const members = Array.isArray(res['members']) ? (res['members'] as Record<string, unknown>[]) : [];
        const peers = new Map<number, string>();
        let nodeId: number | undefined;
        for (const m of members) {
          const id = Number(m['ID'] as bigint);
          const urls = Array.isArray(m['peerURLs']) ? (m['peerURLs'] as string[]) : [];
          const first = urls[0];
          if (first !== undefined) peers.set(id, hostPort(first));
          if (urls.some((u) => self.has(hostPort(u)))) nodeId = id;
        }
        if (nodeId !== undefined) {
          const header = res['header'] as Record<string, unknown> | undefined;
          return { nodeId, clusterId: BigInt(header?.['cluster_id'] as bigint), peers };
        }
        last = `the member at ${address} does not list ${[...self].join(',')}: add this member first (etcdctl member add)`;
      } catch (e) {
        last = `${address}: ${e instanceof Error ? e.message : String(e)}`;
      }
    }
    if (Date.now() >= deadline) throw new JoinError(`cannot join the cluster: ${last}`);
    await sleep(JOIN_RETRY_MS);
  }
}
