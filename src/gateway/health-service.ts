/**
 * The standard gRPC health service (`grpc.health.v1.Health`), which etcd
 * registers too: Check answers SERVING while the node knows a leader for its
 * ranges, NOT_SERVING otherwise. The two tiny messages are encoded by hand
 * (one optional field each) rather than loading another .proto.
 */
import type * as grpc from '@grpc/grpc-js';
import type { GatewayContext } from './context.js';

/** grpc.health.v1.HealthCheckResponse.ServingStatus values. */
export const ServingStatus = { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2 } as const;

/** The health service's name on the wire. */
export const HEALTH_SERVICE_NAME = 'grpc.health.v1.Health';

/** Check's request: `string service = 1` (etcd answers for "" and ignores the rest). */
type HealthCheckRequest = { service: string };
type HealthCheckResponse = { status: number };

/** Decodes field 1 (string) of a HealthCheckRequest; other fields are skipped by length. */
function decodeRequest(buf: Buffer): HealthCheckRequest {
  // Field 1, wire type 2: tag 0x0a, varint length (a service name is short).
  if (buf.length >= 2 && buf[0] === 0x0a) {
    const len = buf[1] ?? 0;
    if (len < 0x80 && buf.length >= 2 + len) return { service: buf.subarray(2, 2 + len).toString('utf8') };
  }
  return { service: '' };
}

/** Encodes `status` as field 1 (enum, varint); the default (0) encodes as nothing. */
function encodeResponse(r: HealthCheckResponse): Buffer {
  return r.status === 0 ? Buffer.alloc(0) : Buffer.of(0x08, r.status);
}

/** The service definition (Check only; Watch is not offered). */
export const HEALTH_SERVICE_DEFINITION: grpc.ServiceDefinition<grpc.UntypedServiceImplementation> = {
  Check: {
    path: `/${HEALTH_SERVICE_NAME}/Check`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (r: HealthCheckRequest) => Buffer.from(r.service === '' ? [] : [0x0a, r.service.length, ...Buffer.from(r.service)]),
    requestDeserialize: decodeRequest,
    responseSerialize: encodeResponse,
    responseDeserialize: (b: Buffer) => ({ status: b.length >= 2 && b[0] === 0x08 ? (b[1] ?? 0) : 0 }),
    originalName: 'check',
  },
} as grpc.ServiceDefinition<grpc.UntypedServiceImplementation>;

/** Check's answer for the node: SERVING while every range it holds has a leader (etcd: while the member has one). */
export function healthStatus(ctx: GatewayContext): number {
  const ranges = ctx.router.ranges();
  const leader = ranges.length > 0 && ranges.every((t) => t.raftStatus().leader !== 0);
  return leader ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
}
