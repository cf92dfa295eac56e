/**
 * How a member learns that it was removed from the cluster, so that it stops
 * as an etcd member does (etcd 3.4.23 logs "the member has been permanently
 * removed from the cluster", stops serving and exits 0).
 *
 * A removed node often never applies its own removal: the leader commits
 * the change with the remaining members and stops replicating to it. etcd's
 * peers answer the removed member's raft traffic with "removed"; here every
 * member asks the others instead, over the peer port, how range 1's member
 * table stands (`keyspan.memberpb.Membership/Standing`). The answer is
 * decisive only if it is newer than the asker's own table (a higher conf
 * version) and does not list the asker: node ids are never reused, so a
 * later table without it means a removal. A stale or unreachable peer
 * proves nothing, and a node still joining (no range 1 state) asks nothing.
 */
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import type { StoreNode } from '../node/index.js';
import type { RangeDescriptor } from '../shard/replica/index.js';

/** What one member's range 1 table says about a node. */
export interface MemberStanding {
  /** The table's conf version (bumped by every membership change). */
  readonly confVersion: number;
  /** Whether the table lists the node. */
  readonly listed: boolean;
}

/**
 * Whether a node whose own table says `local` has been removed, given the
 * answers of other members (undefined: no table yet there, or no answer).
 */
export function isRemoved(local: MemberStanding, answers: ReadonlyArray<MemberStanding | undefined>): boolean {
  if (!local.listed) return true;
  return answers.some((a) => a !== undefined && !a.listed && a.confVersion > local.confVersion);
}

/** `nodeId`'s standing in `desc`. */
export function standingIn(desc: RangeDescriptor, nodeId: number): MemberStanding {
  return { confVersion: desc.epoch.confVersion, listed: desc.replicas.some((r) => r.nodeId === nodeId) };
}

/** Range 1's applied table on `node`; undefined while it has no state (joining). */
export function memberTable(node: StoreNode): RangeDescriptor | undefined {
  if (!node.rangeIds().includes(1)) return undefined;
  const replica = node.range(1);
  return replica.isInitialized ? replica.descriptor : undefined;
}

/** Fully-qualified name of the peer service. */
export const MEMBERSHIP_SERVICE_NAME = 'keyspan.memberpb.Membership';
/** How often a member asks the others (etcd notices a removal within about a second too). */
export const REMOVAL_CHECK_INTERVAL_MS = 1_000;
/** Time one Standing call may take. */
export const STANDING_TIMEOUT_MS = 500;

/** StandingRequest / StandingResponse; `known` false: the answering node has no table yet. */
const messages = protobuf.Root.fromJSON({
  nested: {
    StandingRequest: { fields: { node_id: { type: 'uint32', id: 1 } } },
    StandingResponse: {
      fields: { known: { type: 'bool', id: 1 }, conf_version: { type: 'uint32', id: 2 }, listed: { type: 'bool', id: 3 } },
    },
  },
});
const StandingRequest = messages.lookupType('StandingRequest');
const StandingResponse = messages.lookupType('StandingResponse');

interface StandingRequestMessage {
  readonly node_id: number;
}
interface StandingResponseMessage {
  readonly known: boolean;
  readonly conf_version: number;
  readonly listed: boolean;
}

const encode = (type: protobuf.Type) => (value: object): Buffer => Buffer.from(type.encode(type.fromObject(value)).finish());
const decode = (type: protobuf.Type) => (bytes: Buffer): object => type.toObject(type.decode(bytes), { defaults: true });

const STANDING_PATH = `/${MEMBERSHIP_SERVICE_NAME}/Standing`;

/** The grpc-js definition of the Membership peer service. */
export const MEMBERSHIP_SERVICE_DEFINITION: grpc.ServiceDefinition = {
  Standing: {
    path: STANDING_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: encode(StandingRequest),
    requestDeserialize: decode(StandingRequest),
    responseSerialize: encode(StandingResponse),
    responseDeserialize: decode(StandingResponse),
  },
};

/** The receiving side: answers from this node's range 1 table. */
export function membershipService(node: StoreNode): grpc.UntypedServiceImplementation {
  const standing: grpc.handleUnaryCall<StandingRequestMessage, StandingResponseMessage> = (call, callback) => {
    const desc = memberTable(node);
    if (desc === undefined) return callback(null, { known: false, conf_version: 0, listed: false });
    const s = standingIn(desc, call.request.node_id);
    callback(null, { known: true, conf_version: s.confVersion, listed: s.listed });
  };
  return { Standing: standing };
}

/** Options of {@link RemovalWatcher}. */
export interface RemovalWatcherOptions {
  readonly node: StoreNode;
  /** `host:port` of a node's peer listener, if known. */
  readonly peerAddress: (nodeId: number) => string | undefined;
  /** Called once, when this node finds that it was removed. */
  readonly onRemoved: () => void;
  readonly intervalMs?: number;
}

/** Asks the other members, every interval, whether this node is still one of them. */
export class RemovalWatcher {
  private readonly clients = new Map<number, { address: string; client: grpc.Client }>();
  private readonly timer: NodeJS.Timeout;
  private checking = false;
  private closed = false;
  private removedFlag = false;

  constructor(private readonly options: RemovalWatcherOptions) {
    this.timer = setInterval(() => void this.check(), options.intervalMs ?? REMOVAL_CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  /** Whether this node has found that it was removed. */
  get removed(): boolean {
    return this.removedFlag;
  }

  /** One round: the local table, then the others' answers. Resolves whether the node is removed. */
  async check(): Promise<boolean> {
    if (this.closed || this.removedFlag || this.checking) return this.removedFlag;
    this.checking = true;
    try {
      const { node } = this.options;
      const desc = memberTable(node);
      if (desc === undefined) return false;
      const local = standingIn(desc, node.nodeId);
      const others = desc.replicas.map((r) => r.nodeId).filter((id) => id !== node.nodeId);
      const answers = local.listed ? await Promise.all(others.map((id) => this.ask(id))) : [];
      if (this.closed || !isRemoved(local, answers)) return false;
      this.removedFlag = true;
      this.options.onRemoved();
      return true;
    } finally {
      this.checking = false;
    }
  }

  /** `nodeId`'s answer about this node; undefined if it has no table or does not answer. */
  private ask(nodeId: number): Promise<MemberStanding | undefined> {
    const client = this.client(nodeId);
    if (client === undefined) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      client.makeUnaryRequest(
        STANDING_PATH,
        encode(StandingRequest),
        decode(StandingResponse) as (b: Buffer) => StandingResponseMessage,
        { node_id: this.options.node.nodeId },
        new grpc.Metadata(),
        { deadline: Date.now() + STANDING_TIMEOUT_MS },
        (err, res) => resolve(err !== null || res === undefined || !res.known ? undefined : { confVersion: res.conf_version, listed: res.listed }),
      );
    });
  }

  private client(nodeId: number): grpc.Client | undefined {
    const address = this.options.peerAddress(nodeId);
    if (address === undefined) return undefined;
    const known = this.clients.get(nodeId);
    if (known !== undefined && known.address === address) return known.client;
    known?.client.close();
    const client = new grpc.Client(address, grpc.credentials.createInsecure());
    this.clients.set(nodeId, { address, client });
    return client;
  }

  /** Stops asking and closes the connections. */
  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    for (const { client } of this.clients.values()) client.close();
    this.clients.clear();
  }
}
