/**
 * The on-disk format of the write-ahead-log engine (wal.ts), as pure
 * functions: file names, file headers, and records.
 *
 *   segment    <first seq, 16 hex digits>.wal    header, then records, then zeros
 *   checkpoint <last seq covered, 16 hex>.ckpt   header, then put records, then an end record
 *
 * A file header is 16 bytes: an 8-byte magic and a u64 sequence number (a
 * segment's first record's, a checkpoint's last covered record's). A record:
 *
 *   u32 body length | u32 crc32 (IEEE) of the 8 seq bytes and the body | u64 seq | body
 *   body: u8 kind | u32 op count | ops
 *   op:   u8 type (1 put, 2 del) | u32 key length | key | (put only) u32 value length | value
 *         or u8 3 | u32 start length | start | u32 end length | end   (delete the span [start, end))
 *
 * All integers little-endian. A segment's records have consecutive sequence
 * numbers, continuing from one segment to the next. Segments are
 * preallocated with zeros, so a zero body length marks the clean end of
 * the records written so far.
 */
import { crc32 } from 'node:zlib';
import type { TreeOp } from './internal.js';

/** Magic of a segment file. */
export const SEGMENT_MAGIC = Buffer.from('KSWALSG1', 'latin1');
/** Magic of a checkpoint file. */
export const CHECKPOINT_MAGIC = Buffer.from('KSWALCP1', 'latin1');
/** Bytes of a file header: magic and sequence number. */
export const FILE_HEADER_BYTES = 16;
/** Bytes of a record header: length, crc, seq. */
export const RECORD_HEADER_BYTES = 16;
/** Bytes of a body before its ops: kind, op count. */
const BODY_HEADER_BYTES = 5;
/** A record body longer than this is taken for garbage (no batch is that large). */
export const RECORD_BODY_BYTES_MAX = 1 << 30;

/** A record kind: an atomic batch of puts and deletes (segments), or a chunk of the state (checkpoints). */
export const RECORD_BATCH = 1;
/** A record kind: a checkpoint's last record; its op count is the number of puts before it. */
export const RECORD_CHECKPOINT_END = 2;
/** What a record holds. */
export type RecordKind = typeof RECORD_BATCH | typeof RECORD_CHECKPOINT_END;

const OP_PUT = 1;
const OP_DEL = 2;
const OP_SPAN = 3;

/** File name of the segment whose first record has sequence number `seq`. */
export function segmentName(seq: number): string {
  return `${seq.toString(16).padStart(16, '0')}.wal`;
}

/** File name of the checkpoint covering every record up to `seq`. */
export function checkpointName(seq: number): string {
  return `${seq.toString(16).padStart(16, '0')}.ckpt`;
}

/** Parses a segment or checkpoint file name; undefined for any other name. */
export function parseFileName(name: string): { readonly kind: 'segment' | 'checkpoint'; readonly seq: number } | undefined {
  const m = /^([0-9a-f]{16})\.(wal|ckpt)$/.exec(name);
  if (m === null) return undefined;
  const seq = Number.parseInt(m[1]!, 16);
  if (!Number.isSafeInteger(seq)) return undefined;
  return { kind: m[2] === 'wal' ? 'segment' : 'checkpoint', seq };
}

/** A file header. */
export function encodeFileHeader(magic: Buffer, seq: number): Buffer {
  const out = Buffer.alloc(FILE_HEADER_BYTES);
  magic.copy(out, 0);
  out.writeBigUInt64LE(BigInt(seq), 8);
  return out;
}

/** The sequence number of a file header with `magic`, or undefined if `buf` does not start with one. */
export function decodeFileHeader(buf: Buffer, magic: Buffer): number | undefined {
  if (buf.length < FILE_HEADER_BYTES || !buf.subarray(0, 8).equals(magic)) return undefined;
  const seq = buf.readBigUInt64LE(8);
  return seq <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(seq) : undefined;
}

/** Bytes `ops` take in a record body. */
export function opsBytes(ops: readonly TreeOp[]): number {
  let n = 0;
  for (const op of ops) {
    if (op.type === 'span') n += 9 + op.start.length + op.end.length;
    else n += op.type === 'put' ? 9 + op.key.length + op.value.length : 5 + op.key.length;
  }
  return n;
}

/** One whole record: header and body. */
export function encodeRecord(seq: number, kind: RecordKind, ops: readonly TreeOp[], count = ops.length): Buffer {
  const bodyBytes = BODY_HEADER_BYTES + opsBytes(ops);
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + bodyBytes);
  out.writeUInt32LE(bodyBytes, 0);
  out.writeBigUInt64LE(BigInt(seq), 8);
  let at = RECORD_HEADER_BYTES;
  out[at++] = kind;
  out.writeUInt32LE(count, at);
  at += 4;
  for (const op of ops) {
    out[at++] = op.type === 'put' ? OP_PUT : op.type === 'del' ? OP_DEL : OP_SPAN;
    at = putBytes(out, at, op.type === 'span' ? op.start : op.key);
    if (op.type !== 'del') at = putBytes(out, at, op.type === 'span' ? op.end : op.value);
  }
  out.writeUInt32LE(crc32(out.subarray(8)), 4);
  return out;
}

/** Writes a u32 length and `bytes` at `at`; returns the offset after them. */
function putBytes(out: Buffer, at: number, bytes: Buffer): number {
  out.writeUInt32LE(bytes.length, at);
  out.set(bytes, at + 4);
  return at + 4 + bytes.length;
}

/** A record read back; ops' keys and values are views into the read buffer. */
export interface DecodedRecord {
  readonly seq: number;
  readonly kind: RecordKind;
  /** The op count field (for a CheckpointEnd: the puts before it). */
  readonly count: number;
  readonly ops: TreeOp[];
  /** Offset just past the record. */
  readonly end: number;
}

/**
 * Why reading stopped at an offset: `end` — a zero length where a record
 * would start, or the buffer ends exactly there (the clean end of what was
 * written); `torn` — a record that is cut short, fails its checksum or
 * does not parse (the last write before a crash, or damage).
 */
export type StopReason = 'end' | 'torn';

/** The record at `offset` of `buf`, or why there is none. */
export function decodeRecord(buf: Buffer, offset: number): DecodedRecord | StopReason {
  if (offset === buf.length) return 'end';
  if (offset + RECORD_HEADER_BYTES > buf.length) return allZero(buf, offset, buf.length) ? 'end' : 'torn';
  const bodyBytes = buf.readUInt32LE(offset);
  if (bodyBytes === 0) return allZero(buf, offset, offset + RECORD_HEADER_BYTES) ? 'end' : 'torn';
  if (bodyBytes < BODY_HEADER_BYTES || bodyBytes > RECORD_BODY_BYTES_MAX) return 'torn';
  const end = offset + RECORD_HEADER_BYTES + bodyBytes;
  if (end > buf.length) return 'torn';
  if (crc32(buf.subarray(offset + 8, end)) !== buf.readUInt32LE(offset + 4)) return 'torn';
  const seq64 = buf.readBigUInt64LE(offset + 8);
  if (seq64 > BigInt(Number.MAX_SAFE_INTEGER)) return 'torn';
  let at = offset + RECORD_HEADER_BYTES;
  const kind = buf[at++]!;
  if (kind !== RECORD_BATCH && kind !== RECORD_CHECKPOINT_END) return 'torn';
  const count = buf.readUInt32LE(at);
  at += 4;
  const ops: TreeOp[] = [];
  if (kind === RECORD_BATCH) {
    for (let i = 0; i < count; i++) {
      if (at + 5 > end) return 'torn';
      const type = buf[at++];
      const keyBytes = buf.readUInt32LE(at);
      at += 4;
      if ((keyBytes === 0 && type !== OP_SPAN) || at + keyBytes > end) return 'torn';
      const key = buf.subarray(at, at + keyBytes);
      at += keyBytes;
      if (type === OP_DEL) {
        ops.push({ type: 'del', key });
        continue;
      }
      if ((type !== OP_PUT && type !== OP_SPAN) || at + 4 > end) return 'torn';
      const valueBytes = buf.readUInt32LE(at);
      at += 4;
      if (at + valueBytes > end) return 'torn';
      const value = buf.subarray(at, at + valueBytes);
      at += valueBytes;
      ops.push(type === OP_PUT ? { type: 'put', key, value } : { type: 'span', start: key, end: value });
    }
  }
  if (at !== end) return 'torn';
  return { seq: Number(seq64), kind: kind as RecordKind, count, ops, end };
}

/** True if buf[from, to) holds only zero bytes. */
export function allZero(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] !== 0) return false;
  return true;
}
