/**
 * Applying auth commands on range 1 (docs/auth.md): the auth store's state
 * lives in the range's engine span under one key (RangeKeys.authState),
 * written in the same batch as the entry's applied index and dedupe record,
 * so a restart sees it exactly as of the applied index, and a range
 * snapshot (which images the whole range span) carries it.
 *
 * Deterministic: the command carries everything (bcrypt hashes are computed
 * before proposing); nothing here reads a clock or a random source.
 */
import type { BatchOp, EngineReader } from '../../storage/index.js';
import { decodeAuthState, encodeAuthState } from './codec.js';
import { AuthError } from './errors.js';
import { applyAuthRequest } from './mutate.js';
import { checkKeyAccess } from './permissions.js';
import { emptyAuthState, type AuthRequest, type AuthState } from './types.js';

/** What applying one auth command decided. */
export type AuthApplyPlan =
  | { readonly ok: true; readonly next: AuthState; readonly ops: readonly BatchOp[] }
  | { readonly ok: false; readonly error: AuthError };

/** Plans `req` against `auth`: the next state and the engine ops that store it (none if unchanged), or the refusal. */
export function planAuthCommand(auth: AuthState, req: AuthRequest, stateKey: Uint8Array): AuthApplyPlan {
  let next: AuthState;
  let changed: boolean;
  try {
    ({ state: next, changed } = applyAuthRequest(auth, req));
  } catch (err) {
    if (err instanceof AuthError) return { ok: false, error: err };
    throw err;
  }
  const ops: BatchOp[] = changed ? [{ type: 'put', key: stateKey, value: encodeAuthState(next) }] : [];
  return { ok: true, next, ops };
}

/**
 * etcd's stale-check at apply: a data command whose permissions were checked
 * at auth revision `checkedAt` is refused when auth is enabled and the store
 * has moved since (a role revoked between check and apply must not let the
 * write through). Commands checked at 0 (internal ones) pass.
 */
export function staleAuthRevision(auth: AuthState, checkedAt: number | undefined): AuthError | undefined {
  if (!auth.enabled || checkedAt === undefined || checkedAt === 0) return undefined;
  return checkedAt === auth.revision ? undefined : new AuthError('AUTH_OLD_REVISION');
}

/** Whether leaseKeysDenied would read a lease's keys: auth is on and the request was authorised (`checkedAt`). */
export function leaseKeysCheckNeeded(auth: AuthState, checkedAt: number | undefined): boolean {
  return auth.enabled && checkedAt !== undefined && checkedAt !== 0;
}

/**
 * etcd's checkLeasePuts, at apply: a Put naming a lease, and a LeaseRevoke,
 * need WRITE on every key already attached to the lease (root always may; a
 * lease without keys needs nothing). Checked against the store and the
 * attachments as of this entry, so a key attached or a permission revoked
 * after the gateway's check still counts. `checkedAt` undefined or 0: an
 * internal command (expiry), not checked. The user '' (no token) is refused
 * with USER_EMPTY when a key is attached, as etcd.
 */
export async function leaseKeysDenied(
  auth: AuthState,
  checkedAt: number | undefined,
  user: string | undefined,
  attachedKeys: () => Promise<readonly Uint8Array[]>,
): Promise<AuthError | undefined> {
  // Checked first: without auth a lease's keys are not read at all (a put with a lease is a hot path).
  if (!leaseKeysCheckNeeded(auth, checkedAt)) return undefined;
  // The stale check ran first: the caller is identified at the store's current revision.
  const caller = { user: user ?? '', revision: auth.revision };
  try {
    for (const key of await attachedKeys()) checkKeyAccess(auth, caller, key, undefined, 'write');
  } catch (err) {
    if (err instanceof AuthError) return err;
    throw err;
  }
  return undefined;
}

/** The auth state stored in a range, or a new store when the range holds none. */
export async function loadAuthState(reader: EngineReader, stateKey: Uint8Array): Promise<AuthState> {
  const raw = await reader.get(stateKey);
  return raw === undefined ? emptyAuthState() : decodeAuthState(raw);
}
