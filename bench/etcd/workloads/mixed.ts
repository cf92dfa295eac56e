/**
 * `mixed`: a Kubernetes-like API server load on one resource prefix. Every
 * conn holds one watch on the prefix (as an API server's watch cache does)
 * and one lease kept alive over a LeaseKeepAlive stream; every client loops
 * over a weighted mix of operations:
 *
 * - `list` (5 %): Range over the prefix, limit {@link LIST_LIMIT}, linearizable;
 * - `get` (10 %): Range of one key, linearizable;
 * - `update` (80 %): Txn comparing mod_revision, then Put (GuaranteedUpdate);
 *   failed compares count as `update-conflicts`;
 * - `keepalive` (5 %): one LeaseKeepAlive on the conn's lease.
 *
 * Updates carry their send time, so the watchers record event delivery
 * latency (`watch-event`) under load; after the last update the watches
 * drain until they see a sentinel key. Setup writes every object first.
 */
import { StreamPinger } from '../client.js';
import { makeValue, prefixEnd, seededRandom, timestampedValue, nowMs } from '../keys.js';
import { connOf, learnRevisions, populate, runClients, timed, workerKeys, type Workload } from './common.js';
import { BENCH_LEASE_TTL_SEC } from './lease-keepalive.js';
import { compareAndPut } from './txn-put.js';
import { openWatch, type OpenWatch } from './watch.js';

/** Key prefix of the objects. */
export const MIXED_PREFIX = '/registry/bench/';
/** How long watches may take to deliver the events of the run after it ends. */
const WATCH_DRAIN_MS = 30_000;
/** Page size of a list, as Kubernetes' default paging. */
export const LIST_LIMIT = 500;

/** The operation mix: cumulative thresholds of a uniform draw in [0, 1). */
export const MIX: ReadonlyArray<readonly [op: 'list' | 'get' | 'update' | 'keepalive', upTo: number]> = [
  ['list', 0.05],
  ['get', 0.15],
  ['update', 0.95],
  ['keepalive', 1],
];

/** The operation a draw `r` in [0, 1) selects. */
export function pickOp(r: number): 'list' | 'get' | 'update' | 'keepalive' {
  for (const [op, upTo] of MIX) if (r < upTo) return op;
  return 'keepalive';
}

/** The mixed workload. */
export const mixedWorkload: Workload = {
  setup: (conn, opts) => populate(conn, opts, MIXED_PREFIX, makeValue(opts.valSize)),
  async prepare(ctx) {
    const prefix = Buffer.from(MIXED_PREFIX);
    const rangeEnd = prefixEnd(prefix);
    const watches: OpenWatch[] = [];
    const leases: bigint[] = [];
    const pingers: StreamPinger[] = [];
    // Put after this worker's last update: once a watch has seen it, it has seen every update of this worker.
    const sentinel = Buffer.from(`${MIXED_PREFIX}~end-${ctx.plan.workerIndex}`);
    for (const conn of ctx.conns) {
      watches.push(await openWatch({ conn, key: prefix, rangeEnd, recorder: ctx.recorder, op: 'watch-event', until: sentinel }));
      const res = await conn.unary('etcdserverpb.Lease', 'LeaseGrant', { TTL: BENCH_LEASE_TTL_SEC });
      leases.push(res['ID'] as bigint);
      pingers.push(new StreamPinger(conn.bidi('etcdserverpb.Lease', 'LeaseKeepAlive')));
    }
    const keys = workerKeys(ctx, MIXED_PREFIX);
    const random = seededRandom((ctx.opts.seed ^ 0x5bd1e995 ^ ctx.plan.workerIndex) >>> 0);
    const seen = await learnRevisions(connOf(ctx, 0), MIXED_PREFIX, keys, ctx.opts.keySpaceSize);
    return async () => {
      await runClients(ctx, async (c) => {
        const conn = connOf(ctx, c);
        const op = pickOp(random());
        switch (op) {
          case 'list':
            await timed(ctx.recorder, 'list', () => conn.unary('etcdserverpb.KV', 'Range', { key: prefix, range_end: rangeEnd, limit: LIST_LIMIT }));
            return;
          case 'get':
            await timed(ctx.recorder, 'get', () => conn.unary('etcdserverpb.KV', 'Range', { key: keys.next() }));
            return;
          case 'update': {
            const i = keys.nextIndex();
            const rev = await compareAndPut(ctx, c, 'update', keys.keyOf(i), seen.get(i) ?? 0, timestampedValue(ctx.opts.valSize, nowMs()));
            if (rev !== undefined) seen.set(i, rev);
            return;
          }
          case 'keepalive': {
            const k = c % ctx.conns.length;
            await timed(ctx.recorder, 'keepalive', () => (pingers[k] as StreamPinger).ping({ ID: leases[k] as bigint }));
            return;
          }
        }
      });
      // Let the watches drain (bounded): events still queued are part of the latency distribution.
      await connOf(ctx, 0).unary('etcdserverpb.KV', 'Put', { key: sentinel, value: makeValue(8) });
      let drainTimer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(watches.map((w) => w.finished)),
        new Promise((r) => (drainTimer = setTimeout(r, WATCH_DRAIN_MS))),
      ]);
      clearTimeout(drainTimer);
      for (const w of watches) w.close();
      for (const p of pingers) p.close();
      await Promise.allSettled(leases.map((ID, k) => (ctx.conns[k] ?? connOf(ctx, 0)).unary('etcdserverpb.Lease', 'LeaseRevoke', { ID })));
    };
  },
};
