import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import protobuf from 'protobufjs';
import type { Message } from '../../../src/group/raft/types.js';
import {
  ALL_MESSAGE_TYPES,
  TransportCodecError,
  TransportEncodeError,
  decodeBatch,
  decodeMessage,
  decodeSnapshotChunk,
  encodeBatch,
  encodeGroupMessage,
  encodeMessage,
  encodeSnapshotData,
  encodeSnapshotHeader,
  raftProtoPath,
} from '../../../src/group/transport/index.js';
import { entry, msg, snapshot } from './harness.js';

/** A message with every field set, including both entry types. */
function full(type: Message['type']): Message {
  return msg(type, {
    to: 3,
    from: 7,
    term: 12,
    logTerm: 11,
    index: 2 ** 40 + 5,
    entries: [entry(11, 2 ** 40 + 6, [1, 2, 3]), { term: 12, index: 2 ** 40 + 7, type: 'confChange', data: new Uint8Array([9]) }],
    commit: 2 ** 40,
    snapshot: snapshot(99, 1000),
    reject: true,
    rejectHint: 77,
    context: new Uint8Array([4, 5, 6]),
  });
}

test('the .proto file is found from the module location', () => {
  assert.ok(existsSync(raftProtoPath()), raftProtoPath());
});

test('every message type round-trips with all fields set', () => {
  assert.equal(ALL_MESSAGE_TYPES.length, 19);
  for (const type of ALL_MESSAGE_TYPES) {
    const m = full(type);
    assert.deepEqual(decodeMessage(encodeMessage(m)), m, type);
  }
});

test('every message type round-trips with zero values and absent optional fields', () => {
  for (const type of ALL_MESSAGE_TYPES) {
    const m = msg(type, { to: 0, from: 0 });
    const back = decodeMessage(encodeMessage(m));
    assert.deepEqual(back, m, type);
    assert.equal('snapshot' in back, false, `${type}: no snapshot`);
    assert.equal('context' in back, false, `${type}: no context`);
  }
});

test('an empty context and empty entry data stay present and empty', () => {
  const m = msg('heartbeat', { context: new Uint8Array(0), entries: [entry(1, 1)] });
  const back = decodeMessage(encodeMessage(m));
  assert.deepEqual(back.context, new Uint8Array(0));
  assert.deepEqual(back.entries[0]?.data, new Uint8Array(0));
});

test('a snapshot with an empty conf state and no data round-trips', () => {
  const m = msg('snap', {
    snapshot: {
      meta: { index: 0, term: 0, confState: { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } },
      data: new Uint8Array(0),
    },
  });
  assert.deepEqual(decodeMessage(encodeMessage(m)), m);
});

test('a joint conf state round-trips', () => {
  const snap = snapshot(5, 3);
  const m = msg('snap', {
    snapshot: {
      ...snap,
      meta: { ...snap.meta, confState: { voters: [1, 2], learners: [5], votersOutgoing: [1, 3], learnersNext: [3], autoLeave: true } },
    },
  });
  assert.deepEqual(decodeMessage(encodeMessage(m)), m);
});

test('Number.MAX_SAFE_INTEGER survives every integer field', () => {
  const max = Number.MAX_SAFE_INTEGER;
  const m = msg('app', { to: max, from: max, term: max, logTerm: max, index: max, commit: max, rejectHint: max, entries: [entry(max, max)] });
  assert.deepEqual(decodeMessage(encodeMessage(m)), m);
  const batch = decodeBatch(encodeBatch(max, max, [encodeGroupMessage(max, m)]));
  assert.equal(batch.fromNode, max);
  assert.equal(batch.messages[0]?.groupId, max);
});

test('encoding refuses unsafe, negative and fractional integers', () => {
  for (const bad of [2 ** 53, -1, 1.5, Number.NaN]) {
    assert.throws(() => encodeMessage(msg('app', { term: bad })), TransportEncodeError, String(bad));
    assert.throws(() => encodeGroupMessage(bad, msg('app')), TransportEncodeError, String(bad));
  }
  assert.throws(() => encodeMessage(msg('app', { entries: [entry(1, 2 ** 53)] })), TransportEncodeError);
});

/** Raw protobuf bytes of a Message whose `term` (field 4) is `value`. */
function messageWithTerm(value: string): Uint8Array {
  return protobuf.Writer.create().uint32((4 << 3) | 0).uint64(value).finish();
}

test('decoding rejects integers of 2^53 and above', () => {
  assert.equal(decodeMessage(messageWithTerm('9007199254740991')).term, Number.MAX_SAFE_INTEGER);
  for (const big of ['9007199254740992', '18446744073709551615']) {
    assert.throws(() => decodeMessage(messageWithTerm(big)), TransportCodecError, big);
  }
  // An unsafe group id inside a batch: GroupMessage field 1.
  const gm = protobuf.Writer.create().uint32((1 << 3) | 0).uint64('9007199254740993').finish();
  const batch = encodeBatch(1, 2, [gm]);
  assert.throws(() => decodeBatch(batch), TransportCodecError);
});

test('decoding rejects malformed bytes and unknown enum values', () => {
  assert.throws(() => decodeMessage(new Uint8Array([0xff, 0xff, 0xff])), TransportCodecError);
  const unknownType = protobuf.Writer.create().uint32((1 << 3) | 0).uint32(99).finish();
  assert.throws(() => decodeMessage(unknownType), TransportCodecError);
  const gmWithoutMessage = protobuf.Writer.create().uint32((1 << 3) | 0).uint64(5).finish();
  assert.throws(() => decodeBatch(encodeBatch(1, 2, [gmWithoutMessage])), TransportCodecError);
});

test('a batch carries many groups in order', () => {
  const parts = [];
  const expected = [];
  for (let g = 1; g <= 50; g++) {
    const m = msg(g % 2 === 0 ? 'heartbeat' : 'app', { term: g, entries: g % 2 === 0 ? [] : [entry(g, g, [g])] });
    parts.push(encodeGroupMessage(g * 1000, m));
    expected.push({ groupId: g * 1000, message: m });
  }
  const batch = decodeBatch(encodeBatch(4, 9, parts));
  assert.equal(batch.fromNode, 4);
  assert.equal(batch.toNode, 9);
  assert.deepEqual(batch.messages, expected);
  assert.deepEqual(decodeBatch(encodeBatch(1, 2, [])).messages, []);
});

test('snapshot header and data chunks round-trip; the header carries no data', () => {
  const m = msg('snap', { snapshot: snapshot(10, 5000), term: 3 });
  const header = { fromNode: 1, toNode: 2, groupId: 77, message: m, dataBytes: 5000 };
  const h = decodeSnapshotChunk(encodeSnapshotHeader(header));
  assert.equal(h.data.length, 0);
  assert.equal(h.header?.groupId, 77);
  assert.equal(h.header?.dataBytes, 5000);
  assert.equal(h.header?.message.snapshot?.data.length, 0);
  assert.deepEqual(h.header?.message.snapshot?.meta, m.snapshot?.meta);
  const d = decodeSnapshotChunk(encodeSnapshotData(m.snapshot?.data.subarray(0, 100) ?? new Uint8Array()));
  assert.equal(d.header, undefined);
  assert.deepEqual(d.data, m.snapshot?.data.subarray(0, 100));
});

test('a snapshot header must carry a snap message', () => {
  const header = { fromNode: 1, toNode: 2, groupId: 1, message: msg('app'), dataBytes: 0 };
  assert.throws(() => decodeSnapshotChunk(encodeSnapshotHeader(header)), TransportCodecError);
});
