/**
 * etcd's leader election (clientv3/concurrency Election, served by
 * v3election): candidates put `<name>/<lease hex>` with their value; the
 * key with the oldest create revision is the leader; a candidate waits
 * until every older candidate key is deleted.
 */
import { rawEtcdError } from '../errors.js';
import type { KeyValue, Out, ResponseHeader } from '../messages.js';
import type { RangeRouter } from '../router.js';
import { keyEvents } from './key-events.js';
import type { KeyValue as MvccKeyValue } from '../../shard/mvcc/index.js';
import { createRevisionIs, deleteOp, firstCreated, getOp, prefixEnd, putOp, rangeRequest, type LocalClient } from './local-client.js';
import { waitOlderDeleted, waiterKey } from './mutex.js';

/** etcd's LeaderKey: who leads an election (returned by Campaign, passed to Proclaim and Resign). */
export interface LeaderKey {
  readonly name: Buffer;
  readonly key: Buffer;
  readonly rev: number;
  readonly lease: bigint;
}

/** The election's key prefix: `<name>/`. */
export function electionPrefix(name: Buffer): Buffer {
  return Buffer.concat([name, Buffer.from('/')]);
}

/**
 * Campaigns for `name` with `value` (v3election Campaign): resolves once
 * this candidate leads. A candidate already present with another value
 * proclaims the new one first. Cancelled while waiting, it resigns.
 */
export async function campaign(
  client: LocalClient,
  router: RangeRouter,
  name: Buffer,
  lease: bigint,
  value: Buffer,
  signal: AbortSignal,
): Promise<{ leader: LeaderKey; header: Out<ResponseHeader> | undefined }> {
  const prefix = electionPrefix(name);
  const key = waiterKey(prefix, lease);
  const resp = await client.txn([createRevisionIs(key, 0)], [putOp(key, value, lease)], [getOp(rangeRequest(key))]);
  let leader: LeaderKey = { name, key, rev: resp.header?.revision ?? 0, lease };
  if (resp.succeeded !== true) {
    const kv = resp.responses?.[0]?.response_range?.kvs?.[0];
    leader = { ...leader, rev: kv?.create_revision ?? 0 };
    if (!Buffer.from(kv?.value ?? Buffer.alloc(0)).equals(value)) {
      try {
        await proclaim(client, leader, value);
      } catch (err) {
        await resign(client, leader).catch(() => undefined);
        throw err;
      }
    }
  }
  try {
    await waitOlderDeleted(client, router, prefix, leader.rev - 1, signal);
  } catch (err) {
    if (signal.aborted) await resign(client, leader).catch(() => undefined);
    throw err;
  }
  return { leader, header: resp.header };
}

/** Announces a new value without a new election (v3election Proclaim); "election: not leader" if `leader` no longer leads. */
export async function proclaim(client: LocalClient, leader: LeaderKey, value: Buffer): Promise<Out<ResponseHeader> | undefined> {
  const resp = await client.txn([createRevisionIs(leader.key, leader.rev)], [putOp(leader.key, value, leader.lease)], []);
  if (resp.succeeded !== true) throw rawEtcdError('ELECTION_NOT_LEADER');
  return resp.header;
}

/** Gives up leadership (v3election Resign): deletes the key if it is still this leader's. */
export async function resign(client: LocalClient, leader: LeaderKey): Promise<Out<ResponseHeader> | undefined> {
  const resp = await client.txn([createRevisionIs(leader.key, leader.rev)], [deleteOp(leader.key)], []);
  return resp.header;
}

/** The current leader's key-value (v3election Leader); "election: no leader" when nobody campaigns. */
export async function currentLeader(client: LocalClient, name: Buffer): Promise<{ kv: Out<KeyValue>; header: Out<ResponseHeader> | undefined }> {
  const resp = await client.range(firstCreated(electionPrefix(name)));
  const kv = resp.kvs?.[0];
  if (kv === undefined) throw rawEtcdError('ELECTION_NO_LEADER');
  return { kv, header: resp.header };
}

/**
 * Every leader value of an election as it changes (v3election Observe): the
 * current leader (or, with none, the first candidate put), then each new
 * value it proclaims, then the next leader once its key is deleted. Runs
 * until `signal` aborts.
 */
export async function* observe(
  client: LocalClient,
  router: RangeRouter,
  name: Buffer,
  signal: AbortSignal,
): AsyncGenerator<{ kv: Out<KeyValue>; header: Out<ResponseHeader> }> {
  const prefix = electionPrefix(name);
  for (;;) {
    const resp = await client.range(firstCreated(prefix));
    let kv: Out<KeyValue> | undefined = resp.kvs?.[0];
    let header: Out<ResponseHeader> = { ...resp.header };
    if (kv === undefined) {
      // Wait for the first candidate's put anywhere under the prefix.
      const first = await firstPut(router, prefix, resp.header?.revision ?? 0, signal);
      kv = first;
      header = { ...resp.header, revision: first.mod_revision ?? 0 };
    }
    yield { kv, header };
    const key = Buffer.from(kv.key ?? Buffer.alloc(0));
    let deleted = false;
    for await (const batch of keyEvents(router, key, Buffer.alloc(0), (header.revision ?? 0) + 1, signal)) {
      for (const ev of batch.events) {
        if (ev.type === 'DELETE') {
          deleted = true;
          break;
        }
        yield {
          kv: kvOut(ev.kv),
          header: { ...header, revision: batch.revision },
        };
      }
      if (deleted) break;
    }
  }
}

/** The first key put under `prefix` at or after `fromRevision` (the first PUT event of a prefix watch). */
async function firstPut(router: RangeRouter, prefix: Buffer, fromRevision: number, signal: AbortSignal): Promise<Out<KeyValue>> {
  for await (const batch of keyEvents(router, prefix, prefixEnd(prefix), fromRevision, signal)) {
    const put = batch.events.find((e) => e.type === 'PUT');
    if (put !== undefined) return kvOut(put.kv);
  }
  throw rawEtcdError('ELECTION_NO_LEADER'); // unreachable: keyEvents ends only by throwing
}

function kvOut(kv: MvccKeyValue): Out<KeyValue> {
  return {
    key: Buffer.from(kv.key),
    create_revision: kv.createRevision,
    mod_revision: kv.modRevision,
    version: kv.version,
    value: Buffer.from(kv.value),
    lease: kv.lease,
  };
}
