/**
 * Applying committed raft entries to a range's state: the MVCC keyspace, the
 * range descriptor and the dedupe table. Each entry's effects, its dedupe
 * record and the new applied index go into ONE engine batch, so a restart
 * neither re-applies nor skips an entry. The batch is not synced: the raft
 * log (fsynced before the entry was acknowledged or committed) is the
 * durable source, and after a crash the host replays entries above the
 * applied index found in the engine; the applied index written here can only
 * name entries that are already committed, hence durable in the log.
 *
 * Everything here is deterministic: it depends only on the entry and the
 * replicated state, never on a clock or on which replica applies it.
 */
import type { BatchOp } from '../../storage/index.js';
import type { WriteBehindEngine } from '../../storage/write-behind.js';
import type { ConfState, Entry } from '../../group/raft/index.js';
import { decodeConfChange } from '../../group/raft/index.js';
import {
  CompactedError,
  DuplicateKeyError,
  FutureRevisionError,
  KeyNotFoundError,
  KeyNotProvidedError,
  LeaseNotFoundError,
  LeaseProvidedError,
  MvccError,
  ValueProvidedError,
  type MvccStore, type WritePlan, type TxnRequest } from '../mvcc/index.js';
import {
  DATA_EPOCH_CHECK,
  epochMatches,
  spanContainsRange,
  type RangeDescriptor,
} from '../range/descriptor.js';
import { EpochMismatchError, KeyNotInRangeError, ReplicaError, RevisionRejectedError, CommandInvalidError } from '../range/errors.js';
import type { ApplyResult, CommandResult, RangeCommand, StoredError } from './command-codec.js';
import { decodeCommand, encodeDescriptor } from './command-codec.js';
import { entryOutcome, type EntryOutcome } from './outcome.js';
import type { DedupeTable } from './dedupe.js';
import type { RangeKeys } from './keys.js';
import { descriptorAfterConfChange } from './membership.js';
import { writeRevision } from './revision.js';
import { AuthError, isAuthErrorCode, leaseKeysCheckNeeded, leaseKeysDenied, planAuthCommand, staleAuthRevision, type AuthRequest, type AuthState } from '../auth/index.js';
import { LeaseError, LeaseExistsError, LeaseTtlTooLargeError, type LeaseTable } from '../lease/index.js';
import { applyLeaseGrant, applyLeaseRevoke, leaseAttachmentOps, type ApplyIo } from './lease-apply.js';

/** The replicated state of one range that entries are applied to. */
export interface RangeState {
  /** The range's write-behind view of the node's engine (storage/write-behind.ts). */
  readonly engine: WriteBehindEngine;
  readonly keys: RangeKeys;
  /** Replaced when a snapshot is installed. */
  mvcc: MvccStore;
  readonly dedupe: DedupeTable;
  /** The range's leases (docs/lease.md). */
  readonly leases: LeaseTable;
  descriptor: RangeDescriptor;
  appliedIndex: number;
  /** The auth store (used on range 1; see src/shard/auth). */
  auth: AuthState;
}

export type { EntryOutcome } from './outcome.js';

/**
 * Applies one normal (non-conf-change) entry. `decoded`, when given, is the
 * entry's data already decoded (by the batch's key prefetch), so it is not
 * decoded twice. The outcome comes at once (no promise) when nothing needs
 * the engine: a put planned from the hot-key cache, a failure, a no-op.
 */
export function applyNormalEntry(state: RangeState, entry: Entry, decoded?: RangeCommand): EntryOutcome | Promise<EntryOutcome> {
  if (entry.data.length === 0) {
    // A new leader's no-op: only the applied index moves.
    writeBatch(state, entry.index, []);
    return entryOutcome(entry, undefined, undefined);
  }
  let cmd: RangeCommand;
  try {
    cmd = decoded ?? decodeCommand(entry.data);
  } catch (err) {
    // Every replica fails the same way on the same bytes; skip the entry.
    writeBatch(state, entry.index, []);
    return entryOutcome(entry, undefined, undefined, asReplicaError(err));
  }
  // The table knows the ids it holds: a request never seen needs no read.
  return state.dedupe.mayHold(cmd.requestId) ? applyUnlessKnown(state, entry, cmd) : applyNew(state, entry, cmd);
}

/** A command whose request id the dedupe table may hold: a retry of an applied request is answered with its stored result. */
async function applyUnlessKnown(state: RangeState, entry: Entry, cmd: RangeCommand): Promise<EntryOutcome> {
  const known = await state.dedupe.get(cmd.requestId);
  if (known !== undefined) {
    writeBatch(state, entry.index, []);
    return entryOutcome(entry, cmd, known.result, undefined, true);
  }
  return applyNew(state, entry, cmd);
}

/** A command not applied before. */
function applyNew(state: RangeState, entry: Entry, cmd: RangeCommand): EntryOutcome | Promise<EntryOutcome> {
  const rejection = checkRouting(state.descriptor, cmd);
  if (rejection !== undefined) {
    writeBatch(state, entry.index, []);
    return entryOutcome(entry, cmd, undefined, rejection);
  }
  const staleAuth = staleAuthRevision(state.auth, cmd.authRevision);
  if (staleAuth !== undefined) return recordFailure(state, entry, cmd, staleAuth);
  if (cmd.body.type === 'auth') return applyAuth(state, entry, cmd, cmd.body.request);
  return applyWrite(state, entry, cmd);
}

/**
 * Applies a conf-change entry whose change raft has already applied
 * (`confState` is the membership after it). The descriptor follows raft:
 * its replicas become the ConfState's, with node ids from the old descriptor
 * or the command in the entry's context, and its conf version is bumped.
 */
export function applyConfChangeEntry(state: RangeState, entry: Entry, confState: ConfState): EntryOutcome {
  const cc = decodeConfChange(entry.data);
  let cmd: RangeCommand | undefined;
  if (cc.context !== undefined && cc.context.length > 0) {
    try {
      cmd = decodeCommand(cc.context);
    } catch {
      cmd = undefined; // a conf change proposed by someone else (e.g. raft's auto-leave): no waiter
    }
  }
  const change = cmd?.body.type === 'changeReplicas' ? cmd.body.request : undefined;
  const next = descriptorAfterConfChange(state.descriptor, confState, change);
  const result: ApplyResult = { raftTerm: entry.term, ok: true, result: { type: 'changeReplicas', response: next } };
  const ops: BatchOp[] = [{ type: 'put', key: state.keys.descriptor, value: encodeDescriptor(next) }];
  const dedupe = cmd === undefined ? undefined : state.dedupe.add(cmd.requestId, { index: entry.index, result });
  if (dedupe !== undefined) ops.push(...dedupe.ops);
  writeBatch(state, entry.index, ops);
  dedupe?.commit();
  state.descriptor = next;
  return entryOutcome(entry, cmd, result);
}

/** Epoch and key-span checks of a data command against the applying replica's descriptor. */
export function checkRouting(desc: RangeDescriptor, cmd: RangeCommand): ReplicaError | undefined {
  if (cmd.body.type === 'changeReplicas') return new CommandInvalidError('a membership change must travel in a conf-change entry');
  if (!epochMatches(cmd.epoch, desc.epoch, DATA_EPOCH_CHECK)) return new EpochMismatchError(desc);
  for (const [key, rangeEnd] of commandKeys(cmd)) {
    if (!spanContainsRange(desc, key, rangeEnd)) return new KeyNotInRangeError(key, desc.rangeId, desc.start, desc.end);
  }
  return undefined;
}

/** A `[key, rangeEnd)` a command reads or writes. */
type KeySpan = [key: Uint8Array, rangeEnd: Uint8Array | undefined];

/** Every `[key, rangeEnd)` a command reads or writes (nested txns included); an array, as every applied entry asks. */
export function commandKeys(cmd: RangeCommand): KeySpan[] {
  switch (cmd.body.type) {
    case 'put':
      return [[cmd.body.request.key, undefined]];
    case 'deleteRange':
      return [[cmd.body.request.key, cmd.body.request.rangeEnd]];
    case 'txn': {
      const out: KeySpan[] = [];
      txnKeys(cmd.body.request, out);
      return out;
    }
    case 'compact':
    case 'changeReplicas':
    case 'auth':
    case 'leaseGrant':
    case 'leaseRevoke':
      return [];
  }
}

function txnKeys(txn: TxnRequest, out: KeySpan[]): void {
  for (const c of txn.compare ?? []) out.push([c.key, c.rangeEnd]);
  for (const ops of [txn.success, txn.failure]) {
    for (const op of ops ?? []) {
      if (op.type === 'txn') txnKeys(op.request, out);
      else out.push([op.request.key, op.type === 'put' ? undefined : op.request.rangeEnd]);
    }
  }
}

function applyWrite(state: RangeState, entry: Entry, cmd: RangeCommand): EntryOutcome | Promise<EntryOutcome> {
  const body = cmd.body;
  if (body.type === 'compact') return applyCompact(state, entry, cmd, body.request.revision);
  if (body.type === 'leaseGrant') return applyLeaseGrant(state, entry, cmd, body.request, LEASE_IO);
  let revision: number;
  try {
    revision = writeRevision(cmd, state.mvcc.currentRevision);
  } catch (err) {
    if (!(err instanceof RevisionRejectedError)) throw err;
    // Not recorded: the proposer retries the same request with a new revision.
    writeBatch(state, entry.index, []);
    return entryOutcome(entry, cmd, undefined, err);
  }
  if (body.type === 'leaseRevoke') return applyLeaseRevoke(state, entry, cmd, body.request, revision, LEASE_IO);
  if (body.type === 'txn' || (body.type === 'put' && !leaseKeysChecked(state, cmd, body.request.lease))) {
    // The common write: a put or compare-and-put is planned from the hot-key
    // cache when it holds the keys (planPutNow, planTxnNow), and so are its
    // lease attachment changes, so nothing waits.
    const leaseExists = state.leases.size === 0 ? NO_LEASE : (id: bigint): boolean => state.leases.has(id);
    let plan: WritePlan<unknown> | undefined;
    try {
      plan =
        body.type === 'put'
          ? state.mvcc.planPutNow(body.request, revision, { leaseExists })
          : state.mvcc.planTxnNow(body.request, revision, { leaseExists });
    } catch (err) {
      if (!(err instanceof MvccError)) throw err;
      return recordFailure(state, entry, cmd, err);
    }
    if (plan !== undefined) return commitWithLeases(state, entry, cmd, plan, body.type === 'put' ? putResult : txnResult);
  }
  return applyPlanned(state, entry, cmd, revision);
}

/** An empty lease table's view: no lease exists. */
const NO_LEASE = (): boolean => false;

/**
 * Whether a put must pass etcd's checkLeasePuts before it is planned: it
 * names a lease that exists while auth is on for the caller.
 */
function leaseKeysChecked(state: RangeState, cmd: RangeCommand, lease: bigint | undefined): boolean {
  return lease !== undefined && lease !== 0n && state.leases.has(lease) && leaseKeysCheckNeeded(state.auth, cmd.authRevision);
}

/** A put, delete or txn at `revision`, planned with the engine's help where the cache does not hold a key. */
async function applyPlanned(state: RangeState, entry: Entry, cmd: RangeCommand, revision: number): Promise<EntryOutcome> {
  const body = cmd.body;
  let plan: WritePlan<unknown>;
  let toResult: (r: unknown) => CommandResult;
  // A put naming a lease needs the lease to exist when it is applied.
  const leaseExists = (id: bigint): boolean => state.leases.has(id);
  if (body.type === 'put' && leaseKeysChecked(state, cmd, body.request.lease)) {
    // etcd's checkLeasePuts: attaching to a lease needs WRITE on the keys it already holds (the caller could not revoke it otherwise).
    const lease = body.request.lease!;
    const denied = await leaseKeysDenied(state.auth, cmd.authRevision, cmd.authUser, () => state.leases.attachedKeys(state.engine, lease));
    if (denied !== undefined) return recordFailure(state, entry, cmd, denied);
  }
  try {
    switch (body.type) {
      case 'put':
        plan = await state.mvcc.planPut(body.request, revision, { leaseExists });
        toResult = putResult;
        break;
      case 'deleteRange':
        plan = await state.mvcc.planDeleteRange(body.request, revision, { leaseExists });
        toResult = deleteRangeResult;
        break;
      case 'txn':
        plan = await state.mvcc.planTxn(body.request, revision, { leaseExists });
        toResult = txnResult;
        break;
      default:
        throw new Error(`unreachable: ${body.type} commands are applied elsewhere`);
    }
  } catch (err) {
    if (!(err instanceof MvccError)) throw err;
    return recordFailure(state, entry, cmd, err);
  }
  return commitWithLeases(state, entry, cmd, plan, toResult);
}

/** commitWrite with the plan's lease attachment changes, at once when the cache holds what they read. */
function commitWithLeases(
  state: RangeState,
  entry: Entry,
  cmd: RangeCommand,
  plan: WritePlan<unknown>,
  toResult: (r: unknown) => CommandResult,
): EntryOutcome | Promise<EntryOutcome> {
  let leaseOps: BatchOp[] | Promise<BatchOp[]>;
  try {
    leaseOps = leaseAttachmentOps(state, plan);
  } catch (err) {
    state.mvcc.discard(plan);
    throw err;
  }
  if (Array.isArray(leaseOps)) return commitWrite(state, entry, cmd, plan, toResult, leaseOps);
  return leaseOps.then(
    (ops) => commitWrite(state, entry, cmd, plan, toResult, ops),
    (err: unknown) => {
      state.mvcc.discard(plan);
      throw err;
    },
  );
}

/** Writes a pending plan with its lease attachment changes and dedupe record, then commits it. */
function commitWrite(
  state: RangeState,
  entry: Entry,
  cmd: RangeCommand,
  plan: WritePlan<unknown>,
  toResult: (r: unknown) => CommandResult,
  leaseOps: readonly BatchOp[],
): EntryOutcome {
  const result: ApplyResult = { raftTerm: entry.term, ok: true, result: toResult(plan.result) };
  const dedupe = state.dedupe.add(cmd.requestId, { index: entry.index, result });
  try {
    writeBatch(state, entry.index, plan.ops, leaseOps, dedupe.ops);
  } catch (err) {
    state.mvcc.discard(plan);
    throw err;
  }
  state.mvcc.commit(plan);
  dedupe.commit();
  return entryOutcome(entry, cmd, result);
}

const putResult = (r: unknown): CommandResult => ({ type: 'put', response: r as never });
const deleteRangeResult = (r: unknown): CommandResult => ({ type: 'deleteRange', response: r as never });
const txnResult = (r: unknown): CommandResult => ({ type: 'txn', response: r as never });

function applyCompact(state: RangeState, entry: Entry, cmd: RangeCommand, revision: number): EntryOutcome {
  let plan;
  try {
    plan = state.mvcc.planCompact(revision);
  } catch (err) {
    if (!(err instanceof MvccError)) throw err;
    return recordFailure(state, entry, cmd, err);
  }
  const result: ApplyResult = {
    raftTerm: entry.term,
    ok: true,
    result: { type: 'compact', response: { revision: state.mvcc.currentRevision } },
  };
  const dedupe = state.dedupe.add(cmd.requestId, { index: entry.index, result });
  writeBatch(state, entry.index, plan.ops, dedupe.ops);
  // Physical removal runs in the background in bounded chunks (MvccStore).
  const removal = state.mvcc.commitCompact(plan);
  removal.catch(() => undefined); // observed by the proposer if it waits; never unhandled
  dedupe.commit();
  return entryOutcome(entry, cmd, result, undefined, false, removal);
}

/** An auth command (src/shard/auth/apply-auth.ts plans it): the new auth state, stored with the applied index. */
function applyAuth(state: RangeState, entry: Entry, cmd: RangeCommand, req: AuthRequest): EntryOutcome {
  const plan = planAuthCommand(state.auth, req, state.keys.authState);
  if (!plan.ok) return recordFailure(state, entry, cmd, plan.error);
  const token = req.type === 'authenticate' && req.tokenPrefix !== '' ? { token: `${req.tokenPrefix}.${entry.index}` } : {};
  const response = { revision: state.mvcc.currentRevision, authRevision: plan.next.revision, index: entry.index, ...token };
  const result: ApplyResult = { raftTerm: entry.term, ok: true, result: { type: 'auth', response } };
  const dedupe = state.dedupe.add(cmd.requestId, { index: entry.index, result });
  writeBatch(state, entry.index, plan.ops, dedupe.ops);
  dedupe.commit();
  state.auth = plan.next;
  return entryOutcome(entry, cmd, result);
}

/** A command that failed deterministically (an MVCC, auth or lease error): the failure is the result, recorded for retries. */
function recordFailure(state: RangeState, entry: Entry, cmd: RangeCommand, err: MvccError | AuthError | LeaseError): EntryOutcome {
  const result: ApplyResult = { raftTerm: entry.term, ok: false, error: storedError(err) };
  const dedupe = state.dedupe.add(cmd.requestId, { index: entry.index, result });
  writeBatch(state, entry.index, dedupe.ops);
  dedupe.commit();
  return entryOutcome(entry, cmd, result);
}

/** The stored form of an MVCC, auth or lease error (its code, wire text and recovery data). */
export function storedError(err: MvccError | AuthError | LeaseError): StoredError {
  const e: { code: string; message: string; revision?: number; lease?: bigint } = { code: err.code, message: err.message };
  if ('compactRevision' in err && typeof err.compactRevision === 'number') e.revision = err.compactRevision;
  if ('currentRevision' in err && typeof err.currentRevision === 'number') e.revision = err.currentRevision;
  if ('lease' in err && typeof err.lease === 'bigint') e.lease = err.lease;
  return e;
}

/**
 * Queues the ops of entry `index` (in order, from each list in turn) with
 * the new applied index, as one batch of the range's write-behind view: not
 * waited for (see the module comment; reads through the view see it).
 */
function writeBatch(state: RangeState, index: number, ...opLists: ReadonlyArray<readonly BatchOp[]>): void {
  if (index <= state.appliedIndex) throw new Error(`apply: entry ${index} at or below applied index ${state.appliedIndex}`);
  const ops: BatchOp[] = [];
  for (const list of opLists) for (const op of list) ops.push(op);
  ops.push(state.mvcc.appliedIndexOp(index));
  state.engine.queue(ops);
  state.appliedIndex = index;
}

const LEASE_IO: ApplyIo = { writeBatch, recordFailure };

function asReplicaError(err: unknown): ReplicaError {
  return err instanceof ReplicaError ? err : new CommandInvalidError(String(err), { cause: err });
}

/** A stored failure whose code this build does not know (written by a newer version). */
export class StoredCommandError extends Error {
  override readonly name = 'StoredCommandError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Rebuilds the typed MVCC error of a stored failure, so a retry fails exactly as the first attempt. */
export function errorFromStored(e: StoredError): Error {
  switch (e.code) {
    case 'COMPACTED':
      return new CompactedError(e.revision ?? -1);
    case 'FUTURE_REVISION':
      return new FutureRevisionError(e.revision ?? 0);
    case 'KEY_NOT_PROVIDED':
      return new KeyNotProvidedError();
    case 'KEY_NOT_FOUND':
      return new KeyNotFoundError();
    case 'VALUE_PROVIDED':
      return new ValueProvidedError();
    case 'LEASE_PROVIDED':
      return new LeaseProvidedError();
    case 'DUPLICATE_KEY':
      return new DuplicateKeyError();
    case 'LEASE_NOT_FOUND':
      return new LeaseNotFoundError(e.lease ?? 0n);
    case 'LEASE_EXISTS':
      return new LeaseExistsError(e.lease ?? 0n);
    case 'LEASE_TTL_TOO_LARGE':
      return new LeaseTtlTooLargeError(e.revision ?? 0);
    default:
      if (isAuthErrorCode(e.code)) return new AuthError(e.code);
      return new StoredCommandError(e.code, e.message);
  }
}
