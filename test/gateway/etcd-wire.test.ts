/**
 * The plan-driven etcd codec against protobufjs with the shape conversion,
 * for every message type of the etcd API: the same bytes when encoding, the
 * same objects when decoding, the same refusals; and input the direct
 * decoder does not read itself (unknown fields, unpacked or packed
 * repeated scalars, truncation, negative and overlong integers) either
 * decodes the same or is left to protobufjs.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import protobuf from 'protobufjs';
import { decodeMessage, encodedLength, encodeMessage, planOf } from '../../src/gateway/etcd-wire.js';
import {
  BIGINT_FIELDS,
  decodeEtcdMessage,
  encodeEtcdMessage,
  etcdMessageLength,
  etcdProtoRoot,
  fromWire,
  qualifiedName,
  toWire,
  WireFormatError,
  type EtcdMessage,
} from '../../src/gateway/proto.js';
import { Prng } from '../storage/prng.js';

/** Every message type of the etcd .proto files. */
function allTypes(): protobuf.Type[] {
  const out: protobuf.Type[] = [];
  const walk = (ns: protobuf.NamespaceBase): void => {
    for (const o of ns.nestedArray) {
      if (o instanceof protobuf.Type) out.push(o);
      if (o instanceof protobuf.Namespace || o instanceof protobuf.Type) walk(o);
    }
  };
  walk(etcdProtoRoot());
  return out;
}

function viaProtobufjs(type: protobuf.Type, msg: EtcdMessage): Buffer {
  return Buffer.from(type.encode(toWire(type, msg)).finish());
}

function decodedByProtobufjs(type: protobuf.Type, bytes: Uint8Array): EtcdMessage {
  return fromWire(type, type.decode(bytes) as unknown as EtcdMessage);
}

const EDGE_NUMBERS = [0, 1, 127, 128, 300, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53 - 1, -1, -(2 ** 31), -(2 ** 53) + 1];
const EDGE_BIGINTS = [0n, 1n, -1n, 2n ** 62n + 5n, 2n ** 63n - 1n, -(2n ** 63n), 7_587_861_214_733_012_741n];

/** A random value for `field` in the in-memory shape (depth-bounded for recursive types). */
function randomValue(rng: Prng, type: protobuf.Type, field: protobuf.Field, depth: number): unknown {
  const where = `${qualifiedName(type)}.${field.name}`;
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return depth > 3 ? {} : randomMessage(rng, resolved, depth + 1);
  if (resolved instanceof protobuf.Enum) {
    const values = Object.values(resolved.values);
    return rng.int(8) === 0 ? 7 : values[rng.int(values.length)]!;
  }
  switch (field.type) {
    case 'int64':
    case 'uint64': {
      const unsigned = field.type === 'uint64';
      if (BIGINT_FIELDS.has(where)) {
        const v = EDGE_BIGINTS[rng.int(EDGE_BIGINTS.length)]!;
        return unsigned ? BigInt.asUintN(64, v) : v;
      }
      const v = rng.int(2) === 0 ? EDGE_NUMBERS[rng.int(EDGE_NUMBERS.length)]! : rng.int(1 << 30);
      return unsigned ? Math.abs(v) : v;
    }
    case 'int32':
      return [0, 1, 5, 300, -1, -7, 2 ** 31 - 1][rng.int(7)]!;
    case 'uint32':
      return [0, 1, 300, 2 ** 32 - 1][rng.int(4)]!;
    case 'bool':
      return rng.int(2) === 1;
    case 'string':
      return ['', 'a', 'root', 'ünïcödé ✓', 'x'.repeat(60)][rng.int(5)]!;
    case 'bytes': {
      const n = [0, 1, 3, 200][rng.int(4)]!;
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) b[i] = rng.int(256);
      return b;
    }
  }
  throw new Error(`no generator for ${where} (${field.type})`);
}

function randomMessage(rng: Prng, type: protobuf.Type, depth = 0): EtcdMessage {
  const msg: EtcdMessage = {};
  const oneofTaken = new Set<string>();
  for (const f of type.fieldsArray) {
    f.resolve();
    if (rng.int(3) === 0) continue;
    if (f.partOf !== null) {
      if (oneofTaken.has(f.partOf.name)) continue;
      oneofTaken.add(f.partOf.name);
    }
    msg[f.name] = f.repeated ? Array.from({ length: rng.int(4) }, () => randomValue(rng, type, f, depth)) : randomValue(rng, type, f, depth);
  }
  return msg;
}

/** A varint's bytes. */
function varint(v: number): number[] {
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

describe('etcd messages encoded and decoded by plan', () => {
  const types = allTypes();

  it('covers every message type of the etcd API', () => {
    assert.ok(types.length > 100, `${types.length} types`);
    for (const t of types) assert.ok(planOf(t) !== undefined, `${t.fullName} has a plan`);
  });

  it('writes protobufjs\'s bytes and reads them back as fromWire does (every type, 40 random messages each)', () => {
    const rng = new Prng(2024);
    for (const type of types) {
      const plan = planOf(type)!;
      for (let i = 0; i < 40; i++) {
        const msg = randomMessage(rng, type);
        const expected = viaProtobufjs(type, msg);
        const ours = encodeMessage(plan, msg);
        assert.deepEqual(ours, expected, `${type.fullName} case ${i}: bytes`);
        // Every value here is one the direct decoder reads itself (negative ones included).
        const decoded = decodeMessage(plan, ours);
        assert.ok(decoded !== undefined, `${type.fullName} case ${i}: declined`);
        assert.deepEqual(decoded, decodedByProtobufjs(type, ours), `${type.fullName} case ${i}: decode`);
        // The public functions agree with protobufjs either way.
        assert.deepEqual(decodeEtcdMessage(qualifiedName(type), ours), decodedByProtobufjs(type, ours));
        assert.deepEqual(encodeEtcdMessage(qualifiedName(type), msg), expected);
        assert.equal(encodedLength(plan, msg), expected.length, `${type.fullName} case ${i}: length`);
        assert.equal(etcdMessageLength(qualifiedName(type), msg), expected.length);
      }
    }
  });

  it('refuses what toWire refuses, with WireFormatError', () => {
    const put = planOf(etcdProtoRoot().lookupType('etcdserverpb.PutRequest'))!;
    const op = planOf(etcdProtoRoot().lookupType('etcdserverpb.RequestOp'))!;
    for (const bad of [
      { key: 'not bytes' },
      { key: Buffer.from('k'), lease: 1.5 },
      { key: Buffer.from('k'), lease: 2n ** 64n },
      { key: Buffer.from('k'), prev_kv: 1 },
    ]) {
      assert.throws(() => encodeMessage(put, bad), WireFormatError);
      assert.throws(() => viaProtobufjs(put.type, bad), WireFormatError);
    }
    const twoOfOneof = { request_put: { key: Buffer.from('k') }, request_range: { key: Buffer.from('k') } };
    assert.throws(() => encodeMessage(op, twoOfOneof), WireFormatError);
    assert.throws(() => encodeMessage(op, { request_put: 'x' }), WireFormatError);
  });

  it('leaves unknown fields, foreign wire types and truncated input to protobufjs, and reads both repeated forms', () => {
    const range = planOf(etcdProtoRoot().lookupType('etcdserverpb.RangeRequest'))!;
    const good = encodeMessage(range, { key: Buffer.from('a'), range_end: Buffer.from('b'), limit: 10, revision: 3 });
    // An unknown field (number 99, varint) appended: protobufjs skips it.
    const unknown = Buffer.concat([good, Buffer.from([...varint(99 * 8), 5])]);
    assert.equal(decodeMessage(range, unknown), undefined);
    assert.deepEqual(decodeEtcdMessage('etcdserverpb.RangeRequest', unknown), decodedByProtobufjs(range.type, unknown));
    // Truncated: protobufjs's error, as WireFormatError.
    for (let cut = 1; cut < good.length; cut++) {
      const t = good.subarray(0, cut);
      const direct = decodeMessage(range, t);
      if (direct === undefined) assert.throws(() => decodeEtcdMessage('etcdserverpb.RangeRequest', t), WireFormatError);
    }
    // A revision beyond 2^53 − 1: WireFormatError, as before.
    const huge = Buffer.from([...varint(4 * 8), 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]);
    assert.equal(decodeMessage(range, huge), undefined);
    assert.throws(() => decodeEtcdMessage('etcdserverpb.RangeRequest', huge), WireFormatError);

    // WatchCreateRequest.filters (repeated enum): packed and unpacked both read.
    const create = planOf(etcdProtoRoot().lookupType('etcdserverpb.WatchCreateRequest'))!;
    const filtersField = create.type.fields['filters']!;
    const packed = Buffer.from([...varint(filtersField.id * 8 + 2), 2, 0, 1]);
    const unpacked = Buffer.from([...varint(filtersField.id * 8), 0, ...varint(filtersField.id * 8), 1]);
    for (const bytes of [packed, unpacked]) {
      assert.deepEqual(decodeMessage(create, bytes)?.['filters'], [0, 1]);
      assert.deepEqual(decodeMessage(create, bytes), decodedByProtobufjs(create.type, bytes));
    }
  });
});
