/**
 * The `RaftTransport` gRPC service definition, built from raftpb.proto at
 * runtime, and the channel/server options both ends share.
 *
 * Requests travel as raw bytes through gRPC (identity serializers): the
 * sender encodes batches itself (from pre-encoded messages) and the receiver
 * decodes them itself, so that a bad batch becomes a typed error and a status
 * code rather than an exception inside grpc-js.
 */
import * as grpc from '@grpc/grpc-js';
import type { TransportLimits } from './limits.js';
import { grpcMessageBytesMax } from './limits.js';
import { RAFT_PROTO_PACKAGE, lookupRaftType, raftProtoRoot } from './proto-root.js';
import { TransportUsageError } from './errors.js';

/** Name of the service in raftpb.proto. */
export const RAFT_SERVICE_NAME = 'RaftTransport';
/** gRPC path of the batched message stream. */
export const SEND_METHOD_PATH = `/${RAFT_PROTO_PACKAGE}.${RAFT_SERVICE_NAME}/Send`;
/**
 * A private HTTP/2 setting (RFC 9113 §6.5.2: unknown settings are ignored)
 * that a peer's long-lived stream (the raft message stream, the gateway's
 * forwarding stream) puts in its first SETTINGS frame, so that the
 * receiving port serves the connection with its own gRPC server rather
 * than grpc-js' (server.ts). Any other gRPC server ignores it.
 */
export const OWN_SERVER_SETTING = 0xf1a7;
/** gRPC path of the snapshot stream. */
export const SEND_SNAPSHOT_METHOD_PATH = `/${RAFT_PROTO_PACKAGE}.${RAFT_SERVICE_NAME}/SendSnapshot`;

function identity(bytes: Buffer): Buffer {
  return bytes;
}

let definition: grpc.ServiceDefinition | undefined;

/** The grpc-js service definition of `RaftTransport` (methods `Send`, `SendSnapshot`). */
export function raftServiceDefinition(): grpc.ServiceDefinition {
  if (definition !== undefined) return definition;
  const service = raftProtoRoot().lookupService(`${RAFT_PROTO_PACKAGE}.${RAFT_SERVICE_NAME}`);
  const out: Record<string, grpc.MethodDefinition<Buffer, object>> = {};
  for (const method of service.methodsArray) {
    const response = lookupRaftType(method.responseType);
    out[method.name] = {
      path: `/${RAFT_PROTO_PACKAGE}.${RAFT_SERVICE_NAME}/${method.name}`,
      requestStream: method.requestStream === true,
      responseStream: method.responseStream === true,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: (value: object) => Buffer.from(response.encode(value).finish()),
      responseDeserialize: (bytes: Buffer): object => response.decode(bytes),
    };
  }
  for (const path of [SEND_METHOD_PATH, SEND_SNAPSHOT_METHOD_PATH]) {
    if (!Object.values(out).some((m) => m.path === path)) {
      throw new TransportUsageError(`raftpb.proto lacks ${path}`);
    }
  }
  definition = out;
  return definition;
}

/**
 * Channel options for one outgoing connection. Each client gets its own
 * subchannel pool, so the message stream and every snapshot stream use
 * separate TCP connections: a snapshot's bytes never share HTTP/2 or TCP
 * flow-control windows with heartbeats. gRPC's transparent retries are off:
 * raft decides what to resend.
 */
export function clientChannelOptions(limits: TransportLimits): grpc.ChannelOptions {
  const bytesMax = grpcMessageBytesMax(limits);
  return {
    'grpc.max_send_message_length': bytesMax,
    'grpc.max_receive_message_length': bytesMax,
    'grpc.keepalive_time_ms': limits.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': limits.keepaliveTimeoutMs,
    'grpc.use_local_subchannel_pool': 1,
    'grpc.enable_retries': 0,
    // The transport runs its own back-off; these only bound grpc-js' internal one.
    'grpc.initial_reconnect_backoff_ms': limits.backoffBaseMs,
    'grpc.max_reconnect_backoff_ms': limits.backoffMaxMs,
  };
}

/** Server options matching `clientChannelOptions`. */
export function serverOptions(limits: TransportLimits): grpc.ServerOptions {
  const bytesMax = grpcMessageBytesMax(limits);
  return {
    'grpc.max_send_message_length': bytesMax,
    'grpc.max_receive_message_length': bytesMax,
    'grpc.keepalive_time_ms': limits.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': limits.keepaliveTimeoutMs,
  };
}
