/**
 * HashKV: a crc32c (Castagnoli, as etcd) over the MVCC history a replica
 * keeps up to a revision, so replicas can be compared. Node 20's zlib has no
 * crc32, so the table-driven crc32c is implemented here.
 *
 * Input, for each data entry in engine order (user key, then newest first)
 * that a finished compaction at the compacted revision C would keep and whose
 * revision is <= R: the engine key without the store prefix, then the
 * version record. Entries a running compaction has not removed yet are
 * skipped by rule, so the hash does not depend on compaction progress.
 */
import type { EngineReader } from '../../storage/engine.js';
import { Family, type KeyCodec } from './keys.js';
import { isTombstoneRecord } from './value.js';

const CRC32C_TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** Extends a crc32c with `data` (start with 0). */
export function crc32c(crc: number, data: Uint8Array): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = (CRC32C_TABLE[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return ~c >>> 0;
}

/** The HashKV value of the data up to `revision` with compacted revision `compacted`. */
export async function hashHistory(
  reader: EngineReader,
  codec: KeyCodec,
  revision: number,
  compacted: number,
): Promise<number> {
  let crc = 0;
  let current: Buffer | null = null;
  let pastCompacted = false;
  for await (const e of reader.iterate({ gte: codec.familyStart(Family.Data), lt: codec.familyEnd(Family.Data) })) {
    const parts = codec.parseDataKey(e.key);
    if (current === null || !parts.keySegment.equals(current)) {
      current = Buffer.from(parts.keySegment);
      pastCompacted = false;
    }
    if (parts.revision > revision || pastCompacted) continue;
    if (parts.revision <= compacted) {
      // Only the newest version <= C survives compaction, and only if live or exactly at C.
      pastCompacted = true;
      if (isTombstoneRecord(e.value) && parts.revision < compacted) continue;
    }
    crc = crc32c(crc, e.key.subarray(codec.prefix.length));
    crc = crc32c(crc, e.value);
  }
  return crc;
}
