import { test } from 'node:test';
import assert from 'node:assert/strict';
import protobuf from 'protobufjs';
import {
  BIGINT_FIELDS,
  ENCODED_FIELDS,
  ETCD_SERVICE_NAMES,
  WireFormatError,
  decodeEtcdMessage,
  encodeEtcdMessage,
  etcdMethods,
  etcdProtoRoot,
  etcdServiceDefinition,
  etcdType,
  qualifiedName,
  type EtcdMessage,
} from '../../src/gateway/proto.js';

/** Every RPC etcd 3.5 serves, as `/pkg.Service/Method` (etcd's generated *.pb.go). */
const EXPECTED_PATHS: Record<string, string[]> = {
  'etcdserverpb.KV': ['Range', 'Put', 'DeleteRange', 'Txn', 'Compact'],
  'etcdserverpb.Watch': ['Watch'],
  'etcdserverpb.Lease': ['LeaseGrant', 'LeaseRevoke', 'LeaseKeepAlive', 'LeaseTimeToLive', 'LeaseLeases'],
  'etcdserverpb.Cluster': ['MemberAdd', 'MemberRemove', 'MemberUpdate', 'MemberList', 'MemberPromote'],
  'etcdserverpb.Maintenance': ['Alarm', 'Status', 'Defragment', 'Hash', 'HashKV', 'Snapshot', 'MoveLeader', 'Downgrade'],
  'etcdserverpb.Auth': [
    'AuthEnable',
    'AuthDisable',
    'AuthStatus',
    'Authenticate',
    'UserAdd',
    'UserGet',
    'UserList',
    'UserDelete',
    'UserChangePassword',
    'UserGrantRole',
    'UserRevokeRole',
    'RoleAdd',
    'RoleGet',
    'RoleList',
    'RoleDelete',
    'RoleGrantPermission',
    'RoleRevokePermission',
  ],
  'v3lockpb.Lock': ['Lock', 'Unlock'],
  'v3electionpb.Election': ['Campaign', 'Proclaim', 'Leader', 'Observe', 'Resign'],
};

const STREAMING: Record<string, [boolean, boolean]> = {
  '/etcdserverpb.Watch/Watch': [true, true],
  '/etcdserverpb.Lease/LeaseKeepAlive': [true, true],
  '/etcdserverpb.Maintenance/Snapshot': [false, true],
  '/v3electionpb.Election/Observe': [false, true],
};

test('every etcd service and method path is present with etcd names', () => {
  assert.deepEqual([...ETCD_SERVICE_NAMES].sort(), Object.keys(EXPECTED_PATHS).sort());
  for (const service of ETCD_SERVICE_NAMES) {
    const methods = etcdMethods(service);
    assert.deepEqual(
      methods.map((m) => m.path),
      (EXPECTED_PATHS[service] ?? []).map((m) => `/${service}/${m}`),
    );
    for (const m of methods) {
      assert.deepEqual([m.requestStream, m.responseStream], STREAMING[m.path] ?? [false, false], m.path);
    }
  }
});

test('grpc service definitions carry paths, stream flags and originalName', () => {
  const kv = etcdServiceDefinition('etcdserverpb.KV');
  const range = kv['Range'];
  assert.ok(range);
  assert.equal(range.path, '/etcdserverpb.KV/Range');
  assert.equal(range.originalName, 'range');
  assert.equal(range.requestStream, false);
  const watch = etcdServiceDefinition('etcdserverpb.Watch')['Watch'];
  assert.ok(watch);
  assert.equal(watch.requestStream, true);
  assert.equal(watch.responseStream, true);
  const req = range.requestDeserialize(range.requestSerialize({ key: Buffer.from('foo'), limit: 1 }));
  assert.deepEqual(req['key'], Buffer.from('foo'));
  assert.equal(req['limit'], 1);
});

function enumValues(root: protobuf.Root, name: string): Record<string, number> {
  return { ...root.lookupEnum(name).values };
}

test('field numbers and enum values match etcd', () => {
  const id = (type: string, field: string): number => {
    const f = etcdType(type).fields[field];
    assert.ok(f, `${type}.${field}`);
    return f.id;
  };
  assert.equal(id('etcdserverpb.RangeRequest', 'max_create_revision'), 13);
  assert.equal(id('etcdserverpb.Compare', 'range_end'), 64);
  assert.equal(id('etcdserverpb.WatchResponse', 'events'), 11);
  assert.equal(id('etcdserverpb.WatchCreateRequest', 'fragment'), 8);
  assert.equal(id('etcdserverpb.WatchCreateRequest', 'watch_id'), 7);
  assert.equal(id('etcdserverpb.HashKVResponse', 'hash_revision'), 4);
  assert.equal(id('etcdserverpb.MemberListRequest', 'linearizable'), 1);
  assert.equal(id('etcdserverpb.AuthUserAddRequest', 'hashedPassword'), 4);
  assert.equal(id('etcdserverpb.AuthUserChangePasswordRequest', 'hashedPassword'), 3);
  assert.equal(id('etcdserverpb.StatusResponse', 'isLearner'), 10);
  assert.equal(id('etcdserverpb.LeaseTimeToLiveResponse', 'grantedTTL'), 4);
  assert.equal(id('mvccpb.KeyValue', 'lease'), 6);
  assert.equal(id('v3electionpb.LeaderKey', 'rev'), 3);
  const root = etcdProtoRoot();
  assert.deepEqual(enumValues(root, 'mvccpb.Event.EventType'), { PUT: 0, DELETE: 1 });
  assert.deepEqual(enumValues(root, 'etcdserverpb.AlarmType'), { NONE: 0, NOSPACE: 1, CORRUPT: 2 });
  assert.deepEqual(enumValues(root, 'etcdserverpb.Compare.CompareTarget'), {
    VERSION: 0,
    CREATE: 1,
    MOD: 2,
    VALUE: 3,
    LEASE: 4,
  });
  assert.deepEqual(enumValues(root, 'etcdserverpb.DowngradeRequest.DowngradeAction'), {
    VALIDATE: 0,
    ENABLE: 1,
    CANCEL: 2,
  });
  assert.deepEqual(enumValues(root, 'authpb.Permission.Type'), { READ: 0, WRITE: 1, READWRITE: 2 });
});

test('BIGINT_FIELDS names only existing 64-bit fields', () => {
  for (const name of BIGINT_FIELDS) {
    const dot = name.lastIndexOf('.');
    const f = etcdType(name.slice(0, dot)).fields[name.slice(dot + 1)];
    assert.ok(f, name);
    assert.ok(['int64', 'uint64'].includes(f.type), `${name} is ${f.type}`);
  }
});

test('64-bit fields that are not IDs are the quantities docs/integers.md makes numbers', () => {
  const numbers: string[] = [];
  const visit = (ns: protobuf.NamespaceBase): void => {
    for (const obj of ns.nestedArray) {
      if (obj instanceof protobuf.Type) {
        for (const f of obj.fieldsArray) {
          const name = `${qualifiedName(obj)}.${f.name}`;
          if (['int64', 'uint64'].includes(f.type) && !BIGINT_FIELDS.has(name)) numbers.push(f.name);
        }
      }
      if (obj instanceof protobuf.Namespace) visit(obj);
    }
  };
  visit(etcdProtoRoot());
  const allowed = new RegExp(
    [
      'revision|Revision|^version$|^rev$|watch_id|^limit$|^count$|^deleted$',
      '^TTL$|^grantedTTL$|^remaining_TTL$|^dbSize|remaining_bytes|^raft',
    ].join('|'),
  );
  for (const n of numbers) assert.match(n, allowed);
});

function roundTrip(type: string, msg: EtcdMessage): EtcdMessage {
  return decodeEtcdMessage(type, encodeEtcdMessage(type, msg));
}

const header = { cluster_id: 14841639068965178418n, member_id: 10276657743932975437n, revision: 7, raft_term: 3 };
const kv = {
  key: Buffer.from('foo'),
  create_revision: 2,
  mod_revision: 7,
  version: 3,
  value: Buffer.from('bar'),
  lease: 0x7fffffffffffffffn,
};

test('KV messages round-trip, nested txns included', () => {
  const range = roundTrip('etcdserverpb.RangeResponse', { header, kvs: [kv], more: true, count: 12 });
  assert.deepEqual(range, { header, kvs: [kv], more: true, count: 12 });
  const txn = {
    compare: [{ result: 0, target: 1, key: Buffer.from('k'), create_revision: 0, range_end: Buffer.alloc(0) }],
    success: [
      { request_put: { key: Buffer.from('k'), value: Buffer.from('v'), lease: 0n, prev_kv: true, ignore_value: false, ignore_lease: false } },
      {
        request_txn: {
          compare: [],
          success: [{ request_delete_range: { key: Buffer.from('a'), range_end: Buffer.of(0), prev_kv: false } }],
          failure: [],
        },
      },
    ],
    failure: [],
  };
  assert.deepEqual(roundTrip('etcdserverpb.TxnRequest', txn), txn);
});

test('a oneof member at its default survives the round trip; two members are refused', () => {
  const c = roundTrip('etcdserverpb.Compare', { key: Buffer.from('k'), target: 0, version: 0 });
  assert.equal(c['version'], 0);
  assert.equal('mod_revision' in c, false);
  assert.throws(
    () => encodeEtcdMessage('etcdserverpb.Compare', { key: Buffer.from('k'), version: 1, mod_revision: 2 }),
    WireFormatError,
  );
});

test('Watch: negative watch_id -1 for progress, events with prev_kv', () => {
  const progress = roundTrip('etcdserverpb.WatchResponse', { header: { ...header, revision: 99 }, watch_id: -1 });
  assert.equal(progress['watch_id'], -1);
  const events = [{ type: 1, kv: { ...kv, value: Buffer.alloc(0) }, prev_kv: kv }];
  const r = roundTrip('etcdserverpb.WatchResponse', { watch_id: 5, events, fragment: true });
  assert.deepEqual(r['events'], events);
  const create = roundTrip('etcdserverpb.WatchRequest', {
    create_request: { key: Buffer.from('a'), range_end: Buffer.from('b'), start_revision: 4, filters: [0, 1], watch_id: 8 },
  });
  assert.deepEqual((create['create_request'] as EtcdMessage)['filters'], [0, 1]);
  assert.ok(!('cancel_request' in create));
  const prog = roundTrip('etcdserverpb.WatchRequest', { progress_request: {} });
  assert.deepEqual(prog['progress_request'], {});
});

test('pre-encoded fields encode as the fields themselves would', () => {
  const events = [
    { type: 1, kv: { ...kv, value: Buffer.alloc(0) }, prev_kv: kv },
    { type: 0, kv: { ...kv, key: Buffer.from('other') } },
  ];
  const plain = { header: { ...header, revision: 7 }, watch_id: 3, events };
  const parts = events.map((e) => encodeEtcdMessage('etcdserverpb.WatchResponse', { events: [e] }));
  // Stale objects prove the parts are what is sent; the JSON gateway would read the objects.
  const pre = { ...plain, events: [{ type: 0, kv: { ...kv, key: Buffer.from('stale') } }], [ENCODED_FIELDS]: [{ name: 'events', parts }] };
  const serialize = etcdServiceDefinition('etcdserverpb.Watch')['Watch']!.responseSerialize;
  const bytes = serialize(pre as EtcdMessage);
  assert.deepEqual(decodeEtcdMessage('etcdserverpb.WatchResponse', bytes), decodeEtcdMessage('etcdserverpb.WatchResponse', serialize(plain)));
  assert.deepEqual(decodeEtcdMessage('etcdserverpb.WatchResponse', bytes)['events'], events);
  // Every field pre-encoded (a watch event response: header, watch_id, events), watch_id 0 (the default, encoded as nothing) included.
  for (const watchId of [3, 0]) {
    const whole = { ...plain, watch_id: watchId };
    const field = (name: string, value: unknown): { name: string; parts: Buffer[] } => ({
      name,
      parts: [encodeEtcdMessage('etcdserverpb.WatchResponse', { [name]: value } as EtcdMessage)],
    });
    const allPre = {
      header: { ...header, revision: 1 },
      watch_id: 99,
      events: [],
      [ENCODED_FIELDS]: [field('header', whole.header), field('watch_id', watchId), { name: 'events', parts }],
    };
    assert.deepEqual(
      decodeEtcdMessage('etcdserverpb.WatchResponse', serialize(allPre as EtcdMessage)),
      decodeEtcdMessage('etcdserverpb.WatchResponse', serialize(whole)),
      `watch_id ${watchId}`,
    );
  }
});

test('Lease: lease id 0x7fffffffffffffff as bigint, negative TTL -1', () => {
  const max = 0x7fffffffffffffffn;
  assert.deepEqual(roundTrip('etcdserverpb.LeaseGrantRequest', { TTL: 10, ID: max }), { TTL: 10, ID: max });
  const ttl = roundTrip('etcdserverpb.LeaseTimeToLiveResponse', { ID: max, TTL: -1, keys: [Buffer.from('x')] });
  assert.equal(ttl['TTL'], -1);
  assert.equal(ttl['ID'], max);
  assert.deepEqual(roundTrip('etcdserverpb.LeaseLeasesResponse', { leases: [{ ID: 1n }, { ID: max }] })['leases'], [
    { ID: 1n },
    { ID: max },
  ]);
});

test('Cluster and Maintenance: uint64 member ids up to 2^64-1', () => {
  const top = 2n ** 64n - 1n;
  const member = { ID: top, name: 'n1', peerURLs: ['http://127.0.0.1:2380'], clientURLs: [], isLearner: true };
  assert.deepEqual(roundTrip('etcdserverpb.MemberListResponse', { members: [member] })['members'], [member]);
  const status = roundTrip('etcdserverpb.StatusResponse', {
    version: '3.5.13',
    dbSize: 4096,
    leader: top,
    raftIndex: 10,
    errors: ['x'],
    downgradeInfo: { enabled: true, targetVersion: '3.5.0' },
  });
  assert.equal(status['leader'], top);
  assert.equal(status['dbSize'], 4096);
  const hkv = roundTrip('etcdserverpb.HashKVResponse', { hash: 0xffffffff, compact_revision: 3, hash_revision: 9 });
  assert.equal(hkv['hash'], 0xffffffff);
  assert.equal(hkv['hash_revision'], 9);
  const alarm = roundTrip('etcdserverpb.AlarmRequest', { action: 2, memberID: 5n, alarm: 1 });
  assert.deepEqual(alarm, { action: 2, memberID: 5n, alarm: 1 });
});

test('Auth, Lock and Election messages round-trip', () => {
  const perm = { permType: 2, key: Buffer.from('a'), range_end: Buffer.from('b') };
  assert.deepEqual(roundTrip('etcdserverpb.AuthRoleGrantPermissionRequest', { name: 'r', perm })['perm'], perm);
  const add = roundTrip('etcdserverpb.AuthUserAddRequest', { name: 'u', options: { no_password: true } });
  assert.deepEqual(add['options'], { no_password: true });
  assert.deepEqual(roundTrip('v3lockpb.LockRequest', { name: Buffer.from('l'), lease: 0x694d7a1b2c3d4e5fn }), {
    name: Buffer.from('l'),
    lease: 0x694d7a1b2c3d4e5fn,
  });
  const leader = { name: Buffer.from('e'), key: Buffer.from('e/1'), rev: 4, lease: 1n };
  assert.deepEqual(roundTrip('v3electionpb.CampaignResponse', { header, leader })['leader'], leader);
});

test('decoding a revision of 2^53 or more is refused, an ID is not', () => {
  const bytes = etcdType('mvccpb.KeyValue').encode({ mod_revision: '9007199254740993', lease: '9007199254740993' }).finish();
  assert.throws(() => decodeEtcdMessage('mvccpb.KeyValue', bytes), WireFormatError);
  const ok = etcdType('mvccpb.KeyValue').encode({ lease: '9007199254740993' }).finish();
  assert.equal(decodeEtcdMessage('mvccpb.KeyValue', ok)['lease'], 9007199254740993n);
});

test('encoding refuses unsafe numbers and out-of-range bigints', () => {
  assert.throws(() => encodeEtcdMessage('mvccpb.KeyValue', { mod_revision: 2 ** 53 }), WireFormatError);
  assert.throws(() => encodeEtcdMessage('mvccpb.KeyValue', { lease: 2n ** 63n }), WireFormatError);
  assert.throws(() => encodeEtcdMessage('etcdserverpb.Member', { ID: -1n }), WireFormatError);
});

test('default scalars are left off the wire, as Go encodes them', () => {
  assert.equal(encodeEtcdMessage('etcdserverpb.PutRequest', { key: Buffer.alloc(0), lease: 0n, prev_kv: false }).length, 0);
  assert.equal(encodeEtcdMessage('etcdserverpb.RangeRequest', { key: Buffer.from('a'), limit: 0 }).toString('hex'), '0a0161');
});
