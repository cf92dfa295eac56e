/**
 * A scripted Watch scenario run over raw gRPC against any etcd-compatible
 * server (keyspan's or a real etcd 3.4), returning a transcript of what the
 * server answered: one line per response, with the ids and numbers that
 * must agree between servers (cluster/member ids and raft terms dropped).
 * Each step waits for the responses it expects, so the transcript's order
 * does not depend on timing; within a step, lines are sorted.
 */
import * as grpc from '@grpc/grpc-js';
import type { EtcdMessage } from '../../src/gateway/proto.js';
import { b, client, revOf } from './server-harness.js';
import { createReq, eventText, headerRev, openWatch } from './watch-harness.js';

/** How long a step waits for responses it does not expect (to catch extra ones). */
const QUIET_MS = 400;

/**
 * One response as a transcript line; revisions (header, events, compaction)
 * relative to `base`, the revision before the script's first write, so
 * servers with different histories compare (header revision 0 stays 0).
 */
export function responseLine(r: EtcdMessage, base: number): string {
  const flags = ['created', 'canceled', 'fragment'].filter((f) => r[f] === true);
  const events = ((r['events'] as EtcdMessage[] | undefined) ?? []).map(eventText);
  const parts = [`id=${String(r['watch_id'])}`, `rev=${headerRev(r)}`, ...flags];
  if (r['compact_revision'] !== 0) parts.push(`compact=${String(r['compact_revision'])}`);
  if (r['cancel_reason'] !== '') parts.push(`reason=${String(r['cancel_reason'])}`);
  const rel = (n: string): string => (n === '0' ? '0' : `+${Number(n) - base}`);
  return [...parts, ...events]
    .join(' ')
    .replace(/(\brev=|compact=|@)(\d+)/g, (_m, what: string, n: string) => `${what}${rel(n)}`);
}

/** Runs the scenario against `address`; returns the transcript, one array of lines per step. */
export async function runWatchScript(address: string): Promise<string[][]> {
  const kv = client('etcdserverpb.KV', address);
  const md = new grpc.Metadata();
  md.set('hasleader', 'true');
  const s = openWatch(address, md);
  const out: string[][] = [];
  const base = revOf(await kv.call('Range', { key: b('s/') }));
  const step = async (name: string, expect: number): Promise<void> => {
    const lines: string[] = [];
    for (let i = 0; i < expect; i++) lines.push(responseLine(await s.next(), base));
    const extra = await s.maybeNext(QUIET_MS);
    if (extra !== undefined) lines.push(`UNEXPECTED ${responseLine(extra, base)}`);
    out.push([name, ...lines.sort()]);
  };
  const put = async (k: string, v: string): Promise<number> => revOf(await kv.call('Put', { key: b(k), value: b(v) }));
  try {
    await put('s/a', '1');
    await put('s/a', '2');
    await kv.call('DeleteRange', { key: b('s/a') });
    await put('s/p/x', '1');

    s.write({ progress_request: {} });
    await step('progress on an empty stream', 1);
    s.write(createReq('s/a', { start_revision: base + 1, prev_kv: true }));
    await step('create with history', 2);
    s.write(createReq('s/p/', { range_end: b('s/p0'), watch_id: 5 }));
    s.write(createReq('s/q', { watch_id: 5 }));
    s.write(createReq('s/z', { range_end: b('s/a') }));
    s.write(createReq('', { range_end: Buffer.from([0]), filters: [1] }));
    await step('create prefix, duplicate id, empty range, all keys without deletes', 4);
    s.write({ cancel_request: { watch_id: 42 } });
    await step('cancel of an unknown id', 0);

    await kv.call('Txn', {
      success: [
        { request_put: { key: b('s/p/y'), value: b('y') } },
        { request_put: { key: b('s/a'), value: b('3') } },
        { request_delete_range: { key: b('s/p/x') } },
      ],
    });
    await step('one txn: events by watcher', 3);
    s.write({ progress_request: {} });
    await step('progress with synced watchers', 1);
    s.write({ cancel_request: { watch_id: 5 } });
    await step('cancel', 1);
    const last = await put('s/c', 'c');
    await step('after cancel', 1);
    await kv.call('Compact', { revision: last, physical: true });
    s.write(createReq('s/a', { start_revision: base + 1 }));
    await step('create below the compacted revision', 2);
    s.write(createReq('s/a', { start_revision: last }));
    await step('create at the compacted revision', 1);
    await put('s/a', '4');
    await step('live after compaction', 3);
  } finally {
    s.close();
    kv.close();
  }
  return out;
}
