/**
 * A histogram whose series are held by their observers renders exactly as prom-client's own
 * Histogram with the same observations, in both the text exposition and the
 * JSON form, shows only series that were observed, and resets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Histogram, Registry } from 'prom-client';
import { SeriesHistogram } from '../../src/metrics/histogram.js';

const NAME = 'grpc_server_handling_seconds';
const HELP = 'Histogram of response latency.';
const PUT = { grpc_type: 'unary', grpc_service: 'etcdserverpb.KV', grpc_method: 'Put' };
const RANGE = { ...PUT, grpc_method: 'Range' };
const TXN = { ...PUT, grpc_method: 'Txn' };

/** The JSON form's series (labels, value, name; prom-client adds empty exemplar fields, which carry nothing here). */
async function jsonValues(registry: Registry): Promise<unknown[]> {
  const [metric] = await registry.getMetricsAsJSON();
  const values = (metric as unknown as { values: { labels: unknown; value: number; metricName: string }[] }).values;
  return values.map(({ labels, value, metricName }) => ({ labels, value, metricName }));
}

function pair(): { ours: Registry; theirs: Registry; call: SeriesHistogram; reference: Histogram } {
  const ours = new Registry();
  const theirs = new Registry();
  const call = new SeriesHistogram(NAME, HELP, ours);
  const reference = new Histogram({ name: NAME, help: HELP, labelNames: ['grpc_type', 'grpc_service', 'grpc_method'], registers: [theirs] });
  return { ours, theirs, call, reference };
}

test('the exposition equals prom-client Histogram for the same observations', async () => {
  const { ours, theirs, call, reference } = pair();
  const put = call.series(PUT);
  const range = call.series(RANGE);
  call.series(TXN); // never observed: absent, as prom-client's unobserved label sets are
  // Every bucket edge, values between them, above the last bound, and zero.
  const values = [0, 0.001, 0.005, 0.0051, 0.01, 0.02, 0.025, 0.3, 1, 2.5, 4.9, 10, 10.5, 99];
  for (const v of values) {
    put.observe(v);
    reference.observe(PUT, v);
  }
  range.observe(0.007);
  reference.observe(RANGE, 0.007);
  assert.equal(await ours.metrics(), await theirs.metrics());
  assert.deepEqual(await jsonValues(ours), await jsonValues(theirs));
});

test('a reset zeroes every series, and later observations count from zero', async () => {
  const { ours, theirs, call, reference } = pair();
  const put = call.series(PUT);
  put.observe(0.2);
  reference.observe(PUT, 0.2);
  ours.resetMetrics();
  theirs.resetMetrics();
  assert.equal(await ours.metrics(), await theirs.metrics());
  put.observe(0.03);
  reference.observe(PUT, 0.03);
  assert.equal(await ours.metrics(), await theirs.metrics());
  assert.match(await ours.metrics(), /grpc_server_handling_seconds_count\{grpc_type="unary",grpc_service="etcdserverpb.KV",grpc_method="Put"\} 1\n?/);
});

test('an unlabelled series with the registry\'s default labels and custom buckets renders as prom-client\'s', async () => {
  const ours = new Registry();
  const theirs = new Registry();
  for (const r of [ours, theirs]) r.setDefaultLabels({ node: '3' });
  const buckets = Array.from({ length: 14 }, (_, i) => 0.001 * 2 ** i);
  const series = new SeriesHistogram('etcd_disk_wal_fsync_duration_seconds', HELP, ours, buckets).series({});
  const reference = new Histogram({ name: 'etcd_disk_wal_fsync_duration_seconds', help: HELP, buckets, registers: [theirs] });
  assert.equal(await ours.metrics(), await theirs.metrics(), 'the unlabelled series exists before any observation');
  for (const v of [0.0004, 0.001, 0.0031, 0.9, 20]) {
    series.observe(v);
    reference.observe(v);
  }
  assert.equal(await ours.metrics(), await theirs.metrics());
});
