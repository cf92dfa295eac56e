import { test } from 'node:test';
import assert from 'node:assert/strict';
import { median, medianFigures, roundOrder, type OpFigures } from '../../bench/etcd/rounds.js';

test('systems run in the given order, then reversed, alternately', () => {
  const systems = ['etcd1', 'keyspan1', 'etcd3', 'keyspan3'];
  const order = [0, 1, 2, 3].map((r) => roundOrder(systems, r).join(' '));
  assert.deepEqual(order, ['etcd1 keyspan1 etcd3 keyspan3', 'keyspan3 etcd3 keyspan1 etcd1', 'etcd1 keyspan1 etcd3 keyspan3', 'keyspan3 etcd3 keyspan1 etcd1']);
  assert.deepEqual(systems, ['etcd1', 'keyspan1', 'etcd3', 'keyspan3'], 'the input is left as it was');
  // Over an even number of rounds every system's mean position is the same.
  const positions = systems.map((s) => [0, 1].reduce((n, r) => n + roundOrder(systems, r).indexOf(s), 0));
  assert.ok(positions.every((p) => p === positions[0]));
});

test('the median of an odd and an even count, and of none', () => {
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 10]), 3.5);
  assert.equal(median([7]), 7);
  assert.ok(Number.isNaN(median([])));
});

test("a cell's figures over rounds: medians of rates and latencies, requests and errors summed", () => {
  const round = (throughput: number, p99Ms: number, errors: number): OpFigures => ({
    count: 1000,
    errors,
    throughput,
    avgMs: throughput / 1000,
    p50Ms: p99Ms / 4,
    p99Ms,
    p999Ms: p99Ms * 2,
  });
  assert.deepEqual(medianFigures([round(900, 8, 0), round(1500, 4, 2), round(1000, 20, 1)]), {
    count: 3000,
    errors: 3,
    throughput: 1000,
    avgMs: 1,
    p50Ms: 2,
    p99Ms: 8,
    p999Ms: 16,
  });
});
