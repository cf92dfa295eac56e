/**
 * Value encodings of the log store's records. Every decoder checks lengths,
 * enum bytes and that every number is a safe integer, and throws CORRUPT
 * otherwise: a damaged record must stop startup, never become a wrong log.
 */
import type { ConfState, Entry, EntryType, HardState, SnapshotMeta } from '../raft/index.js';
import { LogStoreError } from './errors.js';
import { readU64, writeU64 } from './keys.js';

/** The on-disk format this code writes and reads. */
export const FORMAT_VERSION = 1;

/** Upper bound on each ConfState member list (far above any real group). */
export const CONF_STATE_MEMBERS_MAX = 1024;

/** Bytes of an encoded entry before its data: type u8, term u64. */
export const ENTRY_HEADER_BYTES = 9;

const ENTRY_TYPE_NORMAL = 0;
const ENTRY_TYPE_CONF_CHANGE = 1;

/** The first index and term of the log's compacted prefix (its last compacted entry). */
export interface TruncatedState {
  readonly index: number;
  readonly term: number;
}

function corrupt(what: string): never {
  throw new LogStoreError('CORRUPT', what);
}

/** Encodes the format version record. */
export function encodeVersion(version: number): Buffer {
  const buf = Buffer.allocUnsafe(4);
  buf.writeUInt32BE(version, 0);
  return buf;
}

/** Decodes the format version record. */
export function decodeVersion(value: Uint8Array): number {
  if (value.byteLength !== 4) corrupt('format version record has the wrong length');
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength).readUInt32BE(0);
}

/** Encodes a hard state: term, vote, commit as u64 BE. */
export function encodeHardState(hs: HardState): Buffer {
  const buf = Buffer.allocUnsafe(24);
  writeU64(buf, 0, hs.term);
  writeU64(buf, 8, hs.vote);
  writeU64(buf, 16, hs.commit);
  return buf;
}

/** Decodes a hard state record. */
export function decodeHardState(value: Uint8Array): HardState {
  if (value.byteLength !== 24) corrupt('hard state record has the wrong length');
  return { term: readU64(value, 0), vote: readU64(value, 8), commit: readU64(value, 16) };
}

/** Encodes a truncated state: index, term as u64 BE. */
export function encodeTruncatedState(ts: TruncatedState): Buffer {
  const buf = Buffer.allocUnsafe(16);
  writeU64(buf, 0, ts.index);
  writeU64(buf, 8, ts.term);
  return buf;
}

/** Decodes a truncated state record. */
export function decodeTruncatedState(value: Uint8Array): TruncatedState {
  if (value.byteLength !== 16) corrupt('truncated state record has the wrong length');
  return { index: readU64(value, 0), term: readU64(value, 8) };
}

function confStateLists(cs: ConfState): readonly (readonly number[])[] {
  return [cs.voters, cs.learners, cs.votersOutgoing, cs.learnersNext];
}

function confStateBytes(cs: ConfState): number {
  let n = 1;
  for (const list of confStateLists(cs)) n += 2 + 8 * list.length;
  return n;
}

function writeConfState(buf: Buffer, offset: number, cs: ConfState): number {
  let at = offset;
  buf[at++] = cs.autoLeave ? 1 : 0;
  for (const list of confStateLists(cs)) {
    if (list.length > CONF_STATE_MEMBERS_MAX) {
      throw new LogStoreError('INVALID_ARGUMENT', `conf state list of ${list.length} members exceeds ${CONF_STATE_MEMBERS_MAX}`);
    }
    buf.writeUInt16BE(list.length, at);
    at += 2;
    for (const id of list) {
      if (!Number.isSafeInteger(id) || id <= 0) {
        throw new LogStoreError('INVALID_ARGUMENT', `conf state member id must be a positive safe integer, got ${String(id)}`);
      }
      writeU64(buf, at, id);
      at += 8;
    }
  }
  return at;
}

function readConfState(value: Uint8Array, offset: number): ConfState {
  const view = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  let at = offset;
  const auto = view[at++];
  if (auto !== 0 && auto !== 1) corrupt('conf state autoLeave byte is not 0 or 1');
  const lists: number[][] = [];
  for (let l = 0; l < 4; l++) {
    if (at + 2 > view.byteLength) corrupt('conf state record is truncated');
    const n = view.readUInt16BE(at);
    at += 2;
    if (n > CONF_STATE_MEMBERS_MAX || at + 8 * n > view.byteLength) corrupt('conf state list is too long');
    const list: number[] = [];
    for (let i = 0; i < n; i++, at += 8) list.push(readU64(view, at));
    lists.push(list);
  }
  if (at !== view.byteLength) corrupt('conf state record has trailing bytes');
  return { voters: lists[0]!, learners: lists[1]!, votersOutgoing: lists[2]!, learnersNext: lists[3]!, autoLeave: auto === 1 };
}

/** Encodes a ConfState: autoLeave u8, then four lists of (count u16, ids u64...). */
export function encodeConfState(cs: ConfState): Buffer {
  const buf = Buffer.allocUnsafe(confStateBytes(cs));
  writeConfState(buf, 0, cs);
  return buf;
}

/** Decodes a conf state record. */
export function decodeConfState(value: Uint8Array): ConfState {
  if (value.byteLength < 1) corrupt('conf state record is empty');
  return readConfState(value, 0);
}

/** Encodes snapshot metadata: index u64, term u64, then the ConfState encoding. */
export function encodeSnapshotMeta(meta: SnapshotMeta): Buffer {
  const buf = Buffer.allocUnsafe(16 + confStateBytes(meta.confState));
  writeU64(buf, 0, meta.index);
  writeU64(buf, 8, meta.term);
  writeConfState(buf, 16, meta.confState);
  return buf;
}

/** Decodes a snapshot metadata record. */
export function decodeSnapshotMeta(value: Uint8Array): SnapshotMeta {
  if (value.byteLength < 17) corrupt('snapshot metadata record is truncated');
  return { index: readU64(value, 0), term: readU64(value, 8), confState: readConfState(value, 16) };
}

/** Encodes an entry value: type u8, term u64, data (the index is in the key). */
export function encodeEntry(e: Entry): Buffer {
  const buf = Buffer.allocUnsafe(ENTRY_HEADER_BYTES + e.data.byteLength);
  buf[0] = e.type === 'confChange' ? ENTRY_TYPE_CONF_CHANGE : ENTRY_TYPE_NORMAL;
  writeU64(buf, 1, e.term);
  buf.set(e.data, ENTRY_HEADER_BYTES);
  return buf;
}

/** Decodes an entry value read under the key of `index`. The data aliases `value`. */
export function decodeEntry(index: number, value: Uint8Array): Entry {
  if (value.byteLength < ENTRY_HEADER_BYTES) corrupt(`entry ${index} is truncated`);
  const typeByte = value[0];
  let type: EntryType;
  if (typeByte === ENTRY_TYPE_NORMAL) type = 'normal';
  else if (typeByte === ENTRY_TYPE_CONF_CHANGE) type = 'confChange';
  else corrupt(`entry ${index} has unknown type byte ${String(typeByte)}`);
  return { index, term: readU64(value, 1), type, data: value.subarray(ENTRY_HEADER_BYTES) };
}
