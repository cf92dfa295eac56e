/** The simple token store: format, assignment, TTL renewed on use (per member), invalidation, and its bound. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SimpleTokenStore, TOKEN_TTL_MS_DEFAULT } from '../../src/gateway/auth-tokens.js';

/** A clock the test moves by hand, and a seeded byte source (xorshift32). */
function fixtures(seed = 0x9e3779b9): { now: () => number; advance: (ms: number) => void; random: (n: number) => Uint8Array } {
  console.log(`seed ${seed}`);
  let t = 1_000;
  let x = seed >>> 0;
  return {
    now: () => t,
    advance: (ms) => void (t += ms),
    random: (n) => {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        x ^= x << 13;
        x >>>= 0;
        x ^= x >>> 17;
        x ^= x << 5;
        x >>>= 0;
        out[i] = x & 0xff;
      }
      return out;
    },
  };
}

/** What a member does for an applied Authenticate at raft `index`: the token made of a new prefix, assigned. */
function issue(store: SimpleTokenStore, user: string, index: number): string {
  const token = `${store.newPrefix()}.${index}`;
  store.assign(token, user);
  return token;
}

describe('SimpleTokenStore', () => {
  it('makes "<16 letters>.<index>" tokens that name their user', () => {
    const f = fixtures();
    const store = new SimpleTokenStore({ now: f.now, random: f.random });
    const t = issue(store, 'alice', 42);
    assert.match(t, /^[A-Za-z]{16}\.42$/);
    assert.equal(store.lookup(t), 'alice');
    assert.equal(store.lookup('nope.1'), undefined);
  });

  it('expires after the TTL unless used; each use renews it', () => {
    const f = fixtures();
    const store = new SimpleTokenStore({ now: f.now, random: f.random });
    const used = issue(store, 'a', 1);
    const idle = issue(store, 'b', 2);
    f.advance(TOKEN_TTL_MS_DEFAULT - 1);
    assert.equal(store.lookup(used), 'a');
    f.advance(2);
    assert.equal(store.lookup(idle), undefined, 'idle token expired');
    assert.equal(store.lookup(used), 'a', 'renewed token still valid');
    f.advance(TOKEN_TTL_MS_DEFAULT);
    assert.equal(store.lookup(used), undefined);
    assert.equal(store.size, 0);
  });

  it('invalidates one user\'s tokens, or all of them', () => {
    const f = fixtures();
    const store = new SimpleTokenStore({ now: f.now, random: f.random });
    const a1 = issue(store, 'a', 1);
    const a2 = issue(store, 'a', 2);
    const c = issue(store, 'c', 3);
    store.invalidateUser('a');
    assert.equal(store.lookup(a1), undefined);
    assert.equal(store.lookup(a2), undefined);
    assert.equal(store.lookup(c), 'c');
    store.clear();
    assert.equal(store.lookup(c), undefined);
  });

  it('holds at most tokensMax tokens, dropping the least recently used', () => {
    const f = fixtures();
    const store = new SimpleTokenStore({ now: f.now, random: f.random, tokensMax: 2 });
    const t1 = issue(store, 'u1', 1);
    const t2 = issue(store, 'u2', 2);
    store.lookup(t1); // t2 is now the least recently used
    const t3 = issue(store, 'u3', 3);
    assert.equal(store.size, 2);
    assert.equal(store.lookup(t2), undefined);
    assert.equal(store.lookup(t1), 'u1');
    assert.equal(store.lookup(t3), 'u3');
  });

  it('a token assigned on two members is valid on both, each renewing its own TTL (etcd: per member)', () => {
    const f = fixtures();
    const a = new SimpleTokenStore({ now: f.now, random: f.random });
    const b = new SimpleTokenStore({ now: f.now, random: f.random });
    const token = issue(a, 'alice', 7);
    b.assign(token, 'alice');
    f.advance(TOKEN_TTL_MS_DEFAULT - 1);
    assert.equal(a.lookup(token), 'alice');
    f.advance(2);
    assert.equal(b.has(token), false, 'unused on b: expired there');
    assert.equal(a.lookup(token), 'alice', 'used on a: renewed there');
  });
});
