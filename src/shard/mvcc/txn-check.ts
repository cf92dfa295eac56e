/**
 * Stateless validation of a Txn request, as etcd's gRPC layer does it before
 * anything is applied (v3rpc/key.go; reference §2.4–2.5): empty keys, the
 * ignore_value/ignore_lease flags, and keys written twice in one branch.
 * The op-count limit (--max-txn-ops) is the gateway's, not checked here.
 */
import {
  DuplicateKeyError,
  KeyNotProvidedError,
  LeaseProvidedError,
  ValueProvidedError,
} from './errors.js';
import type { DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from './types.js';

/** Checks a Range request's stateless rules. */
export function checkRangeRequest(req: RangeRequest): void {
  if (req.key.length === 0) throw new KeyNotProvidedError();
}

/** Checks a Put request's stateless rules. */
export function checkPutRequest(req: PutRequest): void {
  if (req.key.length === 0) throw new KeyNotProvidedError();
  if (req.ignoreValue === true && req.value !== undefined && req.value.length > 0) throw new ValueProvidedError();
  if (req.ignoreLease === true && req.lease !== undefined && req.lease !== 0n) throw new LeaseProvidedError();
}

/** Checks a DeleteRange request's stateless rules. */
export function checkDeleteRangeRequest(req: DeleteRangeRequest): void {
  if (req.key.length === 0) throw new KeyNotProvidedError();
}

/** Checks a Txn request: every compare and op (recursively), then duplicate writes. */
export function checkTxnRequest(req: TxnRequest): void {
  checkTxnOps(req);
  // As etcd: overlap checks run after the per-op checks, per top-level branch.
  checkIntervals(req.success ?? []);
  checkIntervals(req.failure ?? []);
}

function checkTxnOps(req: TxnRequest): void {
  for (const c of req.compare ?? []) if (c.key.length === 0) throw new KeyNotProvidedError();
  for (const op of req.success ?? []) checkRequestOp(op);
  for (const op of req.failure ?? []) checkRequestOp(op);
}

function checkRequestOp(op: RequestOp): void {
  switch (op.type) {
    case 'range':
      return checkRangeRequest(op.request);
    case 'put':
      return checkPutRequest(op.request);
    case 'deleteRange':
      return checkDeleteRangeRequest(op.request);
    case 'txn':
      return checkTxnOps(op.request);
  }
}

/** A delete's key interval; `end` null is unbounded, `point` a single key. */
interface Interval {
  readonly start: Buffer;
  readonly end: Buffer | null;
  readonly point: boolean;
}

function deleteInterval(req: DeleteRangeRequest): Interval {
  const start = Buffer.from(req.key);
  const end = req.rangeEnd;
  if (end === undefined || end.length === 0) return { start, end: start, point: true };
  // etcd compares "\0" as a plain string here, so a from-key delete never
  // conflicts there; we treat it as unbounded (what it means), which rejects
  // txns whose put would otherwise land under a same-revision delete.
  if (end.length === 1 && end[0] === 0) return { start, end: null, point: false };
  return { start, end: Buffer.from(end), point: false };
}

function intersects(dels: readonly Interval[], key: Buffer): boolean {
  for (const d of dels) {
    if (d.point) {
      if (d.start.equals(key)) return true;
    } else if (Buffer.compare(key, d.start) >= 0 && (d.end === null || Buffer.compare(key, d.end) < 0)) {
      return true;
    }
  }
  return false;
}

/**
 * etcd's checkIntervals: puts of one op list (including nested txns, whose
 * then/else branches may put the same key since only one runs) must be
 * unique and outside every delete range of the list; deletes may overlap.
 */
function checkIntervals(ops: readonly RequestOp[]): { puts: Set<string>; dels: Interval[] } {
  const dels: Interval[] = [];
  for (const op of ops) if (op.type === 'deleteRange') dels.push(deleteInterval(op.request));
  const puts = new Set<string>();
  for (const op of ops) {
    if (op.type !== 'txn') continue;
    const then = checkIntervals(op.request.success ?? []);
    const otherwise = checkIntervals(op.request.failure ?? []);
    for (const k of then.puts) {
      if (puts.has(k) || intersects(dels, Buffer.from(k, 'latin1'))) throw new DuplicateKeyError();
      puts.add(k);
    }
    for (const k of otherwise.puts) {
      if (puts.has(k) && !then.puts.has(k)) throw new DuplicateKeyError();
      if (intersects(dels, Buffer.from(k, 'latin1'))) throw new DuplicateKeyError();
      puts.add(k);
    }
    dels.push(...then.dels, ...otherwise.dels);
  }
  for (const op of ops) {
    if (op.type !== 'put') continue;
    const key = Buffer.from(op.request.key);
    const k = key.toString('latin1');
    if (puts.has(k) || intersects(dels, key)) throw new DuplicateKeyError();
    puts.add(k);
  }
  return { puts, dels };
}
