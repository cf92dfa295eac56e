/**
 * What every etcd service handler shares: the router, the cluster and member
 * identity that goes into each ResponseHeader, the limits, and the one
 * wrapper that gives each unary handler etcd's shape —
 * validate → call → fill header → map error.
 */
import type * as grpc from '@grpc/grpc-js';
import type { AuthGuard } from './auth-guard.js';
import { EtcdError, GrpcStatus, toEtcdError } from './errors.js';
import type { ResponseHeader } from './messages.js';
import type { AlarmStore } from './alarm.js';
import type { ForwardScope } from './forward-scope.js';
import type { GatewayMetrics, MethodMetrics } from './metrics.js';
import type { EtcdMessage } from './proto.js';
import type { SpaceQuota } from './quota.js';
import type { RangeRouter } from './router.js';

/** The node as one etcd member (member = node, docs/compatibility.md). */
export interface MemberInfo {
  /** etcd member id (uint64). */
  readonly id: bigint;
  readonly name: string;
  readonly peerURLs: readonly string[];
  readonly clientURLs: readonly string[];
}

/** Shared state of the gateway's service handlers. */
export interface GatewayContext {
  readonly router: RangeRouter;
  /** etcd cluster id (uint64) in every ResponseHeader. */
  readonly clusterId: bigint;
  /** This node as an etcd member. */
  readonly member: MemberInfo;
  /** The member id etcd clients see for the node with raft id `nodeId` (Status.leader). */
  memberIdOfNode(nodeId: number): bigint;
  /** etcd's --max-request-bytes. */
  readonly maxRequestBytes: number;
  /** etcd's --max-txn-ops. */
  readonly maxTxnOps: number;
  /** Approximate bytes the node's engine holds (Status.dbSize). */
  dbSizeBytes(): Promise<number>;
  /** The node's active alarms (NOSPACE, CORRUPT; alarm.ts). */
  readonly alarms: AlarmStore;
  /** etcd's --quota-backend-bytes applied to dbSizeBytes() (quota.ts). */
  readonly spaceQuota: SpaceQuota;
  /** Called with server-side failures (INTERNAL / UNKNOWN answers) for the operator's log. */
  readonly onInternalError?: (method: string, err: unknown) => void;
  /** The gateway's Prometheus metrics (absent: nothing is counted). */
  readonly rpcMetrics?: GatewayMetrics;
  /** Auth enforcement: every handler checks its request here first (auth-guard.ts). */
  readonly auth: AuthGuard;
}

/** What a handler knows about its call besides the request. */
export interface CallInfo {
  /** Fires when the client cancels or the call's deadline passes. */
  readonly signal: AbortSignal;
  readonly metadata: grpc.Metadata;
  /**
   * The call's forwarding scope, set by the forwarding wrapper (forward.ts)
   * on a cluster member; absent on a single node and on calls no wrapper
   * runs. Handlers hand it to routing (`routeOptionsOf`, router.ts)
   * and take the request id of their write from it.
   */
  readonly forward?: ForwardScope;
}

/** gRPC metadata key clientv3.WithRequireLeader sets (etcd's rpctypes.MetadataRequireLeaderKey). */
export const REQUIRE_LEADER_METADATA_KEY = 'hasleader';

/** A ResponseHeader for a reply at `revision` in raft term `raftTerm`. */
export function responseHeader(ctx: GatewayContext, revision: number, raftTerm: number): ResponseHeader {
  return { cluster_id: ctx.clusterId, member_id: ctx.member.id, revision, raft_term: raftTerm };
}

/**
 * The header of a reply that reads no range (Status, MemberList, Alarm, ...):
 * etcd puts the store's current revision and the raft term there. With one
 * range that is the range's; across ranges the largest.
 */
export function nodeHeader(ctx: GatewayContext): ResponseHeader {
  let revision = 0;
  let term = 0;
  for (const t of ctx.router.ranges()) {
    if (t.replica.isInitialized) revision = Math.max(revision, t.replica.currentRevision);
    term = Math.max(term, t.raftStatus().term);
  }
  return responseHeader(ctx, revision, term);
}

/**
 * etcd's require-leader rule: a request with metadata `hasleader=true` fails
 * with `etcdserver: no leader` while this node knows no leader (of any of
 * its ranges: each range is a raft group of its own).
 */
export function checkRequireLeader(ctx: GatewayContext, metadata: grpc.Metadata): void {
  const v = metadata.get(REQUIRE_LEADER_METADATA_KEY);
  if (v.length === 0 || String(v[0]) !== 'true') return;
  const ranges = ctx.router.ranges();
  if (ranges.length === 0 || ranges.some((t) => t.raftStatus().leader === 0)) throw EtcdError.of('NO_LEADER');
}

/** A unary handler in the gateway's shape: request in, response out, errors thrown. */
export type UnaryHandler = (request: EtcdMessage, call: CallInfo) => Promise<EtcdMessage>;

/**
 * One side of a streaming call as a handler sees it, the same for gRPC and
 * the JSON gateway: the client's messages in, a flow-controlled sink out.
 */
export interface RpcStream {
  /** The client's requests in order (one for a server-streaming RPC); ends when the client half-closes or the call ends. */
  readonly requests: AsyncIterable<EtcdMessage>;
  /**
   * Sends one response. Resolves once the transport can take more, so a
   * handler that awaits it never buffers without bound for a slow client;
   * rejects once the call is over.
   */
  send(response: EtcdMessage): Promise<void>;
  readonly call: CallInfo;
}

/**
 * A streaming RPC (Watch, LeaseKeepAlive, Snapshot, Election.Observe). `run`
 * resolving ends the call with OK; throwing ends it with the error mapped to
 * etcd's code and text.
 */
export interface StreamHandler {
  readonly streaming: 'bidi' | 'server';
  run(stream: RpcStream): Promise<void>;
}

/** A service's implemented RPCs, keyed by RPC name as in the .proto (`Range`). */
export type ServiceHandlers = Readonly<Record<string, UnaryHandler | StreamHandler>>;

/** Whether a service handler is a streaming one. */
export function isStreamHandler(h: UnaryHandler | StreamHandler): h is StreamHandler {
  return typeof h !== 'function';
}

/**
 * Runs a handler as the edge does for every transport (gRPC and JSON):
 * require-leader check first, then the handler; errors come back mapped to
 * etcd's code and text, server-side failures reported to the log. With
 * `metrics` (the method's pre-resolved children) the call is counted as
 * go-grpc-prometheus counts it: started, handled by code, handling time.
 */
export async function invoke(
  ctx: GatewayContext,
  method: string,
  handler: UnaryHandler,
  request: EtcdMessage,
  call: CallInfo,
  metrics?: MethodMetrics,
): Promise<EtcdMessage> {
  const start = metrics?.start() ?? 0;
  try {
    checkRequireLeader(ctx, call.metadata);
    const response = await handler(request, call);
    metrics?.done(start, GrpcStatus.OK);
    return response;
  } catch (err) {
    const e = toEtcdError(err);
    if (isServerFailure(err, e)) ctx.onInternalError?.(method, err);
    metrics?.done(start, e.grpcCode);
    throw e;
  }
}

/**
 * Resolves when `stream` can take more ('drain'); rejects with etcd's
 * "request canceled" if `signal` aborts first. A send awaits it after a
 * write() that returned false, so a slow client holds back its producer.
 */
export function drained(stream: NodeJS.EventEmitter, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (): void => {
      stream.removeListener('drain', done);
      signal.removeEventListener('abort', done);
      if (signal.aborted) reject(EtcdError.of('CANCELED'));
      else resolve();
    };
    stream.on('drain', done);
    signal.addEventListener('abort', done);
  });
}

/**
 * Runs a streaming handler as the edge does for every transport: the
 * require-leader check, the handler, the call counted, server-side failures
 * reported. Resolves with the error to end the call with (undefined: OK).
 */
export async function runStream(
  ctx: GatewayContext,
  method: string,
  handler: StreamHandler,
  stream: RpcStream,
  metrics?: MethodMetrics,
): Promise<EtcdError | undefined> {
  const start = metrics?.start() ?? 0;
  try {
    checkRequireLeader(ctx, stream.call.metadata);
    await handler.run(stream);
    metrics?.done(start, GrpcStatus.OK);
    return undefined;
  } catch (err) {
    const e = toEtcdError(err);
    if (isServerFailure(err, e)) ctx.onInternalError?.(method, err);
    metrics?.done(start, stream.call.signal.aborted ? GrpcStatus.CANCELLED : e.grpcCode);
    return e;
  }
}

/**
 * Whether an answer reports a server-side failure for the operator's log:
 * INTERNAL or UNKNOWN, except an EtcdError a handler threw on purpose with
 * one of etcd's raw texts (etcd answers some refusals, such as the
 * maintenance server's `auth: permission denied`, with gRPC Unknown).
 */
function isServerFailure(thrown: unknown, e: EtcdError): boolean {
  if (thrown instanceof EtcdError && thrown.code === 'UNKNOWN') return false;
  return e.grpcCode === GrpcStatus.INTERNAL || e.grpcCode === GrpcStatus.UNKNOWN;
}

/** A one-message request sequence (server-streaming RPCs). */
export async function* oneMessage(m: EtcdMessage): AsyncGenerator<EtcdMessage> {
  yield m;
}
