/**
 * Randomized differential test: a seeded stream of puts, range deletes,
 * nested txns, compactions, reads at random (also compacted and future)
 * revisions and change-stream reads runs against the MVCC store on every
 * engine and against the naive model in model.ts; every result must match.
 * The seed is printed; KEYSPAN_SEED=<n> replays a run. KEYSPAN_RANDOM_OPS
 * overrides the number of ops.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type Engine, type EngineKind, engineKinds, openEngine } from '../../src/storage/index.js';
import {
  type Compare,
  type KeyValue,
  MvccError,
  type MvccEvent,
  MvccStore,
  type MvccStoreOptions,
  type RangeRequest,
  type RequestOp,
  type ResponseOp,
  type SortOrder,
  type SortTarget,
  type TxnRequest,
  type TxnResult,
} from '../../src/shard/index.js';
import { Model, type NKv, type NResult } from './model.js';

const seed = process.env['KEYSPAN_SEED'] !== undefined ? Number(process.env['KEYSPAN_SEED']) : Date.now() % 1_000_000_007;
const opsTotal = Number(process.env['KEYSPAN_RANDOM_OPS'] ?? 2500);

/** mulberry32: small, seedable, good enough to pick test ops. */
function prng(seedValue: number): () => number {
  let a = seedValue >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const tempDirs: string[] = [];
const engines: Engine[] = [];
after(async () => {
  for (const e of engines) await e.close().catch(() => undefined);
  for (const d of tempDirs) await rm(d, { recursive: true, force: true });
});

async function open(kind: EngineKind): Promise<Engine> {
  if (kind === 'memory') return openEngine({ kind });
  const dir = await mkdtemp(join(tmpdir(), `keyspan-mvcc-${kind}-`));
  tempDirs.push(dir);
  return openEngine({ kind, path: dir });
}

const nkv = (kv: KeyValue): NKv => ({
  key: kv.key.toString('latin1'),
  create: kv.createRevision,
  mod: kv.modRevision,
  version: kv.version,
  value: kv.value.toString('latin1'),
  lease: String(kv.lease),
});

function normTxn(r: TxnResult): unknown {
  return { succeeded: r.succeeded, revision: r.revision, responses: r.responses.map(normOp) };
}

function normOp(op: ResponseOp): unknown {
  switch (op.type) {
    case 'range':
      return { range: { kvs: op.response.kvs.map(nkv), more: op.response.more, count: op.response.count, revision: op.response.revision } };
    case 'put':
      return { put: op.response.prevKv ? { prevKv: nkv(op.response.prevKv), revision: op.response.revision } : { revision: op.response.revision } };
    case 'deleteRange':
      return { deleteRange: { deleted: op.response.deleted, prevKvs: op.response.prevKvs.map(nkv), revision: op.response.revision } };
    case 'txn':
      return { txn: normTxn(op.response) };
  }
}

async function capture(f: () => Promise<unknown>): Promise<NResult> {
  try {
    return { ok: await f() };
  } catch (e) {
    if (e instanceof MvccError) return { error: e.code };
    throw e;
  }
}

test(`MVCC store matches the reference model on every engine (seed ${seed})`, { timeout: 120_000 }, async (t) => {
  t.diagnostic(`KEYSPAN_SEED=${seed} ops=${opsTotal}`);
  console.log(`mvcc-random: KEYSPAN_SEED=${seed}`);
  const kinds = engineKinds;
  const stores: { kind: EngineKind; store: MvccStore; noise: MvccStore }[] = [];
  // The hot-key cache and the span counts at their default sizes, tiny (constant eviction) and off, one per engine;
  // the cache's metadata tier tiny where its first tier is, and alone where the first tier is off.
  const cacheBytes = (kind: EngineKind): number | undefined => (kind === 'leveldb' ? 1024 : kind === 'rocksdb' ? 0 : undefined);
  const metaBytes = (kind: EngineKind): number | undefined => (kind === 'leveldb' ? 1024 : undefined);
  const spanCounts = (kind: EngineKind): number | undefined => (kind === 'leveldb' ? undefined : kind === 'rocksdb' ? 2 : 0);
  // The key filter on where the cache is tiny or off (most lookups reach it), off on the third engine.
  const keyFilter = (kind: EngineKind): boolean => kind !== 'memory';
  // The log of recent deletes at its default size, tiny (reads before it walk versions) and off (any delete since does).
  const recentDeletes = (kind: EngineKind): number | undefined => (kind === 'leveldb' ? undefined : kind === 'rocksdb' ? 3 : 0);
  // The change stream held in memory at its default size, tiny (most reads start before it) and off.
  const recentChanges = (kind: EngineKind): { events: number; bytes: number } | undefined =>
    kind === 'leveldb' ? undefined : kind === 'rocksdb' ? { events: 6, bytes: 200 } : { events: 0, bytes: 0 };
  const storeOptions = (kind: EngineKind): MvccStoreOptions => {
    const bytes = cacheBytes(kind);
    const metas = metaBytes(kind);
    const spans = spanCounts(kind);
    const deletes = recentDeletes(kind);
    const held = recentChanges(kind);
    return {
      prefix: Buffer.from('r1'),
      compactionChunkOpsMax: 5,
      ...(bytes === undefined ? {} : { latestCacheBytes: bytes }),
      ...(metas === undefined ? {} : { latestMetaBytes: metas }),
      ...(spans === undefined ? {} : { spanCounts: spans }),
      keyFilter: keyFilter(kind),
      ...(deletes === undefined ? {} : { recentDeletes: deletes }),
      ...(held === undefined ? {} : { recentChanges: held }),
    };
  };
  for (const kind of kinds) {
    const engine = await open(kind);
    engines.push(engine);
    stores.push({
      kind,
      store: await MvccStore.open(engine, storeOptions(kind)),
      // A second store in the same engine: its writes must never show up in the first.
      noise: await MvccStore.open(engine, { prefix: Buffer.from('r2') }),
    });
  }
  t.diagnostic(`engines: ${kinds.join(', ')}`);
  const model = new Model();
  const rnd = prng(seed);
  const int = (n: number): number => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  const alphabet = ['\x00', 'a', 'b', '\xff'];
  // Mostly a small alphabet (long histories, overlapping spans); sometimes one of many more keys, most never written before.
  const key = (): Buffer =>
    int(10) === 0 ? Buffer.from(`n${int(400)}`, 'latin1') : Buffer.from(int(3) === 0 ? pick(alphabet) : pick(alphabet) + pick(alphabet), 'latin1');
  const rangeEnd = (): Buffer | undefined => {
    const r = int(4);
    return r === 0 ? undefined : r === 1 ? Buffer.from([0]) : key();
  };
  const val = (): Buffer => Buffer.from(pick(['', 'x', 'y', 'zz', '\x00v']), 'latin1');
  const lease = (): bigint => pick([0n, 0n, 1n, 2n, -7n, 3n]);
  const leaseExists = (l: bigint): boolean => l !== 3n;
  const revision = (): number => {
    const lo = Math.max(model.compacted - 2, 0);
    return int(3) === 0 ? 0 : lo + int(model.current - lo + 3);
  };
  const optional = <T>(v: T | undefined): T | undefined => (int(2) === 0 ? undefined : v);
  const rangeReq = (): RangeRequest => {
    const r: Record<string, unknown> = { key: key() };
    const end = rangeEnd();
    if (end !== undefined) r['rangeEnd'] = end;
    if (int(2) === 0) r['limit'] = int(4);
    if (int(3) === 0) r['revision'] = revision();
    if (int(3) === 0) r['sortOrder'] = pick<SortOrder>(['NONE', 'ASCEND', 'DESCEND']);
    if (int(3) === 0) r['sortTarget'] = pick<SortTarget>(['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE']);
    if (int(6) === 0) r['keysOnly'] = true;
    if (int(8) === 0) r['countOnly'] = true;
    for (const f of ['minModRevision', 'maxModRevision', 'minCreateRevision', 'maxCreateRevision']) {
      if (int(8) === 0) r[f] = int(model.current + 2);
    }
    return r as unknown as RangeRequest;
  };
  const putOp = (): RequestOp => {
    const r: Record<string, unknown> = { key: key() };
    const mode = int(8);
    if (mode === 0) r['ignoreValue'] = true;
    else if (mode !== 1 || int(4) === 0) r['value'] = val();
    if (mode === 1) r['ignoreLease'] = true;
    if (mode === 1 && int(40) === 0) r['lease'] = 2n; // lease is provided
    else r['lease'] = optional(lease()) ?? 0n;
    if (int(15) === 0 && mode === 0) r['value'] = Buffer.from('bad'); // value is provided
    if (int(2) === 0) r['prevKv'] = true;
    return { type: 'put', request: r as never };
  };
  const delOp = (): RequestOp => {
    const end = rangeEnd();
    return { type: 'deleteRange', request: { key: key(), ...(end === undefined ? {} : { rangeEnd: end }), prevKv: int(2) === 0 } };
  };
  const compare = (): Compare => {
    const base = { key: key(), result: pick(['EQUAL', 'NOT_EQUAL', 'GREATER', 'LESS'] as const) };
    const end = int(4) === 0 ? rangeEnd() : undefined;
    const withEnd = end === undefined ? base : { ...base, rangeEnd: end };
    switch (int(5)) {
      case 0:
        return { ...withEnd, target: 'VALUE', value: val() };
      case 1:
        return { ...withEnd, target: 'VERSION', version: int(4) };
      case 2:
        return { ...withEnd, target: 'CREATE', createRevision: int(model.current + 2) };
      case 3:
        return { ...withEnd, target: 'MOD', modRevision: int(model.current + 2) };
      default:
        return { ...withEnd, target: 'LEASE', lease: lease() };
    }
  };
  const txnReq = (depth: number): TxnRequest => {
    const ops = (): RequestOp[] =>
      Array.from({ length: int(4) }, () => {
        const r = int(10);
        if (r < 3) return putOp();
        if (r < 5) return delOp();
        if (r < 8 || depth >= 2) return { type: 'range', request: rangeReq() } as RequestOp;
        return { type: 'txn', request: txnReq(depth + 1) } as RequestOp;
      });
    return { compare: Array.from({ length: int(3) }, compare), success: ops(), failure: ops() };
  };
  const liveKeys = (): number => {
    const r = model.range({ key: Buffer.of(0), rangeEnd: Buffer.of(0), countOnly: true });
    return 'ok' in r ? (r.ok as { count: number }).count : -1;
  };
  const nextRevision = (): number => model.current + 1 + (int(4) === 0 ? int(5) : 0);
  let noiseRev = 1;

  const counts: Record<string, number> = {};
  const outcomes: Record<string, number> = {};
  for (let i = 0; i < opsTotal; i++) {
    const r = int(100);
    let kind: string;
    let expected: NResult;
    let run: (s: MvccStore) => Promise<unknown>;
    if (r < 28) {
      kind = 'put';
      const op = putOp();
      const rev = nextRevision();
      const m = model.txn({ success: [op] }, rev, leaseExists);
      expected = 'ok' in m ? { ok: putShape(m.ok) } : m;
      run = async (s) => {
        if (op.type !== 'put') throw new Error('unreachable');
        const res = await s.put(op.request, rev, { leaseExists });
        return { ...(res.prevKv ? { prevKv: nkv(res.prevKv) } : {}), revision: res.revision, consumed: res.consumed };
      };
    } else if (r < 38) {
      kind = 'delete';
      const op = delOp();
      const rev = nextRevision();
      const m = model.txn({ success: [op] }, rev, leaseExists);
      expected = 'ok' in m ? { ok: delShape(m.ok) } : m;
      run = async (s) => {
        if (op.type !== 'deleteRange') throw new Error('unreachable');
        const res = await s.deleteRange(op.request, rev);
        return { deleted: res.deleted, prevKvs: res.prevKvs.map(nkv), revision: res.revision, consumed: res.consumed };
      };
    } else if (r < 58) {
      kind = 'txn';
      const req = txnReq(0);
      const rev = nextRevision();
      expected = model.txn(req, rev, leaseExists);
      run = async (s) => {
        const res = await s.txn(req, rev, { leaseExists });
        return { ...(normTxn(res) as object), consumed: res.consumed };
      };
    } else if (r < 83) {
      kind = 'range';
      const req = rangeReq();
      expected = model.range(req);
      run = async (s) => {
        const res = await s.range(req);
        return { kvs: res.kvs.map(nkv), more: res.more, count: res.count, revision: res.revision };
      };
    } else if (r < 88) {
      kind = 'compact';
      const rev = int(4) === 0 ? revision() : model.compacted + 1 + int(Math.max(1, model.current - model.compacted));
      const physical = int(3) === 0;
      expected = model.compact(rev);
      run = async (s) => {
        await s.compact(rev, { physical });
        return {};
      };
    } else if (r < 97) {
      kind = 'changes';
      const k = key();
      const end = rangeEnd();
      const start = Math.max(0, model.compacted - 1) + int(model.current - Math.max(0, model.compacted - 1) + 2);
      const endRev = int(3) === 0 ? start + int(10) : undefined;
      const prevKv = int(2) === 0;
      const pageMax = 1 + int(5);
      const bytesMax = int(3) === 0 ? 1 + int(12) : undefined;
      expected = model.changes(k, end, start, endRev, prevKv);
      run = async (s) => {
        const events: unknown[] = [];
        let from = start;
        let lastRev = -1;
        for (let pages = 0; ; pages++) {
          assert.ok(pages < 10_000, 'change stream does not finish');
          const page = await s.changes({
            key: k,
            ...(end === undefined ? {} : { rangeEnd: end }),
            startRevision: from,
            ...(endRev === undefined ? {} : { endRevision: endRev }),
            prevKv,
            maxEvents: pageMax,
            ...(bytesMax === undefined ? {} : { maxBytes: bytesMax }),
          });
          checkPageBounds(page, pageMax, bytesMax, seed);
          const first = page.events[0];
          if (first !== undefined) assert.notEqual(first.kv.modRevision, lastRev, 'a revision was split across pages');
          for (const e of page.events) {
            lastRev = e.kv.modRevision;
            events.push({ type: e.type, kv: nkv(e.kv), ...(e.prevKv ? { prevKv: nkv(e.prevKv) } : {}) });
          }
          if (page.done) break;
          from = page.nextRevision;
        }
        return events;
      };
    } else if (r < 98) {
      // Restart: close (stopping any physical compaction mid-way) and reopen
      // from the engine; revisions must be recovered and compaction resumed.
      kind = 'reopen';
      for (const entry of stores) {
        await entry.store.close();
        entry.store = await MvccStore.open(entry.store.engine, storeOptions(entry.kind));
        assert.equal(entry.store.currentRevision, model.current);
        assert.equal(entry.store.compactRevision, model.compacted);
        assert.equal(entry.store.keyCount, liveKeys(), `live key count after reopen (seed ${seed})`);
      }
      counts[kind] = (counts[kind] ?? 0) + 1;
      continue;
    } else {
      kind = 'hash';
      const hashes = await Promise.all(stores.map(({ store }) => store.hashKV()));
      for (const h of hashes) assert.deepEqual(h, hashes[0], `hash differs between engines at op ${i} (seed ${seed})`);
      counts[kind] = (counts[kind] ?? 0) + 1;
      continue;
    }
    counts[kind] = (counts[kind] ?? 0) + 1;
    const outcome = 'error' in expected ? `${kind}:${expected.error}` : `${kind}:ok`;
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    for (const { kind: engineKind, store, noise } of stores) {
      const actual = await capture(() => run(store));
      assert.deepEqual(actual, expected, `op ${i} (${kind}) on ${engineKind} differs from the model (seed ${seed})`);
      assert.equal(store.keyCount, liveKeys(), `live key count after op ${i} (${kind}) on ${engineKind} (seed ${seed})`);
      if (i % 7 === 0) await noise.put({ key: Buffer.from('a'), value: Buffer.from('noise') }, noiseRev + 1);
    }
    if (i % 7 === 0) noiseRev++;
  }
  for (const { store } of stores) await store.close();
  t.diagnostic(`op mix: ${JSON.stringify(counts)}`);
  t.diagnostic(`outcomes: ${JSON.stringify(outcomes)}`);
});

/** The model answers puts/deletes as one-op txns; these pick the op result. */
function putShape(ok: unknown): unknown {
  const r = ok as { responses: { put: object }[]; consumed: boolean };
  return { ...r.responses[0]!.put, consumed: r.consumed };
}

function delShape(ok: unknown): unknown {
  const r = ok as { responses: { deleteRange: object }[]; consumed: boolean };
  return { ...r.responses[0]!.deleteRange, consumed: r.consumed };
}

/**
 * A page ends at the first revision boundary where it holds `eventsMax`
 * events or `bytesMax` bytes (key + value + prev value), and only there.
 */
function checkPageBounds(page: { events: readonly MvccEvent[]; done: boolean }, eventsMax: number, bytesMax: number | undefined, seedValue: number): void {
  let count = 0;
  let bytes = 0;
  const full = (): boolean => count >= eventsMax || (bytesMax !== undefined && bytes >= bytesMax);
  for (let i = 0; i < page.events.length; i++) {
    const e = page.events[i] as MvccEvent;
    if (i > 0 && e.kv.modRevision !== (page.events[i - 1] as MvccEvent).kv.modRevision) {
      assert.ok(!full(), `a page went on past its bound at revision ${e.kv.modRevision} (seed ${seedValue})`);
    }
    count++;
    bytes += e.kv.key.length + e.kv.value.length + (e.prevKv?.value.length ?? 0);
  }
  if (!page.done) assert.ok(full(), `a page ended before its bound (seed ${seedValue})`);
}
