/**
 * etcd's request validation at the gRPC edge, as pure functions over the
 * in-memory message shapes (src/gateway/messages.ts). Each check throws the
 * EtcdError etcd 3.5 returns, in etcd's order, before anything is proposed
 * (etcd: server/etcdserver/api/v3rpc/key.go, lease.go, grpc.go; lease/lessor.go).
 *
 * What etcd does NOT reject here, and neither do we: a negative `limit`
 * (means no limit), a `revision` <= 0 (means the current revision), unknown
 * sort enums (3.6 added "invalid sort option"; opt in with
 * `rejectInvalidSort`), a negative or tiny lease TTL (raised to the minimum).
 */
import { minLeaseTtlSeconds as minLeaseTtlSecondsOfTicks } from '../shard/lease/index.js';
import { ETCD_RAW_MESSAGES, EtcdError } from './errors.js';
import type {
  CompactionRequest,
  DeleteRangeRequest,
  LeaseGrantRequest,
  PutRequest,
  RangeRequest,
  RequestOp,
  TxnRequest,
  WatchCreateRequest,
} from './messages.js';
import { SortOrder, SortTarget } from './messages.js';

// ------------------------------------------------------------------- limits

/** etcd's --max-txn-ops default: ops per Txn branch (and compares). */
export const DEFAULT_MAX_TXN_OPS = 128;
/** etcd's --max-request-bytes default: 1.5 MiB, checked on the encoded raft request. */
export const DEFAULT_MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;
/** What etcd adds to max-request-bytes for gRPC's own receive limit (v3rpc/grpc.go). */
export const GRPC_OVERHEAD_BYTES = 512 * 1024;
/** Largest lease TTL etcd grants, in seconds (lease.MaxLeaseTTL). */
export const MAX_LEASE_TTL_SECONDS = 9_000_000_000;
/** etcd's election timeout and heartbeat defaults, in ms (10 ticks of 100 ms). */
export const DEFAULT_ELECTION_TIMEOUT_MS = 1000;
/** etcd's heartbeat interval default, in ms. */
export const DEFAULT_HEARTBEAT_MS = 100;

/**
 * gRPC's receive limit for a server allowing `maxRequestBytes` per request
 * (`grpc.max_receive_message_length` for grpc-js). A message above it is
 * refused by gRPC itself with RESOURCE_EXHAUSTED ("Received message larger
 * than max ..."), before etcd's own "request is too large" check can run;
 * between the two limits the client gets etcd's InvalidArgument text.
 */
export function grpcMaxReceiveBytes(maxRequestBytes: number = DEFAULT_MAX_REQUEST_BYTES): number {
  return maxRequestBytes + GRPC_OVERHEAD_BYTES;
}

/**
 * etcd's minimum lease TTL in whole seconds: ceil(1.5 × election timeout),
 * so leases cannot expire during a leader election (2 s with the defaults).
 */
export function minLeaseTtlSeconds(
  opts: { electionTimeoutMs?: number; heartbeatMs?: number } = {},
): number {
  const heartbeatMs = opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  const electionTicks = Math.floor((opts.electionTimeoutMs ?? DEFAULT_ELECTION_TIMEOUT_MS) / heartbeatMs);
  return minLeaseTtlSecondsOfTicks(electionTicks, heartbeatMs);
}

// ----------------------------------------------------------------------- KV

/** Options of {@link checkRangeRequest}. */
export interface RangeCheckOptions {
  /** etcd 3.6's "invalid sort option" check; off by default, as in 3.4/3.5. */
  readonly rejectInvalidSort?: boolean;
}

const SORT_ORDERS: ReadonlySet<number> = new Set(Object.values(SortOrder));
const SORT_TARGETS: ReadonlySet<number> = new Set(Object.values(SortTarget));

/** Range: the key is required. */
export function checkRangeRequest(
  r: Pick<RangeRequest, 'key' | 'sort_order' | 'sort_target'>,
  opts: RangeCheckOptions = {},
): void {
  if (r.key.length === 0) throw EtcdError.of('EMPTY_KEY');
  if (opts.rejectInvalidSort === true && (!SORT_ORDERS.has(r.sort_order) || !SORT_TARGETS.has(r.sort_target))) {
    throw EtcdError.of('INVALID_SORT_OPTION');
  }
}

/** Put: key required; ignore_value forbids a value, ignore_lease a lease (lease 0 means none). */
export function checkPutRequest(
  r: Pick<PutRequest, 'key' | 'value' | 'lease' | 'ignore_value' | 'ignore_lease'>,
): void {
  if (r.key.length === 0) throw EtcdError.of('EMPTY_KEY');
  if (r.ignore_value && r.value.length !== 0) throw EtcdError.of('VALUE_PROVIDED');
  if (r.ignore_lease && r.lease !== 0n) throw EtcdError.of('LEASE_PROVIDED');
  // "key not found" for ignore_* on a missing key needs the store: the MVCC layer checks it.
}

/** DeleteRange: the key is required. */
export function checkDeleteRangeRequest(r: Pick<DeleteRangeRequest, 'key'>): void {
  if (r.key.length === 0) throw EtcdError.of('EMPTY_KEY');
}

/** Options of {@link checkTxnRequest}. */
export interface TxnCheckOptions {
  /** etcd's --max-txn-ops; default 128. */
  readonly maxTxnOps?: number;
  /** Passed to the Range checks of the txn's ops. */
  readonly range?: RangeCheckOptions;
}

/**
 * Txn, as etcd's kvServer.Txn: first the op budget and every compare and op
 * (recursively), then the put/delete overlap check of each top-level branch
 * (run last to avoid quadratic work on requests that fail the cheap checks).
 */
export function checkTxnRequest(r: TxnRequest, opts: TxnCheckOptions = {}): void {
  checkTxnOps(r, opts.maxTxnOps ?? DEFAULT_MAX_TXN_OPS, opts.range ?? {});
  checkIntervals(r.success);
  checkIntervals(r.failure);
}

/**
 * The budget is max(len(compare), len(success), len(failure)) at each level;
 * a nested txn gets what its parent's level left over (etcd's rule, which
 * bounds depth as well as width).
 */
function checkTxnOps(r: TxnRequest, maxTxnOps: number, rangeOpts: RangeCheckOptions): void {
  const opc = Math.max(r.compare.length, r.success.length, r.failure.length);
  if (opc > maxTxnOps) throw EtcdError.of('TOO_MANY_OPS');
  for (const c of r.compare) if (c.key.length === 0) throw EtcdError.of('EMPTY_KEY');
  for (const op of r.success) checkRequestOp(op, maxTxnOps - opc, rangeOpts);
  for (const op of r.failure) checkRequestOp(op, maxTxnOps - opc, rangeOpts);
}

function checkRequestOp(op: RequestOp, maxTxnOps: number, rangeOpts: RangeCheckOptions): void {
  if (op.request_range !== undefined) return checkRangeRequest(op.request_range, rangeOpts);
  if (op.request_put !== undefined) return checkPutRequest(op.request_put);
  if (op.request_delete_range !== undefined) return checkDeleteRangeRequest(op.request_delete_range);
  if (op.request_txn !== undefined) return checkTxnOps(op.request_txn, maxTxnOps, rangeOpts);
  // An empty RequestOp: etcd's text for it is "key not found".
  throw EtcdError.of('KEY_NOT_FOUND');
}

/**
 * A delete's interval as etcd's adt.StringAffineInterval compares it: `end`
 * null is +infinity (never produced by a request, kept for clarity), a
 * one-byte "\0" end is just the smallest non-empty key, not "to the end".
 */
interface DeleteInterval {
  readonly start: Buffer;
  /** Exclusive; for a single-key delete it is start + "\0". */
  readonly end: Buffer;
}

function deleteInterval(r: DeleteRangeRequest): DeleteInterval {
  if (r.range_end.length === 0) return { start: r.key, end: Buffer.concat([r.key, Buffer.of(0)]) };
  return { start: r.key, end: r.range_end };
}

function intersectsAny(dels: readonly DeleteInterval[], key: Buffer): boolean {
  for (const d of dels) {
    if (Buffer.compare(d.start, key) <= 0 && Buffer.compare(key, d.end) < 0) return true;
  }
  return false;
}

/** Keys are compared as binary strings; latin1 maps bytes to code units 1:1. */
function keyId(key: Buffer): string {
  return key.toString('latin1');
}

/**
 * etcd's checkIntervals, rule for rule, in op order:
 * 1. collect this level's delete ranges;
 * 2. for each nested txn (in order): its then- and else-branch puts must not
 *    repeat a put collected so far (then/else may share a key: only one runs)
 *    nor fall in the deletes collected so far; then its deletes join the set;
 * 3. this level's puts must be unique and outside every collected delete.
 * Delete/delete overlap is allowed. A from-key delete (range_end "\0") does
 * not conflict with any put, because etcd compares "\0" as a plain key here;
 * keyspan keeps that quirk so the same txns are accepted as by etcd.
 */
function checkIntervals(ops: readonly RequestOp[]): { puts: Set<string>; dels: DeleteInterval[] } {
  const dels: DeleteInterval[] = [];
  for (const op of ops) if (op.request_delete_range !== undefined) dels.push(deleteInterval(op.request_delete_range));

  const puts = new Set<string>();
  for (const op of ops) {
    const txn = op.request_txn;
    if (txn === undefined) continue;
    const thenSide = checkIntervals(txn.success);
    const elseSide = checkIntervals(txn.failure);
    for (const k of thenSide.puts) {
      if (puts.has(k) || intersectsAny(dels, Buffer.from(k, 'latin1'))) throw EtcdError.of('DUPLICATE_KEY');
      puts.add(k);
    }
    for (const k of elseSide.puts) {
      if (puts.has(k) && !thenSide.puts.has(k)) throw EtcdError.of('DUPLICATE_KEY');
      if (intersectsAny(dels, Buffer.from(k, 'latin1'))) throw EtcdError.of('DUPLICATE_KEY');
      puts.add(k);
    }
    dels.push(...thenSide.dels, ...elseSide.dels);
  }

  for (const op of ops) {
    const put = op.request_put;
    if (put === undefined) continue;
    const k = keyId(put.key);
    if (puts.has(k) || intersectsAny(dels, put.key)) throw EtcdError.of('DUPLICATE_KEY');
    puts.add(k);
  }
  return { puts, dels };
}

/** Revisions the store is at, for the stateful-but-pure revision checks below. */
export interface StoreRevisions {
  /** The newest revision. */
  readonly currentRevision: number;
  /** The compacted revision; -1 before the first compaction (etcd allows Compact(0) then). */
  readonly compactRevision: number;
}

/**
 * A read at `revision` (<= 0 means current): above current → future
 * revision; below the compacted revision → compacted (equal is fine).
 */
export function checkReadRevision(revision: number, s: StoreRevisions): void {
  if (revision <= 0) return;
  if (revision > s.currentRevision) throw EtcdError.of('FUTURE_REV');
  if (revision < s.compactRevision) throw EtcdError.of('COMPACTED');
}

/** Compaction: at or below the compacted revision → compacted; above current → future revision. */
export function checkCompactionRequest(r: Pick<CompactionRequest, 'revision'>, s: StoreRevisions): void {
  if (r.revision <= s.compactRevision) throw EtcdError.of('COMPACTED');
  if (r.revision > s.currentRevision) throw EtcdError.of('FUTURE_REV');
}

// -------------------------------------------------------------------- Watch

/**
 * A watch create's problem as the `cancel_reason` etcd puts in a
 * created+canceled response (watch errors are not gRPC errors), or undefined.
 * range_end "\0" means "from key"; any other non-empty range_end must be
 * above the key.
 */
export function watchCreateCancelReason(r: Pick<WatchCreateRequest, 'key' | 'range_end'>): string | undefined {
  const end = r.range_end;
  if (end.length === 0 || (end.length === 1 && end[0] === 0)) return undefined;
  return Buffer.compare(r.key, end) < 0 ? undefined : ETCD_RAW_MESSAGES.WATCHER_RANGE_EMPTY;
}

// -------------------------------------------------------------------- Lease

/**
 * LeaseGrant's TTL as etcd's lessor settles it: above 9e9 s → "too large
 * lease TTL" (OutOfRange); below the minimum (see {@link minLeaseTtlSeconds})
 * it is raised to the minimum, which is what the response then reports.
 * (ID 0 asks the server to choose an ID; that needs state, so it is not here.)
 */
export function effectiveLeaseTtl(r: Pick<LeaseGrantRequest, 'TTL'>, minTtlSeconds: number): number {
  if (r.TTL > MAX_LEASE_TTL_SECONDS) throw EtcdError.of('LEASE_TTL_TOO_LARGE');
  return r.TTL < minTtlSeconds ? minTtlSeconds : r.TTL;
}

// --------------------------------------------------------------------- size

/**
 * etcd's size check on the encoded request (it measures the internal raft
 * request, a few bytes larger than the client's message): strictly above
 * the limit is "request is too large" (InvalidArgument).
 */
export function checkRequestSize(encodedBytes: number, maxRequestBytes: number = DEFAULT_MAX_REQUEST_BYTES): void {
  if (encodedBytes > maxRequestBytes) throw EtcdError.of('REQUEST_TOO_LARGE');
}
