/**
 * The snapshot image of a range: every engine key under the range's prefix
 * (all MVCC families, the descriptor, the dedupe table, the applied index),
 * read from one engine snapshot, so the image is exactly the state at its
 * applied index.
 *
 * Format (all integers big-endian):
 *
 *   "KSRS" | version u8 (1) | rangeId u64 | appliedIndex u64
 *   { keyLen u32 | key (without the range prefix) | valueLen u32 | value }*
 *   0xFFFFFFFF | recordCount u64 | crc32c u32 (of every byte before it)
 *
 * Keys are stored relative to the range prefix, so installing an image can
 * only write inside its own range. The image is built in one Uint8Array for
 * now, streamed from the engine iterator chunk by chunk; it is bounded by
 * SNAPSHOT_BYTES_MAX and building a bigger one fails (then the range must
 * split first, or the image be streamed to the transport in chunks: the
 * format is already a stream of records).
 */
import type { BatchOp, EngineReader } from '../../storage/index.js';
import { crc32c, KeyCodec, MetaName } from '../mvcc/index.js';
import { SnapshotInvalidError } from '../range/errors.js';
import { readU64, encodeU64, type RangeKeys } from './keys.js';

/** Largest snapshot image built or accepted (256 MiB, below Node's Buffer limits). */
export const SNAPSHOT_BYTES_MAX = 256 * 1024 * 1024;
/** Bytes buffered before they are appended to the image's chunk list. */
const CHUNK_BYTES = 1024 * 1024;
const MAGIC = Buffer.from('KSRS', 'latin1');
const FORMAT_VERSION = 1;
const END_MARKER = 0xffff_ffff;
const HEADER_BYTES = 4 + 1 + 8 + 8;
const TRAILER_BYTES = 4 + 8 + 4;

/** A parsed image. */
export interface SnapshotImage {
  readonly rangeId: number;
  readonly appliedIndex: number;
  /** Full engine keys (range prefix restored) and values. */
  readonly records: readonly { readonly key: Buffer; readonly value: Buffer }[];
}

/** Builds the image of the range from `reader` (an engine snapshot). */
export async function buildImage(
  reader: EngineReader,
  keys: RangeKeys,
  bytesMax: number = SNAPSHOT_BYTES_MAX,
): Promise<{ appliedIndex: number; data: Uint8Array }> {
  const appliedRaw = await reader.get(new KeyCodec(keys.mvccPrefix).metaKey(MetaName.AppliedIndex));
  const appliedIndex = appliedRaw === undefined ? 0 : readU64(appliedRaw, 0);
  const chunks: Buffer[] = [];
  let total = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const push = (b: Buffer): void => {
    pending.push(b);
    pendingBytes += b.length;
    if (total + pendingBytes > bytesMax) {
      throw new SnapshotInvalidError(`range ${keys.rangeId}: image exceeds ${bytesMax} bytes`);
    }
    if (pendingBytes >= CHUNK_BYTES) flush();
  };
  const flush = (): void => {
    if (pending.length === 0) return;
    chunks.push(Buffer.concat(pending));
    total += pendingBytes;
    pending = [];
    pendingBytes = 0;
  };
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt8(FORMAT_VERSION, 4);
  encodeU64(keys.rangeId).copy(header, 5);
  encodeU64(appliedIndex).copy(header, 13);
  push(header);
  let count = 0;
  for await (const { key, value } of reader.iterate({ gte: keys.start, lt: keys.end })) {
    const suffix = key.subarray(keys.start.length);
    const lens = Buffer.allocUnsafe(4);
    lens.writeUInt32BE(suffix.length, 0);
    const vlen = Buffer.allocUnsafe(4);
    vlen.writeUInt32BE(value.length, 0);
    push(lens);
    push(Buffer.from(suffix));
    push(vlen);
    push(Buffer.from(value));
    count++;
  }
  const end = Buffer.alloc(4 + 8);
  end.writeUInt32BE(END_MARKER, 0);
  encodeU64(count).copy(end, 4);
  push(end);
  flush();
  let crc = 0;
  for (const c of chunks) crc = crc32c(crc, c);
  const tail = Buffer.allocUnsafe(4);
  tail.writeUInt32BE(crc >>> 0, 0);
  chunks.push(tail);
  return { appliedIndex, data: Buffer.concat(chunks) };
}

/** Parses and validates an image of range `keys.rangeId`; throws SnapshotInvalidError. */
export function parseImage(data: Uint8Array, keys: RangeKeys): SnapshotImage {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length > SNAPSHOT_BYTES_MAX) throw new SnapshotInvalidError(`image of ${buf.length} bytes exceeds ${SNAPSHOT_BYTES_MAX}`);
  if (buf.length < HEADER_BYTES + TRAILER_BYTES) throw new SnapshotInvalidError('image too short');
  if (!buf.subarray(0, 4).equals(MAGIC)) throw new SnapshotInvalidError('bad magic');
  if (buf.readUInt8(4) !== FORMAT_VERSION) throw new SnapshotInvalidError(`unknown format version ${buf.readUInt8(4)}`);
  const crc = buf.readUInt32BE(buf.length - 4);
  if ((crc32c(0, buf.subarray(0, buf.length - 4)) >>> 0) !== crc) throw new SnapshotInvalidError('checksum mismatch');
  const rangeId = readU64(buf, 5);
  if (rangeId !== keys.rangeId) throw new SnapshotInvalidError(`image of range ${rangeId}, expected ${keys.rangeId}`);
  const appliedIndex = readU64(buf, 13);
  const records: { key: Buffer; value: Buffer }[] = [];
  let o = HEADER_BYTES;
  const need = (n: number): void => {
    if (o + n > buf.length - 4) throw new SnapshotInvalidError('truncated record');
  };
  for (;;) {
    need(4);
    const klen = buf.readUInt32BE(o);
    o += 4;
    if (klen === END_MARKER) break;
    need(klen + 4);
    const key = Buffer.concat([keys.start, buf.subarray(o, o + klen)]);
    o += klen;
    const vlen = buf.readUInt32BE(o);
    o += 4;
    need(vlen);
    records.push({ key, value: buf.subarray(o, o + vlen) });
    o += vlen;
  }
  need(8);
  const count = readU64(buf, o);
  o += 8;
  if (count !== records.length) throw new SnapshotInvalidError(`record count ${count} != ${records.length}`);
  if (o !== buf.length - 4) throw new SnapshotInvalidError('trailing bytes');
  return { rangeId, appliedIndex, records };
}

/** The engine ops that write an image (after the range's keys were deleted). */
export function imageOps(image: SnapshotImage): BatchOp[] {
  return image.records.map((r) => ({ type: 'put', key: r.key, value: r.value }));
}
