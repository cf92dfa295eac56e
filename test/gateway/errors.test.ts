import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import {
  ETCD_ERRORS,
  EtcdError,
  etcdErrorCodeOfMessage,
  registerErrorMapper,
  toEtcdError,
  type EtcdErrorCode,
} from '../../src/gateway/errors.js';
import {
  CompactedError,
  DuplicateKeyError,
  FutureRevisionError,
  KeyNotFoundError,
  KeyNotProvidedError,
  LeaseNotFoundError,
  LeaseProvidedError,
  ValueProvidedError,
  PlanPendingError,
} from '../../src/shard/mvcc/errors.js';
import { ProposalDroppedError } from '../../src/group/raft/errors.js';
import { TooManyRequestsError as HostTooManyRequestsError } from '../../src/group/host/errors.js';
import { NotLeaderError, RequestTooLargeError, TooManyRequestsError } from '../../src/shard/range/errors.js';
import { EngineError } from '../../src/storage/engine.js';

const S = grpc.status;

/** Spot checks against /work/shared/reference/etcd-api.md §3 (and §2). */
const SPOT: Array<[EtcdErrorCode, string, grpc.status]> = [
  ['EMPTY_KEY', 'etcdserver: key is not provided', S.INVALID_ARGUMENT],
  ['KEY_NOT_FOUND', 'etcdserver: key not found', S.INVALID_ARGUMENT],
  ['TOO_MANY_OPS', 'etcdserver: too many operations in txn request', S.INVALID_ARGUMENT],
  ['DUPLICATE_KEY', 'etcdserver: duplicate key given in txn request', S.INVALID_ARGUMENT],
  ['REQUEST_TOO_LARGE', 'etcdserver: request is too large', S.INVALID_ARGUMENT],
  ['COMPACTED', 'etcdserver: mvcc: required revision has been compacted', S.OUT_OF_RANGE],
  ['FUTURE_REV', 'etcdserver: mvcc: required revision is a future revision', S.OUT_OF_RANGE],
  ['LEASE_TTL_TOO_LARGE', 'etcdserver: too large lease TTL', S.OUT_OF_RANGE],
  ['NO_SPACE', 'etcdserver: mvcc: database space exceeded', S.RESOURCE_EXHAUSTED],
  ['TOO_MANY_REQUESTS', 'etcdserver: too many requests', S.RESOURCE_EXHAUSTED],
  ['LEASE_NOT_FOUND', 'etcdserver: requested lease not found', S.NOT_FOUND],
  ['MEMBER_NOT_FOUND', 'etcdserver: member not found', S.NOT_FOUND],
  ['LEASE_EXIST', 'etcdserver: lease already exists', S.FAILED_PRECONDITION],
  ['PEER_URL_EXIST', 'etcdserver: Peer URLs already exists', S.FAILED_PRECONDITION],
  ['AUTH_NOT_ENABLED', 'etcdserver: authentication is not enabled', S.FAILED_PRECONDITION],
  ['NOT_LEADER', 'etcdserver: not leader', S.FAILED_PRECONDITION],
  ['PERMISSION_DENIED', 'etcdserver: permission denied', S.PERMISSION_DENIED],
  ['INVALID_AUTH_TOKEN', 'etcdserver: invalid auth token', S.UNAUTHENTICATED],
  ['WATCH_CANCELED', 'etcdserver: watch canceled', S.CANCELLED],
  ['CANCELED', 'etcdserver: request canceled', S.CANCELLED],
  ['DEADLINE_EXCEEDED', 'etcdserver: context deadline exceeded', S.DEADLINE_EXCEEDED],
  ['NO_LEADER', 'etcdserver: no leader', S.UNAVAILABLE],
  ['LEADER_CHANGED', 'etcdserver: leader changed', S.UNAVAILABLE],
  ['NOT_CAPABLE', 'etcdserver: not capable', S.UNAVAILABLE],
  ['NOT_SUPPORTED_FOR_LEARNER', 'etcdserver: rpc not supported for learner', S.UNAVAILABLE],
  ['TIMEOUT_WAIT_APPLIED_INDEX', 'etcdserver: request timed out, waiting for the applied index took too long', S.UNAVAILABLE],
  ['CLUSTER_VERSION_UNAVAILABLE', 'etcdserver: cluster version not found during downgrade', S.UNAVAILABLE],
  ['CORRUPT', 'etcdserver: corrupt cluster', S.DATA_LOSS],
];

test('error table spot checks against etcd-api.md §3', () => {
  for (const [code, message, grpcCode] of SPOT) {
    assert.equal(ETCD_ERRORS[code].message, message, code);
    assert.equal(ETCD_ERRORS[code].grpcCode, grpcCode, code);
  }
});

test('every message is unique and starts with etcdserver:', () => {
  const messages = Object.values(ETCD_ERRORS).map((s) => s.message);
  assert.equal(new Set(messages).size, messages.length);
  for (const m of messages) assert.ok(m.startsWith('etcdserver: '), m);
  assert.equal(etcdErrorCodeOfMessage('etcdserver: no leader'), 'NO_LEADER');
  assert.equal(etcdErrorCodeOfMessage('no leader'), undefined);
});

test('EtcdError.toServiceError() carries the code and exact details', () => {
  const e = EtcdError.of('DUPLICATE_KEY').toServiceError();
  assert.equal(e.code, S.INVALID_ARGUMENT);
  assert.equal(e.details, 'etcdserver: duplicate key given in txn request');
  assert.ok(e instanceof Error);
});

test('MVCC errors map to the same table rows', () => {
  const cases: Array<[Error, EtcdErrorCode]> = [
    [new CompactedError(5), 'COMPACTED'],
    [new FutureRevisionError(5), 'FUTURE_REV'],
    [new KeyNotProvidedError(), 'EMPTY_KEY'],
    [new KeyNotFoundError(), 'KEY_NOT_FOUND'],
    [new ValueProvidedError(), 'VALUE_PROVIDED'],
    [new LeaseProvidedError(), 'LEASE_PROVIDED'],
    [new DuplicateKeyError(), 'DUPLICATE_KEY'],
    [new LeaseNotFoundError(7n), 'LEASE_NOT_FOUND'],
  ];
  for (const [err, code] of cases) {
    const e = toEtcdError(err);
    assert.equal(e.code, code, err.name);
    assert.equal(e.grpcCode, ETCD_ERRORS[code].grpcCode, err.name);
    assert.equal(e.message, ETCD_ERRORS[code].message, err.name);
    assert.equal(e.cause, err);
  }
  const internal = toEtcdError(new PlanPendingError());
  assert.equal(internal.code, 'INTERNAL');
  assert.equal(internal.grpcCode, S.INTERNAL);
});

test('raft, host, replica and engine errors map to etcd texts', () => {
  assert.equal(toEtcdError(new ProposalDroppedError('noLeader')).code, 'NO_LEADER');
  assert.equal(toEtcdError(new ProposalDroppedError('notLeader')).code, 'LEADER_CHANGED');
  assert.equal(toEtcdError(new HostTooManyRequestsError(1, 'queue full')).code, 'TOO_MANY_REQUESTS');
  assert.equal(toEtcdError(new TooManyRequestsError(1, 10)).code, 'TOO_MANY_REQUESTS');
  assert.equal(toEtcdError(new NotLeaderError(1, undefined)).grpcCode, S.UNAVAILABLE);
  assert.equal(toEtcdError(new RequestTooLargeError(10, 5)).code, 'REQUEST_TOO_LARGE');
  assert.equal(toEtcdError(new EngineError('ENGINE_CLOSED', 'closed')).code, 'STOPPED');
});

test('unmapped errors pass through as Unknown with their message, as etcd does', () => {
  const e = toEtcdError(new Error('election: not leader'));
  assert.equal(e.code, 'UNKNOWN');
  assert.equal(e.grpcCode, S.UNKNOWN);
  assert.equal(e.message, 'election: not leader');
});

test('registerErrorMapper() extends the mapping and can be undone', () => {
  class PdError extends Error {}
  const undo = registerErrorMapper((err) => (err instanceof PdError ? EtcdError.of('UNHEALTHY') : undefined));
  try {
    assert.equal(toEtcdError(new PdError('pd down')).code, 'UNHEALTHY');
  } finally {
    undo();
  }
  assert.equal(toEtcdError(new PdError('pd down')).code, 'UNKNOWN');
});
