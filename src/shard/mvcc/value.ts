/**
 * Encoding of one version record (the value of a data key). The revision
 * lives in the key, so a record holds only what etcd's KeyValue adds:
 *
 *   put:        0x01 | createRevision u64 | version u64 | lease i64 | value bytes
 *   tombstone:  0x00
 *
 * Fixed-width fields keep decoding trivial; numbers are checked as safe
 * integers on decode (docs/integers.md).
 */
import { readU64, writeU64 } from './keys.js';
import type { KeyValue } from './types.js';

const TAG_TOMBSTONE = 0x00;
const TAG_PUT = 0x01;
const PUT_HEADER_BYTES = 1 + 8 + 8 + 8;

/** A decoded version record. */
export type VersionRecord =
  | { readonly tombstone: true }
  | {
      readonly tombstone: false;
      readonly createRevision: number;
      readonly version: number;
      readonly lease: bigint;
      readonly value: Buffer;
    };

/** The encoded tombstone record (shared; never mutated). */
export const TOMBSTONE_RECORD: Buffer = Buffer.from([TAG_TOMBSTONE]);

/** Encodes a put record. */
export function encodePut(createRevision: number, version: number, lease: bigint, value: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(PUT_HEADER_BYTES + value.length);
  b[0] = TAG_PUT;
  writeU64(b, 1, createRevision);
  writeU64(b, 9, version);
  b.writeBigInt64BE(lease, 17);
  b.set(value, PUT_HEADER_BYTES);
  return b;
}

/** True if the encoded record is a tombstone (no full decode). */
export function isTombstoneRecord(record: Uint8Array): boolean {
  return record[0] === TAG_TOMBSTONE;
}

/** Decodes a record; the value is a view into `record`. */
export function decodeRecord(record: Buffer): VersionRecord {
  const tag = record[0];
  if (tag === TAG_TOMBSTONE && record.length === 1) return { tombstone: true };
  if (tag !== TAG_PUT || record.length < PUT_HEADER_BYTES) throw new RangeError('malformed MVCC version record');
  return {
    tombstone: false,
    createRevision: readU64(record, 1),
    version: readU64(record, 9),
    lease: record.readBigInt64BE(17),
    value: record.subarray(PUT_HEADER_BYTES),
  };
}

/** A record's fields but its value; null for a tombstone. Nothing is copied or viewed. */
export function decodeRecordHeader(record: Buffer): { createRevision: number; version: number; lease: bigint } | null {
  const tag = record[0];
  if (tag === TAG_TOMBSTONE && record.length === 1) return null;
  if (tag !== TAG_PUT || record.length < PUT_HEADER_BYTES) throw new RangeError('malformed MVCC version record');
  return { createRevision: readU64(record, 1), version: readU64(record, 9), lease: record.readBigInt64BE(17) };
}

/** Builds the KeyValue of a live record; null for a tombstone. */
export function toKeyValue(key: Buffer, modRevision: number, record: Buffer): KeyValue | null {
  const r = decodeRecord(record);
  if (r.tombstone) return null;
  return {
    key,
    createRevision: r.createRevision,
    modRevision,
    version: r.version,
    // A view: records are never written to once encoded (engine reads are fresh
    // Buffers, cached records are shared read-only), and a page of a list
    // would otherwise copy every value once more on its way to the wire.
    value: r.value,
    lease: r.lease,
  };
}

/** The KeyValue etcd puts in a DELETE event: key and mod revision only. */
export function deletedKeyValue(key: Buffer, modRevision: number): KeyValue {
  return { key, createRevision: 0, modRevision, version: 0, value: Buffer.alloc(0), lease: 0n };
}

/** Bytes of the revision in front of a Live-family value. */
const LIVE_REVISION_BYTES = 8;

/** The value of a key's Live-family entry: the revision of its newest version, then that version's record. */
export function encodeLiveValue(revision: number, record: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(LIVE_REVISION_BYTES + record.length);
  writeU64(b, 0, revision);
  b.set(record, LIVE_REVISION_BYTES);
  return b;
}

/** Splits a Live-family value; the record is a view into `value`. */
export function decodeLiveValue(value: Buffer): { revision: number; record: Buffer } {
  if (value.length < LIVE_REVISION_BYTES + PUT_HEADER_BYTES || value[LIVE_REVISION_BYTES] !== TAG_PUT) {
    throw new RangeError('malformed Live-family value');
  }
  return { revision: readU64(value, 0), record: value.subarray(LIVE_REVISION_BYTES) };
}
