/**
 * `watch-latency`: every client holds one Watch stream on the benchmark's key
 * prefix; one putter (on worker 0) puts keys of the key space at --put-rate,
 * each value carrying its send time, and every watcher records each event's
 * delivery latency (`watch-event`). Puts are timed too (`put`). The putter
 * ends with a sentinel key that closes every watch; a deadline bounds the wait
 * if it is lost. (etcd's `benchmark watch-latency` measures the same thing
 * with --put-rate, --streams and --watchers-per-stream.)
 */
import { makeValue, nowMs, prefixEnd, timestampedValue } from '../keys.js';
import { connOf, timed, workerKeys, type Workload } from './common.js';
import { openWatch, type OpenWatch } from './watch.js';

/** Key prefix of the watch-latency keys. */
export const WATCH_PREFIX = 'wl/';
/** Put after the last timed put; every watcher stops at it. */
export const WATCH_SENTINEL = Buffer.from(`${WATCH_PREFIX}~end`);
/** How long watchers wait for events after the putter is expected to be done. */
const WATCH_DRAIN_MS = 30_000;
/** How many times longer than planned the puts may take before watchers stop waiting. */
const PUT_SLACK = 4;

/** The watch-latency workload. */
export const watchLatencyWorkload: Workload = {
  async prepare(ctx) {
    const prefix = Buffer.from(WATCH_PREFIX);
    const rangeEnd = prefixEnd(prefix);
    const watches: OpenWatch[] = [];
    for (let c = 0; c < ctx.plan.clients; c++) {
      watches.push(
        await openWatch({ conn: connOf(ctx, c), key: prefix, rangeEnd, recorder: ctx.recorder, op: 'watch-event', until: WATCH_SENTINEL }),
      );
    }
    const keys = workerKeys(ctx, WATCH_PREFIX);
    const isPutter = ctx.plan.workerIndex === 0;
    const rate = ctx.opts.putRate;
    return async () => {
      const t0 = nowMs();
      // Bound the wait for events: the expected put time (or the duration) plus a drain. A
      // loaded putter falls behind --put-rate (its worker also decodes events), hence the slack.
      const expectedMs =
        ctx.opts.durationSec !== undefined ? ctx.opts.durationSec * 1000 : ((ctx.opts.total ?? 0) / Math.max(rate, 1)) * 1000;
      const drain = setTimeout(() => watches.forEach((w) => w.close()), expectedMs * PUT_SLACK + WATCH_DRAIN_MS);
      if (isPutter) {
        const conn = connOf(ctx, 0);
        let i = 0;
        while (ctx.budget.take()) {
          if (rate > 0) {
            const due = t0 + (i * 1000) / rate;
            const wait = due - nowMs();
            if (wait > 1) await new Promise((r) => setTimeout(r, wait));
          }
          i++;
          const key = keys.next();
          await timed(ctx.recorder, 'put', () => conn.unary('etcdserverpb.KV', 'Put', { key, value: timestampedValue(ctx.opts.valSize, nowMs()) }));
        }
        await conn.unary('etcdserverpb.KV', 'Put', { key: WATCH_SENTINEL, value: makeValue(8) });
      }
      await Promise.all(watches.map((w) => w.finished));
      clearTimeout(drain);
    };
  },
};
