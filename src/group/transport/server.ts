/**
 * The receiving side: a gRPC server with `Send` (batched messages, one
 * long-lived stream per sending node) and `SendSnapshot`.
 *
 * Messages of one batch are handed to the host in order, synchronously, in
 * the order the sender queued them; gRPC keeps batches of one stream in order.
 * A batch that does not decode, or that is addressed to another node id,
 * fails the whole stream: the sender sees the error, backs off and reports
 * the peer unreachable, which is the right reaction to a wrong address book.
 */
import * as grpc from '@grpc/grpc-js';
import type { Message, NodeId } from '../raft/types.js';
import { decodeBatch } from './codec.js';
import { TransportCodecError, TransportUsageError } from './errors.js';
import type { TransportLimits } from './limits.js';
import { raftServiceDefinition, serverOptions } from './service.js';
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

function status(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}

/** The server-side handler of `Send`. */
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
      let batch;
      try {
        batch = decodeBatch(bytes);
      } catch (e) {
        if (!(e instanceof TransportCodecError)) throw e;
        ctx.stats.decodeErrors++;
        finish(status(grpc.status.INVALID_ARGUMENT, e.message));
        return;
      }
      if (batch.toNode !== ctx.localNodeId) {
        ctx.stats.misaddressed++;
        finish(status(grpc.status.FAILED_PRECONDITION, `batch for node ${batch.toNode} reached node ${ctx.localNodeId}`));
        return;
      }
      ctx.stats.batchesReceived++;
      ctx.stats.bytesReceived += bytes.length;
      for (const gm of batch.messages) ctx.deliver(gm.groupId, gm.message, batch.fromNode);
    });
    call.on('end', () => finish());
    call.on('error', () => finish(status(grpc.status.CANCELLED, 'stream broke off')));
  };
}

/** The transport's gRPC server. */
export class RaftServer {
  private readonly server: grpc.Server;
  private boundPort: number | undefined;

  constructor(ctx: ServerContext) {
    this.server = new grpc.Server(serverOptions(ctx.limits));
    const definition = raftServiceDefinition();
    const implementation: grpc.UntypedServiceImplementation = {
      Send: sendStreamHandler(ctx),
      SendSnapshot: snapshotStreamHandler(ctx),
    };
    this.server.addService(definition, implementation);
  }

  /**
   * Serves one more gRPC service on the peer port, next to the raft
   * transport's (the node's internal RPCs, such as the gateway's request
   * forwarding). grpc-js accepts services before and after binding.
   */
  addService(definition: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void {
    this.server.addService(definition, implementation);
  }

  /** The bound port (after `listen`). */
  get port(): number {
    if (this.boundPort === undefined) throw new TransportUsageError('server not listening');
    return this.boundPort;
  }

  /** Binds `address` ("host:port"; port 0 picks a free one) and returns the port. */
  listen(address: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => {
        if (err) {
          reject(err);
          return;
        }
        this.boundPort = port;
        resolve(port);
      });
    });
  }

  /**
   * Stops at once: peers' streams never end by themselves, so waiting for
   * them would wait forever; their senders see the break and back off.
   */
  close(): void {
    this.server.forceShutdown();
  }
}
