/**
 * Evaluates a Txn (and Put / DeleteRange, which are one-op txns) against the
 * pre-txn state and produces the engine ops of its writes, all at one
 * revision. The order follows etcd's applyTxn (reference §2.5):
 *   1. every compare on the chosen path, nested ones included, is evaluated
 *      against the state before the txn;
 *   2. puts on the path are checked (ignore_value/ignore_lease need an
 *      existing key, leases must exist), then ranges (revision bounds);
 *   3. ops run in order; reads at the current revision see earlier writes.
 * Nothing is written here: the caller writes the ops in one batch.
 */
import type { BatchOp, EngineReader } from '../../storage/engine.js';
import { CompactedError, DuplicateKeyError, FutureRevisionError, KeyNotFoundError, LeaseNotFoundError } from './errors.js';
import type { KeyCodec } from './keys.js';
import { evaluateRange } from './range-query.js';
import { getLatest, getLatestMeta, type LatestEntry, type LiveView, mergeOverlay, scanLatest, type ScanOptions } from './scan.js';
import { type LatestCache, type LatestMeta, metaOf } from './latest-cache.js';
import { type KeySpan, resolveSpan, spanContains } from './span.js';
import type {
  Compare,
  DeleteRangeRequest,
  KeyValue,
  LiveChange,
  PutRequest,
  RangeRequest,
  RangeResult,
  RequestOp,
  ResponseOp,
  TxnRequest,
  TxnResult,
} from './types.js';
import { TOMBSTONE_RECORD, encodePut, isTombstoneRecord, toKeyValue } from './value.js';

/** What a txn evaluation needs from the store. */
export interface TxnEnv {
  /** A consistent view of the state before the txn. */
  readonly reader: EngineReader;
  readonly codec: KeyCodec;
  readonly currentRevision: number;
  readonly compactRevision: number;
  /** The candidate revision for the txn's writes (> currentRevision). */
  readonly writeRevision: number;
  /** The lessor's view; absent means every lease is accepted. */
  readonly leaseExists?: ((lease: bigint) => boolean) | undefined;
  /** Newest versions of hot keys at currentRevision (only with the store's own engine as reader). */
  readonly cache?: LatestCache;
  /** Present when the reader's Live family is complete (the store's own engine): spans are read from it (scan.ts). */
  readonly live?: LiveView;
}

/** The outcome of a txn evaluation. */
export interface TxnExecution {
  readonly result: TxnResult;
  /** Data and revision-index ops (no metadata), empty if nothing was written. */
  readonly ops: BatchOp[];
  readonly consumed: boolean;
  /** Live keys created minus live keys deleted. */
  readonly keysDelta: number;
  /** Every key created (+1) or deleted (-1), for the store's span counts. */
  readonly liveChanges: LiveChange[];
  /** The newest version of every key written, for the store's cache. */
  readonly written: LatestEntry[];
}

/** A put op's response before the txn's revision is set. */
type PutResponse = { prevKv?: KeyValue; revision: number };

/** Which branch each txn on the path takes; children follow nested txn ops in order. */
interface PathNode {
  readonly succeeded: boolean;
  readonly children: readonly PathNode[];
}

/** Evaluates `req` (already validated by checkTxnRequest). */
export async function executeTxn(env: TxnEnv, req: TxnRequest): Promise<TxnExecution> {
  const path = isUnconditional(req) ? UNCONDITIONAL : await choosePath(env, req);
  await checkPuts(env, req, path);
  checkRanges(env, req, path);
  const exec = new Executor(env);
  return exec.execution(await exec.runTxn(req, path));
}

/**
 * Evaluates a Txn (already validated) at once when it reads little and the
 * env's cache answers all of it: compares on single keys and a chosen branch
 * of puts only — a Put, or the compare-and-put of an optimistic update —
 * exactly as executeTxn would. Returns undefined, having done nothing, for
 * any other txn or when the cache lacks a key (then executeTxn); so the
 * common apply of such a write runs without a wait.
 */
export function executeTxnNow(env: TxnEnv, req: TxnRequest): TxnExecution | undefined {
  const cache = env.cache;
  if (cache === undefined) return undefined;
  const { codec, currentRevision } = env;
  let succeeded = true;
  for (const c of req.compare ?? []) {
    if (c.rangeEnd !== undefined && c.rangeEnd.length > 0) return undefined;
    const segment = codec.keySegment(c.key);
    let kv: KeyValue | null;
    if (c.target === 'VALUE') {
      const e = cache.lookup(segment, currentRevision);
      if (e === undefined) return undefined;
      kv = e === null ? null : toKeyValue(EMPTY, e.revision, e.record);
    } else {
      // Every other target is in the key's metadata.
      const m = cache.lookupMeta(segment, currentRevision);
      if (m === undefined) return undefined;
      kv = m === null ? null : { key: EMPTY, value: EMPTY, ...m };
    }
    if (!compareLatest(c, kv)) {
      succeeded = false;
      break;
    }
  }
  const puts: { req: PutRequest; segment: Buffer; meta: LatestMeta | null; previous: LatestEntry | undefined }[] = [];
  for (const op of branch(req, succeeded)) {
    if (op.type !== 'put') return undefined;
    const segment = codec.keySegment(op.request.key);
    if (needsPrevious(op.request)) {
      const e = cache.lookup(segment, currentRevision);
      if (e === undefined) return undefined;
      puts.push({ req: op.request, segment, meta: metaOf(e), previous: e ?? undefined });
    } else {
      const meta = cache.lookupMeta(segment, currentRevision);
      if (meta === undefined) return undefined;
      puts.push({ req: op.request, segment, meta, previous: undefined });
    }
  }
  // As executeTxn: every put on the path is checked before any op runs.
  for (const p of puts) checkPut(env, p.req, p.meta !== null);
  const exec = new Executor(env);
  const responses: ResponseOp[] = puts.map((p) => ({ type: 'put', response: exec.putResolved(p.req, p.segment, p.meta, p.previous) }));
  return exec.execution({ succeeded, responses, revision: 0 });
}

/** Whether a put reads its key's previous value (not only its metadata). */
function needsPrevious(req: PutRequest): boolean {
  return req.prevKv === true || req.ignoreValue === true;
}

/** Evaluates one compare against a reader at a revision (etcd's applyCompare). */
export async function evaluateCompare(
  reader: EngineReader,
  codec: KeyCodec,
  revision: number,
  c: Compare,
  options: ScanOptions = {},
): Promise<boolean> {
  const span = resolveSpan(c.key, c.rangeEnd);
  let any = false;
  for await (const e of scanLatest(reader, codec, span, revision, options)) {
    if (isTombstoneRecord(e.record)) continue;
    any = true;
    const kv = toKeyValue(codec.userKeyOfSegment(e.keySegment), e.revision, e.record);
    if (kv === null || !compareKv(c, kv)) return false;
  }
  return any || compareLatest(c, null);
}

/** A compare against one key's newest version (`kv`; null when the key has no live version). */
function compareLatest(c: Compare, kv: KeyValue | null): boolean {
  if (kv !== null) return compareKv(c, kv);
  // No key: a VALUE compare fails (no way to say "missing value"); other
  // targets compare against zero values, so create_revision == 0 means absent.
  if (c.target === 'VALUE') return false;
  return compareKv(c, { key: EMPTY, createRevision: 0, modRevision: 0, version: 0, value: EMPTY, lease: 0n });
}

function compareKv(c: Compare, kv: KeyValue): boolean {
  let r: number;
  switch (c.target) {
    case 'VALUE':
      r = Buffer.compare(kv.value, c.value);
      break;
    case 'VERSION':
      r = Math.sign(kv.version - c.version);
      break;
    case 'CREATE':
      r = Math.sign(kv.createRevision - c.createRevision);
      break;
    case 'MOD':
      r = Math.sign(kv.modRevision - c.modRevision);
      break;
    case 'LEASE':
      r = kv.lease === c.lease ? 0 : kv.lease < c.lease ? -1 : 1;
      break;
  }
  switch (c.result) {
    case 'EQUAL':
      return r === 0;
    case 'NOT_EQUAL':
      return r !== 0;
    case 'GREATER':
      return r > 0;
    case 'LESS':
      return r < 0;
  }
}

async function choosePath(env: TxnEnv, req: TxnRequest): Promise<PathNode> {
  let succeeded = true;
  for (const c of req.compare ?? []) {
    if (!(await evaluateCompare(env.reader, env.codec, env.currentRevision, c, { cache: env.cache, live: env.live }))) {
      succeeded = false;
      break;
    }
  }
  const children: PathNode[] = [];
  for (const op of branch(req, succeeded)) {
    if (op.type === 'txn') children.push(await choosePath(env, op.request));
  }
  return { succeeded, children };
}

/** The path of a txn with no compares and no nested txn in its success branch (Put and DeleteRange are such txns). */
const UNCONDITIONAL: PathNode = Object.freeze({ succeeded: true, children: Object.freeze([]) });

/** Whether `req`'s path is {@link UNCONDITIONAL}, with nothing to evaluate. */
function isUnconditional(req: TxnRequest): boolean {
  if (req.compare !== undefined && req.compare.length > 0) return false;
  for (const op of req.success ?? []) if (op.type === 'txn') return false;
  return true;
}

function branch(req: TxnRequest, succeeded: boolean): readonly RequestOp[] {
  return (succeeded ? req.success : req.failure) ?? [];
}

/** The ops on the chosen path in order, nested txns' included (the branch itself when it nests none). */
function pathOps(req: TxnRequest, path: PathNode): Iterable<RequestOp> {
  return path.children.length === 0 ? branch(req, path.succeeded) : nestedPathOps(req, path);
}

function* nestedPathOps(req: TxnRequest, path: PathNode): Generator<RequestOp> {
  let child = 0;
  for (const op of branch(req, path.succeeded)) {
    if (op.type === 'txn') yield* nestedPathOps(op.request, path.children[child++] as PathNode);
    else yield op;
  }
}

async function checkPuts(env: TxnEnv, req: TxnRequest, path: PathNode): Promise<void> {
  for (const op of pathOps(req, path)) {
    if (op.type !== 'put') continue;
    const put = op.request;
    let live = true;
    if (put.ignoreValue === true || put.ignoreLease === true) {
      const e = await getLatest(env.reader, env.codec, put.key, env.currentRevision, env.cache);
      live = e !== undefined && !isTombstoneRecord(e.record);
    }
    checkPut(env, put, live);
  }
}

/** A put's checks before any op runs (etcd's checkPut): ignore_value/ignore_lease need a live key (`live`), a lease must exist. */
function checkPut(env: TxnEnv, put: PutRequest, live: boolean): void {
  if ((put.ignoreValue === true || put.ignoreLease === true) && !live) throw new KeyNotFoundError();
  const lease = put.lease ?? 0n;
  if (lease !== 0n && env.leaseExists !== undefined && !env.leaseExists(lease)) throw new LeaseNotFoundError(lease);
}

function checkRanges(env: TxnEnv, req: TxnRequest, path: PathNode): void {
  for (const op of pathOps(req, path)) {
    if (op.type !== 'range') continue;
    checkReadRevision(op.request.revision ?? 0, env.currentRevision, env.compactRevision);
  }
}

/** etcd's revision bounds for a read: 0 is current, above current is future, below compacted is gone. */
export function checkReadRevision(revision: number, current: number, compacted: number): void {
  if (revision > current) throw new FutureRevisionError(current);
  if (revision > 0 && revision < compacted) throw new CompactedError(compacted);
}

/** Runs ops, keeping the txn's own writes in an overlay for later reads. */
class Executor {
  readonly ops: BatchOp[] = [];
  /** Keys created and deleted so far. */
  readonly liveChanges: LiveChange[] = [];
  /** Written keys by key segment (latin1), as entries at the write revision. */
  private readonly overlay = new Map<string, LatestEntry>();

  constructor(private readonly env: TxnEnv) {}

  async runTxn(req: TxnRequest, path: PathNode): Promise<TxnResult> {
    const responses: ResponseOp[] = [];
    let child = 0;
    for (const op of branch(req, path.succeeded)) {
      switch (op.type) {
        case 'range':
          responses.push({ type: 'range', response: await this.range(op.request) });
          break;
        case 'put':
          responses.push({ type: 'put', response: await this.put(op.request) });
          break;
        case 'deleteRange':
          responses.push({ type: 'deleteRange', response: await this.deleteRange(op.request) });
          break;
        case 'txn':
          responses.push({ type: 'txn', response: await this.runTxn(op.request, path.children[child++] as PathNode) });
          break;
      }
    }
    return { succeeded: path.succeeded, responses, revision: 0 };
  }

  private async range(req: RangeRequest): Promise<RangeResult> {
    const span = resolveSpan(req.key, req.rangeEnd);
    const rev = req.revision ?? 0;
    // A read at an explicit revision (<= the pre-txn one) cannot see this txn.
    const entries = rev > 0 ? scanLatest(this.env.reader, this.env.codec, span, rev, { cache: this.env.cache, live: this.env.live }) : this.latest(span);
    const outcome = await evaluateRange(entries, this.env.codec, req);
    return { ...outcome, revision: 0 };
  }

  private async put(req: PutRequest): Promise<PutResponse> {
    const { codec, reader, currentRevision, cache } = this.env;
    const segment = codec.keySegment(req.key);
    // The previous value is read only when the put returns or keeps it; otherwise its metadata does.
    if (needsPrevious(req)) {
      const e = await getLatest(reader, codec, req.key, currentRevision, cache);
      return this.putResolved(req, segment, metaOf(e), e);
    }
    return this.putResolved(req, segment, await getLatestMeta(reader, codec, req.key, currentRevision, cache), undefined);
  }

  /**
   * A put whose key's newest version is known: its metadata (`meta`, null
   * for no live key) and, when the put needs its previous value, the entry
   * itself (`previous`).
   */
  putResolved(req: PutRequest, segment: Buffer, meta: LatestMeta | null, previous: LatestEntry | undefined): PutResponse {
    const { writeRevision } = this.env;
    // checkTxnRequest makes this unreachable; it guards one version per key and revision.
    if (this.overlay.has(segment.toString('latin1'))) throw new DuplicateKeyError();
    const key = Buffer.from(req.key);
    const prev = previous === undefined ? null : toKeyValue(key, previous.revision, previous.record);
    if ((req.ignoreValue === true || req.ignoreLease === true) && meta === null) throw new KeyNotFoundError();
    const value = req.ignoreValue === true && prev !== null ? prev.value : (req.value ?? Buffer.alloc(0));
    const lease = req.ignoreLease === true && meta !== null ? meta.lease : (req.lease ?? 0n);
    const record =
      meta === null
        ? encodePut(writeRevision, 1, lease, value)
        : encodePut(meta.createRevision, meta.version + 1, lease, value);
    this.write(key, segment, record);
    if (meta === null) this.liveChanges.push({ key, delta: 1 });
    return req.prevKv === true && prev !== null ? { prevKv: prev, revision: 0 } : { revision: 0 };
  }

  private async deleteRange(req: DeleteRangeRequest): Promise<{ deleted: number; prevKvs: KeyValue[]; revision: number }> {
    const { codec, writeRevision } = this.env;
    const span = resolveSpan(req.key, req.rangeEnd);
    const live: LatestEntry[] = [];
    for await (const e of this.latest(span)) {
      if (isTombstoneRecord(e.record)) continue;
      // A key this txn already put: only reachable through sibling nested
      // txns that etcd lets through; one version per key and revision forbids it.
      if (e.revision === writeRevision) throw new DuplicateKeyError();
      live.push(e);
    }
    const prevKvs: KeyValue[] = [];
    for (const e of live) {
      const key = codec.userKeyOfSegment(e.keySegment);
      this.write(key, e.keySegment, TOMBSTONE_RECORD);
      this.liveChanges.push({ key, delta: -1 });
      if (req.prevKv === true) {
        const kv = toKeyValue(key, e.revision, e.record);
        if (kv !== null) prevKvs.push(kv);
      }
    }
    return { deleted: live.length, prevKvs, revision: 0 };
  }

  /** Newest entries at the txn's point of view: pre-txn state plus own writes. */
  private latest(span: KeySpan): AsyncIterable<LatestEntry> {
    const base = scanLatest(this.env.reader, this.env.codec, span, this.env.currentRevision, { cache: this.env.cache, live: this.env.live });
    if (this.overlay.size === 0) return base;
    const own: LatestEntry[] = [];
    for (const e of this.overlay.values()) {
      if (spanContains(span, this.env.codec.userKeyOfSegment(e.keySegment))) own.push(e);
    }
    own.sort((a, b) => Buffer.compare(a.keySegment, b.keySegment));
    return mergeOverlay(base, own);
  }

  /** The outcome of this executor's run, whose result is `result`. */
  execution(result: TxnResult): TxnExecution {
    const consumed = this.ops.length > 0;
    const revision = consumed ? this.env.writeRevision : this.env.currentRevision;
    return {
      result: finalizeTxn(result, revision),
      ops: this.ops,
      consumed,
      keysDelta: this.liveChanges.reduce((n, c) => n + c.delta, 0),
      liveChanges: this.liveChanges,
      written: [...this.overlay.values()],
    };
  }

  private write(key: Buffer, segment: Buffer, record: Buffer): void {
    const { codec, writeRevision } = this.env;
    this.ops.push({ type: 'put', key: codec.dataKey(key, writeRevision), value: record });
    this.ops.push({ type: 'put', key: codec.revIndexKey(writeRevision, key), value: EMPTY });
    this.overlay.set(segment.toString('latin1'), { keySegment: Buffer.from(segment), revision: writeRevision, record });
  }
}

const EMPTY = Buffer.alloc(0);

/** Sets every (nested) response's revision to the txn's final revision. */
function finalizeTxn(r: TxnResult, revision: number): TxnResult {
  return { succeeded: r.succeeded, revision, responses: r.responses.map((op) => finalizeOp(op, revision)) };
}

function finalizeOp(op: ResponseOp, revision: number): ResponseOp {
  switch (op.type) {
    case 'range':
      return { type: 'range', response: { ...op.response, revision } };
    case 'put':
      return { type: 'put', response: { ...op.response, revision } };
    case 'deleteRange':
      return { type: 'deleteRange', response: { ...op.response, revision } };
    case 'txn':
      return { type: 'txn', response: finalizeTxn(op.response, revision) };
  }
}
