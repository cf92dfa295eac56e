/**
 * Write commands (put, delete-range, txn) and a put's dedupe record encoded
 * and decoded by hand. Every write proposes a command, applies it on every
 * replica and stores its result; through protobufjs (object conversion,
 * `fromObject`, `toObject` with 64-bit integers as strings) that cost about
 * 5 % of a single node's CPU under a put load and 9 % under a txn load.
 *
 * The encodings are the same messages of `proto/keyspan/rangepb.proto`:
 * fields in number order, and every optional field present exactly when the
 * general codec (command-codec.ts) writes it — when it is set, zero values
 * included — so each codec reads what the other writes to the same command
 * (a randomized test checks both directions). The decoder returns
 * `undefined` for anything it does not fully read (another command, an
 * unknown field or enum value, a truncated input, an integer outside
 * [0, 2^53 − 1]); the caller then decodes the general way, which also
 * produces the error for invalid input.
 */
import type { Epoch } from '../range/descriptor.js';
import type {
  Compare,
  CompareOp,
  DeleteRangeRequest,
  PutRequest,
  PutResult,
  RangeRequest,
  RequestOp,
  SortOrder,
  SortTarget,
  TxnRequest,
} from '../mvcc/index.js';
import {
  bigVarintSize,
  bytesFieldSize,
  int64Bits,
  int64Size,
  keyValueSize,
  tagSize,
  varintSize,
  WIRE_BYTES,
  WIRE_VARINT,
  WireReader,
  writeBigVarint,
  writeBytesField,
  writeInt64,
  writeKeyValue,
  writeTag,
  writeVarint,
  writeVarintField,
} from '../proto-wire.js';
import { PROPOSER_ID_BYTES_MAX, type CommandBody, type RangeCommand, type RequestId } from './command-codec.js';

/** The commands this codec takes: a write whose body is a put, a delete-range or a txn. */
export type WriteCommand = RangeCommand & {
  readonly body: Extract<CommandBody, { readonly type: 'put' | 'deleteRange' | 'txn' }>;
};

/** Whether `cmd` is one {@link encodeWriteCommand} takes. */
export function isWriteCommand(cmd: RangeCommand): cmd is WriteCommand {
  const t = cmd.body.type;
  return t === 'put' || t === 'deleteRange' || t === 'txn';
}

/** Thrown for a value the encoding cannot hold (the general codec's CommandInvalidError wraps it). */
export class CommandWireError extends RangeError {
  override readonly name = 'CommandWireError';
}

// Field numbers (rangepb.proto).
const CMD = { requestId: 1, epoch: 2, revision: 3, authUser: 4, authRevision: 9, put: 10, deleteRange: 11, txn: 12 } as const;
const RID = { proposer: 1, seq: 2 } as const;
const EPOCH = { confVersion: 1, spanVersion: 2 } as const;
const PUT = { key: 1, value: 2, lease: 3, prevKv: 4, ignoreValue: 5, ignoreLease: 6 } as const;
const DEL = { key: 1, rangeEnd: 2, prevKv: 3 } as const;
const RANGE = {
  key: 1,
  rangeEnd: 2,
  limit: 3,
  revision: 4,
  sortOrder: 5,
  sortTarget: 6,
  keysOnly: 8,
  countOnly: 9,
  minModRevision: 10,
  maxModRevision: 11,
  minCreateRevision: 12,
  maxCreateRevision: 13,
} as const;
const TXN = { compare: 1, success: 2, failure: 3 } as const;
const OP = { range: 1, put: 2, deleteRange: 3, txn: 4 } as const;
const CMP = { result: 1, target: 2, key: 3, version: 4, createRevision: 5, modRevision: 6, value: 7, lease: 8, rangeEnd: 64 } as const;
const REC = { index: 1, result: 2 } as const;
const RES = { raftTerm: 1, put: 10 } as const;
const PUTRES = { revision: 1, prevKv: 2 } as const;

// Enum values, by name and by number.
const COMPARE_RESULTS: readonly CompareOp[] = ['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'];
const COMPARE_TARGETS: readonly Compare['target'][] = ['VERSION', 'CREATE', 'MOD', 'VALUE', 'LEASE'];
const SORT_ORDERS: readonly SortOrder[] = ['NONE', 'ASCEND', 'DESCEND'];
const SORT_TARGETS: readonly SortTarget[] = ['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'];

function enumNumber<T>(names: readonly T[], name: T, field: string): number {
  const n = names.indexOf(name);
  if (n < 0) throw new CommandWireError(`${field}=${String(name)} is not a known value`);
  return n;
}

function checkUint(v: number, field: string): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new CommandWireError(`${field}=${v} is not a non-negative safe integer`);
  return v;
}

function checkInt(v: number, field: string): number {
  if (!Number.isSafeInteger(v)) throw new CommandWireError(`${field}=${v} is not a safe integer`);
  return v;
}

// ---------------------------------------------------------------- field sizes and writers

/** A bytes field written when set (empty included). */
function bytesField(field: number, b: Uint8Array | undefined): number {
  return b === undefined ? 0 : bytesFieldSize(field, b.length);
}

function writeBytes(buf: Buffer, pos: number, field: number, b: Uint8Array | undefined): number {
  return b === undefined ? pos : writeBytesField(buf, pos, field, b);
}

/** An int64 field written when set (zero included). */
function intField(field: number, v: number | undefined): number {
  return v === undefined ? 0 : tagSize(field) + int64Size(v);
}

function writeIntField(buf: Buffer, pos: number, field: number, v: number | undefined): number {
  if (v === undefined) return pos;
  return writeInt64(buf, writeTag(buf, pos, field, WIRE_VARINT), v);
}

/** A uint64 field left out when zero (the command's own counters). */
function counterField(field: number, v: number): number {
  return v === 0 ? 0 : tagSize(field) + varintSize(v);
}

function writeCounterField(buf: Buffer, pos: number, field: number, v: number): number {
  return v === 0 ? pos : writeVarintField(buf, pos, field, v);
}

function leaseField(field: number, v: bigint | undefined): number {
  return v === undefined ? 0 : tagSize(field) + bigVarintSize(int64Bits(v));
}

function writeLeaseField(buf: Buffer, pos: number, field: number, v: bigint | undefined): number {
  if (v === undefined) return pos;
  return writeBigVarint(buf, writeTag(buf, pos, field, WIRE_VARINT), int64Bits(v));
}

function boolField(field: number, v: boolean | undefined): number {
  return v === undefined ? 0 : tagSize(field) + 1;
}

function writeBoolField(buf: Buffer, pos: number, field: number, v: boolean | undefined): number {
  if (v === undefined) return pos;
  pos = writeTag(buf, pos, field, WIRE_VARINT);
  buf[pos] = v ? 1 : 0;
  return pos + 1;
}

function messageField(field: number, body: number): number {
  return tagSize(field) + varintSize(body) + body;
}

function writeMessageHeader(buf: Buffer, pos: number, field: number, body: number): number {
  return writeVarint(buf, writeTag(buf, pos, field, WIRE_BYTES), body);
}

// ---------------------------------------------------------------- messages: sizes

function putSize(p: PutRequest): number {
  return (
    bytesField(PUT.key, p.key) +
    bytesField(PUT.value, p.value) +
    leaseField(PUT.lease, p.lease) +
    boolField(PUT.prevKv, p.prevKv) +
    boolField(PUT.ignoreValue, p.ignoreValue) +
    boolField(PUT.ignoreLease, p.ignoreLease)
  );
}

function deleteSize(d: DeleteRangeRequest): number {
  return bytesField(DEL.key, d.key) + bytesField(DEL.rangeEnd, d.rangeEnd) + boolField(DEL.prevKv, d.prevKv);
}

function rangeSize(r: RangeRequest): number {
  return (
    bytesField(RANGE.key, r.key) +
    bytesField(RANGE.rangeEnd, r.rangeEnd) +
    intField(RANGE.limit, r.limit) +
    intField(RANGE.revision, r.revision) +
    intField(RANGE.sortOrder, r.sortOrder === undefined ? undefined : enumNumber(SORT_ORDERS, r.sortOrder, 'sort_order')) +
    intField(RANGE.sortTarget, r.sortTarget === undefined ? undefined : enumNumber(SORT_TARGETS, r.sortTarget, 'sort_target')) +
    boolField(RANGE.keysOnly, r.keysOnly) +
    boolField(RANGE.countOnly, r.countOnly) +
    intField(RANGE.minModRevision, r.minModRevision) +
    intField(RANGE.maxModRevision, r.maxModRevision) +
    intField(RANGE.minCreateRevision, r.minCreateRevision) +
    intField(RANGE.maxCreateRevision, r.maxCreateRevision)
  );
}

/** The compare's target value as its union field: [field number, number or bytes or lease]. */
function compareUnion(c: Compare): [number, number | Uint8Array | bigint] {
  switch (c.target) {
    case 'VALUE':
      return [CMP.value, c.value];
    case 'VERSION':
      return [CMP.version, checkInt(c.version, 'version')];
    case 'CREATE':
      return [CMP.createRevision, checkInt(c.createRevision, 'create_revision')];
    case 'MOD':
      return [CMP.modRevision, checkInt(c.modRevision, 'mod_revision')];
    case 'LEASE':
      return [CMP.lease, c.lease];
  }
}

function unionSize([field, v]: [number, number | Uint8Array | bigint]): number {
  if (typeof v === 'number') return intField(field, v);
  if (typeof v === 'bigint') return leaseField(field, v);
  return bytesField(field, v);
}

function writeUnion(buf: Buffer, pos: number, [field, v]: [number, number | Uint8Array | bigint]): number {
  if (typeof v === 'number') return writeIntField(buf, pos, field, v);
  if (typeof v === 'bigint') return writeLeaseField(buf, pos, field, v);
  return writeBytes(buf, pos, field, v);
}

function compareSize(c: Compare): number {
  return (
    intField(CMP.result, enumNumber(COMPARE_RESULTS, c.result, 'result')) +
    intField(CMP.target, enumNumber(COMPARE_TARGETS, c.target, 'target')) +
    bytesField(CMP.key, c.key) +
    unionSize(compareUnion(c)) +
    bytesField(CMP.rangeEnd, c.rangeEnd)
  );
}

function opBody(op: RequestOp): [number, number] {
  switch (op.type) {
    case 'range':
      return [OP.range, rangeSize(op.request)];
    case 'put':
      return [OP.put, putSize(op.request)];
    case 'deleteRange':
      return [OP.deleteRange, deleteSize(op.request)];
    case 'txn':
      return [OP.txn, txnSize(op.request)];
  }
}

function opSize(op: RequestOp): number {
  const [field, body] = opBody(op);
  return messageField(field, body);
}

function txnSize(t: TxnRequest): number {
  let n = 0;
  for (const c of t.compare ?? []) n += messageField(TXN.compare, compareSize(c));
  for (const op of t.success ?? []) n += messageField(TXN.success, opSize(op));
  for (const op of t.failure ?? []) n += messageField(TXN.failure, opSize(op));
  return n;
}

// ---------------------------------------------------------------- messages: writers

function writePut(buf: Buffer, pos: number, p: PutRequest): number {
  pos = writeBytes(buf, pos, PUT.key, p.key);
  pos = writeBytes(buf, pos, PUT.value, p.value);
  pos = writeLeaseField(buf, pos, PUT.lease, p.lease);
  pos = writeBoolField(buf, pos, PUT.prevKv, p.prevKv);
  pos = writeBoolField(buf, pos, PUT.ignoreValue, p.ignoreValue);
  return writeBoolField(buf, pos, PUT.ignoreLease, p.ignoreLease);
}

function writeDelete(buf: Buffer, pos: number, d: DeleteRangeRequest): number {
  pos = writeBytes(buf, pos, DEL.key, d.key);
  pos = writeBytes(buf, pos, DEL.rangeEnd, d.rangeEnd);
  return writeBoolField(buf, pos, DEL.prevKv, d.prevKv);
}

function writeRange(buf: Buffer, pos: number, r: RangeRequest): number {
  pos = writeBytes(buf, pos, RANGE.key, r.key);
  pos = writeBytes(buf, pos, RANGE.rangeEnd, r.rangeEnd);
  pos = writeIntField(buf, pos, RANGE.limit, r.limit);
  pos = writeIntField(buf, pos, RANGE.revision, r.revision);
  pos = writeIntField(buf, pos, RANGE.sortOrder, r.sortOrder === undefined ? undefined : enumNumber(SORT_ORDERS, r.sortOrder, 'sort_order'));
  pos = writeIntField(buf, pos, RANGE.sortTarget, r.sortTarget === undefined ? undefined : enumNumber(SORT_TARGETS, r.sortTarget, 'sort_target'));
  pos = writeBoolField(buf, pos, RANGE.keysOnly, r.keysOnly);
  pos = writeBoolField(buf, pos, RANGE.countOnly, r.countOnly);
  pos = writeIntField(buf, pos, RANGE.minModRevision, r.minModRevision);
  pos = writeIntField(buf, pos, RANGE.maxModRevision, r.maxModRevision);
  pos = writeIntField(buf, pos, RANGE.minCreateRevision, r.minCreateRevision);
  return writeIntField(buf, pos, RANGE.maxCreateRevision, r.maxCreateRevision);
}

function writeCompare(buf: Buffer, pos: number, c: Compare): number {
  pos = writeIntField(buf, pos, CMP.result, enumNumber(COMPARE_RESULTS, c.result, 'result'));
  pos = writeIntField(buf, pos, CMP.target, enumNumber(COMPARE_TARGETS, c.target, 'target'));
  pos = writeBytes(buf, pos, CMP.key, c.key);
  pos = writeUnion(buf, pos, compareUnion(c));
  return writeBytes(buf, pos, CMP.rangeEnd, c.rangeEnd);
}

function writeOp(buf: Buffer, pos: number, op: RequestOp): number {
  const [field, body] = opBody(op);
  pos = writeMessageHeader(buf, pos, field, body);
  switch (op.type) {
    case 'range':
      return writeRange(buf, pos, op.request);
    case 'put':
      return writePut(buf, pos, op.request);
    case 'deleteRange':
      return writeDelete(buf, pos, op.request);
    case 'txn':
      return writeTxn(buf, pos, op.request);
  }
}

function writeTxn(buf: Buffer, pos: number, t: TxnRequest): number {
  for (const c of t.compare ?? []) {
    pos = writeMessageHeader(buf, pos, TXN.compare, compareSize(c));
    pos = writeCompare(buf, pos, c);
  }
  for (const [field, ops] of [
    [TXN.success, t.success ?? []],
    [TXN.failure, t.failure ?? []],
  ] as const) {
    for (const op of ops) {
      pos = writeMessageHeader(buf, pos, field, opSize(op));
      pos = writeOp(buf, pos, op);
    }
  }
  return pos;
}

function bodyField(body: WriteCommand['body']): [number, number] {
  switch (body.type) {
    case 'put':
      return [CMD.put, putSize(body.request)];
    case 'deleteRange':
      return [CMD.deleteRange, deleteSize(body.request)];
    case 'txn':
      return [CMD.txn, txnSize(body.request)];
  }
}

/** Encodes a write command (the proposer id's length is checked by the caller). */
export function encodeWriteCommand(cmd: WriteCommand): Buffer {
  const { requestId: rid, epoch } = cmd;
  const seq = checkUint(rid.seq, 'seq');
  const confVersion = checkUint(epoch.confVersion, 'conf_version');
  const spanVersion = checkUint(epoch.spanVersion, 'span_version');
  const revision = checkUint(cmd.revision ?? 0, 'revision');
  const authRevision = checkUint(cmd.authRevision ?? 0, 'auth_revision');
  const authUser = cmd.authUser === undefined || cmd.authUser === '' ? undefined : Buffer.from(cmd.authUser, 'utf8');

  const ridBody = bytesField(RID.proposer, rid.proposer) + counterField(RID.seq, seq);
  const epochBody = counterField(EPOCH.confVersion, confVersion) + counterField(EPOCH.spanVersion, spanVersion);
  const [bodyNumber, bodySize] = bodyField(cmd.body);
  const total =
    messageField(CMD.requestId, ridBody) +
    messageField(CMD.epoch, epochBody) +
    counterField(CMD.revision, revision) +
    bytesField(CMD.authUser, authUser) +
    counterField(CMD.authRevision, authRevision) +
    messageField(bodyNumber, bodySize);

  const buf = Buffer.allocUnsafe(total);
  let pos = writeMessageHeader(buf, 0, CMD.requestId, ridBody);
  pos = writeBytes(buf, pos, RID.proposer, rid.proposer);
  pos = writeCounterField(buf, pos, RID.seq, seq);
  pos = writeMessageHeader(buf, pos, CMD.epoch, epochBody);
  pos = writeCounterField(buf, pos, EPOCH.confVersion, confVersion);
  pos = writeCounterField(buf, pos, EPOCH.spanVersion, spanVersion);
  pos = writeCounterField(buf, pos, CMD.revision, revision);
  pos = writeBytes(buf, pos, CMD.authUser, authUser);
  pos = writeCounterField(buf, pos, CMD.authRevision, authRevision);
  pos = writeMessageHeader(buf, pos, bodyNumber, bodySize);
  const body = cmd.body;
  if (body.type === 'put') pos = writePut(buf, pos, body.request);
  else if (body.type === 'deleteRange') pos = writeDelete(buf, pos, body.request);
  else pos = writeTxn(buf, pos, body.request);
  if (pos !== total) throw new Error(`encodeWriteCommand: wrote ${pos} of ${total} bytes`);
  return buf;
}

// ---------------------------------------------------------------- decoding

/** What the general decoder yields for an absent bytes field. */
const absentBytes = (): Uint8Array => new Uint8Array(0);

function readRequestId(r: WireReader): RequestId | undefined {
  let proposer: Buffer | undefined;
  let seq = 0;
  while (!r.done) {
    const tag = r.uint();
    if (tag === RID.proposer * 8 + WIRE_BYTES) {
      if ((proposer = r.bytes()) === undefined) return undefined;
    } else if (tag === RID.seq * 8 + WIRE_VARINT) {
      const v = r.uint();
      if (v === undefined) return undefined;
      seq = v;
    } else return undefined;
  }
  // Out-of-bounds proposer ids are the general decoder's to refuse.
  if (proposer === undefined || proposer.length === 0 || proposer.length > PROPOSER_ID_BYTES_MAX) return undefined;
  return { proposer, seq };
}

function readEpoch(r: WireReader): Epoch | undefined {
  let confVersion = 0;
  let spanVersion = 0;
  while (!r.done) {
    const tag = r.uint();
    const v = tag === EPOCH.confVersion * 8 + WIRE_VARINT || tag === EPOCH.spanVersion * 8 + WIRE_VARINT ? r.uint() : undefined;
    if (v === undefined) return undefined;
    if (tag === EPOCH.confVersion * 8 + WIRE_VARINT) confVersion = v;
    else spanVersion = v;
  }
  return { confVersion, spanVersion };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function readPut(r: WireReader): PutRequest | undefined {
  let key: Uint8Array | undefined;
  let value: Uint8Array | undefined;
  let lease: bigint | undefined;
  let prevKv: boolean | undefined;
  let ignoreValue: boolean | undefined;
  let ignoreLease: boolean | undefined;
  while (!r.done) {
    const tag = r.uint();
    if (tag === PUT.key * 8 + WIRE_BYTES) {
      if ((key = r.bytes()) === undefined) return undefined;
    } else if (tag === PUT.value * 8 + WIRE_BYTES) {
      if ((value = r.bytes()) === undefined) return undefined;
    } else if (tag === PUT.lease * 8 + WIRE_VARINT) {
      if ((lease = r.int64()) === undefined) return undefined;
    } else {
      const v = tag === PUT.prevKv * 8 || tag === PUT.ignoreValue * 8 || tag === PUT.ignoreLease * 8 ? r.bool() : undefined;
      if (v === undefined) return undefined;
      if (tag === PUT.prevKv * 8) prevKv = v;
      else if (tag === PUT.ignoreValue * 8) ignoreValue = v;
      else ignoreLease = v;
    }
  }
  // Built by adding fields to one literal (no spread): absent fields stay absent, as the general decoder leaves them.
  const put: Mutable<PutRequest> = { key: key ?? absentBytes() };
  if (value !== undefined) put.value = value;
  if (lease !== undefined) put.lease = lease;
  if (prevKv !== undefined) put.prevKv = prevKv;
  if (ignoreValue !== undefined) put.ignoreValue = ignoreValue;
  if (ignoreLease !== undefined) put.ignoreLease = ignoreLease;
  return put;
}

function readDelete(r: WireReader): DeleteRangeRequest | undefined {
  let key: Uint8Array | undefined;
  const del: Omit<Mutable<DeleteRangeRequest>, 'key'> = {};
  while (!r.done) {
    const tag = r.uint();
    if (tag === DEL.key * 8 + WIRE_BYTES) {
      if ((key = r.bytes()) === undefined) return undefined;
    } else if (tag === DEL.rangeEnd * 8 + WIRE_BYTES) {
      const v = r.bytes();
      if (v === undefined) return undefined;
      del.rangeEnd = v;
    } else if (tag === DEL.prevKv * 8 + WIRE_VARINT) {
      const v = r.bool();
      if (v === undefined) return undefined;
      del.prevKv = v;
    } else return undefined;
  }
  return { ...del, key: key ?? absentBytes() };
}

/** RangeRequest's int64 fields, by field number. */
const RANGE_INTS = new Map<number, 'limit' | 'revision' | 'minModRevision' | 'maxModRevision' | 'minCreateRevision' | 'maxCreateRevision'>([
  [RANGE.limit, 'limit'],
  [RANGE.revision, 'revision'],
  [RANGE.minModRevision, 'minModRevision'],
  [RANGE.maxModRevision, 'maxModRevision'],
  [RANGE.minCreateRevision, 'minCreateRevision'],
  [RANGE.maxCreateRevision, 'maxCreateRevision'],
]);

function readRange(r: WireReader): RangeRequest | undefined {
  let key: Uint8Array | undefined;
  const out: Omit<Mutable<RangeRequest>, 'key'> = {};
  while (!r.done) {
    const tag = r.uint();
    if (tag === undefined) return undefined;
    const field = tag >>> 3;
    if (tag === RANGE.key * 8 + WIRE_BYTES) {
      if ((key = r.bytes()) === undefined) return undefined;
    } else if (tag === RANGE.rangeEnd * 8 + WIRE_BYTES) {
      const v = r.bytes();
      if (v === undefined) return undefined;
      out.rangeEnd = v;
    } else if ((tag & 7) !== WIRE_VARINT) {
      return undefined;
    } else if (RANGE_INTS.has(field)) {
      const v = r.uint();
      if (v === undefined) return undefined;
      out[RANGE_INTS.get(field)!] = v;
    } else if (field === RANGE.sortOrder || field === RANGE.sortTarget) {
      const v = r.uint();
      const name = v === undefined ? undefined : field === RANGE.sortOrder ? SORT_ORDERS[v] : SORT_TARGETS[v];
      if (name === undefined) return undefined;
      if (field === RANGE.sortOrder) out.sortOrder = name as SortOrder;
      else out.sortTarget = name as SortTarget;
    } else if (field === RANGE.keysOnly || field === RANGE.countOnly) {
      const v = r.bool();
      if (v === undefined) return undefined;
      if (field === RANGE.keysOnly) out.keysOnly = v;
      else out.countOnly = v;
    } else return undefined;
  }
  return { ...out, key: key ?? absentBytes() };
}

/** The union field each compare target reads. */
const UNION_FIELD: Readonly<Record<Compare['target'], number>> = {
  VERSION: CMP.version,
  CREATE: CMP.createRevision,
  MOD: CMP.modRevision,
  VALUE: CMP.value,
  LEASE: CMP.lease,
};

function readCompare(r: WireReader): Compare | undefined {
  let result: CompareOp = 'EQUAL';
  let target: Compare['target'] = 'VERSION';
  let key: Uint8Array | undefined;
  let rangeEnd: Uint8Array | undefined;
  let union: number | undefined;
  let num = 0;
  let value: Uint8Array | undefined;
  let lease = 0n;
  while (!r.done) {
    const tag = r.uint();
    if (tag === undefined) return undefined;
    const field = tag >>> 3;
    if (tag === CMP.result * 8 || tag === CMP.target * 8) {
      const v = r.uint();
      const name = v === undefined ? undefined : tag === CMP.result * 8 ? COMPARE_RESULTS[v] : COMPARE_TARGETS[v];
      if (name === undefined) return undefined;
      if (tag === CMP.result * 8) result = name as CompareOp;
      else target = name as Compare['target'];
    } else if (tag === CMP.key * 8 + WIRE_BYTES) {
      if ((key = r.bytes()) === undefined) return undefined;
    } else if (tag === CMP.rangeEnd * 8 + WIRE_BYTES) {
      if ((rangeEnd = r.bytes()) === undefined) return undefined;
    } else {
      // One union field at most; which one the target reads is checked below.
      if (union !== undefined) return undefined;
      union = field;
      if (tag === CMP.value * 8 + WIRE_BYTES) {
        if ((value = r.bytes()) === undefined) return undefined;
      } else if (tag === CMP.lease * 8) {
        const v = r.int64();
        if (v === undefined) return undefined;
        lease = v;
      } else if (tag === CMP.version * 8 || tag === CMP.createRevision * 8 || tag === CMP.modRevision * 8) {
        const v = r.uint();
        if (v === undefined) return undefined;
        num = v;
      } else return undefined;
    }
  }
  if (union !== undefined && union !== UNION_FIELD[target]) return undefined;
  const base = { key: key ?? absentBytes(), result, ...(rangeEnd !== undefined ? { rangeEnd } : {}) };
  switch (target) {
    case 'VALUE':
      return { ...base, target, value: value ?? absentBytes() };
    case 'VERSION':
      return { ...base, target, version: num };
    case 'CREATE':
      return { ...base, target, createRevision: num };
    case 'MOD':
      return { ...base, target, modRevision: num };
    case 'LEASE':
      return { ...base, target, lease };
  }
}

function readOp(r: WireReader): RequestOp | undefined {
  let op: RequestOp | undefined;
  while (!r.done) {
    const tag = r.uint();
    const inner = tag !== undefined && (tag & 7) === WIRE_BYTES ? r.message() : undefined;
    if (inner === undefined || op !== undefined) return undefined;
    switch (tag! >>> 3) {
      case OP.range: {
        const request = readRange(inner);
        op = request === undefined ? undefined : { type: 'range', request };
        break;
      }
      case OP.put: {
        const request = readPut(inner);
        op = request === undefined ? undefined : { type: 'put', request };
        break;
      }
      case OP.deleteRange: {
        const request = readDelete(inner);
        op = request === undefined ? undefined : { type: 'deleteRange', request };
        break;
      }
      case OP.txn: {
        const request = readTxn(inner);
        op = request === undefined ? undefined : { type: 'txn', request };
        break;
      }
      default:
        return undefined;
    }
    if (op === undefined) return undefined;
  }
  // etcd answers an empty RequestOp with "key not found"; the general decoder reads it as this put.
  return op ?? { type: 'put', request: { key: absentBytes() } };
}

function readTxn(r: WireReader): TxnRequest | undefined {
  const compare: Compare[] = [];
  const success: RequestOp[] = [];
  const failure: RequestOp[] = [];
  while (!r.done) {
    const tag = r.uint();
    const inner = tag !== undefined && (tag & 7) === WIRE_BYTES ? r.message() : undefined;
    if (inner === undefined) return undefined;
    const field = tag! >>> 3;
    if (field === TXN.compare) {
      const c = readCompare(inner);
      if (c === undefined) return undefined;
      compare.push(c);
    } else if (field === TXN.success || field === TXN.failure) {
      const op = readOp(inner);
      if (op === undefined) return undefined;
      (field === TXN.success ? success : failure).push(op);
    } else return undefined;
  }
  return { compare, success, failure };
}

/**
 * Decodes a write command, or returns undefined when `bytes` is anything
 * else or holds anything this decoder does not read (then the general
 * decoder gives the answer, or the error).
 */
export function decodeWriteCommand(bytes: Uint8Array): WriteCommand | undefined {
  const r = WireReader.of(bytes);
  let requestId: RequestId | undefined;
  let epoch: Epoch = { confVersion: 0, spanVersion: 0 };
  let revision = 0;
  let authUser = '';
  let authRevision = 0;
  let body: WriteCommand['body'] | undefined;
  while (!r.done) {
    const tag = r.uint();
    if (tag === CMD.revision * 8 || tag === CMD.authRevision * 8) {
      const v = r.uint();
      if (v === undefined) return undefined;
      if (tag === CMD.revision * 8) revision = v;
      else authRevision = v;
      continue;
    }
    const inner = tag !== undefined && (tag & 7) === WIRE_BYTES ? r.message() : undefined;
    if (inner === undefined) return undefined;
    switch (tag! >>> 3) {
      case CMD.requestId:
        if ((requestId = readRequestId(inner)) === undefined) return undefined;
        break;
      case CMD.epoch: {
        const e = readEpoch(inner);
        if (e === undefined) return undefined;
        epoch = e;
        break;
      }
      case CMD.authUser:
        authUser = inner.rest().toString('utf8');
        break;
      case CMD.put: {
        const request = body === undefined ? readPut(inner) : undefined;
        if (request === undefined) return undefined;
        body = { type: 'put', request };
        break;
      }
      case CMD.deleteRange: {
        const request = body === undefined ? readDelete(inner) : undefined;
        if (request === undefined) return undefined;
        body = { type: 'deleteRange', request };
        break;
      }
      case CMD.txn: {
        const request = body === undefined ? readTxn(inner) : undefined;
        if (request === undefined) return undefined;
        body = { type: 'txn', request };
        break;
      }
      default:
        return undefined;
    }
  }
  if (requestId === undefined || body === undefined) return undefined;
  const cmd = { requestId, epoch, body };
  // The same shape as the general decoder's: auth and revision only when set.
  const withAuth = authRevision > 0 ? { ...cmd, authRevision, ...(authUser !== '' ? { authUser } : {}) } : cmd;
  return revision > 0 ? { ...withAuth, revision } : withAuth;
}

// ---------------------------------------------------------------- dedupe record of a put

/** Encodes the dedupe record of an applied put: DedupeRecord{index, ApplyResult{raft_term, put}}. */
export function encodePutRecord(index: number, raftTerm: number, result: PutResult): Buffer {
  checkUint(index, 'index');
  checkUint(raftTerm, 'raft_term');
  checkUint(result.revision, 'revision');
  const prevKvBody = result.prevKv === undefined ? undefined : keyValueSize(result.prevKv);
  const putBody = counterField(PUTRES.revision, result.revision) + (prevKvBody === undefined ? 0 : messageField(PUTRES.prevKv, prevKvBody));
  const resultBody = counterField(RES.raftTerm, raftTerm) + messageField(RES.put, putBody);
  const total = counterField(REC.index, index) + messageField(REC.result, resultBody);
  const buf = Buffer.allocUnsafe(total);
  let pos = writeCounterField(buf, 0, REC.index, index);
  pos = writeMessageHeader(buf, pos, REC.result, resultBody);
  pos = writeCounterField(buf, pos, RES.raftTerm, raftTerm);
  pos = writeMessageHeader(buf, pos, RES.put, putBody);
  pos = writeCounterField(buf, pos, PUTRES.revision, result.revision);
  if (result.prevKv !== undefined && prevKvBody !== undefined) {
    pos = writeMessageHeader(buf, pos, PUTRES.prevKv, prevKvBody);
    pos = writeKeyValue(buf, pos, result.prevKv);
  }
  if (pos !== total) throw new Error(`encodePutRecord: wrote ${pos} of ${total} bytes`);
  return buf;
}
