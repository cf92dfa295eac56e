/**
 * Wire compatibility with the real etcd client: a tiny grpc-js server built
 * from our service definitions, driven by etcdctl (Debian's etcd-client,
 * 3.4.x). Skipped, with a message, where etcdctl is not installed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { EtcdError } from '../../src/gateway/errors.js';
import { etcdServiceDefinition, type EtcdMessage } from '../../src/gateway/proto.js';

const ETCDCTL = process.env['ETCDCTL'] ?? 'etcdctl';
const etcdctlVersion = spawnSync(ETCDCTL, ['version'], { encoding: 'utf8' });
const skip =
  etcdctlVersion.error !== undefined || etcdctlVersion.status !== 0
    ? `etcdctl not installed (apt-get install etcd-client, or set ETCDCTL): ${String(etcdctlVersion.error ?? etcdctlVersion.stderr)}`
    : false;

const HEADER = { cluster_id: 14841639068965178418n, member_id: 10276657743932975437n, revision: 7, raft_term: 3 };
const LEASE_ID = 0x694d7a1b2c3d4e5fn;

let server: grpc.Server | undefined;
let endpoint = '';
const seen: EtcdMessage[] = [];

type Unary = (call: grpc.ServerUnaryCall<EtcdMessage, EtcdMessage>, cb: grpc.sendUnaryData<EtcdMessage>) => void;

const range: Unary = (call, cb) => {
  seen.push(call.request);
  if (call.request['revision'] === 1) {
    cb(EtcdError.of('COMPACTED').toServiceError());
    return;
  }
  cb(null, {
    header: HEADER,
    kvs: [
      {
        key: Buffer.from('foo'),
        create_revision: 2,
        mod_revision: 7,
        version: 3,
        value: Buffer.from('bar'),
        lease: LEASE_ID,
      },
    ],
    count: 1,
  });
};

const put: Unary = (call, cb) => {
  seen.push(call.request);
  cb(null, { header: HEADER });
};

const leaseGrant: Unary = (call, cb) => {
  seen.push(call.request);
  cb(null, { header: HEADER, ID: LEASE_ID, TTL: call.request['TTL'] });
};

before(async () => {
  if (skip !== false) return;
  const s = new grpc.Server();
  s.addService(etcdServiceDefinition('etcdserverpb.KV'), { Range: range, Put: put });
  s.addService(etcdServiceDefinition('etcdserverpb.Lease'), { LeaseGrant: leaseGrant });
  const port = await new Promise<number>((resolve, reject) => {
    s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  server = s;
  endpoint = `127.0.0.1:${port}`;
});

after(() => {
  server?.forceShutdown();
});

/** Runs etcdctl asynchronously (the server lives in this process's event loop). */
function etcdctl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      ETCDCTL,
      [`--endpoints=${endpoint}`, '--dial-timeout=3s', '--command-timeout=5s', ...args],
      { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 15_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

test('etcdctl get -w json decodes our RangeResponse', { skip }, async () => {
  const r = await etcdctl('get', 'foo', '-w', 'json');
  assert.equal(r.code, 0, r.stderr);
  // Go prints uint64s exactly; JSON.parse would round them, so check the text.
  assert.match(r.stdout, /"cluster_id":14841639068965178418/);
  assert.match(r.stdout, /"member_id":10276657743932975437/);
  const out = JSON.parse(r.stdout) as {
    header: { revision: number; raft_term: number };
    kvs: Array<{ key: string; value: string; create_revision: number; mod_revision: number; version: number; lease: number }>;
    count: number;
  };
  assert.equal(out.header.revision, 7);
  assert.equal(out.header.raft_term, 3);
  assert.equal(out.count, 1);
  const kv = out.kvs[0];
  assert.ok(kv);
  assert.equal(Buffer.from(kv.key, 'base64').toString(), 'foo');
  assert.equal(Buffer.from(kv.value, 'base64').toString(), 'bar');
  assert.deepEqual([kv.create_revision, kv.mod_revision, kv.version], [2, 7, 3]);
  assert.ok(r.stdout.includes(`"lease":${LEASE_ID.toString()}`), r.stdout);
  const req = seen.at(-1);
  assert.deepEqual(req?.['key'], Buffer.from('foo'));
});

test('etcdctl get --prefix sends key and range_end', { skip }, async () => {
  const r = await etcdctl('get', 'fo', '--prefix', '--limit=5', '--order=DESCEND', '--sort-by=MODIFY');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'foo\nbar\n');
  const req = seen.at(-1);
  assert.deepEqual(req?.['range_end'], Buffer.from('fp'));
  assert.equal(req?.['limit'], 5);
  assert.equal(req?.['sort_order'], 2);
  assert.equal(req?.['sort_target'], 3);
});

test('etcdctl sees etcd errors with their exact text', { skip }, async () => {
  const r = await etcdctl('get', 'foo', '--rev=1');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /etcdserver: mvcc: required revision has been compacted/);
});

test('etcdctl put and lease grant: bigint lease id printed in hex', { skip }, async () => {
  const p = await etcdctl('put', 'k', 'v', `--lease=${LEASE_ID.toString(16)}`);
  assert.equal(p.code, 0, p.stderr);
  assert.equal(p.stdout, 'OK\n');
  assert.equal(seen.at(-1)?.['lease'], LEASE_ID);
  const g = await etcdctl('lease', 'grant', '60');
  assert.equal(g.code, 0, g.stderr);
  assert.equal(g.stdout.trim(), `lease ${LEASE_ID.toString(16)} granted with TTL(60s)`);
  assert.equal(seen.at(-1)?.['TTL'], 60);
});
