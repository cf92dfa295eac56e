import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeKeyValues } from '../../src/gateway/kv-wire.js';
import { kvToWire, rangeResultToWire } from '../../src/gateway/convert.js';
import { decodeEtcdMessage, encodeEtcdMessage, type EtcdMessage } from '../../src/gateway/proto.js';
import type { KeyValue } from '../../src/shard/mvcc/index.js';

const kv = (over: Partial<KeyValue>): KeyValue => ({
  key: Buffer.from('k'),
  createRevision: 1,
  modRevision: 1,
  version: 1,
  value: Buffer.from('v'),
  lease: 0n,
  ...over,
});

/** The kvs of a RangeResponse as protobufjs encodes them, field by field, decoded again. */
function viaProtobufjs(kvs: readonly KeyValue[]): EtcdMessage {
  return decodeEtcdMessage('etcdserverpb.RangeResponse', encodeEtcdMessage('etcdserverpb.RangeResponse', { kvs: kvs.map(kvToWire) } as EtcdMessage));
}

function viaOnePass(kvs: readonly KeyValue[]): EtcdMessage {
  return decodeEtcdMessage('etcdserverpb.RangeResponse', encodeKeyValues(2, kvs));
}

test('KeyValues encoded in one pass decode as the field-by-field encoding, edge values included', () => {
  const kvs = [
    kv({}),
    kv({ key: Buffer.alloc(0), value: Buffer.alloc(0) }),
    kv({ createRevision: 0, modRevision: 0, version: 0 }),
    kv({ createRevision: 127, modRevision: 128, version: 16_383 }),
    kv({ createRevision: 2 ** 31, modRevision: 2 ** 32 + 5, version: 2 ** 40 }),
    kv({ createRevision: Number.MAX_SAFE_INTEGER, modRevision: Number.MAX_SAFE_INTEGER, version: 1 }),
    kv({ lease: 1n }),
    kv({ lease: 0x7fff_ffff_ffff_ffffn }),
    kv({ lease: -1n }),
    kv({ key: Buffer.alloc(300, 0x61), value: Buffer.alloc(70_000, 0xfe) }),
  ];
  for (const one of kvs) assert.deepEqual(viaOnePass([one]), viaProtobufjs([one]));
  assert.deepEqual(viaOnePass(kvs), viaProtobufjs(kvs));
  assert.equal(encodeKeyValues(2, []).length, 0);
});

test('random KeyValues decode the same both ways', () => {
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed % n;
  };
  const kvs: KeyValue[] = [];
  for (let i = 0; i < 300; i++) {
    kvs.push(
      kv({
        key: Buffer.from(Array.from({ length: 1 + rand(40) }, () => rand(256))),
        value: Buffer.from(Array.from({ length: rand(3) === 0 ? 0 : rand(2000) }, () => rand(256))),
        createRevision: rand(2) === 0 ? rand(1000) : rand(2 ** 30) * 2 ** 20,
        modRevision: rand(2 ** 30),
        version: rand(5),
        lease: rand(2) === 0 ? 0n : BigInt(rand(2 ** 30)) << BigInt(rand(33)),
      }),
    );
  }
  assert.deepEqual(viaOnePass(kvs), viaProtobufjs(kvs));
});

test('a revision that is not a non-negative safe integer is refused, not written wrong', () => {
  assert.throws(() => encodeKeyValues(2, [kv({ modRevision: -1 })]), RangeError);
  assert.throws(() => encodeKeyValues(2, [kv({ createRevision: 1.5 })]), RangeError);
  assert.throws(() => encodeKeyValues(2, [kv({ version: 2 ** 53 })]), RangeError);
});

test('a range response encodes its kvs in one pass and still shows them as objects (JSON gateway)', () => {
  const kvs = [kv({ key: Buffer.from('a'), lease: 7n }), kv({ key: Buffer.from('b'), modRevision: 9 })];
  const header = { cluster_id: 1n, member_id: 2n, revision: 9, raft_term: 3 };
  const res = rangeResultToWire({ kvs, more: true, count: 5, revision: 9 }, header) as EtcdMessage;
  const plain = { header, kvs: kvs.map(kvToWire), more: true, count: 5 } as EtcdMessage;
  assert.deepEqual(
    decodeEtcdMessage('etcdserverpb.RangeResponse', encodeEtcdMessage('etcdserverpb.RangeResponse', res)),
    decodeEtcdMessage('etcdserverpb.RangeResponse', encodeEtcdMessage('etcdserverpb.RangeResponse', plain)),
  );
  assert.deepEqual(res['kvs'], kvs.map(kvToWire));
});
