/**
 * The WAL engine beyond the shared conformance suite: its record format,
 * recovery over many segments and checkpoints, a torn last record, damage
 * that must fail the start, and the files a crash leaves behind. (Kills of
 * a writing process: test/group/log-store/crash.test.ts runs over it too.)
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { type BatchOp, EngineError, WalEngine } from '../../src/storage/index.js';
import type { TreeOp } from '../../src/storage/internal.js';
import {
  FILE_HEADER_BYTES,
  RECORD_BATCH,
  checkpointName,
  decodeRecord,
  encodeRecord,
  parseFileName,
  segmentName,
} from '../../src/storage/wal-format.js';
import { collect, rejectsWith, tempDir } from './conformance.js';
import { Model } from './model.js';
import { Prng, testSeed } from './prng.js';

const small = { segmentBytes: 4096, checkpointBytesMin: 16 * 1024 };

function key(i: number): Buffer {
  return Buffer.from(`k${String(i).padStart(5, '0')}`);
}

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await tempDir('wal');
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function files(dir: string): Promise<{ segments: string[]; checkpoints: string[]; other: string[] }> {
  const out = { segments: [] as string[], checkpoints: [] as string[], other: [] as string[] };
  for (const name of (await readdir(dir)).sort()) {
    const parsed = parseFileName(name);
    if (parsed === undefined) out.other.push(name);
    else (parsed.kind === 'segment' ? out.segments : out.checkpoints).push(name);
  }
  return out;
}

async function assertMatches(engine: WalEngine, model: Model, what: string): Promise<void> {
  const got: [Buffer, Buffer][] = [];
  for await (const { key: k, value } of engine.iterate()) got.push([k, value]);
  const want = model.scan();
  assert.equal(got.length, want.length, `${what}: ${got.length} keys, the model has ${want.length}`);
  for (let i = 0; i < want.length; i++) {
    assert.ok(got[i]![0].equals(want[i]![0]) && got[i]![1].equals(want[i]![1]), `${what}: entry ${i} (${want[i]![0].toString()})`);
  }
}

/** Bound on any one test here: they only touch local files. */
const TEST_TIMEOUT_MS = 60_000;

describe('WAL record format', { timeout: TEST_TIMEOUT_MS }, () => {
  test('records round-trip puts, deletes and spans (an empty span start included)', () => {
    const ops: TreeOp[] = [
      { type: 'put', key: Buffer.from('a'), value: Buffer.from('1') },
      { type: 'put', key: Buffer.from('b'), value: Buffer.alloc(0) },
      { type: 'del', key: Buffer.from('c') },
      { type: 'span', start: Buffer.alloc(0), end: Buffer.from('z') },
    ];
    const buf = Buffer.concat([encodeRecord(7, RECORD_BATCH, ops), encodeRecord(8, RECORD_BATCH, [])]);
    const first = decodeRecord(buf, 0);
    assert.ok(typeof first === 'object');
    assert.equal(first.seq, 7);
    assert.deepEqual(first.ops, ops);
    const second = decodeRecord(buf, first.end);
    assert.ok(typeof second === 'object');
    assert.equal(second.seq, 8);
    assert.equal(decodeRecord(buf, second.end), 'end');
  });

  test('zeros end the records; a cut, damaged or malformed record is torn', () => {
    const rec = encodeRecord(1, RECORD_BATCH, [{ type: 'put', key: Buffer.from('k'), value: Buffer.from('value') }]);
    assert.equal(decodeRecord(Buffer.alloc(64), 0), 'end');
    assert.equal(decodeRecord(Buffer.alloc(5), 0), 'end');
    assert.equal(decodeRecord(rec.subarray(0, rec.length - 1), 0), 'torn');
    for (let i = 0; i < rec.length; i++) {
      const bad = Buffer.from(rec);
      bad[i]! ^= 0x40;
      assert.equal(decodeRecord(bad, 0), 'torn', `byte ${i} flipped`);
    }
    const header = Buffer.alloc(16);
    header[9] = 1; // a zero length with something after it
    assert.equal(decodeRecord(header, 0), 'torn');
  });

  test('file names sort in sequence order and parse back', () => {
    assert.equal(segmentName(0x1f), '000000000000001f.wal');
    assert.deepEqual(parseFileName(checkpointName(300)), { kind: 'checkpoint', seq: 300 });
    assert.equal(parseFileName('000000000000001f.wal.tmp'), undefined);
    assert.equal(parseFileName('LOCK'), undefined);
  });
});

describe('WAL engine recovery', { timeout: TEST_TIMEOUT_MS }, () => {
  test('a seeded run over many segments and checkpoints reopens to the model every time', { timeout: 60_000 }, async (t) => {
    const seed = testSeed();
    t.diagnostic(`KEYSPAN_SEED=${seed}`);
    const rng = new Prng(seed);
    await withDir(async (dir) => {
      const model = new Model();
      let engine = await WalEngine.open(dir, small);
      let checkpoints = 0;
      let segments = 0;
      try {
        for (let round = 0; round < 12; round++) {
          const writes = 20 + rng.int(80);
          const pending: Promise<void>[] = [];
          for (let w = 0; w < writes; w++) {
            if (rng.chance(0.05)) {
              const a = rng.int(400);
              const b = a + rng.int(40);
              model.deleteSpan(key(a), key(b));
              pending.push(engine.deleteSpan(key(a), key(b), { sync: rng.chance(0.5) }));
              continue;
            }
            const ops: BatchOp[] = [];
            for (let n = 1 + rng.int(4); n > 0; n--) {
              ops.push(rng.chance(0.2) ? { type: 'del', key: key(rng.int(400)) } : { type: 'put', key: key(rng.int(400)), value: rng.bytes(rng.int(300)) });
            }
            model.write(ops);
            pending.push(engine.write(ops, { sync: rng.chance(0.5) }));
          }
          await Promise.all(pending);
          await engine.close(); // waits for a checkpoint in progress
          checkpoints += engine.counters.checkpoints;
          segments += engine.counters.segmentsStarted;
          engine = await WalEngine.open(dir, small);
          await assertMatches(engine, model, `round ${round}`);
          const f = await files(dir);
          assert.ok(f.checkpoints.length <= 1, `one checkpoint kept, found ${f.checkpoints.join(', ')}`);
          assert.deepEqual(f.other, ['LOCK']);
        }
        t.diagnostic(`${segments} segments started, ${checkpoints} checkpoints written, ${model.size} keys at the end`);
        assert.ok(checkpoints >= 3, `checkpoints written: ${checkpoints}`);
        assert.ok(segments >= 12, `segments started: ${segments}`);
      } finally {
        await engine.close();
      }
    });
  });

  test('a torn last record is cut off; what was acknowledged before it stays, and so does what comes after the restart', async () => {
    await withDir(async (dir) => {
      const model = new Model();
      let engine = await WalEngine.open(dir, { segmentBytes: 1 << 20 });
      for (let i = 0; i < 10; i++) {
        const ops: BatchOp[] = [{ type: 'put', key: key(i), value: Buffer.from(`v${i}`) }];
        await engine.write(ops, { sync: true });
        if (i < 9) model.write(ops);
      }
      await engine.close();
      const [seg] = (await files(dir)).segments;
      const path = join(dir, seg!);
      // Cut the last record in the middle, as a crash during its write could.
      const buf = await readFile(path);
      let end = FILE_HEADER_BYTES;
      let lastStart = end;
      for (;;) {
        const r = decodeRecord(buf, end);
        if (typeof r !== 'object') break;
        lastStart = end;
        end = r.end;
      }
      await truncate(path, lastStart + 10);
      engine = await WalEngine.open(dir, { segmentBytes: 1 << 20 });
      await assertMatches(engine, model, 'after the torn record');
      assert.equal((await stat(path)).size, lastStart, 'the torn bytes are gone from the file');
      const more: BatchOp[] = [{ type: 'put', key: key(50), value: Buffer.from('after') }];
      await engine.write(more, { sync: true });
      model.write(more);
      await engine.close();
      engine = await WalEngine.open(dir, { segmentBytes: 1 << 20 });
      await assertMatches(engine, model, 'after a write past the torn record');
      await engine.close();
    });
  });

  test('a last segment with no whole record goes: the next segment takes its name, and a later checkpoint keeps it', async () => {
    await withDir(async (dir) => {
      const model = new Model();
      let engine = await WalEngine.open(dir, small);
      for (let i = 0; i < 10; i++) {
        const ops: BatchOp[] = [{ type: 'put', key: key(i), value: Buffer.alloc(1000, i) }];
        await engine.write(ops, { sync: true });
        model.write(ops);
      }
      await engine.close();
      const segments = (await files(dir)).segments;
      const lastName = segments[segments.length - 1]!;
      const path = join(dir, lastName);
      const buf = await readFile(path);
      // Forget what the last segment holds, then tear its first record.
      for (let at = FILE_HEADER_BYTES; ; ) {
        const r = decodeRecord(buf, at);
        if (typeof r !== 'object') break;
        for (const op of r.ops) if (op.type === 'put') model.write([{ type: 'del', key: op.key }]);
        at = r.end;
      }
      buf[FILE_HEADER_BYTES + 20]! ^= 0xff;
      await writeFile(path, buf);
      engine = await WalEngine.open(dir, small);
      await assertMatches(engine, model, 'after the torn first record');
      assert.ok(!(await files(dir)).segments.includes(lastName), 'the segment without a whole record is gone');
      for (let i = 100; i < 140; i++) {
        const ops: BatchOp[] = [{ type: 'put', key: key(i), value: Buffer.alloc(1000, i) }];
        await engine.write(ops, { sync: true });
        model.write(ops);
      }
      await engine.close();
      assert.ok(engine.counters.checkpoints >= 1, 'a checkpoint was written');
      engine = await WalEngine.open(dir, small);
      await assertMatches(engine, model, 'after the checkpoint');
      await engine.close();
    });
  });

  test('cut anywhere in its last records (every 23rd byte), the log recovers exactly the records before the cut', { timeout: 60_000 }, async () => {
    await withDir(async (dir) => {
      const src = join(dir, 'src');
      const engine = await WalEngine.open(src, { segmentBytes: 1 << 20 });
      const batches: BatchOp[][] = [];
      for (let i = 0; i < 8; i++) {
        const ops: BatchOp[] = [{ type: 'put', key: key(i), value: Buffer.alloc(50 + 90 * i, i) }];
        if (i % 3 === 2) ops.push({ type: 'del', key: key(i - 2) });
        batches.push(ops);
        await engine.write(ops, { sync: true });
      }
      await engine.close();
      const [seg] = (await files(src)).segments;
      const whole = await readFile(join(src, seg!));
      const ends: number[] = [];
      for (let at = FILE_HEADER_BYTES; ; ) {
        const r = decodeRecord(whole, at);
        if (typeof r !== 'object') break;
        ends.push(r.end);
        at = r.end;
      }
      assert.equal(ends.length, batches.length);
      const from = ends[ends.length - 4]!;
      for (let cut = from; cut <= ends[ends.length - 1]!; cut += 23) {
        for (const tail of ['cut', 'zeros', 'garbage'] as const) {
          const copy = join(dir, `c${cut}${tail}`);
          await rm(copy, { recursive: true, force: true });
          await mkdir(copy);
          // What a crash can leave: the file ends at the cut, or the preallocated zeros
          // follow it, or stale bytes of an earlier write do.
          const rest = tail === 'cut' ? Buffer.alloc(0) : tail === 'zeros' ? Buffer.alloc(500) : Buffer.alloc(500, 0x5a);
          await writeFile(join(copy, seg!), Buffer.concat([whole.subarray(0, cut), rest]));
          const model = new Model();
          for (let i = 0; i < batches.length && ends[i]! <= cut; i++) model.write(batches[i]!);
          const reopened = await WalEngine.open(copy, { segmentBytes: 4096 });
          await assertMatches(reopened, model, `cut at ${cut} (${tail})`);
          await reopened.write([{ type: 'put', key: key(99), value: Buffer.from('after') }], { sync: true });
          await reopened.close();
          const again = await WalEngine.open(copy, { segmentBytes: 4096 });
          model.write([{ type: 'put', key: key(99), value: Buffer.from('after') }]);
          await assertMatches(again, model, `cut at ${cut} (${tail}), reopened after a write`);
          await again.close();
          await rm(copy, { recursive: true, force: true });
        }
      }
    });
  });

  test('a damaged record in the last segment ends the log there: records after it are not replayed', async () => {
    await withDir(async (dir) => {
      let engine = await WalEngine.open(dir, { segmentBytes: 1 << 20 });
      for (let i = 0; i < 5; i++) await engine.write([{ type: 'put', key: key(i), value: Buffer.from('v') }], { sync: true });
      await engine.close();
      const [seg] = (await files(dir)).segments;
      const path = join(dir, seg!);
      const buf = await readFile(path);
      const third = decodeRecord(buf, (decodeRecord(buf, FILE_HEADER_BYTES) as { end: number }).end) as { end: number };
      buf[third.end + 20]! ^= 0xff; // inside the third record
      await writeFile(path, buf);
      engine = await WalEngine.open(dir, { segmentBytes: 1 << 20 });
      assert.deepEqual((await collect(engine)).map(([k]) => k), [key(0).toString('hex'), key(1).toString('hex')]);
      await engine.close();
    });
  });

  test('damage in an earlier segment, or a missing segment, fails the start with ENGINE_IO', async () => {
    await withDir(async (dir) => {
      const engine = await WalEngine.open(dir, small);
      for (let i = 0; i < 60; i++) await engine.write([{ type: 'put', key: key(i), value: Buffer.alloc(200, i) }], { sync: true });
      await engine.close();
      const { segments } = await files(dir);
      assert.ok(segments.length >= 3, `segments: ${segments.length}`);
      const path = join(dir, segments[1]!);
      const good = await readFile(path);
      const bad = Buffer.from(good);
      bad[FILE_HEADER_BYTES + 30]! ^= 0xff;
      await writeFile(path, bad);
      const err = await WalEngine.open(dir, small).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof EngineError && err.code === 'ENGINE_IO', String(err));
      assert.match(err.message, new RegExp(`${segments[1]!}: damaged record`));
      await rm(path);
      await rejectsWith(WalEngine.open(dir, small), 'ENGINE_IO');
      await writeFile(path, good);
      const reopened = await WalEngine.open(dir, small);
      assert.equal((await collect(reopened)).length, 60);
      await reopened.close();
    });
  });

  test('leftovers of a crash are cleared: temporary files, an unwritten last segment, a stale lock', async () => {
    await withDir(async (dir) => {
      let engine = await WalEngine.open(dir, small);
      await engine.write([{ type: 'put', key: key(1), value: Buffer.from('one') }], { sync: true });
      await engine.close();
      await writeFile(join(dir, 'spare-7.tmp'), Buffer.alloc(4096));
      await writeFile(join(dir, `${checkpointName(99)}.tmp`), Buffer.from('half a checkpoint'));
      await writeFile(join(dir, segmentName(2)), Buffer.alloc(4096)); // renamed into place, header never written
      await writeFile(join(dir, 'LOCK'), '999999999\n'); // no such process
      engine = await WalEngine.open(dir, small);
      assert.equal((await engine.get(key(1)))?.toString(), 'one');
      const f = await files(dir);
      assert.deepEqual(f.other, ['LOCK']);
      assert.deepEqual(f.checkpoints, []);
      assert.equal(f.segments.length, 1);
      await engine.write([{ type: 'put', key: key(2), value: Buffer.from('two') }], { sync: true });
      await engine.close();
      engine = await WalEngine.open(dir, small);
      assert.deepEqual((await collect(engine)).map(([k, v]) => Buffer.from(`${k}${v}`, 'hex').toString()), ['k00001one', 'k00002two']);
      await engine.close();
    });
  });

  test('a small log takes little disk: no spare segment until the active one is half full; restarts cut the last one to its records', async () => {
    await withDir(async (dir) => {
      const segmentBytes = 64 * 1024;
      let engine = await WalEngine.open(dir, { segmentBytes });
      await engine.write([{ type: 'put', key: key(1), value: Buffer.alloc(100) }], { sync: true });
      const [seg] = (await files(dir)).segments;
      assert.equal((await stat(join(dir, seg!))).size, segmentBytes, 'preallocated');
      assert.deepEqual((await files(dir)).other, ['LOCK'], 'no spare yet');
      const used = engine.logBytes;
      assert.ok(used > 100 && used < 200, `log bytes ${used}`);
      for (let i = 0; i < 200; i++) await engine.write([{ type: 'put', key: key(i), value: Buffer.alloc(200) }]);
      await engine.write([], { sync: true });
      const deadline = Date.now() + 5_000;
      while (!(await files(dir)).other.some((n) => n.startsWith('spare-'))) {
        assert.ok(Date.now() < deadline, 'a spare is prepared once the segment is half full');
        await new Promise((r) => setTimeout(r, 10));
      }
      await engine.close();
      assert.deepEqual((await files(dir)).other, [], 'close removes the spare and the lock');
      engine = await WalEngine.open(dir, { segmentBytes });
      const f = await files(dir);
      let total = 0;
      for (const name of f.segments) total += (await stat(join(dir, name))).size;
      assert.equal(total, engine.logBytes, 'segments hold only their records');
      await engine.close();
    });
  });

  test('the first segment a process starts is preallocated to at most 1 MiB, later ones to the segment size', async () => {
    await withDir(async (dir) => {
      const segmentBytes = 4 * 1024 * 1024;
      const engine = await WalEngine.open(dir, { segmentBytes });
      await engine.write([{ type: 'put', key: key(1), value: Buffer.alloc(10) }], { sync: true });
      const [first] = (await files(dir)).segments;
      assert.equal((await stat(join(dir, first!))).size, 1024 * 1024);
      // Past the first segment's capacity: the next one has the full size.
      for (let i = 0; i < 6; i++) await engine.write([{ type: 'put', key: key(i), value: Buffer.alloc(200 * 1024) }]);
      await engine.write([], { sync: true });
      const later = (await files(dir)).segments.filter((n) => n !== first);
      assert.ok(later.length >= 1, 'rolled over');
      assert.equal((await stat(join(dir, later[0]!))).size, segmentBytes);
      await engine.close();
    });
  });

  test('small synced appends are written on the calling thread; large or unsynced ones through the pool', async () => {
    await withDir(async (dir) => {
      const engine = await WalEngine.open(dir, { segmentBytes: 1 << 20 });
      await engine.write([{ type: 'put', key: key(1), value: Buffer.alloc(10) }], { sync: true }); // with the segment header
      await engine.write([{ type: 'put', key: key(2), value: Buffer.alloc(300) }], { sync: true });
      assert.equal(engine.counters.inlineAppends, 2);
      await engine.write([{ type: 'put', key: key(3), value: Buffer.alloc(2000) }], { sync: true });
      await engine.write([{ type: 'put', key: key(4), value: Buffer.alloc(10) }]);
      assert.equal(engine.counters.inlineAppends, 2, 'a large synced append and an unsynced one go through the pool');
      await engine.write([{ type: 'put', key: key(5), value: Buffer.alloc(10) }], { sync: true });
      assert.equal(engine.counters.inlineAppends, 2, 'a synced append after an unsynced one is a write and an fdatasync');
      assert.equal(engine.counters.appends, 5);
      await engine.close();
      const reopened = await WalEngine.open(dir);
      assert.equal((await collect(reopened)).length, 5);
      await reopened.close();
    });
  });

  test('writes after a failed append reject with ENGINE_IO; reads still answer what was logged', async () => {
    await withDir(async (dir) => {
      const engine = await WalEngine.open(dir, small);
      await engine.write([{ type: 'put', key: key(1), value: Buffer.from('kept') }], { sync: true });
      // Fill the active segment's descriptors' directory with the unexpected: remove the directory.
      await rm(dir, { recursive: true, force: true });
      const big = Array.from({ length: 40 }, (_, i): BatchOp => ({ type: 'put', key: key(100 + i), value: Buffer.alloc(200) }));
      await rejectsWith(engine.write(big, { sync: true }), 'ENGINE_IO');
      await rejectsWith(engine.write([{ type: 'put', key: key(2), value: Buffer.from('x') }]), 'ENGINE_IO');
      assert.equal((await engine.get(key(1)))?.toString(), 'kept');
      assert.equal(await engine.get(key(100)), undefined);
      await engine.close();
    });
  });
});
