/**
 * Engine key layout of one range replica. Everything a range keeps lives
 * under its range prefix, so a snapshot is one scan of that prefix and a
 * snapshot install one `deleteSpan` (as TiKV's `0x01 | regionId` local keys):
 *
 *   'r' | rangeId u64 BE | 'm' | …                 MVCC store (its own families)
 *   'r' | rangeId u64 BE | 'l' | 'd'               range descriptor (RangeDescriptor proto)
 *   'r' | rangeId u64 BE | 'l' | 'q' | n | proposer(n) | seq u64   dedupe record
 *   'r' | rangeId u64 BE | 'l' | 'o' | index u64   dedupe order (value: the record's key)
 *   'r' | rangeId u64 BE | 'l' | 'a'               auth store state (range 1; AuthStoreState proto)
 *
 * The fixed-width range id means no range's prefix is a prefix of another's.
 */
import { prefixEnd } from '../mvcc/index.js';
import type { RequestId } from './command-codec.js';

const RANGE_TAG = 0x72; // 'r'
const MVCC_TAG = 0x6d; // 'm'
const LOCAL_TAG = 0x6c; // 'l'
const DESCRIPTOR_TAG = 0x64; // 'd'
const DEDUPE_RECORD_TAG = 0x71; // 'q'
const DEDUPE_ORDER_TAG = 0x6f; // 'o'
const AUTH_STATE_TAG = 0x61; // 'a'

/** The engine keys of one range. */
export class RangeKeys {
  /** First key of the range's keyspace (inclusive). */
  readonly start: Buffer;
  /** End of the range's keyspace (exclusive). */
  readonly end: Buffer;
  /** Prefix handed to MvccStore.open. */
  readonly mvccPrefix: Buffer;
  /** Key of the stored range descriptor. */
  readonly descriptor: Buffer;
  /** Bounds of the dedupe order family. */
  readonly dedupeOrderStart: Buffer;
  readonly dedupeOrderEnd: Buffer;
  /** Key of the auth store's state (docs/auth.md). */
  readonly authState: Buffer;

  constructor(readonly rangeId: number) {
    this.start = Buffer.concat([Buffer.from([RANGE_TAG]), encodeU64(rangeId)]);
    this.end = Buffer.from(prefixEnd(this.start));
    this.mvccPrefix = Buffer.concat([this.start, Buffer.from([MVCC_TAG])]);
    this.descriptor = Buffer.concat([this.start, Buffer.from([LOCAL_TAG, DESCRIPTOR_TAG])]);
    this.dedupeOrderStart = Buffer.concat([this.start, Buffer.from([LOCAL_TAG, DEDUPE_ORDER_TAG])]);
    this.dedupeOrderEnd = Buffer.from(prefixEnd(this.dedupeOrderStart));
    this.authState = Buffer.concat([this.start, Buffer.from([LOCAL_TAG, AUTH_STATE_TAG])]);
  }

  /** Key of the dedupe record of `id`. */
  dedupeRecord(id: RequestId): Buffer {
    return Buffer.concat([
      this.start,
      Buffer.from([LOCAL_TAG, DEDUPE_RECORD_TAG, id.proposer.length]),
      id.proposer,
      encodeU64(id.seq),
    ]);
  }

  /** Key of the dedupe order entry of the record applied at `index`. */
  dedupeOrder(index: number): Buffer {
    return Buffer.concat([this.dedupeOrderStart, encodeU64(index)]);
  }
}

/** `n` as 8 bytes u64 big-endian (n a non-negative safe integer). */
export function encodeU64(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`not a non-negative safe integer: ${n}`);
  const b = Buffer.allocUnsafe(8);
  b.writeUInt32BE(Math.floor(n / 2 ** 32), 0);
  b.writeUInt32BE(n >>> 0, 4);
  return b;
}

/** Reads a u64 big-endian at `offset`, checked to be a safe integer. */
export function readU64(b: Buffer, offset: number): number {
  const n = b.readUInt32BE(offset) * 2 ** 32 + b.readUInt32BE(offset + 4);
  if (!Number.isSafeInteger(n)) throw new RangeError('u64 is not a safe integer');
  return n;
}

/** A string form of a request id, for in-memory maps. */
export function requestKey(id: RequestId): string {
  return `${Buffer.from(id.proposer).toString('hex')}:${id.seq}`;
}
