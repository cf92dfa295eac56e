/**
 * Conversion between the wire shapes of etcd's KV messages (messages.ts:
 * .proto field names, enums as numbers) and the MVCC request/result shapes
 * the replica takes (src/shard/mvcc/types.ts: camelCase, enums as names).
 * Pure functions; absent optional fields mean etcd's defaults on both sides.
 */
import type * as mvcc from '../shard/mvcc/index.js';
import type {
  Compare,
  DeleteRangeRequest,
  DeleteRangeResponse,
  KeyValue,
  Out,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  ResponseHeader,
  ResponseOp,
  TxnRequest,
  TxnResponse,
} from './messages.js';
import { CompareResult, CompareTarget, SortOrder, SortTarget } from './messages.js';
import { encodeKeyValues } from './kv-wire.js';
import { ENCODED_FIELDS, type MessageWithEncodedFields } from './proto.js';

/** RangeResponse.kvs's field number (etcdserverpb/rpc.proto). */
const RANGE_RESPONSE_KVS_FIELD = 2;

const SORT_ORDERS: Readonly<Record<number, mvcc.SortOrder>> = {
  [SortOrder.NONE]: 'NONE',
  [SortOrder.ASCEND]: 'ASCEND',
  [SortOrder.DESCEND]: 'DESCEND',
};
const SORT_TARGETS: Readonly<Record<number, mvcc.SortTarget>> = {
  [SortTarget.KEY]: 'KEY',
  [SortTarget.VERSION]: 'VERSION',
  [SortTarget.CREATE]: 'CREATE',
  [SortTarget.MOD]: 'MOD',
  [SortTarget.VALUE]: 'VALUE',
};
const COMPARE_OPS: Readonly<Record<number, mvcc.CompareOp>> = {
  [CompareResult.EQUAL]: 'EQUAL',
  [CompareResult.GREATER]: 'GREATER',
  [CompareResult.LESS]: 'LESS',
  [CompareResult.NOT_EQUAL]: 'NOT_EQUAL',
};

/** `range_end` as MVCC takes it: absent for a single key. */
function endOf(rangeEnd: Buffer): { rangeEnd?: Uint8Array } {
  return rangeEnd.length === 0 ? {} : { rangeEnd };
}

/**
 * RangeRequest → MVCC. Unknown sort enums fall back to etcd 3.4/3.5's
 * behaviour: an unknown order is treated as NONE, an unknown target as KEY
 * (etcd's apply switch has no case for them, so they sort nothing).
 */
export function rangeToMvcc(r: RangeRequest): mvcc.RangeRequest {
  return {
    key: r.key,
    ...endOf(r.range_end),
    limit: r.limit > 0 ? r.limit : 0,
    revision: r.revision > 0 ? r.revision : 0,
    sortOrder: SORT_ORDERS[r.sort_order] ?? 'NONE',
    sortTarget: SORT_TARGETS[r.sort_target] ?? 'KEY',
    keysOnly: r.keys_only,
    countOnly: r.count_only,
    minModRevision: r.min_mod_revision,
    maxModRevision: r.max_mod_revision,
    minCreateRevision: r.min_create_revision,
    maxCreateRevision: r.max_create_revision,
  };
}

/** PutRequest → MVCC. */
export function putToMvcc(r: PutRequest): mvcc.PutRequest {
  return {
    key: r.key,
    value: r.value,
    lease: r.lease,
    prevKv: r.prev_kv,
    ignoreValue: r.ignore_value,
    ignoreLease: r.ignore_lease,
  };
}

/** DeleteRangeRequest → MVCC. */
export function deleteRangeToMvcc(r: DeleteRangeRequest): mvcc.DeleteRangeRequest {
  return { key: r.key, ...endOf(r.range_end), prevKv: r.prev_kv };
}

/**
 * Compare → MVCC. The oneof member is read by the target; an absent member
 * is its zero value (a Go client always sends it, but JSON bodies may not).
 */
export function compareToMvcc(c: Compare): mvcc.Compare {
  const base = { key: c.key, ...endOf(c.range_end), result: COMPARE_OPS[c.result] ?? 'EQUAL' };
  switch (c.target) {
    case CompareTarget.VERSION:
      return { ...base, target: 'VERSION', version: c.version ?? 0 };
    case CompareTarget.CREATE:
      return { ...base, target: 'CREATE', createRevision: c.create_revision ?? 0 };
    case CompareTarget.MOD:
      return { ...base, target: 'MOD', modRevision: c.mod_revision ?? 0 };
    case CompareTarget.VALUE:
      return { ...base, target: 'VALUE', value: c.value ?? Buffer.alloc(0) };
    case CompareTarget.LEASE:
      return { ...base, target: 'LEASE', lease: c.lease ?? 0n };
    default:
      // Not a target etcd defines (no client sends one); compared as a
      // version compare against 0 so the request still has a definite outcome.
      return { ...base, target: 'VERSION', version: 0 };
  }
}

/** RequestOp → MVCC (validation has ensured exactly one member is set). */
export function requestOpToMvcc(op: RequestOp): mvcc.RequestOp {
  if (op.request_range !== undefined) return { type: 'range', request: rangeToMvcc(op.request_range) };
  if (op.request_put !== undefined) return { type: 'put', request: putToMvcc(op.request_put) };
  if (op.request_delete_range !== undefined) return { type: 'deleteRange', request: deleteRangeToMvcc(op.request_delete_range) };
  if (op.request_txn !== undefined) return { type: 'txn', request: txnToMvcc(op.request_txn) };
  throw new Error('requestOpToMvcc: empty RequestOp (validation must refuse it)');
}

/** TxnRequest → MVCC, nested txns included. */
export function txnToMvcc(r: TxnRequest): mvcc.TxnRequest {
  return {
    compare: r.compare.map(compareToMvcc),
    success: r.success.map(requestOpToMvcc),
    failure: r.failure.map(requestOpToMvcc),
  };
}

// ---------------------------------------------------------------- results

/** MVCC KeyValue → mvccpb.KeyValue. */
export function kvToWire(kv: mvcc.KeyValue): Out<KeyValue> {
  return {
    key: kv.key,
    create_revision: kv.createRevision,
    mod_revision: kv.modRevision,
    version: kv.version,
    value: kv.value,
    lease: kv.lease,
  };
}

/** The header of a ResponseOp inside a Txn: etcd fills in only the revision. */
function innerHeader(revision: number): Out<ResponseHeader> {
  return { revision };
}

/** RangeResult → RangeResponse (header given by the caller). */
export function rangeResultToWire(r: mvcc.RangeResult, header: Out<ResponseHeader>): Out<RangeResponse> {
  const kvs = r.kvs;
  const out: Out<RangeResponse> & MessageWithEncodedFields = {
    header: header as ResponseHeader,
    // Made when read: the gRPC encoding uses the bytes below; the JSON gateway reads the objects.
    get kvs() {
      return kvs.map(kvToWire) as KeyValue[];
    },
    more: r.more,
    count: r.count,
    [ENCODED_FIELDS]: [{ name: 'kvs', parts: [encodeKeyValues(RANGE_RESPONSE_KVS_FIELD, kvs)] }],
  };
  return out;
}

/** A Txn's inner RangeResponse: its kvs as objects, since the enclosing message is encoded field by field. */
function innerRangeResultToWire(r: mvcc.RangeResult, header: Out<ResponseHeader>): Out<RangeResponse> {
  return { header: header as ResponseHeader, kvs: r.kvs.map(kvToWire) as KeyValue[], more: r.more, count: r.count };
}

/** PutResult → PutResponse. */
export function putResultToWire(r: mvcc.PutResult, header: Out<ResponseHeader>): Out<PutResponse> {
  return r.prevKv === undefined
    ? { header: header as ResponseHeader }
    : { header: header as ResponseHeader, prev_kv: kvToWire(r.prevKv) as KeyValue };
}

/** DeleteRangeResult → DeleteRangeResponse. */
export function deleteRangeResultToWire(r: mvcc.DeleteRangeResult, header: Out<ResponseHeader>): Out<DeleteRangeResponse> {
  return { header: header as ResponseHeader, deleted: r.deleted, prev_kvs: r.prevKvs.map(kvToWire) as KeyValue[] };
}

/**
 * TxnResult → TxnResponse. Inner range, put and delete responses carry a
 * revision-only header and a nested txn's response an empty one, as etcd's
 * applyTxn leaves them (only the outer header is filled by the server).
 */
export function txnResultToWire(r: mvcc.TxnResult, header: Out<ResponseHeader>): Out<TxnResponse> {
  return {
    header: header as ResponseHeader,
    succeeded: r.succeeded,
    responses: r.responses.map((op) => responseOpToWire(op, r.revision)) as ResponseOp[],
  };
}

function responseOpToWire(op: mvcc.ResponseOp, revision: number): Out<ResponseOp> {
  const h = innerHeader(revision);
  switch (op.type) {
    case 'range':
      return { response_range: innerRangeResultToWire(op.response, h) as RangeResponse };
    case 'put':
      return { response_put: putResultToWire(op.response, h) as PutResponse };
    case 'deleteRange':
      return { response_delete_range: deleteRangeResultToWire(op.response, h) as DeleteRangeResponse };
    case 'txn':
      return { response_txn: txnResultToWire(op.response, {}) as TxnResponse };
  }
}

// ---------------------------------------------------------------- inspection

/**
 * The smallest span covering every key a txn touches (compares and ops, any
 * depth), for routing: `[start, end)` with `end` "\0"-style open when a
 * from-key op is present. With one range every span routes to it; spans
 * across ranges need cross-range transactions (later).
 */
export function txnSpan(r: TxnRequest): { key: Buffer; rangeEnd: Buffer } {
  let lo: Buffer | undefined;
  let hi: Buffer | undefined; // exclusive
  let open = false;
  const add = (key: Buffer, rangeEnd: Buffer): void => {
    if (lo === undefined || Buffer.compare(key, lo) < 0) lo = key;
    let end: Buffer;
    if (rangeEnd.length === 0) end = Buffer.concat([key, Buffer.of(0)]);
    else if (rangeEnd.length === 1 && rangeEnd[0] === 0) {
      open = true;
      return;
    } else end = Buffer.compare(rangeEnd, key) > 0 ? rangeEnd : Buffer.concat([key, Buffer.of(0)]);
    if (hi === undefined || Buffer.compare(end, hi) > 0) hi = end;
  };
  const walk = (t: TxnRequest): void => {
    for (const c of t.compare) add(c.key, c.range_end);
    for (const op of [...t.success, ...t.failure]) {
      if (op.request_range !== undefined) add(op.request_range.key, op.request_range.range_end);
      else if (op.request_put !== undefined) add(op.request_put.key, Buffer.alloc(0));
      else if (op.request_delete_range !== undefined) add(op.request_delete_range.key, op.request_delete_range.range_end);
      else if (op.request_txn !== undefined) walk(op.request_txn);
    }
  };
  walk(r);
  if (lo === undefined) return { key: Buffer.of(0), rangeEnd: Buffer.alloc(0) };
  return { key: lo, rangeEnd: open ? Buffer.of(0) : (hi ?? Buffer.alloc(0)) };
}
