import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { EtcdError } from '../../src/gateway/errors.js';
import {
  GATEWAY_ROUTES,
  findGatewayRoute,
  gatewayErrorResponse,
  httpStatusFromGrpcCode,
  jsonFieldName,
  jsonToMessage,
  messageToJson,
  streamErrorJson,
  streamResultJson,
} from '../../src/gateway/http-paths.js';
import { ETCD_SERVICE_NAMES, etcdMethods } from '../../src/gateway/proto.js';

test('every gateway route names an existing RPC with the right streaming kind', () => {
  const paths = new Set<string>();
  for (const r of GATEWAY_ROUTES) {
    assert.ok(!paths.has(r.path), `duplicate ${r.path}`);
    paths.add(r.path);
    const m = etcdMethods(r.service).find((x) => x.method === r.method);
    assert.ok(m, `${r.path} → ${r.service}/${r.method}`);
    const kind = m.requestStream ? 'bidi-stream' : m.responseStream ? 'server-stream' : 'unary';
    assert.equal(r.kind, kind, r.path);
  }
  // Every RPC has at least one route (etcd binds them all).
  for (const s of ETCD_SERVICE_NAMES) {
    for (const m of etcdMethods(s)) {
      assert.ok(
        GATEWAY_ROUTES.some((r) => r.service === s && r.method === m.method),
        `no route for ${m.path}`,
      );
    }
  }
});

test('findGatewayRoute() knows etcd paths, aliases and the /v3beta/ prefix', () => {
  assert.equal(findGatewayRoute('/v3/kv/put')?.method, 'Put');
  assert.equal(findGatewayRoute('/v3/kv/compaction')?.method, 'Compact');
  assert.equal(findGatewayRoute('/v3/kv/lease/revoke')?.method, 'LeaseRevoke');
  assert.equal(findGatewayRoute('/v3/kv/lease/timetolive')?.method, 'LeaseTimeToLive');
  assert.equal(findGatewayRoute('/v3/kv/lease/leases')?.method, 'LeaseLeases');
  assert.equal(findGatewayRoute('/v3/maintenance/transfer-leadership')?.method, 'MoveLeader');
  assert.equal(findGatewayRoute('/v3/maintenance/hashkv')?.method, 'HashKV');
  assert.equal(findGatewayRoute('/v3/auth/user/changepw')?.method, 'UserChangePassword');
  assert.equal(findGatewayRoute('/v3/lock/lock')?.service, 'v3lockpb.Lock');
  assert.equal(findGatewayRoute('/v3/election/observe')?.kind, 'server-stream');
  assert.equal(findGatewayRoute('/v3/watch')?.kind, 'bidi-stream');
  assert.equal(findGatewayRoute('/v3beta/kv/range')?.method, 'Range');
  assert.equal(findGatewayRoute('/v3/kv/range?x=1')?.method, 'Range');
  assert.equal(findGatewayRoute('/v3alpha/kv/range'), undefined);
  assert.equal(findGatewayRoute('/v2/keys'), undefined);
});

test('curl put example: {"key":"Zm9v","value":"YmFy"} decodes to foo=bar', () => {
  const req = jsonToMessage('etcdserverpb.PutRequest', { key: 'Zm9v', value: 'YmFy' });
  assert.deepEqual(req, {
    key: Buffer.from('foo'),
    value: Buffer.from('bar'),
    lease: 0n,
    prev_kv: false,
    ignore_value: false,
    ignore_lease: false,
  });
});

test('txn response: nested headers and deleted count as etcd 3.4.23 wrote them', () => {
  // Observed from etcd 3.4.23 for a txn [delete a.."\\0", put b].
  const json = messageToJson('etcdserverpb.TxnResponse', {
    header: { cluster_id: 324952591200643719n, member_id: 3319814642761637952n, revision: 3, raft_term: 2 },
    succeeded: true,
    responses: [
      { response_delete_range: { header: { revision: 3 }, deleted: 1 } },
      { response_put: { header: { revision: 3 } } },
    ],
  });
  assert.equal(
    JSON.stringify(json),
    '{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"3","raft_term":"2"},' +
      '"succeeded":true,"responses":[{"response_delete_range":{"header":{"revision":"3"},"deleted":"1"}},' +
      '{"response_put":{"header":{"revision":"3"}}}]}',
  );
});

test('put response: int64 as strings, defaults omitted', () => {
  const json = messageToJson('etcdserverpb.PutResponse', {
    header: { cluster_id: 14841639068965178418n, member_id: 10276657743932975437n, revision: 2, raft_term: 2 },
  });
  assert.deepEqual(json, {
    header: { cluster_id: '14841639068965178418', member_id: '10276657743932975437', revision: '2', raft_term: '2' },
  });
});

test('range response: base64 bytes, zero lease and false more omitted', () => {
  const json = messageToJson('etcdserverpb.RangeResponse', {
    header: { revision: 2 },
    kvs: [{ key: Buffer.from('foo'), value: Buffer.from('bar'), create_revision: 2, mod_revision: 2, version: 1, lease: 0n }],
    more: false,
    count: 1,
  });
  assert.equal(
    JSON.stringify(json),
    '{"header":{"revision":"2"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}],"count":"1"}',
  );
});

test('watch events: PUT type omitted, DELETE by name, watch_id -1 as a string, framed as result', () => {
  const framed = streamResultJson('etcdserverpb.WatchResponse', {
    header: { revision: 5 },
    watch_id: -1,
    events: [{ type: 0, kv: { key: Buffer.from('a'), mod_revision: 4 } }, { type: 1, kv: { key: Buffer.from('b') } }],
  });
  assert.deepEqual(framed, {
    result: {
      header: { revision: '5' },
      watch_id: '-1',
      events: [{ kv: { key: 'YQ==', mod_revision: '4' } }, { type: 'DELETE', kv: { key: 'Yg==' } }],
    },
  });
});

test('txn JSON: enums by name or number, int64 strings, camelCase names accepted, oneof kept at zero', () => {
  const req = jsonToMessage('etcdserverpb.TxnRequest', {
    compare: [{ target: 'CREATE', result: 0, key: 'Zm9v', createRevision: '0' }],
    success: [{ request_put: { key: 'Zm9v', value: 'YmFy', lease: '7587861231285799685' } }],
    failure: [{ requestRange: { key: 'Zm9v', rangeEnd: 'Zm9w' } }],
  });
  const compare = (req['compare'] as Array<Record<string, unknown>>)[0];
  assert.equal(compare?.['target'], 1);
  assert.equal(compare?.['create_revision'], 0);
  const putOp = (req['success'] as Array<Record<string, Record<string, unknown>>>)[0];
  assert.equal(putOp?.['request_put']?.['lease'], 7587861231285799685n);
  const rangeOp = (req['failure'] as Array<Record<string, Record<string, unknown>>>)[0];
  assert.deepEqual(rangeOp?.['request_range']?.['range_end'], Buffer.from('fop'));
  assert.deepEqual(messageToJson('etcdserverpb.Compare', compare ?? {}), {
    target: 'CREATE',
    key: 'Zm9v',
    create_revision: '0',
  });
});

test('JSON input: lease id as a string keeps all 63 bits; URL-safe base64 accepted; unknown fields ignored', () => {
  const req = jsonToMessage('etcdserverpb.LeaseRevokeRequest', { ID: '9223372036854775807', extra: 1 });
  assert.deepEqual(req, { ID: 0x7fffffffffffffffn });
  const put = jsonToMessage('etcdserverpb.PutRequest', { key: '-_8' });
  assert.deepEqual(put['key'], Buffer.from([0xfb, 0xff]));
  const grant = jsonToMessage('etcdserverpb.LeaseGrantRequest', { TTL: 60 });
  assert.deepEqual(messageToJson('etcdserverpb.LeaseGrantResponse', { ID: 7587861231285799685n, TTL: grant['TTL'] as number }), {
    ID: '7587861231285799685',
    TTL: '60',
  });
});

test('malformed JSON bodies are InvalidArgument', () => {
  for (const body of [[], 'x', { key: 5 }, { limit: 'ten' }, { sort_order: 'SIDEWAYS' }, { keys_only: 'yes' }]) {
    assert.throws(
      () => jsonToMessage('etcdserverpb.RangeRequest', body),
      (err: unknown) => err instanceof EtcdError && err.grpcCode === grpc.status.INVALID_ARGUMENT,
      JSON.stringify(body),
    );
  }
});

test('jsonFieldName() derives protoc JSON names', () => {
  assert.equal(jsonFieldName('range_end'), 'rangeEnd');
  assert.equal(jsonFieldName('remaining_TTL'), 'remainingTTL');
  assert.equal(jsonFieldName('TTL'), 'TTL');
  assert.equal(jsonFieldName('peerURLs'), 'peerURLs');
});

test('errors: grpc-gateway v1 body and HTTP status', () => {
  const r = gatewayErrorResponse(EtcdError.of('EMPTY_KEY'));
  assert.equal(r.status, 400);
  // Byte for byte what etcd 3.4.23's gateway answered to {"key":""}.
  assert.equal(
    JSON.stringify(r.body),
    '{"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3}',
  );
  assert.equal(httpStatusFromGrpcCode(grpc.status.NOT_FOUND), 404);
  assert.equal(httpStatusFromGrpcCode(grpc.status.UNAVAILABLE), 503);
  assert.equal(httpStatusFromGrpcCode(grpc.status.FAILED_PRECONDITION), 412);
  assert.equal(httpStatusFromGrpcCode(grpc.status.RESOURCE_EXHAUSTED), 429);
  assert.deepEqual(streamErrorJson(EtcdError.of('NO_LEADER')), {
    error: { grpc_code: 14, http_code: 503, message: 'etcdserver: no leader', http_status: 'Service Unavailable' },
  });
});
