/**
 * The Watch stream handler driven directly through an in-process RpcStream
 * (the same interface the gRPC and JSON transports implement) on the
 * embedded node's range, where the test needs the service's tunables:
 * progress_notify with a short interval, and a small watcher buffer behind
 * a client that takes nothing until released.
 */
import { AlarmStore } from '../../src/gateway/alarm.js';
import { AuthGuard } from '../../src/gateway/auth-guard.js';
import { SimpleTokenStore } from '../../src/gateway/auth-tokens.js';
import { SpaceQuota } from '../../src/gateway/quota.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import type { GatewayContext, RpcStream } from '../../src/gateway/context.js';
import type { Embedded } from '../../src/gateway/embedded.js';
import { GatewayMetrics } from '../../src/gateway/metrics.js';
import { decodeEtcdMessage, encodeEtcdMessage, type EtcdMessage } from '../../src/gateway/proto.js';
import { LocalRangeRouter, type RangeRouter, type RangeTarget } from '../../src/gateway/router.js';
import { EtcdError } from '../../src/gateway/errors.js';
import { watchService, type WatchStreamOptions } from '../../src/gateway/watch/index.js';
import { b, client, revOf, startTestServer, type EtcdTestClient } from './server-harness.js';
import { createReq, eventsText, headerRev } from './watch-harness.js';

/** Bound on waiting for a condition. */
const WAIT_MS = 10_000;

/** An in-process Watch call: requests pushed by the test, responses collected; sends block while `gate` is closed. */
class LocalCall {
  readonly responses: EtcdMessage[] = [];
  private readonly pending: EtcdMessage[] = [];
  private wakeRequests: (() => void) | undefined;
  private openGate: (() => void) | undefined;
  private gate: Promise<void> | undefined;
  readonly abort = new AbortController();
  readonly rpc: RpcStream;

  constructor(metadata: grpc.Metadata = new grpc.Metadata()) {
    const self = this;
    this.rpc = {
      requests: {
        async *[Symbol.asyncIterator]() {
          while (!self.abort.signal.aborted) {
            const m = self.pending.shift();
            if (m !== undefined) yield m;
            else await new Promise<void>((resolve) => (self.wakeRequests = resolve));
          }
        },
      },
      send: async (m) => {
        if (this.abort.signal.aborted) throw new Error('call over');
        this.responses.push(m);
        if (this.gate !== undefined) await this.gate;
      },
      call: { signal: this.abort.signal, metadata },
    };
  }

  /** Queues a request as a transport hands it over: decoded from the wire, every field filled in. */
  write(m: EtcdMessage): void {
    this.pending.push(decodeEtcdMessage('etcdserverpb.WatchRequest', encodeEtcdMessage('etcdserverpb.WatchRequest', m)));
    this.wakeRequests?.();
  }

  /** From now on each send resolves only after {@link release}. */
  hold(): void {
    if (this.gate !== undefined) return; // already held: keep the gate the pending send waits on
    this.gate = new Promise<void>((resolve) => (this.openGate = resolve));
  }

  release(): void {
    this.gate = undefined;
    this.openGate?.();
  }

  end(): void {
    this.abort.abort();
    this.wakeRequests?.();
  }

  async waitFor(n: number): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    while (this.responses.length < n) {
      if (Date.now() > deadline) throw new Error(`only ${this.responses.length} of ${n} responses`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

describe('Watch stream handler', () => {
  let srv: Embedded;
  let kv: EtcdTestClient;
  let registry: Registry;
  let ctx: GatewayContext;

  before(async () => {
    srv = await startTestServer();
    kv = client('etcdserverpb.KV', srv.server.addresses[0] ?? '');
    registry = new Registry();
    const router = new LocalRangeRouter(srv.node);
    const base: GatewayContext = {
      router,
      clusterId: 1n,
      member: srv.member,
      memberIdOfNode: (n) => BigInt(n),
      maxRequestBytes: 1024 * 1024,
      maxTxnOps: 128,
      dbSizeBytes: async () => 0,
      auth: new AuthGuard(router, new SimpleTokenStore()),
      alarms: new AlarmStore(),
      spaceQuota: new SpaceQuota(Infinity, async () => 0),
    };
    ctx = { ...base, rpcMetrics: GatewayMetrics.of(registry, base) };
  });
  after(async () => {
    kv.close();
    await srv.close();
  });

  const start = (
    options: Partial<WatchStreamOptions>,
    on: GatewayContext = ctx,
    metadata?: grpc.Metadata,
  ): { call: LocalCall; done: Promise<void> } => {
    const handler = watchService(on, options).handlers['Watch'];
    if (handler === undefined || typeof handler === 'function') throw new Error('Watch is not a stream handler');
    const call = new LocalCall(metadata);
    return { call, done: handler.run(call.rpc) };
  };
  const put = async (key: string, value: string): Promise<number> => revOf(await kv.call('Put', { key: b(key), value: b(value) }));
  const gauge = async (name: string): Promise<number> => {
    const m = await registry.getSingleMetric(name)?.get();
    return m?.values[0]?.value ?? NaN;
  };

  it('sends progress notifications to idle progress_notify watchers only, at the synced revision', async () => {
    const { call, done } = start({ progressNotifyIntervalMs: 150 });
    call.write(createReq('pn/a', { progress_notify: true }));
    call.write(createReq('pn/b'));
    call.write(createReq('pn/c', { progress_notify: true, start_revision: 1_000_000 }));
    await call.waitFor(3);
    const rev = await put('pn/other', 'x');
    // Ticks every 150 ms: wait for one at the revision of the write.
    const deadline = Date.now() + WAIT_MS;
    const atRev = (id: number): boolean => call.responses.slice(3).some((r) => r['watch_id'] === id && headerRev(r) === rev);
    while (!atRev(0) || !atRev(2)) {
      if (Date.now() > deadline) throw new Error('no progress notification at the latest revision');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const progress = call.responses.slice(3);
    for (const r of progress) {
      assert.ok([0, 2].includes(r['watch_id'] as number), 'only progress_notify watchers (one from a future revision too, as 3.4.23)');
      assert.deepEqual(eventsText(r), []);
    }
    for (const id of [0, 2]) {
      const revs = progress.filter((r) => r['watch_id'] === id).map(headerRev);
      assert.deepEqual(revs, [...revs].sort((x, y) => x - y), 'progress revisions never go back');
    }
    call.end();
    await done;
  });

  it('bounds a watcher\'s buffer behind a client that takes nothing, then catches it up from history', async () => {
    const { call, done } = start({ bufferEventsMax: 5 });
    call.write(createReq('buf/', { range_end: b('buf0') }));
    await call.waitFor(1);
    call.hold();
    const revs: number[] = [];
    revs.push(await put('buf/k', '0'));
    await call.waitFor(2); // the first event is handed to the (blocked) transport
    for (let i = 1; i < 40; i++) revs.push(await put('buf/k', String(i)));
    const deadline = Date.now() + WAIT_MS;
    while ((await gauge('etcd_debugging_mvcc_slow_watcher_total')) < 1) {
      if (Date.now() > deadline) throw new Error('the watcher never became unsynced');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(call.responses.length, 2, 'nothing more was sent while the client took nothing');
    assert.equal(await gauge('etcd_debugging_mvcc_watcher_total'), 1);
    call.release();
    const seen: number[] = [];
    const until = Date.now() + WAIT_MS;
    while (seen.length < 40) {
      if (Date.now() > until) throw new Error(`only ${seen.length} events`);
      await new Promise((resolve) => setTimeout(resolve, 10));
      seen.length = 0;
      for (const r of call.responses.slice(1)) for (const t of eventsText(r)) seen.push(Number(t.slice(t.lastIndexOf('@') + 1)));
    }
    assert.deepEqual(seen, revs, 'every revision once, in order');
    assert.equal(await gauge('etcd_debugging_mvcc_slow_watcher_total'), 0);
    call.end();
    await done;
    assert.equal(await gauge('etcd_debugging_mvcc_watcher_total'), 0, 'the watcher left with its stream');
    assert.equal(await gauge('etcd_debugging_mvcc_watch_stream_total'), 0);
  });

  it('cancels an unsynced watcher with compact_revision when its next revision is compacted meanwhile', async () => {
    const { call, done } = start({ bufferEventsMax: 2 });
    call.write(createReq('cmp/k'));
    await call.waitFor(1);
    call.hold();
    const revs: number[] = [];
    for (let i = 0; i < 20; i++) revs.push(await put('cmp/k', String(i)));
    const deadline = Date.now() + WAIT_MS;
    while ((await gauge('etcd_debugging_mvcc_slow_watcher_total')) < 1) {
      if (Date.now() > deadline) throw new Error('the watcher never became unsynced');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const compactAt = revs[revs.length - 1] ?? 0;
    await kv.call('Compact', { revision: compactAt, physical: true });
    call.release();
    const until = Date.now() + WAIT_MS;
    while (!call.responses.some((r) => r['canceled'] === true)) {
      if (Date.now() > until) throw new Error('no canceled reply');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const last = call.responses.at(-1) ?? {};
    assert.deepEqual(
      [last['watch_id'], last['canceled'], last['compact_revision'], headerRev(last)],
      [0, true, compactAt, 0],
      'the last reply: canceled with the compacted revision, header revision 0',
    );
    // What came before is a gapless prefix of the history: the buffered events, nothing after a gap.
    const seen = call.responses.slice(1, -1).flatMap((r) => eventsText(r).map((t) => Number(t.slice(t.lastIndexOf('@') + 1))));
    assert.ok(seen.length >= 1 && seen.length < revs.length, `${seen.length} events before the cancel`);
    assert.deepEqual(seen, revs.slice(0, seen.length));
    assert.equal(await gauge('etcd_debugging_mvcc_slow_watcher_total'), 0);
    assert.equal(await gauge('etcd_debugging_mvcc_watcher_total'), 0, 'the canceled watcher is gone');
    // The stream goes on: a new watcher on it works.
    call.write(createReq('cmp/k'));
    const n = call.responses.length;
    await call.waitFor(n + 1);
    assert.equal(call.responses[n]?.['created'], true);
    call.end();
    await done;
  });

  it('gives every watcher exactly its history under random writes and a client that stalls at random (seeded)', async () => {
    const seed = Number(process.env['KEYSPAN_SEED'] ?? Date.now() % 1_000_000);
    console.log(`watch model test seed ${seed} (replay with KEYSPAN_SEED=${seed})`);
    const rand = mulberry32(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
    const key = (i: number): string => `rnd/${i}`;
    const base = await put('rnd/0', 'seed');
    const { call, done } = start({ bufferEventsMax: 3, bufferBytesMax: 64 });
    interface Spec {
      key: string;
      end?: string;
      start: number;
      noPut: boolean;
      noDelete: boolean;
      prevKv: boolean;
    }
    const specs: Spec[] = [];
    for (let i = 0; i < 6; i++) {
      const a = i === 0 ? 0 : Math.floor(rand() * 8);
      // Watcher 0 sees every write, so the forced stall below makes it slow.
      const kind = i === 0 ? 'from' : pick(['single', 'range', 'from'] as const);
      const spec: Spec = {
        key: key(a),
        // Range ends stay at rnd/9 or below: "rnd/10" sorts before "rnd/7", and an
        // empty range is refused (created and cancelled, no id), which would shift the ids.
        ...(kind === 'range' ? { end: key(Math.min(9, a + 1 + Math.floor(rand() * 3))) } : kind === 'from' ? { end: '\0' } : {}),
        start: pick([0, base, base + 1]),
        noPut: i > 0 && rand() < 0.15,
        noDelete: i > 0 && rand() < 0.15,
        prevKv: rand() < 0.5,
      };
      specs.push(spec);
      call.write(
        createReq(spec.key, {
          ...(spec.end === undefined ? {} : { range_end: spec.end === '\0' ? Buffer.from([0]) : b(spec.end) }),
          start_revision: spec.start,
          filters: [...(spec.noPut ? [0] : []), ...(spec.noDelete ? [1] : [])],
          prev_kv: spec.prevKv,
        }),
      );
    }
    await call.waitFor(6);
    specs.forEach((spec, i) => {
      if (spec.start === 0) spec.start = headerRev(call.responses[i] ?? {}) + 1;
    });
    let last = base;
    let sawSlow = false;
    for (let op = 0; op < 120; op++) {
      if (op === 40) call.hold();
      if (op === 80) {
        sawSlow = (await gauge('etcd_debugging_mvcc_slow_watcher_total')) >= 1;
        call.release();
      }
      const stallWindow = op >= 40 && op < 80;
      if (rand() < 0.1 && !stallWindow) {
        if (rand() < 0.5) call.hold();
        else call.release();
      }
      const r = rand();
      if (r < 0.6) last = await put(key(Math.floor(rand() * 10)), `v${op}`);
      else if (r < 0.8) {
        const res = await kv.call('DeleteRange', { key: b(key(Math.floor(rand() * 10))) });
        if ((res['deleted'] as number) > 0) last = revOf(res);
      } else {
        const ks = [...new Set([key(Math.floor(rand() * 10)), key(Math.floor(rand() * 10))])];
        last = revOf(await kv.call('Txn', { success: ks.map((k) => ({ request_put: { key: b(k), value: b(`t${op}`) } })) }));
      }
    }
    call.release();
    // The oracle: each watcher's span read from the replica's history in one go, filtered here.
    const replica = srv.node.range(1);
    const expected: string[][] = [];
    for (const spec of specs) {
      const page = await replica.changes({
        key: b(spec.key),
        ...(spec.end === undefined ? {} : { rangeEnd: spec.end === '\0' ? Buffer.from([0]) : b(spec.end) }),
        startRevision: spec.start,
        endRevision: last,
        prevKv: spec.prevKv,
        maxEvents: 1_000_000,
      });
      expected.push(
        page.events
          .filter((e) => !(e.type === 'PUT' ? spec.noPut : spec.noDelete))
          .map((e) => {
            const prev = e.prevKv === undefined ? '' : ` (prev=${e.prevKv.value.toString()}@${e.prevKv.modRevision})`;
            return `${e.type} ${e.kv.key.toString()}${e.type === 'PUT' ? `=${e.kv.value.toString()}` : ''}@${e.kv.modRevision}${prev}`;
          }),
      );
    }
    const got = (): string[][] => specs.map((_, id) => call.responses.filter((r) => r['watch_id'] === id && !r['created']).flatMap(eventsText));
    const deadline = Date.now() + WAIT_MS;
    while (got().some((g, i) => g.length < (expected[i]?.length ?? 0))) {
      if (Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.deepEqual(got(), expected, `seed ${seed}`);
    assert.ok(sawSlow, 'a watcher fell behind during the forced stall');
    for (const r of call.responses.slice(6)) {
      const revsIn = eventsText(r).map((t) => Number(/@(\d+)/.exec(t)?.[1]));
      if (revsIn.length > 0) assert.ok(headerRev(r) >= Math.max(...revsIn), 'a response header is at or past its events');
    }
    call.end();
    await done;
  });

  it('closes a hasleader=true stream with "no leader" after three checks without a leader, not before', async () => {
    // The node-wide view the leader check reads (router.ranges()) answers the
    // leader the test scripts, one answer per check; the replica is the real one.
    const answers: number[] = [];
    let checks = 0;
    const local = new LocalRangeRouter(srv.node);
    const router: RangeRouter = {
      route: (key, end) => local.route(key, end),
      ranges: () =>
        local.ranges().map((t) => {
          checks++;
          const leader = answers.shift() ?? 1;
          return { ...t, raftStatus: () => ({ ...t.raftStatus(), leader }) };
        }),
      invalidate: () => undefined,
    };
    const md = new grpc.Metadata();
    md.set('hasleader', 'true');
    const state: { outcome: unknown } = { outcome: 'running' };
    const waitChecks = async (n: number): Promise<void> => {
      const deadline = Date.now() + WAIT_MS;
      while (checks < n) {
        if (Date.now() > deadline) throw new Error(`only ${checks} leader checks`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };
    const { call, done } = start({ leaderCheckIntervalMs: 20 }, { ...ctx, router }, md);
    done.then(
      () => (state.outcome = 'ended OK'),
      (err: unknown) => (state.outcome = err),
    );
    call.write(createReq('ldr/k'));
    await call.waitFor(1);
    // Two checks without a leader, then one with: the count starts over.
    answers.push(0, 0, 1, 0, 0);
    const from = checks;
    await waitChecks(from + 6);
    assert.equal(state.outcome, 'running', 'never three misses in a row');
    const r = await put('ldr/k', 'v');
    await call.waitFor(2);
    assert.deepEqual(eventsText(call.responses[1] ?? {}), [`PUT ldr/k=v@${r}`]);
    answers.push(0, 0, 0);
    const deadline = Date.now() + WAIT_MS;
    while (state.outcome === 'running') {
      if (Date.now() > deadline) throw new Error('the stream was not closed');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const err: unknown = state.outcome as unknown;
    assert.ok(err instanceof EtcdError, String(err));
    assert.deepEqual([err.message, err.grpcCode], ['etcdserver: no leader', 14]);
    assert.equal(await gauge('etcd_debugging_mvcc_watcher_total'), 0, 'its watchers left');
    call.end();
  });
});

/** A small seeded PRNG (mulberry32): the same seed gives the same run. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
