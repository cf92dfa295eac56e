/**
 * AuthGuard's tokens follow the auth commands its member's replica applies
 * (etcd's simple token provider at apply): three real replicas of one range
 * (the in-process raft harness), one guard per replica standing for a
 * member. An Authenticate proposed on one member is a valid token on every
 * member; a member that has not applied it yet makes a call carrying it wait
 * until it has (bounded); deleting the user, changing its password or
 * disabling auth drops tokens on every member. And --auth-token-ttl reaches
 * the tokens of a running server.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { AuthGuard, TOKEN_APPLY_WAIT_MS } from '../../src/gateway/auth-guard.js';
import { SimpleTokenStore } from '../../src/gateway/auth-tokens.js';
import type { RangeRouter, RangeTarget } from '../../src/gateway/router.js';
import { INITIAL_EPOCH } from '../../src/shard/range/index.js';
import type { Replica } from '../../src/shard/replica/index.js';
import { AuthError, type AuthRequest } from '../../src/shard/auth/index.js';
import { Harness } from '../shard/replica/harness.js';
import { startEmbedded } from '../../src/gateway/embedded.js';
import { client, failure, TEST_TICK_MS } from './server-harness.js';

const epoch = INITIAL_EPOCH;

/** A router over one replica (the member's only range). */
function routerOf(replica: Replica): RangeRouter {
  const target: RangeTarget = {
    rangeId: 1,
    replica,
    epoch,
    raftStatus: () => ({ leader: 0, term: 0, commit: 0, applied: replica.appliedIndex(), role: 'follower' }),
  };
  return { route: () => target, ranges: () => [target], invalidate: () => undefined };
}

function md(token: string): grpc.Metadata {
  const m = new grpc.Metadata();
  m.set('token', token);
  return m;
}

describe('AuthGuard tokens across members', () => {
  let h: Harness;
  const guards = new Map<number, AuthGuard>();
  const guard = (id: number): AuthGuard => guards.get(id) as AuthGuard;
  /** The user a token names on member `id`, or the auth error code. */
  const who = (id: number, token: string): string => {
    try {
      return guard(id).caller(md(token))?.user ?? '(none)';
    } catch (err) {
      if (err instanceof AuthError) return err.code;
      throw err;
    }
  };
  /** Authenticates `name` through replica 1 (the leader) with the guard's letters; resolves the token. */
  const authenticate = async (name: string): Promise<string> => {
    const r = h.replica(1);
    const reply = await r.auth({ type: 'authenticate', name, checkedRevision: r.authState.revision, tokenPrefix: guard(1).tokens.newPrefix() }, { epoch });
    assert.ok(reply.result.token !== undefined);
    assert.match(reply.result.token, new RegExp(`^[A-Za-z]{16}\\.${reply.result.index}$`));
    return reply.result.token;
  };

  before(async () => {
    h = await Harness.start([1, 2, 3]);
    for (const id of [1, 2, 3]) guards.set(id, new AuthGuard(routerOf(h.replica(id)), new SimpleTokenStore()));
    const setup: AuthRequest[] = [
      { type: 'userAdd', name: 'root', passwordHash: 'h', noPassword: false },
      { type: 'userGrantRole', name: 'root', role: 'root' },
      { type: 'userAdd', name: 'bob', passwordHash: 'h', noPassword: false },
      { type: 'enable' },
    ];
    for (const req of setup) await h.replica(1).auth(req, { epoch });
    await h.settle();
  });

  it('a token assigned at apply is valid on every member', async () => {
    const token = await authenticate('bob');
    await h.settle();
    for (const id of [1, 2, 3]) assert.equal(who(id, token), 'bob', `member ${id}`);
    assert.equal(who(2, 'AAAAAAAAAAAAAAAA.1'), 'INVALID_AUTH_TOKEN');
  });

  it('a member behind waits for the Authenticate its token names, then knows it', async () => {
    h.isolate(3);
    const token = await authenticate('bob');
    assert.equal(who(3, token), 'INVALID_AUTH_TOKEN', 'not applied on member 3 yet');
    let waited = false;
    const wait = guard(3)
      .awaitToken(md(token))
      .then(() => (waited = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(waited, false, 'still waiting while member 3 is cut off');
    h.heal();
    await h.tick(5);
    await h.settle();
    await wait;
    assert.equal(who(3, token), 'bob');
  });

  it('waits no longer than the bound, or than the call, for a token that never comes', async () => {
    const farIndex = h.replica(1).appliedIndex() + 1_000;
    const abort = new AbortController();
    const aborted = guard(2).awaitToken(md(`BBBBBBBBBBBBBBBB.${farIndex}`), abort.signal);
    abort.abort();
    await aborted;
    const started = Date.now();
    await guard(2).awaitToken(md(`CCCCCCCCCCCCCCCC.${farIndex}`));
    assert.ok(Date.now() - started >= TOKEN_APPLY_WAIT_MS - 50, 'waited the bound');
    assert.equal(who(2, `CCCCCCCCCCCCCCCC.${farIndex}`), 'INVALID_AUTH_TOKEN');
  });

  it('drops a user\'s tokens on every member when it changes password or is deleted, all tokens on disable', async () => {
    const bob = await authenticate('bob');
    const root = await authenticate('root');
    await h.replica(1).auth({ type: 'userChangePassword', name: 'bob', passwordHash: 'h2' }, { epoch });
    await h.settle();
    for (const id of [1, 2, 3]) {
      assert.equal(who(id, bob), 'INVALID_AUTH_TOKEN', `bob on member ${id}`);
      assert.equal(who(id, root), 'root', `root on member ${id}`);
    }
    const bob2 = await authenticate('bob');
    await h.replica(1).auth({ type: 'userDelete', name: 'bob' }, { epoch });
    await h.settle();
    for (const id of [1, 2, 3]) assert.equal(who(id, bob2), 'INVALID_AUTH_TOKEN', `deleted bob on member ${id}`);
    await h.replica(1).auth({ type: 'disable' }, { epoch });
    await h.settle();
    for (const id of [1, 2, 3]) assert.equal(guard(id).tokens.size, 0, `member ${id} holds no token`);
  });
});

describe('--auth-token-ttl on a running server', () => {
  it('an unused token expires after the TTL; each use renews it', async () => {
    const TTL_MS = 2_000;
    const server = await startEmbedded({
      name: 'ttl',
      engineKind: 'memory',
      listenClient: [{ url: 'http://127.0.0.1:0', host: '127.0.0.1', port: 0 }],
      listenPeer: { url: 'http://127.0.0.1:0', host: '127.0.0.1', port: 0 },
      tickMs: TEST_TICK_MS,
      authTokenTtlMs: TTL_MS,
    });
    const auth = client('etcdserverpb.Auth', server.server.addresses[0] as string);
    try {
      await auth.call('UserAdd', { name: 'root', password: 'pw' });
      await auth.call('UserGrantRole', { user: 'root', role: 'root' });
      await auth.call('AuthEnable', {});
      const used = md((await auth.call('Authenticate', { name: 'root', password: 'pw' }))['token'] as string);
      const idle = md((await auth.call('Authenticate', { name: 'root', password: 'pw' }))['token'] as string);
      const end = Date.now() + TTL_MS * 1.6;
      while (Date.now() < end) {
        await auth.call('UserList', {}, used);
        await new Promise((r) => setTimeout(r, TTL_MS / 10));
      }
      await auth.call('UserList', {}, used);
      assert.deepEqual(await failure(auth.call('UserList', {}, idle)), { code: grpc.status.UNAUTHENTICATED, details: 'etcdserver: invalid auth token' });
    } finally {
      auth.close();
      await server.close();
    }
  });
});
