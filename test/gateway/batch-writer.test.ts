/**
 * The forwarding stream's batching writer (batch-writer.ts): one batch in
 * flight, what arrives meanwhile leaves together, batches bounded by bytes,
 * and drain before the stream is ended. A random sequence of pushes,
 * completions and drains is checked against the rules item by item.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { BatchWriter } from '../../src/gateway/batch-writer.js';

/**
 * A writer over a fake stream whose writes complete when the test says so;
 * items are numbers that are their own size unless `sizeOf` says otherwise.
 */
function harness<T = number>(batchBytesMax = 100, sizeOf: (item: T) => number = (n) => n as number) {
  const batches: T[][] = [];
  const completions: Array<() => void> = [];
  const writer = new BatchWriter<T>(
    (items, done) => {
      batches.push([...items]);
      completions.push(done);
    },
    { sizeOf, batchBytesMax },
  );
  const complete = (): void => {
    const done = completions.shift();
    assert.ok(done !== undefined, 'a write is in flight');
    done();
  };
  return { batches, completions, writer, complete };
}

describe('BatchWriter', () => {
  it('writes at once when idle and gathers what arrives while a write is in flight', () => {
    const { batches, writer, complete } = harness();
    writer.push(1);
    assert.deepEqual(batches, [[1]]);
    writer.push(2);
    writer.push(3);
    writer.push(4);
    assert.deepEqual(batches, [[1]], 'one write in flight at a time');
    assert.equal(writer.queued, 3);
    complete();
    assert.deepEqual(batches, [[1], [2, 3, 4]]);
    complete();
    assert.equal(writer.queued, 0);
    writer.push(5);
    assert.deepEqual(batches, [[1], [2, 3, 4], [5]], 'idle again: the next item goes at once');
  });

  it('bounds a batch by bytes; an item larger than the bound goes alone', () => {
    const { batches, writer, complete } = harness(100);
    writer.push(10);
    for (const n of [40, 50, 20, 150, 30, 30]) writer.push(n);
    complete();
    assert.deepEqual(batches.at(-1), [40, 50]);
    complete();
    assert.deepEqual(batches.at(-1), [20]);
    complete();
    assert.deepEqual(batches.at(-1), [150]);
    complete();
    assert.deepEqual(batches.at(-1), [30, 30]);
  });

  it('drains: runs the finisher once everything pushed has been handed to a write', () => {
    const { batches, writer, complete } = harness();
    let finished = 0;
    writer.drain(() => finished++);
    assert.equal(finished, 1, 'nothing queued: at once');
    writer.push(1);
    writer.push(2);
    writer.drain(() => finished++);
    assert.equal(finished, 1, 'item 2 still waits');
    complete();
    assert.deepEqual(batches, [[1], [2]]);
    assert.equal(finished, 2);
  });

  it('keeps every item, in order, never two writes in flight, batches within bounds (random)', () => {
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const bound = 200;
    interface Item {
      readonly id: number;
      readonly size: number;
    }
    const { batches, completions, writer } = harness<Item>(bound, (item) => item.size);
    let pushed = 0;
    const written = (): number => batches.reduce((n, b) => n + b.length, 0);
    /** Items pushed before the pending drain; undefined when none is pending. */
    let drainWants: number | undefined;
    for (let step = 0; step < 20_000; step++) {
      const r = rand(10);
      if (r < 6) {
        writer.push({ id: pushed++, size: 1 + rand(80) });
      } else if (r < 9 && completions.length > 0) {
        completions.shift()?.();
      } else if (r === 9 && drainWants === undefined) {
        drainWants = pushed;
        writer.drain(() => {
          assert.ok(written() >= (drainWants ?? Infinity), 'drained only once every item pushed before was handed to a write');
          drainWants = undefined;
        });
      }
      assert.ok(completions.length <= 1, 'at most one write in flight');
      assert.ok(completions.length === 1 || writer.queued === 0, 'nothing waits while no write is in flight');
    }
    while (completions.length > 0) completions.shift()?.();
    const all = batches.flat();
    assert.deepEqual(
      all.map((item) => item.id),
      Array.from({ length: pushed }, (_, i) => i),
      'every item written once, in push order',
    );
    for (const b of batches) {
      const bytes = b.reduce((s, item) => s + item.size, 0);
      assert.ok(b.length === 1 || bytes <= bound, `a batch of ${b.length} items, ${bytes} bytes, within ${bound}`);
    }
    assert.ok(batches.some((b) => b.length > 2), `${pushed} items in ${batches.length} batches`);
  });
});
