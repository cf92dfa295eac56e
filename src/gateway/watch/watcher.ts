/**
 * One watcher's state and the pure rules of an etcd watch stream (no I/O):
 * how a WatchCreateRequest's key span and start revision are read, how
 * watch IDs are handed out, which events a watcher wants, the bounded
 * buffer of responses waiting for the client, and how a large response is
 * cut into fragments. The hub (hub.ts) and the stream (stream.ts) drive it.
 */
import type { MvccEvent } from '../../shard/mvcc/index.js';
import { resolveSpan, spanContains, type KeySpan } from '../../shard/mvcc/span.js';
import { ETCD_RAW_MESSAGES } from '../errors.js';
import { WatchFilterType, type WatchCreateRequest } from '../messages.js';

/** etcd's AutoWatchID: a create with watch_id 0 asks the server to choose. */
export const AUTO_WATCH_ID = 0;
/** The watch_id of replies that belong to no watcher (failed creates, stream-wide progress). */
export const INVALID_WATCH_ID = -1;

/** Events a watcher may hold unsent before it falls back to reading history ("unsynced"). */
export const WATCHER_BUFFER_EVENTS_MAX = 1000;
/** Key and value bytes a watcher may hold unsent, with the same rule. */
export const WATCHER_BUFFER_BYTES_MAX = 4 * 1024 * 1024;

/** A watch create, normalised as etcd's watch server does before it registers the watcher. */
export interface WatchSpec {
  /** The key, "\0" when the request's key was empty (etcd: the smallest key). */
  readonly key: Buffer;
  /** Empty: the single key; "\0": every key from `key`; else the exclusive end. */
  readonly rangeEnd: Buffer;
  readonly span: KeySpan;
  readonly noPut: boolean;
  readonly noDelete: boolean;
  readonly prevKv: boolean;
  readonly fragment: boolean;
  readonly progressNotify: boolean;
}

/**
 * Reads a create request as etcd does: an empty key is "\0", range_end "\0"
 * means "from key", a range_end at or below the key is refused with the
 * cancel reason etcd puts in the created+canceled reply. Unknown filter
 * values are ignored, as etcd's FiltersFromRequest does.
 */
export function watchSpecOf(r: WatchCreateRequest): WatchSpec | { readonly cancelReason: string } {
  const key = r.key.length === 0 ? Buffer.from([0]) : Buffer.from(r.key);
  const rangeEnd = Buffer.from(r.range_end);
  const fromKey = rangeEnd.length === 1 && rangeEnd[0] === 0;
  if (rangeEnd.length > 0 && !fromKey && Buffer.compare(key, rangeEnd) >= 0) {
    return { cancelReason: ETCD_RAW_MESSAGES.WATCHER_RANGE_EMPTY };
  }
  return {
    key,
    rangeEnd,
    span: resolveSpan(key, rangeEnd),
    noPut: r.filters.includes(WatchFilterType.NOPUT),
    noDelete: r.filters.includes(WatchFilterType.NODELETE),
    prevKv: r.prev_kv,
    fragment: r.fragment,
    progressNotify: r.progress_notify,
  };
}

/** The events of `events` that a watcher with `spec` receives, in order, prev_kv stripped unless asked. */
export function eventsFor(spec: WatchSpec, events: readonly MvccEvent[]): MvccEvent[] {
  const out: MvccEvent[] = [];
  for (const e of events) {
    if (e.type === 'PUT' ? spec.noPut : spec.noDelete) continue;
    if (!spanContains(spec.span, e.kv.key)) continue;
    out.push(spec.prevKv || e.prevKv === undefined ? e : { type: e.type, kv: e.kv });
  }
  return out;
}

/**
 * The per-stream watch ID rules of etcd 3.4 (mvcc/watcher.go): a
 * client-chosen ID must not be in use; an automatic one is the next
 * counter value not in use, counting from 0.
 */
export class WatchIds {
  private next = 0;
  private readonly used = new Set<number>();

  /** Claims `requested` (or an automatic ID); undefined when a chosen ID is already in use. */
  claim(requested: number): number | undefined {
    if (requested !== AUTO_WATCH_ID) {
      if (this.used.has(requested)) return undefined;
      this.used.add(requested);
      return requested;
    }
    while (this.used.has(this.next)) this.next++;
    const id = this.next++;
    this.used.add(id);
    return id;
  }

  /** Frees `id`; false when it was not in use. */
  release(id: number): boolean {
    return this.used.delete(id);
  }

  /** IDs in use. */
  get size(): number {
    return this.used.size;
  }
}

/** One response waiting in a watcher's buffer. */
export type WatcherItem =
  /** Events, all of whole revisions; `revision` is what the watcher is synced to once they are sent. */
  | { readonly kind: 'events'; readonly events: MvccEvent[]; readonly revision: number }
  /** A progress notification at `revision` (progress_notify). */
  | { readonly kind: 'progress'; readonly revision: number }
  /** The watcher's next revision was compacted: the last reply, canceled with compact_revision. */
  | { readonly kind: 'compacted'; readonly compactRevision: number };

/** Bytes an event costs in a buffer: key and value bytes, as the change history's page bound counts them. */
export function eventBytes(e: MvccEvent): number {
  return e.kv.key.length + e.kv.value.length + (e.prevKv?.value.length ?? 0);
}

function itemBytes(events: readonly MvccEvent[]): number {
  let n = 0;
  for (const e of events) n += eventBytes(e);
  return n;
}

/**
 * A watcher's responses not yet handed to the transport, bounded by events
 * and bytes. An empty buffer always takes one item, however large (one
 * revision is never split, so it must fit somewhere); a non-empty one only
 * what fits under both bounds.
 */
export class WatcherBuffer {
  private readonly items: WatcherItem[] = [];
  private eventCount = 0;
  private byteCount = 0;

  constructor(
    readonly eventsMax: number = WATCHER_BUFFER_EVENTS_MAX,
    readonly bytesMax: number = WATCHER_BUFFER_BYTES_MAX,
  ) {
    if (!(eventsMax >= 1 && bytesMax >= 1)) throw new RangeError('watcher buffer bounds must be >= 1');
  }

  /** Whether `events` more events of `bytes` bytes fit. */
  fits(events: number, bytes: number): boolean {
    if (this.items.length === 0) return true;
    return this.eventCount + events <= this.eventsMax && this.byteCount + bytes <= this.bytesMax;
  }

  /** Room left, for sizing a history read (at least 1 event and 1 byte: a read returns at least one revision). */
  room(): { events: number; bytes: number } {
    return { events: Math.max(1, this.eventsMax - this.eventCount), bytes: Math.max(1, this.bytesMax - this.byteCount) };
  }

  /** Appends an item; the caller has checked {@link fits} for event items. */
  push(item: WatcherItem): void {
    this.items.push(item);
    if (item.kind === 'events') {
      this.eventCount += item.events.length;
      this.byteCount += itemBytes(item.events);
    }
  }

  /** Removes and returns the oldest item. */
  shift(): WatcherItem | undefined {
    const item = this.items.shift();
    if (item?.kind === 'events') {
      this.eventCount -= item.events.length;
      this.byteCount -= itemBytes(item.events);
    }
    return item;
  }

  /**
   * Removes the oldest item; when it holds events, the event items right
   * behind it come along as one item (their revisions in order, `revision`
   * the last one's) while the total stays within `eventsMax` and `bytesMax`.
   * A watcher behind its client then catches up in few large responses
   * instead of one per revision, as etcd batches an unsynced watcher's
   * events; each response costs the transport a write completion, which a
   * busy server reaches only once per loop turn.
   */
  shiftMerged(eventsMax: number, bytesMax: number): WatcherItem | undefined {
    const first = this.shift();
    if (first?.kind !== 'events') return first;
    let merged: MvccEvent[] | undefined;
    let count = first.events.length;
    let bytes = itemBytes(first.events);
    let revision = first.revision;
    for (let next = this.items[0]; next?.kind === 'events'; next = this.items[0]) {
      const nextBytes = itemBytes(next.events);
      if (count + next.events.length > eventsMax || bytes + nextBytes > bytesMax) break;
      this.shift();
      merged ??= [...first.events];
      merged.push(...next.events);
      count += next.events.length;
      bytes += nextBytes;
      revision = next.revision;
    }
    return merged === undefined ? first : { kind: 'events', events: merged, revision };
  }

  get isEmpty(): boolean {
    return this.items.length === 0;
  }

  /** Events held. */
  get events(): number {
    return this.eventCount;
  }

  /** Drops everything (the watcher is gone). */
  clear(): void {
    this.items.length = 0;
    this.eventCount = 0;
    this.byteCount = 0;
  }
}

/**
 * How etcd's sendFragments cuts a response of events with encoded sizes
 * `sizes` (bytes each, plus `baseBytes` for the rest of the response) when
 * the limit is `limitBytes`: unchanged (one chunk) if it is smaller than the
 * limit or holds fewer than two events; otherwise consecutive chunks, each
 * holding at least one event and, past the first, only events that keep it
 * below the limit. Returns the chunk lengths in events.
 */
export function fragmentLengths(sizes: readonly number[], baseBytes: number, limitBytes: number): number[] {
  const total = sizes.reduce((a, s) => a + s, baseBytes);
  if (total < limitBytes || sizes.length < 2) return [sizes.length];
  const out: number[] = [];
  let count = 0;
  let bytes = baseBytes;
  for (const s of sizes) {
    if (count > 0 && bytes + s >= limitBytes) {
      out.push(count);
      count = 0;
      bytes = baseBytes;
    }
    count++;
    bytes += s;
  }
  out.push(count);
  return out;
}

/**
 * etcd's monitorLeader rule for open streams that require a leader: the
 * stream is closed with "no leader" once the node has seen no leader at
 * `checksMax` consecutive checks (one per election timeout).
 */
export class LeaderLossCounter {
  private misses = 0;

  constructor(readonly checksMax: number = 3) {}

  /** Records one check; true when the stream must be closed. */
  check(hasLeader: boolean): boolean {
    this.misses = hasLeader ? 0 : this.misses + 1;
    return this.misses >= this.checksMax;
  }
}
