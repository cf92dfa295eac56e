/**
 * `list`: paged lists of one prefix, as a Kubernetes API server lists a
 * resource with `limit` and `continue`. Each request is one page of
 * {@link LIST_LIMIT} keys; a client's first page starts at the prefix and
 * reads at the current revision, every later page starts just after the last
 * key of the page before and reads at the first page's revision, until a
 * page reports no more keys and the client starts over. Every page but the
 * first asks for the count of the rest of the prefix from a new start key.
 * Setup writes every key of the key space under the prefix first.
 */
import { prefixEnd } from '../keys.js';
import { LIST_LIMIT } from './mixed.js';
import type { EtcdMessage } from '../../../src/gateway/proto.js';
import { connOf, populate, runClients, timed, type Workload } from './common.js';

/** Key prefix of the listed objects. */
export const LIST_PREFIX = '/registry/list/';

/** Where a client's next page starts, and the revision its list reads at (0: the first page). */
interface Cursor {
  from: Buffer;
  revision: number;
}

/** The list workload. */
export const listWorkload: Workload = {
  setup: (conn, opts) => populate(conn, opts, LIST_PREFIX),
  async prepare(ctx) {
    const prefix = Buffer.from(LIST_PREFIX);
    const rangeEnd = prefixEnd(prefix);
    const cursors: Cursor[] = Array.from({ length: ctx.plan.clients }, () => ({ from: prefix, revision: 0 }));
    return () =>
      runClients(ctx, async (c) => {
        const cursor = cursors[c] as Cursor;
        const req = { key: cursor.from, range_end: rangeEnd, limit: LIST_LIMIT, ...(cursor.revision > 0 ? { revision: cursor.revision } : {}) };
        const res = await timed(ctx.recorder, 'list-page', () => connOf(ctx, c).unary('etcdserverpb.KV', 'Range', req));
        const kvs = (res?.['kvs'] ?? []) as { key: Buffer }[];
        const last = kvs[kvs.length - 1];
        if (res === undefined || res['more'] !== true || last === undefined) {
          cursor.from = prefix;
          cursor.revision = 0;
          return;
        }
        cursor.from = Buffer.concat([last.key, Buffer.of(0)]);
        if (cursor.revision === 0) cursor.revision = ((res['header'] as EtcdMessage | undefined)?.['revision'] as number | undefined) ?? 0;
      });
  },
};
