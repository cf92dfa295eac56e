/**
 * Applying the lease side of committed entries (docs/lease.md): grants and
 * revokes, and the lease→key attachments that puts, deletes and txns change.
 * Like apply.ts, everything here depends only on the entry and the
 * replicated state (no clock): expiry is decided by the leader's lessor and
 * arrives here as an ordinary revoke command.
 */
import type { BatchOp } from '../../storage/index.js';
import type { Entry } from '../../group/raft/index.js';
import { Family, LeaseNotFoundError, MvccError, type WritePlan } from '../mvcc/index.js';
import { decodeRecord, isTombstoneRecord } from '../mvcc/value.js';
import { leaseKeysDenied, type AuthError } from '../auth/index.js';
import { LeaseError, LeaseExistsError, LeaseTtlTooLargeError, LEASE_TTL_SECONDS_MAX } from '../lease/index.js';
import type { ApplyResult, RangeCommand } from './command-codec.js';
import type { LeaseGrantCommand, LeaseRevokeCommand } from './lease-codec.js';
import type { RangeState } from './apply.js';
import { entryOutcome, type EntryOutcome } from './outcome.js';

/** What lease apply needs from apply.ts (passed in, so the modules stay acyclic). */
export interface ApplyIo {
  /** Writes `ops` with the applied index in one batch. */
  writeBatch(state: RangeState, index: number, ...opLists: ReadonlyArray<readonly BatchOp[]>): void;
  /** Records a deterministic failure as the command's result. */
  recordFailure(state: RangeState, entry: Entry, cmd: RangeCommand, err: MvccError | LeaseError | AuthError): EntryOutcome;
}

/**
 * Grant: id 0 is refused as etcd's lessor refuses NoLease (`requested lease
 * not found`), a TTL above the maximum and an id in use are refused with
 * etcd's errors. A grant consumes no revision.
 */
export async function applyLeaseGrant(
  state: RangeState,
  entry: Entry,
  cmd: RangeCommand,
  req: LeaseGrantCommand,
  io: ApplyIo,
): Promise<EntryOutcome> {
  if (req.id === 0n) return io.recordFailure(state, entry, cmd, new LeaseNotFoundError(0n));
  if (req.ttlSeconds > LEASE_TTL_SECONDS_MAX) return io.recordFailure(state, entry, cmd, new LeaseTtlTooLargeError(req.ttlSeconds));
  if (state.leases.has(req.id)) return io.recordFailure(state, entry, cmd, new LeaseExistsError(req.id));
  const record = { id: req.id, ttlSeconds: req.ttlSeconds };
  const result: ApplyResult = {
    raftTerm: entry.term,
    ok: true,
    result: { type: 'leaseGrant', response: { revision: state.mvcc.currentRevision, id: req.id, ttlSeconds: req.ttlSeconds } },
  };
  const dedupe = state.dedupe.add(cmd.requestId, { index: entry.index, result });
  io.writeBatch(state, entry.index, state.leases.grantOps(record), dedupe.ops);
  state.leases.commitGrant(record);
  dedupe.commit();
  return entryOutcome(entry, cmd, result);
}

/**
 * Revoke (by a client or by expiry): with auth enabled, a client's revoke
 * needs WRITE on every attached key (refused with the auth error, nothing
 * deleted); every attached key is deleted at ONE
 * revision, in key order, in the same batch that drops the lease and its
 * attachments; with no attached key nothing consumes a revision.
 */
export async function applyLeaseRevoke(
  state: RangeState,
  entry: Entry,
  cmd: RangeCommand,
  req: LeaseRevokeCommand,
  revision: number,
  io: ApplyIo,
): Promise<EntryOutcome> {
  if (!state.leases.has(req.id)) return io.recordFailure(state, entry, cmd, new LeaseNotFoundError(req.id));
  const keys = await state.leases.attachedKeys(state.engine, req.id);
  // etcd's auth applier: WRITE on every attached key, checked on the keys as of this entry.
  const denied = await leaseKeysDenied(state.auth, cmd.authRevision, cmd.authUser, async () => keys);
  if (denied !== undefined) return io.recordFailure(state, entry, cmd, denied);
  let plan: WritePlan<{ responses: readonly unknown[] }> | undefined;
  if (keys.length > 0) {
    try {
      plan = await state.mvcc.planTxn({ success: keys.map((key) => ({ type: 'deleteRange', request: { key } })) }, revision);
    } catch (err) {
      if (!(err instanceof MvccError)) throw err;
      return io.recordFailure(state, entry, cmd, err);
    }
  }
  const deleted = plan?.consumed === true ? keys.length : 0;
  const result: ApplyResult = {
    raftTerm: entry.term,
    ok: true,
    result: { type: 'leaseRevoke', response: { revision: plan?.consumed === true ? revision : state.mvcc.currentRevision, deleted } },
  };
  const dedupe = state.dedupe.add(cmd.requestId, { index: entry.index, result });
  try {
    io.writeBatch(state, entry.index, plan?.ops ?? [], state.leases.revokeOps(req.id, keys), dedupe.ops);
  } catch (err) {
    if (plan !== undefined) state.mvcc.discard(plan);
    throw err;
  }
  if (plan !== undefined) state.mvcc.commit(plan);
  state.leases.commitRevoke(req.id);
  dedupe.commit();
  return entryOutcome(entry, cmd, result);
}

/**
 * The attachment changes of a planned put/delete/txn: for every key it
 * writes, detach it from the lease its previous version had and attach it to
 * the lease of its new version (none for a delete). Call while the plan is
 * pending and before its batch is written. The previous versions come from
 * the hot-key cache, at once when it holds them all (as it does after a plan
 * made from it), else from the engine. With no lease in the table no live key
 * can carry one and no put could have named one, so nothing is read.
 */
export function leaseAttachmentOps(state: RangeState, plan: WritePlan<unknown>): BatchOp[] | Promise<BatchOp[]> {
  if (state.leases.size === 0 || !plan.consumed) return [];
  const writes = writtenLeases(state, plan);
  const ops: BatchOp[] = [];
  for (let i = 0; i < writes.length; i++) {
    const meta = state.mvcc.latestMetaNow(writes[i]!.userKey);
    if (meta === undefined) return attachmentOpsRead(state, writes, i, ops);
    pushAttachmentOps(state, ops, writes[i]!, meta?.lease ?? 0n);
  }
  return ops;
}

/** The rest of leaseAttachmentOps from write `from` on, reading what the cache lacks. */
async function attachmentOpsRead(state: RangeState, writes: readonly WrittenLease[], from: number, ops: BatchOp[]): Promise<BatchOp[]> {
  for (let i = from; i < writes.length; i++) {
    const meta = await state.mvcc.latestMeta(writes[i]!.userKey);
    pushAttachmentOps(state, ops, writes[i]!, meta?.lease ?? 0n);
  }
  return ops;
}

/** A key a plan writes at its revision and the lease of its new version (0n: none). */
interface WrittenLease {
  readonly userKey: Uint8Array;
  readonly lease: bigint;
}

function writtenLeases(state: RangeState, plan: WritePlan<unknown>): WrittenLease[] {
  const codec = state.mvcc.codec;
  const dataFamily = codec.familyStart(Family.Data);
  const out: WrittenLease[] = [];
  for (const op of plan.ops) {
    if (op.type !== 'put') continue;
    const key = Buffer.from(op.key);
    if (!key.subarray(0, dataFamily.length).equals(dataFamily)) continue;
    const parts = codec.parseDataKey(key);
    if (parts.revision !== plan.revision) continue;
    out.push({ userKey: codec.userKeyOfSegment(parts.keySegment), lease: leaseOfRecord(Buffer.from(op.value)) });
  }
  return out;
}

function pushAttachmentOps(state: RangeState, ops: BatchOp[], write: WrittenLease, prev: bigint): void {
  if (prev === write.lease) return;
  if (prev !== 0n) ops.push(state.leases.detachOp(prev, write.userKey));
  if (write.lease !== 0n) ops.push(state.leases.attachOp(write.lease, write.userKey));
}

function leaseOfRecord(record: Buffer): bigint {
  if (isTombstoneRecord(record)) return 0n;
  const r = decodeRecord(record);
  return r.tombstone ? 0n : r.lease;
}
