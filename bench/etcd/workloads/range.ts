/**
 * `range`: each client reads one key of the key space at a time, linearizable
 * or serializable (etcd's `benchmark range KEY --consistency l|s`; with the
 * default key space of 1 it reads a single key, as the published figures do).
 * Setup writes every key of the key space first, so reads find a value.
 */
import { connOf, populate, runClients, timed, workerKeys, type Workload } from './common.js';

/** The range workload. */
export const rangeWorkload: Workload = {
  setup: (conn, opts) => populate(conn, opts, ''),
  async prepare(ctx) {
    const keys = workerKeys(ctx);
    const serializable = ctx.opts.consistency === 's';
    const op = serializable ? 'range-s' : 'range-l';
    return () =>
      runClients(ctx, async (c) => {
        const key = keys.next();
        await timed(ctx.recorder, op, () => connOf(ctx, c).unary('etcdserverpb.KV', 'Range', { key, serializable }));
      });
  },
};
