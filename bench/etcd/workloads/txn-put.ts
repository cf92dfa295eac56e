/**
 * `txn-put`: an optimistic update as Kubernetes' GuaranteedUpdate does it — a
 * Txn that compares the key's mod_revision with the one the client last saw
 * and puts on success, or reads the key on failure. A failed compare counts
 * as a conflict (`txn-conflicts`); the next attempt uses the revision that
 * came back; revisions are learnt with one keys-only list before the timed
 * part, as a Kubernetes watch cache does. (etcd's own `txn-put` puts without a compare.)
 */
import type { EtcdMessage } from '../../../src/gateway/proto.js';
import { makeValue } from '../keys.js';
import { connOf, learnRevisions, populate, runClients, timed, workerKeys, type WorkloadContext, type Workload } from './common.js';

/** Compare.CompareResult.EQUAL and Compare.CompareTarget.MOD in rpc.proto. */
const COMPARE_EQUAL = 0;
const TARGET_MOD = 2;

/**
 * One compare-and-put on `key`, given the mod_revision last seen (0 when
 * unknown, which fails against an existing key and so learns it). Returns
 * the key's mod_revision afterwards, or undefined when the request failed.
 */
export async function compareAndPut(
  ctx: WorkloadContext,
  client: number,
  op: string,
  key: Buffer,
  seenModRevision: number,
  value: Buffer,
): Promise<number | undefined> {
  const req: EtcdMessage = {
    compare: [{ result: COMPARE_EQUAL, target: TARGET_MOD, key, mod_revision: seenModRevision }],
    success: [{ request_put: { key, value } }],
    failure: [{ request_range: { key } }],
  };
  const res = await timed(ctx.recorder, op, () => connOf(ctx, client).unary('etcdserverpb.KV', 'Txn', req));
  if (res === undefined) return undefined;
  if (res['succeeded'] === true) return (res['header'] as EtcdMessage | undefined)?.['revision'] as number | undefined;
  ctx.recorder.count(`${op}-conflicts`);
  const responses = res['responses'] as EtcdMessage[];
  const range = responses[0]?.['response_range'] as EtcdMessage | undefined;
  const kv = (range?.['kvs'] as EtcdMessage[] | undefined)?.[0];
  return (kv?.['mod_revision'] as number | undefined) ?? 0;
}

/** The txn-put workload. */
export const txnPutWorkload: Workload = {
  setup: (conn, opts) => populate(conn, opts, ''),
  async prepare(ctx) {
    const keys = workerKeys(ctx);
    const value = makeValue(ctx.opts.valSize);
    // Last mod_revision seen per key index; at most key-space-size entries.
    const seen = await learnRevisions(connOf(ctx, 0), '', keys, ctx.opts.keySpaceSize);
    return () =>
      runClients(ctx, async (c) => {
        const i = keys.nextIndex();
        const rev = await compareAndPut(ctx, c, 'txn-put', keys.keyOf(i), seen.get(i) ?? 0, value);
        if (rev !== undefined) seen.set(i, rev);
      });
  },
};
