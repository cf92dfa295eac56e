/** Property tests of the engine key encoding (src/shard/mvcc/keys.ts) and version records (value.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeyCodec, prefixEnd } from '../../src/shard/index.js';
import { readU64, writeU64 } from '../../src/shard/mvcc/keys.js';
import { decodeRecord, decodeRecordHeader, encodePut, TOMBSTONE_RECORD } from '../../src/shard/mvcc/value.js';

const seed = Number(process.env['KEYSPAN_SEED'] ?? 424242);

function prng(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test(`data keys sort by user key bytewise, then newest revision first (seed ${seed})`, () => {
  const rnd = prng(seed);
  const codec = new KeyCodec(Buffer.from([0, 0, 0, 7]));
  const bytes = [0x00, 0x01, 0x02, 0x61, 0xfe, 0xff];
  const items: { key: Buffer; rev: number; enc: Buffer }[] = [];
  for (let i = 0; i < 3000; i++) {
    const len = 1 + Math.floor(rnd() * 4);
    const key = Buffer.from(Array.from({ length: len }, () => bytes[Math.floor(rnd() * bytes.length)] as number));
    const rev = rnd() < 0.1 ? Number.MAX_SAFE_INTEGER - Math.floor(rnd() * 3) : Math.floor(rnd() * 2 ** 40);
    items.push({ key, rev, enc: codec.dataKey(key, rev) });
  }
  const byEncoding = [...items].sort((a, b) => Buffer.compare(a.enc, b.enc));
  const expected = [...items].sort((a, b) => Buffer.compare(a.key, b.key) || b.rev - a.rev);
  assert.deepEqual(
    byEncoding.map((x) => [x.key.toString('hex'), x.rev]),
    expected.map((x) => [x.key.toString('hex'), x.rev]),
  );
  for (const it of items) {
    const parts = codec.parseDataKey(it.enc);
    assert.equal(parts.revision, it.rev);
    assert.ok(codec.userKeyOfSegment(parts.keySegment).equals(it.key));
    // floor/ceiling bracket every version of the key and nothing of other keys
    assert.ok(Buffer.compare(codec.dataKeyFloor(it.key), it.enc) < 0);
    assert.ok(Buffer.compare(codec.dataKeyCeiling(it.key), it.enc) > 0);
  }
  for (let i = 1; i < expected.length; i++) {
    const prev = expected[i - 1]!;
    const cur = expected[i]!;
    if (!prev.key.equals(cur.key)) assert.ok(Buffer.compare(codec.dataKeyCeiling(prev.key), cur.enc) < 0);
  }
});

test('revision-index keys sort by revision then user key; records round-trip', () => {
  const codec = new KeyCodec(Buffer.from('p'));
  const a = codec.revIndexKey(5, Buffer.from('b'));
  const b = codec.revIndexKey(5, Buffer.from('b\x00'));
  const c = codec.revIndexKey(2 ** 33, Buffer.from('a'));
  assert.ok(Buffer.compare(a, b) < 0 && Buffer.compare(b, c) < 0);
  assert.deepEqual(codec.parseRevIndexKey(c), { revision: 2 ** 33, userKey: Buffer.from('a') });
  const rec = decodeRecord(encodePut(3, 9, -(2n ** 63n), Buffer.from('v')));
  assert.deepEqual(rec, { tombstone: false, createRevision: 3, version: 9, lease: -(2n ** 63n), value: Buffer.from('v') });
  assert.deepEqual(decodeRecord(TOMBSTONE_RECORD), { tombstone: true });
  assert.throws(() => codec.dataKey(Buffer.from('k'), 2 ** 53), RangeError);
});

test('prefixEnd follows etcd: last byte +1, trailing 0xff dropped, all-0xff → "\\0"', () => {
  assert.deepEqual(prefixEnd(Buffer.from('a')), Buffer.from('b'));
  assert.deepEqual(prefixEnd(Buffer.from('a\xff', 'latin1')), Buffer.from('b'));
  assert.deepEqual(prefixEnd(Buffer.from('\xff\xff', 'latin1')), Buffer.from([0]));
});

test(`u64 fields read back what was written, at any offset, and refuse what is not a safe integer (seed ${seed})`, () => {
  const rnd = prng(seed + 1);
  for (let i = 0; i < 2000; i++) {
    const n = i < 4 ? [0, 1, 2 ** 32 - 1, Number.MAX_SAFE_INTEGER][i]! : Math.floor(rnd() * Number.MAX_SAFE_INTEGER);
    const offset = Math.floor(rnd() * 5);
    const buf = Buffer.alloc(offset + 8 + Math.floor(rnd() * 3), 0xee);
    writeU64(buf, offset, n);
    assert.equal(buf.readBigUInt64BE(offset), BigInt(n));
    // A view into a larger buffer, as engine values often are.
    const view = Buffer.concat([Buffer.alloc(3, 0xff), buf]).subarray(3);
    assert.equal(readU64(view, offset), n);
  }
  const big = Buffer.alloc(8);
  big.writeBigUInt64BE(2n ** 53n);
  assert.throws(() => readU64(big, 0), RangeError, '2^53 is not a safe integer');
  assert.throws(() => readU64(Buffer.alloc(8), 1), RangeError, 'past the end');
  assert.throws(() => readU64(Buffer.alloc(8), -1), RangeError, 'before the start');
});

test('a record header decodes like the whole record, without its value', () => {
  const rec = encodePut(7, 3, -5n, Buffer.from('value'));
  const whole = decodeRecord(rec);
  assert.ok(!whole.tombstone);
  assert.deepEqual(decodeRecordHeader(rec), { createRevision: 7, version: 3, lease: -5n });
  assert.equal(decodeRecordHeader(TOMBSTONE_RECORD), null);
  assert.throws(() => decodeRecordHeader(Buffer.from([1, 0, 0])), RangeError);
});
