/**
 * Reading the newest version of keys at a revision straight from the engine,
 * with no in-memory index. See keys.ts for why one seek finds a key's newest
 * version at or before a revision, and live-index.ts for the Live family a
 * span is read from when it can be.
 */
import type { EngineReader } from '../../storage/engine.js';
import { Family, type KeyCodec } from './keys.js';
import { type LatestCache, type LatestMeta, metaOf } from './latest-cache.js';
import { decodeLiveValue } from './value.js';
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

/** What a scan may use besides the engine (every field optional). */
export interface ScanOptions {
  /** The store's cache of newest versions (only with the store's own engine as reader). */
  readonly cache?: LatestCache | undefined;
  /**
   * How many keys the caller expects to take (a page), passed to the engine
   * as its first batch size (IterateOptions.sizeHint).
   */
  readonly sizeHint?: number | undefined;
  /**
   * Present when the reader's Live family holds every live key with its
   * newest version (the store's own engine, after open): the scan then reads
   * one entry per key instead of every version.
   */
  readonly live?: LiveView | undefined;
}

/** What a scan of the Live family must know of the store's deletes (recent-deletes.ts). */
export interface LiveView {
  /** True when it is known that no key in `span` was deleted after `revision`. */
  noDeletesAfter(span: KeySpan, revision: number): boolean;
}

/**
 * Keys a Live-family scan finds changed after its read revision, each looked
 * up on its own, before it walks the rest of the span's versions instead (a
 * read far in the past, where most keys have changed since).
 */
export const LIVE_LOOKUPS_BEFORE_VERSION_SCAN_MAX = 32;

/**
 * For each user key in the span (key order), its newest version at or before
 * `revision`; keys with no such version are skipped. Tombstones may be
 * included (the version walk yields them, the Live family has none), so
 * callers skip them. Memory is O(1): one engine iterator at a time (and one
 * point lookup at a time).
 */
export function scanLatest(
  reader: EngineReader,
  codec: KeyCodec,
  span: KeySpan,
  revision: number,
  options: ScanOptions = {},
): AsyncGenerator<LatestEntry> {
  // The chosen scan itself, not a generator around it: every key of a list passes through
  // each generator level, one promise per level and key. Choosing the Live family before
  // the first key is asked for is safe: scanLive checks again once its engine view is taken.
  if (span.kind === 'empty') return noEntries();
  if (span.kind === 'single') return singleEntry(reader, codec, span.key, revision, options.cache);
  if (options.live !== undefined && options.live.noDeletesAfter(span, revision)) {
    return scanLive(reader, codec, span, revision, options.live, options.sizeHint);
  }
  return scanVersions(reader, codec, span, revision, options.sizeHint);
}

async function* noEntries(): AsyncGenerator<LatestEntry> {}

async function* singleEntry(reader: EngineReader, codec: KeyCodec, key: Uint8Array, revision: number, cache: LatestCache | undefined): AsyncGenerator<LatestEntry> {
  const e = await getLatest(reader, codec, key, revision, cache);
  if (e !== undefined) yield e;
}

/**
 * The Live family holds each live key's newest version: a key whose newest
 * version is at or before `revision` is read as it stands, a key changed
 * since is looked up at `revision` in the Data family. Keys deleted after
 * `revision` are not in the family; the caller has checked there are none
 * in the span, and the check is repeated once the engine view is taken.
 */
async function* scanLive(
  reader: EngineReader,
  codec: KeyCodec,
  span: Extract<KeySpan, { kind: 'span' }>,
  revision: number,
  live: LiveView,
  sizeHint: number | undefined,
): AsyncGenerator<LatestEntry> {
  const upper = span.end === null ? codec.familyEnd(Family.Live) : codec.liveKey(span.end);
  const hint = sizeHint === undefined || sizeHint <= 0 ? {} : { sizeHint };
  const iterator = reader.iterate({ gte: codec.liveKey(span.start), lt: upper, ...hint });
  /** Where the version walk takes over, if it does. */
  let resume: Extract<KeySpan, { kind: 'span' }> | undefined;
  let yielded = 0;
  try {
    let step = await iterator.next();
    // The engine view is taken now. A delete it reflects was recorded before
    // its write (RecentDeletes.record), so this check sees it too.
    if (!live.noDeletesAfter(span, revision)) {
      resume = span;
    } else {
      let lookups = 0;
      for (; step.done !== true; step = await iterator.next()) {
        const keySegment = codec.segmentOfLiveKey(step.value.key);
        const newest = decodeLiveValue(step.value.value);
        if (newest.revision <= revision) {
          yielded++;
          yield { keySegment, revision: newest.revision, record: newest.record };
          continue;
        }
        const userKey = codec.userKeyOfSegment(keySegment);
        if (++lookups > LIVE_LOOKUPS_BEFORE_VERSION_SCAN_MAX) {
          resume = { kind: 'span', start: userKey, end: span.end };
          break;
        }
        const older = await getLatest(reader, codec, userKey, revision);
        if (older !== undefined) {
          yielded++;
          yield older;
        }
      }
    }
  } finally {
    await iterator.return?.();
  }
  if (resume !== undefined) yield* scanVersions(reader, codec, resume, revision, sizeHint === undefined ? undefined : sizeHint - yielded);
}

/** scanLatest over the Data family: every version of every key in the span, newest first per key. */
async function* scanVersions(
  reader: EngineReader,
  codec: KeyCodec,
  span: Extract<KeySpan, { kind: 'span' }>,
  revision: number,
  sizeHint: number | undefined,
): AsyncGenerator<LatestEntry> {
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
