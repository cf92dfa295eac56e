import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { EtcdError, type EtcdErrorCode } from '../../src/gateway/errors.js';
import type { DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from '../../src/gateway/messages.js';
import {
  DEFAULT_MAX_REQUEST_BYTES,
  checkCompactionRequest,
  checkDeleteRangeRequest,
  checkPutRequest,
  checkRangeRequest,
  checkReadRevision,
  checkRequestSize,
  checkTxnRequest,
  effectiveLeaseTtl,
  grpcMaxReceiveBytes,
  minLeaseTtlSeconds,
  watchCreateCancelReason,
} from '../../src/gateway/validate.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const EMPTY = Buffer.alloc(0);

function range(key: string, over: Partial<RangeRequest> = {}): RangeRequest {
  return {
    key: b(key),
    range_end: EMPTY,
    limit: 0,
    revision: 0,
    sort_order: 0,
    sort_target: 0,
    serializable: false,
    keys_only: false,
    count_only: false,
    min_mod_revision: 0,
    max_mod_revision: 0,
    min_create_revision: 0,
    max_create_revision: 0,
    ...over,
  };
}

function put(key: string, over: Partial<PutRequest> = {}): PutRequest {
  return { key: b(key), value: b('v'), lease: 0n, prev_kv: false, ignore_value: false, ignore_lease: false, ...over };
}

function del(key: string, rangeEnd = ''): DeleteRangeRequest {
  return { key: b(key), range_end: b(rangeEnd), prev_kv: false };
}

const P = (key: string): RequestOp => ({ request_put: put(key) });
const D = (key: string, end = ''): RequestOp => ({ request_delete_range: del(key, end) });
const R = (key: string): RequestOp => ({ request_range: range(key) });
const T = (success: RequestOp[], failure: RequestOp[] = []): RequestOp => ({ request_txn: txn(success, failure) });

function txn(success: RequestOp[], failure: RequestOp[] = [], compareKeys: string[] = []): TxnRequest {
  return {
    compare: compareKeys.map((k) => ({ result: 0, target: 0, key: b(k), version: 0, range_end: EMPTY })),
    success,
    failure,
  };
}

function rejects(fn: () => void, code: EtcdErrorCode, message: string, grpcCode: grpc.status): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof EtcdError);
    assert.equal(err.code, code);
    assert.equal(err.message, message);
    assert.equal(err.grpcCode, grpcCode);
    return true;
  });
}

const EMPTY_KEY = (fn: () => void): void =>
  rejects(fn, 'EMPTY_KEY', 'etcdserver: key is not provided', grpc.status.INVALID_ARGUMENT);
const DUP = (fn: () => void): void =>
  rejects(fn, 'DUPLICATE_KEY', 'etcdserver: duplicate key given in txn request', grpc.status.INVALID_ARGUMENT);

test('Range() requires a key; negative limit and revision pass, as in etcd', () => {
  EMPTY_KEY(() => checkRangeRequest(range('')));
  checkRangeRequest(range('a', { limit: -1, revision: -5 }));
  checkRangeRequest(range('a', { sort_order: 9 }));
  rejects(
    () => checkRangeRequest(range('a', { sort_target: 9 }), { rejectInvalidSort: true }),
    'INVALID_SORT_OPTION',
    'etcdserver: invalid sort option',
    grpc.status.INVALID_ARGUMENT,
  );
});

test('Put() rejects an empty key, a value with ignore_value and a lease with ignore_lease', () => {
  EMPTY_KEY(() => checkPutRequest(put('')));
  rejects(
    () => checkPutRequest(put('a', { ignore_value: true })),
    'VALUE_PROVIDED',
    'etcdserver: value is provided',
    grpc.status.INVALID_ARGUMENT,
  );
  rejects(
    () => checkPutRequest(put('a', { ignore_lease: true, lease: 5n })),
    'LEASE_PROVIDED',
    'etcdserver: lease is provided',
    grpc.status.INVALID_ARGUMENT,
  );
  checkPutRequest(put('a', { ignore_value: true, value: EMPTY }));
  checkPutRequest(put('a', { ignore_lease: true, lease: 0n }));
  checkPutRequest(put('a', { lease: 0n }));
});

test('DeleteRange() requires a key', () => {
  EMPTY_KEY(() => checkDeleteRangeRequest(del('')));
  checkDeleteRangeRequest(del('a', '\0'));
});

test('Txn() rejects more than max-txn-ops operations in any list', () => {
  const ops = (n: number): RequestOp[] => Array.from({ length: n }, (_, i) => R(`k${i}`));
  const TOO_MANY = (fn: () => void): void =>
    rejects(fn, 'TOO_MANY_OPS', 'etcdserver: too many operations in txn request', grpc.status.INVALID_ARGUMENT);
  checkTxnRequest(txn(ops(128)));
  TOO_MANY(() => checkTxnRequest(txn(ops(129))));
  TOO_MANY(() => checkTxnRequest(txn([], ops(129))));
  TOO_MANY(() => checkTxnRequest(txn([], [], Array.from({ length: 129 }, (_, i) => `c${i}`))));
  TOO_MANY(() => checkTxnRequest(txn(ops(3)), { maxTxnOps: 2 }));
  // A nested txn gets what its parent's level left: 4 - 2 = 2 here.
  checkTxnRequest(txn([T(ops(2)), R('x')]), { maxTxnOps: 4 });
  TOO_MANY(() => checkTxnRequest(txn([T(ops(3)), R('x')]), { maxTxnOps: 4 }));
});

test('Txn() checks compares and ops recursively; an empty op is "key not found"', () => {
  EMPTY_KEY(() => checkTxnRequest(txn([], [], [''])));
  EMPTY_KEY(() => checkTxnRequest(txn([P('')])));
  EMPTY_KEY(() => checkTxnRequest(txn([T([], [D('')])])));
  rejects(() => checkTxnRequest(txn([{}])), 'KEY_NOT_FOUND', 'etcdserver: key not found', grpc.status.INVALID_ARGUMENT);
  rejects(
    () => checkTxnRequest(txn([{ request_put: put('a', { ignore_value: true }) }])),
    'VALUE_PROVIDED',
    'etcdserver: value is provided',
    grpc.status.INVALID_ARGUMENT,
  );
});

test('Txn() rejects duplicate keys: put/put, put inside a delete range, nested', () => {
  DUP(() => checkTxnRequest(txn([P('a'), P('a')])));
  DUP(() => checkTxnRequest(txn([], [P('a'), P('a')])));
  DUP(() => checkTxnRequest(txn([D('a', 'c'), P('b')])));
  DUP(() => checkTxnRequest(txn([P('b'), D('a', 'c')])));
  DUP(() => checkTxnRequest(txn([D('b'), P('b')])));
  DUP(() => checkTxnRequest(txn([P('a'), T([P('a')])])));
  DUP(() => checkTxnRequest(txn([D('a', 'z'), T([P('m')])])));
  DUP(() => checkTxnRequest(txn([T([D('a', 'z')]), P('m')])));
  DUP(() => checkTxnRequest(txn([T([P('a')]), T([], [P('a')])])));
  // The same key in then and else of one nested txn is fine: only one runs.
  checkTxnRequest(txn([T([P('a')], [P('a')])]));
  // ...but not when it already came from an earlier sibling.
  DUP(() => checkTxnRequest(txn([T([P('a')]), T([P('b')], [P('a')])])));
});

// The quirks below were confirmed against etcd 3.4.23 (JSON gateway, /v3/kv/txn).
test('Txn() allows what etcd allows', () => {
  checkTxnRequest(txn([P('a'), P('b'), R('a')]));
  checkTxnRequest(txn([D('a', 'c'), D('b', 'd')]));
  checkTxnRequest(txn([D('a', 'c'), P('c')]));
  // Different top-level branches never conflict.
  checkTxnRequest(txn([P('a')], [P('a')]));
  checkTxnRequest(txn([P('a')], [D('a')]));
  // etcd's quirk: a from-key delete ("\0" end) compares as a plain key, so no conflict.
  checkTxnRequest(txn([D('a', '\0'), P('b')]));
  // A nested txn's puts are not checked against deletes of later siblings
  // (the reverse order is rejected, see above).
  checkTxnRequest(txn([T([P('m')]), T([D('a', 'z')])]));
  // Binary keys compare bytewise.
  checkTxnRequest(txn([D('\x80', '\x90'), P('\x7f'), P('\x90')]));
  DUP(() => checkTxnRequest(txn([D('\x80', '\x90'), P('\x8f\xff')])));
});

test('read and compaction revisions follow etcd (compacted == ok for reads)', () => {
  const s = { currentRevision: 10, compactRevision: 4 };
  checkReadRevision(0, s);
  checkReadRevision(4, s);
  checkReadRevision(10, s);
  rejects(() => checkReadRevision(3, s), 'COMPACTED', 'etcdserver: mvcc: required revision has been compacted', grpc.status.OUT_OF_RANGE);
  rejects(() => checkReadRevision(11, s), 'FUTURE_REV', 'etcdserver: mvcc: required revision is a future revision', grpc.status.OUT_OF_RANGE);
  rejects(() => checkCompactionRequest({ revision: 4 }, s), 'COMPACTED', 'etcdserver: mvcc: required revision has been compacted', grpc.status.OUT_OF_RANGE);
  rejects(() => checkCompactionRequest({ revision: 11 }, s), 'FUTURE_REV', 'etcdserver: mvcc: required revision is a future revision', grpc.status.OUT_OF_RANGE);
  checkCompactionRequest({ revision: 10 }, s);
  // A fresh store (compacted -1) accepts Compact(0) and Compact(1).
  checkCompactionRequest({ revision: 0 }, { currentRevision: 1, compactRevision: -1 });
  checkCompactionRequest({ revision: 1 }, { currentRevision: 1, compactRevision: -1 });
});

test('watch ranges: "\\0" end is from-key, end <= key is an empty range', () => {
  assert.equal(watchCreateCancelReason({ key: b('a'), range_end: EMPTY }), undefined);
  assert.equal(watchCreateCancelReason({ key: b('a'), range_end: b('\0') }), undefined);
  assert.equal(watchCreateCancelReason({ key: b('a'), range_end: b('b') }), undefined);
  assert.equal(watchCreateCancelReason({ key: b('b'), range_end: b('a') }), 'mvcc: watcher range is empty');
  assert.equal(watchCreateCancelReason({ key: b('a'), range_end: b('a') }), 'mvcc: watcher range is empty');
});

test('lease TTL: raised to the minimum, above 9e9 s too large', () => {
  assert.equal(minLeaseTtlSeconds(), 2);
  assert.equal(minLeaseTtlSeconds({ electionTimeoutMs: 5000, heartbeatMs: 100 }), 8);
  assert.equal(effectiveLeaseTtl({ TTL: 1 }, 2), 2);
  assert.equal(effectiveLeaseTtl({ TTL: -3 }, 2), 2);
  assert.equal(effectiveLeaseTtl({ TTL: 60 }, 2), 60);
  assert.equal(effectiveLeaseTtl({ TTL: 9_000_000_000 }, 2), 9_000_000_000);
  rejects(() => effectiveLeaseTtl({ TTL: 9_000_000_001 }, 2), 'LEASE_TTL_TOO_LARGE', 'etcdserver: too large lease TTL', grpc.status.OUT_OF_RANGE);
});

test('request size: above max-request-bytes is too large; gRPC allows 512 KiB more', () => {
  assert.equal(DEFAULT_MAX_REQUEST_BYTES, 1_572_864);
  assert.equal(grpcMaxReceiveBytes(), 1_572_864 + 524_288);
  checkRequestSize(DEFAULT_MAX_REQUEST_BYTES);
  rejects(() => checkRequestSize(DEFAULT_MAX_REQUEST_BYTES + 1), 'REQUEST_TOO_LARGE', 'etcdserver: request is too large', grpc.status.INVALID_ARGUMENT);
  rejects(() => checkRequestSize(11, 10), 'REQUEST_TOO_LARGE', 'etcdserver: request is too large', grpc.status.INVALID_ARGUMENT);
});
