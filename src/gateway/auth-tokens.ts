/**
 * etcd's "simple" auth tokens (auth/simple_token.go): `<16 random
 * letters>.<raft index of the Authenticate>`, held in memory by every
 * member, valid for a TTL that every use on that member renews. The gateway
 * that serves an Authenticate picks the random letters ({@link
 * SimpleTokenStore.newPrefix}) and proposes them; every member assigns the
 * token when its replica applies the command ({@link SimpleTokenStore.assign},
 * wired in auth-guard.ts), so a token is valid on every member, as etcd's
 * are. Tokens are not persisted: after a restart clients authenticate again
 * (clientv3 does so on "invalid auth token").
 *
 * Expiry needs no timer: the map is kept in last-use order (a use moves the
 * token to the end), so expired tokens are always at the front and are
 * dropped there on every issue and lookup.
 */
import { randomBytes } from 'node:crypto';

/** etcd's default --auth-token-ttl (300 s). */
export const TOKEN_TTL_MS_DEFAULT = 300_000;
/** Most live tokens held; issuing one more drops the least recently used. */
export const TOKENS_MAX = 100_000;
/** Random letters of a token (etcd's defaultSimpleTokenLength). */
export const TOKEN_RANDOM_CHARS = 16;
const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** Options of {@link SimpleTokenStore}. */
export interface SimpleTokenOptions {
  readonly ttlMs?: number;
  readonly tokensMax?: number;
  /** Milliseconds clock (injected in tests); default Date.now. */
  readonly now?: () => number;
  /** `n` random bytes (injected in tests); default crypto.randomBytes. */
  readonly random?: (n: number) => Uint8Array;
}

interface Entry {
  readonly user: string;
  expiresAt: number;
}

/** The simple tokens this gateway issued. */
export class SimpleTokenStore {
  private readonly tokens = new Map<string, Entry>();
  private readonly ttlMs: number;
  private readonly tokensMax: number;
  private readonly now: () => number;
  private readonly random: (n: number) => Uint8Array;

  constructor(options: SimpleTokenOptions = {}) {
    this.ttlMs = options.ttlMs ?? TOKEN_TTL_MS_DEFAULT;
    this.tokensMax = options.tokensMax ?? TOKENS_MAX;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? randomBytes;
    if (!(this.ttlMs > 0) || !(this.tokensMax > 0)) throw new RangeError('token TTL and bound must be positive');
  }

  /** Live tokens held. */
  get size(): number {
    return this.tokens.size;
  }

  /** The random letters of a new token (the raft index of its Authenticate completes it). */
  newPrefix(): string {
    return this.randomLetters();
  }

  /** Assigns `token` to `user` for a full TTL (an applied Authenticate); the least recently used token goes if full. */
  assign(token: string, user: string): void {
    this.dropExpired();
    this.tokens.delete(token);
    while (this.tokens.size >= this.tokensMax) {
      const oldest = this.tokens.keys().next().value;
      if (oldest === undefined) break;
      this.tokens.delete(oldest);
    }
    this.tokens.set(token, { user, expiresAt: this.now() + this.ttlMs });
  }

  /** Whether `token` is live (no TTL renewal). */
  has(token: string): boolean {
    this.dropExpired();
    return this.tokens.has(token);
  }

  /** The user of a live token (its TTL renewed), or undefined. */
  lookup(token: string): string | undefined {
    this.dropExpired();
    const e = this.tokens.get(token);
    if (e === undefined) return undefined;
    e.expiresAt = this.now() + this.ttlMs;
    // Move to the end: the map stays in last-use order.
    this.tokens.delete(token);
    this.tokens.set(token, e);
    return e.user;
  }

  /** Drops every token of `user` (deleted, or its password changed). */
  invalidateUser(user: string): void {
    for (const [token, e] of this.tokens) if (e.user === user) this.tokens.delete(token);
  }

  /** Drops every token (auth disabled). */
  clear(): void {
    this.tokens.clear();
  }

  private dropExpired(): void {
    const now = this.now();
    for (const [token, e] of this.tokens) {
      if (e.expiresAt > now) return;
      this.tokens.delete(token);
    }
  }

  private randomLetters(): string {
    const bytes = this.random(TOKEN_RANDOM_CHARS);
    let s = '';
    for (let i = 0; i < TOKEN_RANDOM_CHARS; i++) s += LETTERS[(bytes[i] ?? 0) % LETTERS.length];
    return s;
  }
}
