/**
 * Reading the newest version of keys at a revision straight from the engine,
 * with no in-memory index. See keys.ts for why one seek finds a key's newest
 * version at or before a revision.
 */
import type { EngineReader } from '../../storage/engine.js';
import { Family, type KeyCodec } from './keys.js';
import { type LatestCache, type LatestMeta, metaOf } from './latest-cache.js';
import type { KeySpan } from './span.js';

/** The newest version at or before the read revision of one user key. */
export interface LatestEntry {
  /** esc(userKey) | terminator (see KeyCodec.keySegment). */
  readonly keySegment: Buffer;
  readonly revision: number;
  /** The encoded version record (value.ts); may be a tombstone. */
  readonly record: Buffer;
}

/**
 * How many superseded entries a scan steps over before it re-seeks instead.
 * Stepping is cheaper than a seek for a few versions; a seek wins for keys
 * with long histories.
 */
export const SKIPPED_ENTRIES_BEFORE_SEEK_MAX = 8;

/** The newest version of `userKey` at or before `revision`, tombstones included. */
export async function getLatest(
  reader: EngineReader,
  codec: KeyCodec,
  userKey: Uint8Array,
  revision: number,
  cache?: LatestCache,
): Promise<LatestEntry | undefined> {
  if (cache !== undefined) {
    // Only for the store's own engine: a snapshot reader may be older than the cache.
    const segment = codec.keySegment(userKey);
    const hit = cache.lookup(segment, revision);
    if (hit !== undefined) return hit ?? undefined;
    const e = await getLatest(reader, codec, userKey, revision);
    cache.fill(segment, e ?? null, revision);
    return e;
  }
  for await (const e of reader.iterate({
    gte: codec.dataKey(userKey, revision),
    lt: codec.dataKeyCeiling(userKey),
    limit: 1,
  })) {
    const parts = codec.parseDataKey(e.key);
    return { keySegment: parts.keySegment, revision: parts.revision, record: e.value };
  }
  return undefined;
}

/**
 * What a write that needs no previous value must know of `userKey`'s newest
 * version at `revision`: its metadata, or null when there is no live key.
 * The cache answers from either tier; otherwise one seek, whose entry then
 * fills the cache.
 */
export async function getLatestMeta(
  reader: EngineReader,
  codec: KeyCodec,
  userKey: Uint8Array,
  revision: number,
  cache?: LatestCache,
): Promise<LatestMeta | null> {
  if (cache === undefined) return metaOf(await getLatest(reader, codec, userKey, revision));
  const segment = codec.keySegment(userKey);
  const hit = cache.lookupMeta(segment, revision);
  if (hit !== undefined) return hit;
  const e = await getLatest(reader, codec, userKey, revision);
  cache.fill(segment, e ?? null, revision);
  return metaOf(e);
}

/**
 * For each user key in the span (key order), its newest version at or before
 * `revision`, tombstones included; keys with no such version are skipped.
 * Memory is O(1): one engine iterator at a time. `sizeHint`: how many keys
 * the caller expects to take (a page), passed to the engine as its first
 * batch size (IterateOptions.sizeHint).
 */
export async function* scanLatest(
  reader: EngineReader,
  codec: KeyCodec,
  span: KeySpan,
  revision: number,
  cache?: LatestCache,
  sizeHint?: number,
): AsyncGenerator<LatestEntry> {
  if (span.kind === 'empty') return;
  if (span.kind === 'single') {
    const e = await getLatest(reader, codec, span.key, revision, cache);
    if (e !== undefined) yield e;
    return;
  }
  let lower = codec.dataKeyFloor(span.start);
  const upper = span.end === null ? codec.familyEnd(Family.Data) : codec.dataKeyFloor(span.end);
  let yielded = 0;
  for (;;) {
    let current: Buffer | null = null;
    let resolved = false;
    let skipped = 0;
    let reseek: Buffer | null = null;
    const hint = sizeHint === undefined ? undefined : sizeHint - yielded;
    for await (const e of reader.iterate({ gte: lower, lt: upper, ...(hint === undefined || hint <= 0 ? {} : { sizeHint: hint }) })) {
      const parts = codec.parseDataKey(e.key);
      if (current === null || !parts.keySegment.equals(current)) {
        current = parts.keySegment;
        resolved = false;
        skipped = 0;
      }
      if (resolved || parts.revision > revision) {
        if (++skipped > SKIPPED_ENTRIES_BEFORE_SEEK_MAX) {
          // Jump past the rest of this key, or to its newest version <= revision.
          reseek = resolved ? codec.ceilingOfSegment(current) : codec.dataKeyOfSegment(current, revision);
          break;
        }
        continue;
      }
      resolved = true;
      yielded++;
      yield { keySegment: parts.keySegment, revision: parts.revision, record: e.value };
    }
    if (reseek === null) return;
    lower = reseek;
  }
}

/**
 * Merges a scan with a txn's own earlier writes (sorted by key segment), the
 * writes winning on equal keys: reads inside a txn see its earlier writes.
 */
export async function* mergeOverlay(
  base: AsyncIterable<LatestEntry>,
  overlay: readonly LatestEntry[],
): AsyncGenerator<LatestEntry> {
  let i = 0;
  for await (const e of base) {
    while (i < overlay.length && Buffer.compare((overlay[i] as LatestEntry).keySegment, e.keySegment) < 0) {
      yield overlay[i++] as LatestEntry;
    }
    const o = overlay[i];
    if (o !== undefined && o.keySegment.equals(e.keySegment)) {
      i++;
      yield o;
    } else {
      yield e;
    }
  }
  while (i < overlay.length) yield overlay[i++] as LatestEntry;
}
