/**
 * Protobuf wire-format primitives for the codecs that encode their hottest
 * messages by hand instead of through protobufjs's object conversion (the
 * gateway's KeyValue lists and per-type plans, the replica's write commands
 * and a put's dedupe record): tags, varints
 * of safe-integer numbers and of 64-bit bigints, the KeyValue message (same
 * field numbers in mvccpb and rangepb), and a bounds-checked reader that
 * reports anything it cannot read exactly as `undefined`, so that a caller
 * can hand the input to the general decoder instead.
 */

/** Wire type of varint fields. */
export const WIRE_VARINT = 0;
/** Wire type of length-delimited fields (bytes, strings, messages). */
export const WIRE_BYTES = 2;

/** Bytes of `v` (a non-negative safe integer) as a varint. */
export function varintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}

/** Writes `v` (a non-negative safe integer) as a varint at `pos`; returns the position after it. */
export function writeVarint(buf: Buffer, pos: number, v: number): number {
  while (v >= 0x80) {
    buf[pos++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  buf[pos++] = v;
  return pos;
}

/** An int64 field's value as protobuf writes it: negative values as their 64-bit two's complement. */
export function int64Bits(v: bigint): bigint {
  return BigInt.asUintN(64, v);
}

/** Bytes of `v` (0 ≤ v < 2^64) as a varint; at most ten. */
export function bigVarintSize(v: bigint): number {
  const hi = Number(v >> 32n);
  if (hi === 0) return varintSize(Number(v));
  // The 32 low bits plus the high half's significant bits, seven per byte.
  return Math.ceil((64 - Math.clz32(hi)) / 7);
}

/**
 * Writes `v` (0 ≤ v < 2^64) as a varint at `pos`; returns the position after
 * it. It works on the two 32-bit halves: two bigint operations in all,
 * instead of two per byte.
 */
export function writeBigVarint(buf: Buffer, pos: number, v: bigint): number {
  let lo = Number(v & 0xffffffffn);
  let hi = Number(v >> 32n);
  while (hi !== 0 || lo >= 0x80) {
    buf[pos++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi = hi >>> 7;
  }
  buf[pos++] = lo;
  return pos;
}

/** Bytes of the tag of field `field` (any wire type). */
export function tagSize(field: number): number {
  return varintSize(field << 3);
}

/** Writes the tag of field `field` with wire type `wire`. */
export function writeTag(buf: Buffer, pos: number, field: number, wire: number): number {
  return writeVarint(buf, pos, field * 8 + wire);
}

/** Bytes of an int64 value (a safe integer; negative ones take ten bytes, as protobuf writes them). */
export function int64Size(v: number): number {
  return v >= 0 ? varintSize(v) : 10;
}

/** Writes an int64 value (a safe integer; negative ones as their 64-bit two's complement). */
export function writeInt64(buf: Buffer, pos: number, v: number): number {
  return v >= 0 ? writeVarint(buf, pos, v) : writeBigVarint(buf, pos, BigInt.asUintN(64, BigInt(v)));
}

/** Size of field `field` holding `len` bytes (tag, length, bytes). */
export function bytesFieldSize(field: number, len: number): number {
  return tagSize(field) + varintSize(len) + len;
}

/** Writes field `field` holding `bytes` (tag, length, bytes). */
export function writeBytesField(buf: Buffer, pos: number, field: number, bytes: Uint8Array): number {
  pos = writeVarint(buf, writeTag(buf, pos, field, WIRE_BYTES), bytes.length);
  buf.set(bytes, pos);
  return pos + bytes.length;
}

/** Writes varint field `field` holding `v` (a non-negative safe integer). */
export function writeVarintField(buf: Buffer, pos: number, field: number, v: number): number {
  return writeVarint(buf, writeTag(buf, pos, field, WIRE_VARINT), v);
}

/** The KeyValue fields the hand-written encoders read. */
export interface KeyValueFields {
  readonly key: Uint8Array;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
  readonly value: Uint8Array;
  readonly lease: bigint;
}

/** KeyValue's field numbers (mvccpb/kv.proto; rangepb's KeyValue has the same). */
const KV_KEY = 1;
const KV_CREATE_REVISION = 2;
const KV_MOD_REVISION = 3;
const KV_VERSION = 4;
const KV_VALUE = 5;
const KV_LEASE = 6;

/** A revision or version field must be a non-negative safe integer to take the number path. */
function checkCounter(v: number, name: string): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`KeyValue ${name} ${v} is not a non-negative safe integer`);
}

/**
 * Encoded size of one KeyValue message body (without its own tag and
 * length); throws RangeError on a revision or version that is not a
 * non-negative safe integer. Zero and empty fields are left out, as proto3's
 * canonical encoding (and etcd's) does.
 */
export function keyValueSize(kv: KeyValueFields): number {
  checkCounter(kv.createRevision, 'create_revision');
  checkCounter(kv.modRevision, 'mod_revision');
  checkCounter(kv.version, 'version');
  let n = 0;
  if (kv.key.length > 0) n += bytesFieldSize(KV_KEY, kv.key.length);
  if (kv.createRevision !== 0) n += 1 + varintSize(kv.createRevision);
  if (kv.modRevision !== 0) n += 1 + varintSize(kv.modRevision);
  if (kv.version !== 0) n += 1 + varintSize(kv.version);
  if (kv.value.length > 0) n += bytesFieldSize(KV_VALUE, kv.value.length);
  if (kv.lease !== 0n) n += 1 + bigVarintSize(int64Bits(kv.lease));
  return n;
}

/** Writes one KeyValue message body (checked by {@link keyValueSize} first); returns the position after it. */
export function writeKeyValue(buf: Buffer, pos: number, kv: KeyValueFields): number {
  if (kv.key.length > 0) pos = writeBytesField(buf, pos, KV_KEY, kv.key);
  if (kv.createRevision !== 0) pos = writeVarintField(buf, pos, KV_CREATE_REVISION, kv.createRevision);
  if (kv.modRevision !== 0) pos = writeVarintField(buf, pos, KV_MOD_REVISION, kv.modRevision);
  if (kv.version !== 0) pos = writeVarintField(buf, pos, KV_VERSION, kv.version);
  if (kv.value.length > 0) pos = writeBytesField(buf, pos, KV_VALUE, kv.value);
  if (kv.lease !== 0n) {
    pos = writeBigVarint(buf, writeTag(buf, pos, KV_LEASE, WIRE_VARINT), int64Bits(kv.lease));
  }
  return pos;
}

/**
 * Reads protobuf fields from `buf[pos, end)`. Every read returns undefined
 * when the input does not hold what was asked for (truncated, a varint
 * beyond 10 bytes or, for numbers, beyond 2^53 − 1); the reader is then
 * in no defined state and its caller gives up on the input.
 */
export class WireReader {
  constructor(
    private readonly buf: Buffer,
    public pos: number,
    readonly end: number,
  ) {}

  /** A reader of `bytes` as a whole. */
  static of(bytes: Uint8Array): WireReader {
    const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return new WireReader(buf, 0, buf.length);
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** A varint that is a safe integer. */
  uint(): number | undefined {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.end) return undefined;
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) return Number.isSafeInteger(result) ? result : undefined;
      mul *= 0x80;
    }
    return undefined;
  }

  /** A varint as a signed 64-bit integer (int64's encoding). */
  int64(): bigint | undefined {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) return undefined;
      const b = this.buf[this.pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return BigInt.asIntN(64, result);
      shift += 7n;
    }
    return undefined;
  }

  /** A varint that is 0 or 1 (a bool as protobuf writes it). */
  bool(): boolean | undefined {
    const v = this.uint();
    return v === 0 ? false : v === 1 ? true : undefined;
  }

  /** A length-delimited field's bytes, as a view into the input. */
  bytes(): Buffer | undefined {
    const len = this.uint();
    if (len === undefined || this.pos + len > this.end) return undefined;
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  /** The bytes not read yet, as a view; the reader moves to the end. */
  rest(): Buffer {
    const out = this.buf.subarray(this.pos, this.end);
    this.pos = this.end;
    return out;
  }

  /** A reader of an embedded message; this reader moves past it. */
  message(): WireReader | undefined {
    const len = this.uint();
    if (len === undefined || this.pos + len > this.end) return undefined;
    const inner = new WireReader(this.buf, this.pos, this.pos + len);
    this.pos += len;
    return inner;
  }
}
