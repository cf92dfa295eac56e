/**
 * The receiving side: one listening socket on the peer port, serving
 * `Send` (batched messages, one long-lived stream per sending node),
 * `SendSnapshot` and any service the node adds (`addService`).
 *
 * Each connection is routed by its first SETTINGS frame. A sender's message
 * stream, and a gateway's forwarding stream, mark their connections with a
 * private setting ({@link OWN_SERVER_SETTING}): such connections are served
 * by the project's own HTTP/2 and gRPC server (src/h2/), which costs a
 * fraction of grpc-js' server per batch; it serves `Send` and the methods
 * added with their own-server form (`addService`). Every other connection
 * (snapshots, unary forwards, range images, membership calls, and streams
 * from senders that do not mark theirs) goes to grpc-js' server, which
 * serves every method.
 *
 * Messages of one batch are handed to the host in order, synchronously, in
 * the order the sender queued them; gRPC keeps batches of one stream in order.
 * A batch that does not decode, or that is addressed to another node id,
 * fails the whole stream: the sender sees the error, backs off and reports
 * the peer unreachable, which is the right reaction to a wrong address book.
 */
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { CLIENT_PREFACE, FRAME_HEADER_BYTES, FrameType, parseSettings } from '../../h2/frames.js';
import { type GrpcMethod, GrpcServer, type ServerCall } from '../../h2/grpc-server.js';
import { GrpcStatusError } from '../../h2/grpc-wire.js';
import type { Message, NodeId } from '../raft/types.js';
import { decodeBatch, type DecodedBatch } from './codec.js';
import { TransportCodecError, TransportUsageError } from './errors.js';
import type { TransportLimits } from './limits.js';
import { grpcMessageBytesMax } from './limits.js';
import { splitAddress } from '../../h2/client-socket.js';
import { OWN_SERVER_SETTING, SEND_METHOD_PATH, raftServiceDefinition, serverOptions } from './service.js';
import { snapshotStreamHandler } from './snapshot-stream.js';
import type { TransportStats } from './stats.js';

/** What the server needs from its transport. */
export interface ServerContext {
  readonly localNodeId: NodeId;
  readonly limits: TransportLimits;
  readonly stats: TransportStats;
  /** Hands one received message to the host (known or unknown group). */
  deliver(groupId: number, msg: Message, fromNode: NodeId): void;
}

/** The largest first frame read to route a connection; a longer one goes to grpc-js. */
const ROUTING_FRAME_BYTES_MAX = 16 * 1024;
/** A connection that has not sent its preface and first SETTINGS by then is closed. */
const ROUTING_TIMEOUT_MS = 10_000;

function status(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}

/**
 * Checks and delivers one received batch; the failure (a status) when it
 * does not decode or is addressed to another node.
 */
function receiveBatch(ctx: ServerContext, bytes: Buffer): { code: grpc.status; details: string } | undefined {
  let batch: DecodedBatch;
  try {
    batch = decodeBatch(bytes);
  } catch (e) {
    if (!(e instanceof TransportCodecError)) throw e;
    ctx.stats.decodeErrors++;
    return { code: grpc.status.INVALID_ARGUMENT, details: e.message };
  }
  if (batch.toNode !== ctx.localNodeId) {
    ctx.stats.misaddressed++;
    return { code: grpc.status.FAILED_PRECONDITION, details: `batch for node ${batch.toNode} reached node ${ctx.localNodeId}` };
  }
  ctx.stats.batchesReceived++;
  ctx.stats.bytesReceived += bytes.length;
  for (const gm of batch.messages) ctx.deliver(gm.groupId, gm.message, batch.fromNode);
  return undefined;
}

/**
 * Whether `head` (a connection's first bytes) shows a connection marked for
 * the own gRPC server: true or false once the preface and the first frame
 * are in, undefined while more bytes are needed.
 */
export function isMarkedForOwnServer(head: Buffer): boolean | undefined {
  const n = Math.min(head.length, CLIENT_PREFACE.length);
  if (!head.subarray(0, n).equals(CLIENT_PREFACE.subarray(0, n))) return false;
  const at = CLIENT_PREFACE.length;
  if (head.length < at + FRAME_HEADER_BYTES) return undefined;
  const length = (head[at]! << 16) | (head[at + 1]! << 8) | head[at + 2]!;
  if (head[at + 3] !== FrameType.SETTINGS || length > ROUTING_FRAME_BYTES_MAX || length % 6 !== 0) return false;
  if (head.length < at + FRAME_HEADER_BYTES + length) return undefined;
  const settings = parseSettings(head.subarray(at + FRAME_HEADER_BYTES, at + FRAME_HEADER_BYTES + length));
  return settings.some(([id]) => id === OWN_SERVER_SETTING);
}

/** The server-side handler of `Send` on grpc-js (connections not marked for the own server). */
function sendStreamHandler(ctx: ServerContext): grpc.handleClientStreamingCall<Buffer, object> {
  return (call, callback) => {
    ctx.stats.streamsAccepted++;
    let done = false;
    const finish = (err?: grpc.ServiceError): void => {
      if (done) return;
      done = true;
      if (err !== undefined) callback(err);
      else callback(null, {});
    };
    call.on('data', (bytes: Buffer) => {
      if (done) return;
      const failure = receiveBatch(ctx, bytes);
      if (failure !== undefined) finish(status(failure.code, failure.details));
    });
    call.on('end', () => finish());
    call.on('error', () => finish(status(grpc.status.CANCELLED, 'stream broke off')));
  };
}

/** The server-side handler of `Send` on the project's own gRPC server. */
async function ownSendStream(ctx: ServerContext, call: ServerCall): Promise<void> {
  ctx.stats.streamsAccepted++;
  for await (const bytes of call.requests) {
    const failure = receiveBatch(ctx, bytes as Buffer);
    if (failure !== undefined) throw new GrpcStatusError(failure.code, failure.details);
  }
  await call.send({});
}

/** The transport's server: routes each connection to the own gRPC server or to grpc-js'. */
export class RaftServer {
  private readonly grpcServer: grpc.Server;
  private readonly injector: ReturnType<grpc.Server['createConnectionInjector']>;
  private readonly ownServer: GrpcServer;
  private readonly listener: net.Server;
  private readonly routing = new Set<net.Socket>();
  private readonly keepaliveTimeMs: number;
  private boundPort: number | undefined;
  private closed = false;

  constructor(ctx: ServerContext) {
    this.keepaliveTimeMs = ctx.limits.keepaliveTimeMs;
    this.grpcServer = new grpc.Server(serverOptions(ctx.limits));
    const implementation: grpc.UntypedServiceImplementation = {
      Send: sendStreamHandler(ctx),
      SendSnapshot: snapshotStreamHandler(ctx),
    };
    this.grpcServer.addService(raftServiceDefinition(), implementation);
    this.injector = this.grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    this.ownServer = new GrpcServer({
      maxReceiveBytes: grpcMessageBytesMax(ctx.limits),
      // Only a host bug gets here (a handler threw): it propagates, as it
      // does from grpc-js' 'data' handler, besides failing the call.
      statusOf: (err) => {
        process.nextTick(() => {
          throw err;
        });
        return { code: grpc.status.INTERNAL, message: err instanceof Error ? err.message : String(err) };
      },
    });
    this.ownServer.register(SEND_METHOD_PATH, {
      requestStream: true,
      responseStream: false,
      decode: (body) => body,
      encode: () => Buffer.alloc(0), // SendResponse has no fields
      streaming: (call) => ownSendStream(ctx, call),
    });
    this.listener = net.createServer((socket) => this.route(socket));
    // A failed accept (EMFILE) leaves the listener listening; the peer retries.
    this.listener.on('error', () => undefined);
  }

  /**
   * Serves one more gRPC service on the peer port, next to the raft
   * transport's (the node's internal RPCs, such as the gateway's request
   * forwarding), through grpc-js; `own` are methods also served, by path,
   * on marked connections (the own gRPC server). Accepted before and after `listen`.
   */
  addService(definition: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation, own?: ReadonlyMap<string, GrpcMethod>): void {
    this.grpcServer.addService(definition, implementation);
    for (const [path, method] of own ?? []) this.ownServer.register(path, method);
  }

  /** Connections served by the own gRPC server now (marked message streams). */
  get ownServerConnections(): number {
    return this.ownServer.connectionCount;
  }

  /** The bound port (after `listen`). */
  get port(): number {
    if (this.boundPort === undefined) throw new TransportUsageError('server not listening');
    return this.boundPort;
  }

  /** Binds `address` ("host:port"; port 0 picks a free one) and returns the port. */
  listen(address: string): Promise<number> {
    const { host, port } = splitAddress(address);
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.listener.once('error', onError);
      this.listener.listen({ host, port }, () => {
        this.listener.removeListener('error', onError);
        this.boundPort = (this.listener.address() as net.AddressInfo).port;
        resolve(this.boundPort);
      });
    });
  }

  /**
   * Stops at once: peers' streams never end by themselves, so waiting for
   * them would wait forever; their senders see the break and back off.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.listener.close();
    for (const socket of this.routing) socket.destroy();
    this.routing.clear();
    void this.ownServer.close(0);
    this.injector.destroy();
    this.grpcServer.forceShutdown();
  }

  /** Reads a connection's preface and first SETTINGS, then hands it to the server it belongs to. */
  private route(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.routing.add(socket);
    socket.setNoDelay(true);
    // The kernel's probes find a sender that vanished without closing TCP
    // (the own server sends no keepalive pings of its own).
    socket.setKeepAlive(true, this.keepaliveTimeMs);
    let head: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), ROUTING_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const marked = isMarkedForOwnServer(head);
      if (marked === undefined) return;
      done();
      if (marked) {
        this.ownServer.serve(socket, head);
      } else {
        socket.unshift(head);
        this.injector.injectConnection(socket);
      }
    };
    const onGone = (): void => {
      done();
      socket.destroy();
    };
    const done = (): void => {
      clearTimeout(timer);
      this.routing.delete(socket);
      socket.removeListener('data', onData);
      socket.removeListener('error', onGone);
      socket.removeListener('close', onGone);
      socket.pause();
    };
    socket.on('data', onData);
    socket.on('error', onGone);
    socket.on('close', onGone);
  }
}
