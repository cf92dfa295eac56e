import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommandInvalidError } from '../../../src/shard/range/index.js';
import { decodeCommand, encodeCommand, type RangeCommand } from '../../../src/shard/replica/index.js';
import { decodeDedupeRecord, encodeDedupeRecord } from '../../../src/shard/replica/command-codec.js';
import { RangeKeys } from '../../../src/shard/replica/keys.js';
import { decodeLeaseRecord, encodeLeaseRecord } from '../../../src/shard/lease/index.js';

const requestId = { proposer: Buffer.from('p1'), seq: 9 };
const epoch = { confVersion: 1, spanVersion: 1 };

test('lease commands round-trip through the range command codec, full int64 ids included', () => {
  const cmds: RangeCommand[] = [
    { requestId, epoch, body: { type: 'leaseGrant', request: { id: (1n << 63n) - 1n, ttlSeconds: 9_000_000_000 } } },
    { requestId, epoch, body: { type: 'leaseGrant', request: { id: -7n, ttlSeconds: 2 } } },
    { requestId, epoch, revision: 44, body: { type: 'leaseRevoke', request: { id: 123n } } },
  ];
  for (const cmd of cmds) assert.deepEqual(decodeCommand(encodeCommand(cmd)), cmd);
});

test('lease results round-trip through dedupe records', () => {
  const records = [
    { index: 12, result: { raftTerm: 3, ok: true as const, result: { type: 'leaseGrant' as const, response: { revision: 5, id: 77n, ttlSeconds: 60 } } } },
    { index: 13, result: { raftTerm: 3, ok: true as const, result: { type: 'leaseRevoke' as const, response: { revision: 6, deleted: 4 } } } },
    { index: 14, result: { raftTerm: 3, ok: false as const, error: { code: 'LEASE_EXISTS', message: 'etcdserver: lease already exists', lease: 77n } } },
  ];
  for (const r of records) assert.deepEqual(decodeDedupeRecord(encodeDedupeRecord(r)), r);
});

test('lease record values and keys: fixed layout, int64 ids in two\'s complement, malformed values refused', () => {
  assert.deepEqual(decodeLeaseRecord(5n, encodeLeaseRecord({ id: 5n, ttlSeconds: 3600 })), { id: 5n, ttlSeconds: 3600 });
  assert.throws(() => decodeLeaseRecord(5n, Buffer.from([2, 0, 0, 0, 0, 0, 0, 0, 1])), RangeError);
  assert.throws(() => decodeLeaseRecord(5n, Buffer.from([1, 0])), RangeError);
  const keys = new RangeKeys(3);
  for (const id of [1n, -1n, (1n << 63n) - 1n, -(1n << 63n)]) {
    assert.equal(keys.leaseIdOfRecordKey(keys.leaseRecord(id)), id);
    const a = keys.attachment(id, Buffer.from('k\0ey'));
    assert.ok(Buffer.compare(a, keys.attachmentsStart(id)) >= 0 && Buffer.compare(a, keys.attachmentsEnd(id)) < 0);
    assert.equal(keys.userKeyOfAttachment(a).toString(), 'k\0ey');
    // Everything a lease writes lies inside the range's span, so snapshots carry it.
    for (const k of [keys.leaseRecord(id), a]) assert.ok(Buffer.compare(k, keys.start) >= 0 && Buffer.compare(k, keys.end) < 0);
  }
  // One lease's attachments never include another's.
  assert.ok(Buffer.compare(keys.attachmentsEnd(1n), keys.attachmentsStart(2n)) <= 0);
});

test('an undecodable lease command is CommandInvalidError', () => {
  const bytes = encodeCommand({ requestId, epoch, body: { type: 'leaseGrant', request: { id: 1n, ttlSeconds: 2 } } });
  assert.throws(() => decodeCommand(bytes.subarray(0, bytes.length - 2)), CommandInvalidError);
});
