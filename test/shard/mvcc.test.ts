/**
 * Semantic tests of the MVCC keyspace against etcd's rules
 * (/work/shared/reference/etcd-api.md §2.1–2.6, §3).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryEngine } from '../../src/storage/memory.js';
import {
  CompactedError,
  DuplicateKeyError,
  FutureRevisionError,
  GrpcCode,
  KeyNotFoundError,
  KeyNotProvidedError,
  LeaseNotFoundError,
  LeaseProvidedError,
  MvccStore,
  PlanPendingError,
  RevisionNotIncreasingError,
  ValueProvidedError,
  prefixEnd,
} from '../../src/shard/index.js';
import type { Compare, PutRequest, PutResult, RequestOp, TxnRequest, TxnResult, WritePlan } from '../../src/shard/index.js';
import { b, freshStore, keysOf, kvView } from './helpers.js';

const put = (key: string, value = 'v', extra: object = {}): RequestOp => ({
  type: 'put',
  request: { key: b(key), value: b(value), ...extra },
});
const del = (key: string, rangeEnd?: string): RequestOp => ({
  type: 'deleteRange',
  request: rangeEnd === undefined ? { key: b(key) } : { key: b(key), rangeEnd: b(rangeEnd) },
});
const get = (key: string, rangeEnd?: string): RequestOp => ({
  type: 'range',
  request: rangeEnd === undefined ? { key: b(key) } : { key: b(key), rangeEnd: b(rangeEnd) },
});

describe('revisions and versions', () => {
  test('a fresh store is at revision 1 and writes take the revision handed in', async () => {
    const { store } = await freshStore();
    assert.equal(store.currentRevision, 1);
    const r = await store.put({ key: b('a'), value: b('1') }, 2);
    assert.equal(r.revision, 2);
    assert.equal(r.consumed, true);
    assert.equal(store.currentRevision, 2);
  });

  test('versions are dense per key and reset after delete; create revision restarts', async () => {
    const { store, next } = await freshStore();
    await store.put({ key: b('k'), value: b('1') }, next()); // 2
    await store.put({ key: b('k'), value: b('2') }, next()); // 3
    let kv = (await store.range({ key: b('k') })).kvs[0];
    assert.deepEqual(kvView(kv!), { key: 'k', value: '2', create: 2, mod: 3, version: 2, lease: 0n });
    await store.deleteRange({ key: b('k') }, next()); // 4
    assert.equal((await store.range({ key: b('k') })).kvs.length, 0);
    await store.put({ key: b('k'), value: b('3') }, next()); // 5
    kv = (await store.range({ key: b('k') })).kvs[0];
    assert.deepEqual(kvView(kv!), { key: 'k', value: '3', create: 5, mod: 5, version: 1, lease: 0n });
  });

  test('revisions may have gaps; history reads between them see the older state', async () => {
    const { store } = await freshStore();
    await store.put({ key: b('k'), value: b('a') }, 10);
    await store.put({ key: b('k'), value: b('b') }, 1000);
    await store.put({ key: b('k'), value: b('c') }, 2 ** 40);
    assert.equal(store.currentRevision, 2 ** 40);
    const at = async (rev: number): Promise<string[]> =>
      (await store.range({ key: b('k'), revision: rev })).kvs.map((kv) => kv.value.toString());
    assert.deepEqual(await at(9), []);
    assert.deepEqual(await at(10), ['a']);
    assert.deepEqual(await at(999), ['a']);
    assert.deepEqual(await at(1000), ['b']);
    assert.deepEqual(await at(2 ** 40 - 1), ['b']);
    assert.deepEqual(await at(2 ** 40), ['c']);
    const kv = (await store.range({ key: b('k') })).kvs[0]!;
    assert.equal(kv.version, 3);
    assert.equal(kv.createRevision, 10);
  });

  test('a write revision not above the current one is rejected', async () => {
    const { store } = await freshStore();
    await store.put({ key: b('a') }, 5);
    await assert.rejects(store.put({ key: b('a') }, 5), RevisionNotIncreasingError);
    await assert.rejects(store.put({ key: b('a') }, 3), RevisionNotIncreasingError);
  });

  test('deleting a missing key consumes no revision', async () => {
    const { store } = await freshStore();
    await store.put({ key: b('a') }, 2);
    const r = await store.deleteRange({ key: b('zz') }, 3);
    assert.equal(r.consumed, false);
    assert.equal(r.deleted, 0);
    assert.equal(r.revision, 2);
    assert.equal(store.currentRevision, 2);
    const r2 = await store.deleteRange({ key: b('a'), rangeEnd: b('b') }, 3);
    assert.equal(r2.deleted, 1);
    assert.equal(r2.revision, 3);
  });

  test('header revision of a historical read is the current revision', async () => {
    const { store, next } = await freshStore();
    await store.put({ key: b('a') }, next());
    await store.put({ key: b('a') }, next());
    const r = await store.range({ key: b('a'), revision: 2 });
    assert.equal(r.revision, 3);
    assert.equal(r.kvs[0]!.modRevision, 2);
  });

  test('leases are kept as bigint int64 on the key', async () => {
    const { store, next } = await freshStore();
    const lease = 0x7fff_ffff_ffff_fff1n;
    await store.put({ key: b('a'), value: b('1'), lease }, next());
    assert.equal((await store.range({ key: b('a') })).kvs[0]!.lease, lease);
    await store.put({ key: b('a'), value: b('2'), lease: -5n }, next());
    assert.equal((await store.range({ key: b('a') })).kvs[0]!.lease, -5n);
  });
});

describe('key encoding', () => {
  test('keys with any byte sort bytewise, including zero bytes and 0xff', async () => {
    const { store, next } = await freshStore();
    const keys = ['a', 'a\x00', 'a\x00\x00', 'a\x00\x01', 'a\x01', 'a\xff', 'ab', '\x00', '\xff\xff', 'b'];
    for (const k of keys) await store.put({ key: b(k), value: b(k) }, next());
    for (const k of keys) await store.put({ key: b(k), value: b(k + '2') }, next());
    const r = await store.range({ key: b('\x00'), rangeEnd: b('\x00') });
    const sorted = [...keys].sort((x, y) => Buffer.compare(b(x), b(y)));
    assert.deepEqual(keysOf(r.kvs), sorted);
    const r2 = await store.range({ key: b('a'), rangeEnd: prefixEnd(b('a')) });
    assert.deepEqual(keysOf(r2.kvs), sorted.filter((k) => k.startsWith('a')));
    const single = await store.range({ key: b('a\x00') });
    assert.deepEqual(keysOf(single.kvs), ['a\x00']);
    assert.equal(single.kvs[0]!.version, 2);
  });

  test('stores under different prefixes share one engine without seeing each other', async () => {
    const engine = new MemoryEngine();
    const s1 = await MvccStore.open(engine, { prefix: b('\x00\x00\x00\x01') });
    const s2 = await MvccStore.open(engine, { prefix: b('\x00\x00\x00\x02') });
    await s1.put({ key: b('k'), value: b('one') }, 5);
    await s2.put({ key: b('k'), value: b('two') }, 7);
    await s2.put({ key: b('k2'), value: b('two') }, 8);
    assert.equal((await s1.range({ key: b('\x00'), rangeEnd: b('\x00') })).count, 1);
    assert.equal((await s2.range({ key: b('\x00'), rangeEnd: b('\x00') })).count, 2);
    assert.equal(s1.currentRevision, 5);
    const reopened = await MvccStore.open(engine, { prefix: b('\x00\x00\x00\x02') });
    assert.equal(reopened.currentRevision, 8);
    assert.equal((await reopened.range({ key: b('k') })).kvs[0]!.value.toString(), 'two');
  });

  test('a key with a long history is read correctly at every revision', async () => {
    const { store, next } = await freshStore();
    const revs: number[] = [];
    for (let i = 0; i < 50; i++) {
      const rev = next();
      revs.push(rev);
      await store.put({ key: b('hot'), value: b(String(i)) }, rev);
      await store.put({ key: b('cold' + (i % 3)), value: b(String(i)) }, next());
    }
    for (let i = 0; i < 50; i++) {
      const r = await store.range({ key: b('a'), rangeEnd: b('z'), revision: revs[i]! });
      const hot = r.kvs.find((kv) => kv.key.toString() === 'hot');
      assert.equal(hot?.value.toString(), String(i));
      assert.equal(hot?.version, i + 1);
    }
  });
});

describe('Range', () => {
  async function seeded(): Promise<MvccStore> {
    const { store } = await freshStore();
    // rev 2..6: a(v1) b c d e; then b updated twice, d deleted
    await store.put({ key: b('a'), value: b('zz') }, 2);
    await store.put({ key: b('b'), value: b('yy') }, 3);
    await store.put({ key: b('c'), value: b('xx') }, 4);
    await store.put({ key: b('d'), value: b('ww') }, 5);
    await store.put({ key: b('e'), value: b('aa') }, 6);
    await store.put({ key: b('b'), value: b('bb') }, 7);
    await store.put({ key: b('b'), value: b('cc') }, 8);
    await store.deleteRange({ key: b('d') }, 9);
    return store;
  }

  test('single key, span, from-key and all keys', async () => {
    const s = await seeded();
    assert.deepEqual(keysOf((await s.range({ key: b('b') })).kvs), ['b']);
    assert.deepEqual(keysOf((await s.range({ key: b('b'), rangeEnd: b('d') })).kvs), ['b', 'c']);
    assert.deepEqual(keysOf((await s.range({ key: b('c'), rangeEnd: b('\0') })).kvs), ['c', 'e']);
    assert.deepEqual(keysOf((await s.range({ key: b('\0'), rangeEnd: b('\0') })).kvs), ['a', 'b', 'c', 'e']);
    assert.deepEqual((await s.range({ key: b('d'), rangeEnd: b('a') })).kvs, []);
    assert.deepEqual((await s.range({ key: b('d') })).kvs, []);
  });

  test('limit sets more, count ignores limit', async () => {
    const s = await seeded();
    const r = await s.range({ key: b('a'), rangeEnd: b('z'), limit: 2 });
    assert.deepEqual(keysOf(r.kvs), ['a', 'b']);
    assert.equal(r.more, true);
    assert.equal(r.count, 4);
    const r2 = await s.range({ key: b('a'), rangeEnd: b('z'), limit: 4 });
    assert.equal(r2.more, false);
    assert.equal(r2.count, 4);
  });

  test('count ignores filters (etcd: limit 1 + min_mod over the range gives count, no kvs)', async () => {
    const s = await seeded();
    const r = await s.range({ key: b('a'), rangeEnd: b('z'), limit: 1, minModRevision: 100 });
    assert.equal(r.count, 4);
    assert.deepEqual(r.kvs, []);
    assert.equal(r.more, false);
  });

  test('count_only returns the count and no kvs', async () => {
    const s = await seeded();
    const r = await s.range({ key: b('a'), rangeEnd: b('z'), countOnly: true, limit: 1 });
    assert.equal(r.count, 4);
    assert.deepEqual(r.kvs, []);
    assert.equal(r.more, false);
  });

  test('keys_only strips values', async () => {
    const s = await seeded();
    const r = await s.range({ key: b('a'), rangeEnd: b('z'), keysOnly: true });
    assert.deepEqual(r.kvs.map((kv) => kv.value.length), [0, 0, 0, 0]);
    assert.deepEqual(r.kvs.map((kv) => kv.version), [1, 3, 1, 1]);
  });

  test('min/max mod and create revision filters', async () => {
    const s = await seeded();
    const q = { key: b('a'), rangeEnd: b('z') };
    assert.deepEqual(keysOf((await s.range({ ...q, minModRevision: 4 })).kvs), ['b', 'c', 'e']);
    assert.deepEqual(keysOf((await s.range({ ...q, maxModRevision: 4 })).kvs), ['a', 'c']);
    assert.deepEqual(keysOf((await s.range({ ...q, minCreateRevision: 3 })).kvs), ['b', 'c', 'e']);
    assert.deepEqual(keysOf((await s.range({ ...q, maxCreateRevision: 3 })).kvs), ['a', 'b']);
    assert.deepEqual(keysOf((await s.range({ ...q, minModRevision: 3, maxCreateRevision: 4, limit: 1 })).kvs), ['b']);
  });

  test('sort by every target in both orders', async () => {
    const s = await seeded();
    const q = { key: b('a'), rangeEnd: b('z') };
    const sorted = async (sortTarget: 'KEY' | 'VERSION' | 'CREATE' | 'MOD' | 'VALUE', sortOrder: 'ASCEND' | 'DESCEND') =>
      keysOf((await s.range({ ...q, sortTarget, sortOrder })).kvs);
    assert.deepEqual(await sorted('KEY', 'ASCEND'), ['a', 'b', 'c', 'e']);
    assert.deepEqual(await sorted('KEY', 'DESCEND'), ['e', 'c', 'b', 'a']);
    // versions a1 b3 c1 e1: ties stay in key order
    assert.deepEqual(await sorted('VERSION', 'ASCEND'), ['a', 'c', 'e', 'b']);
    assert.deepEqual(await sorted('VERSION', 'DESCEND'), ['b', 'a', 'c', 'e']);
    assert.deepEqual(await sorted('CREATE', 'ASCEND'), ['a', 'b', 'c', 'e']);
    assert.deepEqual(await sorted('CREATE', 'DESCEND'), ['e', 'c', 'b', 'a']);
    assert.deepEqual(await sorted('MOD', 'ASCEND'), ['a', 'c', 'e', 'b']);
    assert.deepEqual(await sorted('MOD', 'DESCEND'), ['b', 'e', 'c', 'a']);
    // values a=zz b=cc c=xx e=aa
    assert.deepEqual(await sorted('VALUE', 'ASCEND'), ['e', 'b', 'c', 'a']);
    assert.deepEqual(await sorted('VALUE', 'DESCEND'), ['a', 'c', 'b', 'e']);
  });

  test('sort order with limit sorts the full result before the cut', async () => {
    const s = await seeded();
    const r = await s.range({ key: b('a'), rangeEnd: b('z'), sortTarget: 'MOD', sortOrder: 'DESCEND', limit: 2 });
    assert.deepEqual(keysOf(r.kvs), ['b', 'e']);
    assert.equal(r.more, true);
    assert.equal(r.count, 4);
  });

  test('sort order NONE with a non-key target sorts ascending, but only the first limit+1 keys', async () => {
    const s = await seeded();
    // etcd fetches limit+1 = 2 keys in key order (a, b), sorts them by value
    // ascending (b=cc, a=zz), then cuts to 1.
    const r = await s.range({ key: b('a'), rangeEnd: b('z'), sortTarget: 'VALUE', limit: 1 });
    assert.deepEqual(keysOf(r.kvs), ['b']);
    assert.equal(r.more, true);
    const all = await s.range({ key: b('a'), rangeEnd: b('z'), sortTarget: 'VALUE' });
    assert.deepEqual(keysOf(all.kvs), ['e', 'b', 'c', 'a']);
  });

  test('historical reads see old values and deleted keys', async () => {
    const s = await seeded();
    const r = await s.range({ key: b('a'), rangeEnd: b('z'), revision: 6 });
    assert.deepEqual(r.kvs.map((kv) => `${kv.key}=${kv.value}`), ['a=zz', 'b=yy', 'c=xx', 'd=ww', 'e=aa']);
    assert.equal(r.count, 5);
    const r2 = await s.range({ key: b('b'), revision: 7 });
    assert.deepEqual(kvView(r2.kvs[0]!), { key: 'b', value: 'bb', create: 3, mod: 7, version: 2, lease: 0n });
    assert.equal((await s.range({ key: b('a'), rangeEnd: b('z'), revision: 1 })).count, 0);
  });

  test('future and compacted revisions fail with etcd errors and gRPC codes', async () => {
    const s = await seeded();
    await assert.rejects(s.range({ key: b('a'), revision: 10 }), (err: unknown) => {
      assert.ok(err instanceof FutureRevisionError);
      assert.equal(err.message, 'etcdserver: mvcc: required revision is a future revision');
      assert.equal(err.grpcCode, GrpcCode.OutOfRange);
      assert.equal(err.code, 'FUTURE_REVISION');
      return true;
    });
    await s.compact(5);
    await assert.rejects(s.range({ key: b('a'), revision: 4 }), (err: unknown) => {
      assert.ok(err instanceof CompactedError);
      assert.equal(err.message, 'etcdserver: mvcc: required revision has been compacted');
      assert.equal(err.grpcCode, GrpcCode.OutOfRange);
      return true;
    });
    assert.equal((await s.range({ key: b('a'), revision: 5 })).kvs.length, 1);
  });

  test('an empty key is rejected', async () => {
    const s = await seeded();
    await assert.rejects(s.range({ key: b('') }), (err: unknown) => {
      assert.ok(err instanceof KeyNotProvidedError);
      assert.equal(err.message, 'etcdserver: key is not provided');
      assert.equal(err.grpcCode, GrpcCode.InvalidArgument);
      return true;
    });
    await assert.rejects(s.put({ key: b('') }, 100), KeyNotProvidedError);
    await assert.rejects(s.deleteRange({ key: b('') }, 100), KeyNotProvidedError);
    await assert.rejects(
      s.txn({ compare: [{ key: b(''), target: 'VERSION', result: 'EQUAL', version: 0 }] }, 100),
      KeyNotProvidedError,
    );
  });
});

describe('Put', () => {
  test('prev_kv returns the previous version only when asked', async () => {
    const { store, next } = await freshStore();
    const first = await store.put({ key: b('a'), value: b('1'), prevKv: true }, next());
    assert.equal(first.prevKv, undefined);
    const second = await store.put({ key: b('a'), value: b('2'), prevKv: true }, next());
    assert.deepEqual(kvView(second.prevKv!), { key: 'a', value: '1', create: 2, mod: 2, version: 1, lease: 0n });
    const third = await store.put({ key: b('a'), value: b('3') }, next());
    assert.equal(third.prevKv, undefined);
  });

  test('ignore_value keeps the value, ignore_lease keeps the lease', async () => {
    const { store, next } = await freshStore();
    await store.put({ key: b('a'), value: b('keep'), lease: 7n }, next());
    await store.put({ key: b('a'), ignoreValue: true, lease: 9n }, next());
    let kv = (await store.range({ key: b('a') })).kvs[0]!;
    assert.deepEqual([kv.value.toString(), kv.lease, kv.version], ['keep', 9n, 2]);
    await store.put({ key: b('a'), value: b('new'), ignoreLease: true }, next());
    kv = (await store.range({ key: b('a') })).kvs[0]!;
    assert.deepEqual([kv.value.toString(), kv.lease, kv.version], ['new', 9n, 3]);
  });

  test('ignore_value/ignore_lease on a missing key: key not found; with a value/lease: provided errors', async () => {
    const { store, next } = await freshStore();
    await assert.rejects(store.put({ key: b('a'), ignoreValue: true }, next()), (err: unknown) => {
      assert.ok(err instanceof KeyNotFoundError);
      assert.equal(err.message, 'etcdserver: key not found');
      assert.equal(err.grpcCode, GrpcCode.InvalidArgument);
      return true;
    });
    await assert.rejects(store.put({ key: b('a'), ignoreLease: true }, next()), KeyNotFoundError);
    await assert.rejects(store.put({ key: b('a'), ignoreValue: true, value: b('x') }, next()), (err: unknown) => {
      assert.ok(err instanceof ValueProvidedError);
      assert.equal(err.message, 'etcdserver: value is provided');
      return true;
    });
    await assert.rejects(store.put({ key: b('a'), ignoreLease: true, lease: 3n }, next()), (err: unknown) => {
      assert.ok(err instanceof LeaseProvidedError);
      assert.equal(err.message, 'etcdserver: lease is provided');
      return true;
    });
    // deleted keys count as missing
    await store.put({ key: b('a') }, next());
    await store.deleteRange({ key: b('a') }, next());
    await assert.rejects(store.put({ key: b('a'), ignoreValue: true }, next()), KeyNotFoundError);
    assert.equal(store.currentRevision, 3);
  });

  test('an unknown lease is rejected when the caller supplies a lessor view', async () => {
    const { store, next } = await freshStore();
    const leaseExists = (id: bigint): boolean => id === 1n;
    await store.put({ key: b('a'), lease: 1n }, next(), { leaseExists });
    await assert.rejects(store.put({ key: b('a'), lease: 2n }, next(), { leaseExists }), (err: unknown) => {
      assert.ok(err instanceof LeaseNotFoundError);
      assert.equal(err.message, 'etcdserver: requested lease not found');
      assert.equal(err.grpcCode, GrpcCode.NotFound);
      return true;
    });
  });
});

describe('DeleteRange', () => {
  test('deletes a span, returns prev_kvs, writes tombstones at one revision', async () => {
    const { store, next } = await freshStore();
    for (const k of ['a', 'b', 'c', 'd']) await store.put({ key: b(k), value: b(k) }, next());
    const r = await store.deleteRange({ key: b('b'), rangeEnd: b('d'), prevKv: true }, 20);
    assert.equal(r.deleted, 2);
    assert.deepEqual(keysOf(r.prevKvs), ['b', 'c']);
    assert.equal(r.revision, 20);
    const without = await store.deleteRange({ key: b('a') }, 21);
    assert.deepEqual(without.prevKvs, []);
    assert.deepEqual(keysOf((await store.range({ key: b('\0'), rangeEnd: b('\0') })).kvs), ['d']);
    const ev = await store.changes({ key: b('\0'), rangeEnd: b('\0'), startRevision: 20 });
    assert.deepEqual(
      ev.events.map((e) => [e.type, e.kv.key.toString(), e.kv.modRevision, e.kv.version, e.kv.createRevision]),
      [
        ['DELETE', 'b', 20, 0, 0],
        ['DELETE', 'c', 20, 0, 0],
        ['DELETE', 'a', 21, 0, 0],
      ],
    );
  });
});

describe('Txn', () => {
  async function withKeys(): Promise<{ store: MvccStore; next: () => number }> {
    const { store, next } = await freshStore();
    await store.put({ key: b('a'), value: b('10'), lease: 5n }, next()); // 2
    await store.put({ key: b('a'), value: b('11'), lease: 5n }, next()); // 3
    await store.put({ key: b('b'), value: b('20') }, next()); // 4
    return { store, next };
  }

  const cmp = (c: Compare): TxnRequest => ({ compare: [c], success: [get('a')], failure: [] });

  test('each compare target and operator', async () => {
    const { store, next } = await withKeys();
    const check = async (c: Compare, expected: boolean): Promise<void> => {
      const r = await store.txn(cmp(c), next());
      assert.equal(r.succeeded, expected, JSON.stringify(c, (_k, v) => (typeof v === 'bigint' ? String(v) : v)));
      assert.equal(r.consumed, false);
    };
    const k = b('a');
    for (const [result, expected] of [['EQUAL', true], ['NOT_EQUAL', false], ['GREATER', false], ['LESS', false]] as const) {
      await check({ key: k, target: 'VERSION', result, version: 2 }, expected);
      await check({ key: k, target: 'CREATE', result, createRevision: 2 }, expected);
      await check({ key: k, target: 'MOD', result, modRevision: 3 }, expected);
      await check({ key: k, target: 'VALUE', result, value: b('11') }, expected);
      await check({ key: k, target: 'LEASE', result, lease: 5n }, expected);
    }
    await check({ key: k, target: 'VERSION', result: 'GREATER', version: 1 }, true);
    await check({ key: k, target: 'VERSION', result: 'LESS', version: 3 }, true);
    await check({ key: k, target: 'CREATE', result: 'GREATER', createRevision: 1 }, true);
    await check({ key: k, target: 'MOD', result: 'LESS', modRevision: 4 }, true);
    await check({ key: k, target: 'VALUE', result: 'GREATER', value: b('10') }, true);
    await check({ key: k, target: 'VALUE', result: 'LESS', value: b('2') }, true);
    await check({ key: k, target: 'LEASE', result: 'GREATER', lease: 4n }, true);
    await check({ key: k, target: 'LEASE', result: 'NOT_EQUAL', lease: 0n }, true);
  });

  test('missing key: VALUE compares fail, others compare against zero', async () => {
    const { store, next } = await withKeys();
    const m = b('missing');
    for (const [c, expected] of [
      [{ key: m, target: 'VALUE', result: 'EQUAL', value: b('') }, false],
      [{ key: m, target: 'VALUE', result: 'NOT_EQUAL', value: b('x') }, false],
      [{ key: m, target: 'CREATE', result: 'EQUAL', createRevision: 0 }, true],
      [{ key: m, target: 'VERSION', result: 'EQUAL', version: 0 }, true],
      [{ key: m, target: 'MOD', result: 'LESS', modRevision: 1 }, true],
      [{ key: m, target: 'LEASE', result: 'EQUAL', lease: 0n }, true],
    ] as const) {
      assert.equal((await store.txn(cmp(c as Compare), next())).succeeded, expected);
    }
  });

  test('compare over a range must hold for every key; an empty range compares zero values', async () => {
    const { store, next } = await withKeys();
    const r = (c: Compare) => store.txn(cmp(c), next()).then((x) => x.succeeded);
    assert.equal(await r({ key: b('a'), rangeEnd: b('c'), target: 'VERSION', result: 'GREATER', version: 0 }), true);
    assert.equal(await r({ key: b('a'), rangeEnd: b('c'), target: 'VERSION', result: 'EQUAL', version: 2 }), false);
    assert.equal(await r({ key: b('a'), rangeEnd: b('c'), target: 'MOD', result: 'LESS', modRevision: 5 }), true);
    assert.equal(await r({ key: b('a'), rangeEnd: b('\0'), target: 'CREATE', result: 'GREATER', createRevision: 1 }), true);
    assert.equal(await r({ key: b('x'), rangeEnd: b('z'), target: 'CREATE', result: 'EQUAL', createRevision: 0 }), true);
    assert.equal(await r({ key: b('x'), rangeEnd: b('z'), target: 'VALUE', result: 'EQUAL', value: b('') }), false);
  });

  test('all writes share one revision; reads see earlier writes of the txn', async () => {
    const { store } = await withKeys();
    const r = await store.txn(
      {
        compare: [{ key: b('a'), target: 'VALUE', result: 'EQUAL', value: b('11') }],
        success: [put('c', 'new'), get('a', 'z'), del('b'), get('a', 'z'), { type: 'range', request: { key: b('a'), rangeEnd: b('z'), revision: 4 } }],
        failure: [],
      },
      50,
    );
    assert.equal(r.succeeded, true);
    assert.equal(r.revision, 50);
    assert.equal(store.currentRevision, 50);
    const ranges = r.responses.filter((x) => x.type === 'range').map((x) => (x.type === 'range' ? keysOf(x.response.kvs) : []));
    assert.deepEqual(ranges, [['a', 'b', 'c'], ['a', 'c'], ['a', 'b']]);
    const first = r.responses[1];
    assert.ok(first?.type === 'range');
    const c = first.response.kvs.find((kv) => kv.key.toString() === 'c')!;
    assert.deepEqual(kvView(c), { key: 'c', value: 'new', create: 50, mod: 50, version: 1, lease: 0n });
    assert.equal(first.response.revision, 50);
    const events = await store.changes({ key: b('a'), rangeEnd: b('z'), startRevision: 50 });
    assert.deepEqual(events.events.map((e) => [e.type, e.kv.key.toString(), e.kv.modRevision]), [
      ['DELETE', 'b', 50],
      ['PUT', 'c', 50],
    ]);
  });

  test('failure branch runs when a compare fails; a read-only txn consumes no revision', async () => {
    const { store } = await withKeys();
    const r = await store.txn(
      { compare: [{ key: b('a'), target: 'VALUE', result: 'EQUAL', value: b('nope') }], success: [put('s')], failure: [get('a')] },
      60,
    );
    assert.equal(r.succeeded, false);
    assert.equal(r.consumed, false);
    assert.equal(r.revision, 4);
    assert.equal(store.currentRevision, 4);
    assert.equal((await store.range({ key: b('s') })).count, 0);
    const w = await store.txn({ compare: [], success: [del('nothing')], failure: [] }, 61);
    assert.equal(w.consumed, false);
    assert.equal(store.currentRevision, 4);
  });

  test('nested txns: compares see the pre-txn state, writes share the revision', async () => {
    const { store } = await withKeys();
    const r = await store.txn(
      {
        success: [
          put('n1', 'x'),
          {
            type: 'txn',
            request: {
              // n1 does not exist before the txn, even though the outer txn just put it
              compare: [{ key: b('n1'), target: 'CREATE', result: 'EQUAL', createRevision: 0 }],
              success: [put('n2', 'then'), get('n1')],
              failure: [put('n2', 'else')],
            },
          },
        ],
      },
      70,
    );
    assert.equal(r.revision, 70);
    const inner = r.responses[1];
    assert.ok(inner?.type === 'txn');
    assert.equal(inner.response.succeeded, true);
    const innerGet = inner.response.responses[1];
    assert.ok(innerGet?.type === 'range');
    assert.deepEqual(keysOf(innerGet.response.kvs), ['n1']);
    const n2 = (await store.range({ key: b('n2') })).kvs[0]!;
    assert.equal(n2.value.toString(), 'then');
    assert.equal(n2.modRevision, 70);
  });

  test('put/delete return prev_kv inside a txn', async () => {
    const { store } = await withKeys();
    const r = await store.txn(
      { success: [put('a', 'z', { prevKv: true }), { type: 'deleteRange', request: { key: b('b'), prevKv: true } }] },
      80,
    );
    const [p, d] = r.responses;
    assert.ok(p?.type === 'put' && d?.type === 'deleteRange');
    assert.equal(p.response.prevKv?.value.toString(), '11');
    assert.deepEqual(keysOf(d.response.prevKvs), ['b']);
    assert.equal(d.response.deleted, 1);
  });

  test('duplicate keys in one branch are rejected, as etcd', async () => {
    const { store } = await withKeys();
    const dup = async (ops: RequestOp[], failure: RequestOp[] = []): Promise<void> => {
      await assert.rejects(store.txn({ success: ops, failure }, 90), (err: unknown) => {
        assert.ok(err instanceof DuplicateKeyError);
        assert.equal(err.message, 'etcdserver: duplicate key given in txn request');
        assert.equal(err.grpcCode, GrpcCode.InvalidArgument);
        return true;
      });
    };
    await dup([put('a'), put('a')]);
    await dup([put('b'), del('a', 'c')]);
    await dup([del('b'), put('b')]);
    await dup([put('x'), { type: 'txn', request: { success: [put('x')] } }]);
    await dup([del('a', 'z'), { type: 'txn', request: { failure: [put('m')] } }]);
    await dup([{ type: 'txn', request: { success: [del('q')] } }, put('q')]);
    await dup([{ type: 'txn', request: { success: [put('a'), put('a')] } }]);
    await dup([], [put('f'), put('f')]);
    assert.equal(store.currentRevision, 4);
  });

  test('allowed overlaps: delete-delete, then/else of a nested txn, different branches', async () => {
    const { store } = await withKeys();
    const r = await store.txn(
      {
        success: [
          del('a', 'c'),
          del('b'),
          { type: 'txn', request: { compare: [], success: [put('k', 't')], failure: [put('k', 'e')] } },
        ],
        failure: [put('k'), put('a')],
      },
      100,
    );
    assert.equal(r.succeeded, true);
    const [d1, d2] = r.responses;
    assert.ok(d1?.type === 'deleteRange' && d2?.type === 'deleteRange');
    assert.equal(d1.response.deleted, 2);
    assert.equal(d2.response.deleted, 0);
    assert.equal((await store.range({ key: b('k') })).kvs[0]!.value.toString(), 't');
  });

  test('errors inside a txn abort it without writing anything', async () => {
    const { store } = await withKeys();
    await assert.rejects(store.txn({ success: [put('new'), put('nokey', '', { ignoreValue: true })] }, 110), KeyNotFoundError);
    await assert.rejects(
      store.txn({ success: [put('new'), { type: 'range', request: { key: b('a'), revision: 110 } }] }, 110),
      FutureRevisionError,
    );
    assert.equal(store.currentRevision, 4);
    assert.equal((await store.range({ key: b('new') })).count, 0);
  });

  test('plan/commit lets the caller add ops to the same batch; one plan at a time', async () => {
    const { store } = await withKeys();
    const engine = store.engine;
    const plan = await store.planPut({ key: b('p'), value: b('1') }, 200);
    await assert.rejects(store.planPut({ key: b('q') }, 201), PlanPendingError);
    assert.equal(store.currentRevision, 4);
    await engine.write([...plan.ops, store.appliedIndexOp(42)]);
    store.commit(plan);
    assert.equal(store.currentRevision, 200);
    assert.equal(await store.appliedIndex(), 42);
    const reopened = await MvccStore.open(engine, { prefix: b('r1') });
    assert.equal(reopened.currentRevision, 200);
    const noop = await store.planDeleteRange({ key: b('zzz') }, 201);
    assert.equal(noop.consumed, false);
    assert.deepEqual(noop.ops, []);
    store.commit(noop);
    assert.equal(store.currentRevision, 200);
    const dropped = await store.planPut({ key: b('d') }, 202);
    store.discard(dropped);
    assert.equal(store.currentRevision, 200);
  });
});

describe('planPutNow', () => {
  /** A put planned at once when possible, else waited for; the plan is written and committed. */
  async function putEither(store: MvccStore, req: PutRequest, revision: number, leaseExists?: (id: bigint) => boolean): Promise<{ now: boolean; plan: WritePlan<PutResult> }> {
    const options = leaseExists === undefined ? {} : { leaseExists };
    const now = store.planPutNow(req, revision, options);
    const plan = now ?? (await store.planPut(req, revision, options));
    await store.engine.write(plan.ops);
    store.commit(plan);
    return { now: now !== undefined, plan };
  }

  test('plans exactly what planPut plans, at once for keys the cache holds', async () => {
    const a = await freshStore();
    const w = await freshStore();
    const leases = (id: bigint): boolean => id === 7n;
    const reqs: PutRequest[] = [
      { key: b('a'), value: b('1') },
      { key: b('a'), value: b('2'), prevKv: true },
      { key: b('b'), value: b('x'), lease: 7n },
      { key: b('b'), ignoreValue: true, prevKv: true },
      { key: b('b'), value: b('y'), ignoreLease: true },
      { key: b('c'), value: b('') },
      { key: b('a'), value: b('3'), prevKv: true, lease: 7n },
    ];
    let nowCount = 0;
    for (const req of reqs) {
      const revision = w.store.currentRevision + 1;
      const waited = await w.store.planPut(req, revision, { leaseExists: leases });
      await w.engine.write(waited.ops);
      w.store.commit(waited);
      const { now, plan } = await putEither(a.store, req, revision, leases);
      if (now) nowCount++;
      assert.deepEqual(plan.ops, waited.ops);
      assert.deepEqual(plan.result, waited.result);
      assert.deepEqual([plan.consumed, plan.keysDelta, plan.liveChanges, plan.written], [waited.consumed, waited.keysDelta, waited.liveChanges, waited.written]);
    }
    // New keys are answered by the key filter, written keys by the cache.
    assert.equal(nowCount, reqs.length);
    assert.deepEqual(kvView((await a.store.range({ key: b('b') })).kvs[0]!), kvView((await w.store.range({ key: b('b') })).kvs[0]!));
  });

  test('refuses what planPut refuses, with the same errors, and plans nothing then', async () => {
    const { store } = await freshStore();
    await putEither(store, { key: b('k'), value: b('1') }, 2);
    assert.throws(() => store.planPutNow({ key: b('gone'), ignoreValue: true }, 3), KeyNotFoundError);
    assert.throws(() => store.planPutNow({ key: b('k'), value: b('2'), lease: 5n }, 3, { leaseExists: () => false }), LeaseNotFoundError);
    assert.throws(() => store.planPutNow({ key: b('k'), value: b('2') }, 2), RevisionNotIncreasingError);
    assert.throws(() => store.planPutNow({ key: b('k'), value: b('v'), ignoreValue: true }, 3), ValueProvidedError);
    const plan = store.planPutNow({ key: b('k'), value: b('2') }, 3);
    assert.ok(plan !== undefined);
    assert.throws(() => store.planPutNow({ key: b('j'), value: b('2') }, 4), PlanPendingError);
    store.discard(plan);
    assert.equal(store.currentRevision, 2);
  });

  test('planTxnNow plans compare-and-puts exactly as planTxn, at once; other txns are left to planTxn', async () => {
    const a = await freshStore();
    const w = await freshStore();
    const cmp = (key: string, target: Compare['target'], result: Compare['result'], v: number | string | bigint): Compare => {
      const c = { key: b(key), target, result } as Record<string, unknown>;
      if (target === 'VALUE') c.value = b(String(v));
      else if (target === 'LEASE') c.lease = BigInt(v);
      else c[{ VERSION: 'version', CREATE: 'createRevision', MOD: 'modRevision' }[target as 'VERSION' | 'CREATE' | 'MOD']] = Number(v);
      return c as unknown as Compare;
    };
    const txns: TxnRequest[] = [
      { success: [put('a', '1'), put('b', '1')] },
      { compare: [cmp('a', 'MOD', 'EQUAL', 2)], success: [put('a', '2', { prevKv: true })], failure: [put('x', 'f')] },
      { compare: [cmp('a', 'MOD', 'EQUAL', 2)], success: [put('a', '3')], failure: [put('x', 'f')] },
      { compare: [cmp('a', 'VALUE', 'EQUAL', '2'), cmp('b', 'VERSION', 'GREATER', 0)], success: [put('b', '', { ignoreValue: true })] },
      { compare: [cmp('nokey', 'CREATE', 'EQUAL', 0), cmp('nokey', 'VALUE', 'NOT_EQUAL', 'z')], success: [put('n', '1')], failure: [put('m', '1')] },
      { compare: [cmp('a', 'LEASE', 'EQUAL', 0)], success: [put('c', 'v', { lease: 7n })] },
      { compare: [cmp('a', 'MOD', 'LESS', 1000)], success: [put('gone', '', { ignoreLease: true })] },
    ];
    const leases = (id: bigint): boolean => id === 7n;
    for (const [i, req] of txns.entries()) {
      const revision = w.store.currentRevision + 1;
      let waited: WritePlan<TxnResult> | Error;
      try {
        waited = await w.store.planTxn(req, revision, { leaseExists: leases });
      } catch (err) {
        waited = err as Error;
      }
      if (waited instanceof Error) {
        assert.throws(() => a.store.planTxnNow(req, revision, { leaseExists: leases }), { name: waited.name, message: waited.message }, `txn ${i}`);
        continue;
      }
      await w.engine.write(waited.ops);
      w.store.commit(waited);
      const now = a.store.planTxnNow(req, revision, { leaseExists: leases });
      assert.ok(now !== undefined, `txn ${i} planned at once`);
      assert.deepEqual([now.ops, now.result, now.consumed, now.liveChanges, now.written], [waited.ops, waited.result, waited.consumed, waited.liveChanges, waited.written], `txn ${i}`);
      await a.engine.write(now.ops);
      a.store.commit(now);
    }
    assert.equal(a.store.currentRevision, w.store.currentRevision);
    // Left to planTxn, with nothing pending: a range op, a span compare, a nested txn, a delete.
    const rev = a.store.currentRevision + 1;
    assert.equal(a.store.planTxnNow({ compare: [cmp('a', 'MOD', 'EQUAL', 1)], success: [put('a', '9')], failure: [get('a')] }, rev), undefined);
    assert.equal(a.store.planTxnNow({ compare: [{ ...cmp('a', 'VERSION', 'GREATER', 0), rangeEnd: b('b') }], success: [put('a', '9')] }, rev), undefined);
    assert.equal(a.store.planTxnNow({ success: [{ type: 'txn', request: { success: [put('a', '9')] } }] }, rev), undefined);
    assert.equal(a.store.planTxnNow({ success: [del('a')] }, rev), undefined);
    const plan = a.store.planTxnNow({ compare: [cmp('a', 'MOD', 'EQUAL', 1)], success: [get('a')], failure: [put('a', '9')] }, rev);
    assert.ok(plan !== undefined, 'the failure branch of puts, taken');
    assert.equal(plan.result.succeeded, false);
    a.store.discard(plan);
  });

  test('a key only the engine holds is left to planPut, with nothing pending', async () => {
    const { store, engine } = await freshStore();
    await putEither(store, { key: b('k'), value: b('1') }, 2);
    const cold = await MvccStore.open(engine, { prefix: b('r1'), keyFilter: false });
    assert.equal(cold.planPutNow({ key: b('k'), value: b('2') }, 3), undefined);
    const { now, plan } = await putEither(cold, { key: b('k'), value: b('2') }, 3);
    assert.equal(now, false);
    assert.equal(plan.result.revision, 3);
    assert.deepEqual(kvView((await cold.range({ key: b('k') })).kvs[0]!), { key: 'k', value: '2', create: 2, mod: 3, version: 2, lease: 0n });
    // Now cached: the next put is planned at once.
    assert.equal((await putEither(cold, { key: b('k'), value: b('3') }, 4)).now, true);
  });
});

describe('compaction', () => {
  test('keeps the newest version at or before R of live keys and drops older history', async () => {
    const { store, engine } = await freshStore();
    await store.put({ key: b('a'), value: b('1') }, 2);
    await store.put({ key: b('a'), value: b('2') }, 3);
    await store.put({ key: b('b'), value: b('1') }, 4);
    await store.deleteRange({ key: b('b') }, 5);
    await store.put({ key: b('c'), value: b('1') }, 6);
    await store.deleteRange({ key: b('c') }, 7);
    await store.put({ key: b('a'), value: b('3') }, 8);
    await store.compact(7, { physical: true });
    assert.equal(store.compactRevision, 7);
    const at7 = await store.range({ key: b('\0'), rangeEnd: b('\0'), revision: 7 });
    assert.deepEqual(at7.kvs.map((kv) => `${kv.key}=${kv.value}@${kv.modRevision}`), ['a=2@3']);
    const now = await store.range({ key: b('\0'), rangeEnd: b('\0') });
    assert.deepEqual(now.kvs.map((kv) => `${kv.key}=${kv.value}@${kv.version}`), ['a=3@3']);
    // engine now holds: a@8, a@3, c's tombstone at exactly 7 (etcd#18089 fix); b is gone
    const dataKeys: string[] = [];
    for await (const e of engine.iterate({ gte: store.codec.familyStart(2), lt: store.codec.familyEnd(2) })) {
      const p = store.codec.parseDataKey(e.key);
      dataKeys.push(`${store.codec.userKeyOfSegment(p.keySegment)}@${p.revision}`);
    }
    assert.deepEqual(dataKeys, ['a@8', 'a@3', 'c@7']);
    const ev = await store.changes({ key: b('\0'), rangeEnd: b('\0'), startRevision: 7, prevKv: true });
    assert.deepEqual(ev.events.map((e) => `${e.type} ${e.kv.key}@${e.kv.modRevision} prev=${e.prevKv?.value ?? '-'}`), [
      'DELETE c@7 prev=-',
      'PUT a@8 prev=2',
    ]);
    await assert.rejects(store.changes({ key: b('a'), startRevision: 6 }), CompactedError);
    // the next compaction drops the tombstone kept at 7
    await store.compact(8, { physical: true });
    const left: string[] = [];
    for await (const e of engine.iterate({ gte: store.codec.familyStart(2), lt: store.codec.familyEnd(2) })) {
      left.push(String(store.codec.parseDataKey(e.key).revision));
    }
    assert.deepEqual(left, ['8']);
  });

  test('compaction bounds follow etcd: Compact(0) then Compact(1) once, future and repeated fail', async () => {
    const { store } = await freshStore();
    await store.compact(0);
    await store.compact(1);
    await assert.rejects(store.compact(1), CompactedError);
    await assert.rejects(store.compact(2), FutureRevisionError);
    await store.put({ key: b('a') }, 5);
    await store.compact(5);
    assert.equal(store.compactRevision, 5);
    await assert.rejects(store.compact(4), CompactedError);
  });

  test('compacted revision survives reopen and unfinished compaction resumes', async () => {
    const engine = new MemoryEngine();
    const { store } = await freshStore(engine);
    for (let i = 0; i < 40; i++) await store.put({ key: b(`k${i % 4}`), value: b(String(i)) }, i + 2);
    // Persist the compacted revision without running physical compaction.
    const plan = store.planCompact(30);
    await engine.write(plan.ops);
    const reopened = await MvccStore.open(engine, { prefix: b('r1') });
    assert.equal(reopened.compactRevision, 30);
    await reopened.close();
    let versions = 0;
    for await (const _ of engine.iterate({ gte: reopened.codec.familyStart(2), lt: reopened.codec.familyEnd(2) })) versions++;
    // 4 keys keep their newest version <= 30, plus revisions 31..41
    assert.equal(versions, 4 + 11);
    await assert.rejects(reopened.range({ key: b('k1'), revision: 29 }), CompactedError);
  });

  test('a compaction that overtakes a running Range makes it fail as compacted', async () => {
    const inner = new MemoryEngine();
    let gate: Promise<void> | null = null;
    // Holds the next iterate() until the gate opens, so a compaction can run in between.
    const gated = new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop !== 'iterate') return Reflect.get(target, prop, receiver);
        return (options: object) => {
          const wait = gate;
          gate = null;
          return (async function* () {
            if (wait !== null) await wait;
            yield* target.iterate(options);
          })();
        };
      },
    });
    const store = await MvccStore.open(gated, { prefix: b('g') });
    for (let i = 2; i < 8; i++) await store.put({ key: b('k'), value: b(String(i)) }, i);
    let open!: () => void;
    gate = new Promise((resolve) => (open = resolve));
    const reading = store.range({ key: b('k'), revision: 3 });
    await store.compact(6, { physical: true });
    open();
    await assert.rejects(reading, CompactedError);
    assert.equal((await store.range({ key: b('k'), revision: 6 })).kvs[0]!.value.toString(), '6');
  });

  test('compaction runs in chunks while writes continue', async () => {
    const { store } = await freshStore();
    let rev = 1;
    for (let i = 0; i < 300; i++) await store.put({ key: b(`k${i % 20}`), value: b(String(i)) }, ++rev);
    const before = await store.range({ key: b('k'), rangeEnd: b('l') });
    const finished: string[] = [];
    const compacting = store.compact(rev, { physical: true }).then(() => finished.push('compaction'));
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 20; i++) writes.push(store.put({ key: b(`new${i}`) }, rev + 1 + i).then(() => finished.push('put')));
    await Promise.all([compacting, ...writes]);
    // Writes queued behind the compaction do not wait for its physical part.
    assert.equal(finished.indexOf('compaction'), finished.length - 1);
    const after = await store.range({ key: b('k'), rangeEnd: b('l'), revision: rev });
    assert.deepEqual(after.kvs, before.kvs);
    assert.equal((await store.range({ key: b('new'), rangeEnd: b('nex') })).count, 20);
  });
});

describe('change stream', () => {
  test('events in revision order with prev_kv, for a key or a range', async () => {
    const { store } = await freshStore();
    await store.put({ key: b('a'), value: b('1') }, 2);
    await store.put({ key: b('b'), value: b('1') }, 5);
    await store.put({ key: b('a'), value: b('2') }, 9);
    await store.deleteRange({ key: b('a') }, 12);
    await store.put({ key: b('a'), value: b('3') }, 13);
    const all = await store.changes({ key: b('a'), rangeEnd: b('\0'), startRevision: 1, prevKv: true });
    assert.deepEqual(
      all.events.map((e) => `${e.type} ${e.kv.key}=${e.kv.value}@${e.kv.modRevision} v${e.kv.version} prev=${e.prevKv?.value ?? '-'}`),
      ['PUT a=1@2 v1 prev=-', 'PUT b=1@5 v1 prev=-', 'PUT a=2@9 v2 prev=1', 'DELETE a=@12 v0 prev=2', 'PUT a=3@13 v1 prev=-'],
    );
    assert.equal(all.done, true);
    assert.equal(all.nextRevision, 14);
    const onlyA = await store.changes({ key: b('a'), startRevision: 3, endRevision: 12 });
    assert.deepEqual(onlyA.events.map((e) => e.kv.modRevision), [9, 12]);
    assert.equal(onlyA.events[0]!.prevKv, undefined);
    const future = await store.changes({ key: b('a'), startRevision: 14 });
    assert.deepEqual(future, { events: [], nextRevision: 14, done: true });
  });

  test('a byte bound also ends pages between revisions', async () => {
    const { store } = await freshStore();
    const big = Buffer.alloc(100, 0x62);
    for (let i = 0; i < 6; i++) await store.put({ key: b(`k${i}`), value: big }, 2 + i);
    const page = await store.changes({ key: b('k'), rangeEnd: b('l'), startRevision: 2, maxBytes: 250 });
    assert.deepEqual(page.events.map((e) => e.kv.modRevision), [2, 3, 4]);
    assert.equal(page.nextRevision, 5);
    assert.equal(page.done, false);
    await assert.rejects(store.changes({ key: b(''), startRevision: 2 }), KeyNotProvidedError);
  });

  test('pages never split a revision', async () => {
    const { store } = await freshStore();
    await store.txn({ success: ['a', 'b', 'c'].map((k) => put(k)) }, 2);
    await store.put({ key: b('d') }, 3);
    await store.txn({ success: ['e', 'f'].map((k) => put(k)) }, 4);
    const seen: string[][] = [];
    let start = 1;
    for (;;) {
      const page = await store.changes({ key: b('\0'), rangeEnd: b('\0'), startRevision: start, maxEvents: 2 });
      seen.push(page.events.map((e) => `${e.kv.key}@${e.kv.modRevision}`));
      start = page.nextRevision;
      if (page.done) break;
    }
    assert.deepEqual(seen, [['a@2', 'b@2', 'c@2'], ['d@3', 'e@4', 'f@4']]);
  });
});

describe('HashKV', () => {
  test('equal for two stores fed the same ops, different otherwise; independent of compaction progress', async () => {
    const mk = async () => (await freshStore()).store;
    const [s1, s2, s3] = [await mk(), await mk(), await mk()];
    for (const s of [s1, s2, s3]) {
      await s.put({ key: b('a'), value: b('1') }, 2);
      await s.put({ key: b('b'), value: b('1') }, 3);
      await s.deleteRange({ key: b('a') }, 4);
      await s.put({ key: b('b'), value: b('2') }, 5);
    }
    await s3.put({ key: b('c') }, 6);
    const h1 = await s1.hashKV();
    assert.deepEqual(await s2.hashKV(), h1);
    assert.notEqual((await s3.hashKV()).hash, h1.hash);
    assert.deepEqual(await s3.hashKV(5), h1);
    assert.equal(h1.compactRevision, -1);
    // compaction recorded but not yet physical vs finished: same hash
    const plan = s1.planCompact(4);
    await s1.engine.write(plan.ops);
    const pending = s1.commitCompact(plan);
    const whilePending = await s1.hashKV();
    await pending;
    await s2.compact(4, { physical: true });
    assert.deepEqual(await s1.hashKV(), await s2.hashKV());
    assert.equal(whilePending.hash, (await s2.hashKV()).hash);
    assert.equal((await s2.hashKV()).compactRevision, 4);
    await assert.rejects(s2.hashKV(3), CompactedError);
    await assert.rejects(s2.hashKV(6), FutureRevisionError);
  });
});
