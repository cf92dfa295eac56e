/**
 * A put's raft command and its dedupe record encoded and decoded by hand.
 * Every write proposes a command, applies it on every replica and stores
 * its result; through protobufjs (object conversion, `fromObject`,
 * `toObject` with 64-bit integers as strings) that cost about 5 % of a
 * single node's CPU under a put load. The encodings are the same messages
 * of `proto/keyspan/rangepb.proto` (fields in number order, absent fields
 * left out, a put's optional fields present exactly when they are set), so
 * the general codec reads them, and the fast decoder reads what the general
 * encoder writes; an input the fast decoder does not fully understand gets
 * `undefined`, and the caller decodes it the general way.
 */
import type { Epoch } from '../range/descriptor.js';
import type { PutRequest, PutResult } from '../mvcc/index.js';
import {
  bigVarintSize,
  bytesFieldSize,
  int64Bits,
  keyValueSize,
  tagByte,
  varintSize,
  WIRE_BYTES,
  WIRE_VARINT,
  WireReader,
  writeBigVarint,
  writeBytesField,
  writeKeyValue,
  writeVarint,
  writeVarintField,
} from '../proto-wire.js';
import { PROPOSER_ID_BYTES_MAX, type RangeCommand, type RequestId } from './command-codec.js';

/** A put command: what {@link encodePutCommand} takes and {@link decodePutCommand} returns. */
export type PutCommand = RangeCommand & { readonly body: { readonly type: 'put'; readonly request: PutRequest } };

// RangeCommand's field numbers.
const CMD_REQUEST_ID = 1;
const CMD_EPOCH = 2;
const CMD_REVISION = 3;
const CMD_AUTH_USER = 4;
const CMD_AUTH_REVISION = 9;
const CMD_PUT = 10;
// RequestId's, Epoch's and PutRequest's.
const RID_PROPOSER = 1;
const RID_SEQ = 2;
const EPOCH_CONF_VERSION = 1;
const EPOCH_SPAN_VERSION = 2;
const PUT_KEY = 1;
const PUT_VALUE = 2;
const PUT_LEASE = 3;
const PUT_PREV_KV = 4;
const PUT_IGNORE_VALUE = 5;
const PUT_IGNORE_LEASE = 6;
// DedupeRecord's, ApplyResult's and PutResponse's.
const REC_INDEX = 1;
const REC_RESULT = 2;
const RES_RAFT_TERM = 1;
const RES_PUT = 10;
const PUTRES_REVISION = 1;
const PUTRES_PREV_KV = 2;

/** Thrown for a value the encoding cannot hold (the general codec's CommandInvalidError wraps it). */
export class CommandWireError extends RangeError {
  override readonly name = 'CommandWireError';
}

function checkUint(v: number, field: string): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new CommandWireError(`${field}=${v} is not a non-negative safe integer`);
  return v;
}

function optionalVarintSize(v: number): number {
  return v === 0 ? 0 : 1 + varintSize(v);
}

function boolSize(v: boolean | undefined): number {
  return v === undefined ? 0 : 2;
}

function writeBool(buf: Buffer, pos: number, field: number, v: boolean | undefined): number {
  if (v === undefined) return pos;
  buf[pos++] = tagByte(field, WIRE_VARINT);
  buf[pos++] = v ? 1 : 0;
  return pos;
}

/** A message field's size: tag, length, body. */
function messageFieldSize(body: number): number {
  return 1 + varintSize(body) + body;
}

function writeMessageHeader(buf: Buffer, pos: number, field: number, body: number): number {
  buf[pos++] = tagByte(field, WIRE_BYTES);
  return writeVarint(buf, pos, body);
}

/** Encodes a put command (the proposer id's length is checked by the caller). */
export function encodePutCommand(cmd: PutCommand): Buffer {
  const { requestId: rid, epoch } = cmd;
  const put = cmd.body.request;
  const seq = checkUint(rid.seq, 'seq');
  const confVersion = checkUint(epoch.confVersion, 'conf_version');
  const spanVersion = checkUint(epoch.spanVersion, 'span_version');
  const revision = checkUint(cmd.revision ?? 0, 'revision');
  const authRevision = checkUint(cmd.authRevision ?? 0, 'auth_revision');
  const authUser = cmd.authUser === undefined || cmd.authUser === '' ? undefined : Buffer.from(cmd.authUser, 'utf8');
  const lease = put.lease === undefined ? undefined : int64Bits(put.lease);

  const ridBody = bytesFieldSize(rid.proposer.length) + optionalVarintSize(seq);
  const epochBody = optionalVarintSize(confVersion) + optionalVarintSize(spanVersion);
  const putBody =
    bytesFieldSize(put.key.length) +
    (put.value === undefined ? 0 : bytesFieldSize(put.value.length)) +
    (lease === undefined ? 0 : 1 + bigVarintSize(lease)) +
    boolSize(put.prevKv) +
    boolSize(put.ignoreValue) +
    boolSize(put.ignoreLease);
  const total =
    messageFieldSize(ridBody) +
    messageFieldSize(epochBody) +
    optionalVarintSize(revision) +
    (authUser === undefined ? 0 : bytesFieldSize(authUser.length)) +
    optionalVarintSize(authRevision) +
    messageFieldSize(putBody);

  const buf = Buffer.allocUnsafe(total);
  let pos = writeMessageHeader(buf, 0, CMD_REQUEST_ID, ridBody);
  pos = writeBytesField(buf, pos, RID_PROPOSER, rid.proposer);
  if (seq !== 0) pos = writeVarintField(buf, pos, RID_SEQ, seq);
  pos = writeMessageHeader(buf, pos, CMD_EPOCH, epochBody);
  if (confVersion !== 0) pos = writeVarintField(buf, pos, EPOCH_CONF_VERSION, confVersion);
  if (spanVersion !== 0) pos = writeVarintField(buf, pos, EPOCH_SPAN_VERSION, spanVersion);
  if (revision !== 0) pos = writeVarintField(buf, pos, CMD_REVISION, revision);
  if (authUser !== undefined) pos = writeBytesField(buf, pos, CMD_AUTH_USER, authUser);
  if (authRevision !== 0) pos = writeVarintField(buf, pos, CMD_AUTH_REVISION, authRevision);
  pos = writeMessageHeader(buf, pos, CMD_PUT, putBody);
  pos = writeBytesField(buf, pos, PUT_KEY, put.key);
  if (put.value !== undefined) pos = writeBytesField(buf, pos, PUT_VALUE, put.value);
  if (lease !== undefined) {
    buf[pos++] = tagByte(PUT_LEASE, WIRE_VARINT);
    pos = writeBigVarint(buf, pos, lease);
  }
  pos = writeBool(buf, pos, PUT_PREV_KV, put.prevKv);
  pos = writeBool(buf, pos, PUT_IGNORE_VALUE, put.ignoreValue);
  pos = writeBool(buf, pos, PUT_IGNORE_LEASE, put.ignoreLease);
  if (pos !== total) throw new Error(`encodePutCommand: wrote ${pos} of ${total} bytes`);
  return buf;
}

function readRequestId(r: WireReader): RequestId | undefined {
  let proposer: Buffer | undefined;
  let seq = 0;
  while (!r.done) {
    const tag = r.uint();
    if (tag === tagByte(RID_PROPOSER, WIRE_BYTES)) {
      if ((proposer = r.bytes()) === undefined) return undefined;
    } else if (tag === tagByte(RID_SEQ, WIRE_VARINT)) {
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
    const v = tag === tagByte(EPOCH_CONF_VERSION, WIRE_VARINT) || tag === tagByte(EPOCH_SPAN_VERSION, WIRE_VARINT) ? r.uint() : undefined;
    if (v === undefined) return undefined;
    if (tag === tagByte(EPOCH_CONF_VERSION, WIRE_VARINT)) confVersion = v;
    else spanVersion = v;
  }
  return { confVersion, spanVersion };
}

function readPut(r: WireReader): PutRequest | undefined {
  let key: Buffer | undefined;
  const put: { value?: Buffer; lease?: bigint; prevKv?: boolean; ignoreValue?: boolean; ignoreLease?: boolean } = {};
  while (!r.done) {
    const tag = r.uint();
    if (tag === tagByte(PUT_KEY, WIRE_BYTES)) {
      if ((key = r.bytes()) === undefined) return undefined;
    } else if (tag === tagByte(PUT_VALUE, WIRE_BYTES)) {
      const v = r.bytes();
      if (v === undefined) return undefined;
      put.value = v;
    } else if (tag === tagByte(PUT_LEASE, WIRE_VARINT)) {
      const v = r.int64();
      if (v === undefined) return undefined;
      put.lease = v;
    } else {
      const v = tag === tagByte(PUT_PREV_KV, WIRE_VARINT) || tag === tagByte(PUT_IGNORE_VALUE, WIRE_VARINT) || tag === tagByte(PUT_IGNORE_LEASE, WIRE_VARINT) ? r.bool() : undefined;
      if (v === undefined) return undefined;
      if (tag === tagByte(PUT_PREV_KV, WIRE_VARINT)) put.prevKv = v;
      else if (tag === tagByte(PUT_IGNORE_VALUE, WIRE_VARINT)) put.ignoreValue = v;
      else put.ignoreLease = v;
    }
  }
  // The general codec reads an absent key as empty.
  return { ...put, key: key ?? Buffer.alloc(0) };
}

/**
 * Decodes a put command, or returns undefined when `bytes` is anything
 * else or holds anything this decoder does not read (then the general
 * decoder gives the answer, or the error).
 */
export function decodePutCommand(bytes: Uint8Array): PutCommand | undefined {
  const r = WireReader.of(bytes);
  let requestId: RequestId | undefined;
  let epoch: Epoch = { confVersion: 0, spanVersion: 0 };
  let revision = 0;
  let authUser = '';
  let authRevision = 0;
  let put: PutRequest | undefined;
  while (!r.done) {
    const tag = r.uint();
    switch (tag) {
      case tagByte(CMD_REQUEST_ID, WIRE_BYTES): {
        const inner = r.message();
        if (inner === undefined || (requestId = readRequestId(inner)) === undefined) return undefined;
        break;
      }
      case tagByte(CMD_EPOCH, WIRE_BYTES): {
        const inner = r.message();
        const e = inner === undefined ? undefined : readEpoch(inner);
        if (e === undefined) return undefined;
        epoch = e;
        break;
      }
      case tagByte(CMD_REVISION, WIRE_VARINT): {
        const v = r.uint();
        if (v === undefined) return undefined;
        revision = v;
        break;
      }
      case tagByte(CMD_AUTH_USER, WIRE_BYTES): {
        const b = r.bytes();
        if (b === undefined) return undefined;
        authUser = b.toString('utf8');
        break;
      }
      case tagByte(CMD_AUTH_REVISION, WIRE_VARINT): {
        const v = r.uint();
        if (v === undefined) return undefined;
        authRevision = v;
        break;
      }
      case tagByte(CMD_PUT, WIRE_BYTES): {
        const inner = r.message();
        if (inner === undefined || (put = readPut(inner)) === undefined) return undefined;
        break;
      }
      default:
        return undefined;
    }
  }
  if (requestId === undefined || put === undefined) return undefined;
  const cmd = { requestId, epoch, body: { type: 'put' as const, request: put } };
  // The same shape as the general decoder's: auth and revision only when set.
  const withAuth = authRevision > 0 ? { ...cmd, authRevision, ...(authUser !== '' ? { authUser } : {}) } : cmd;
  return revision > 0 ? { ...withAuth, revision } : withAuth;
}

/** Encodes the dedupe record of an applied put: DedupeRecord{index, ApplyResult{raft_term, put}}. */
export function encodePutRecord(index: number, raftTerm: number, result: PutResult): Buffer {
  checkUint(index, 'index');
  checkUint(raftTerm, 'raft_term');
  checkUint(result.revision, 'revision');
  const prevKvBody = result.prevKv === undefined ? undefined : keyValueSize(result.prevKv);
  const putBody = optionalVarintSize(result.revision) + (prevKvBody === undefined ? 0 : messageFieldSize(prevKvBody));
  const resultBody = optionalVarintSize(raftTerm) + messageFieldSize(putBody);
  const total = optionalVarintSize(index) + messageFieldSize(resultBody);
  const buf = Buffer.allocUnsafe(total);
  let pos = 0;
  if (index !== 0) pos = writeVarintField(buf, pos, REC_INDEX, index);
  pos = writeMessageHeader(buf, pos, REC_RESULT, resultBody);
  if (raftTerm !== 0) pos = writeVarintField(buf, pos, RES_RAFT_TERM, raftTerm);
  pos = writeMessageHeader(buf, pos, RES_PUT, putBody);
  if (result.revision !== 0) pos = writeVarintField(buf, pos, PUTRES_REVISION, result.revision);
  if (result.prevKv !== undefined && prevKvBody !== undefined) {
    pos = writeMessageHeader(buf, pos, PUTRES_PREV_KV, prevKvBody);
    pos = writeKeyValue(buf, pos, result.prevKv);
  }
  if (pos !== total) throw new Error(`encodePutRecord: wrote ${pos} of ${total} bytes`);
  return buf;
}
