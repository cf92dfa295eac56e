/**
 * The write-behind view: reads through it see every earlier write, queued
 * writes coalesce into one engine batch, sync writes flush, invalid batches
 * are refused whole, and a failed background write poisons the view.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { MemoryEngine, type BatchOp, type Entry } from '../../src/storage/index.js';
import { WriteBehindEngine, withoutSuperseded } from '../../src/storage/write-behind.js';

/** A memory engine that counts the batches and ops it is given. */
class CountingEngine extends MemoryEngine {
  batches = 0;
  ops = 0;
  override async write(ops: readonly BatchOp[]): Promise<void> {
    this.batches++;
    this.ops += ops.length;
    return super.write(ops);
  }
}

const k = (s: string): Buffer => Buffer.from(s);

test('reads see queued writes; a burst of writes becomes one engine batch', async () => {
  const inner = new CountingEngine();
  const wb = new WriteBehindEngine(inner);
  for (let i = 0; i < 100; i++) await wb.write([{ type: 'put', key: k(`k${i}`), value: k(`v${i}`) }]);
  assert.equal(inner.batches, 0, 'nothing written yet');
  assert.equal(await inner.get(k('k5')), undefined);
  assert.deepEqual(await wb.get(k('k5')), k('v5'), 'a read through the view writes the queue first');
  assert.equal(inner.batches, 1, 'one batch for 100 writes');
  await wb.write([{ type: 'del', key: k('k1') }, { type: 'put', key: k('k2'), value: k('x') }]);
  const all = [];
  for await (const e of wb.iterate({ gte: k('k1'), lt: k('k2') })) all.push(e.key.toString());
  assert.deepEqual(all, ['k10', 'k11', 'k12', 'k13', 'k14', 'k15', 'k16', 'k17', 'k18', 'k19'], 'the queued delete of k1 is seen');
  assert.deepEqual(await wb.get(k('k2')), k('x'), 'later ops on a key win');
  await wb.write([{ type: 'put', key: k('k1'), value: k('back') }, { type: 'del', key: k('k3') }]);
  assert.equal(await wb.count({ gte: k('k1'), lt: k('k2') }), 11, 'a count sees queued puts');
  assert.equal(await wb.count({ gte: k('k3'), lt: k('k4') }), 10, 'and queued deletes');
  const snap = wb.snapshot();
  await wb.write([{ type: 'put', key: k('k300'), value: k('y') }]);
  assert.equal(await snap.count({ gte: k('k3'), lt: k('k4') }), 11, "a snapshot's count sees what was queued when it first read");
  await snap.release();
});

test('queued writes reach the engine on the next macrotask without any read', async () => {
  const inner = new CountingEngine();
  const wb = new WriteBehindEngine(inner);
  await wb.write([{ type: 'put', key: k('a'), value: k('1') }]);
  await wb.write([{ type: 'put', key: k('b'), value: k('2') }]);
  await tick();
  await tick();
  assert.deepEqual(await inner.get(k('b')), k('2'));
  assert.equal(inner.batches, 1);
});

test('a sync write flushes the queue with it; snapshots include queued writes', async () => {
  const inner = new CountingEngine();
  const wb = new WriteBehindEngine(inner);
  await wb.write([{ type: 'put', key: k('a'), value: k('1') }]);
  await wb.write([{ type: 'put', key: k('b'), value: k('2') }], { sync: true });
  assert.deepEqual(await inner.get(k('a')), k('1'));
  await wb.write([{ type: 'put', key: k('c'), value: k('3') }]);
  const snap = wb.snapshot();
  assert.deepEqual(await snap.get(k('c')), k('3'));
  await wb.write([{ type: 'put', key: k('c'), value: k('4') }]);
  assert.deepEqual(await snap.get(k('c')), k('3'), 'the snapshot is a fixed view once read');
  await snap.release();
  assert.deepEqual(await wb.get(k('c')), k('4'));
});

test('an invalid batch is refused whole and queues nothing', async () => {
  const wb = new WriteBehindEngine(new MemoryEngine());
  await assert.rejects(wb.write([{ type: 'put', key: k('ok'), value: k('1') }, { type: 'put', key: Buffer.alloc(0), value: k('x') }]), {
    code: 'INVALID_ARGUMENT',
  });
  assert.equal(wb.pendingOps, 0);
  assert.equal(await wb.get(k('ok')), undefined);
});

test('queue() queues at once, as write() without the wait; an invalid batch throws and queues nothing', async () => {
  const inner = new CountingEngine();
  const wb = new WriteBehindEngine(inner);
  wb.queue([{ type: 'put', key: k('a'), value: k('1') }]);
  wb.queue([{ type: 'put', key: k('b'), value: k('2') }]);
  assert.equal(wb.pendingOps, 2);
  assert.throws(() => wb.queue([{ type: 'put', key: k('c'), value: k('3') }, { type: 'put', key: Buffer.alloc(0), value: k('x') }]), {
    code: 'INVALID_ARGUMENT',
  });
  assert.equal(wb.pendingOps, 2);
  assert.deepEqual(await wb.get(k('b')), k('2'));
  wb.queue([{ type: 'put', key: k('c'), value: k('3') }]);
  await tick();
  await tick();
  assert.deepEqual(await inner.get(k('c')), k('3'), 'written on the next macrotask');
  assert.equal(inner.batches, 2);
});

test('iterate() hands out the engine iterator after writing the queue; return() closes it, before the first key too', async () => {
  let opened = 0;
  let closed = 0;
  class TrackingEngine extends CountingEngine {
    override iterate(options = {}): AsyncIterableIterator<Entry> {
      opened++;
      const it = super.iterate(options);
      const ret = it.return?.bind(it);
      it.return = async (value?: unknown) => {
        closed++;
        return ret === undefined ? { done: true, value } : ret(value);
      };
      return it;
    }
  }
  const inner = new TrackingEngine();
  const wb = new WriteBehindEngine(inner);
  for (let i = 0; i < 5; i++) wb.queue([{ type: 'put', key: k(`k${i}`), value: k(`${i}`) }]);
  const unused = wb.iterate();
  await unused.return?.();
  assert.deepEqual([opened, inner.batches], [0, 0], 'nothing opened or written for an iterator never read');
  assert.deepEqual(await unused.next(), { done: true, value: undefined });
  const seen: string[] = [];
  for await (const e of wb.iterate({ gte: k('k1') })) {
    seen.push(e.key.toString());
    if (seen.length === 2) break;
  }
  assert.deepEqual(seen, ['k1', 'k2'], 'queued writes are seen');
  assert.equal(inner.batches, 1);
  assert.deepEqual([opened, closed], [1, 1], 'breaking out closes the engine iterator');
});

test('a failed background write poisons the view', async () => {
  const inner = new MemoryEngine();
  const wb = new WriteBehindEngine(inner);
  await inner.close();
  await wb.write([{ type: 'put', key: k('a'), value: k('1') }]);
  await assert.rejects(wb.flush(), { code: 'ENGINE_CLOSED' });
  await assert.rejects(wb.get(k('a')), { code: 'ENGINE_CLOSED' });
  await assert.rejects(wb.write([{ type: 'put', key: k('b'), value: k('1') }]), { code: 'ENGINE_CLOSED' });
});

test('a queued batch drops ops a later op on the same key overrides, with the same outcome', async () => {
  const inner = new CountingEngine();
  const wb = new WriteBehindEngine(inner);
  const applied = k('applied');
  const gone = k('gone');
  for (let i = 0; i < 50; i++) {
    // Like an applied entry: its own key plus the same bookkeeping key object every time.
    await wb.write([{ type: 'put', key: k(`d${i}`), value: k(`v${i}`) }, { type: 'put', key: applied, value: k(String(i)) }]);
  }
  await wb.write([{ type: 'put', key: gone, value: k('x') }]);
  await wb.write([{ type: 'del', key: gone }]);
  await wb.flush();
  assert.equal(inner.batches, 1);
  assert.equal(inner.ops, 52, '50 data keys, the last applied index, the last op on "gone"');
  assert.deepEqual(await inner.get(k('applied')), k('49'));
  assert.equal(await inner.get(k('gone')), undefined, 'the later delete wins');
  assert.deepEqual(await inner.get(k('d7')), k('v7'));
});

test('withoutSuperseded keeps the last op per key object in the original order', () => {
  const [a, b, c] = [k('a'), k('b'), k('c')];
  const ops: BatchOp[] = [
    { type: 'put', key: a, value: k('1') },
    { type: 'put', key: b, value: k('1') },
    { type: 'del', key: a },
    { type: 'put', key: c, value: k('1') },
    { type: 'put', key: b, value: k('2') },
  ];
  const kept = withoutSuperseded(ops).map((op) => `${op.type}:${Buffer.from(op.key).toString()}`);
  assert.deepEqual(kept, ['del:a', 'put:c', 'put:b']);
  assert.deepEqual(withoutSuperseded([]), []);
});

test('equal keys in distinct Buffers are all kept, and the last one still wins', async () => {
  const whole = Buffer.from('xkeyx');
  const ops: BatchOp[] = [
    { type: 'put', key: whole.subarray(1, 4), value: k('old') },
    { type: 'put', key: k('key'), value: k('new') },
  ];
  assert.equal(withoutSuperseded(ops).length, 2);
  const inner = new CountingEngine();
  const wb = new WriteBehindEngine(inner);
  await wb.write(ops);
  await wb.flush();
  assert.deepEqual(await inner.get(k('key')), k('new'));
});
