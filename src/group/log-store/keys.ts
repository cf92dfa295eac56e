/**
 * Engine key layout of the log store (docs/log-store.md). All keys live in
 * the local family `0x01`, apart from any data family an engine may also
 * hold:
 *
 *   01 'v'                      store format version (u32 BE)
 *   01 'm' | group u64 | suffix group state: 'c' conf state, 'h' hard state,
 *                               's' snapshot metadata, 't' truncated state
 *   01 'r' | group u64 | index  one raft log entry
 *
 * Group state and entries are separate families, so startup lists every
 * group with one short scan that never touches an entry. Numbers are
 * fixed-width big-endian so byte order equals numeric order.
 */
import { LogStoreError } from './errors.js';

/** First byte of every key the store owns. */
export const LOCAL_PREFIX = 0x01;
const FAMILY_VERSION = 0x76; // 'v'
const FAMILY_META = 0x6d; // 'm'
const FAMILY_LOG = 0x72; // 'r'

/** The per-group state records, by key suffix. */
export const META_SUFFIX = {
  confState: 0x63, // 'c'
  hardState: 0x68, // 'h'
  snapshotMeta: 0x73, // 's'
  truncatedState: 0x74, // 't'
} as const;

const KNOWN_SUFFIXES: ReadonlySet<number> = new Set(Object.values(META_SUFFIX));

/** One of the group state record suffixes. */
export type MetaSuffix = (typeof META_SUFFIX)[keyof typeof META_SUFFIX];

const META_KEY_BYTES = 2 + 8 + 1;
const ENTRY_KEY_BYTES = 2 + 8 + 8;
const HIGH_WORD_MAX = 0x1f_ffff; // 2^53 - 1 = 0x1fffff_ffffffff

/** Writes `value` (a non-negative safe integer) as u64 BE at `offset`. */
export function writeU64(buf: Buffer, offset: number, value: number): void {
  buf.writeUInt32BE(Math.floor(value / 0x1_0000_0000), offset);
  buf.writeUInt32BE(value >>> 0, offset + 4);
}

/** Reads a u64 BE at `offset`, throwing CORRUPT unless it is a safe integer (docs/integers.md). */
export function readU64(buf: Uint8Array, offset: number): number {
  if (offset + 8 > buf.byteLength) throw new LogStoreError('CORRUPT', `u64 at offset ${offset} is past the end`);
  const hi = readU32(buf, offset);
  if (hi > HIGH_WORD_MAX) throw new LogStoreError('CORRUPT', `u64 at offset ${offset} is not a safe integer`);
  return hi * 0x1_0000_0000 + readU32(buf, offset + 4);
}

/** Reads a u32 BE at `offset` (in bounds: checked by the caller). Plain byte arithmetic: startup decodes many. */
function readU32(buf: Uint8Array, offset: number): number {
  return ((buf[offset]! << 24) | (buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!) >>> 0;
}

/** The store format version key. */
export const VERSION_KEY: Buffer = Buffer.from([LOCAL_PREFIX, FAMILY_VERSION]);

/** Lower bound of the group state family. */
export const META_FAMILY_START: Buffer = Buffer.from([LOCAL_PREFIX, FAMILY_META]);
/** Exclusive upper bound of the group state family. */
export const META_FAMILY_END: Buffer = Buffer.from([LOCAL_PREFIX, FAMILY_META + 1]);
/** Lower bound of the log entry family. */
export const LOG_FAMILY_START: Buffer = Buffer.from([LOCAL_PREFIX, FAMILY_LOG]);
/** Exclusive upper bound of the log entry family. */
export const LOG_FAMILY_END: Buffer = Buffer.from([LOCAL_PREFIX, FAMILY_LOG + 1]);

/** The key of one group state record. */
export function metaKey(groupId: number, suffix: MetaSuffix): Buffer {
  const key = Buffer.allocUnsafe(META_KEY_BYTES);
  key[0] = LOCAL_PREFIX;
  key[1] = FAMILY_META;
  writeU64(key, 2, groupId);
  key[10] = suffix;
  return key;
}

/** The key of the entry at `index` of a group. */
export function entryKey(groupId: number, index: number): Buffer {
  const key = Buffer.allocUnsafe(ENTRY_KEY_BYTES);
  key[0] = LOCAL_PREFIX;
  key[1] = FAMILY_LOG;
  writeU64(key, 2, groupId);
  writeU64(key, 10, index);
  return key;
}

/** A decoded group state key. */
export interface DecodedMetaKey {
  readonly groupId: number;
  readonly suffix: MetaSuffix;
}

/** Decodes a key of the group state family; throws CORRUPT on anything else. */
export function decodeMetaKey(key: Uint8Array): DecodedMetaKey {
  if (key.byteLength !== META_KEY_BYTES || key[0] !== LOCAL_PREFIX || key[1] !== FAMILY_META) {
    throw new LogStoreError('CORRUPT', `not a group state key: ${Buffer.from(key).toString('hex')}`);
  }
  const suffix = key[10];
  if (suffix === undefined || !KNOWN_SUFFIXES.has(suffix)) {
    throw new LogStoreError('CORRUPT', `unknown group state suffix in ${Buffer.from(key).toString('hex')}`);
  }
  return { groupId: readU64(key, 2), suffix: suffix as MetaSuffix };
}

/** A decoded entry key. */
export interface DecodedEntryKey {
  readonly groupId: number;
  readonly index: number;
}

/** Decodes a key of the log entry family; throws CORRUPT on anything else. */
export function decodeEntryKey(key: Uint8Array): DecodedEntryKey {
  if (key.byteLength !== ENTRY_KEY_BYTES || key[0] !== LOCAL_PREFIX || key[1] !== FAMILY_LOG) {
    throw new LogStoreError('CORRUPT', `not an entry key: ${Buffer.from(key).toString('hex')}`);
  }
  return { groupId: readU64(key, 2), index: readU64(key, 10) };
}
