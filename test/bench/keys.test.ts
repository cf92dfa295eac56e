import { test } from 'node:test';
import assert from 'node:assert/strict';
import { digitsFor, keyGenerator, prefixEnd, seededRandom, sentTimeOf, timestampedValue } from '../../bench/etcd/keys.js';

test('keyGenerator() hands out sequential keys that wrap around the key space', () => {
  const g = keyGenerator({ keySize: 8, keySpaceSize: 3, sequential: true, seed: 1 });
  const keys = Array.from({ length: 7 }, () => g.next().toString());
  assert.deepEqual(keys, ['00000000', '00000001', '00000002', '00000000', '00000001', '00000002', '00000000']);
});

test('keyGenerator() starts sequential keys at the worker offset', () => {
  const g = keyGenerator({ keySize: 4, keySpaceSize: 100, sequential: true, start: 98, seed: 1 });
  assert.deepEqual([g.nextIndex(), g.nextIndex(), g.nextIndex()], [98, 99, 0]);
});

test('keyGenerator() draws random keys within the key space, covering it, repeatably per seed', () => {
  const a = keyGenerator({ keySize: 8, keySpaceSize: 10, sequential: false, seed: 42 });
  const b = keyGenerator({ keySize: 8, keySpaceSize: 10, sequential: false, seed: 42 });
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) {
    const x = a.nextIndex();
    assert.equal(x, b.nextIndex());
    assert.ok(Number.isInteger(x) && x >= 0 && x < 10, `index ${x}`);
    seen.add(x);
  }
  assert.equal(seen.size, 10);
});

test('keyGenerator() makes keys of exactly --key-size bytes, with the prefix, unless the key space needs more', () => {
  assert.equal(keyGenerator({ keySize: 32, keySpaceSize: 1000, sequential: true, seed: 0 }).next().length, 32);
  const p = keyGenerator({ keySize: 8, keySpaceSize: 1000, sequential: true, prefix: 'wl/', seed: 0 });
  assert.equal(p.keyOf(7).toString(), 'wl/00007');
  // 8-byte keys cannot hold 10^9 distinct indexes after a 3-byte prefix: keys grow instead of colliding.
  const wide = keyGenerator({ keySize: 8, keySpaceSize: 1_000_000_000, sequential: true, prefix: 'wl/', seed: 0 });
  assert.equal(wide.keyOf(999_999_999).toString(), 'wl/999999999');
  assert.equal(digitsFor(1), 1);
  assert.equal(digitsFor(10), 1);
  assert.equal(digitsFor(11), 2);
});

test('seededRandom() stays in [0, 1)', () => {
  const r = seededRandom(0);
  for (let i = 0; i < 10_000; i++) {
    const x = r();
    assert.ok(x >= 0 && x < 1);
  }
});

test('prefixEnd() increments the last byte below 0xff', () => {
  assert.deepEqual(prefixEnd(Buffer.from('wl/')), Buffer.from('wl0'));
  assert.deepEqual(prefixEnd(Buffer.from([0x61, 0xff])), Buffer.from([0x62]));
  assert.deepEqual(prefixEnd(Buffer.from([0xff])), Buffer.from([0]));
});

test('timestampedValue() carries its send time and has the requested size', () => {
  const v = timestampedValue(256, 1_763_750_000_123.25);
  assert.equal(v.length, 256);
  assert.equal(sentTimeOf(v), 1_763_750_000_123.25);
  assert.equal(sentTimeOf(Buffer.alloc(8, 0x62)), undefined);
  assert.equal(sentTimeOf(Buffer.alloc(4)), undefined);
});
