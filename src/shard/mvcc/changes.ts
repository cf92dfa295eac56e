/**
 * The change stream watchers read history from. Every write also records
 * `prefix | 0x03 | rev | userKey` (keys.ts), so the events of revisions
 * [start, end] are one forward scan of that family, already in revision
 * order and, within a revision, in key order; each event then costs one
 * point read (its version) and, with prev_kv, one seek (the version before).
 * Revisions the store still holds in memory (recent-changes.ts) are read
 * from there instead, with the same pages.
 */
import type { EngineReader } from '../../storage/engine.js';
import { CompactedError } from './errors.js';
import type { KeyCodec } from './keys.js';
import type { RecentChanges } from './recent-changes.js';
import { getLatest } from './scan.js';
import { type KeySpan, resolveSpan, spanContains } from './span.js';
import type { ChangesPage, ChangesRequest, KeyValue, MvccEvent } from './types.js';
import { decodeRecord, deletedKeyValue, toKeyValue } from './value.js';

/** Default page bound on events. */
export const CHANGES_PAGE_EVENTS_MAX = 1000;
/** Default page bound on key + value bytes. */
export const CHANGES_PAGE_BYTES_MAX = 4 * 1024 * 1024;
/**
 * Events whose versions are read concurrently at most (whole revisions, so
 * a wave may hold more); the byte bound is checked between waves.
 */
export const CHANGES_READ_WAVE_MAX = 64;

/** What one page of a change read is bounded by, after the request is resolved. */
interface PageQuery {
  readonly start: number;
  readonly end: number;
  readonly withPrev: boolean;
  readonly compacted: number;
  readonly eventsMax: number;
  readonly bytesMax: number;
}

/** The event of `key`'s version at `revision` (a DELETE for a tombstone). */
function eventOf(key: Buffer, revision: number, record: Buffer): { event: MvccEvent; kv: KeyValue | null } {
  const kv = toKeyValue(key, revision, record);
  return { event: kv === null ? { type: 'DELETE', kv: deletedKeyValue(key, revision) } : { type: 'PUT', kv }, kv };
}

/** The bytes an event counts towards a page's byte bound. */
function eventBytes(event: MvccEvent): number {
  return event.kv.key.length + event.kv.value.length + (event.prevKv?.value.length ?? 0);
}

/**
 * Reads one page of events. `reader` must be a snapshot taken no earlier
 * than the moment `current`/`compacted` were read, so history below the
 * compacted revision is never needed; `recent`, the store's changes held in
 * memory, serves the page when it holds every revision from the start on.
 */
export async function readChanges(
  reader: EngineReader,
  codec: KeyCodec,
  req: ChangesRequest,
  current: number,
  compacted: number,
  recent?: RecentChanges,
): Promise<ChangesPage> {
  const span = resolveSpan(req.key, req.rangeEnd);
  const start = Math.max(req.startRevision, 1);
  if (start < compacted) throw new CompactedError(compacted);
  const end = Math.min(req.endRevision ?? current, current);
  if (start > end) return { events: [], nextRevision: start, done: true };
  const eventsMax = req.maxEvents ?? CHANGES_PAGE_EVENTS_MAX;
  const bytesMax = req.maxBytes ?? CHANGES_PAGE_BYTES_MAX;
  const query: PageQuery = { start, end, withPrev: req.prevKv === true, compacted, eventsMax, bytesMax };
  if (recent !== undefined && recent.holdsFrom(start)) return readRecentChanges(reader, codec, recent, span, query);
  if (span.kind === 'single') return readKeyChanges(reader, codec, span.key, query);

  const events: MvccEvent[] = [];
  let bytes = 0;
  let lastRevision = -1;
  // Events are read a wave at a time, all of a wave's point reads in flight at
  // once: one after another, each would wait its own turn in the engine's
  // I/O queue, which under load is most of a watcher's delivery latency.
  let wave: Array<{ userKey: Buffer; revision: number }> = [];
  /** The revision of the last event read. */
  let lastRead = -1;
  /** Reads the wave; returns the revision to stop at if the byte bound ends the page inside it. */
  const readWave = async (): Promise<number | undefined> => {
    const read = await Promise.all(wave.map((w) => readEvent(reader, codec, w.userKey, w.revision, req.prevKv === true, compacted)));
    const revisions = wave.map((w) => w.revision);
    wave = [];
    for (let i = 0; i < read.length; i++) {
      const revision = revisions[i] as number;
      // Pages end between revisions only: a revision's events stay together.
      if (events.length > 0 && revision !== lastRead && bytes >= bytesMax) return revision;
      const event = read[i] as MvccEvent;
      events.push(event);
      bytes += eventBytes(event);
      lastRead = revision;
    }
    return undefined;
  };
  for await (const e of reader.iterate({ gte: codec.revIndexStart(start), lt: codec.revIndexStart(end + 1) })) {
    const { revision, userKey } = codec.parseRevIndexKey(e.key);
    if (!spanContains(span, userKey)) continue;
    if (revision !== lastRevision) {
      if (wave.length >= CHANGES_READ_WAVE_MAX || events.length + wave.length >= eventsMax) {
        const cut = await readWave();
        if (cut !== undefined) return { events, nextRevision: cut, done: false };
      }
      if (events.length >= eventsMax || bytes >= bytesMax) return { events, nextRevision: revision, done: false };
    }
    lastRevision = revision;
    wave.push({ userKey: Buffer.from(userKey), revision });
  }
  const cut = await readWave();
  if (cut !== undefined) return { events, nextRevision: cut, done: false };
  return { events, nextRevision: end + 1, done: true };
}

/**
 * The events of one key, read from its own versions rather than the revision
 * index: a watch on one key (locks, elections) then costs nothing for the
 * rest of the range's traffic. A reverse scan of the key's data entries
 * yields its versions oldest first; each one's predecessor is the entry
 * before it, so prev_kv costs one extra seek per page, not per event.
 */
async function readKeyChanges(reader: EngineReader, codec: KeyCodec, key: Buffer, query: PageQuery): Promise<ChangesPage> {
  const { start, end, withPrev, compacted, eventsMax, bytesMax } = query;
  const events: MvccEvent[] = [];
  let bytes = 0;
  let prev: KeyValue | undefined | null = null; // null: not known yet
  for await (const e of reader.iterate({ gte: codec.dataKey(key, end), lte: codec.dataKey(key, start), reverse: true })) {
    const revision = codec.parseDataKey(e.key).revision;
    // One event per revision for one key, so any event boundary is a revision boundary.
    if (events.length >= eventsMax || bytes >= bytesMax) return { events, nextRevision: revision, done: false };
    const { kv, event: made } = eventOf(key, revision, e.value);
    let event = made;
    if (withPrev) {
      if (prev === null) prev = await readPrev(reader, codec, key, revision, compacted);
      if (prev !== undefined) event = { ...event, prevKv: prev };
      prev = kv ?? undefined;
    }
    events.push(event);
    bytes += eventBytes(event);
  }
  return { events, nextRevision: end + 1, done: true };
}

/**
 * A page from the changes held in memory: the same events and the same page
 * bounds as the engine's paths (pages end between revisions, once either
 * bound is reached). A previous version that is not held is read from the
 * engine.
 */
async function readRecentChanges(reader: EngineReader, codec: KeyCodec, recent: RecentChanges, span: KeySpan, query: PageQuery): Promise<ChangesPage> {
  const { start, end, withPrev, compacted, eventsMax, bytesMax } = query;
  const held = recent.between(start, end, (key) => spanContains(span, key));
  const events: MvccEvent[] = [];
  let bytes = 0;
  let lastRevision = -1;
  for (const c of held) {
    if (c.revision !== lastRevision && (events.length >= eventsMax || bytes >= bytesMax)) {
      return { events, nextRevision: c.revision, done: false };
    }
    lastRevision = c.revision;
    let event = eventOf(c.key, c.revision, c.record).event;
    if (withPrev) {
      const prev = c.prev;
      let prevKv: KeyValue | undefined;
      if (prev === undefined) prevKv = await readPrev(reader, codec, c.key, c.revision, compacted);
      // As readPrev: at exactly the compacted revision an older version counts as compacted away.
      else if (prev !== null && !(prev.revision < compacted && c.revision <= compacted)) prevKv = toKeyValue(c.key, prev.revision, prev.record) ?? undefined;
      if (prevKv !== undefined) event = { ...event, prevKv };
    }
    events.push(event);
    bytes += eventBytes(event);
  }
  return { events, nextRevision: end + 1, done: true };
}

async function readEvent(
  reader: EngineReader,
  codec: KeyCodec,
  key: Buffer,
  revision: number,
  withPrev: boolean,
  compacted: number,
): Promise<MvccEvent> {
  const record = await reader.get(codec.dataKey(key, revision));
  if (record === undefined) throw new Error(`mvcc: revision index names a missing version (rev ${revision})`);
  const event = eventOf(key, revision, record).event;
  const prevKv = withPrev ? await readPrev(reader, codec, key, revision, compacted) : undefined;
  return prevKv === undefined ? event : { ...event, prevKv };
}

/**
 * The live version just before `revision`. For an event at exactly the
 * compacted revision, an older version is compacted away (even if physical
 * compaction has not reached it yet), so it is omitted, as etcd does.
 */
async function readPrev(
  reader: EngineReader,
  codec: KeyCodec,
  key: Buffer,
  revision: number,
  compacted: number,
): Promise<KeyValue | undefined> {
  const e = await getLatest(reader, codec, key, revision - 1);
  if (e === undefined || (e.revision < compacted && revision <= compacted)) return undefined;
  const r = decodeRecord(e.record);
  return r.tombstone ? undefined : (toKeyValue(key, e.revision, e.record) ?? undefined);
}
