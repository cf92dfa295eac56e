/**
 * etcd's distributed mutex (clientv3/concurrency Mutex, served by v3lock):
 * each waiter puts `<name>/<lease hex>` with its lease; the key with the
 * oldest create revision holds the lock; a waiter waits until every older
 * key under the name is deleted, one at a time, newest first.
 */
import type { ResponseHeader, Out } from '../messages.js';
import type { RangeRouter } from '../router.js';
import { rawEtcdError } from '../errors.js';
import { waitKeyDeleted } from './key-events.js';
import { createRevisionIs, firstCreated, getOp, lastCreatedBefore, putOp, rangeRequest, type LocalClient } from './local-client.js';

/** The waiter key of a session under a lock or election prefix: `<prefix>/<lease in lowercase hex>`. */
export function waiterKey(prefix: Buffer, lease: bigint): Buffer {
  return Buffer.concat([prefix, Buffer.from(lease.toString(16))]);
}

/**
 * Waits until no key under `prefix` has a create revision <= `maxCreateRevision`
 * (clientv3's waitDeletes). Returns the header of the read that found none.
 */
export async function waitOlderDeleted(
  client: LocalClient,
  router: RangeRouter,
  prefix: Buffer,
  maxCreateRevision: number,
  signal: AbortSignal,
): Promise<Out<ResponseHeader> | undefined> {
  for (;;) {
    const resp = await client.range(lastCreatedBefore(prefix, maxCreateRevision));
    const last = resp.kvs?.[0];
    if (last === undefined) return resp.header;
    await waitKeyDeleted(router, Buffer.from(last.key ?? Buffer.alloc(0)), resp.header?.revision ?? 0, signal);
  }
}

/** What a lock acquisition returns: the waiter key and the header to answer with. */
export interface Acquired {
  readonly key: Buffer;
  readonly header: Out<ResponseHeader> | undefined;
}

/**
 * Acquires the lock `name` for `lease` (v3lock Lock). On failure or
 * cancellation while waiting, the waiter key is deleted again.
 */
export async function lock(client: LocalClient, router: RangeRouter, name: Buffer, lease: bigint, signal: AbortSignal): Promise<Acquired> {
  const prefix = Buffer.concat([name, Buffer.from('/')]);
  const key = waiterKey(prefix, lease);
  const owner = getOp(firstCreated(prefix));
  const resp = await client.txn(
    [createRevisionIs(key, 0)],
    [putOp(key, Buffer.alloc(0), lease), owner],
    [getOp(rangeRequest(key)), owner],
  );
  const responses = resp.responses ?? [];
  const myRev = resp.succeeded === true ? (resp.header?.revision ?? 0) : (responses[0]?.response_range?.kvs?.[0]?.create_revision ?? 0);
  const ownerKv = responses[1]?.response_range?.kvs?.[0];
  if (ownerKv === undefined || ownerKv.create_revision === myRev) return { key, header: resp.header };
  try {
    await waitOlderDeleted(client, router, prefix, myRev - 1, signal);
  } catch (err) {
    await client.delete(key).catch(() => undefined);
    throw err;
  }
  // The session's key must still exist (its lease may have expired meanwhile).
  const mine = await client.range(rangeRequest(key));
  if ((mine.kvs ?? []).length === 0) throw rawEtcdError('MUTEX_SESSION_EXPIRED');
  return { key, header: mine.header };
}
