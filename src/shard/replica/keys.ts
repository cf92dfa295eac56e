/**
 * Engine key layout of one range replica. Everything a range keeps lives
 * under its range prefix, so a snapshot is one scan of that prefix and a
 * snapshot install one batch that deletes that prefix's keys and writes the
 * image (as TiKV's `0x01 | regionId` local keys):
 *
 *   'r' | rangeId u64 BE | 'm' | …                 MVCC store (its own families)
 *   'r' | rangeId u64 BE | 'l' | 'd'               range descriptor (RangeDescriptor proto)
 *   'r' | rangeId u64 BE | 'l' | 'q' | n | proposer(n) | seq u64   dedupe record
 *   'r' | rangeId u64 BE | 'l' | 'o' | index u64   dedupe order of earlier versions (removed at load)
 *   'r' | rangeId u64 BE | 'l' | 'u'               auth store state (range 1; AuthStoreState proto)
 *   'r' | rangeId u64 BE | 'l' | 'e' | lease u64   lease record (src/shard/lease/table.ts)
 *   'r' | rangeId u64 BE | 'l' | 'a' | lease u64 | userKey   key attached to a lease (empty value)
 *
 * Lease ids (int64) are written as their 64-bit two's complement, big-endian.
 *
 * The fixed-width range id means no range's prefix is a prefix of another's.
 */
import { prefixEnd } from '../mvcc/index.js';
import type { LeaseKeyLayout } from '../lease/index.js';
import type { RequestId } from './command-codec.js';

const RANGE_TAG = 0x72; // 'r'
const MVCC_TAG = 0x6d; // 'm'
const LOCAL_TAG = 0x6c; // 'l'
const DESCRIPTOR_TAG = 0x64; // 'd'
const DEDUPE_RECORD_TAG = 0x71; // 'q'
const LEGACY_DEDUPE_ORDER_TAG = 0x6f; // 'o'
const AUTH_STATE_TAG = 0x75; // 'u'
const LEASE_RECORD_TAG = 0x65; // 'e'
const LEASE_ATTACHMENT_TAG = 0x61; // 'a'

/** The engine keys of one range. */
export class RangeKeys implements LeaseKeyLayout {
  /** First key of the range's keyspace (inclusive). */
  readonly start: Buffer;
  /** End of the range's keyspace (exclusive). */
  readonly end: Buffer;
  /** Prefix handed to MvccStore.open. */
  readonly mvccPrefix: Buffer;
  /** Key of the stored range descriptor. */
  readonly descriptor: Buffer;
  /** Bounds of the dedupe record family. */
  readonly dedupeRecordsStart: Buffer;
  readonly dedupeRecordsEnd: Buffer;
  /**
   * Bounds of the dedupe order family that earlier versions wrote beside the
   * records (index → record key); the order now comes from the records'
   * own indexes, and a table's load deletes this family.
   */
  readonly legacyDedupeOrderStart: Buffer;
  readonly legacyDedupeOrderEnd: Buffer;
  /** Key of the auth store's state (docs/auth.md). */
  readonly authState: Buffer;
  /** Bounds of the lease record family. */
  readonly leaseRecordsStart: Buffer;
  readonly leaseRecordsEnd: Buffer;
  private readonly attachmentHead: Buffer;

  constructor(readonly rangeId: number) {
    this.start = Buffer.concat([Buffer.from([RANGE_TAG]), encodeU64(rangeId)]);
    this.end = Buffer.from(prefixEnd(this.start));
    this.mvccPrefix = Buffer.concat([this.start, Buffer.from([MVCC_TAG])]);
    this.descriptor = Buffer.concat([this.start, Buffer.from([LOCAL_TAG, DESCRIPTOR_TAG])]);
    this.dedupeRecordsStart = Buffer.concat([this.start, Buffer.from([LOCAL_TAG, DEDUPE_RECORD_TAG])]);
    this.dedupeRecordsEnd = Buffer.from(prefixEnd(this.dedupeRecordsStart));
    this.legacyDedupeOrderStart = Buffer.concat([this.start, Buffer.from([LOCAL_TAG, LEGACY_DEDUPE_ORDER_TAG])]);
    this.legacyDedupeOrderEnd = Buffer.from(prefixEnd(this.legacyDedupeOrderStart));
    this.authState = Buffer.concat([this.start, Buffer.from([LOCAL_TAG, AUTH_STATE_TAG])]);
    this.leaseRecordsStart = Buffer.concat([this.start, Buffer.from([LOCAL_TAG, LEASE_RECORD_TAG])]);
    this.leaseRecordsEnd = Buffer.from(prefixEnd(this.leaseRecordsStart));
    this.attachmentHead = Buffer.concat([this.start, Buffer.from([LOCAL_TAG, LEASE_ATTACHMENT_TAG])]);
  }

  /** Key of lease `id`'s record. */
  leaseRecord(id: bigint): Buffer {
    return Buffer.concat([this.leaseRecordsStart, encodeLeaseId(id)]);
  }

  /** The lease id of a lease record key. */
  leaseIdOfRecordKey(key: Buffer): bigint {
    if (key.length !== this.leaseRecordsStart.length + 8) throw new RangeError('not a lease record key');
    return BigInt.asIntN(64, key.readBigUInt64BE(this.leaseRecordsStart.length));
  }

  /** Key recording that `userKey` is attached to lease `id`. */
  attachment(id: bigint, userKey: Uint8Array): Buffer {
    return Buffer.concat([this.attachmentHead, encodeLeaseId(id), userKey]);
  }

  /** First attachment key of lease `id`. */
  attachmentsStart(id: bigint): Buffer {
    return Buffer.concat([this.attachmentHead, encodeLeaseId(id)]);
  }

  /** End (exclusive) of lease `id`'s attachment keys. */
  attachmentsEnd(id: bigint): Buffer {
    return Buffer.from(prefixEnd(this.attachmentsStart(id)));
  }

  /** The user key of an attachment key. */
  userKeyOfAttachment(key: Buffer): Buffer {
    return key.subarray(this.attachmentHead.length + 8);
  }

  /** Key of the dedupe record of `id`. */
  dedupeRecord(id: RequestId): Buffer {
    // One allocation: a key is made for every applied request.
    const n = id.proposer.length;
    const key = Buffer.allocUnsafe(this.start.length + 3 + n + 8);
    let at = this.start.copy(key, 0);
    key[at++] = LOCAL_TAG;
    key[at++] = DEDUPE_RECORD_TAG;
    key[at++] = n;
    key.set(id.proposer, at);
    writeU64(key, at + n, id.seq);
    return key;
  }

  /** Key of the order entry an earlier version wrote for the record applied at `index` (tests build old layouts with it). */
  legacyDedupeOrder(index: number): Buffer {
    return Buffer.concat([this.legacyDedupeOrderStart, encodeU64(index)]);
  }
}

/** A lease id (int64) as 8 bytes: its two's complement, big-endian. */
function encodeLeaseId(id: bigint): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(BigInt.asUintN(64, id));
  return b;
}

/** The engine span holding every range's keys (and nothing of the raft log store). */
export const ALL_RANGES_SPAN = { start: Buffer.from([RANGE_TAG]), end: Buffer.from([RANGE_TAG + 1]) } as const;

/** `n` as 8 bytes u64 big-endian (n a non-negative safe integer). */

export function encodeU64(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  writeU64(b, 0, n);
  return b;
}

/** Writes `n` as u64 big-endian at `offset` of `b` (n a non-negative safe integer). */
function writeU64(b: Buffer, offset: number, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`not a non-negative safe integer: ${n}`);
  b.writeUInt32BE(Math.floor(n / 2 ** 32), offset);
  b.writeUInt32BE(n >>> 0, offset + 4);
}

/** Reads a u64 big-endian at `offset`, checked to be a safe integer. */
export function readU64(b: Buffer, offset: number): number {
  const n = b.readUInt32BE(offset) * 2 ** 32 + b.readUInt32BE(offset + 4);
  if (!Number.isSafeInteger(n)) throw new RangeError('u64 is not a safe integer');
  return n;
}

/** A string form of a request id, for in-memory maps. */
export function requestKey(id: RequestId): string {
  const p = id.proposer;
  return `${Buffer.from(p.buffer, p.byteOffset, p.byteLength).toString('hex')}:${id.seq}`;
}
