/**
 * The etcd messages' protobuf encoding and decoding straight between the
 * wire and the in-memory shape (proto.ts's module comment), driven by a
 * per-type plan built once from the reflected .proto. It replaces, for
 * every request and response of the etcd services, protobufjs's decode
 * followed by the shape conversion (`fromWire`) and the conversion
 * (`toWire`) followed by protobufjs's encode — the same results, without
 * the intermediate objects, 64-bit `Long`s and per-field reflection.
 *
 * Encoding writes exactly protobufjs's bytes (fields in number order,
 * packed repeated scalars, negative 32- and 64-bit integers as ten-byte
 * varints) and refuses what `toWire` refuses, with the same messages.
 * Decoding gives exactly `fromWire`'s result; when the input holds
 * anything it does not read itself — an unknown field, a wire type other
 * than the field's, a group, a truncated or overlong varint, an integer the
 * number path cannot hold — it returns undefined, and the caller decodes
 * through protobufjs, which also produces the error for invalid input.
 */
import protobuf from 'protobufjs';
import { bigVarintSize, varintSize, writeBigVarint, writeVarint } from '../shard/proto-wire.js';
import { BIGINT_FIELDS, checkedInt64, defaultOf, isDefault, WireFormatError, type EtcdMessage, type FieldKind } from './proto.js';

const WIRE_VARINT = 0;
const WIRE_BYTES = 2;

/** What a field holds, as the codec reads and writes it. */
type Kind = 'number64' | 'bigint64' | 'int32' | 'uint32' | 'bool' | 'string' | 'bytes' | 'message';

interface Field {
  readonly name: string;
  readonly id: number;
  readonly kind: Kind;
  /** The same field's kind in proto.ts's terms (defaults and what encoding leaves out). */
  readonly shape: FieldKind;
  /** int64 (signed) or uint64 (unsigned), for the bigint range check and decoding. */
  readonly unsigned: boolean;
  readonly repeated: boolean;
  /** Repeated scalars are written packed (proto3's default, as protobufjs does). */
  readonly packed: boolean;
  /** The oneof the field belongs to, if any: present only when set, written even at its default. */
  readonly oneof: string | undefined;
  /** Encoded tag (for packed fields: the length-delimited one). */
  readonly tag: Buffer;
  readonly message: Plan | undefined;
  readonly where: string;
}

/** A message type's codec plan. */
export interface Plan {
  readonly type: protobuf.Type;
  /** By .proto order (the in-memory shape's key order, as fromWire builds it). */
  readonly fields: readonly Field[];
  /** By field number (the encoding's order). */
  readonly byId: readonly Field[];
  /** Field index (in `fields`) by field number. */
  readonly indexOfId: ReadonlyMap<number, number>;
}

const plans = new Map<protobuf.Type, Plan>();

/**
 * The plan of `type`, or undefined when it (or a message it holds) has a
 * field this codec does not write (maps, fixed-width or zigzag integers,
 * floating point: none in the etcd API today).
 */
export function planOf(type: protobuf.Type): Plan | undefined {
  return plans.get(type) ?? (unsupported.has(type) ? undefined : buildPlan(type, new Map()));
}

function buildPlan(type: protobuf.Type, building: Map<protobuf.Type, Plan>): Plan | undefined {
  const cached = plans.get(type) ?? building.get(type);
  if (cached !== undefined) return cached;
  if (unsupported.has(type)) return undefined;
  const fields: Field[] = [];
  const plan: Plan = { type, fields, byId: [], indexOfId: new Map() };
  building.set(type, plan);
  for (const f of type.fieldsArray) {
    f.resolve();
    const where = `${type.fullName.replace(/^\./, '')}.${f.name}`;
    let kind: Kind | undefined;
    let message: Plan | undefined;
    const resolved = f.resolvedType;
    if (f.map) kind = undefined;
    else if (resolved instanceof protobuf.Type) {
      message = buildPlan(resolved, building);
      kind = message === undefined ? undefined : 'message';
    } else if (resolved instanceof protobuf.Enum || f.type === 'int32') kind = 'int32';
    else if (f.type === 'uint32') kind = 'uint32';
    else if (f.type === 'int64' || f.type === 'uint64') kind = bigintField(where) ? 'bigint64' : 'number64';
    else if (f.type === 'bool') kind = 'bool';
    else if (f.type === 'string') kind = 'string';
    else if (f.type === 'bytes') kind = 'bytes';
    if (kind === undefined) {
      unsupported.add(type);
      building.delete(type);
      return undefined;
    }
    const packed = f.repeated && kind !== 'string' && kind !== 'bytes' && kind !== 'message' && f.packed;
    const wire = packed || kind === 'string' || kind === 'bytes' || kind === 'message' ? WIRE_BYTES : WIRE_VARINT;
    fields.push({
      name: f.name,
      id: f.id,
      kind,
      shape: kind === 'int32' || kind === 'uint32' ? 'number' : kind,
      unsigned: f.type === 'uint64',
      repeated: f.repeated,
      packed,
      oneof: f.partOf?.name,
      tag: varintBytes(f.id * 8 + wire),
      message,
      where,
    });
  }
  const byId = [...fields].sort((a, b) => a.id - b.id);
  const done: Plan = { type, fields, byId, indexOfId: new Map(fields.map((f, i) => [f.id, i])) };
  // Nested plans built meanwhile point at `plan`; give it the finished arrays.
  Object.assign(plan, done);
  building.delete(type);
  plans.set(type, plan);
  return plan;
}

const unsupported = new Set<protobuf.Type>();

/** Whether the 64-bit field `where` holds an identifier (a bigint in memory; proto.ts). */
function bigintField(where: string): boolean {
  return BIGINT_FIELDS.has(where);
}

function varintBytes(v: number): Buffer {
  const b = Buffer.alloc(varintSize(v));
  writeVarint(b, 0, v);
  return b;
}

// ------------------------------------------------------------------ encoding

/** A 64-bit field's value, checked as toWire checks it, as the number or bigint whose varint is written. */
function int64Value(f: Field, v: unknown): number | bigint {
  const checked = checkedInt64(v, f.unsigned, f.where);
  if (typeof checked === 'number') return checked >= 0 ? checked : BigInt.asUintN(64, BigInt(checked));
  const bits = BigInt.asUintN(64, checked);
  return bits <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(bits) : bits;
}

function int32Value(f: Field, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new WireFormatError(`${f.where} must be an integer`);
  return v;
}

/**
 * Bytes of a 32-bit field's value as protobufjs writes it: an int32 or enum
 * below zero as the ten-byte varint of the number itself, anything else as
 * the varint of its low 32 bits.
 */
function int32Size(f: Field, v: number): number {
  if (f.kind === 'int32' && v < 0) return 10;
  return varintSize(v >>> 0);
}

function writeInt32(f: Field, buf: Buffer, pos: number, v: number): number {
  if (f.kind === 'int32' && v < 0) return writeBigVarint(buf, pos, BigInt.asUintN(64, BigInt(v)));
  return writeVarint(buf, pos, v >>> 0);
}

/** The encoded size of one value of `f` (without its tag), validating it as toWire does. */
function valueSize(f: Field, v: unknown, sizes: number[]): number {
  switch (f.kind) {
    case 'number64':
    case 'bigint64': {
      const x = int64Value(f, v);
      return typeof x === 'number' ? varintSize(x) : bigVarintSize(x);
    }
    case 'int32':
    case 'uint32':
      return int32Size(f, int32Value(f, v));
    case 'bool':
      if (typeof v !== 'boolean') throw new WireFormatError(`${f.where} must be a boolean`);
      return 1;
    case 'string': {
      if (typeof v !== 'string') throw new WireFormatError(`${f.where} must be a string`);
      const n = Buffer.byteLength(v, 'utf8');
      return varintSize(n) + n;
    }
    case 'bytes':
      if (!(v instanceof Uint8Array)) throw new WireFormatError(`${f.where} must be a Uint8Array`);
      return varintSize(v.length) + v.length;
    case 'message': {
      if (typeof v !== 'object' || v === null) throw new WireFormatError(`${f.where} must be an object`);
      const n = measure(f.message!, v as EtcdMessage, sizes);
      return varintSize(n) + n;
    }
  }
}

/**
 * The encoded size of `msg`, validating it as toWire does. Each message's
 * size (this one's first, then its nested ones in the order they are
 * written) is pushed to `sizes` for {@link write}.
 */
function measure(plan: Plan, msg: EtcdMessage, sizes: number[]): number {
  const slot = sizes.length;
  sizes.push(0);
  let n = 0;
  let oneofSet: Field | undefined;
  for (const f of plan.byId) {
    const v = msg[f.name];
    if (v === undefined || v === null) continue;
    if (f.repeated) {
      if (!Array.isArray(v)) throw new WireFormatError(`${f.where} must be an array`);
      if (v.length === 0) continue;
      if (f.packed) {
        let body = 0;
        for (const item of v) body += valueSize(f, item, sizes);
        n += f.tag.length + varintSize(body) + body;
      } else {
        for (const item of v) n += f.tag.length + valueSize(f, item, sizes);
      }
    } else if (f.oneof !== undefined) {
      if (oneofSet !== undefined && oneofSet.oneof === f.oneof) {
        throw new WireFormatError(`${f.where}: oneof already has ${oneofSet.name} set`);
      }
      oneofSet = f;
      n += f.tag.length + valueSize(f, v, sizes);
    } else if (!isDefault(f.shape, v)) {
      n += f.tag.length + valueSize(f, v, sizes);
    }
  }
  sizes[slot] = n;
  return n;
}

/** Where {@link write} is in the sizes {@link measure} recorded. */
interface Cursor {
  next: number;
}

function writeValue(f: Field, v: unknown, buf: Buffer, pos: number, sizes: number[], at: Cursor): number {
  switch (f.kind) {
    case 'number64':
    case 'bigint64': {
      const x = int64Value(f, v);
      return typeof x === 'number' ? writeVarint(buf, pos, x) : writeBigVarint(buf, pos, x);
    }
    case 'int32':
    case 'uint32':
      return writeInt32(f, buf, pos, v as number);
    case 'bool':
      buf[pos] = v === true ? 1 : 0;
      return pos + 1;
    case 'string': {
      const n = Buffer.byteLength(v as string, 'utf8');
      pos = writeVarint(buf, pos, n);
      return pos + buf.write(v as string, pos, n, 'utf8');
    }
    case 'bytes': {
      const b = v as Uint8Array;
      pos = writeVarint(buf, pos, b.length);
      buf.set(b, pos);
      return pos + b.length;
    }
    case 'message':
      pos = writeVarint(buf, pos, sizes[at.next]!);
      return write(f.message!, v as EtcdMessage, buf, pos, sizes, at);
  }
}

function write(plan: Plan, msg: EtcdMessage, buf: Buffer, pos: number, sizes: number[], at: Cursor): number {
  at.next++; // this message's own size
  for (const f of plan.byId) {
    const v = msg[f.name];
    if (v === undefined || v === null) continue;
    if (f.repeated) {
      const items = v as unknown[];
      if (items.length === 0) continue;
      if (f.packed) {
        buf.set(f.tag, pos);
        pos += f.tag.length;
        let body = 0;
        for (const item of items) body += valueSize(f, item, sizes);
        pos = writeVarint(buf, pos, body);
        for (const item of items) pos = writeValue(f, item, buf, pos, sizes, at);
      } else {
        for (const item of items) {
          buf.set(f.tag, pos);
          pos = writeValue(f, item, buf, pos + f.tag.length, sizes, at);
        }
      }
    } else if (f.oneof !== undefined || !isDefault(f.shape, v)) {
      buf.set(f.tag, pos);
      pos = writeValue(f, v, buf, pos + f.tag.length, sizes, at);
    }
  }
  return pos;
}

/** `msg` encoded as protobufjs encodes `toWire(type, msg)`; throws WireFormatError where toWire would. */
export function encodeMessage(plan: Plan, msg: EtcdMessage): Buffer {
  const sizes: number[] = [];
  const total = measure(plan, msg, sizes);
  const buf = Buffer.allocUnsafe(total);
  const end = write(plan, msg, buf, 0, sizes, { next: 0 });
  if (end !== total) throw new Error(`${plan.type.fullName}: wrote ${end} of ${total} bytes`);
  return buf;
}

/** The length {@link encodeMessage} would return, without encoding (validating `msg` alike). */
export function encodedLength(plan: Plan, msg: EtcdMessage): number {
  return measure(plan, msg, []);
}

// ------------------------------------------------------------------ decoding

/** Thrown inside the decoder for input it leaves to protobufjs; never escapes {@link decodeMessage}. */
const DECLINE = new Error('declined');

class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    pos: number,
    readonly end: number,
  ) {
    this.pos = pos;
  }

  /** A varint that fits a safe integer (at most 8 bytes). */
  uint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.end) throw DECLINE;
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (result > Number.MAX_SAFE_INTEGER) throw DECLINE;
        return result;
      }
      mul *= 0x80;
    }
    throw DECLINE;
  }

  /** A varint of up to 64 bits, as a bigint. */
  big(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw DECLINE;
      const b = this.buf[this.pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return result;
      shift += 7n;
    }
    throw DECLINE;
  }

  /** A length prefix; the bytes it covers must be there. */
  length(): number {
    const n = this.uint();
    if (this.pos + n > this.end) throw DECLINE;
    return n;
  }
}

function readValue(f: Field, r: Reader): unknown {
  switch (f.kind) {
    case 'number64': {
      const start = r.pos;
      try {
        return r.uint();
      } catch {
        // A negative int64 (ten bytes) is a safe integer when it is at least −2^53 + 1.
        r.pos = start;
        if (f.unsigned) throw DECLINE;
        const v = BigInt.asIntN(64, r.big());
        if (v < BigInt(Number.MIN_SAFE_INTEGER) || v >= 0n) throw DECLINE;
        return Number(v);
      }
    }
    case 'bigint64': {
      const v = r.big();
      return f.unsigned ? BigInt.asUintN(64, v) : BigInt.asIntN(64, v);
    }
    case 'int32':
    case 'uint32': {
      // protobufjs reads the low 32 bits of the varint (a negative int32 is ten bytes long).
      const start = r.pos;
      let v: number;
      try {
        v = r.uint();
      } catch {
        r.pos = start;
        v = Number(BigInt.asUintN(32, r.big()));
      }
      return f.kind === 'uint32' ? v >>> 0 : v | 0;
    }
    case 'bool': {
      const v = r.uint();
      return v !== 0;
    }
    case 'string': {
      const n = r.length();
      const s = r.buf.toString('utf8', r.pos, r.pos + n);
      r.pos += n;
      return s;
    }
    case 'bytes': {
      const n = r.length();
      const b = r.buf.subarray(r.pos, r.pos + n);
      r.pos += n;
      return b;
    }
    case 'message': {
      const n = r.length();
      const end = r.pos + n;
      const v = read(f.message!, new Reader(r.buf, r.pos, end));
      r.pos = end;
      return v;
    }
  }
}

const absent = Symbol('absent');

function read(plan: Plan, r: Reader): EtcdMessage {
  const values: unknown[] = new Array(plan.fields.length).fill(absent);
  while (r.pos < r.end) {
    const tag = r.uint();
    const index = plan.indexOfId.get(Math.floor(tag / 8));
    if (index === undefined) throw DECLINE;
    const f = plan.fields[index]!;
    const wire = tag & 7;
    if (f.repeated) {
      let list = values[index] as unknown[] | typeof absent;
      if (list === absent) values[index] = list = [];
      const scalar = f.kind !== 'string' && f.kind !== 'bytes' && f.kind !== 'message';
      if (scalar && wire === WIRE_BYTES) {
        // Packed; protobufjs takes both forms for any repeated scalar.
        const n = r.length();
        const end = r.pos + n;
        const inner = new Reader(r.buf, r.pos, end);
        while (inner.pos < end) list.push(readValue(f, inner));
        r.pos = end;
      } else {
        if (wire !== (scalar ? WIRE_VARINT : WIRE_BYTES)) throw DECLINE;
        list.push(readValue(f, r));
      }
    } else {
      const want = f.kind === 'string' || f.kind === 'bytes' || f.kind === 'message' ? WIRE_BYTES : WIRE_VARINT;
      if (wire !== want) throw DECLINE;
      values[index] = readValue(f, r);
    }
  }
  const out: EtcdMessage = {};
  for (let i = 0; i < plan.fields.length; i++) {
    const f = plan.fields[i]!;
    const v = values[i];
    if (f.repeated) out[f.name] = v === absent ? [] : v;
    else if (v !== absent) out[f.name] = v;
    else if (f.kind !== 'message' && f.oneof === undefined) out[f.name] = defaultOf(f.shape);
  }
  return out;
}

/** `bytes` as fromWire(protobufjs's decode) would give them, or undefined for input left to protobufjs. */
export function decodeMessage(plan: Plan, bytes: Uint8Array): EtcdMessage | undefined {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    return read(plan, new Reader(buf, 0, buf.length));
  } catch (err) {
    if (err === DECLINE) return undefined;
    throw err;
  }
}
