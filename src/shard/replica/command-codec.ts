/**
 * Protobuf encoding of range commands (raft entry payloads), their results
 * (kept in the dedupe table) and range descriptors, per
 * `proto/keyspan/rangepb.proto`.
 *
 * Integer rule (docs/integers.md): revisions, versions, counts, indexes and
 * ids decode to safe-integer numbers (anything else is rejected with
 * CommandInvalidError); leases stay bigint. Decoded byte fields are views
 * into the input buffer.
 */
import type protobuf from 'protobufjs';
import type { Epoch, RangeDescriptor, ReplicaDescriptor } from '../range/descriptor.js';
import { CommandInvalidError } from '../range/errors.js';
import type {
  Compare,
  DeleteRangeRequest,
  DeleteRangeResult,
  KeyValue,
  PutRequest,
  PutResult,
  RangeRequest,
  RangeResult,
  RequestOp,
  ResponseOp,
  TxnRequest,
  TxnResult,
} from '../mvcc/index.js';
import { lookupRangeType } from './proto.js';
import { decodeWriteCommand, encodePutRecord, encodeWriteCommand, isWriteCommand } from './command-wire.js';
import { WIRE_VARINT, WireReader } from '../proto-wire.js';
import { authRequestFromWire, authRequestToWire, authResultFromWire, authResultToWire, type AuthRequest, type AuthResult } from '../auth/index.js';
import {
  leaseBodyFromWire,
  leaseBodyToWire,
  leaseResultFromWire,
  leaseResultToWire,
  type LeaseCommandBody,
  type LeaseCommandResult,
} from './lease-codec.js';

/** Longest proposer id in a request id (a 16-byte UUID fits). */
export const PROPOSER_ID_BYTES_MAX = 16;

/** Identifies a request across retries: the proposer and its sequence number. */
export interface RequestId {
  /** 1..16 bytes, unique per proposer incarnation. */
  readonly proposer: Uint8Array;
  readonly seq: number;
}

/** etcd's CompactionRequest. */
export interface CompactionRequest {
  readonly revision: number;
  /** The proposer waits until history is physically removed. */
  readonly physical?: boolean;
}

/** etcd's CompactionResponse without the header. */
export interface CompactionResult {
  /** The range's current revision when the compaction was applied. */
  readonly revision: number;
}

/** A membership change of one replica. */
export interface ChangeReplicas {
  readonly changeType: 'addLearner' | 'promote' | 'remove' | 'addVoter' | 'updateMember';
  readonly nodeId: number;
  readonly replicaId: number;
  /** addLearner/addVoter/updateMember on range 1: the new member's name ('' until it starts) and peer URLs. */
  readonly memberName?: string;
  readonly peerUrls?: readonly string[];
}

/** The operation of a range command (the proto's oneof). */
export type CommandBody =
  | { readonly type: 'put'; readonly request: PutRequest }
  | { readonly type: 'deleteRange'; readonly request: DeleteRangeRequest }
  | { readonly type: 'txn'; readonly request: TxnRequest }
  | { readonly type: 'compact'; readonly request: CompactionRequest }
  | { readonly type: 'changeReplicas'; readonly request: ChangeReplicas }
  | { readonly type: 'auth'; readonly request: AuthRequest }
  | LeaseCommandBody;

/** One entry of a range's raft log. */
export interface RangeCommand {
  readonly requestId: RequestId;
  /** The epoch the proposer routed with. */
  readonly epoch: Epoch;
  /** A revision handed in by the PD's TSO; absent = the range's counter picks current + 1. */
  readonly revision?: number;
  /** The auth revision the request's permissions were checked at (src/shard/auth). */
  readonly authRevision?: number;
  /** The user those permissions were checked for ('' = no user); apply checks lease keys for it. */
  readonly authUser?: string;
  readonly body: CommandBody;
}

/** A successful command's result (the proto's ApplyResult oneof, minus error). */
export type CommandResult =
  | { readonly type: 'put'; readonly response: PutResult }
  | { readonly type: 'deleteRange'; readonly response: DeleteRangeResult }
  | { readonly type: 'txn'; readonly response: TxnResult }
  | { readonly type: 'compact'; readonly response: CompactionResult }
  | { readonly type: 'changeReplicas'; readonly response: RangeDescriptor }
  | { readonly type: 'auth'; readonly response: AuthResult }
  | LeaseCommandResult;

/** A failed command as stored: the error's stable code, message and recovery data. */
export interface StoredError {
  readonly code: string;
  readonly message: string;
  readonly revision?: number;
  readonly lease?: bigint;
}

/** The outcome of applying one command, as answered and as stored for dedupe. */
export type ApplyResult =
  | { readonly raftTerm: number; readonly ok: true; readonly result: CommandResult }
  | { readonly raftTerm: number; readonly ok: false; readonly error: StoredError };

/** A dedupe table record. */
export interface DedupeRecord {
  /** The raft index at which the request was applied. */
  readonly index: number;
  readonly result: ApplyResult;
}

type Wire = Record<string, unknown>;

// ---------------------------------------------------------------- public

/** Encodes a command for `GroupHandle.propose` (or a conf change's context). */
export function encodeCommand(cmd: RangeCommand): Uint8Array {
  // Writes, the common commands, take the hand-written codec (command-wire.ts).
  if (isWriteCommand(cmd)) {
    checkProposer(cmd.requestId.proposer);
    return wireGuard('RangeCommand', () => encodeWriteCommand(cmd));
  }
  return generalCommandCodec.encode(cmd);
}

/** Decodes a raft entry's payload; throws CommandInvalidError. */
export function decodeCommand(bytes: Uint8Array): RangeCommand {
  // Writes take the hand-written decoder; it declines anything else.
  const write = decodeWriteCommand(bytes);
  if (write !== undefined) return write;
  return generalCommandCodec.decode(bytes);
}

/**
 * @internal The protobufjs encoding and decoding of any command, also of
 * puts: tests check the hand-written put codec (command-wire.ts) against it.
 */
export const generalCommandCodec = {
  encode: (cmd: RangeCommand): Uint8Array => encodeWith('RangeCommand', commandToWire(cmd)),
  decode: (bytes: Uint8Array): RangeCommand => guard('RangeCommand', () => commandFromWire(decodeWith('RangeCommand', bytes))),
  encodeDedupeRecord: (rec: DedupeRecord): Uint8Array => encodeWith('DedupeRecord', { index: rec.index, result: applyResultToWire(rec.result) }),
};

/** Encodes a range descriptor (as stored under the range's local keys). */
export function encodeDescriptor(desc: RangeDescriptor): Uint8Array {
  return encodeWith('RangeDescriptor', descriptorToWire(desc));
}

/** Decodes a range descriptor; throws CommandInvalidError. */
export function decodeDescriptor(bytes: Uint8Array): RangeDescriptor {
  return guard('RangeDescriptor', () => descriptorFromWire(decodeWith('RangeDescriptor', bytes)));
}

/** Encodes a dedupe record. */
export function encodeDedupeRecord(rec: DedupeRecord): Uint8Array {
  const res = rec.result;
  if (res.ok && res.result.type === 'put') {
    const put = res.result.response;
    return wireGuard('DedupeRecord', () => encodePutRecord(rec.index, res.raftTerm, put));
  }
  return generalCommandCodec.encodeDedupeRecord(rec);
}

/** Decodes a dedupe record; throws CommandInvalidError. */
export function decodeDedupeRecord(bytes: Uint8Array): DedupeRecord {
  return guard('DedupeRecord', () => {
    const w = decodeWith('DedupeRecord', bytes);
    return { index: uint(w['index'], 'index'), result: applyResultFromWire(msg(w['result'], 'result')) };
  });
}

/**
 * The applied index of a stored dedupe record without decoding its result
 * (a table's load reads every record). Both encoders write the index,
 * field 1, first; anything else goes through the full decode.
 */
export function dedupeRecordIndex(bytes: Uint8Array): number {
  const r = WireReader.of(bytes);
  if (r.uint() === ((1 << 3) | WIRE_VARINT)) {
    const index = r.uint();
    if (index !== undefined) return index;
  }
  return decodeDedupeRecord(bytes).index;
}

/** Encodes just an apply result (tests compare stored and fresh results through it). */
export function encodeApplyResult(res: ApplyResult): Uint8Array {
  return encodeWith('ApplyResult', applyResultToWire(res));
}

// ---------------------------------------------------------------- plumbing

function encodeWith(typeName: string, obj: Wire): Uint8Array {
  const type = lookupRangeType(typeName);
  let message: protobuf.Message;
  try {
    message = type.fromObject(obj);
  } catch (err) {
    throw new CommandInvalidError(`cannot encode ${typeName}: ${String(err)}`, { cause: err });
  }
  return type.encode(message).finish();
}

function decodeWith(typeName: string, bytes: Uint8Array): Wire {
  const type = lookupRangeType(typeName);
  // Longs as decimal strings, so int64/uint64 convert exactly to bigint or
  // (checked) numbers; enums by name; absent fields stay absent.
  return type.toObject(type.decode(bytes), { longs: String, enums: String, defaults: false, oneofs: true }) as Wire;
}

/** Runs a hand-written encoder, turning its value errors into CommandInvalidError like the general encoder's. */
function wireGuard<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof RangeError) throw new CommandInvalidError(`cannot encode ${what}: ${String(err)}`, { cause: err });
    throw err;
  }
}

function checkProposer(proposer: Uint8Array): void {
  if (proposer.length === 0 || proposer.length > PROPOSER_ID_BYTES_MAX) {
    throw new CommandInvalidError(`proposer id must be 1..${PROPOSER_ID_BYTES_MAX} bytes`);
  }
}

function guard<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof CommandInvalidError) throw err;
    throw new CommandInvalidError(`cannot decode ${what}: ${String(err)}`, { cause: err });
  }
}

/** A checked safe-integer (may be negative: etcd's int64 fields). */
function int(v: unknown, field: string): number {
  if (v === undefined || v === null) return 0;
  const n = typeof v === 'number' ? v : Number(v as string);
  if (!Number.isSafeInteger(n)) throw new CommandInvalidError(`${field}=${String(v)} is not a safe integer`);
  return n;
}

function uint(v: unknown, field: string): number {
  const n = int(v, field);
  if (n < 0) throw new CommandInvalidError(`${field}=${n} is negative`);
  return n;
}

function big(v: unknown): bigint {
  if (v === undefined || v === null) return 0n;
  return BigInt(v as string | number);
}

function bytes(v: unknown): Uint8Array {
  if (v === undefined || v === null) return new Uint8Array(0);
  if (v instanceof Uint8Array) return v;
  throw new CommandInvalidError('field is not bytes');
}

function bool(v: unknown): boolean {
  return v === true;
}

function msg(v: unknown, field: string): Wire {
  if (typeof v !== 'object' || v === null) throw new CommandInvalidError(`${field} is missing`);
  return v as Wire;
}

function list(v: unknown): Wire[] {
  return Array.isArray(v) ? (v as Wire[]) : [];
}

/** Sets `obj[key] = value` only when value is not undefined (exactOptionalPropertyTypes). */
function opt<T extends object, K extends string, V>(obj: T, key: K, value: V | undefined): T & { [P in K]?: V } {
  if (value !== undefined) (obj as Record<string, unknown>)[key] = value;
  return obj as T & { [P in K]?: V };
}

// ---------------------------------------------------------------- descriptor

function epochToWire(e: Epoch): Wire {
  return { conf_version: e.confVersion, span_version: e.spanVersion };
}

function epochFromWire(w: Wire | undefined): Epoch {
  if (w === undefined) return { confVersion: 0, spanVersion: 0 };
  return { confVersion: uint(w['conf_version'], 'conf_version'), spanVersion: uint(w['span_version'], 'span_version') };
}

function descriptorToWire(d: RangeDescriptor): Wire {
  return {
    range_id: d.rangeId,
    start_key: d.start,
    end_key: d.end,
    replicas: d.replicas.map((r) => ({
      node_id: r.nodeId,
      replica_id: r.replicaId,
      role: r.role === 'voter' ? 'VOTER' : 'LEARNER',
      member_name: r.memberName ?? '',
      peer_urls: [...(r.peerUrls ?? [])],
    })),
    epoch: epochToWire(d.epoch),
    max_replica_id: d.maxReplicaId ?? 0,
  };
}

/** The member attributes of a replica or a change (absent when the wire has none). */
function memberFromWire(w: Wire): { memberName?: string; peerUrls?: readonly string[] } {
  const name = typeof w['member_name'] === 'string' ? w['member_name'] : '';
  const urls = list(w['peer_urls']).map((u) => String(u));
  if (name === '' && urls.length === 0) return {};
  return { memberName: name, peerUrls: urls };
}

function descriptorFromWire(w: Wire): RangeDescriptor {
  const replicas: ReplicaDescriptor[] = list(w['replicas']).map((r) => ({
    nodeId: uint(r['node_id'], 'node_id'),
    replicaId: uint(r['replica_id'], 'replica_id'),
    role: r['role'] === 'LEARNER' ? 'learner' : 'voter',
    ...memberFromWire(r),
  }));
  const maxReplicaId = w['max_replica_id'] === undefined ? 0 : uint(w['max_replica_id'], 'max_replica_id');
  return {
    rangeId: uint(w['range_id'], 'range_id'),
    start: bytes(w['start_key']),
    end: bytes(w['end_key']),
    replicas,
    epoch: epochFromWire(w['epoch'] as Wire | undefined),
    ...(maxReplicaId > 0 ? { maxReplicaId } : {}),
  };
}

// ---------------------------------------------------------------- requests

function rangeRequestToWire(r: RangeRequest): Wire {
  return {
    key: r.key,
    range_end: r.rangeEnd,
    limit: r.limit,
    revision: r.revision,
    sort_order: r.sortOrder,
    sort_target: r.sortTarget,
    keys_only: r.keysOnly,
    count_only: r.countOnly,
    min_mod_revision: r.minModRevision,
    max_mod_revision: r.maxModRevision,
    min_create_revision: r.minCreateRevision,
    max_create_revision: r.maxCreateRevision,
  };
}

function rangeRequestFromWire(w: Wire): RangeRequest {
  const r: Record<string, unknown> = { key: bytes(w['key']) };
  if (w['range_end'] !== undefined) r['rangeEnd'] = bytes(w['range_end']);
  const nums = [
    ['limit', 'limit'],
    ['revision', 'revision'],
    ['min_mod_revision', 'minModRevision'],
    ['max_mod_revision', 'maxModRevision'],
    ['min_create_revision', 'minCreateRevision'],
    ['max_create_revision', 'maxCreateRevision'],
  ] as const;
  for (const [wire, ts] of nums) if (w[wire] !== undefined) r[ts] = int(w[wire], wire);
  if (w['sort_order'] !== undefined) r['sortOrder'] = w['sort_order'];
  if (w['sort_target'] !== undefined) r['sortTarget'] = w['sort_target'];
  if (w['keys_only'] !== undefined) r['keysOnly'] = bool(w['keys_only']);
  if (w['count_only'] !== undefined) r['countOnly'] = bool(w['count_only']);
  return r as unknown as RangeRequest;
}

function putToWire(p: PutRequest): Wire {
  return {
    key: p.key,
    value: p.value,
    lease: p.lease === undefined ? undefined : p.lease.toString(),
    prev_kv: p.prevKv,
    ignore_value: p.ignoreValue,
    ignore_lease: p.ignoreLease,
  };
}

function putFromWire(w: Wire): PutRequest {
  const p = { key: bytes(w['key']) };
  opt(p, 'value', w['value'] === undefined ? undefined : bytes(w['value']));
  opt(p, 'lease', w['lease'] === undefined ? undefined : big(w['lease']));
  opt(p, 'prevKv', w['prev_kv'] === undefined ? undefined : bool(w['prev_kv']));
  opt(p, 'ignoreValue', w['ignore_value'] === undefined ? undefined : bool(w['ignore_value']));
  opt(p, 'ignoreLease', w['ignore_lease'] === undefined ? undefined : bool(w['ignore_lease']));
  return p;
}

function deleteToWire(d: DeleteRangeRequest): Wire {
  return { key: d.key, range_end: d.rangeEnd, prev_kv: d.prevKv };
}

function deleteFromWire(w: Wire): DeleteRangeRequest {
  const d = { key: bytes(w['key']) };
  opt(d, 'rangeEnd', w['range_end'] === undefined ? undefined : bytes(w['range_end']));
  opt(d, 'prevKv', w['prev_kv'] === undefined ? undefined : bool(w['prev_kv']));
  return d;
}

function compareToWire(c: Compare): Wire {
  const w: Wire = { result: c.result, key: c.key, range_end: c.rangeEnd };
  switch (c.target) {
    case 'VALUE':
      return { ...w, target: 'VALUE', value: c.value };
    case 'VERSION':
      return { ...w, target: 'VERSION', version: c.version };
    case 'CREATE':
      return { ...w, target: 'CREATE', create_revision: c.createRevision };
    case 'MOD':
      return { ...w, target: 'MOD', mod_revision: c.modRevision };
    case 'LEASE':
      return { ...w, target: 'LEASE', lease: c.lease.toString() };
  }
}

function compareFromWire(w: Wire): Compare {
  const base = { key: bytes(w['key']), result: (w['result'] ?? 'EQUAL') as Compare['result'] };
  if (w['range_end'] !== undefined) opt(base, 'rangeEnd', bytes(w['range_end']));
  const target = (w['target'] ?? 'VERSION') as Compare['target'];
  switch (target) {
    case 'VALUE':
      return { ...base, target, value: bytes(w['value']) };
    case 'VERSION':
      return { ...base, target, version: int(w['version'], 'version') };
    case 'CREATE':
      return { ...base, target, createRevision: int(w['create_revision'], 'create_revision') };
    case 'MOD':
      return { ...base, target, modRevision: int(w['mod_revision'], 'mod_revision') };
    case 'LEASE':
      return { ...base, target, lease: big(w['lease']) };
    default:
      throw new CommandInvalidError(`unknown compare target ${String(target)}`);
  }
}

function requestOpToWire(op: RequestOp): Wire {
  switch (op.type) {
    case 'range':
      return { request_range: rangeRequestToWire(op.request) };
    case 'put':
      return { request_put: putToWire(op.request) };
    case 'deleteRange':
      return { request_delete_range: deleteToWire(op.request) };
    case 'txn':
      return { request_txn: txnToWire(op.request) };
  }
}

function requestOpFromWire(w: Wire): RequestOp {
  switch (w['request']) {
    case 'request_range':
      return { type: 'range', request: rangeRequestFromWire(msg(w['request_range'], 'request_range')) };
    case 'request_put':
      return { type: 'put', request: putFromWire(msg(w['request_put'], 'request_put')) };
    case 'request_delete_range':
      return { type: 'deleteRange', request: deleteFromWire(msg(w['request_delete_range'], 'request_delete_range')) };
    case 'request_txn':
      return { type: 'txn', request: txnFromWire(msg(w['request_txn'], 'request_txn')) };
    default:
      // etcd answers an empty RequestOp with "key not found" (the MVCC checks do).
      return { type: 'put', request: { key: new Uint8Array(0) } };
  }
}

function txnToWire(t: TxnRequest): Wire {
  return {
    compare: (t.compare ?? []).map(compareToWire),
    success: (t.success ?? []).map(requestOpToWire),
    failure: (t.failure ?? []).map(requestOpToWire),
  };
}

function txnFromWire(w: Wire): TxnRequest {
  return {
    compare: list(w['compare']).map(compareFromWire),
    success: list(w['success']).map(requestOpFromWire),
    failure: list(w['failure']).map(requestOpFromWire),
  };
}

const CHANGE_TYPES = { addLearner: 'ADD_LEARNER', promote: 'PROMOTE', remove: 'REMOVE', addVoter: 'ADD_VOTER', updateMember: 'UPDATE_MEMBER' } as const;

function bodyToWire(body: CommandBody): Wire {
  switch (body.type) {
    case 'put':
      return { put: putToWire(body.request) };
    case 'deleteRange':
      return { delete_range: deleteToWire(body.request) };
    case 'txn':
      return { txn: txnToWire(body.request) };
    case 'compact':
      return { compact: { revision: body.request.revision, physical: body.request.physical } };
    case 'changeReplicas':
      return {
        change_replicas: {
          change_type: CHANGE_TYPES[body.request.changeType],
          node_id: body.request.nodeId,
          replica_id: body.request.replicaId,
          member_name: body.request.memberName ?? '',
          peer_urls: [...(body.request.peerUrls ?? [])],
        },
      };
    case 'auth':
      return { auth: authRequestToWire(body.request) };
    case 'leaseGrant':
    case 'leaseRevoke':
      return leaseBodyToWire(body);
  }
}

function bodyFromWire(w: Wire): CommandBody {
  switch (w['command']) {
    case 'put':
      return { type: 'put', request: putFromWire(msg(w['put'], 'put')) };
    case 'delete_range':
      return { type: 'deleteRange', request: deleteFromWire(msg(w['delete_range'], 'delete_range')) };
    case 'txn':
      return { type: 'txn', request: txnFromWire(msg(w['txn'], 'txn')) };
    case 'compact': {
      const c = msg(w['compact'], 'compact');
      return { type: 'compact', request: { revision: int(c['revision'], 'revision'), physical: bool(c['physical']) } };
    }
    case 'change_replicas': {
      const c = msg(w['change_replicas'], 'change_replicas');
      const t = c['change_type'] ?? 'ADD_LEARNER';
      const changeType = t === 'PROMOTE' ? 'promote' : t === 'REMOVE' ? 'remove' : t === 'ADD_VOTER' ? 'addVoter' : t === 'UPDATE_MEMBER' ? 'updateMember' : 'addLearner';
      return {
        type: 'changeReplicas',
        request: { changeType, nodeId: uint(c['node_id'], 'node_id'), replicaId: uint(c['replica_id'], 'replica_id'), ...memberFromWire(c) },
      };
    }
    case 'auth':
      return { type: 'auth', request: authRequestFromWire(msg(w['auth'], 'auth')) };
    default: {
      const lease = leaseBodyFromWire(w['command'], w);
      if (lease !== undefined) return lease;
      throw new CommandInvalidError(`unknown command ${String(w['command'])}`);
    }
  }
}

function commandToWire(cmd: RangeCommand): Wire {
  checkProposer(cmd.requestId.proposer);
  return {
    request_id: { proposer: cmd.requestId.proposer, seq: cmd.requestId.seq },
    epoch: epochToWire(cmd.epoch),
    revision: cmd.revision ?? 0,
    auth_revision: cmd.authRevision ?? 0,
    auth_user: cmd.authUser ?? '',
    ...bodyToWire(cmd.body),
  };
}

function commandFromWire(w: Wire): RangeCommand {
  const rid = msg(w['request_id'], 'request_id');
  const proposer = bytes(rid['proposer']);
  if (proposer.length === 0 || proposer.length > PROPOSER_ID_BYTES_MAX) {
    throw new CommandInvalidError(`proposer id must be 1..${PROPOSER_ID_BYTES_MAX} bytes`);
  }
  const cmd = {
    requestId: { proposer, seq: uint(rid['seq'], 'seq') },
    epoch: epochFromWire(w['epoch'] as Wire | undefined),
    body: bodyFromWire(w),
  };
  const revision = uint(w['revision'], 'revision');
  const authRevision = uint(w['auth_revision'], 'auth_revision');
  const authUser = w['auth_user'];
  const withAuth =
    authRevision > 0 ? { ...cmd, authRevision, ...(typeof authUser === 'string' && authUser !== '' ? { authUser } : {}) } : cmd;
  return revision > 0 ? { ...withAuth, revision } : withAuth;
}

// ---------------------------------------------------------------- results

function kvToWire(kv: KeyValue): Wire {
  return {
    key: kv.key,
    create_revision: kv.createRevision,
    mod_revision: kv.modRevision,
    version: kv.version,
    value: kv.value,
    lease: kv.lease.toString(),
  };
}

function kvFromWire(w: Wire): KeyValue {
  const buf = (v: unknown): Buffer => {
    const b = bytes(v);
    return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  };
  return {
    key: buf(w['key']),
    createRevision: int(w['create_revision'], 'create_revision'),
    modRevision: int(w['mod_revision'], 'mod_revision'),
    version: int(w['version'], 'version'),
    value: buf(w['value']),
    lease: big(w['lease']),
  };
}

function putResultToWire(r: PutResult): Wire {
  return { revision: r.revision, prev_kv: r.prevKv === undefined ? undefined : kvToWire(r.prevKv) };
}

function putResultFromWire(w: Wire): PutResult {
  const r = { revision: int(w['revision'], 'revision') };
  return w['prev_kv'] === undefined ? r : { ...r, prevKv: kvFromWire(msg(w['prev_kv'], 'prev_kv')) };
}

function deleteResultToWire(r: DeleteRangeResult): Wire {
  return { revision: r.revision, deleted: r.deleted, prev_kvs: r.prevKvs.map(kvToWire) };
}

function deleteResultFromWire(w: Wire): DeleteRangeResult {
  return {
    revision: int(w['revision'], 'revision'),
    deleted: int(w['deleted'], 'deleted'),
    prevKvs: list(w['prev_kvs']).map(kvFromWire),
  };
}

function rangeResultToWire(r: RangeResult): Wire {
  return { revision: r.revision, kvs: r.kvs.map(kvToWire), more: r.more, count: r.count };
}

function rangeResultFromWire(w: Wire): RangeResult {
  return {
    revision: int(w['revision'], 'revision'),
    kvs: list(w['kvs']).map(kvFromWire),
    more: bool(w['more']),
    count: int(w['count'], 'count'),
  };
}

function responseOpToWire(op: ResponseOp): Wire {
  switch (op.type) {
    case 'range':
      return { response_range: rangeResultToWire(op.response) };
    case 'put':
      return { response_put: putResultToWire(op.response) };
    case 'deleteRange':
      return { response_delete_range: deleteResultToWire(op.response) };
    case 'txn':
      return { response_txn: txnResultToWire(op.response) };
  }
}

function responseOpFromWire(w: Wire): ResponseOp {
  switch (w['response']) {
    case 'response_range':
      return { type: 'range', response: rangeResultFromWire(msg(w['response_range'], 'response_range')) };
    case 'response_put':
      return { type: 'put', response: putResultFromWire(msg(w['response_put'], 'response_put')) };
    case 'response_delete_range':
      return { type: 'deleteRange', response: deleteResultFromWire(msg(w['response_delete_range'], 'response_delete_range')) };
    case 'response_txn':
      return { type: 'txn', response: txnResultFromWire(msg(w['response_txn'], 'response_txn')) };
    default:
      throw new CommandInvalidError(`unknown response op ${String(w['response'])}`);
  }
}

function txnResultToWire(r: TxnResult): Wire {
  return { revision: r.revision, succeeded: r.succeeded, responses: r.responses.map(responseOpToWire) };
}

function txnResultFromWire(w: Wire): TxnResult {
  return {
    revision: int(w['revision'], 'revision'),
    succeeded: bool(w['succeeded']),
    responses: list(w['responses']).map(responseOpFromWire),
  };
}

function applyResultToWire(res: ApplyResult): Wire {
  const w: Wire = { raft_term: res.raftTerm };
  if (!res.ok) {
    w['error'] = {
      code: res.error.code,
      message: res.error.message,
      revision: res.error.revision,
      lease: res.error.lease === undefined ? undefined : res.error.lease.toString(),
    };
    return w;
  }
  const r = res.result;
  switch (r.type) {
    case 'put':
      w['put'] = putResultToWire(r.response);
      break;
    case 'deleteRange':
      w['delete_range'] = deleteResultToWire(r.response);
      break;
    case 'txn':
      w['txn'] = txnResultToWire(r.response);
      break;
    case 'compact':
      w['compact'] = { revision: r.response.revision };
      break;
    case 'changeReplicas':
      w['change_replicas'] = descriptorToWire(r.response);
      break;
    case 'auth':
      w['auth'] = authResultToWire(r.response);
      break;
    case 'leaseGrant':
    case 'leaseRevoke':
      Object.assign(w, leaseResultToWire(r));
      break;
  }
  return w;
}

function applyResultFromWire(w: Wire): ApplyResult {
  const raftTerm = uint(w['raft_term'], 'raft_term');
  switch (w['result']) {
    case 'put':
      return { raftTerm, ok: true, result: { type: 'put', response: putResultFromWire(msg(w['put'], 'put')) } };
    case 'delete_range':
      return { raftTerm, ok: true, result: { type: 'deleteRange', response: deleteResultFromWire(msg(w['delete_range'], 'delete_range')) } };
    case 'txn':
      return { raftTerm, ok: true, result: { type: 'txn', response: txnResultFromWire(msg(w['txn'], 'txn')) } };
    case 'compact':
      return { raftTerm, ok: true, result: { type: 'compact', response: { revision: int(msg(w['compact'], 'compact')['revision'], 'revision') } } };
    case 'change_replicas':
      return { raftTerm, ok: true, result: { type: 'changeReplicas', response: descriptorFromWire(msg(w['change_replicas'], 'change_replicas')) } };
    case 'auth':
      return { raftTerm, ok: true, result: { type: 'auth', response: authResultFromWire(msg(w['auth'], 'auth')) } };
    case 'error': {
      const e = msg(w['error'], 'error');
      const error = { code: String(e['code'] ?? ''), message: String(e['message'] ?? '') };
      opt(error, 'revision', e['revision'] === undefined ? undefined : int(e['revision'], 'revision'));
      opt(error, 'lease', e['lease'] === undefined ? undefined : big(e['lease']));
      return { raftTerm, ok: false, error };
    }
    default: {
      const lease = leaseResultFromWire(w['result'], w);
      if (lease !== undefined) return { raftTerm, ok: true, result: lease };
      throw new CommandInvalidError(`unknown apply result ${String(w['result'])}`);
    }
  }
}
