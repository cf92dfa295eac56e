/**
 * etcd's checkLeasePuts at apply (apply_auth.go): with auth enabled, a Put
 * naming a lease and a LeaseRevoke need WRITE on every key attached to the
 * lease when the command applies — so a key attached after the gateway's
 * check still counts. Driven at the replica: commands carry the caller and
 * the auth revision as the gateway stamps them.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, b, s } from './harness.js';
import { INITIAL_EPOCH } from '../../../src/shard/range/index.js';
import { AuthError, checkKeyAccess, type AuthRequest } from '../../../src/shard/auth/index.js';
import type { Replica } from '../../../src/shard/replica/index.js';

const epoch = INITIAL_EPOCH;

/** The error code a promise rejects with. */
async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AuthError) return err.code;
    return `${(err as Error).name}: ${(err as Error).message}`;
  }
  return 'accepted';
}

describe('lease permissions at apply', () => {
  let h: Harness;
  let r: Replica;
  /** RequestOptions of a command from `user` checked at the current auth revision. */
  const as = (user: string): { epoch: typeof epoch; authRevision: number; authUser: string } => ({ epoch, authRevision: r.authState.revision, authUser: user });
  const keys = async (prefix: string): Promise<string[]> =>
    (await r.range({ key: b(prefix), rangeEnd: b(`${prefix.slice(0, -1)}0`) }, { epoch })).result.kvs.map((kv) => s(kv.key));

  before(async () => {
    h = await Harness.start([1, 2, 3]);
    r = h.replica(1);
    const setup: AuthRequest[] = [
      { type: 'userAdd', name: 'root', passwordHash: 'h', noPassword: false },
      { type: 'userGrantRole', name: 'root', role: 'root' },
      { type: 'roleAdd', name: 'ra' },
      { type: 'roleGrantPermission', name: 'ra', permission: { type: 'READWRITE', key: b('a/'), rangeEnd: b('a0') } },
      { type: 'userAdd', name: 'alice', passwordHash: 'h', noPassword: false },
      { type: 'userGrantRole', name: 'alice', role: 'ra' },
      { type: 'enable' },
    ];
    for (const req of setup) await r.auth(req, { epoch });
  });

  it('refuses a revoke whose lease got a key the caller cannot write after the check, on every replica alike', async () => {
    await r.leaseGrant(1n, 100, as('root'));
    await r.put({ key: b('a/1'), value: b('v'), lease: 1n }, as('alice'));
    // The gateway's check of alice's revoke, made now, passes: every attached key is under a/.
    const checked = as('alice');
    for (const k of (await r.leaseTimeToLive(1n, true)).keys) checkKeyAccess(r.authState, { user: 'alice', revision: checked.authRevision }, k, undefined, 'write');
    // Root attaches b/1 before the revoke applies.
    await r.put({ key: b('b/1'), value: b('v'), lease: 1n }, as('root'));
    assert.equal(await refusal(r.leaseRevoke(1n, checked)), 'PERMISSION_DENIED');
    assert.ok(r.leaseExists(1n), 'the lease stays');
    assert.deepEqual(await keys('a/'), ['a/1']);
    assert.deepEqual(await keys('b/'), ['b/1']);
    await h.settle();
    for (const id of [2, 3]) assert.ok(h.replica(id).leaseExists(1n), `the lease stays on replica ${id}`);
    // No user (no token): "user name is empty"; root may; an internal revoke (expiry) is not checked.
    assert.equal(await refusal(r.leaseRevoke(1n, as(''))), 'USER_EMPTY');
    await r.leaseRevoke(1n, as('root'));
    assert.deepEqual([...(await keys('a/')), ...(await keys('b/'))], []);
    await r.leaseGrant(2n, 100, as('root'));
    await r.put({ key: b('b/2'), value: b('v'), lease: 2n }, as('root'));
    await r.leaseRevoke(2n, { epoch });
    assert.deepEqual(await keys('b/'), []);
  });

  it('allows a revoke of a lease whose keys are all writable, or without keys', async () => {
    await r.leaseGrant(3n, 100, as('root'));
    await r.put({ key: b('a/3'), value: b('v'), lease: 3n }, as('alice'));
    await r.leaseRevoke(3n, as('alice'));
    await r.leaseGrant(4n, 100, as('root'));
    await r.leaseRevoke(4n, as(''));
    assert.equal(r.leaseExists(3n) || r.leaseExists(4n), false);
  });

  it('refuses a put that names a lease holding a key the caller cannot write; writes nothing', async () => {
    await r.leaseGrant(5n, 100, as('root'));
    await r.put({ key: b('b/5'), value: b('v'), lease: 5n }, as('root'));
    const before = r.currentRevision;
    assert.equal(await refusal(r.put({ key: b('a/5'), value: b('v'), lease: 5n }, as('alice'))), 'PERMISSION_DENIED');
    assert.equal(r.currentRevision, before, 'no revision consumed');
    assert.deepEqual(await keys('a/'), []);
    // Root may; a lease with only writable keys is fine; a missing lease is not found, as without auth.
    await r.put({ key: b('b/6'), value: b('v'), lease: 5n }, as('root'));
    await r.leaseGrant(6n, 100, as('root'));
    await r.put({ key: b('a/6'), value: b('v'), lease: 6n }, as('alice'));
    await r.put({ key: b('a/7'), value: b('v'), lease: 6n }, as('alice'));
    assert.deepEqual(await keys('a/'), ['a/6', 'a/7']);
    assert.match(await refusal(r.put({ key: b('a/8'), value: b('v'), lease: 0x77n }, as('alice'))), /requested lease not found/);
    // A Txn's put is not checked against the lease's keys: etcd 3.4.23 accepts it too (checked against a real cluster).
    await r.txn({ success: [{ type: 'put', request: { key: b('a/8'), value: b('v'), lease: 5n } }], failure: [] }, as('alice'));
    assert.deepEqual(await keys('a/'), ['a/6', 'a/7', 'a/8']);
  });

  it('checks no lease keys when auth is disabled', async () => {
    await r.auth({ type: 'disable' }, as('root'));
    await r.put({ key: b('a/9'), value: b('v'), lease: 5n }, { epoch, authRevision: r.authState.revision });
    assert.deepEqual(await keys('a/'), ['a/6', 'a/7', 'a/8', 'a/9']);
  });
});
