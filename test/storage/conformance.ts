/**
 * The engine conformance suite: one set of behaviour tests that every engine
 * must pass unchanged. `defineConformanceSuite` registers it for one engine;
 * engines.test.ts registers it for each of them.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  type BatchOp,
  type Engine,
  type EngineKind,
  type EngineReader,
  type IterateOptions,
  EngineError,
} from '../../src/storage/index.js';
import { Model } from './model.js';
import { Prng } from './prng.js';

/** How the suite opens one kind of engine. */
export interface EngineHarness {
  readonly kind: EngineKind;
  /** Whether data survives close and reopen. */
  readonly durable: boolean;
  /** Opens the engine whose files live in `dir` (an empty directory the first time). */
  open(dir: string): Promise<Engine>;
  /** Native scans still open, for engines that count them. */
  openScans?(engine: Engine): number;
}

/** One test's engine, its directory, and a way to close and open it again. */
interface Fixture {
  engine: Engine;
  readonly dir: string;
  reopen(): Promise<Engine>;
}

/** Upper bound on any single test; engine calls are local and small. */
const testTimeoutMs = 30_000;
/** How long a close() may take before the suite calls it hung. */
const closeTimeoutMs = 5_000;

/** Bytes from numbers. */
export function bytes(...values: number[]): Buffer {
  return Buffer.from(values);
}

/** Bytes from a UTF-8 string. */
export function utf8(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}

/** Drains a scan into [key hex, value hex] pairs, which assert diffs well. */
export async function collect(reader: EngineReader, options?: IterateOptions): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for await (const { key, value } of reader.iterate(options)) out.push([key.toString('hex'), value.toString('hex')]);
  return out;
}

/** The model's answer to a scan, in the same form as {@link collect}. */
export function expected(model: Model, options?: IterateOptions): [string, string][] {
  return model.scan(options).map(([k, v]) => [k.toString('hex'), v.toString('hex')]);
}

/** Resolves `promise`, or rejects if it takes longer than `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Asserts that `promise` rejects with an EngineError of `code`. */
export async function rejectsWith(promise: Promise<unknown>, code: EngineError['code']): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof EngineError, `expected an EngineError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

/** Makes a fresh temporary directory for one engine. */
export async function tempDir(kind: EngineKind): Promise<string> {
  return mkdtemp(join(tmpdir(), `keyspan-storage-${kind}-`));
}

/** Runs `body` against a fresh engine and always destroys it and its directory. */
async function withEngine(harness: EngineHarness, body: (fixture: Fixture) => Promise<void>): Promise<void> {
  const dir = await tempDir(harness.kind);
  const fixture: Fixture = {
    engine: await harness.open(dir),
    dir,
    async reopen() {
      await fixture.engine.close();
      fixture.engine = await harness.open(dir);
      return fixture.engine;
    },
  };
  try {
    await body(fixture);
  } finally {
    await fixture.engine.destroy().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

function put(key: Buffer, value: Buffer): BatchOp {
  return { type: 'put', key, value };
}

function del(key: Buffer): BatchOp {
  return { type: 'del', key };
}

/** Keys chosen to expose non-bytewise orderings: NUL and 0xff bytes, prefixes, high bit. */
const awkwardKeys: readonly Buffer[] = [
  bytes(0x00),
  bytes(0x00, 0x00),
  bytes(0x00, 0xff),
  bytes(0x01),
  utf8('a'),
  utf8('ab'),
  utf8('abc'),
  utf8('b'),
  bytes(0x7f),
  bytes(0x80),
  utf8('é'),
  bytes(0xfe, 0xff, 0xff),
  bytes(0xff),
  bytes(0xff, 0x00),
  bytes(0xff, 0xff),
  bytes(0xff, 0xff, 0xff),
];

/** Ten keys k0..k9 with values v0..v9, for bound tests. */
function tenKeys(): BatchOp[] {
  return Array.from({ length: 10 }, (_, i) => put(utf8(`k${i}`), utf8(`v${i}`)));
}

/** Registers the conformance suite for the engine `harness` opens. */
export function defineConformanceSuite(harness: EngineHarness): void {
  const it = (name: string, body: (fixture: Fixture) => Promise<void>, skip = false): void => {
    test(name, { timeout: testTimeoutMs, skip }, () => withEngine(harness, body));
  };

  describe(`engine conformance: ${harness.kind}`, () => {
    it('get() returns undefined for a missing key', async ({ engine }) => {
      assert.equal(await engine.get(utf8('missing')), undefined);
      await engine.write([put(utf8('present'), utf8('1'))]);
      assert.equal(await engine.get(utf8('missing')), undefined);
      assert.equal(await engine.get(utf8('presen')), undefined);
      assert.equal(await engine.get(utf8('present!')), undefined);
    });

    it('write() puts, overwrites and deletes; values may be empty or binary', async ({ engine }) => {
      await engine.write([put(utf8('a'), utf8('1')), put(utf8('b'), Buffer.alloc(0))]);
      await engine.write([put(utf8('a'), bytes(0x00, 0xff, 0x00)), del(utf8('nothing-here'))]);
      assert.deepEqual(await engine.get(utf8('a')), bytes(0x00, 0xff, 0x00));
      assert.deepEqual(await engine.get(utf8('b')), Buffer.alloc(0));
      await engine.write([del(utf8('a'))]);
      assert.equal(await engine.get(utf8('a')), undefined);
      await engine.write([]);
      // An empty synced batch (how a caller makes earlier unsynced writes durable) changes nothing.
      await engine.write([put(utf8('u'), utf8('1'))]);
      await engine.write([], { sync: true });
      assert.deepEqual(await engine.get(utf8('u')), utf8('1'));
    });

    it('write() applies the ops of a batch in order, later ops winning', async ({ engine }) => {
      await engine.write([put(utf8('x'), utf8('1')), del(utf8('x')), put(utf8('y'), utf8('1')), put(utf8('y'), utf8('2'))]);
      await engine.write([del(utf8('z')), put(utf8('z'), utf8('3'))]);
      assert.deepEqual(await collect(engine), [
        [utf8('y').toString('hex'), utf8('2').toString('hex')],
        [utf8('z').toString('hex'), utf8('3').toString('hex')],
      ]);
    });

    it('write() copies the caller buffers and accepts plain Uint8Arrays', async ({ engine }) => {
      const key = new Uint8Array([0x6b, 0x31]);
      const value = new Uint8Array([1, 2, 3]);
      await engine.write([{ type: 'put', key, value }]);
      key[1] = 0x32;
      value[0] = 9;
      assert.deepEqual(await engine.get(utf8('k1')), bytes(1, 2, 3));
      assert.equal(await engine.get(utf8('k2')), undefined);
    });

    it('write() rejects a batch with an invalid op and writes none of it', async ({ engine }) => {
      await engine.write([put(utf8('keep'), utf8('old'))]);
      const invalidOps: unknown[] = [
        { type: 'put', key: 'a-string', value: utf8('v') },
        { type: 'put', key: 42, value: utf8('v') },
        { type: 'put', key: Buffer.alloc(0), value: utf8('v') },
        { type: 'put', key: utf8('k'), value: 'a-string' },
        { type: 'put', key: utf8('k') },
        { type: 'del', key: null },
        { type: 'merge', key: utf8('k'), value: utf8('v') },
        null,
      ];
      for (const invalid of invalidOps) {
        const batch = [put(utf8('new'), utf8('1')), put(utf8('keep'), utf8('new')), invalid, del(utf8('keep'))];
        await rejectsWith(engine.write(batch as BatchOp[]), 'INVALID_ARGUMENT');
      }
      assert.deepEqual(await collect(engine), [[utf8('keep').toString('hex'), utf8('old').toString('hex')]]);
    });

    it('iterate() orders binary keys bytewise, shorter prefix first', async ({ engine }) => {
      const shuffled = [...awkwardKeys].reverse();
      shuffled.push(...shuffled.splice(0, 5));
      await engine.write(shuffled.map((k) => put(k, k)));
      const sorted = [...awkwardKeys].sort(Buffer.compare).map((k) => k.toString('hex'));
      assert.deepEqual(sorted, awkwardKeys.map((k) => k.toString('hex')), 'fixture is listed in bytewise order');
      assert.deepEqual((await collect(engine)).map(([k]) => k), sorted);
      assert.deepEqual((await collect(engine, { reverse: true })).map(([k]) => k), [...sorted].reverse());
      for (const key of awkwardKeys) assert.deepEqual(await engine.get(key), key);
    });

    it('iterate() honours all four bound kinds, forward and reverse', async ({ engine }) => {
      await engine.write(tenKeys());
      const model = new Model();
      model.write(tenKeys());
      const bounds: IterateOptions[] = [
        {},
        { gte: utf8('k3') },
        { gt: utf8('k3') },
        { lte: utf8('k6') },
        { lt: utf8('k6') },
        { gte: utf8('k3'), lte: utf8('k6') },
        { gt: utf8('k3'), lt: utf8('k6') },
        { gte: utf8('k3'), lt: utf8('k6') },
        { gt: utf8('k3'), lte: utf8('k6') },
        { gt: utf8('k35'), lt: utf8('k55') },
        { gte: utf8('a'), lte: utf8('z') },
        { gte: utf8('k'), lt: utf8('l') },
        { gt: utf8('k9') },
        { lt: utf8('k0') },
        { gte: utf8('k3'), gt: utf8('k5') },
        { lte: utf8('k3'), lt: utf8('k1') },
      ];
      for (const bound of bounds) {
        for (const reverse of [false, true]) {
          for (const limit of [undefined, 1, 2, 100]) {
            const options: IterateOptions = { ...bound, reverse, ...(limit === undefined ? {} : { limit }) };
            assert.deepEqual(await collect(engine, options), expected(model, options), JSON.stringify(options));
            assert.equal(await engine.count(options), expected(model, options).length, `count ${JSON.stringify(options)}`);
          }
        }
      }
    });

    it('iterate() with keysOnly yields the same keys with empty values, also on a snapshot', async ({ engine }) => {
      await engine.write(tenKeys());
      const model = new Model();
      model.write(tenKeys());
      const snap = engine.snapshot();
      try {
        for (const options of [{}, { gt: utf8('k3'), lte: utf8('k6') }, { reverse: true, limit: 3 }] as IterateOptions[]) {
          const keys = expected(model, options).map(([k]) => k);
          const want = keys.map((k) => [k, '']);
          assert.deepEqual(await collect(engine, { ...options, keysOnly: true }), want, JSON.stringify(options));
          assert.deepEqual(await collect(snap, { ...options, keysOnly: true }), want, `snapshot ${JSON.stringify(options)}`);
          assert.deepEqual((await collect(engine, options)).map(([k]) => k), keys, 'values still read without keysOnly');
        }
      } finally {
        await snap.release();
      }
    });

    it('iterate() treats limit 0 as nothing and a negative limit as none', async ({ engine }) => {
      await engine.write(tenKeys());
      assert.deepEqual(await collect(engine, { limit: 0 }), []);
      assert.equal(await engine.count({ limit: 0 }), 0);
      assert.equal(await engine.count({ limit: -1 }), 10);
      assert.equal(await engine.count({ limit: 3, reverse: true }), 3);
      assert.deepEqual(await collect(engine, { limit: 0, reverse: true }), []);
      assert.equal((await collect(engine, { limit: -1 })).length, 10);
      assert.equal((await collect(engine, { limit: 3, reverse: true })).length, 3);
    });

    it('iterate() yields nothing for inverted, touching or empty-key bounds', async ({ engine }) => {
      await engine.write(tenKeys());
      const none: IterateOptions[] = [
        { gte: utf8('k6'), lt: utf8('k3') },
        { gt: utf8('k3'), lt: utf8('k3') },
        { gte: utf8('k3'), lt: utf8('k3') },
        { gt: utf8('k3'), lte: utf8('k3') },
        { lt: Buffer.alloc(0) },
        { lte: Buffer.alloc(0) },
      ];
      for (const options of none) {
        assert.deepEqual(await collect(engine, options), [], JSON.stringify(options));
        assert.deepEqual(await collect(engine, { ...options, reverse: true }), [], JSON.stringify(options));
        assert.equal(await engine.count(options), 0, `count ${JSON.stringify(options)}`);
      }
      assert.equal((await collect(engine, { gte: utf8('k3'), lte: utf8('k3') })).length, 1);
      assert.equal((await collect(engine, { gte: Buffer.alloc(0) })).length, 10);
      assert.equal((await collect(engine, { gt: Buffer.alloc(0), reverse: true })).length, 10);
    });

    it('iterate() rejects malformed options with INVALID_ARGUMENT', async ({ engine }) => {
      await rejectsWith(collect(engine, { gte: 'k1' as unknown as Uint8Array }), 'INVALID_ARGUMENT');
      await rejectsWith(collect(engine, { limit: 'ten' as unknown as number }), 'INVALID_ARGUMENT');
      await rejectsWith(engine.count({ gte: 'k1' as unknown as Uint8Array }), 'INVALID_ARGUMENT');
      await rejectsWith(collect(engine, { sizeHint: 'many' as unknown as number }), 'INVALID_ARGUMENT');
      await rejectsWith(engine.get('k1' as unknown as Uint8Array), 'INVALID_ARGUMENT');
      await rejectsWith(engine.get(Buffer.alloc(0)), 'INVALID_ARGUMENT');
    });

    it('iterate() crosses native batch boundaries, whatever the size hint, without losing or repeating entries', async ({ engine }) => {
      const ops = Array.from({ length: 3000 }, (_, i) => put(utf8(`key${String(i).padStart(5, '0')}`), utf8(`${i}`)));
      await engine.write(ops);
      const model = new Model();
      model.write(ops);
      const pages: IterateOptions[] = [{ sizeHint: 700 }, { gt: utf8('key00100'), limit: 2500, sizeHint: 5000 }, { reverse: true, sizeHint: 1 }];
      for (const options of [{}, { reverse: true }, { gt: utf8('key00100'), limit: 2500 }, { reverse: true, lt: utf8('key02000') }, ...pages]) {
        assert.deepEqual(await collect(engine, options), expected(model, options));
        assert.equal(await engine.count(options), expected(model, options).length, 'count');
        const snapshot = engine.snapshot();
        await engine.write([put(utf8('key99999'), utf8('later')), { type: 'del', key: utf8('key00500') }]);
        assert.deepEqual(await collect(snapshot, options), expected(model, options));
        assert.equal(await snapshot.count(options), expected(model, options).length, 'snapshot count');
        await snapshot.release();
        await engine.write([{ type: 'del', key: utf8('key99999') }, put(utf8('key00500'), utf8('500'))]);
      }
    });

    it('breaking out of iterate() releases the iterator, so close() does not hang', async ({ engine }) => {
      await engine.write(tenKeys());
      const snapshot = engine.snapshot();
      for (let round = 0; round < 200; round++) {
        const reader = round % 2 === 0 ? engine : snapshot;
        for await (const entry of reader.iterate({ reverse: round % 3 === 0 })) {
          assert.ok(entry.key.length > 0);
          break;
        }
      }
      // A scan abandoned by an exception in the loop body is released too.
      await assert.rejects(async () => {
        for await (const _ of engine.iterate()) throw new Error('consumer failed');
      }, /consumer failed/);
      if (harness.openScans !== undefined) assert.equal(harness.openScans(engine), 0);
      // The engine still works, and closes promptly.
      await engine.write([put(utf8('after'), utf8('1'))]);
      assert.equal((await collect(snapshot)).length, 10);
      await snapshot.release();
      await within(engine.close(), closeTimeoutMs, 'close() after abandoned scans');
    });

    it('a scan reads one view: writes after its first entry are invisible to it', async ({ engine }) => {
      await engine.write(tenKeys());
      const seen: string[] = [];
      let wrote = false;
      for await (const { key } of engine.iterate()) {
        seen.push(key.toString());
        if (!wrote) {
          wrote = true;
          await engine.write([del(utf8('k5')), put(utf8('k55'), utf8('new')), put(utf8('k99'), utf8('new'))]);
        }
      }
      assert.deepEqual(seen, Array.from({ length: 10 }, (_, i) => `k${i}`));
    });

    it('snapshot() is isolated from later puts, deletes and span deletes', async ({ engine }) => {
      await engine.write(tenKeys());
      const before = new Model();
      before.write(tenKeys());
      const snapshot = engine.snapshot();
      await engine.write([put(utf8('k1'), utf8('changed')), del(utf8('k2')), put(utf8('k25'), utf8('new'))]);
      await engine.deleteSpan(utf8('k6'), utf8('k8'));
      await engine.write([put(utf8('a'), utf8('first')), put(utf8('z'), utf8('last'))]);
      const later = engine.snapshot();
      await engine.write([del(utf8('k0'))]);

      assert.deepEqual(await snapshot.get(utf8('k1')), utf8('v1'));
      assert.deepEqual(await snapshot.get(utf8('k2')), utf8('v2'));
      assert.equal(await snapshot.get(utf8('k25')), undefined);
      assert.deepEqual(await snapshot.get(utf8('k7')), utf8('v7'));
      assert.equal(await snapshot.get(utf8('z')), undefined);
      for (const options of [{}, { reverse: true }, { gt: utf8('k1'), lte: utf8('k7') }, { reverse: true, limit: 3 }]) {
        assert.deepEqual(await collect(snapshot, options), expected(before, options), JSON.stringify(options));
      }
      assert.deepEqual(await later.get(utf8('k0')), utf8('v0'));
      assert.deepEqual((await collect(later, { reverse: true, limit: 1 }))[0]?.[0], utf8('z').toString('hex'));
      assert.equal(await engine.get(utf8('k0')), undefined);
      await snapshot.release();
      await later.release();
    });

    it('snapshot() of an empty engine stays empty', async ({ engine }) => {
      const snapshot = engine.snapshot();
      await engine.write(tenKeys());
      assert.deepEqual(await collect(snapshot), []);
      assert.deepEqual(await collect(snapshot, { reverse: true }), []);
      assert.equal(await snapshot.get(utf8('k1')), undefined);
      await snapshot.release();
    });

    it('scans of one snapshot may interleave', async ({ engine }) => {
      const ops = Array.from({ length: 100 }, (_, i) => put(utf8(`k${String(i).padStart(3, '0')}`), utf8(`${i}`)));
      await engine.write(ops);
      const model = new Model();
      model.write(ops);
      const snapshot = engine.snapshot();
      await engine.deleteSpan(Buffer.alloc(0), utf8('z'));
      const scans: IterateOptions[] = [{}, { reverse: true }, { gt: utf8('k050') }, { reverse: true, lt: utf8('k020') }];
      const iterators = scans.map((options) => snapshot.iterate(options));
      const got: [string, string][][] = scans.map(() => []);
      let live = iterators.length;
      while (live > 0) {
        live = 0;
        // Step every scan once per round, with point reads mixed in.
        const steps = await Promise.all(iterators.map((iterator) => iterator.next()));
        steps.forEach((step, i) => {
          if (step.done === true) return;
          live++;
          got[i]!.push([step.value.key.toString('hex'), step.value.value.toString('hex')]);
        });
        assert.deepEqual(await snapshot.get(utf8('k042')), utf8('42'));
      }
      scans.forEach((options, i) => assert.deepEqual(got[i], expected(model, options), JSON.stringify(options)));
      await snapshot.release();
    });

    it('snapshot reads reject after release; release is idempotent', async ({ engine }) => {
      await engine.write(tenKeys());
      const snapshot = engine.snapshot();
      const scan = snapshot.iterate();
      assert.equal((await scan.next()).done, false);
      await snapshot.release();
      await snapshot.release();
      await rejectsWith(snapshot.get(utf8('k1')), 'SNAPSHOT_RELEASED');
      await rejectsWith(collect(snapshot), 'SNAPSHOT_RELEASED');
      await rejectsWith(snapshot.count(), 'SNAPSHOT_RELEASED');
      await rejectsWith(scan.next(), 'SNAPSHOT_RELEASED');
      assert.deepEqual(await engine.get(utf8('k1')), utf8('v1'));
    });

    it('deleteSpan() removes exactly the keys in [start, end)', async ({ engine }) => {
      await engine.write([...tenKeys(), ...awkwardKeys.map((k) => put(k, k))]);
      const model = new Model();
      model.write([...tenKeys(), ...awkwardKeys.map((k) => put(k, k))]);
      const spans: [Buffer, Buffer][] = [
        [utf8('k2'), utf8('k5')],
        [utf8('k7'), utf8('k7')],
        [utf8('k9'), utf8('k8')],
        [Buffer.alloc(0), bytes(0x00, 0xff)],
        [bytes(0xff), bytes(0xff, 0xff)],
        [utf8('k8'), utf8('k9\x00')],
      ];
      for (const [start, end] of spans) {
        await engine.deleteSpan(start, end, { sync: true });
        if (Buffer.compare(start, end) < 0) model.deleteSpan(start, end);
        assert.deepEqual(await collect(engine), expected(model), `after deleteSpan(${start.toString('hex')}, ${end.toString('hex')})`);
      }
      assert.deepEqual(await engine.get(bytes(0xff, 0xff)), bytes(0xff, 0xff));
      assert.deepEqual(await engine.get(utf8('k5')), utf8('v5'));
    });

    it('approximateSize() grows with the data in the span', async (fixture) => {
      const start = utf8('size/');
      const end = utf8('size0');
      const prng = new Prng(7);
      const ops = Array.from({ length: 256 }, (_, i) => put(utf8(`size/${String(i).padStart(4, '0')}`), prng.bytes(4096)));
      const logicalBytes = ops.reduce((sum, op) => sum + op.key.length + (op.type === 'put' ? op.value.length : 0), 0);
      assert.equal(await fixture.engine.approximateSize(start, end), 0);
      for (let i = 0; i < ops.length; i += 32) await fixture.engine.write(ops.slice(i, i + 32), { sync: true });
      let engine = fixture.engine;
      // LevelDB counts only table files, and writes its memtable to one when
      // reopened; reopening makes the check honest for every durable engine.
      if (harness.durable) engine = await fixture.reopen();
      const size = await engine.approximateSize(start, end);
      if (harness.durable) {
        assert.ok(size > logicalBytes / 2 && size < logicalBytes * 2, `size ${size} for ${logicalBytes} logical bytes`);
      } else {
        assert.equal(size, logicalBytes);
      }
      assert.equal(await engine.approximateSize(end, start), 0);
      assert.ok((await engine.approximateSize(utf8('a'), utf8('b'))) < logicalBytes / 8);
    });

    it('compactRange() keeps every entry readable and reclaims deleted space', async (fixture) => {
      const prng = new Prng(11);
      const ops = Array.from({ length: 128 }, (_, i) => put(utf8(`cmp/${String(i).padStart(4, '0')}`), prng.bytes(2048)));
      for (let i = 0; i < ops.length; i += 32) await fixture.engine.write(ops.slice(i, i + 32), { sync: true });
      // Reopening writes LevelDB's memtable to a table file, so the deletes
      // below land above the data they delete, as they do in a running store.
      if (harness.durable) await fixture.reopen();
      await fixture.engine.deleteSpan(utf8('cmp/0000'), utf8('cmp/0096'), { sync: true });
      const model = new Model();
      model.write(ops);
      model.deleteSpan(utf8('cmp/0000'), utf8('cmp/0096'));
      const snapshot = fixture.engine.snapshot();
      await fixture.engine.compactRange(utf8('cmp/'), utf8('cmp0'));
      await fixture.engine.compactRange(utf8('z'), utf8('a'));
      assert.deepEqual(await collect(fixture.engine), expected(model));
      assert.deepEqual(await collect(snapshot), expected(model), 'a snapshot taken before still reads its view');
      await snapshot.release();
      // Without the snapshot pinning them, the deleted entries can go now.
      await fixture.engine.compactRange(utf8('cmp/'), utf8('cmp0'));
      const live = ops.slice(96).reduce((sum, op) => sum + op.key.length + (op.type === 'put' ? op.value.length : 0), 0);
      const engine = harness.durable ? await fixture.reopen() : fixture.engine;
      assert.deepEqual(await collect(engine), expected(model), 'after reopen');
      if (harness.kind !== 'rocksdb') {
        // RocksDB's binding has no manual compaction (docs/storage.md); the others drop the deleted entries now.
        const size = await engine.approximateSize(utf8('cmp/'), utf8('cmp0'));
        assert.ok(size < live * 2, `size ${size} for ${live} live bytes`);
      }
      await rejectsWith(engine.compactRange(bytes(0x01), 'x' as unknown as Uint8Array), 'INVALID_ARGUMENT');
      await engine.close();
      await rejectsWith(engine.compactRange(utf8('a'), utf8('z')), 'ENGINE_CLOSED');
    });

    it('synced writes survive close and reopen', async (fixture) => {
      await fixture.engine.write(tenKeys(), { sync: true });
      await fixture.engine.write([del(utf8('k3'))], { sync: true });
      await fixture.engine.deleteSpan(utf8('k7'), utf8('k9'), { sync: true });
      const engine = await fixture.reopen();
      const model = new Model();
      model.write(tenKeys());
      model.write([del(utf8('k3'))]);
      model.deleteSpan(utf8('k7'), utf8('k9'));
      assert.deepEqual(await collect(engine), expected(model));
      await engine.write([put(utf8('k3'), utf8('again'))], { sync: true });
      assert.deepEqual(await (await fixture.reopen()).get(utf8('k3')), utf8('again'));
    }, !harness.durable);

    it('operations after close() reject with ENGINE_CLOSED', async ({ engine }) => {
      await engine.write(tenKeys());
      const snapshot = engine.snapshot();
      const scan = engine.iterate();
      assert.equal((await scan.next()).done, false);
      await engine.close();
      await engine.close();
      await rejectsWith(engine.get(utf8('k1')), 'ENGINE_CLOSED');
      await rejectsWith(collect(engine), 'ENGINE_CLOSED');
      await rejectsWith(engine.count(), 'ENGINE_CLOSED');
      await rejectsWith(scan.next(), 'ENGINE_CLOSED');
      await rejectsWith(engine.write([put(utf8('k1'), utf8('x'))]), 'ENGINE_CLOSED');
      await rejectsWith(engine.write([{ type: 'put', key: 'bad' } as unknown as BatchOp]), 'ENGINE_CLOSED');
      await rejectsWith(engine.approximateSize(utf8('a'), utf8('z')), 'ENGINE_CLOSED');
      await rejectsWith(engine.deleteSpan(utf8('a'), utf8('z')), 'ENGINE_CLOSED');
      assert.throws(() => engine.snapshot(), (err: unknown) => err instanceof EngineError && err.code === 'ENGINE_CLOSED');
      await rejectsWith(snapshot.get(utf8('k1')), 'ENGINE_CLOSED');
      await rejectsWith(collect(snapshot), 'ENGINE_CLOSED');
      await snapshot.release();
    });

    it('unsynced writes survive a clean close', async (fixture) => {
      await fixture.engine.write(tenKeys());
      await fixture.engine.deleteSpan(utf8('k2'), utf8('k4'));
      const engine = await fixture.reopen();
      const model = new Model();
      model.write(tenKeys());
      model.deleteSpan(utf8('k2'), utf8('k4'));
      assert.deepEqual(await collect(engine), expected(model));
    }, !harness.durable);

    it('a second open of a directory in use fails with ENGINE_IO', async ({ engine, dir }) => {
      await engine.write(tenKeys(), { sync: true });
      await rejectsWith(harness.open(dir), 'ENGINE_IO');
      assert.deepEqual(await engine.get(utf8('k1')), utf8('v1'));
    }, !harness.durable);

    it('destroy() removes the data', async (fixture) => {
      await fixture.engine.write(tenKeys(), { sync: true });
      await fixture.engine.destroy();
      await rejectsWith(fixture.engine.get(utf8('k1')), 'ENGINE_CLOSED');
      await fixture.engine.destroy();
      if (harness.durable) {
        assert.equal(existsSync(fixture.dir), false, 'the engine directory is gone');
      } else {
        assert.deepEqual(await readdir(fixture.dir), [], 'a memory engine writes no files');
      }
      fixture.engine = await harness.open(fixture.dir);
      assert.deepEqual(await collect(fixture.engine), []);
    });
  });
}
