/**
 * The keyspan backup format: what Maintenance.Snapshot streams and
 * `keyspan snapshot restore` reads (docs/operations-backup.md). Pure
 * encoding and decoding, no I/O: the writer side produces byte pieces, the
 * reader side consumes any async byte source.
 *
 * A backup file is `content | sha256(content)` — as etcd's snapshot file,
 * whose last 32 bytes are the sha256 of the rest. All integers big-endian:
 *
 *   header   magic "KSPNBKUP" | formatVersion u16 (1) | flags u16 (0)
 *            | revision u64 | compactRevision u64 | createdUnixMs u64 | rangeCount u32
 *   range    'R' | rangeId u64 | appliedIndex u64 | revision u64 | compactRevision u64
 *   (× rangeCount) | startLen u32 | start | endLen u32 | end          (the range's user-key span)
 *            | { keyLen u32 | key | valueLen u32 | value }*           (MVCC records)
 *            | 0xFFFFFFFF | recordCount u64
 *   end      'E' | totalRecords u64 | zero bytes up to a multiple of 512 of the content
 *
 * A record's key is the engine key with the range's MVCC prefix removed, so a
 * restore can only write inside the MVCC store of the range it restores, and
 * the records are engine-independent. Revisions are the ranges' MVCC
 * revisions (compactRevision 0: never compacted).
 *
 * The content is padded to a multiple of 512 bytes because `etcdctl snapshot
 * save` (clientv3) refuses a download whose size is not 512·n + 32 (a bolt
 * file is whole pages plus the sha256).
 */

/** First bytes of every backup. */
export const BACKUP_MAGIC = Buffer.from('KSPNBKUP', 'latin1');
/** The format version this build writes and reads. */
export const BACKUP_FORMAT_VERSION = 1;
/** Bytes of the trailing sha256. */
export const BACKUP_SHA256_BYTES = 32;
/** Bytes of the header. */
export const BACKUP_HEADER_BYTES = 8 + 2 + 2 + 8 + 8 + 8 + 4;
/** Largest key or value length a reader accepts (a corrupt length must not allocate gigabytes). */
export const BACKUP_FIELD_BYTES_MAX = 64 * 1024 * 1024;
/** The content's length is a multiple of this (see the module comment). */
export const BACKUP_CONTENT_ALIGN_BYTES = 512;
/** Most ranges a reader accepts in one backup. */
export const BACKUP_RANGES_MAX = 1_000_000;

const RANGE_TAG = 0x52; // 'R'
const END_TAG = 0x45; // 'E'
const RECORDS_END = 0xffff_ffff;
const RANGE_FIXED_BYTES = 1 + 8 * 4 + 4 + 4;
const RANGE_END_BYTES = 4 + 8;
const END_BYTES = 1 + 8;

/** The backup header. */
export interface BackupHeader {
  readonly formatVersion: number;
  /** Largest current revision of the backed-up ranges. */
  readonly revision: number;
  /** Largest compacted revision of the ranges (0: none). */
  readonly compactRevision: number;
  readonly createdUnixMs: number;
  readonly rangeCount: number;
}

/** What a range section says about its range. */
export interface BackupRange {
  readonly rangeId: number;
  /** The range's raft applied index in the image (informative: a restore starts a new raft log). */
  readonly appliedIndex: number;
  readonly revision: number;
  readonly compactRevision: number;
  /** The range's span of user keys: [start, end), end empty = to the last key. */
  readonly start: Buffer;
  readonly end: Buffer;
}

/** A malformed, truncated or unsupported backup. */
export class BackupFormatError extends Error {
  override readonly name = 'BackupFormatError';
}

// ------------------------------------------------------------------ writing

/** The encoded header. */
export function encodeHeader(h: Omit<BackupHeader, 'formatVersion'>): Buffer {
  const b = Buffer.alloc(BACKUP_HEADER_BYTES);
  BACKUP_MAGIC.copy(b, 0);
  b.writeUInt16BE(BACKUP_FORMAT_VERSION, 8);
  b.writeUInt16BE(0, 10);
  writeU64(b, 12, h.revision);
  writeU64(b, 20, h.compactRevision);
  writeU64(b, 28, h.createdUnixMs);
  b.writeUInt32BE(h.rangeCount, 36);
  return b;
}

/** The encoded start of a range section (records follow). */
export function encodeRangeStart(r: BackupRange): Buffer {
  const b = Buffer.alloc(rangeStartBytes(r.start.length, r.end.length));
  let o = 0;
  b[o++] = RANGE_TAG;
  for (const n of [r.rangeId, r.appliedIndex, r.revision, r.compactRevision]) {
    writeU64(b, o, n);
    o += 8;
  }
  b.writeUInt32BE(r.start.length, o);
  r.start.copy(b, o + 4);
  o += 4 + r.start.length;
  b.writeUInt32BE(r.end.length, o);
  r.end.copy(b, o + 4);
  return b;
}

/** Bytes of a range section's start. */
export function rangeStartBytes(startLen: number, endLen: number): number {
  return RANGE_FIXED_BYTES + startLen + endLen;
}

/** The length prefix of a record's key (the key follows). */
export function encodeLength(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > BACKUP_FIELD_BYTES_MAX) throw new RangeError(`field length ${n} out of bounds`);
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n, 0);
  return b;
}

/** Bytes of one record. */
export function recordBytes(keyLen: number, valueLen: number): number {
  return 4 + keyLen + 4 + valueLen;
}

/** The end of a range section. */
export function encodeRangeEnd(recordCount: number): Buffer {
  const b = Buffer.alloc(RANGE_END_BYTES);
  b.writeUInt32BE(RECORDS_END, 0);
  writeU64(b, 4, recordCount);
  return b;
}

/** Bytes of a range section's end. */
export const BACKUP_RANGE_END_BYTES = RANGE_END_BYTES;

/** The end section. */
export function encodeEnd(totalRecords: number): Buffer {
  const b = Buffer.alloc(END_BYTES);
  b[0] = END_TAG;
  writeU64(b, 1, totalRecords);
  return b;
}

/** Bytes of the end section. */
export const BACKUP_END_BYTES = END_BYTES;

/** Zero bytes that pad content of `bytes` to a multiple of {@link BACKUP_CONTENT_ALIGN_BYTES}. */
export function paddingBytes(bytes: number): number {
  return (BACKUP_CONTENT_ALIGN_BYTES - (bytes % BACKUP_CONTENT_ALIGN_BYTES)) % BACKUP_CONTENT_ALIGN_BYTES;
}

/**
 * Cuts a stream of byte pieces into blobs of exactly `chunkBytes` (the last
 * one shorter): what Snapshot sends, one blob per response, as etcd sends
 * its file in 32 KiB pieces. Holds at most one blob.
 */
export class Chunker {
  private buf: Buffer;
  private used = 0;

  constructor(private readonly chunkBytes: number) {
    if (!Number.isInteger(chunkBytes) || chunkBytes <= 0) throw new RangeError('chunkBytes must be a positive integer');
    this.buf = Buffer.allocUnsafe(chunkBytes);
  }

  /** Adds `piece`; returns the blobs it completed. */
  push(piece: Uint8Array): Buffer[] {
    const out: Buffer[] = [];
    let o = 0;
    while (o < piece.length) {
      const n = Math.min(piece.length - o, this.chunkBytes - this.used);
      this.buf.set(piece.subarray(o, o + n), this.used);
      this.used += n;
      o += n;
      if (this.used === this.chunkBytes) {
        out.push(this.buf);
        this.buf = Buffer.allocUnsafe(this.chunkBytes);
        this.used = 0;
      }
    }
    return out;
  }

  /** The last, partial blob (undefined if nothing is left). */
  flush(): Buffer | undefined {
    if (this.used === 0) return undefined;
    const last = this.buf.subarray(0, this.used);
    this.buf = Buffer.allocUnsafe(this.chunkBytes);
    this.used = 0;
    return last;
  }
}

// ------------------------------------------------------------------ reading

/** One item of a parsed backup, in file order. */
export type BackupItem =
  | { readonly type: 'header'; readonly header: BackupHeader }
  | { readonly type: 'range'; readonly range: BackupRange }
  | { readonly type: 'record'; readonly key: Buffer; readonly value: Buffer }
  | { readonly type: 'rangeEnd'; readonly recordCount: number }
  | { readonly type: 'end'; readonly totalRecords: number };

/**
 * Parses backup content (without its trailing sha256) from `source`,
 * checking structure, lengths, counts and that nothing follows the end
 * section. Throws BackupFormatError.
 */
export async function* readBackup(source: AsyncIterable<Uint8Array>): AsyncGenerator<BackupItem> {
  const r = new ByteReader(source);
  const head = await r.take(BACKUP_HEADER_BYTES, 'header');
  if (!head.subarray(0, 8).equals(BACKUP_MAGIC)) throw new BackupFormatError('not a keyspan backup (bad magic)');
  const formatVersion = head.readUInt16BE(8);
  if (formatVersion !== BACKUP_FORMAT_VERSION) throw new BackupFormatError(`unsupported backup format version ${formatVersion}`);
  const header: BackupHeader = {
    formatVersion,
    revision: readU64(head, 12),
    compactRevision: readU64(head, 20),
    createdUnixMs: readU64(head, 28),
    rangeCount: head.readUInt32BE(36),
  };
  if (header.rangeCount > BACKUP_RANGES_MAX) throw new BackupFormatError(`range count ${header.rangeCount} exceeds ${BACKUP_RANGES_MAX}`);
  yield { type: 'header', header };
  let total = 0;
  for (let i = 0; i < header.rangeCount; i++) {
    const fixed = await r.take(1 + 8 * 4, 'range section');
    if (fixed[0] !== RANGE_TAG) throw new BackupFormatError(`expected range section ${i + 1} of ${header.rangeCount}`);
    const start = await r.take(await readLength(r), 'range start key');
    const end = await r.take(await readLength(r), 'range end key');
    yield {
      type: 'range',
      range: {
        rangeId: readU64(fixed, 1),
        appliedIndex: readU64(fixed, 9),
        revision: readU64(fixed, 17),
        compactRevision: readU64(fixed, 25),
        start,
        end,
      },
    };
    let count = 0;
    for (;;) {
      const klen = (await r.take(4, 'record')).readUInt32BE(0);
      if (klen === RECORDS_END) break;
      checkLength(klen);
      if (klen === 0) throw new BackupFormatError('record with an empty key');
      const key = await r.take(klen, 'record key');
      const value = await r.take(await readLength(r), 'record value');
      count++;
      yield { type: 'record', key, value };
    }
    const recordCount = readU64(await r.take(8, 'range end'), 0);
    if (recordCount !== count) throw new BackupFormatError(`range ${i + 1}: record count ${recordCount} but ${count} records`);
    total += count;
    yield { type: 'rangeEnd', recordCount };
  }
  const end = await r.take(END_BYTES, 'end section');
  if (end[0] !== END_TAG) throw new BackupFormatError('expected the end section');
  const totalRecords = readU64(end, 1);
  if (totalRecords !== total) throw new BackupFormatError(`total record count ${totalRecords} but ${total} records`);
  const padding = await r.take(paddingBytes(r.consumed), 'padding');
  if (padding.some((x) => x !== 0)) throw new BackupFormatError('non-zero padding after the end section');
  if (!(await r.atEnd())) throw new BackupFormatError('bytes after the end section');
  yield { type: 'end', totalRecords };
}

async function readLength(r: ByteReader): Promise<number> {
  const n = (await r.take(4, 'length')).readUInt32BE(0);
  checkLength(n);
  return n;
}

function checkLength(n: number): void {
  if (n > BACKUP_FIELD_BYTES_MAX) throw new BackupFormatError(`field of ${n} bytes exceeds ${BACKUP_FIELD_BYTES_MAX}`);
}

/** Exact-size reads from an async byte source, holding at most one source chunk beyond what is asked. */
class ByteReader {
  private readonly it: AsyncIterator<Uint8Array>;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private done = false;
  /** Bytes handed out so far. */
  consumed = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.it = source[Symbol.asyncIterator]();
  }

  async take(n: number, what: string): Promise<Buffer> {
    while (this.pendingBytes < n) {
      if (!(await this.fill())) throw new BackupFormatError(`truncated backup: ${what} cut short`);
    }
    const all = this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending);
    const out = Buffer.from(all.subarray(0, n));
    const rest = all.subarray(n);
    this.pending = rest.length === 0 ? [] : [rest];
    this.pendingBytes = rest.length;
    this.consumed += n;
    return out;
  }

  async atEnd(): Promise<boolean> {
    while (this.pendingBytes === 0) if (!(await this.fill())) return true;
    return false;
  }

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const next = await this.it.next();
    if (next.done === true) {
      this.done = true;
      return false;
    }
    const b = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
    this.pending.push(b);
    this.pendingBytes += b.length;
    return true;
  }
}

function writeU64(b: Buffer, offset: number, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`not a non-negative safe integer: ${n}`);
  b.writeUInt32BE(Math.floor(n / 2 ** 32), offset);
  b.writeUInt32BE(n >>> 0, offset + 4);
}

function readU64(b: Buffer, offset: number): number {
  const n = b.readUInt32BE(offset) * 2 ** 32 + b.readUInt32BE(offset + 4);
  if (!Number.isSafeInteger(n)) throw new BackupFormatError('a 64-bit field is not a safe integer');
  return n;
}
