/**
 * MvccStore: etcd's MVCC keyspace for one range, kept in a (possibly shared)
 * engine under a prefix. No in-memory index: the state held in memory is the
 * current and compacted revisions, a pending-plan flag, two bounded caches
 * (hot keys' newest versions, recently read spans' counts), a Bloom filter
 * of the keys written (a few bytes per key; it spares new keys a seek), a
 * bounded log of recent deletes (it lets reads at recent revisions use the
 * Live family) and, once the store is watched, the versions of its last
 * revisions (watchers that keep up read them without the engine).
 *
 * Writes are planned, then made durable by the caller, then committed:
 *
 *   const plan = await store.planTxn(req, revision, { leaseExists });
 *   await engine.write([...plan.ops, store.appliedIndexOp(index)], { sync });
 *   store.commit(plan);
 *
 * so the raft apply loop can put its applied index (or anything else) in the
 * same atomic batch. Only one plan may be outstanding at a time; the
 * convenience methods (txn/put/deleteRange/compact) do all three steps on an
 * internal queue. Revisions come from outside and may have gaps; each write
 * revision must only be above the current one.
 */
import type { BatchOp, Engine, WriteOptions } from '../../storage/engine.js';
import { readChanges } from './changes.js';
import { compactPhysically, COMPACTION_CHUNK_OPS_MAX } from './compact.js';
import { CompactedError, FutureRevisionError, PlanPendingError, RevisionNotIncreasingError } from './errors.js';
import { hashHistory } from './hash.js';
import { Family, KeyCodec, MetaName, encodeU64, readU64 } from './keys.js';
import { KeyFilter } from './key-filter.js';
import { evaluateRange, keysFetchedMax, knownCountSparesScan, type RangeOutcome } from './range-query.js';
import { buildLiveIndex, liveIndexOps, measureLiveCount } from './live-index.js';
import { LATEST_CACHE_BYTES_MAX, LATEST_META_BYTES_MAX, LatestCache, type LatestCacheStats, type LatestMeta } from './latest-cache.js';
import { SPAN_COUNTS_MAX, SpanCountCache, spanId } from './span-count-cache.js';
import { getLatest, getLatestMeta, scanLatest, type LatestEntry } from './scan.js';
import { RECENT_DELETES_MAX, RecentDeletes } from './recent-deletes.js';
import { RECENT_CHANGES_BYTES_MAX, RECENT_CHANGES_EVENTS_MAX, RecentChanges, type WrittenVersion } from './recent-changes.js';
import { resolveSpan, type KeySpan } from './span.js';
import { checkDeleteRangeRequest, checkPutRequest, checkRangeRequest, checkTxnRequest } from './txn-check.js';
import { type TxnEnv, type TxnExecution, checkReadRevision, executeTxn, executeTxnNow } from './txn.js';
import type {
  ChangesPage,
  ChangesRequest,
  DeleteRangeRequest,
  DeleteRangeResult,
  HashKVResult,
  PutRequest,
  PutResult,
  RangeRequest,
  RangeResult,
  TxnRequest,
  TxnResult,
  WritePlan,
} from './types.js';

/** A key an apply batch will write or read, for {@link MvccStore.prefetch}. */
export interface PrefetchKey {
  readonly key: Uint8Array;
  /** False for a put that needs neither its previous value nor its value kept (metadata suffices). */
  readonly valueNeeded: boolean;
}

/** Options of MvccStore.open. */
export interface MvccStoreOptions {
  /** Isolates this store's keys in the engine; no prefix may prefix another. */
  readonly prefix: Uint8Array;
  /** Revision of a fresh store (etcd: 1). Ignored when the engine has one. */
  readonly initialRevision?: number;
  /** Bound on deletions per compaction batch. */
  readonly compactionChunkOpsMax?: number;
  /** Bound on the hot-key cache's bytes of whole entries (latest-cache.ts); 0 disables that tier. */
  readonly latestCacheBytes?: number;
  /** Bound on the hot-key cache's bytes of key metadata (latest-cache.ts); 0 disables that tier. */
  readonly latestMetaBytes?: number;
  /** Bound on the spans whose live-key counts are kept (span-count-cache.ts); 0 disables it. */
  readonly spanCounts?: number;
  /**
   * Keep a Bloom filter of the store's keys (key-filter.ts), loaded by a
   * keys-only scan in the background after open; default true.
   */
  readonly keyFilter?: boolean;
  /**
   * Deleted keys remembered so that reads at revisions before the deletes can
   * still use the Live family (recent-deletes.ts); default
   * RECENT_DELETES_MAX. Reads at revisions before what is remembered walk
   * versions instead.
   */
  readonly recentDeletes?: number;
  /**
   * Bounds on the versions of the last revisions held in memory for the
   * change stream (recent-changes.ts); default RECENT_CHANGES_EVENTS_MAX and
   * RECENT_CHANGES_BYTES_MAX; `events` 0 holds none.
   */
  readonly recentChanges?: { readonly events: number; readonly bytes: number };
}

/** Options of a planned write. */
export interface PlanOptions {
  /** The lessor's view; a put naming an unknown lease then fails with LeaseNotFoundError. */
  readonly leaseExists?: (lease: bigint) => boolean;
}

/** Options of the convenience writes (plan + engine write + commit). */
export interface ApplyOptions extends PlanOptions, WriteOptions {
  /** Extra ops written in the same batch (e.g. the applied index). */
  readonly extraOps?: readonly BatchOp[];
}

/** A planned compaction: ops that persist the new compacted revision. */
export interface CompactPlan {
  readonly ops: BatchOp[];
  readonly revision: number;
}

const ZERO_BYTE = Buffer.of(0);

/** A page cut from the span's first keys in key order: a limit, no sort, no revision filter. */
function isKeyOrderPage(req: RangeRequest): boolean {
  return (req.sortOrder ?? 'NONE') === 'NONE' && (req.sortTarget ?? 'KEY') === 'KEY' && keysFetchedMax(req) !== Infinity && req.countOnly !== true;
}

/** The pending marker while a plan is being made (a plan's own object once made). */
const PLANNING: WritePlan<unknown> = Object.freeze({ ops: [], result: null, consumed: false, revision: 0, keysDelta: 0, liveChanges: [], written: [] });

/** The MVCC keyspace of one range. */
export class MvccStore {
  private current: number;
  /** Live keys at the current revision. */
  private keys = 0;
  /** Newest versions of hot keys at the current revision. */
  private readonly cache: LatestCache;
  /** Live-key counts of recently read spans at the current revision. */
  private readonly counts: SpanCountCache;
  /** Reads at the current revision that are counting a span, by span id (see range()). */
  private readonly countingReads = new Map<string, Promise<RangeOutcome>>();
  /** Counts of spans being read from the Live family, by span id (see fillLiveCount). */
  private readonly liveCounting = new Map<string, Promise<void>>();
  /** -1 until the first compaction, as etcd (which accepts Compact(0) once). */
  private compacted: number;
  private pending: WritePlan<unknown> | null = null;
  /** Serializes the convenience writes. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Physical compactions run one after another. */
  private compaction: Promise<void> = Promise.resolve();
  /** The background load of the key filter (settles, never rejects). */
  private filterLoad: Promise<void> = Promise.resolve();
  /** Keys deleted at recent revisions, recorded when planned (recent-deletes.ts). */
  private readonly deletes: RecentDeletes;
  /** Versions written at the last revisions, for the change stream (recent-changes.ts). */
  private readonly recent: RecentChanges;
  /** Whether commits feed `recent`: from the first change read on (a store nobody watches holds nothing). */
  private holdingChanges = false;
  private closed = false;

  private constructor(
    readonly engine: Engine,
    readonly codec: KeyCodec,
    current: number,
    compacted: number,
    private readonly chunkOpsMax: number,
    cacheBytes: { readonly entries: number; readonly metas: number },
    spanCountsMax: number,
    private readonly filter: KeyFilter | undefined,
    recentDeletesMax: number,
    recentChanges: { readonly events: number; readonly bytes: number },
  ) {
    this.current = current;
    this.compacted = compacted;
    this.deletes = new RecentDeletes(recentDeletesMax, current);
    this.recent = new RecentChanges(recentChanges.events, recentChanges.bytes, current);
    this.cache = new LatestCache(current, cacheBytes.entries, filter, cacheBytes.metas);
    this.counts = new SpanCountCache(current, spanCountsMax);
  }

  /** Opens the store under `options.prefix`, resuming an unfinished compaction. */
  static async open(engine: Engine, options: MvccStoreOptions): Promise<MvccStore> {
    const codec = new KeyCodec(options.prefix);
    const readMeta = async (name: MetaName): Promise<number | undefined> => {
      const v = await engine.get(codec.metaKey(name));
      return v === undefined ? undefined : readU64(v, 0);
    };
    const current = (await readMeta(MetaName.CurrentRevision)) ?? options.initialRevision ?? 1;
    const compacted = (await readMeta(MetaName.CompactRevision)) ?? -1;
    const finished = (await readMeta(MetaName.CompactFinished)) ?? -1;
    const store = new MvccStore(
      engine,
      codec,
      current,
      compacted,
      options.compactionChunkOpsMax ?? COMPACTION_CHUNK_OPS_MAX,
      { entries: options.latestCacheBytes ?? LATEST_CACHE_BYTES_MAX, metas: options.latestMetaBytes ?? LATEST_META_BYTES_MAX },
      options.spanCounts ?? SPAN_COUNTS_MAX,
      options.keyFilter === false ? undefined : new KeyFilter(),
      options.recentDeletes ?? RECENT_DELETES_MAX,
      options.recentChanges ?? { events: RECENT_CHANGES_EVENTS_MAX, bytes: RECENT_CHANGES_BYTES_MAX },
    );
    // Stores written before the Live family existed (or images from them) build it once;
    // every write batch keeps it from then on (live-index.ts).
    const built = (await engine.get(codec.metaKey(MetaName.LiveIndex))) === undefined ? await buildLiveIndex(engine, codec, current) : undefined;
    // Likewise the key count.
    store.keys = (await readMeta(MetaName.KeyCount)) ?? built ?? (await store.range({ key: Uint8Array.of(0), rangeEnd: Uint8Array.of(0), countOnly: true })).count;
    if (compacted > finished) store.schedulePhysicalCompaction(compacted);
    if (store.filter !== undefined) store.filterLoad = store.loadKeyFilter(store.filter);
    return store;
  }

  /**
   * Adds every key with a version in the engine to `filter`, then marks it
   * loaded. The filter exists (and commits add to it) before the scan takes
   * its view, so a key is either in that view or added by its commit. A
   * failed or stopped load leaves the filter unloaded: lookups then seek.
   */
  private async loadKeyFilter(filter: KeyFilter): Promise<void> {
    let previous: Buffer | undefined;
    try {
      for await (const { key } of this.engine.iterate({ gte: this.codec.familyStart(Family.Data), lt: this.codec.familyEnd(Family.Data), keysOnly: true })) {
        if (this.closed) return;
        const segment = this.codec.parseDataKey(key).keySegment;
        // Versions of one key are adjacent: hash each key once.
        if (previous !== undefined && segment.equals(previous)) continue;
        previous = segment;
        filter.add(segment);
      }
      filter.markLoaded();
    } catch {
      // Unloaded: every lookup falls back to the engine.
    }
  }

  /** Resolves when the key filter's background load has finished (loaded, failed or stopped). */
  keyFilterSettled(): Promise<void> {
    return this.filterLoad;
  }

  /** The revision of the last write (or the initial revision). */
  get currentRevision(): number {
    return this.current;
  }

  /**
   * The newest version of `key` at the current revision, tombstone included
   * (the hot-key cache answers when it can). While a plan is pending this is
   * the state the plan was made against.
   */
  async latest(key: Uint8Array): Promise<LatestEntry | undefined> {
    return getLatest(this.engine, this.codec, key, this.current, this.cache);
  }

  /**
   * The metadata of the newest live version of `key` at the current
   * revision, null when there is no live key (either tier of the hot-key
   * cache answers when it can). While a plan is pending this is the state
   * the plan was made against.
   */
  async latestMeta(key: Uint8Array): Promise<LatestMeta | null> {
    return getLatestMeta(this.engine, this.codec, key, this.current, this.cache);
  }

  /**
   * latestMeta when the hot-key cache answers it, at once; undefined when it
   * does not (then latestMeta).
   */
  latestMetaNow(key: Uint8Array): LatestMeta | null | undefined {
    return this.cache.lookupMeta(this.codec.keySegment(key), this.current);
  }

  /**
   * Reads the newest versions of `keys` into the hot-key cache concurrently,
   * so the plans of an apply batch that write them find them in memory
   * instead of seeking one after another; a key the cache already answers
   * for (its metadata, or its value where the plan needs that) is not read. Only a hint: keys written
   * before their plan runs are simply found in the cache by then.
   */
  async prefetch(keys: readonly PrefetchKey[]): Promise<void> {
    const revision = this.current;
    const reads: Promise<unknown>[] = [];
    for (const k of keys) {
      if (this.cache.holds(this.codec.keySegment(k.key), revision, k.valueNeeded)) continue;
      reads.push(
        k.valueNeeded
          ? getLatest(this.engine, this.codec, k.key, revision, this.cache)
          : getLatestMeta(this.engine, this.codec, k.key, revision, this.cache),
      );
    }
    if (reads.length > 0) await Promise.all(reads);
  }

  /** Hits and misses of the hot-key cache, and what it holds. */
  get cacheStats(): LatestCacheStats {
    return this.cache.stats;
  }

  /** The key filter's size and state; undefined when the store keeps none. */
  get keyFilterStats(): KeyFilter['stats'] | undefined {
    return this.filter?.stats;
  }

  /** Live keys at the current revision (etcd's etcd_debugging_mvcc_keys_total). */
  get keyCount(): number {
    return this.keys;
  }

  /** The compacted revision; -1 if never compacted. */
  get compactRevision(): number {
    return this.compacted;
  }

  // ---- reads ----

  /**
   * etcd's Range at the current or a historical revision. Reads go to the
   * engine without a snapshot (costly on some engines): concurrent writes
   * only add revisions above the read revision, and the one thing that can
   * remove data a read needs, a compaction past its revision, is detected
   * after the read and reported as CompactedError.
   */
  async range(req: RangeRequest): Promise<RangeResult> {
    checkRangeRequest(req);
    const atCurrent = req.revision === undefined || req.revision <= 0;
    const span = resolveSpan(req.key, req.rangeEnd);
    const countable = atCurrent && span.kind === 'span';
    if (span.kind === 'span' && this.counts.enabled && knownCountSparesScan(req)) {
      if (countable && this.countingReads.size > 0) {
        // Another read is counting this span: wait for its count rather than scan the whole
        // span again (many clients listing one prefix at once would each scan it). Reading at
        // the revision current after the wait is as fresh as the caller asked, or fresher.
        const counting = this.countingReads.get(spanId(span));
        if (counting !== undefined) await counting.catch(() => undefined);
      }
      // A page or a count needs the span's count, not its keys: read it from the Live family,
      // also for a page at an older revision (a Kubernetes list pages at its first page's
      // revision) while the change log reaches back to it.
      checkReadRevision(req.revision ?? 0, this.current, this.compacted);
      if (this.counts.lookupAt(span, atCurrent ? this.current : (req.revision as number)) === undefined) await this.fillLiveCount(span);
    }
    const current = this.current;
    checkReadRevision(req.revision ?? 0, current, this.compacted);
    const rev = atCurrent ? current : (req.revision as number);
    const knownCount = this.counts.lookupAt(span, rev);
    const read = this.readSpan(req, span, rev, knownCount);
    // The span id only when counting (a read with a cached count, the common case, needs none).
    const countId = knownCount === undefined && countable ? spanId(span) : undefined;
    if (countId !== undefined && !this.countingReads.has(countId)) {
      this.countingReads.set(countId, read);
      const forget = (): void => {
        if (this.countingReads.get(countId) === read) this.countingReads.delete(countId);
      };
      read.then(forget, forget);
    }
    return { ...(await read), revision: current };
  }

  /**
   * Counts `span` in the Live family and leaves the count, brought forward to
   * the current revision, in the span-count cache (where range() looks it
   * up). With a cached span of the same end (the page before, in a paged
   * list) only the keys between the two starts are counted. Leaves nothing
   * when it cannot be brought forward (the cache is off, or too many writes
   * came in between): range() then counts by its scan. Concurrent reads of
   * one span share one count.
   */
  private async fillLiveCount(span: Extract<KeySpan, { kind: 'span' }>): Promise<void> {
    const id = spanId(span);
    const running = this.liveCounting.get(id);
    if (running !== undefined) return running;
    const run = (async () => {
      // The next page of a list: count only the keys between its start and a cached page's.
      const near = this.counts.neighbour(span);
      if (near !== undefined) {
        const below = Buffer.compare(near.start, span.start) < 0;
        const between = await measureLiveCount(this.engine, this.codec, { kind: 'span', start: below ? near.start : span.start, end: below ? span.start : near.start });
        const base = between === undefined ? undefined : this.counts.lookupAt(near, between.revision);
        if (between !== undefined && base !== undefined) {
          this.counts.fill(span, below ? base - between.count : base + between.count, between.revision);
          return;
        }
      }
      const measured = await measureLiveCount(this.engine, this.codec, span);
      if (measured !== undefined) this.counts.fill(span, measured.count, measured.revision);
    })().finally(() => this.liveCounting.delete(id));
    this.liveCounting.set(id, run);
    return run;
  }

  /** Evaluates `req` over `span` at `rev`; a read that counted the span leaves its count for later reads. */
  private async readSpan(req: RangeRequest, span: KeySpan, rev: number, knownCount: number | undefined): Promise<RangeOutcome> {
    // With the count known, a page reads its keys and one more: tell the engine how many.
    const fetchMax = knownCount === undefined || req.countOnly === true ? Infinity : keysFetchedMax(req);
    const sizeHint = fetchMax === Infinity ? undefined : fetchMax;
    const outcome = await evaluateRange(scanLatest(this.engine, this.codec, span, rev, { cache: this.cache, sizeHint, live: this.deletes }), this.codec, req, knownCount);
    if (rev < this.compacted) throw new CompactedError(this.compacted);
    if (knownCount === undefined) this.counts.fill(span, outcome.count, rev);
    const last = outcome.kvs[outcome.kvs.length - 1];
    if (span.kind === 'span' && outcome.more && last !== undefined && isKeyOrderPage(req)) {
      // The next page of a paged list starts just after this page's last key, and the keys
      // before it are exactly this page's: its count is known now, without a scan.
      this.counts.fill({ kind: 'span', start: Buffer.concat([last.key, ZERO_BYTE]), end: span.end }, outcome.count - outcome.kvs.length, rev);
    }
    return outcome;
  }

  /** One page of change events in [startRevision, endRevision] (see ChangesRequest). */
  async changes(req: ChangesRequest): Promise<ChangesPage> {
    if (!this.holdingChanges) {
      this.holdingChanges = true;
      this.recent.restart(this.current);
    }
    const snap = this.engine.snapshot();
    try {
      return await readChanges(snap, this.codec, req, this.current, this.compacted, this.recent);
    } finally {
      await snap.release();
    }
  }

  /** etcd's HashKV at `revision` (0: current). */
  async hashKV(revision = 0): Promise<HashKVResult> {
    const snap = this.engine.snapshot();
    const current = this.current;
    const compacted = this.compacted;
    try {
      checkReadRevision(revision, current, compacted);
      const hashRevision = revision > 0 ? revision : current;
      const hash = await hashHistory(snap, this.codec, hashRevision, compacted);
      return { hash, compactRevision: compacted, hashRevision };
    } finally {
      await snap.release();
    }
  }

  // ---- planned writes ----

  /** Plans a Txn at candidate `revision`; see the class comment for the protocol. */
  async planTxn(req: TxnRequest, revision: number, options: PlanOptions = {}): Promise<WritePlan<TxnResult>> {
    checkTxnRequest(req);
    return this.plan(revision, options, req, (r) => r);
  }

  /** Plans a Put (a one-op txn). */
  async planPut(req: PutRequest, revision: number, options: PlanOptions = {}): Promise<WritePlan<PutResult>> {
    checkPutRequest(req);
    return this.plan(revision, options, { success: [{ type: 'put', request: req }] }, putResponseOf);
  }

  /** Plans a DeleteRange (a one-op txn); deleting nothing consumes no revision. */
  async planDeleteRange(
    req: DeleteRangeRequest,
    revision: number,
    options: PlanOptions = {},
  ): Promise<WritePlan<DeleteRangeResult>> {
    checkDeleteRangeRequest(req);
    return this.plan(revision, options, { success: [{ type: 'deleteRange', request: req }] }, (r) => {
      const op = r.responses[0];
      if (op?.type !== 'deleteRange') throw new Error('unreachable: delete response missing');
      return op.response;
    });
  }

  /** Makes a plan's effects visible; call after its ops are durable. */
  commit(plan: WritePlan<unknown>): void {
    this.assertPending(plan);
    this.pending = null;
    if (plan.consumed) {
      this.current = plan.revision;
      this.keys += plan.keysDelta;
      this.cache.commit(plan.revision, plan.written);
      this.counts.commit(plan.revision, plan.liveChanges);
      if (this.holdingChanges) this.recent.add(plan.revision, this.versionsOf(plan));
    }
  }

  /** A committed plan's versions in key order, for the change stream held in memory. */
  private versionsOf(plan: WritePlan<unknown>): WrittenVersion[] {
    const written = plan.written.length > 1 ? [...plan.written].sort((a, b) => Buffer.compare(a.keySegment, b.keySegment)) : plan.written;
    let created: Set<string> | undefined;
    for (const c of plan.liveChanges) if (c.delta > 0) (created ??= new Set()).add(c.key.toString('latin1'));
    return written.map((e) => {
      const key = this.codec.userKeyOfSegment(e.keySegment);
      return { key, record: e.record, created: created?.has(key.toString('latin1')) === true };
    });
  }

  /** Drops a plan whose ops were not written. */
  discard(plan: WritePlan<unknown>): void {
    this.assertPending(plan);
    this.pending = null;
  }

  /** Plans a compaction at `revision` (etcd's bounds and errors). */
  planCompact(revision: number): CompactPlan {
    if (revision <= this.compacted) throw new CompactedError(this.compacted);
    if (revision > this.current) throw new FutureRevisionError(this.current);
    return { ops: [{ type: 'put', key: this.codec.metaKey(MetaName.CompactRevision), value: encodeU64(revision) }], revision };
  }

  /**
   * Applies a written compaction plan: reads below it fail from now on. The
   * returned promise resolves when history is physically removed, which
   * happens in the background in bounded chunks.
   */
  commitCompact(plan: CompactPlan): Promise<void> {
    if (plan.revision <= this.compacted) throw new CompactedError(this.compacted);
    this.compacted = plan.revision;
    return this.schedulePhysicalCompaction(plan.revision);
  }

  /** The op that records the raft applied index, for the caller's batch. */
  appliedIndexOp(index: number): BatchOp {
    return { type: 'put', key: this.codec.metaKey(MetaName.AppliedIndex), value: encodeU64(index) };
  }

  /** The last recorded applied index (0 if none). */
  async appliedIndex(): Promise<number> {
    const v = await this.engine.get(this.codec.metaKey(MetaName.AppliedIndex));
    return v === undefined ? 0 : readU64(v, 0);
  }

  // ---- convenience writes (plan + write + commit) ----

  /** Txn at `revision`, written and committed. */
  txn(req: TxnRequest, revision: number, options: ApplyOptions = {}): Promise<TxnResult & { consumed: boolean }> {
    return this.apply(() => this.planTxn(req, revision, options), options);
  }

  /** Put at `revision`, written and committed. */
  put(req: PutRequest, revision: number, options: ApplyOptions = {}): Promise<PutResult & { consumed: boolean }> {
    return this.apply(() => this.planPut(req, revision, options), options);
  }

  /** DeleteRange at `revision`, written and committed. */
  deleteRange(
    req: DeleteRangeRequest,
    revision: number,
    options: ApplyOptions = {},
  ): Promise<DeleteRangeResult & { consumed: boolean }> {
    return this.apply(() => this.planDeleteRange(req, revision, options), options);
  }

  /** Compacts at `revision`; with `physical`, waits until history is removed. */
  async compact(revision: number, options: { physical?: boolean } & WriteOptions = {}): Promise<void> {
    // Wrapped in an object so the queue step ends at the commit, not when the
    // background removal does (a returned promise would be adopted).
    const run = async (): Promise<{ removed: Promise<void> }> => {
      const plan = this.planCompact(revision);
      await this.engine.write(plan.ops, options.sync === undefined ? {} : { sync: options.sync });
      return { removed: this.commitCompact(plan) };
    };
    const step = this.queue.then(run);
    this.queue = step.catch(() => undefined);
    const { removed } = await step;
    if (options.physical === true) await removed;
  }

  /** Waits for background compaction, then stops using the engine (which stays open). */
  async close(): Promise<void> {
    await this.queue;
    this.closed = true;
    await this.compaction;
    await this.filterLoad;
  }

  // ---- internals ----

  private async plan<T>(
    revision: number,
    options: PlanOptions,
    req: TxnRequest,
    pick: (r: TxnResult) => T,
  ): Promise<WritePlan<T>> {
    this.checkPlannable(revision);
    this.pending = PLANNING;
    try {
      return this.planned(revision, await executeTxn(this.txnEnv(revision, options), req), pick);
    } catch (err) {
      this.pending = null;
      throw err;
    }
  }

  /**
   * Plans a Put at once when the hot-key cache holds what it reads (see
   * executeTxnNow); undefined, with nothing planned, when it does not (then
   * planPut). Refuses what planPut refuses, with the same errors.
   */
  planPutNow(req: PutRequest, revision: number, options: PlanOptions = {}): WritePlan<PutResult> | undefined {
    checkPutRequest(req);
    this.checkPlannable(revision);
    const exec = executeTxnNow(this.txnEnv(revision, options), { success: [{ type: 'put', request: req }] });
    return exec === undefined ? undefined : this.planned(revision, exec, putResponseOf);
  }

  /**
   * Plans a Txn at once when it is a compare-and-put the hot-key cache
   * answers (see executeTxnNow); undefined, with nothing planned, otherwise
   * (then planTxn). Refuses what planTxn refuses, with the same errors.
   */
  planTxnNow(req: TxnRequest, revision: number, options: PlanOptions = {}): WritePlan<TxnResult> | undefined {
    checkTxnRequest(req);
    this.checkPlannable(revision);
    const exec = executeTxnNow(this.txnEnv(revision, options), req);
    return exec === undefined ? undefined : this.planned(revision, exec, (r) => r);
  }

  private checkPlannable(revision: number): void {
    if (this.pending !== null) throw new PlanPendingError();
    if (!Number.isSafeInteger(revision) || revision <= this.current) {
      throw new RevisionNotIncreasingError(revision, this.current);
    }
  }

  private txnEnv(revision: number, options: PlanOptions): TxnEnv {
    // No snapshot: plans run one at a time, so nothing but compaction
    // changes this store's data meanwhile, and compaction never removes a
    // version a read at or above the compacted revision needs.
    return {
      reader: this.engine,
      codec: this.codec,
      currentRevision: this.current,
      compactRevision: this.compacted,
      writeRevision: revision,
      cache: this.cache,
      live: this.deletes,
      // Always present (maybe undefined), so every env has one shape.
      leaseExists: options.leaseExists,
    };
  }

  /** The pending plan of an evaluated txn: its ops plus the store's bookkeeping ops. */
  private planned<T>(revision: number, exec: TxnExecution, pick: (r: TxnResult) => T): WritePlan<T> {
    const ops = exec.ops;
    if (exec.consumed) {
      ops.push({ type: 'put', key: this.codec.metaKey(MetaName.CurrentRevision), value: encodeU64(revision) });
      if (exec.keysDelta !== 0) ops.push({ type: 'put', key: this.codec.metaKey(MetaName.KeyCount), value: encodeU64(this.keys + exec.keysDelta) });
      liveIndexOps(this.codec, exec.written, ops);
      // Before the write: an engine view without a deleted key's Live entry comes after this.
      if (exec.liveChanges.some((c) => c.delta < 0)) {
        this.deletes.record(revision, exec.liveChanges.filter((c) => c.delta < 0).map((c) => c.key));
      }
    }
    const plan: WritePlan<T> = {
      ops,
      result: pick(exec.result),
      consumed: exec.consumed,
      revision,
      keysDelta: exec.keysDelta,
      liveChanges: exec.liveChanges,
      written: exec.written,
    };
    this.pending = plan;
    return plan;
  }

  private apply<T extends object>(
    makePlan: () => Promise<WritePlan<T>>,
    options: ApplyOptions,
  ): Promise<T & { consumed: boolean }> {
    const run = async (): Promise<T & { consumed: boolean }> => {
      const plan = await makePlan();
      try {
        const ops = options.extraOps === undefined ? plan.ops : [...plan.ops, ...options.extraOps];
        if (ops.length > 0) await this.engine.write(ops, options.sync === undefined ? {} : { sync: options.sync });
      } catch (err) {
        this.discard(plan);
        throw err;
      }
      this.commit(plan);
      return { ...plan.result, consumed: plan.consumed };
    };
    const step = this.queue.then(run);
    this.queue = step.catch(() => undefined);
    return step;
  }

  private assertPending(plan: WritePlan<unknown>): void {
    if (this.pending !== plan) throw new Error('mvcc: commit/discard of a plan that is not the pending one');
  }

  private schedulePhysicalCompaction(revision: number): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.closed) return;
      await compactPhysically(this.engine, this.codec, revision, {
        chunkOpsMax: this.chunkOpsMax,
        stopped: () => this.closed,
      });
    };
    const next = this.compaction.then(run);
    this.compaction = next.catch(() => undefined);
    return next;
  }
}

/** The response of a planned Put: its txn's only op. */
function putResponseOf(r: TxnResult): PutResult {
  const op = r.responses[0];
  if (op?.type !== 'put') throw new Error('unreachable: put response missing');
  return op.response;
}
