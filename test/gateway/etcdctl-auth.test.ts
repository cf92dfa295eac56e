/**
 * The real etcdctl (3.4) driving auth against keyspan: users, roles,
 * prefix permissions, `auth enable`, access allowed and denied with `--user`
 * and etcd's exact error lines, revocations, `auth disable`. Where the real
 * etcd server is installed, the same script runs against it and the outputs
 * must be identical.
 *
 * Skipped, with a message, where etcdctl is not installed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Embedded } from '../../src/gateway/embedded.js';
import { startTestServer } from './server-harness.js';
import { etcdctl, skipDiff, skipEtcdctl as skip, startReferenceEtcd } from './etcd-diff.js';

const ROOT = '--user=root:rootpw';
const U1 = '--user=u1:p1';

/** The script: each entry is etcdctl's arguments. */
const SCRIPT: readonly (readonly string[])[] = [
  ['user', 'add', 'root', '--new-user-password=rootpw'],
  ['user', 'add', 'u1:p1', '--interactive=false'],
  ['role', 'add', 'r1'],
  ['role', 'grant-permission', '--prefix', 'r1', 'readwrite', '/foo/'],
  ['role', 'grant-permission', 'r1', 'read', 'k1'],
  ['role', 'get', 'r1'],
  ['user', 'grant-role', 'u1', 'r1'],
  ['auth', 'enable'],
  ['get', '/foo/a'],
  [U1, 'put', '/foo/a', '1'],
  [U1, 'get', '/foo/', '--prefix'],
  [U1, 'put', 'k1', 'v'],
  [U1, 'get', 'k1'],
  [U1, 'get', '/foo/', '--from-key'],
  ['--user=u1:wrong', 'get', '/foo/a'],
  [U1, 'user', 'list'],
  [ROOT, 'user', 'list'],
  [ROOT, 'role', 'list'],
  [ROOT, 'user', 'get', 'u1'],
  [ROOT, 'role', 'get', 'root'],
  [ROOT, 'user', 'delete', 'root'],
  [ROOT, 'role', 'revoke-permission', 'r1', 'k1'],
  [U1, 'get', 'k1'],
  [ROOT, 'user', 'revoke-role', 'u1', 'r1'],
  [U1, 'get', '/foo/a'],
  [ROOT, 'user', 'delete', 'u1'],
  [U1, 'get', '/foo/a'],
  [ROOT, 'auth', 'disable'],
  ['get', '/foo/a'],
  ['user', 'delete', 'root'],
  ['role', 'delete', 'r1'],
];

async function runScript(endpoint: string): Promise<string[]> {
  const out: string[] = [];
  for (const args of SCRIPT) {
    const r = await etcdctl(endpoint, args);
    out.push(`$ ${args.join(' ')}\n[exit ${r.code}]\n${r.stdout}${r.errors}`);
  }
  return out;
}

describe('etcdctl auth against keyspan', { skip }, () => {
  let srv: Embedded;
  let outputs: string[] = [];

  before(async () => {
    srv = await startTestServer();
    outputs = await runScript(srv.server.addresses[0] ?? '');
  });
  after(async () => {
    await srv?.close();
  });

  const out = (i: number): string => outputs[i] ?? '';
  const denied = 'Error: etcdserver: permission denied';

  it('creates users and roles, grants a prefix permission, enables auth', () => {
    assert.equal(out(0), '$ user add root --new-user-password=rootpw\n[exit 0]\nUser root created\n');
    assert.equal(out(1), '$ user add u1:p1 --interactive=false\n[exit 0]\nUser u1 created\n');
    assert.equal(out(3), '$ role grant-permission --prefix r1 readwrite /foo/\n[exit 0]\nRole r1 updated\n');
    assert.equal(out(5), '$ role get r1\n[exit 0]\nRole r1\nKV Read:\n\t[/foo/, /foo0) (prefix /foo/)\n\tk1\nKV Write:\n\t[/foo/, /foo0) (prefix /foo/)\n');
    assert.equal(out(6), '$ user grant-role u1 r1\n[exit 0]\nRole r1 is granted to user u1\n');
    assert.equal(out(7), '$ auth enable\n[exit 0]\nAuthentication Enabled\n');
  });

  it('allows and denies access by --user with etcd\'s error lines', () => {
    assert.equal(out(8), '$ get /foo/a\n[exit 1]\nError: etcdserver: user name is empty');
    assert.equal(out(9), `$ ${U1} put /foo/a 1\n[exit 0]\nOK\n`);
    assert.equal(out(10), `$ ${U1} get /foo/ --prefix\n[exit 0]\n/foo/a\n1\n`);
    assert.equal(out(11), `$ ${U1} put k1 v\n[exit 1]\n${denied}`);
    assert.equal(out(12), `$ ${U1} get k1\n[exit 0]\n`);
    assert.equal(out(13), `$ ${U1} get /foo/ --from-key\n[exit 1]\n${denied}`);
    // etcdctl fails at dial (exit 2) when Authenticate is refused.
    assert.equal(out(14), '$ --user=u1:wrong get /foo/a\n[exit 2]\nError: etcdserver: authentication failed, invalid user ID or password');
    assert.equal(out(15), `$ ${U1} user list\n[exit 1]\n${denied}`);
  });

  it('root administers; revocations and deletions take effect', () => {
    assert.equal(out(16), `$ ${ROOT} user list\n[exit 0]\nroot\nu1\n`);
    assert.equal(out(17), `$ ${ROOT} role list\n[exit 0]\nr1\nroot\n`);
    assert.equal(out(18), `$ ${ROOT} user get u1\n[exit 0]\nUser: u1\nRoles: r1\n`);
    assert.equal(out(19), `$ ${ROOT} role get root\n[exit 0]\nRole root\nKV Read:\nKV Write:\n`);
    assert.equal(out(20), `$ ${ROOT} user delete root\n[exit 1]\nError: etcdserver: invalid auth management`);
    assert.equal(out(21), `$ ${ROOT} role revoke-permission r1 k1\n[exit 0]\nPermission of key k1 is revoked from role r1\n`);
    assert.equal(out(22), `$ ${U1} get k1\n[exit 1]\n${denied}`);
    assert.equal(out(24), `$ ${U1} get /foo/a\n[exit 1]\n${denied}`);
    assert.equal(out(26), `$ ${U1} get /foo/a\n[exit 2]\nError: etcdserver: authentication failed, invalid user ID or password`);
  });

  it('auth disable lifts every check', () => {
    assert.equal(out(27), `$ ${ROOT} auth disable\n[exit 0]\nAuthentication Disabled\n`);
    assert.equal(out(28), '$ get /foo/a\n[exit 0]\n/foo/a\n1\n');
    assert.equal(out(29), '$ user delete root\n[exit 0]\nUser root deleted\n');
    assert.equal(out(30), '$ role delete r1\n[exit 0]\nRole r1 deleted\n');
  });

  it('gives the same outputs as a real etcd 3.4 for the same script', { skip: skipDiff }, async () => {
    const ref = await startReferenceEtcd();
    try {
      const reference = await runScript(ref.endpoint);
      for (let i = 0; i < SCRIPT.length; i++) assert.equal(outputs[i], reference[i], `step ${i}: ${SCRIPT[i]?.join(' ')}`);
    } finally {
      await ref.close();
    }
  });
});
