import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newHistogram, Recorder, summarize } from '../../bench/etcd/histogram.js';
import { planWorkers, splitEvenly } from '../../bench/etcd/runner.js';
import { parseFlags } from '../../bench/etcd/flags.js';
import { pickOp } from '../../bench/etcd/workloads/mixed.js';
import { Budget } from '../../bench/etcd/workloads/common.js';

test('summarize() computes throughput and ordered percentiles in milliseconds', () => {
  const h = newHistogram();
  // 1..1000 µs, once each.
  for (let us = 1; us <= 1000; us++) h.recordValue(us);
  const s = summarize(h, 3, 2);
  assert.equal(s.count, 1000);
  assert.equal(s.errors, 3);
  assert.equal(s.throughput, 500);
  assert.equal(s.minMs, 0.001);
  assert.equal(s.maxMs, 1);
  assert.ok(Math.abs(s.avgMs - 0.5005) < 0.001, `avg ${s.avgMs}`);
  // 3 significant digits: percentiles within 0.1 %.
  assert.ok(Math.abs(s.p50Ms - 0.5) <= 0.001, `p50 ${s.p50Ms}`);
  assert.ok(Math.abs(s.p90Ms - 0.9) <= 0.001, `p90 ${s.p90Ms}`);
  assert.ok(Math.abs(s.p99Ms - 0.99) <= 0.001, `p99 ${s.p99Ms}`);
  assert.ok(Math.abs(s.p999Ms - 0.999) <= 0.001, `p999 ${s.p999Ms}`);
  const ordered = [s.minMs, s.p50Ms, s.p90Ms, s.p99Ms, s.p999Ms, s.maxMs];
  assert.deepEqual([...ordered].sort((a, b) => a - b), ordered);
});

test('summarize() of no samples is all zeros but keeps the error count', () => {
  const s = summarize(undefined, 5, 1);
  assert.equal(s.count, 0);
  assert.equal(s.errors, 5);
  assert.equal(s.throughput, 0);
  assert.equal(s.p99Ms, 0);
});

test('Recorder.merge() adds histograms, errors and counters shipped from workers', () => {
  const a = new Recorder();
  const b = new Recorder();
  for (let i = 0; i < 100; i++) a.record('put', 100);
  for (let i = 0; i < 100; i++) b.record('put', 10_000);
  b.error('put', new Error('boom'));
  b.count('conflicts', 4);
  const total = new Recorder();
  total.merge(a.toWire());
  total.merge(JSON.parse(JSON.stringify(b.toWire())));
  const s = summarize(total.histograms.get('put'), total.errors.get('put') ?? 0, 1);
  assert.equal(s.count, 200);
  assert.equal(s.errors, 1);
  assert.equal(s.minMs, 0.1);
  assert.ok(Math.abs(s.maxMs - 10) < 0.01);
  assert.equal(total.counters.get('conflicts'), 4);
  assert.deepEqual(total.errorSamples, ['put: boom']);
});

test('Recorder.record() clamps latencies into the histogram range', () => {
  const r = new Recorder();
  r.record('x', 0);
  r.record('x', 1e12);
  const s = summarize(r.histograms.get('x'), 0, 1);
  assert.equal(s.count, 2);
  assert.equal(s.minMs, 0.001);
  assert.ok(s.maxMs <= 60_100);
});

test('splitEvenly() and planWorkers() share clients, conns and requests without loss', () => {
  assert.deepEqual(splitEvenly(10, 3), [4, 3, 3]);
  assert.deepEqual(splitEvenly(2, 2), [1, 1]);
  const opts = parseFlags(['put', '--total', '1001', '--conns', '10', '--clients', '100', '--workers', '3'], () => 1);
  const plans = planWorkers(opts);
  assert.deepEqual(plans.map((p) => p.clients), [34, 33, 33]);
  assert.deepEqual(plans.map((p) => p.conns), [4, 3, 3]);
  assert.deepEqual(plans.map((p) => p.connOffset), [0, 4, 7]);
  assert.deepEqual(plans.map((p) => p.total), [334, 334, 333]);
  assert.deepEqual(plans.map((p) => p.keyStart), [0, 334, 668]);
  const watch = planWorkers(parseFlags(['watch-latency', '--total', '50', '--conns', '2', '--clients', '2', '--workers', '2'], () => 1));
  assert.deepEqual(watch.map((p) => p.total), [50, 0]);
});

test('Budget bounds a run by its total', () => {
  const b = new Budget(3, undefined);
  assert.deepEqual([b.take(), b.take(), b.take(), b.take()], [true, true, true, false]);
  assert.equal(b.taken, 3);
  const d = new Budget(undefined, 0.001);
  d.start(Date.now() - 10);
  assert.equal(d.take(), false);
});

test('pickOp() follows the mixed workload weights', () => {
  assert.equal(pickOp(0), 'list');
  assert.equal(pickOp(0.1), 'get');
  assert.equal(pickOp(0.5), 'update');
  assert.equal(pickOp(0.99), 'keepalive');
});
