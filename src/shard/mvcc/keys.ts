/**
 * Engine key encoding of one MVCC store (docs/mvcc.md has the full layout).
 *
 *   meta      prefix | 0x00 | name                          → u64 BE
 *   intents   prefix | 0x01 | …                             (reserved for 2PC locks)
 *   data      prefix | 0x02 | esc(userKey) | 0x00 0x01 | ~rev (u64 BE) → version record
 *   revindex  prefix | 0x03 | rev (u64 BE) | userKey         → empty
 *   live      prefix | 0x04 | esc(userKey) | 0x00 0x01          → rev (u64 BE) | version record
 *
 * esc() maps 0x00 → 0x00 0xFF and leaves other bytes alone; the terminator
 * 0x00 0x01 sorts below both an escaped zero and any other byte, so engine
 * order of data keys is user-key order first ("a" < "a\0" < "ab"). The
 * revision is stored inverted (~rev) so that a key's newest version comes
 * first: "newest version at or before R" is one forward seek to ~R, and a
 * forward scan across keys meets each key's newest version first.
 */

/** Key families under a store's prefix. */
export const Family = {
  Meta: 0x00,
  /** Reserved for write intents / locks of cross-range transactions. */
  Intent: 0x01,
  Data: 0x02,
  RevIndex: 0x03,
  /**
   * One key per user key that is live at the current revision (its newest
   * version is not a tombstone), holding that version: counting a span's
   * live keys is a keys-only scan of one entry per key, and a read of the
   * newest versions reads one entry per key, where the Data family has every
   * version and its value (live-index.ts).
   */
  Live: 0x04,
} as const;

/** Names of the meta records (one byte each, under the Meta family). */
export const MetaName = {
  /** The store's current revision. */
  CurrentRevision: 0x63, // 'c'
  /** The compacted revision (reads below it fail); set when compaction is applied. */
  CompactRevision: 0x6b, // 'k'
  /** The revision up to which physical compaction has finished. */
  CompactFinished: 0x66, // 'f'
  /** The raft applied index the layer above stores with each apply batch. */
  AppliedIndex: 0x61, // 'a'
  /** Live keys (etcd's etcd_debugging_mvcc_keys_total), kept in each write batch. */
  KeyCount: 0x6e, // 'n'
  /**
   * Present once the Live family holds exactly the live keys, each with its
   * newest version (written with it; see MvccStore.open). Stores whose Live
   * family held keys only have the record 'l' instead, and rebuild it.
   */
  LiveIndex: 0x4c, // 'L'
  /** The marker of a Live family of keys only (builds before it held versions); removed by the rebuild. */
  LiveKeysOnly: 0x6c, // 'l'
} as const;

/** One of the meta record names. */
export type MetaName = (typeof MetaName)[keyof typeof MetaName];

const TWO_32 = 0x1_0000_0000;
/** Bytes of the terminator between escaped user key and revision. */
const TERMINATOR_BYTES = 2;
/** Bytes of an encoded revision. */
export const REVISION_BYTES = 8;

/** Writes a non-negative safe integer as u64 big-endian. */
export function writeU64(buf: Buffer, offset: number, n: number): void {
  assertSafeNonNegative(n);
  buf.writeUInt32BE(Math.floor(n / TWO_32), offset);
  buf.writeUInt32BE(n >>> 0, offset + 4);
}

/**
 * Reads a u64 big-endian, rejecting values that are not safe integers. Reads
 * the bytes directly: every key parse and record decode calls it, and a
 * Buffer view per call was a measurable share of them.
 */
export function readU64(buf: Uint8Array, offset: number): number {
  if (!Number.isInteger(offset) || offset < 0 || offset + 8 > buf.length) {
    throw new RangeError(`u64 at ${offset} is outside ${buf.length} bytes`);
  }
  const hi = buf[offset]! * 0x100_0000 + ((buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!);
  const lo = buf[offset + 4]! * 0x100_0000 + ((buf[offset + 5]! << 16) | (buf[offset + 6]! << 8) | buf[offset + 7]!);
  const n = hi * TWO_32 + lo;
  if (!Number.isSafeInteger(n)) throw new RangeError(`u64 at ${offset} is not a safe integer`);
  return n;
}

/** An 8-byte buffer holding `n` as u64 big-endian. */
export function encodeU64(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  writeU64(b, 0, n);
  return b;
}

function writeRevisionDesc(buf: Buffer, offset: number, rev: number): void {
  assertSafeNonNegative(rev);
  // Complement both halves: ~rev as a u64, so newer revisions sort first.
  buf.writeUInt32BE(0xffff_ffff - Math.floor(rev / TWO_32), offset);
  buf.writeUInt32BE(0xffff_ffff - (rev >>> 0), offset + 4);
}

function readRevisionDesc(buf: Buffer, offset: number): number {
  const hi = 0xffff_ffff - buf.readUInt32BE(offset);
  const lo = 0xffff_ffff - buf.readUInt32BE(offset + 4);
  const n = hi * TWO_32 + lo;
  if (!Number.isSafeInteger(n)) throw new RangeError('revision in data key is not a safe integer');
  return n;
}

function assertSafeNonNegative(n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`not a non-negative safe integer: ${n}`);
}

/** Length of esc(key). */
function escapedLength(key: Uint8Array): number {
  let n = key.length;
  for (let i = 0; i < key.length; i++) if (key[i] === 0) n++;
  return n;
}

function writeEscaped(out: Buffer, offset: number, key: Uint8Array): number {
  if (key.indexOf(0) < 0) {
    out.set(key, offset);
    return offset + key.length;
  }
  let o = offset;
  for (let i = 0; i < key.length; i++) {
    const b = key[i] as number;
    out[o++] = b;
    if (b === 0) out[o++] = 0xff;
  }
  return o;
}

/** Inverse of esc(); `escaped` excludes the terminator. */
export function unescapeKey(escaped: Uint8Array): Buffer {
  const zero = escaped.indexOf(0);
  if (zero < 0) return Buffer.from(escaped);
  const out = Buffer.allocUnsafe(escaped.length);
  let o = 0;
  for (let i = 0; i < escaped.length; i++) {
    const b = escaped[i] as number;
    out[o++] = b;
    if (b === 0) {
      if (escaped[i + 1] !== 0xff) throw new RangeError('malformed escaped key');
      i++;
    }
  }
  return out.subarray(0, o);
}

/** A decoded data key: the escaped user key (with terminator) and revision. */
export interface DataKeyParts {
  /** esc(userKey) | terminator: equal segments mean equal user keys. */
  readonly keySegment: Buffer;
  readonly revision: number;
}

/**
 * Builds and parses the engine keys of one store. `prefix` isolates the
 * store inside a shared engine; no store's prefix may be a prefix of
 * another's (use fixed-width prefixes such as a range id as u64).
 */
export class KeyCodec {
  readonly prefix: Buffer;
  private readonly dataHead: number;
  private readonly metaKeys = new Map<MetaName, Buffer>();

  constructor(prefix: Uint8Array) {
    this.prefix = Buffer.from(prefix);
    this.dataHead = this.prefix.length + 1;
  }

  /** The first engine key of a family. */
  familyStart(family: number): Buffer {
    const b = Buffer.allocUnsafe(this.prefix.length + 1);
    this.prefix.copy(b, 0);
    b[this.prefix.length] = family;
    return b;
  }

  /** The first engine key above a family. */
  familyEnd(family: number): Buffer {
    return this.familyStart(family + 1);
  }

  /**
   * The engine key of a meta record: one Buffer per name, shared by every
   * caller (never to be written to), so a write-behind batch recognises a
   * record rewritten by each applied entry by the key's identity.
   */
  metaKey(name: MetaName): Buffer {
    let b = this.metaKeys.get(name);
    if (b === undefined) {
      b = Buffer.allocUnsafe(this.prefix.length + 2);
      this.prefix.copy(b, 0);
      b[this.prefix.length] = Family.Meta;
      b[this.prefix.length + 1] = name;
      this.metaKeys.set(name, b);
    }
    return b;
  }

  /**
   * The engine key of a write intent / lock on `userKey` (Intent family).
   * Reserved for cross-range transactions: nothing writes it yet, and data
   * reads never see it, but the family lets a lock scan cover one span
   * without touching versions.
   */
  intentKey(userKey: Uint8Array): Buffer {
    const b = this.dataKeyBuffer(userKey, 0);
    b[this.prefix.length] = Family.Intent;
    return b;
  }

  /**
   * The Live-family key of `userKey`. Live keys sort as their user keys do,
   * so the live keys of a span [start, end) are [liveKey(start), liveKey(end)).
   */
  liveKey(userKey: Uint8Array): Buffer {
    const b = this.dataKeyBuffer(userKey, 0);
    b[this.prefix.length] = Family.Live;
    return b;
  }

  /** The key segment of a Live-family key (a view into `engineKey`). */
  segmentOfLiveKey(engineKey: Buffer): Buffer {
    if (engineKey.length < this.dataHead + TERMINATOR_BYTES || engineKey[this.prefix.length] !== Family.Live) {
      throw new RangeError('not a live key of this store');
    }
    return engineKey.subarray(this.dataHead);
  }

  /** Same as liveKey, from a key segment. */
  liveKeyOfSegment(keySegment: Buffer): Buffer {
    const b = Buffer.allocUnsafe(this.dataHead + keySegment.length);
    this.prefix.copy(b, 0);
    b[this.prefix.length] = Family.Live;
    keySegment.copy(b, this.dataHead);
    return b;
  }

  /** The engine key of version `rev` of `userKey`. */
  dataKey(userKey: Uint8Array, rev: number): Buffer {
    const b = this.dataKeyBuffer(userKey, REVISION_BYTES);
    writeRevisionDesc(b, b.length - REVISION_BYTES, rev);
    return b;
  }

  /** Sorts below every version of `userKey` and above every smaller user key. */
  dataKeyFloor(userKey: Uint8Array): Buffer {
    return this.dataKeyBuffer(userKey, 0);
  }

  /** Sorts above every version of `userKey` and below every larger user key. */
  dataKeyCeiling(userKey: Uint8Array): Buffer {
    const b = this.dataKeyBuffer(userKey, 0);
    b[b.length - 1] = 0x02; // terminator 0x00 0x01 becomes 0x00 0x02
    return b;
  }

  /** esc(userKey) | terminator: the part of a data key naming the user key. */
  keySegment(userKey: Uint8Array): Buffer {
    return this.dataKeyBuffer(userKey, 0).subarray(this.dataHead);
  }

  /** Same as dataKeyCeiling, from the key segment of a parsed data key. */
  ceilingOfSegment(keySegment: Buffer): Buffer {
    const b = Buffer.allocUnsafe(this.dataHead + keySegment.length);
    this.prefix.copy(b, 0);
    b[this.prefix.length] = Family.Data;
    keySegment.copy(b, this.dataHead);
    b[b.length - 1] = 0x02;
    return b;
  }

  /** Same as dataKey, from the key segment of a parsed data key. */
  dataKeyOfSegment(keySegment: Buffer, rev: number): Buffer {
    const b = Buffer.allocUnsafe(this.dataHead + keySegment.length + REVISION_BYTES);
    this.prefix.copy(b, 0);
    b[this.prefix.length] = Family.Data;
    keySegment.copy(b, this.dataHead);
    writeRevisionDesc(b, b.length - REVISION_BYTES, rev);
    return b;
  }

  /** Splits a data key; the segment is a view into `engineKey`. */
  parseDataKey(engineKey: Buffer): DataKeyParts {
    const end = engineKey.length - REVISION_BYTES;
    if (end < this.dataHead + TERMINATOR_BYTES || engineKey[this.prefix.length] !== Family.Data) {
      throw new RangeError('not a data key of this store');
    }
    return {
      keySegment: engineKey.subarray(this.dataHead, end),
      revision: readRevisionDesc(engineKey, end),
    };
  }

  /** The user key of a key segment. */
  userKeyOfSegment(keySegment: Buffer): Buffer {
    return unescapeKey(keySegment.subarray(0, keySegment.length - TERMINATOR_BYTES));
  }

  /** The revision-index key of a change to `userKey` at `rev`. */
  revIndexKey(rev: number, userKey: Uint8Array): Buffer {
    const b = Buffer.allocUnsafe(this.prefix.length + 1 + REVISION_BYTES + userKey.length);
    this.prefix.copy(b, 0);
    b[this.prefix.length] = Family.RevIndex;
    writeU64(b, this.prefix.length + 1, rev);
    b.set(userKey, this.prefix.length + 1 + REVISION_BYTES);
    return b;
  }

  /** The first revision-index key of revision `rev`. */
  revIndexStart(rev: number): Buffer {
    const b = Buffer.allocUnsafe(this.prefix.length + 1 + REVISION_BYTES);
    this.prefix.copy(b, 0);
    b[this.prefix.length] = Family.RevIndex;
    writeU64(b, this.prefix.length + 1, rev);
    return b;
  }

  /** Splits a revision-index key into revision and (raw) user key. */
  parseRevIndexKey(engineKey: Buffer): { revision: number; userKey: Buffer } {
    const at = this.prefix.length + 1;
    if (engineKey[this.prefix.length] !== Family.RevIndex || engineKey.length < at + REVISION_BYTES) {
      throw new RangeError('not a revision-index key of this store');
    }
    return { revision: readU64(engineKey, at), userKey: engineKey.subarray(at + REVISION_BYTES) };
  }

  private dataKeyBuffer(userKey: Uint8Array, tail: number): Buffer {
    const escLen = escapedLength(userKey);
    const b = Buffer.allocUnsafe(this.dataHead + escLen + TERMINATOR_BYTES + tail);
    this.prefix.copy(b, 0);
    b[this.prefix.length] = Family.Data;
    const o = writeEscaped(b, this.dataHead, userKey);
    b[o] = 0x00;
    b[o + 1] = 0x01;
    return b;
  }
}
