/**
 * The `keyspan.forwardpb.Forward` service (proto/keyspan/forwardpb.proto):
 * loaded at runtime with protobufjs like the other .proto files, and its
 * grpc-js definition with plain-object messages.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { findPackageRoot } from '../group/transport/index.js';

/** Path of forwardpb.proto relative to the package root. */
export const FORWARD_PROTO_RELATIVE_PATH = join('proto', 'keyspan', 'forwardpb.proto');
/** Fully-qualified name of the service. */
export const FORWARD_SERVICE_NAME = 'keyspan.forwardpb.Forward';
/** Trailer key naming the node the receiver believes leads (a decimal node id). */
export const LEADER_NODE_TRAILER = 'keyspan-leader-node';

/** One metadata entry of a forwarded call. */
export interface ForwardMetadataEntry {
  readonly key: string;
  readonly value: string;
}

/** A forwarded etcd unary call. */
export interface ForwardRequest {
  readonly method: string;
  readonly request: Uint8Array;
  readonly metadata: readonly ForwardMetadataEntry[];
  readonly from_node: number;
  readonly proposer: Uint8Array;
  readonly seq: number;
}

/** The encoded etcd response. */
export interface ForwardResponse {
  readonly response: Uint8Array;
}

/** A message of the forwarding stream: a call, or the cancellation of call `call_id`. */
export interface StreamRequest {
  readonly call_id: number;
  readonly call?: ForwardRequest;
  readonly cancel: boolean;
}

/** The answer to one streamed call: `code` 0 with `response`, or a gRPC status and a leader hint (0: none). */
export interface StreamReply {
  readonly call_id: number;
  readonly response: Uint8Array;
  readonly code: number;
  readonly details: string;
  readonly leader_node: number;
}

/** A message of the forwarding stream from the sender: the calls (and cancellations) ready at once. */
export interface CallBatch {
  readonly calls: readonly StreamRequest[];
}

/** A message of the forwarding stream from the receiver: the answers ready at once. */
export interface ReplyBatch {
  readonly replies: readonly StreamReply[];
}

/** What a member tells about itself. */
export interface MemberInfoResponse {
  readonly node_id: number;
  readonly name: string;
  readonly peer_urls: readonly string[];
  readonly client_urls: readonly string[];
}

let root: protobuf.Root | undefined;

function forwardRoot(): protobuf.Root {
  if (root === undefined) {
    const path = join(findPackageRoot(dirname(fileURLToPath(import.meta.url))), FORWARD_PROTO_RELATIVE_PATH);
    root = new protobuf.Root().loadSync(path, { keepCase: true });
    root.resolveAll();
  }
  return root;
}

let definition: grpc.ServiceDefinition | undefined;

/** The grpc-js definition of the Forward service (methods `Unary`, `MemberInfo`, `CallStream`). */
export function forwardServiceDefinition(): grpc.ServiceDefinition {
  if (definition !== undefined) return definition;
  const service = forwardRoot().lookupService(FORWARD_SERVICE_NAME);
  const out: Record<string, grpc.MethodDefinition<object, object>> = {};
  for (const m of service.methodsArray) {
    m.resolve();
    const req = m.resolvedRequestType;
    const res = m.resolvedResponseType;
    if (req === null || res === null) throw new Error(`${FORWARD_SERVICE_NAME}/${m.name}: unresolved types`);
    const decode = (type: protobuf.Type) => (bytes: Buffer): object =>
      type.toObject(type.decode(bytes), { defaults: true, arrays: true, longs: Number, bytes: Buffer });
    out[m.name] = {
      path: `/${FORWARD_SERVICE_NAME}/${m.name}`,
      requestStream: m.requestStream === true,
      responseStream: m.responseStream === true,
      requestSerialize: (value: object) => Buffer.from(req.encode(req.fromObject(value)).finish()),
      requestDeserialize: decode(req),
      responseSerialize: (value: object) => Buffer.from(res.encode(res.fromObject(value)).finish()),
      responseDeserialize: decode(res),
    };
  }
  definition = out;
  return definition;
}
