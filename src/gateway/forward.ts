/**
 * Request forwarding between the members of a cluster: etcdctl may talk to
 * any member, but a write (or any call a replica refuses with NotLeaderError)
 * must run where the range's leader is. Reads need none of this (followers
 * serve linearizable reads by ReadIndex).
 *
 * Origin side ({@link Forwarding.wrap}): every unary handler runs with a
 * forwarding scope in its CallInfo (`forward`, forward-scope.ts) holding a
 * request id fixed for the whole call; the handlers pass it on to routing.
 * When routing reports that the leader is on another node
 * (LeaderElsewhereError), the call — service/method, the encoded etcd
 * request, the client's metadata and the request id — goes to that node's
 * `Forward` service on the peer port, as one message of the node's
 * forwarding stream (forward-stream.ts; unary `Forward/Unary` calls to a
 * node without it). A refused or lost hop is retried (bounded by attempts
 * and ROUTING_DEADLINE_MS), following the newest leader hint; the shared
 * request id makes every retry exactly-once through the range's
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
  type CallBatch,
  type MemberInfoResponse,
  type ReplyBatch,
  type StreamReply,
  type StreamRequest,
} from './forward-proto.js';
import { BatchWriter } from './batch-writer.js';
import { type CallStream, FORWARD_BATCH_BYTES_MAX, ForwardStream, StreamCallError, streamReplyBytes } from './forward-stream.js';
import { LeaderElsewhereError, type ForwardScope } from './forward-scope.js';
import { LEASE_KEEPALIVE_ONCE_METHOD } from './lease-service.js';
import { decodeEtcdMessage, encodeEtcdMessage, etcdMethods, ETCD_SERVICE_NAMES, type EtcdMessage, type EtcdServiceName } from './proto.js';
import { ROUTING_ATTEMPTS_MAX, ROUTING_BACKOFF_MS_MAX, ROUTING_BACKOFF_MS_MIN, ROUTING_DEADLINE_MS } from './router.js';
import { LazyAbort } from '../h2/lazy-abort.js';
import { GrpcBidiCall } from '../h2/client-bidi.js';
import { H2ClientSocket } from '../h2/client-socket.js';
import type { GrpcMethod, ServerCall } from '../h2/grpc-server.js';
import { OWN_SERVER_SETTING } from '../group/transport/service.js';

/** Bytes of a forwarding gateway's proposer id (random per process incarnation). */
const PROPOSER_ID_BYTES = 8;
/** Most metadata entries passed along with a forwarded call. */
export const FORWARD_METADATA_ENTRIES_MAX = 64;
/** Time to wait for a connection to the leader's node before counting the hop as not sent. */
export const FORWARD_CONNECT_TIMEOUT_MS = 1_000;
/** The forwarding stream's HTTP/2 receive window (per stream and connection): a batch of answers never waits for window updates. */
const FORWARD_RECEIVE_WINDOW_BYTES = 16 * 1024 * 1024;
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

/**
 * Opens the forwarding stream to the node at `address` on a connection of
 * its own, over the project's HTTP/2 client: marked so that the peer port
 * serves it on its own gRPC server (src/group/transport/server.ts), as the
 * raft message streams are. grpc-js' client and server call stacks cost
 * more per batch than the whole of a small forwarded call's other work.
 */
function openCallStream(address: string): CallStream {
  const method = forwardServiceDefinition()['CallStream'] as grpc.MethodDefinition<CallBatch, ReplyBatch>;
  const socket = new H2ClientSocket(
    address,
    // Answers are etcd responses a local call could have returned: no smaller receive limit than the gateway's own.
    { settings: [[OWN_SERVER_SETTING, 1]], receiveWindowBytes: FORWARD_RECEIVE_WINDOW_BYTES, maxMessageBytes: 0xffff_ffff },
    { connectTimeoutMs: FORWARD_CONNECT_TIMEOUT_MS },
    // The call reports everything: it ends when the connection does.
    { onReady: () => undefined, onDrain: () => undefined, onClose: () => undefined },
  );
  return new GrpcBidiCall(socket, method.path, method.requestSerialize, method.responseDeserialize, { ownsSocket: true });
}

/** A peer's Forward client and its forwarding stream. */
interface PeerClient {
  readonly address: string;
  readonly client: GenericClient;
  readonly stream: ForwardStream;
  /** The peer has no `Stream` method (an older node): forward by unary calls. */
  unaryOnly: boolean;
}

function closePeer(peer: PeerClient): void {
  peer.stream.close();
  peer.client.close();
}

/** How a forwarded call ended at the receiver: the encoded response, or a status (and leader hint). */
type ForwardOutcome =
  | { readonly ok: true; readonly response: Uint8Array }
  | { readonly ok: false; readonly code: number; readonly details: string; readonly leaderNode?: number };

type GenericClient = grpc.Client & Record<string, (req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: object) => void) => grpc.ClientUnaryCall>;

/** Looks up a unary handler of the local gateway by `service/method`. */
export type HandlerLookup = (method: string) => UnaryHandler | undefined;

/** Forwarding of unary calls to the leader's node, both ends (see the module comment). */
export class Forwarding {
  private readonly proposer = randomBytes(PROPOSER_ID_BYTES);
  private seq = 0;
  private readonly clients = new Map<number, PeerClient>();
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
      // The receiving end of a forward: run here, whatever happens (one hop).
      if (call.forward?.forwarded === true) return handler(request, call);
      const requestId = this.nextRequestId();
      // A new CallInfo for the local attempts: the caller's stays as it was
      // (same signal and metadata, so their listeners are unaffected).
      // The signal through a getter: the caller's may be made on first use, and spreading would make it now.
      const local: CallInfo = {
        get signal() {
          return call.signal;
        },
        metadata: call.metadata,
        forward: { localNodeId: this.options.localNodeId, forwarded: false, requestId },
      };
      const deadline = Date.now() + this.deadlineMs;
      let backoffMs = ROUTING_BACKOFF_MS_MIN;
      let leader: number | undefined;
      for (let attempt = 1; ; attempt++) {
        try {
          if (leader === undefined) return await handler(request, local);
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
    const peer = this.peer(leader);
    if (peer === undefined) throw new HopFailedError(`node ${leader} has no known peer address`, undefined);
    const client = peer.client;
    // Unary hops go through grpc-js, whose waitForReady answers a turn of the event loop later even on a
    // ready channel: a connected peer's call goes at once. (The stream connects itself; a refused
    // connection fails its calls with UNAVAILABLE, a retried hop.)
    if (peer.unaryOnly && client.getChannel().getConnectivityState(false) !== grpc.connectivityState.READY) {
      await new Promise<void>((resolve, reject) => {
        client.waitForReady(Math.min(deadline, Date.now() + FORWARD_CONNECT_TIMEOUT_MS), (err) => {
          if (err === undefined || err === null) resolve();
          else reject(new HopFailedError(`node ${leader} is not reachable: ${err.message}`, undefined));
        });
      });
    }
    const forward: ForwardRequest = {
      method,
      request: encodeEtcdMessage(types.requestType, request),
      metadata: metadataEntries(call.metadata),
      from_node: this.options.localNodeId,
      proposer: requestId.proposer,
      seq: requestId.seq,
    };
    const reply = peer.unaryOnly ? await this.unaryHop(client, leader, forward, call, deadline) : await this.streamHop(peer, leader, forward, call, deadline);
    const response = decodeEtcdMessage(types.responseType, reply);
    const header = response['header'] as Record<string, unknown> | undefined;
    // etcd answers from the member the client called.
    if (header !== undefined) response['header'] = { ...header, member_id: this.options.member().id };
    return response;
  }

  /** The hop on the peer's forwarding stream: the encoded etcd response. */
  private async streamHop(peer: PeerClient, leader: number, forward: ForwardRequest, call: CallInfo, deadline: number): Promise<Uint8Array> {
    let reply: StreamReply;
    try {
      reply = await peer.stream.call(forward, deadline, call.signal);
    } catch (err) {
      if (!(err instanceof StreamCallError)) throw err;
      // A node without the stream method: unary calls from now on (the hop is retried).
      if (err.code === GrpcStatus.UNIMPLEMENTED) peer.unaryOnly = true;
      throw hopFailure(leader, err.code, err.message, undefined);
    }
    if (reply.code === GrpcStatus.OK) return reply.response;
    throw hopFailure(leader, reply.code, reply.details, reply.leader_node > 0 ? reply.leader_node : undefined);
  }

  /** The hop as one unary call (a receiver that has no forwarding stream). */
  private async unaryHop(client: GenericClient, leader: number, forward: ForwardRequest, call: CallInfo, deadline: number): Promise<Uint8Array> {
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
    return reply.response;
  }

  /** What a member answers about itself, from `nodeId`'s Forward service. */
  async memberInfo(nodeId: number, timeoutMs = MEMBER_INFO_TIMEOUT_MS): Promise<MemberInfoResponse> {
    const client = this.peer(nodeId)?.client;
    if (client === undefined) throw new Error(`node ${nodeId} has no known peer address`);
    return await new Promise<MemberInfoResponse>((resolve, reject) => {
      client['MemberInfo']?.({}, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) =>
        err === null ? resolve(res as MemberInfoResponse) : reject(err),
      );
    });
  }

  private peer(nodeId: number): PeerClient | undefined {
    if (this.closed) return undefined;
    const address = this.options.peerAddress(nodeId);
    if (address === undefined) return undefined;
    const known = this.clients.get(nodeId);
    if (known !== undefined && known.address === address) return known;
    if (known !== undefined) closePeer(known);
    const Ctor = grpc.makeGenericClientConstructor(forwardServiceDefinition() as grpc.ServiceDefinition<grpc.UntypedServiceImplementation>, 'Forward');
    // Answers are etcd responses a local call could have returned: no smaller receive limit than the gateway's own.
    const client = new Ctor(address, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': -1 }) as unknown as GenericClient;
    const stream = new ForwardStream(() => openCallStream(address));
    const peer: PeerClient = { address, client, stream, unaryOnly: false };
    this.clients.set(nodeId, peer);
    return peer;
  }

  /**
   * The receiving side as a grpc-js implementation of `Forward`: `Unary`
   * runs a forwarded call on `lookup(method)` in a forwarded scope,
   * `MemberInfo` answers with this member.
   */
  service(lookup: HandlerLookup): { definition: grpc.ServiceDefinition; implementation: grpc.UntypedServiceImplementation } {
    const unaryCall: grpc.handleUnaryCall<ForwardRequest, ForwardResponse> = (call, callback) => {
      const abort = new LazyAbort();
      call.once('cancelled', () => abort.abort());
      void this.runForwarded(lookup, call.request, abort).then((outcome) => {
        if (outcome.ok) {
          callback(null, { response: outcome.response });
          return;
        }
        const trailer = new grpc.Metadata();
        if (outcome.leaderNode !== undefined) trailer.set(LEADER_NODE_TRAILER, String(outcome.leaderNode));
        callback({ code: outcome.code, details: outcome.details, metadata: trailer });
      });
    };
    const streamCall: grpc.handleBidiStreamingCall<CallBatch, ReplyBatch> = (call) => {
      const session = this.streamSession(
        lookup,
        (replies, done) => call.write({ replies }, () => done()),
        () => call.end(),
      );
      call.on('data', (batch: CallBatch) => session.onBatch(batch));
      call.on('end', () => session.onEnd());
      call.on('error', () => undefined); // the sender went away: 'cancelled' aborts its calls
      call.once('cancelled', () => session.onCancel());
    };
    const memberInfo: grpc.handleUnaryCall<object, MemberInfoResponse> = (_call, callback) => {
      const m = this.options.member();
      callback(null, { node_id: this.options.localNodeId, name: m.name, peer_urls: [...m.peerURLs], client_urls: [...m.clientURLs] });
    };
    return { definition: forwardServiceDefinition(), implementation: { Unary: unaryCall, MemberInfo: memberInfo, CallStream: streamCall } };
  }

  /**
   * The receiving side of the forwarding stream on the project's own gRPC
   * server (the peer port serves marked connections with it): the same
   * session as grpc-js' `CallStream`, by method path.
   */
  ownStreamMethods(lookup: HandlerLookup): Map<string, GrpcMethod> {
    const method = forwardServiceDefinition()['CallStream'] as grpc.MethodDefinition<CallBatch, ReplyBatch>;
    const streaming = async (call: ServerCall): Promise<void> => {
      let finish!: () => void;
      const finished = new Promise<void>((resolve) => (finish = resolve));
      const session = this.streamSession(
        lookup,
        (replies, done) => void call.send({ replies }).then(done, done),
        () => finish(),
      );
      const onAbort = (): void => {
        session.onCancel();
        finish();
      };
      call.signal.addEventListener('abort', onAbort, { once: true });
      try {
        for await (const batch of call.requests) session.onBatch(batch as CallBatch);
        session.onEnd();
        await finished;
      } finally {
        call.signal.removeEventListener('abort', onAbort);
      }
    };
    return new Map([
      [
        method.path,
        {
          requestStream: true,
          responseStream: true,
          decode: (body: Buffer) => method.requestDeserialize(body),
          encode: (message: unknown) => method.responseSerialize(message as ReplyBatch),
          streaming,
        },
      ],
    ]);
  }

  /**
   * One forwarding stream's calls at the receiver: each runs on the local
   * handler as it arrives; answers leave in batches through `write`; `end`
   * runs once the sender has half-closed and every answer has been written.
   */
  private streamSession(
    lookup: HandlerLookup,
    write: (replies: StreamReply[], done: () => void) => void,
    end: () => void,
  ): { onBatch(batch: CallBatch): void; onEnd(): void; onCancel(): void } {
    const running = new Map<number, LazyAbort>();
    const writer = new BatchWriter<StreamReply>(write, { sizeOf: streamReplyBytes, batchBytesMax: FORWARD_BATCH_BYTES_MAX });
    let ended = false;
    let finished = false;
    const maybeEnd = (): void => {
      if (!ended || running.size > 0 || finished) return;
      finished = true;
      // The last answers may still be queued behind a write in flight.
      writer.drain(end);
    };
    const onCall = (m: StreamRequest): void => {
      if (m.cancel) {
        running.get(m.call_id)?.abort();
        return;
      }
      if (m.call === undefined || m.call === null || running.has(m.call_id)) return;
      const abort = new LazyAbort();
      running.set(m.call_id, abort);
      void this.runForwarded(lookup, m.call, abort).then((outcome) => {
        running.delete(m.call_id);
        if (abort.aborted) return maybeEnd(); // the sender gave up on it
        writer.push(
          outcome.ok
            ? { call_id: m.call_id, response: outcome.response, code: GrpcStatus.OK, details: '', leader_node: 0 }
            : { call_id: m.call_id, response: new Uint8Array(0), code: outcome.code, details: outcome.details, leader_node: outcome.leaderNode ?? 0 },
        );
        maybeEnd();
      });
    };
    return {
      onBatch: (batch) => {
        for (const m of batch.calls) onCall(m);
      },
      onEnd: () => {
        ended = true;
        maybeEnd();
      },
      onCancel: () => {
        for (const a of running.values()) a.abort();
      },
    };
  }

  /** Runs one forwarded call on the local handler in a forwarded scope; never rejects. */
  private async runForwarded(lookup: HandlerLookup, req: ForwardRequest, abort: LazyAbort): Promise<ForwardOutcome> {
    const types = unaryMethodTypes().get(req.method);
    const handler = types === undefined ? undefined : lookup(req.method);
    if (types === undefined || handler === undefined) {
      return { ok: false, code: GrpcStatus.UNIMPLEMENTED, details: `no unary method ${req.method} to forward to` };
    }
    const forward: ForwardScope = {
      localNodeId: this.options.localNodeId,
      forwarded: true,
      requestId: { proposer: Buffer.from(req.proposer), seq: req.seq },
    };
    // The signal through a getter: it is made only if the handler reads it.
    const info: CallInfo = {
      get signal() {
        return abort.signal;
      },
      metadata: toMetadata(req.metadata),
      forward,
    };
    try {
      const response = await handler(decodeEtcdMessage(types.requestType, req.request), info);
      return { ok: true, response: encodeEtcdMessage(types.responseType, response) };
    } catch (err) {
      if (err instanceof LeaderElsewhereError) return { ok: false, code: GrpcStatus.UNAVAILABLE, details: err.message, leaderNode: err.leaderNodeId };
      const e = toEtcdError(err);
      if (e.grpcCode === GrpcStatus.INTERNAL || e.grpcCode === GrpcStatus.UNKNOWN) this.options.onForwardError?.(req.method, req.from_node, err);
      return { ok: false, code: e.grpcCode, details: e.message };
    }
  }

  /** Closes the connections to other nodes. */
  close(): void {
    this.closed = true;
    for (const peer of this.clients.values()) closePeer(peer);
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
  const n = hint === undefined ? NaN : Number(String(hint));
  return hopFailure(leader, err.code, err.details, Number.isSafeInteger(n) && n > 0 ? n : undefined, err);
}

/** {@link hopError} of a status given by its parts (a streamed call's reply or break). */
function hopFailure(leader: number, grpcCode: number, details: string, leaderHint: number | undefined, cause?: unknown): Error {
  if (leaderHint !== undefined) return new HopFailedError(`node ${leader}: ${details}`, leaderHint);
  const code = etcdErrorCodeOfMessage(details);
  if (code !== undefined) return EtcdError.of(code);
  if (grpcCode === GrpcStatus.UNAVAILABLE || grpcCode === GrpcStatus.UNIMPLEMENTED || grpcCode === GrpcStatus.CANCELLED) {
    return new HopFailedError(`node ${leader}: ${details}`, undefined);
  }
  if (grpcCode === GrpcStatus.DEADLINE_EXCEEDED) return EtcdError.of('TIMEOUT', { cause: cause ?? new Error(details) });
  // Errors passed through with their own text (gRPC Unknown, mvcc texts, ...).
  return new EtcdError(grpcCode === GrpcStatus.UNKNOWN ? 'UNKNOWN' : 'INTERNAL', details, grpcCode);
}
