/**
 * Request forwarding between the members of a cluster: etcdctl may talk to
 * any member, but a write (or any call a replica refuses with NotLeaderError)
 * must run where the range's leader is. Reads need none of this (followers
 * serve linearizable reads by ReadIndex).
 *
 * Origin side ({@link Forwarding.wrap}): every unary handler runs in a
 * forwarding scope with a request id fixed for the whole call. When routing
 * reports that the leader is on another node (LeaderElsewhereError, see
 * forward-scope.ts), the call — service/method, the encoded etcd request,
 * the client's metadata and the request id — goes to that node's `Forward`
 * service on the peer port. A refused or lost hop is retried (bounded by
 * attempts and ROUTING_DEADLINE_MS), following the newest leader hint; the
 * shared request id makes every retry exactly-once through the range's
 * replicated dedupe table. The answer's `header.member_id` is the origin's
 * own id, as etcd answers from the member the client called. Streams are
 * not forwarded as such: LeaseKeepAlive forwards each of its requests as the
 * internal unary method LEASE_KEEPALIVE_ONCE_METHOD (lease-service.ts).
 *
 * Receiving side ({@link Forwarding.service}): runs the call on the local
 * gateway's handlers in a forwarded scope (one hop: it never forwards
 * again). If its replica is not the leader either, it answers with the
 * status and a `keyspan-leader-node` trailer naming the leader it knows.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import type { RequestId } from '../shard/replica/index.js';
import type { CallInfo, MemberInfo, UnaryHandler } from './context.js';
import { EtcdError, GrpcStatus, etcdErrorCodeOfMessage, toEtcdError } from './errors.js';
import {
  LEADER_NODE_TRAILER,
  forwardServiceDefinition,
  type ForwardRequest,
  type ForwardResponse,
  type MemberInfoResponse,
} from './forward-proto.js';
import { LeaderElsewhereError, forwardScope } from './forward-scope.js';
import { LEASE_KEEPALIVE_ONCE_METHOD } from './lease-service.js';
import { decodeEtcdMessage, encodeEtcdMessage, etcdMethods, ETCD_SERVICE_NAMES, type EtcdMessage, type EtcdServiceName } from './proto.js';
import { ROUTING_ATTEMPTS_MAX, ROUTING_BACKOFF_MS_MAX, ROUTING_BACKOFF_MS_MIN, ROUTING_DEADLINE_MS } from './router.js';

/** Bytes of a forwarding gateway's proposer id (random per process incarnation). */
const PROPOSER_ID_BYTES = 8;
/** Most metadata entries passed along with a forwarded call. */
export const FORWARD_METADATA_ENTRIES_MAX = 64;
/** Time to wait for a connection to the leader's node before counting the hop as not sent. */
export const FORWARD_CONNECT_TIMEOUT_MS = 1_000;
/** Time a MemberInfo call may take. */
export const MEMBER_INFO_TIMEOUT_MS = 1_000;

/** Options of {@link Forwarding}. */
export interface ForwardingOptions {
  /** This node's id. */
  readonly localNodeId: number;
  /** This member as MemberList shows it (read at each call: client URLs are known only once listening). */
  readonly member: () => MemberInfo;
  /** `host:port` of a node's peer listener; undefined for an unknown node. */
  readonly peerAddress: (nodeId: number) => string | undefined;
  /** Total time one call may spend on hops and retries (default ROUTING_DEADLINE_MS). */
  readonly deadlineMs?: number;
  /** Hops of one call, the first included (default ROUTING_ATTEMPTS_MAX). */
  readonly attemptsMax?: number;
  /** A forwarded call that failed inside the receiving node, for the operator's log. */
  readonly onForwardError?: (method: string, leaderNodeId: number, err: unknown) => void;
}

/** A hop that can be retried: nothing ran, or what ran is covered by the request id. */
class HopFailedError extends Error {
  override readonly name = 'HopFailedError';
  constructor(
    message: string,
    /** The leader the receiver named, if it named one. */
    readonly leaderHint: number | undefined,
  ) {
    super(message);
  }
}

/** Request and response types of an etcd unary method (`etcdserverpb.KV/Put`). */
interface MethodTypes {
  readonly requestType: string;
  readonly responseType: string;
}

let methodTypes: Map<string, MethodTypes> | undefined;

/**
 * Internal unary methods forwarded like etcd's, with the etcd message types
 * they take: KeepAlive's requests one at a time (lease-service.ts).
 */
const INTERNAL_UNARY_METHODS: ReadonlyMap<string, MethodTypes> = new Map([
  [LEASE_KEEPALIVE_ONCE_METHOD, { requestType: 'etcdserverpb.LeaseKeepAliveRequest', responseType: 'etcdserverpb.LeaseKeepAliveResponse' }],
]);

/** The unary etcd methods, and the internal ones, by `service/method`. */
function unaryMethodTypes(): Map<string, MethodTypes> {
  if (methodTypes === undefined) {
    methodTypes = new Map(INTERNAL_UNARY_METHODS);
    for (const service of ETCD_SERVICE_NAMES) {
      for (const m of etcdMethods(service as EtcdServiceName)) {
        if (!m.requestStream && !m.responseStream) methodTypes.set(`${service}/${m.method}`, m);
      }
    }
  }
  return methodTypes;
}

type GenericClient = grpc.Client & Record<string, (req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: object) => void) => grpc.ClientUnaryCall>;

/** Looks up a unary handler of the local gateway by `service/method`. */
export type HandlerLookup = (method: string) => UnaryHandler | undefined;

/** Forwarding of unary calls to the leader's node, both ends (see the module comment). */
export class Forwarding {
  private readonly proposer = randomBytes(PROPOSER_ID_BYTES);
  private seq = 0;
  private readonly clients = new Map<number, { address: string; client: GenericClient }>();
  private closed = false;
  private readonly deadlineMs: number;
  private readonly attemptsMax: number;

  constructor(private readonly options: ForwardingOptions) {
    this.deadlineMs = options.deadlineMs ?? ROUTING_DEADLINE_MS;
    this.attemptsMax = options.attemptsMax ?? ROUTING_ATTEMPTS_MAX;
  }

  /** A fresh request id for one client call. */
  private nextRequestId(): RequestId {
    return { proposer: this.proposer, seq: ++this.seq };
  }

  /**
   * Wraps the gateway's unary handler of `method` (`service/method`): runs
   * it locally in a forwarding scope, and forwards it while the leader is
   * elsewhere. Methods that are not etcd unary RPCs are returned unwrapped.
   */
  wrap(method: string, handler: UnaryHandler): UnaryHandler {
    const types = unaryMethodTypes().get(method);
    if (types === undefined) return handler;
    return async (request, call) => {
      const scope = forwardScope.getStore();
      // The receiving end of a forward: run here, whatever happens (one hop).
      if (scope?.forwarded === true) return handler(request, call);
      const requestId = this.nextRequestId();
      const local = { localNodeId: this.options.localNodeId, forwarded: false, requestId };
      const deadline = Date.now() + this.deadlineMs;
      let backoffMs = ROUTING_BACKOFF_MS_MIN;
      let leader: number | undefined;
      for (let attempt = 1; ; attempt++) {
        try {
          if (leader === undefined) return await forwardScope.run(local, () => handler(request, call));
          return await this.hop(leader, method, types, request, call, requestId, deadline);
        } catch (err) {
          if (err instanceof LeaderElsewhereError) {
            leader = err.leaderNodeId;
            continue; // a fresh hint: try it at once (attempts still count)
          }
          if (!(err instanceof HopFailedError)) throw err;
          if (attempt >= this.attemptsMax || Date.now() >= deadline || call.signal.aborted) {
            throw EtcdError.of('LEADER_CHANGED', { cause: err });
          }
          // The receiver named a leader: go there (it may be this node again).
          leader = err.leaderHint === this.options.localNodeId ? undefined : err.leaderHint;
          if (err.leaderHint === undefined) {
            const waitMs = Math.min(backoffMs, Math.max(0, deadline - Date.now()));
            await sleep(waitMs, undefined, { signal: call.signal }).catch(() => undefined);
            backoffMs = Math.min(backoffMs * 2, ROUTING_BACKOFF_MS_MAX);
          }
        }
      }
    };
  }

  /** One forward of the call to `leader`. */
  private async hop(
    leader: number,
    method: string,
    types: MethodTypes,
    request: EtcdMessage,
    call: CallInfo,
    requestId: RequestId,
    deadline: number,
  ): Promise<EtcdMessage> {
    const client = this.client(leader);
    if (client === undefined) throw new HopFailedError(`node ${leader} has no known peer address`, undefined);
    await new Promise<void>((resolve, reject) => {
      client.waitForReady(Math.min(deadline, Date.now() + FORWARD_CONNECT_TIMEOUT_MS), (err) => {
        if (err === undefined || err === null) resolve();
        else reject(new HopFailedError(`node ${leader} is not reachable: ${err.message}`, undefined));
      });
    });
    const forward: ForwardRequest = {
      method,
      request: encodeEtcdMessage(types.requestType, request),
      metadata: metadataEntries(call.metadata),
      from_node: this.options.localNodeId,
      proposer: requestId.proposer,
      seq: requestId.seq,
    };
    const reply = await new Promise<ForwardResponse>((resolve, reject) => {
      const metadata = new grpc.Metadata();
      const c = client['Unary']?.(forward, metadata, { deadline }, (err, res) => {
        call.signal.removeEventListener('abort', onAbort);
        if (err === null) resolve(res as ForwardResponse);
        else reject(hopError(leader, err));
      });
      const onAbort = (): void => c?.cancel();
      call.signal.addEventListener('abort', onAbort, { once: true });
    });
    const response = decodeEtcdMessage(types.responseType, reply.response);
    const header = response['header'] as Record<string, unknown> | undefined;
    // etcd answers from the member the client called.
    if (header !== undefined) response['header'] = { ...header, member_id: this.options.member().id };
    return response;
  }

  /** What a member answers about itself, from `nodeId`'s Forward service. */
  async memberInfo(nodeId: number, timeoutMs = MEMBER_INFO_TIMEOUT_MS): Promise<MemberInfoResponse> {
    const client = this.client(nodeId);
    if (client === undefined) throw new Error(`node ${nodeId} has no known peer address`);
    return await new Promise<MemberInfoResponse>((resolve, reject) => {
      client['MemberInfo']?.({}, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) =>
        err === null ? resolve(res as MemberInfoResponse) : reject(err),
      );
    });
  }

  private client(nodeId: number): GenericClient | undefined {
    if (this.closed) return undefined;
    const address = this.options.peerAddress(nodeId);
    if (address === undefined) return undefined;
    const known = this.clients.get(nodeId);
    if (known !== undefined && known.address === address) return known.client;
    known?.client.close();
    const Ctor = grpc.makeGenericClientConstructor(forwardServiceDefinition() as grpc.ServiceDefinition<grpc.UntypedServiceImplementation>, 'Forward');
    const client = new Ctor(address, grpc.credentials.createInsecure()) as unknown as GenericClient;
    this.clients.set(nodeId, { address, client });
    return client;
  }

  /**
   * The receiving side as a grpc-js implementation of `Forward`: `Unary`
   * runs a forwarded call on `lookup(method)` in a forwarded scope,
   * `MemberInfo` answers with this member.
   */
  service(lookup: HandlerLookup): { definition: grpc.ServiceDefinition; implementation: grpc.UntypedServiceImplementation } {
    const unaryCall: grpc.handleUnaryCall<ForwardRequest, ForwardResponse> = (call, callback) => {
      const req = call.request;
      const types = unaryMethodTypes().get(req.method);
      const handler = types === undefined ? undefined : lookup(req.method);
      if (types === undefined || handler === undefined) {
        callback({ code: GrpcStatus.UNIMPLEMENTED, details: `no unary method ${req.method} to forward to`, metadata: new grpc.Metadata() });
        return;
      }
      const abort = new AbortController();
      call.once('cancelled', () => abort.abort());
      const info: CallInfo = { signal: abort.signal, metadata: toMetadata(req.metadata) };
      const scope = {
        localNodeId: this.options.localNodeId,
        forwarded: true,
        requestId: { proposer: Buffer.from(req.proposer), seq: req.seq },
      };
      forwardScope
        .run(scope, async () => handler(decodeEtcdMessage(types.requestType, req.request), info))
        .then(
          (response) => callback(null, { response: encodeEtcdMessage(types.responseType, response) }),
          (err: unknown) => {
            const trailer = new grpc.Metadata();
            if (err instanceof LeaderElsewhereError) {
              trailer.set(LEADER_NODE_TRAILER, String(err.leaderNodeId));
              callback({ code: GrpcStatus.UNAVAILABLE, details: err.message, metadata: trailer });
              return;
            }
            const e = toEtcdError(err);
            if (e.grpcCode === GrpcStatus.INTERNAL || e.grpcCode === GrpcStatus.UNKNOWN) this.options.onForwardError?.(req.method, req.from_node, err);
            callback({ code: e.grpcCode, details: e.message, metadata: trailer });
          },
        );
    };
    const memberInfo: grpc.handleUnaryCall<object, MemberInfoResponse> = (_call, callback) => {
      const m = this.options.member();
      callback(null, { node_id: this.options.localNodeId, name: m.name, peer_urls: [...m.peerURLs], client_urls: [...m.clientURLs] });
    };
    return { definition: forwardServiceDefinition(), implementation: { Unary: unaryCall, MemberInfo: memberInfo } };
  }

  /** Closes the connections to other nodes. */
  close(): void {
    this.closed = true;
    for (const { client } of this.clients.values()) client.close();
    this.clients.clear();
  }
}

/** The client's metadata worth passing on (text entries, bounded). */
function metadataEntries(md: grpc.Metadata): { key: string; value: string }[] {
  const out: { key: string; value: string }[] = [];
  for (const [key, values] of Object.entries(md.getMap())) {
    if (key.endsWith('-bin') || typeof values !== 'string') continue;
    if (out.length >= FORWARD_METADATA_ENTRIES_MAX) break;
    out.push({ key, value: values });
  }
  return out;
}

function toMetadata(entries: readonly { key: string; value: string }[]): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const e of entries.slice(0, FORWARD_METADATA_ENTRIES_MAX)) md.add(e.key, e.value);
  return md;
}

/**
 * What a failed hop means. A named leader, or a status that is not an etcd
 * answer (the connection broke, the receiver is still starting), is a
 * retryable hop: the request id covers a write that did run. An etcd error
 * is the call's answer.
 */
function hopError(leader: number, err: grpc.ServiceError): Error {
  const hint = err.metadata?.get(LEADER_NODE_TRAILER)[0];
  if (hint !== undefined) {
    const n = Number(String(hint));
    return new HopFailedError(`node ${leader}: ${err.details}`, Number.isSafeInteger(n) && n > 0 ? n : undefined);
  }
  const code = etcdErrorCodeOfMessage(err.details);
  if (code !== undefined) return EtcdError.of(code);
  if (err.code === GrpcStatus.UNAVAILABLE || err.code === GrpcStatus.UNIMPLEMENTED || err.code === GrpcStatus.CANCELLED) {
    return new HopFailedError(`node ${leader}: ${err.details}`, undefined);
  }
  if (err.code === GrpcStatus.DEADLINE_EXCEEDED) return EtcdError.of('TIMEOUT', { cause: err });
  // Errors passed through with their own text (gRPC Unknown, mvcc texts, ...).
  return new EtcdError(err.code === GrpcStatus.UNKNOWN ? 'UNKNOWN' : 'INTERNAL', err.details, err.code);
}
