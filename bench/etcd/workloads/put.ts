/** `put`: each client puts keys from the key space, one request at a time (etcd's `benchmark put`). */
import { makeValue } from '../keys.js';
import { connOf, runClients, timed, workerKeys, type Workload } from './common.js';

/** The put workload. */
export const putWorkload: Workload = {
  async prepare(ctx) {
    const keys = workerKeys(ctx);
    const value = makeValue(ctx.opts.valSize);
    return () =>
      runClients(ctx, async (c) => {
        const key = keys.next();
        await timed(ctx.recorder, 'put', () => connOf(ctx, c).unary('etcdserverpb.KV', 'Put', { key, value }));
      });
  },
};
