/**
 * The per-method call counters kept as plain numbers and added to the
 * prom-client counters when the registry is read: every read sees every call
 * counted so far, exactly once, by code; bytes likewise.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { GatewayMetrics } from '../../src/gateway/metrics.js';
import type { GatewayContext } from '../../src/gateway/context.js';

const source = {
  router: { ranges: () => [] },
  member: { id: 1n },
  memberIdOfNode: () => undefined,
  dbSizeBytes: async () => 0,
} as unknown as Pick<GatewayContext, 'router' | 'member' | 'memberIdOfNode' | 'dbSizeBytes'>;

/** Value of the series `name{labels}` in the registry's JSON form (0 when absent). */
async function value(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  assert.ok(metric !== undefined, `${name} is registered`);
  const values = (metric as unknown as { values: { labels: Record<string, string | number>; value: number; metricName?: string }[] }).values;
  const hit = values.find((v) => v.metricName === undefined && Object.entries(labels).every(([k, x]) => v.labels[k] === x));
  return hit?.value ?? 0;
}

describe('gateway method metrics', () => {
  it('every read of the registry includes every call so far, once, by code', async () => {
    const registry = new Registry();
    const metrics = GatewayMetrics.of(registry, source);
    const put = metrics.method('etcdserverpb.KV', 'Put');
    const range = metrics.method('etcdserverpb.KV', 'Range');
    const labels = { grpc_type: 'unary', grpc_service: 'etcdserverpb.KV', grpc_method: 'Put' };

    // Pre-registered zero series, before any call.
    assert.equal(await value(registry, 'grpc_server_started_total', labels), 0);
    assert.equal(await value(registry, 'grpc_server_handled_total', { ...labels, grpc_code: 'OK' }), 0);

    for (let i = 0; i < 5; i++) put.done(put.start(), 0);
    put.done(put.start(), 9); // FailedPrecondition
    put.done(put.start(), 99); // not a gRPC code: counted as Unknown
    range.done(range.start(), 0);
    const started = put.start(); // still running at the first read

    assert.equal(await value(registry, 'grpc_server_started_total', labels), 8);
    assert.equal(await value(registry, 'grpc_server_msg_received_total', labels), 8);
    assert.equal(await value(registry, 'grpc_server_msg_sent_total', labels), 5);
    assert.equal(await value(registry, 'grpc_server_handled_total', { ...labels, grpc_code: 'OK' }), 5);
    assert.equal(await value(registry, 'grpc_server_handled_total', { ...labels, grpc_code: 'FailedPrecondition' }), 1);
    assert.equal(await value(registry, 'grpc_server_handled_total', { ...labels, grpc_code: 'Unknown' }), 1);
    assert.equal(await value(registry, 'grpc_server_started_total', { ...labels, grpc_method: 'Range' }), 1);
    const histogram = (await registry.getMetricsAsJSON()).find((m) => m.name === 'grpc_server_handling_seconds');
    const count = (histogram as unknown as { values: { labels: Record<string, string>; value: number; metricName: string }[] }).values.find(
      (v) => v.metricName === 'grpc_server_handling_seconds_count' && v.labels['grpc_method'] === 'Put',
    );
    assert.equal(count?.value, 7);

    // A second read without calls in between changes nothing; later calls add to the totals.
    assert.equal(await value(registry, 'grpc_server_started_total', labels), 8);
    put.done(started, 0);
    put.done(put.start(), 0);
    assert.equal(await value(registry, 'grpc_server_started_total', labels), 9);
    assert.equal(await value(registry, 'grpc_server_handled_total', { ...labels, grpc_code: 'OK' }), 7);
    assert.equal(await value(registry, 'grpc_server_msg_sent_total', labels), 7);
    assert.equal(await value(registry, 'grpc_server_handled_total', { ...labels, grpc_code: 'FailedPrecondition' }), 1);
  });

  it('counts request and response bytes of a wrapped service definition at read time', async () => {
    const registry = new Registry();
    const metrics = GatewayMetrics.of(registry, source);
    const def = metrics.countBytes({
      Echo: {
        path: '/test.Echo/Echo',
        requestStream: false,
        responseStream: false,
        requestSerialize: (m: unknown) => m as Buffer,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (m: unknown) => Buffer.concat([m as Buffer, m as Buffer]),
        responseDeserialize: (b: Buffer) => b,
      },
    });
    const echo = def['Echo']!;
    echo.requestDeserialize(Buffer.alloc(10));
    echo.requestDeserialize(Buffer.alloc(5));
    echo.responseSerialize(Buffer.alloc(7));
    assert.equal(await value(registry, 'etcd_network_client_grpc_received_bytes_total'), 15);
    assert.equal(await value(registry, 'etcd_network_client_grpc_sent_bytes_total'), 14);
    echo.requestDeserialize(Buffer.alloc(1));
    assert.equal(await value(registry, 'etcd_network_client_grpc_received_bytes_total'), 16);
    assert.equal(await value(registry, 'etcd_network_client_grpc_sent_bytes_total'), 14);
  });
});
