/**
 * `lease-keepalive`: each client grants one lease (untimed), then renews it
 * over a LeaseKeepAlive stream of its own, one keep-alive in flight at a time
 * (etcd's `benchmark lease-keepalive`). Leases are revoked afterwards.
 */
import type { EtcdMessage } from '../../../src/gateway/proto.js';
import { StreamPinger } from '../client.js';
import { connOf, runClients, timed, type Workload } from './common.js';

/** TTL of the benchmark's leases: long enough to outlive setup, short enough to clean up after a crash. */
export const BENCH_LEASE_TTL_SEC = 60;

/** The lease-keepalive workload. */
export const leaseKeepaliveWorkload: Workload = {
  async prepare(ctx) {
    const leases: bigint[] = [];
    const pingers: StreamPinger[] = [];
    for (let c = 0; c < ctx.plan.clients; c++) {
      const conn = connOf(ctx, c);
      const res = await conn.unary('etcdserverpb.Lease', 'LeaseGrant', { TTL: BENCH_LEASE_TTL_SEC });
      leases.push(res['ID'] as bigint);
      pingers.push(new StreamPinger(conn.bidi('etcdserverpb.Lease', 'LeaseKeepAlive')));
    }
    return async () => {
      await runClients(ctx, async (c) => {
        const req: EtcdMessage = { ID: leases[c] as bigint };
        await timed(ctx.recorder, 'keepalive', () => (pingers[c] as StreamPinger).ping(req));
      });
      for (const p of pingers) p.close();
      await Promise.allSettled(leases.map((ID, c) => connOf(ctx, c).unary('etcdserverpb.Lease', 'LeaseRevoke', { ID })));
    };
  },
};
