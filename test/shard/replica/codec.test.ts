import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeCommand,
  decodeDescriptor,
  encodeCommand,
  encodeDescriptor,
  type RangeCommand,
} from '../../../src/shard/replica/index.js';
import {
  CommandInvalidError,
  spanContainsKey,
  spanContainsRange,
  epochMatches,
  DATA_EPOCH_CHECK,
  FULL_EPOCH_CHECK,
  type RangeDescriptor,
} from '../../../src/shard/range/index.js';

const b = (s: string): Buffer => Buffer.from(s);

test('range commands round-trip through protobuf, nested txns and 64-bit leases included', () => {
  const cmd: RangeCommand = {
    requestId: { proposer: b('0123456789abcdef'), seq: 2 ** 53 - 1 },
    epoch: { confVersion: 3, spanVersion: 9 },
    revision: 12,
    body: {
      type: 'txn',
      request: {
        compare: [
          { key: b('k'), result: 'NOT_EQUAL', target: 'VALUE', value: b('v') },
          { key: b('k'), rangeEnd: b('l'), result: 'LESS', target: 'MOD', modRevision: 5 },
          { key: b('k'), result: 'GREATER', target: 'LEASE', lease: 2n ** 62n + 1n },
        ],
        success: [
          { type: 'put', request: { key: b('k'), value: b('v'), lease: 2n ** 63n - 1n, prevKv: true, ignoreLease: true } },
          { type: 'deleteRange', request: { key: b('a'), rangeEnd: b('\0'), prevKv: true } },
          { type: 'txn', request: { compare: [], success: [{ type: 'range', request: { key: b('x'), limit: 2, sortOrder: 'DESCEND', sortTarget: 'MOD', keysOnly: true, minModRevision: 3 } }], failure: [] } },
        ],
        failure: [{ type: 'range', request: { key: b('k'), countOnly: true, revision: 4 } }],
      },
    },
  };
  assert.deepEqual(decodeCommand(encodeCommand(cmd)), cmd);
  const compact: RangeCommand = { requestId: { proposer: b('p'), seq: 1 }, epoch: { confVersion: 1, spanVersion: 1 }, body: { type: 'compact', request: { revision: 7, physical: true } } };
  assert.deepEqual(decodeCommand(encodeCommand(compact)), compact);
  const change: RangeCommand = { requestId: { proposer: b('p'), seq: 1 }, epoch: { confVersion: 1, spanVersion: 1 }, body: { type: 'changeReplicas', request: { changeType: 'remove', nodeId: 3, replicaId: 4 } } };
  assert.deepEqual(decodeCommand(encodeCommand(change)), change);
});

test('decoding refuses garbage, oversized proposer ids and unsafe integers', () => {
  assert.throws(() => decodeCommand(b('\xff\xff\xff')), CommandInvalidError);
  assert.throws(
    () => encodeCommand({ requestId: { proposer: Buffer.alloc(17), seq: 1 }, epoch: { confVersion: 1, spanVersion: 1 }, body: { type: 'put', request: { key: b('k') } } }),
    CommandInvalidError,
  );
  // seq = 2^53 encoded by hand: field 1 (request_id) { field 1 proposer "p", field 2 seq varint 2^53 }.
  const seq = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10];
  const rid = [0x0a, 0x01, 0x70, 0x10, ...seq];
  const bytes = Uint8Array.from([0x0a, rid.length, ...rid, 0x52, 0x03, 0x0a, 0x01, 0x6b]);
  assert.throws(() => decodeCommand(bytes), /not a safe integer/);
});

test('descriptors round-trip; span and epoch checks follow etcd range conventions and TiKV epoch rules', () => {
  const desc: RangeDescriptor = {
    rangeId: 9,
    start: b('b'),
    end: b('m'),
    replicas: [
      { nodeId: 1, replicaId: 11, role: 'voter' },
      { nodeId: 2, replicaId: 12, role: 'learner' },
    ],
    epoch: { confVersion: 2, spanVersion: 5 },
  };
  assert.deepEqual(decodeDescriptor(encodeDescriptor(desc)), desc);
  assert.equal(spanContainsKey(desc, b('b')), true);
  assert.equal(spanContainsKey(desc, b('a')), false);
  assert.equal(spanContainsKey(desc, b('m')), false);
  assert.equal(spanContainsRange(desc, b('b'), b('m')), true);
  assert.equal(spanContainsRange(desc, b('b'), b('n')), false);
  assert.equal(spanContainsRange(desc, b('c'), b('\0')), false, 'from-key needs an unbounded range');
  assert.equal(spanContainsRange({ ...desc, end: new Uint8Array(0) }, b('c'), b('\0')), true);
  assert.equal(spanContainsRange(desc, b('c'), b('a')), true, 'an empty interval touches nothing');
  assert.equal(epochMatches({ confVersion: 1, spanVersion: 5 }, desc.epoch, DATA_EPOCH_CHECK), true);
  assert.equal(epochMatches({ confVersion: 2, spanVersion: 6 }, desc.epoch, DATA_EPOCH_CHECK), false, 'newer is a mismatch too');
  assert.equal(epochMatches({ confVersion: 1, spanVersion: 5 }, desc.epoch, FULL_EPOCH_CHECK), false);
});
