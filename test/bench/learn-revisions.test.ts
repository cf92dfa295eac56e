/**
 * learnRevisions: the compare-and-put workloads' starting revisions come from
 * the generator's own keys only, however many other keys share their range.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keyGenerator } from '../../bench/etcd/keys.js';
import { learnRevisions } from '../../bench/etcd/workloads/common.js';

/** A keys-only Range over a sorted key → mod_revision list, paged as etcd pages (limit, more). */
function rangeOver(store: Map<string, number>) {
  const sorted = [...store.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return {
    async unary(_service: string, _method: string, req: Record<string, unknown>): Promise<Record<string, unknown>> {
      const from = req['key'] as Buffer;
      const end = req['range_end'] as Buffer;
      const limit = req['limit'] as number;
      const inRange = sorted.filter((k) => Buffer.compare(Buffer.from(k), from) >= 0 && Buffer.compare(Buffer.from(k), end) < 0);
      const page = inRange.slice(0, limit);
      return { kvs: page.map((k) => ({ key: Buffer.from(k), mod_revision: store.get(k) })), more: inRange.length > limit };
    },
  };
}

test('learnRevisions takes only keys of the generator, past pages full of longer keys that sort among them', async () => {
  const store = new Map<string, number>();
  // 8-byte keys 0..29 at revisions 1000 + i; 16-byte keys (a warm-up's) that sort before "00000001" at revision 5.
  for (let i = 0; i < 30; i++) store.set(String(i).padStart(8, '0'), 1000 + i);
  for (let i = 0; i < 25_000; i++) store.set(String(i).padStart(16, '0'), 5);
  store.set('00000007x', 6);
  const keys = keyGenerator({ keySize: 8, keySpaceSize: 30, sequential: false, seed: 1 });
  const seen = await learnRevisions(rangeOver(store), '', keys, 30);
  assert.equal(seen.size, 30);
  for (let i = 0; i < 30; i++) assert.equal(seen.get(i), 1000 + i, `key ${i}`);
});

test('learnRevisions strips the prefix and leaves unwritten keys unknown', async () => {
  const store = new Map<string, number>([
    ['/p/0002', 12],
    ['/p/0000', 10],
    ['/p/00000000000000001', 3],
  ]);
  const keys = keyGenerator({ keySize: 7, keySpaceSize: 4, sequential: true, prefix: '/p/', seed: 0 });
  assert.equal(keys.keyOf(2).toString(), '/p/0002');
  const seen = await learnRevisions(rangeOver(store), '/p/', keys, 4);
  assert.deepEqual([...seen.entries()].sort((a, b) => a[0] - b[0]), [
    [0, 10],
    [2, 12],
  ]);
});
