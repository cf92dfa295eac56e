/**
 * etcdserverpb.Watch end to end (raw grpc-js client → EtcdServer → the
 * watch hub of range 1 → the replica's applied history): watcher IDs and
 * reply order, history replay, compaction, prev_kv, filters, key spans,
 * revision atomicity, fragments, progress requests, a slow reader that
 * falls back to history, and the JSON gateway's /v3/watch.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { Embedded } from '../../src/gateway/embedded.js';
import type { EtcdMessage } from '../../src/gateway/proto.js';
import { b, client, revOf, startTestServer, type EtcdTestClient } from './server-harness.js';
import { createReq, eventsText, headerRev, openPausableWatch, openWatch, type TestWatchStream } from './watch-harness.js';

/** Bound on waiting for a condition polled over HTTP. */
const POLL_TIMEOUT_MS = 20_000;
/** How long a test waits to be sure a reply does NOT come. */
const QUIET_MS = 300;

describe('Watch service', () => {
  let srv: Embedded;
  let kv: EtcdTestClient;
  let addr: string;
  const streams: TestWatchStream[] = [];

  before(async () => {
    srv = await startTestServer();
    addr = srv.server.addresses[0] ?? '';
    kv = client('etcdserverpb.KV', addr);
  });
  after(async () => {
    for (const s of streams) s.close();
    kv.close();
    await srv.close();
  });

  const watch = (): TestWatchStream => {
    const s = openWatch(addr);
    streams.push(s);
    return s;
  };
  const put = async (key: string, value: string): Promise<number> => revOf(await kv.call('Put', { key: b(key), value: b(value) }));
  const del = async (key: string, extra: EtcdMessage = {}): Promise<number> => revOf(await kv.call('DeleteRange', { key: b(key), ...extra }));
  const current = async (): Promise<number> => revOf(await kv.call('Range', { key: b('nothing') }));

  it('creates several watchers on one stream, replies in request order, cancels them', async () => {
    const s = watch();
    const rev = await current();
    s.write(createReq('ids/a'));
    s.write(createReq('ids/b', { watch_id: 7 }));
    s.write(createReq('ids/c'));
    s.write(createReq('ids/d', { watch_id: 7 }));
    s.write(createReq('ids/e'));
    const created = [await s.next(), await s.next(), await s.next(), await s.next(), await s.next()];
    assert.deepEqual(
      created.map((r) => [r['watch_id'], r['created'], r['canceled'], r['cancel_reason']]),
      [
        [0, true, false, ''],
        [7, true, false, ''],
        [1, true, false, ''],
        [-1, true, true, 'mvcc: duplicate watch ID provided on the WatchStream'],
        [2, true, false, ''],
      ],
    );
    for (const r of created) assert.equal(headerRev(r), rev, 'a created reply carries the current revision');
    const r1 = await put('ids/b', '1');
    const ev = await s.next();
    assert.equal(ev['watch_id'], 7);
    assert.deepEqual(eventsText(ev), [`PUT ids/b=1@${r1}`]);
    assert.equal(headerRev(ev), r1);

    s.write({ cancel_request: { watch_id: 7 } });
    const c = await s.next();
    assert.deepEqual([c['watch_id'], c['canceled'], c['created']], [7, true, false]);
    s.write({ cancel_request: { watch_id: 99 } });
    assert.equal(await s.maybeNext(QUIET_MS), undefined, 'canceling an unknown watcher gets no reply');
    await put('ids/b', '2');
    const r3 = await put('ids/a', '3');
    const ev2 = await s.next();
    assert.deepEqual([ev2['watch_id'], eventsText(ev2)], [0, [`PUT ids/a=3@${r3}`]], 'the canceled watcher got nothing');
    // A freed client ID can be used again; automatic IDs go on from the counter.
    s.write(createReq('ids/b', { watch_id: 7 }));
    s.write(createReq('ids/f'));
    assert.deepEqual([(await s.next())['watch_id'], (await s.next())['watch_id']], [7, 3]);
  });

  it('replays history from start_revision, then goes on live', async () => {
    const r1 = await put('hist/k', 'v1');
    const r2 = await put('hist/k', 'v2');
    const r3 = await del('hist/k');
    const s = watch();
    s.write(createReq('hist/k', { start_revision: r1 }));
    const created = await s.next();
    assert.equal(created['created'], true);
    const seen: string[] = [];
    while (seen.length < 3) seen.push(...eventsText(await s.next()));
    assert.deepEqual(seen, [`PUT hist/k=v1@${r1}`, `PUT hist/k=v2@${r2}`, `DELETE hist/k@${r3}`]);
    const r4 = await put('hist/k', 'v4');
    assert.deepEqual(eventsText(await s.next()), [`PUT hist/k=v4@${r4}`]);
  });

  it('watches from a future revision: nothing until it is reached', async () => {
    const now = await current();
    const s = watch();
    s.write(createReq('fut/k', { start_revision: now + 3 }));
    assert.equal((await s.next())['created'], true);
    await put('fut/k', 'a'); // now+1
    await put('fut/k', 'b'); // now+2
    const r3 = await put('fut/k', 'c');
    assert.equal(r3, now + 3);
    assert.deepEqual(eventsText(await s.next()), [`PUT fut/k=c@${r3}`]);
  });

  it('answers a compacted start revision with created, then canceled with compact_revision', async () => {
    const r1 = await put('comp/k', '1');
    const r2 = await put('comp/k', '2');
    await kv.call('Compact', { revision: r2, physical: true });
    const s = watch();
    s.write(createReq('comp/k', { start_revision: r1 }));
    const created = await s.next();
    assert.deepEqual([created['created'], created['canceled'], created['watch_id']], [true, false, 0]);
    const canceled = await s.next();
    assert.deepEqual(
      [canceled['watch_id'], canceled['canceled'], canceled['compact_revision'], canceled['created'], headerRev(canceled)],
      [0, true, r2, false, 0],
    );
    assert.deepEqual(eventsText(canceled), []);
    // Exactly the compacted revision still works.
    s.write(createReq('comp/k', { start_revision: r2 }));
    assert.equal((await s.next())['created'], true);
    assert.deepEqual(eventsText(await s.next()), [`PUT comp/k=2@${r2}`]);
  });

  it('sends prev_kv when asked and applies NOPUT / NODELETE filters', async () => {
    const s = watch();
    s.write(createReq('pf/k', { prev_kv: true }));
    s.write(createReq('pf/k', { filters: [0] })); // NOPUT
    s.write(createReq('pf/k', { filters: [1] })); // NODELETE
    for (let i = 0; i < 3; i++) assert.equal((await s.next())['created'], true);
    const p1 = await put('pf/k', 'a');
    const p2 = await put('pf/k', 'b');
    const d3 = await del('pf/k');
    const got = new Map<number, string[]>();
    while ([...got.values()].reduce((a, l) => a + l.length, 0) < 6) {
      const r = await s.next();
      const id = r['watch_id'] as number;
      got.set(id, [...(got.get(id) ?? []), ...eventsText(r)]);
    }
    assert.deepEqual(got.get(0), [`PUT pf/k=a@${p1}`, `PUT pf/k=b@${p2} (prev=a@${p1})`, `DELETE pf/k@${d3} (prev=b@${p2})`]);
    assert.deepEqual(got.get(1), [`DELETE pf/k@${d3}`]);
    assert.deepEqual(got.get(2), [`PUT pf/k=a@${p1}`, `PUT pf/k=b@${p2}`]);
  });

  it('watches a range, a prefix and everything from a key; refuses an empty range', async () => {
    const s = watch();
    s.write(createReq('sp/b', { range_end: b('sp/d') }));
    s.write(createReq('sp/', { range_end: b('sp0') }));
    s.write(createReq('sp/c', { range_end: Buffer.from([0]) }));
    s.write(createReq('sp/z', { range_end: b('sp/a') }));
    const created = [await s.next(), await s.next(), await s.next(), await s.next()];
    assert.deepEqual(created.map((r) => r['watch_id']), [0, 1, 2, -1]);
    assert.deepEqual([created[3]?.['canceled'], created[3]?.['cancel_reason']], [true, 'mvcc: watcher range is empty']);
    const revs: Record<string, number> = {};
    for (const k of ['sp/a', 'sp/b', 'sp/c', 'sp/d', 'zz']) revs[k] = await put(k, k);
    const got = new Map<number, string[]>();
    // sp/b..sp/d: b, c; prefix sp/: a, b, c, d; from sp/c: c, d, zz.
    while ([...got.values()].reduce((a, l) => a + l.length, 0) < 9) {
      const r = await s.next();
      const id = r['watch_id'] as number;
      got.set(id, [...(got.get(id) ?? []), ...eventsText(r).map((t) => t.split('=')[0] ?? '')]);
    }
    assert.deepEqual(got.get(0), ['PUT sp/b', 'PUT sp/c']);
    assert.deepEqual(got.get(1), ['PUT sp/a', 'PUT sp/b', 'PUT sp/c', 'PUT sp/d']);
    assert.deepEqual(got.get(2), ['PUT sp/c', 'PUT sp/d', 'PUT zz']);
  });

  it('delivers all events of one txn revision in one response', async () => {
    const s = watch();
    s.write(createReq('tx/', { range_end: b('tx0') }));
    await s.next();
    await put('tx/x', 'old');
    await s.next();
    const ops = ['a', 'b', 'c', 'd'].map((k) => ({ request_put: { key: b(`tx/${k}`), value: b(k) } }));
    const t = await kv.call('Txn', { success: [...ops, { request_delete_range: { key: b('tx/x') } }] });
    const rev = revOf(t);
    const r = await s.next();
    assert.equal(headerRev(r), rev);
    assert.deepEqual(eventsText(r), [`PUT tx/a=a@${rev}`, `PUT tx/b=b@${rev}`, `PUT tx/c=c@${rev}`, `PUT tx/d=d@${rev}`, `DELETE tx/x@${rev}`]);
  });

  it('fragments a large revision only for a watcher that asked', async () => {
    // 100 keys of 14,000 bytes, then overwritten: with prev_kv the second
    // revision's response is ~2.8 MB, above max-request-bytes + 512 KiB.
    const keys = Array.from({ length: 100 }, (_, i) => `frag/${String(i).padStart(3, '0')}`);
    const txn = (fill: string): Promise<EtcdMessage> =>
      kv.call('Txn', { success: keys.map((k) => ({ request_put: { key: b(k), value: Buffer.alloc(14_000, fill) } })) });
    await txn('a');
    const s = openWatch(addr, undefined, { 'grpc.max_receive_message_length': 16 * 1024 * 1024 });
    streams.push(s);
    s.write(createReq('frag/', { range_end: b('frag0'), prev_kv: true, fragment: true }));
    s.write(createReq('frag/', { range_end: b('frag0'), prev_kv: true }));
    await s.next();
    await s.next();
    const rev = revOf(await txn('b'));
    const byId = new Map<number, EtcdMessage[]>();
    while ((byId.get(1)?.length ?? 0) < 1 || byId.get(0)?.at(-1)?.['fragment'] !== false) {
      const r = await s.next();
      const id = r['watch_id'] as number;
      byId.set(id, [...(byId.get(id) ?? []), r]);
    }
    const frags = byId.get(0) ?? [];
    assert.ok(frags.length >= 2, `expected fragments, got ${frags.length} response(s)`);
    assert.deepEqual(frags.map((r) => r['fragment']), [...frags.slice(1).map(() => true), false]);
    const fragKeys = frags.flatMap((r) => (r['events'] as Array<{ kv: { key: Buffer; mod_revision: number } }>).map((e) => e.kv.key.toString()));
    assert.deepEqual(fragKeys, keys, 'the fragments hold every event once, in order');
    for (const r of frags) assert.equal(headerRev(r), rev);
    const whole = byId.get(1) ?? [];
    assert.equal(whole.length, 1);
    assert.equal((whole[0]?.['events'] as unknown[]).length, 100);
    assert.equal(whole[0]?.['fragment'], false);
  });

  it('answers RequestProgress with watch_id -1 at the current revision', async () => {
    const s = watch();
    s.write({ progress_request: {} });
    const empty = await s.next();
    assert.deepEqual([empty['watch_id'], headerRev(empty)], [-1, await current()]);
    s.write(createReq('prog/k'));
    await s.next();
    const r = await put('other/key', 'x');
    s.write({ progress_request: {} });
    const p = await s.next();
    assert.deepEqual([p['watch_id'], headerRev(p), eventsText(p)], [-1, r, []]);
  });

  it('holds back RequestProgress while a watcher has not reached its start revision', async () => {
    const now = await current();
    const s = watch();
    s.write(createReq('progfut/k', { start_revision: now + 2 }));
    await s.next();
    s.write({ progress_request: {} });
    assert.equal(await s.maybeNext(QUIET_MS), undefined, 'no progress while the watcher is ahead of the store');
    await put('progfut/other', '1');
    const r2 = await put('progfut/other', '2');
    const p = await s.next();
    assert.deepEqual([p['watch_id'], headerRev(p)], [-1, r2]);
  });

  it('lets a slow reader fall back to history: every event once, in order, no gaps', async () => {
    const s = openPausableWatch(addr);
    streams.push(s);
    s.write(createReq('slow/', { range_end: b('slow0') }));
    assert.equal((await s.next())['created'], true);
    s.pause();
    // 60 revisions × 50 keys × 2,000 bytes ≈ 6 MB: more than the transport's
    // windows and the watcher's buffer (1,000 events) hold.
    const revisions: number[] = [];
    const value = (i: number, j: number): string => `${i}.${j}.`.padEnd(2000, 'x');
    for (let i = 0; i < 60; i++) {
      const ops = Array.from({ length: 50 }, (_, j) => ({ request_put: { key: b(`slow/${String(j).padStart(2, '0')}`), value: b(value(i, j)) } }));
      revisions.push(revOf(await kv.call('Txn', { success: ops })));
    }
    await waitForMetric(`http://${addr}/metrics`, 'etcd_debugging_mvcc_slow_watcher_total', (v) => v >= 1);
    s.resume();
    const seen: Array<{ rev: number; key: string; value: string }> = [];
    while (seen.length < 60 * 50) {
      const r = await s.next();
      for (const e of r['events'] as Array<{ kv: { key: Buffer; value: Buffer; mod_revision: number } }>) {
        seen.push({ rev: e.kv.mod_revision, key: e.kv.key.toString(), value: e.kv.value.toString() });
      }
    }
    const expected = revisions.flatMap((rev, i) =>
      Array.from({ length: 50 }, (_, j) => ({ rev, key: `slow/${String(j).padStart(2, '0')}`, value: value(i, j) })),
    );
    assert.equal(seen.length, expected.length);
    for (let k = 0; k < expected.length; k++) assert.deepEqual(seen[k], expected[k], `event ${k}`);
    assert.equal(await s.maybeNext(QUIET_MS), undefined, 'no duplicates after the last event');
    await waitForMetric(`http://${addr}/metrics`, 'etcd_debugging_mvcc_slow_watcher_total', (v) => v === 0);
    // And it is live again.
    const r = await put('slow/00', 'live');
    assert.deepEqual(eventsText(await s.next()), [`PUT slow/00=live@${r}`]);
  });

  it('serves /v3/watch on the JSON gateway as a stream of {"result": ...} lines', async () => {
    const lines: Array<Record<string, unknown>> = [];
    let wake: (() => void) | undefined;
    const req = http.request(`http://${addr}/v3/watch`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    const closed = new Promise<void>((resolve) => req.on('close', () => resolve()));
    req.on('error', () => undefined);
    req.on('response', (res) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          lines.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
          buf = buf.slice(i + 1);
        }
        wake?.();
      });
    });
    const waitLines = async (n: number): Promise<void> => {
      const deadline = Date.now() + POLL_TIMEOUT_MS;
      while (lines.length < n) {
        if (Date.now() > deadline) throw new Error(`only ${lines.length} JSON lines`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 100);
        });
      }
    };
    req.write(JSON.stringify({ create_request: { key: Buffer.from('json/k').toString('base64'), prev_kv: true } }));
    await waitLines(1);
    const created = lines[0]?.['result'] as Record<string, unknown>;
    assert.equal(created['created'], true);
    const r1 = await put('json/k', 'v1');
    const r2 = await put('json/k', 'v2');
    await waitLines(3);
    const ev = (lines[2]?.['result'] as { events: Array<Record<string, Record<string, string>>> }).events[0];
    assert.equal(Buffer.from(ev?.['kv']?.['key'] ?? '', 'base64').toString(), 'json/k');
    assert.equal(Buffer.from(ev?.['kv']?.['value'] ?? '', 'base64').toString(), 'v2');
    assert.equal(ev?.['kv']?.['mod_revision'], String(r2), 'int64 fields are JSON strings, as grpc-gateway writes them');
    assert.equal(Buffer.from(ev?.['prev_kv']?.['value'] ?? '', 'base64').toString(), 'v1');
    assert.equal((lines[1]?.['result'] as { header: { revision: string } }).header.revision, String(r1));
    req.destroy();
    await closed;
  });
});

/** Polls /metrics until `name`'s value satisfies `ok`. */
async function waitForMetric(url: string, name: string, ok: (v: number) => boolean): Promise<void> {
  const deadline = Date.now() + POLL_TIMEOUT_MS;
  let last = NaN;
  while (Date.now() < deadline) {
    const text = await (await fetch(url, { signal: AbortSignal.timeout(5_000) })).text();
    // The node's registry adds default labels ({node="1"}).
    const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    last = line === undefined ? NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
    if (ok(last)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${name} stayed at ${last}`);
}
