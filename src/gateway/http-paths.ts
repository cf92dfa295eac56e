/**
 * etcd's JSON gateway (grpc-gateway v1 in etcd 3.4/3.5): the HTTP routes,
 * and the JSON codec between gateway bodies and the in-memory message shape.
 *
 * JSON rules (grpc-gateway's default marshaler, jsonpb with OrigName):
 * - output uses the .proto field names (`range_end`, `create_revision`);
 *   input accepts those and the lowerCamelCase JSON names (`rangeEnd`);
 * - 64-bit integers are written as decimal strings; input takes strings or
 *   numbers (numbers above 2^53 have already lost precision in JSON.parse,
 *   so clients send lease IDs as strings);
 * - bytes are base64 (standard alphabet out; standard or URL-safe in);
 * - enums are written by name; input takes names or numbers;
 * - fields at their default value are omitted (`succeeded:false`, a PUT
 *   event's `type`), except a set oneof member; unknown input fields are
 *   ignored, as grpc-gateway v1 does;
 * - unary answers are the message itself; a streaming RPC's messages are
 *   each wrapped as `{"result": ...}` and newline-separated;
 * - errors are `{"error": msg, "message": msg, "code": grpcCode}` with the
 *   HTTP status grpc-gateway v1 derives from the gRPC code.
 */
import protobuf from 'protobufjs';
import { EtcdError, GrpcStatus } from './errors.js';
import { etcdType, fromWire, qualifiedName, toWire, type EtcdMessage, type EtcdServiceName } from './proto.js';

/** How a route's RPC streams. */
export type RouteKind = 'unary' | 'server-stream' | 'bidi-stream';

/** One JSON gateway route: HTTP POST `path` → `service`/`method`. */
export interface GatewayRoute {
  readonly path: string;
  readonly service: EtcdServiceName;
  readonly method: string;
  readonly kind: RouteKind;
}

function route(path: string, service: EtcdServiceName, method: string, kind: RouteKind = 'unary'): GatewayRoute {
  return { path, service, method, kind };
}

/**
 * Every route etcd 3.5 serves (3.4 is the same minus Downgrade, AuthStatus
 * and /v3/maintenance/hashkv; 3.4 bound HashKV to /v3/maintenance/hash too,
 * where Hash shadowed it). All are POST with the request as the body.
 */
export const GATEWAY_ROUTES: readonly GatewayRoute[] = [
  route('/v3/kv/range', 'etcdserverpb.KV', 'Range'),
  route('/v3/kv/put', 'etcdserverpb.KV', 'Put'),
  route('/v3/kv/deleterange', 'etcdserverpb.KV', 'DeleteRange'),
  route('/v3/kv/txn', 'etcdserverpb.KV', 'Txn'),
  route('/v3/kv/compaction', 'etcdserverpb.KV', 'Compact'),
  route('/v3/watch', 'etcdserverpb.Watch', 'Watch', 'bidi-stream'),
  route('/v3/lease/grant', 'etcdserverpb.Lease', 'LeaseGrant'),
  route('/v3/lease/revoke', 'etcdserverpb.Lease', 'LeaseRevoke'),
  route('/v3/kv/lease/revoke', 'etcdserverpb.Lease', 'LeaseRevoke'),
  route('/v3/lease/keepalive', 'etcdserverpb.Lease', 'LeaseKeepAlive', 'bidi-stream'),
  route('/v3/lease/timetolive', 'etcdserverpb.Lease', 'LeaseTimeToLive'),
  route('/v3/kv/lease/timetolive', 'etcdserverpb.Lease', 'LeaseTimeToLive'),
  route('/v3/lease/leases', 'etcdserverpb.Lease', 'LeaseLeases'),
  route('/v3/kv/lease/leases', 'etcdserverpb.Lease', 'LeaseLeases'),
  route('/v3/cluster/member/add', 'etcdserverpb.Cluster', 'MemberAdd'),
  route('/v3/cluster/member/remove', 'etcdserverpb.Cluster', 'MemberRemove'),
  route('/v3/cluster/member/update', 'etcdserverpb.Cluster', 'MemberUpdate'),
  route('/v3/cluster/member/list', 'etcdserverpb.Cluster', 'MemberList'),
  route('/v3/cluster/member/promote', 'etcdserverpb.Cluster', 'MemberPromote'),
  route('/v3/maintenance/alarm', 'etcdserverpb.Maintenance', 'Alarm'),
  route('/v3/maintenance/status', 'etcdserverpb.Maintenance', 'Status'),
  route('/v3/maintenance/defragment', 'etcdserverpb.Maintenance', 'Defragment'),
  route('/v3/maintenance/hash', 'etcdserverpb.Maintenance', 'Hash'),
  route('/v3/maintenance/hashkv', 'etcdserverpb.Maintenance', 'HashKV'),
  route('/v3/maintenance/snapshot', 'etcdserverpb.Maintenance', 'Snapshot', 'server-stream'),
  route('/v3/maintenance/transfer-leadership', 'etcdserverpb.Maintenance', 'MoveLeader'),
  route('/v3/maintenance/downgrade', 'etcdserverpb.Maintenance', 'Downgrade'),
  route('/v3/auth/enable', 'etcdserverpb.Auth', 'AuthEnable'),
  route('/v3/auth/disable', 'etcdserverpb.Auth', 'AuthDisable'),
  route('/v3/auth/status', 'etcdserverpb.Auth', 'AuthStatus'),
  route('/v3/auth/authenticate', 'etcdserverpb.Auth', 'Authenticate'),
  route('/v3/auth/user/add', 'etcdserverpb.Auth', 'UserAdd'),
  route('/v3/auth/user/get', 'etcdserverpb.Auth', 'UserGet'),
  route('/v3/auth/user/list', 'etcdserverpb.Auth', 'UserList'),
  route('/v3/auth/user/delete', 'etcdserverpb.Auth', 'UserDelete'),
  route('/v3/auth/user/changepw', 'etcdserverpb.Auth', 'UserChangePassword'),
  route('/v3/auth/user/grant', 'etcdserverpb.Auth', 'UserGrantRole'),
  route('/v3/auth/user/revoke', 'etcdserverpb.Auth', 'UserRevokeRole'),
  route('/v3/auth/role/add', 'etcdserverpb.Auth', 'RoleAdd'),
  route('/v3/auth/role/get', 'etcdserverpb.Auth', 'RoleGet'),
  route('/v3/auth/role/list', 'etcdserverpb.Auth', 'RoleList'),
  route('/v3/auth/role/delete', 'etcdserverpb.Auth', 'RoleDelete'),
  route('/v3/auth/role/grant', 'etcdserverpb.Auth', 'RoleGrantPermission'),
  route('/v3/auth/role/revoke', 'etcdserverpb.Auth', 'RoleRevokePermission'),
  route('/v3/lock/lock', 'v3lockpb.Lock', 'Lock'),
  route('/v3/lock/unlock', 'v3lockpb.Lock', 'Unlock'),
  route('/v3/election/campaign', 'v3electionpb.Election', 'Campaign'),
  route('/v3/election/proclaim', 'v3electionpb.Election', 'Proclaim'),
  route('/v3/election/leader', 'v3electionpb.Election', 'Leader'),
  route('/v3/election/observe', 'v3electionpb.Election', 'Observe', 'server-stream'),
  route('/v3/election/resign', 'v3electionpb.Election', 'Resign'),
];

const BY_PATH: ReadonlyMap<string, GatewayRoute> = new Map(GATEWAY_ROUTES.map((r) => [r.path, r]));

/** The legacy prefix etcd 3.4/3.5 still rewrite to `/v3/` (`/v3alpha/` is gone: 404). */
export const GATEWAY_LEGACY_PREFIX = '/v3beta/';

/** The route for an HTTP path (query string ignored, `/v3beta/` accepted), if any. */
export function findGatewayRoute(path: string): GatewayRoute | undefined {
  let p = path;
  const q = p.indexOf('?');
  if (q >= 0) p = p.slice(0, q);
  if (p.startsWith(GATEWAY_LEGACY_PREFIX)) p = `/v3/${p.slice(GATEWAY_LEGACY_PREFIX.length)}`;
  return BY_PATH.get(p);
}

// -------------------------------------------------------------- JSON → msg

/** lowerCamelCase JSON name of a .proto field, as protoc derives it. */
export function jsonFieldName(protoName: string): string {
  return protoName.replace(/_(.)/g, (_m: string, c: string) => c.toUpperCase());
}

function badJson(message: string): EtcdError {
  // grpc-gateway answers an undecodable body with InvalidArgument.
  return new EtcdError('BAD_REQUEST', message, GrpcStatus.INVALID_ARGUMENT);
}

const INT64_TYPES: ReadonlySet<string> = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const INT32_TYPES: ReadonlySet<string> = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32']);
/** Bound on message nesting in a JSON body (nested txns are the deep case). */
const JSON_DEPTH_MAX = 64;

function normalizeValue(field: protobuf.Field, v: unknown, where: string, depth: number): unknown {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badJson(`${where}: expected an object`);
    return normalizeObject(resolved, v as Record<string, unknown>, depth + 1);
  }
  if (resolved instanceof protobuf.Enum) {
    if (typeof v === 'string') {
      const n = resolved.values[v];
      if (n === undefined) throw badJson(`${where}: unknown enum value ${JSON.stringify(v)}`);
      return n;
    }
    if (typeof v === 'number' && Number.isInteger(v)) return v;
    throw badJson(`${where}: expected an enum name or number`);
  }
  if (INT64_TYPES.has(field.type)) {
    if (typeof v === 'number' && Number.isInteger(v)) return v;
    if (typeof v === 'string' && /^-?\d+$/.test(v)) return v;
    throw badJson(`${where}: expected an integer or a decimal string`);
  }
  if (INT32_TYPES.has(field.type) || field.type === 'double' || field.type === 'float') {
    if (typeof v === 'number') return v;
    if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
    throw badJson(`${where}: expected a number`);
  }
  switch (field.type) {
    case 'bytes':
      if (typeof v !== 'string') throw badJson(`${where}: expected base64 bytes`);
      // Buffer's base64 decoder takes both alphabets, with or without padding.
      return Buffer.from(v, 'base64');
    case 'string':
      if (typeof v !== 'string') throw badJson(`${where}: expected a string`);
      return v;
    case 'bool':
      if (typeof v !== 'boolean') throw badJson(`${where}: expected true or false`);
      return v;
    default:
      throw badJson(`${where}: unsupported field type ${field.type}`);
  }
}

/** Maps JSON names to .proto names, checks value kinds, decodes base64 and enum names. */
function normalizeObject(type: protobuf.Type, json: Record<string, unknown>, depth: number): Record<string, unknown> {
  if (depth > JSON_DEPTH_MAX) throw badJson(`message nesting deeper than ${JSON_DEPTH_MAX}`);
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    field.resolve();
    const raw = Object.prototype.hasOwnProperty.call(json, field.name)
      ? json[field.name]
      : json[jsonFieldName(field.name)];
    // jsonpb treats null like an absent field.
    if (raw === undefined || raw === null) continue;
    const where = `${qualifiedName(type)}.${field.name}`;
    if (field.repeated) {
      if (!Array.isArray(raw)) throw badJson(`${where}: expected an array`);
      out[field.name] = raw.map((item: unknown) => normalizeValue(field, item, where, depth));
    } else {
      out[field.name] = normalizeValue(field, raw, where, depth);
    }
  }
  return out;
}

/**
 * A gateway request body (already `JSON.parse`d) as an in-memory message of
 * `typeName`. Throws an InvalidArgument EtcdError for a malformed body.
 */
export function jsonToMessage(typeName: string, json: unknown): EtcdMessage {
  const type = etcdType(typeName);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw badJson('request body must be a JSON object');
  const normalized = normalizeObject(type, json as Record<string, unknown>, 0);
  // fromObject turns decimal strings into Longs; fromWire then applies the
  // in-memory integer rules (safe numbers, bigint IDs) exactly as for gRPC.
  try {
    return fromWire(type, type.fromObject(normalized) as unknown as EtcdMessage);
  } catch (err) {
    throw badJson((err as Error).message);
  }
}

// -------------------------------------------------------------- msg → JSON

/** protobufjs' toObject options that give grpc-gateway's (jsonpb OrigName) output. */
const TO_JSON_OPTIONS: protobuf.IConversionOptions = {
  longs: String,
  enums: String,
  bytes: String,
  defaults: false,
  arrays: false,
  objects: false,
  oneofs: false,
  json: true,
};

/** An in-memory message of `typeName` as the gateway's JSON object. */
export function messageToJson(typeName: string, msg: EtcdMessage): Record<string, unknown> {
  const type = etcdType(typeName);
  // toWire drops non-oneof defaults, so toObject's `defaults: false` omits
  // exactly what jsonpb's EmitDefaults=false omits.
  return type.toObject(type.fromObject(toWire(type, msg)), TO_JSON_OPTIONS);
}

/** One message of a streaming RPC as grpc-gateway frames it. */
export function streamResultJson(typeName: string, msg: EtcdMessage): Record<string, unknown> {
  return { result: messageToJson(typeName, msg) };
}

// ------------------------------------------------------------------- errors

/** grpc-gateway v1's HTTP status for a gRPC code (runtime.HTTPStatusFromCode). */
export function httpStatusFromGrpcCode(code: number): number {
  switch (code) {
    case GrpcStatus.OK:
      return 200;
    case GrpcStatus.CANCELLED:
      return 408;
    case GrpcStatus.UNKNOWN:
      return 500;
    case GrpcStatus.INVALID_ARGUMENT:
      return 400;
    case GrpcStatus.DEADLINE_EXCEEDED:
      return 504;
    case GrpcStatus.NOT_FOUND:
      return 404;
    case GrpcStatus.ALREADY_EXISTS:
      return 409;
    case GrpcStatus.PERMISSION_DENIED:
      return 403;
    case GrpcStatus.UNAUTHENTICATED:
      return 401;
    case GrpcStatus.RESOURCE_EXHAUSTED:
      return 429;
    case GrpcStatus.FAILED_PRECONDITION:
      // grpc-gateway v1 (etcd 3.4/3.5); v2 (etcd 3.6) answers 400 instead.
      return 412;
    case GrpcStatus.ABORTED:
      return 409;
    case GrpcStatus.OUT_OF_RANGE:
      return 400;
    case GrpcStatus.UNIMPLEMENTED:
      return 501;
    case GrpcStatus.INTERNAL:
      return 500;
    case GrpcStatus.UNAVAILABLE:
      return 503;
    case GrpcStatus.DATA_LOSS:
      return 500;
    default:
      return 500;
  }
}

/** A unary route's error response: HTTP status and grpc-gateway's body. */
export function gatewayErrorResponse(err: EtcdError): { status: number; body: Record<string, unknown> } {
  return {
    status: httpStatusFromGrpcCode(err.grpcCode),
    // Key order as etcd 3.4's gateway writes it (observed): error, message, code.
    body: { error: err.message, message: err.message, code: err.grpcCode },
  };
}

/** An error inside a streaming route's response, framed as grpc-gateway v1 does. */
export function streamErrorJson(err: EtcdError): Record<string, unknown> {
  const httpCode = httpStatusFromGrpcCode(err.grpcCode);
  return {
    error: { grpc_code: err.grpcCode, http_code: httpCode, message: err.message, http_status: httpStatusText(httpCode) },
  };
}

function httpStatusText(status: number): string {
  const texts: Readonly<Record<number, string>> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'Not Found',
    408: 'Request Timeout',
    409: 'Conflict',
    412: 'Precondition Failed',
    429: 'Too Many Requests',
    500: 'Internal Server Error',
    501: 'Not Implemented',
    503: 'Service Unavailable',
    504: 'Gateway Timeout',
  };
  return texts[status] ?? 'Internal Server Error';
}
