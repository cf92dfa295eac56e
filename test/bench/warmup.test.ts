import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFlags, WORKLOADS } from '../../bench/etcd/flags.js';
import { WARMUP } from '../../bench/etcd/warmup.js';

test('every warm-up run is a valid CLI invocation, bounded by requests or seconds', () => {
  for (const w of WARMUP) {
    const o = parseFlags([w.workload, ...w.args, '--json'], () => 1);
    assert.ok(o.total !== undefined || o.durationSec !== undefined, `${w.workload} is bounded`);
    assert.ok((o.total ?? 0) <= 10_000 && (o.durationSec ?? 0) <= 10, `${w.workload} stays short`);
  }
});

test('the warm-up runs every workload, and the single-client path', () => {
  for (const name of WORKLOADS) assert.ok(WARMUP.some((w) => w.workload === name), name);
  assert.ok(WARMUP.some((w) => parseFlags([w.workload, ...w.args], () => 1).clients === 1));
});

test('warm-up keys of the keyed cases differ in size from the measured 8-byte keys', () => {
  for (const w of WARMUP) {
    if (w.workload !== 'put' && w.workload !== 'range' && w.workload !== 'txn-put') continue;
    assert.notEqual(parseFlags([w.workload, ...w.args], () => 1).keySize, 8, w.workload);
  }
});
