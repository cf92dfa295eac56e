/**
 * The etcd v3 wire API, loaded once at runtime from `proto/etcd/` with
 * protobufjs (as `src/group/transport/proto-root.ts` does for raftpb), and
 * turned into `@grpc/grpc-js` service definitions whose method paths are
 * etcd's own (`/etcdserverpb.KV/Range`, `/v3lockpb.Lock/Lock`, ...).
 *
 * In-memory shape of every request and response (docs/compatibility.md):
 * - plain objects keyed by the .proto field names, unchanged (`range_end`,
 *   `TTL`, `peerURLs`): protobufjs runs with `keepCase: true`;
 * - bytes are `Buffer`s (encode also takes any `Uint8Array`);
 * - 64-bit integers follow docs/integers.md: lease IDs and member/cluster IDs
 *   (the fields in {@link BIGINT_FIELDS}) are `bigint`; every other 64-bit
 *   field (revisions, versions, TTLs, counts, sizes, watch IDs) is a `number`
 *   that decoding checks is a safe integer (it throws {@link WireFormatError}
 *   otherwise, which grpc-js answers with INTERNAL, as Go's gRPC does for an
 *   unparsable request); encode takes a number or a bigint for either kind;
 * - enums are their wire numbers;
 * - after decoding, every proto3 scalar and repeated field is present (its
 *   default when absent on the wire); a message field is present only when
 *   set, and of a oneof only the member that is set;
 * - encoding leaves out scalar fields holding their default value (as Go's
 *   encoder does) except oneof members, whose presence is the information.
 */
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { findPackageRoot } from '../group/transport/proto-root.js';
import { decodeMessage, encodedLength, encodeMessage, planOf as wirePlanOf } from './etcd-wire.js';

/** Directory of the etcd .proto files (the `-I` include root), relative to the package root. */
export const ETCD_PROTO_RELATIVE_DIR = join('proto', 'etcd');

/** The etcd .proto files, relative to {@link ETCD_PROTO_RELATIVE_DIR}. */
export const ETCD_PROTO_FILES: readonly string[] = [
  'mvccpb/kv.proto',
  'authpb/auth.proto',
  'etcdserverpb/rpc.proto',
  'v3lockpb/v3lock.proto',
  'v3electionpb/v3election.proto',
];

/** Fully-qualified names of the eight etcd gRPC services. */
export const ETCD_SERVICE_NAMES = [
  'etcdserverpb.KV',
  'etcdserverpb.Watch',
  'etcdserverpb.Lease',
  'etcdserverpb.Cluster',
  'etcdserverpb.Maintenance',
  'etcdserverpb.Auth',
  'v3lockpb.Lock',
  'v3electionpb.Election',
] as const;

/** One of {@link ETCD_SERVICE_NAMES}. */
export type EtcdServiceName = (typeof ETCD_SERVICE_NAMES)[number];

/**
 * The 64-bit fields that hold identifiers rather than quantities: lease IDs
 * (clients pick arbitrary 63-bit values) and member/cluster IDs (random
 * uint64s). They decode to `bigint`; every other 64-bit field is a number.
 */
export const BIGINT_FIELDS: ReadonlySet<string> = new Set([
  'etcdserverpb.ResponseHeader.cluster_id',
  'etcdserverpb.ResponseHeader.member_id',
  'mvccpb.KeyValue.lease',
  'etcdserverpb.PutRequest.lease',
  'etcdserverpb.Compare.lease',
  'etcdserverpb.LeaseGrantRequest.ID',
  'etcdserverpb.LeaseGrantResponse.ID',
  'etcdserverpb.LeaseRevokeRequest.ID',
  'etcdserverpb.LeaseCheckpoint.ID',
  'etcdserverpb.LeaseKeepAliveRequest.ID',
  'etcdserverpb.LeaseKeepAliveResponse.ID',
  'etcdserverpb.LeaseTimeToLiveRequest.ID',
  'etcdserverpb.LeaseTimeToLiveResponse.ID',
  'etcdserverpb.LeaseStatus.ID',
  'etcdserverpb.Member.ID',
  'etcdserverpb.MemberRemoveRequest.ID',
  'etcdserverpb.MemberUpdateRequest.ID',
  'etcdserverpb.MemberPromoteRequest.ID',
  'etcdserverpb.MoveLeaderRequest.targetID',
  'etcdserverpb.AlarmRequest.memberID',
  'etcdserverpb.AlarmMember.memberID',
  'etcdserverpb.StatusResponse.leader',
  'v3lockpb.LockRequest.lease',
  'v3electionpb.CampaignRequest.lease',
  'v3electionpb.LeaderKey.lease',
]);

/** A message or integer that does not fit the in-memory shape (see the module comment). */
export class WireFormatError extends Error {
  override readonly name = 'WireFormatError';
  readonly code = 'WIRE_FORMAT';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A decoded or to-be-encoded etcd message in the in-memory shape. */
export type EtcdMessage = Record<string, unknown>;

// ------------------------------------------------------------------ loading

let cachedRoot: protobuf.Root | undefined;

/** Absolute path of `proto/etcd/` in this installation (source or dist layout). */
export function etcdProtoDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return join(findPackageRoot(here), ETCD_PROTO_RELATIVE_DIR);
}

/** All etcd .proto files, parsed on first use and cached for the process. */
export function etcdProtoRoot(): protobuf.Root {
  if (cachedRoot === undefined) {
    const dir = etcdProtoDir();
    const root = new protobuf.Root();
    // Imports name paths under the include root (like `protoc -I proto/etcd`),
    // not relative to the importing file, which is protobufjs' default.
    root.resolvePath = (_origin: string, target: string) => (isAbsolute(target) ? target : join(dir, target));
    // keepCase: the in-memory shape uses the .proto names, which are also the
    // JSON gateway's output names (grpc-gateway's OrigName).
    root.loadSync(ETCD_PROTO_FILES.map((f) => join(dir, f)), { keepCase: true });
    root.resolveAll();
    cachedRoot = root;
  }
  return cachedRoot;
}

/** A message type by its fully-qualified name, e.g. `etcdType('etcdserverpb.RangeRequest')`. */
export function etcdType(fullName: string): protobuf.Type {
  // protobufjs resolves a name by walking the namespace tree on every call; every request encodes one.
  let type = etcdTypes.get(fullName);
  if (type === undefined) {
    type = etcdProtoRoot().lookupType(fullName);
    etcdTypes.set(fullName, type);
  }
  return type;
}

/** Types already looked up, by full name (the root never changes once loaded). */
const etcdTypes = new Map<string, protobuf.Type>();

/** A service by its fully-qualified name. */
export function etcdService(fullName: EtcdServiceName): protobuf.Service {
  return etcdProtoRoot().lookupService(fullName);
}

/** `pkg.Type` of a reflected type (protobufjs' fullName has a leading dot). */
export function qualifiedName(t: protobuf.ReflectionObject): string {
  return t.fullName.replace(/^\./, '');
}

// ------------------------------------------------------------- field plans

/** How one field converts between the in-memory shape and protobufjs' objects. */
export type FieldKind = 'number64' | 'bigint64' | 'bytes' | 'message' | 'enum' | 'string' | 'bool' | 'number';

/** One field of a {@link Plan}. */
interface FieldPlan {
  readonly name: string;
  readonly kind: FieldKind;
  readonly repeated: boolean;
  /** Member of a oneof: present only when set, encoded even at its default. */
  readonly inOneof: boolean;
  readonly type?: protobuf.Type;
  readonly where: string;
}

/** The conversion plan of one message type, computed once. */
interface Plan {
  readonly fields: readonly FieldPlan[];
}

const INT64_TYPES: ReadonlySet<string> = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const UNSIGNED_64_TYPES: ReadonlySet<string> = new Set(['uint64', 'fixed64']);
const NUMBER_TYPES: ReadonlySet<string> = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32', 'double', 'float']);

const plans = new Map<protobuf.Type, Plan>();

function planOf(type: protobuf.Type): Plan {
  const cached = plans.get(type);
  if (cached !== undefined) return cached;
  const fields: FieldPlan[] = [];
  for (const field of type.fieldsArray) {
    field.resolve();
    const where = `${qualifiedName(type)}.${field.name}`;
    if (field.map) throw new WireFormatError(`${where}: map fields are not supported`);
    const base = { name: field.name, repeated: field.repeated, inOneof: field.partOf !== null, where };
    const resolved = field.resolvedType;
    if (resolved instanceof protobuf.Type) fields.push({ ...base, kind: 'message', type: resolved });
    else if (resolved instanceof protobuf.Enum) fields.push({ ...base, kind: 'enum' });
    else if (INT64_TYPES.has(field.type)) fields.push({ ...base, kind: BIGINT_FIELDS.has(where) ? 'bigint64' : 'number64' });
    else if (field.type === 'bytes') fields.push({ ...base, kind: 'bytes' });
    else if (field.type === 'string') fields.push({ ...base, kind: 'string' });
    else if (field.type === 'bool') fields.push({ ...base, kind: 'bool' });
    else if (NUMBER_TYPES.has(field.type)) fields.push({ ...base, kind: 'number' });
    else throw new WireFormatError(`${where}: unsupported field type ${field.type}`);
  }
  const plan = { fields };
  plans.set(type, plan);
  return plan;
}

/** Whether `field` of `type` is 64-bit and unsigned (for the bigint range check). */
function isUnsigned64(type: protobuf.Type, name: string): boolean {
  const f = type.fields[name];
  return f !== undefined && UNSIGNED_64_TYPES.has(f.type);
}

// ----------------------------------------------------------------- integers

/** protobufjs' 64-bit value (long.js `Long`, or a plain number for small ones). */
interface LongLike {
  readonly low: number;
  readonly high: number;
  readonly unsigned?: boolean;
}

function isLongLike(v: unknown): v is LongLike {
  return typeof v === 'object' && v !== null && 'low' in v && 'high' in v;
}

/** A decoded 64-bit value as a bigint, honouring the field's signedness. */
export function longToBigInt(v: unknown, unsigned: boolean, where: string): bigint {
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new WireFormatError(`${where}=${v} is not an integer`);
    return BigInt(v);
  }
  if (typeof v === 'bigint') return v;
  if (isLongLike(v)) {
    const bits = (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
    return unsigned ? BigInt.asUintN(64, bits) : BigInt.asIntN(64, bits);
  }
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
  throw new WireFormatError(`${where} is not a 64-bit integer`);
}

/** A decoded 64-bit value as a safe-integer number; throws {@link WireFormatError} otherwise. */
export function longToSafeNumber(v: unknown, unsigned: boolean, where: string): number {
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) return v;
    throw new WireFormatError(`${where}=${v} is not a safe integer`);
  }
  const big = longToBigInt(v, unsigned, where);
  if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new WireFormatError(`${where}=${big} is outside the safe integer range`);
  }
  return Number(big);
}

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

/**
 * An in-memory 64-bit value checked for its field: a safe-integer number
 * (not negative for an unsigned field), or a bigint within the field's
 * range; throws {@link WireFormatError} otherwise.
 */
export function checkedInt64(v: unknown, unsigned: boolean, where: string): number | bigint {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new WireFormatError(`${where}=${v} is not a safe integer`);
    if (unsigned && v < 0) throw new WireFormatError(`${where}=${v} is negative for an unsigned field`);
    return v;
  }
  if (typeof v !== 'bigint') throw new WireFormatError(`${where} must be a number or bigint`);
  if (unsigned ? v < 0n || v > UINT64_MAX : v < INT64_MIN || v > 2n ** 63n - 1n) {
    throw new WireFormatError(`${where}=${v} does not fit the field`);
  }
  return v;
}

/** An in-memory 64-bit value (number or bigint) as protobufjs' writer input. */
function toLongBits(v: unknown, unsigned: boolean, where: string): number | LongLike {
  const checked = checkedInt64(v, unsigned, where);
  if (typeof checked === 'number') return checked;
  const bits = BigInt.asUintN(64, checked);
  // The writer only reads low/high (LongBits.from); the bit pattern is the
  // same for signed and unsigned fields.
  return { low: Number(bits & 0xffffffffn) | 0, high: Number(bits >> 32n) | 0, unsigned };
}

// --------------------------------------------------------------- conversion

const EMPTY_BUFFER = Buffer.alloc(0);

function asBuffer(v: unknown, where: string): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  // protobufjs' prototype default for an absent bytes field is an empty array.
  if (Array.isArray(v) && v.length === 0) return EMPTY_BUFFER;
  throw new WireFormatError(`${where} is not bytes`);
}

function scalarFromWire(f: FieldPlan, type: protobuf.Type, v: unknown): unknown {
  switch (f.kind) {
    case 'number64':
      return longToSafeNumber(v, isUnsigned64(type, f.name), f.where);
    case 'bigint64':
      return longToBigInt(v, isUnsigned64(type, f.name), f.where);
    case 'bytes':
      return asBuffer(v, f.where);
    case 'message':
      return fromWire(f.type as protobuf.Type, v as EtcdMessage);
    case 'enum':
    case 'number':
      return typeof v === 'number' ? v : 0;
    case 'string':
      return typeof v === 'string' ? v : '';
    case 'bool':
      return v === true;
  }
}

/** The in-memory value of a field absent on the wire (undefined for a message). */
export function defaultOf(kind: FieldKind): unknown {
  switch (kind) {
    case 'number64':
    case 'enum':
    case 'number':
      return 0;
    case 'bigint64':
      return 0n;
    case 'bytes':
      return EMPTY_BUFFER;
    case 'string':
      return '';
    case 'bool':
      return false;
    case 'message':
      return undefined;
  }
}

function own(obj: object, name: string): boolean {
  return Object.prototype.hasOwnProperty.call(obj, name);
}

/** A protobufjs-decoded message in the in-memory shape (see the module comment). */
export function fromWire(type: protobuf.Type, decoded: EtcdMessage): EtcdMessage {
  const out: EtcdMessage = {};
  for (const f of planOf(type).fields) {
    const v = own(decoded, f.name) ? decoded[f.name] : undefined;
    if (f.repeated) {
      out[f.name] = Array.isArray(v) ? v.map((item: unknown) => scalarFromWire(f, type, item)) : [];
    } else if (v === undefined || v === null) {
      if (f.kind !== 'message' && !f.inOneof) out[f.name] = defaultOf(f.kind);
    } else {
      out[f.name] = scalarFromWire(f, type, v);
    }
  }
  return out;
}

/** Whether a singular non-oneof value is its field's default (encoding leaves it out). */
export function isDefault(kind: FieldKind, v: unknown): boolean {
  switch (kind) {
    case 'number64':
    case 'bigint64':
    case 'enum':
    case 'number':
      return v === 0 || v === 0n;
    case 'bytes':
      return v instanceof Uint8Array && v.length === 0;
    case 'string':
      return v === '';
    case 'bool':
      return v === false;
    case 'message':
      return false;
  }
}

function scalarToWire(f: FieldPlan, type: protobuf.Type, v: unknown): unknown {
  switch (f.kind) {
    case 'number64':
    case 'bigint64':
      return toLongBits(v, isUnsigned64(type, f.name), f.where);
    case 'bytes':
      if (!(v instanceof Uint8Array)) throw new WireFormatError(`${f.where} must be a Uint8Array`);
      return v;
    case 'message':
      if (typeof v !== 'object' || v === null) throw new WireFormatError(`${f.where} must be an object`);
      return toWire(f.type as protobuf.Type, v as EtcdMessage);
    case 'enum':
    case 'number':
      if (typeof v !== 'number' || !Number.isInteger(v)) throw new WireFormatError(`${f.where} must be an integer`);
      return v;
    case 'string':
      if (typeof v !== 'string') throw new WireFormatError(`${f.where} must be a string`);
      return v;
    case 'bool':
      if (typeof v !== 'boolean') throw new WireFormatError(`${f.where} must be a boolean`);
      return v;
  }
}

/** An in-memory message as the plain object protobufjs' encoder takes. */
export function toWire(type: protobuf.Type, msg: EtcdMessage): EtcdMessage {
  const out: EtcdMessage = {};
  let oneofSet: string | undefined;
  for (const f of planOf(type).fields) {
    const v = msg[f.name];
    if (v === undefined || v === null) continue;
    if (f.repeated) {
      if (!Array.isArray(v)) throw new WireFormatError(`${f.where} must be an array`);
      if (v.length > 0) out[f.name] = v.map((item: unknown) => scalarToWire(f, type, item));
    } else if (f.inOneof) {
      // Only one member of a oneof may be set; protobufjs would silently keep the last.
      if (oneofSet !== undefined && type.fields[oneofSet]?.partOf === type.fields[f.name]?.partOf) {
        throw new WireFormatError(`${f.where}: oneof already has ${oneofSet} set`);
      }
      oneofSet = f.name;
      out[f.name] = scalarToWire(f, type, v);
    } else if (!isDefault(f.kind, v)) {
      out[f.name] = scalarToWire(f, type, v);
    }
  }
  return out;
}

/** Encodes an in-memory message of the named type. */
export function encodeEtcdMessage(typeName: string, msg: EtcdMessage): Buffer {
  return encodeWith(etcdType(typeName), msg);
}

/** The length of {@link encodeEtcdMessage}'s result, measured without encoding where the type has a wire plan. */
export function etcdMessageLength(typeName: string, msg: EtcdMessage): number {
  const type = etcdType(typeName);
  const plan = (msg as MessageWithEncodedFields)[ENCODED_FIELDS] === undefined ? wirePlanOf(type) : undefined;
  return plan === undefined ? encodeWith(type, msg).length : encodedLength(plan, msg);
}

/** Decodes wire bytes of the named type into the in-memory shape. */
export function decodeEtcdMessage(typeName: string, bytes: Uint8Array): EtcdMessage {
  return decodeWith(etcdType(typeName), bytes);
}

// ---------------------------------------------------------------- services

/** One RPC of an etcd service, as reflected from the .proto. */
export interface EtcdMethodInfo {
  readonly service: EtcdServiceName;
  /** The RPC's name as in the .proto, e.g. `Range`. */
  readonly method: string;
  /** gRPC path, e.g. `/etcdserverpb.KV/Range`. */
  readonly path: string;
  readonly requestType: string;
  readonly responseType: string;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
}

/** Every RPC of `service`, in .proto order. */
export function etcdMethods(service: EtcdServiceName): EtcdMethodInfo[] {
  const svc = etcdService(service);
  return svc.methodsArray.map((m) => {
    m.resolve();
    const req = m.resolvedRequestType;
    const res = m.resolvedResponseType;
    if (req === null || res === null) throw new WireFormatError(`${service}/${m.name}: unresolved types`);
    return {
      service,
      method: m.name,
      path: `/${service}/${m.name}`,
      requestType: qualifiedName(req),
      responseType: qualifiedName(res),
      requestStream: m.requestStream === true,
      responseStream: m.responseStream === true,
    };
  });
}

/** lowerCamelCase of an RPC name (`LeaseGrant` → `leaseGrant`), grpc-js' originalName. */
function lowerFirst(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

/**
 * A grpc-js service definition for `service`, keyed by RPC name as in the
 * .proto (`Range`); handlers may also be keyed by the lowerCamelCase name.
 * Messages (de)serialize to and from the in-memory shape.
 */
export function etcdServiceDefinition(service: EtcdServiceName): grpc.ServiceDefinition<grpc.UntypedServiceImplementation> {
  const def: Record<string, grpc.MethodDefinition<EtcdMessage, EtcdMessage>> = {};
  for (const m of etcdMethods(service)) {
    const reqType = etcdType(m.requestType);
    const resType = etcdType(m.responseType);
    def[m.method] = {
      path: m.path,
      requestStream: m.requestStream,
      responseStream: m.responseStream,
      requestSerialize: (msg) => encodeWith(reqType, msg),
      requestDeserialize: (buf) => decodeWith(reqType, buf),
      responseSerialize: (msg) => encodeWith(resType, msg),
      responseDeserialize: (buf) => decodeWith(resType, buf),
      originalName: lowerFirst(m.method),
    };
  }
  return def as grpc.ServiceDefinition<grpc.UntypedServiceImplementation>;
}

/**
 * Key of a message property holding fields already encoded, each as its
 * tag, length and bytes (a repeated field: each entry so), encoded once and
 * shared by many messages: a watch event sent to every watcher of a prefix
 * is encoded once, not once per watcher, and so is the response header of
 * a revision. The gRPC encoding leaves those fields' objects out and
 * appends these bytes (protobuf reads fields, and a repeated field's
 * entries, wherever they appear); the objects stay in the message for the
 * JSON gateway, which ignores this property.
 */
export const ENCODED_FIELDS = Symbol('keyspan.encodedFields');

/** One field of {@link ENCODED_FIELDS}. */
export interface EncodedField {
  /** The field the parts stand for. */
  readonly name: string;
  /** Its entries (one for a singular field), encoded as they appear in the message (tag, length, bytes). */
  readonly parts: readonly Buffer[];
}

/** A message that may carry pre-encoded fields. */
export type MessageWithEncodedFields = EtcdMessage & { [ENCODED_FIELDS]?: readonly EncodedField[] };

function encodeWith(type: protobuf.Type, msg: EtcdMessage): Buffer {
  const encoded = (msg as MessageWithEncodedFields)[ENCODED_FIELDS];
  if (encoded !== undefined) {
    const rest: EtcdMessage = {};
    let restFields = 0;
    for (const k of Object.keys(msg)) {
      if (encoded.some((f) => f.name === k)) continue;
      rest[k] = msg[k];
      restFields++;
    }
    const parts: Buffer[] = restFields === 0 ? [] : [encodeWith(type, rest)];
    for (const f of encoded) parts.push(...f.parts);
    return Buffer.concat(parts);
  }
  const plan = wirePlanOf(type);
  if (plan !== undefined) return encodeMessage(plan, msg);
  const bytes = type.encode(toWire(type, msg)).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function decodeWith(type: protobuf.Type, buf: Uint8Array): EtcdMessage {
  // The direct decoder (etcd-wire.ts) leaves whatever it does not read itself to protobufjs.
  const plan = wirePlanOf(type);
  const direct = plan === undefined ? undefined : decodeMessage(plan, buf);
  if (direct !== undefined) return direct;
  let decoded: EtcdMessage;
  try {
    decoded = type.decode(buf) as unknown as EtcdMessage;
  } catch (err) {
    throw new WireFormatError(`malformed ${qualifiedName(type)}: ${(err as Error).message}`, { cause: err });
  }
  return fromWire(type, decoded);
}
