/**
 * Server-side waiting on key changes for the Lock and Election services:
 * the events of one key from a revision on, read from the local replica's
 * committed history and woken by its revision notifications. This is what
 * clientv3's concurrency package does with a Watch; doing it in the gateway
 * keeps those services independent of a client connection.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { MvccEvent } from '../../shard/mvcc/index.js';
import { CompactedError } from '../../shard/mvcc/index.js';
import { EtcdError } from '../errors.js';
import type { RangeRouter } from '../router.js';

/**
 * How often a waiter re-reads history even without a revision notification:
 * a safety net for a replica replaced under it (re-routing), never the
 * normal wake-up.
 */
const KEY_EVENTS_POLL_MS = 1_000;

/** A batch of one key's events, all of revisions <= `revision`. */
export interface KeyEventBatch {
  readonly events: readonly MvccEvent[];
  /** The revision the key's history has been read up to. */
  readonly revision: number;
}

/**
 * The events of `[key, rangeEnd)` (`rangeEnd` empty: the key alone) with
 * revision >= `fromRevision`, in order, as they are applied on the replica
 * that holds the span. Ends when `signal` aborts
 * (throwing its reason as etcd's "request canceled"); throws etcd's
 * compacted error when the start of the history is gone.
 */
export async function* keyEvents(
  router: RangeRouter,
  key: Buffer,
  rangeEnd: Buffer,
  fromRevision: number,
  signal: AbortSignal,
): AsyncGenerator<KeyEventBatch> {
  let next = fromRevision;
  const aborted = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  for (;;) {
    if (signal.aborted) throw EtcdError.of('CANCELED');
    const { replica } = router.route(key, rangeEnd);
    let wake!: () => void;
    const woken = new Promise<void>((resolve) => (wake = resolve));
    const unsubscribe = replica.onRevision(() => wake());
    try {
      const current = replica.currentRevision;
      while (next <= current) {
        let page;
        try {
          page = await replica.changes({ key, ...(rangeEnd.length > 0 ? { rangeEnd } : {}), startRevision: next, endRevision: current });
        } catch (err) {
          if (err instanceof CompactedError) throw EtcdError.of('COMPACTED', { cause: err });
          throw err;
        }
        next = page.nextRevision;
        if (page.events.length > 0) yield { events: page.events, revision: Math.min(current, next - 1) };
        if (page.done) break;
      }
      next = Math.max(next, current + 1);
      await Promise.race([woken, aborted, sleep(KEY_EVENTS_POLL_MS, undefined, { ref: false })]);
    } finally {
      unsubscribe();
    }
  }
}

/** Resolves once `key` is deleted at a revision >= `fromRevision` (clientv3's waitDelete). */
export async function waitKeyDeleted(router: RangeRouter, key: Buffer, fromRevision: number, signal: AbortSignal): Promise<void> {
  for await (const batch of keyEvents(router, key, Buffer.alloc(0), fromRevision, signal)) {
    if (batch.events.some((e) => e.type === 'DELETE')) return;
  }
}
