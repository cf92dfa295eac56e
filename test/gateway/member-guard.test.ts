import { test } from 'node:test';
import assert from 'node:assert/strict';
import { memberGuard, servedByLearner, type MemberRole } from '../../src/gateway/member-guard.js';
import { parsePeerUrls } from '../../src/gateway/replicated-members.js';
import { EtcdError } from '../../src/gateway/errors.js';

const call = { signal: new AbortController().signal, metadata: undefined as never };

test('a learner serves Status and serializable Range only; a removed member nothing', async () => {
  assert.equal(servedByLearner('etcdserverpb.Maintenance/Status', {}), true);
  assert.equal(servedByLearner('etcdserverpb.KV/Range', { serializable: true }), true);
  assert.equal(servedByLearner('etcdserverpb.KV/Range', {}), false);
  assert.equal(servedByLearner('etcdserverpb.KV/Put', {}), false);
  assert.equal(servedByLearner('etcdserverpb.Cluster/MemberList', {}), false);
  let role: MemberRole = 'learner';
  const h = memberGuard('etcdserverpb.KV/Put', async () => ({ ok: true }), () => role);
  await assert.rejects(h({}, call), (e: unknown) => e instanceof EtcdError && e.message === 'etcdserver: rpc not supported for learner');
  role = 'removed';
  await assert.rejects(h({}, call), (e: unknown) => e instanceof EtcdError && e.message === 'etcdserver: server stopped');
  role = 'voter';
  assert.deepEqual(await h({}, call), { ok: true });
});

test('peer URLs are validated and normalized as etcd does', () => {
  assert.deepEqual(parsePeerUrls(['http://127.0.0.1:2380/', 'http://127.0.0.1:2380', 'https://127.0.0.1:1']), ['http://127.0.0.1:2380', 'https://127.0.0.1:1']);
  for (const bad of [[], ['nope'], ['http://127.0.0.1'], ['ftp://127.0.0.1:1'], ['http://127.0.0.1:1/path']]) {
    assert.throws(() => parsePeerUrls(bad), (e: unknown) => e instanceof EtcdError && e.message === 'etcdserver: given member URLs are invalid');
  }
});
