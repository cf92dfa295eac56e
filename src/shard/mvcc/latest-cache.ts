/**
 * An in-memory cache of the newest version of recently used keys at the
 * store's current revision, so a write's plan and a current-revision read
 * of a hot key need no engine seek (etcd keeps its whole key index in
 * memory; this keeps a bounded working set instead).
 *
 * Two tiers, each a byte-bounded LRU: whole entries (record and value),
 * and behind them the metadata of keys whose entry left the first tier
 * (mod and create revision, version, lease). A put that asks for neither
 * its previous value nor `ignore_value` needs only the metadata, and at
 * about 150 bytes per short key the second tier holds several times as many
 * keys as the first once values are a few hundred bytes long.
 *
 * Exactness: an entry is only ever looked up or filled for a read at the
 * revision the cache is current at. Writes update it in the same step
 * that moves the store's current revision (commit), so a read that began
 * before a commit can neither see the commit's entries nor fill the cache
 * with what it read before them. A deleted key may be cached as its
 * tombstone or as absent: every reader treats both as "no live key". A key
 * is in at most one tier; an entry leaving the first tier is demoted with
 * its metadata, exact at the current revision like the entry itself.
 *
 * Misses consult the store's key filter (key-filter.ts): a key that never
 * had a version (every put of a new key) is answered without a seek.
 */
import type { KeyFilter } from './key-filter.js';
import type { LatestEntry } from './scan.js';
import { decodeRecordHeader } from './value.js';

/** Default bound on cached bytes per store (whole entries). */
export const LATEST_CACHE_BYTES_MAX = 16 * 1024 * 1024;
/** Default bound on the bytes of key metadata per store (about 110,000 short keys). */
export const LATEST_META_BYTES_MAX = 16 * 1024 * 1024;
/** Fixed bytes charged per cached key besides its key and record. */
const ENTRY_OVERHEAD_BYTES = 96;
/** Bytes charged for a metadata record (three numbers and a bigint) besides the entry overhead and key. */
const META_RECORD_BYTES = 32;

/** What a write needs of a key's newest live version: everything but the value. */
export interface LatestMeta {
  readonly modRevision: number;
  readonly createRevision: number;
  readonly version: number;
  readonly lease: bigint;
}

/** The metadata of a newest entry; null when there is no live key (absent or a tombstone). */
export function metaOf(entry: LatestEntry | null | undefined): LatestMeta | null {
  if (entry === null || entry === undefined) return null;
  const r = decodeRecordHeader(entry.record);
  if (r === null) return null;
  return { modRevision: entry.revision, createRevision: r.createRevision, version: r.version, lease: r.lease };
}

/** Newest versions of recently used keys, least recently used evicted first. */
export class LatestCache {
  /**
   * keySegment (latin1) → the key's slot, in exactly one tier's list. One
   * table for both tiers: a lookup is one `Map` get, and moving a key
   * between tiers or to the most recently used end only relinks its slot.
   */
  private readonly slots = new Map<string, Slot>();
  /** Whole entries, least recently used first. */
  private readonly first: SlotList;
  /** Metadata of keys not in `first`, least recently used first. */
  private readonly second: SlotList;
  private hitCount = 0;
  private metaHitCount = 0;
  private missCount = 0;
  private absentCount = 0;

  /**
   * @param revision the store's current revision when the cache is created
   * @param bytesMax bound on the bytes of whole entries (0 disables that tier)
   * @param filter the store's key filter: a key it has never seen has no
   *   version, so lookups of uncached keys answer "no version" from it; every
   *   committed write is added to it
   * @param metaBytesMax bound on the bytes of the metadata tier (0 disables it)
   */
  constructor(
    private revision: number,
    bytesMax: number = LATEST_CACHE_BYTES_MAX,
    private readonly filter?: KeyFilter,
    metaBytesMax: number = LATEST_META_BYTES_MAX,
  ) {
    this.first = new SlotList(bytesMax);
    this.second = new SlotList(metaBytesMax);
  }

  /** The revision the cached entries are newest at. */
  get currentRevision(): number {
    return this.revision;
  }

  /**
   * Lookups answered from whole entries, from the metadata tier, "no
   * version" by the key filter, and not answered; what each tier holds.
   */
  get stats(): LatestCacheStats {
    return {
      hits: this.hitCount,
      metaHits: this.metaHitCount,
      absent: this.absentCount,
      misses: this.missCount,
      keys: this.first.size,
      bytes: this.first.bytes,
      metaKeys: this.second.size,
      metaBytes: this.second.bytes,
    };
  }

  /**
   * The newest entry of `segment` at `revision`: an entry, null for "no
   * version", or undefined when not cached (or `revision` is not current).
   */
  lookup(segment: Buffer, revision: number): LatestEntry | null | undefined {
    if (revision !== this.revision) return undefined;
    const slot = this.slotOf(segment);
    return slot?.entry !== undefined ? slot.entry : this.fromFilter(segment);
  }

  /**
   * The metadata of the newest version of `segment` at `revision`: from
   * either tier, null for "no live key", or undefined when not cached (or
   * `revision` is not current).
   */
  lookupMeta(segment: Buffer, revision: number): LatestMeta | null | undefined {
    if (revision !== this.revision) return undefined;
    const slot = this.slotOf(segment);
    if (slot === undefined) return this.fromFilter(segment);
    if (slot.entry !== undefined) return metaOf(slot.entry);
    this.metaHitCount++;
    this.second.touch(slot);
    return slot.meta;
  }

  /**
   * Whether `lookup` (`valueNeeded`) or `lookupMeta` would answer for
   * `segment` at `revision` without the engine; counts nothing and moves no
   * key (a prefetch asks before deciding what to read).
   */
  holds(segment: Buffer, revision: number, valueNeeded: boolean): boolean {
    if (revision !== this.revision) return false;
    const slot = this.slots.get(segment.toString('latin1'));
    if (slot !== undefined) return slot.entry !== undefined || !valueNeeded;
    return this.filter?.absent(segment) === true;
  }

  /** Records what a read at `revision` found for `segment`, if `revision` is still current. */
  fill(segment: Buffer, entry: LatestEntry | null, revision: number): void {
    if (revision !== this.revision) return;
    this.set(segment.toString('latin1'), entry);
  }

  /** A write committed at `revision` made `written` the newest versions of their keys. */
  commit(revision: number, written: readonly LatestEntry[]): void {
    this.revision = revision;
    for (const e of written) {
      this.filter?.add(e.keySegment);
      this.set(e.keySegment.toString('latin1'), e);
    }
  }

  /** Forgets everything (the store's data was replaced). */
  clear(revision: number): void {
    this.slots.clear();
    this.first.clear();
    this.second.clear();
    this.revision = revision;
  }

  /** The slot of `segment`, if any; one in the first tier counts as a hit and becomes the most recently used. */
  private slotOf(segment: Buffer): Slot | undefined {
    const slot = this.slots.get(segment.toString('latin1'));
    if (slot?.entry !== undefined) {
      this.hitCount++;
      this.first.touch(slot);
    }
    return slot;
  }

  /** "No version" when the key filter has never seen `segment`; a counted miss otherwise. */
  private fromFilter(segment: Buffer): null | undefined {
    if (this.filter?.absent(segment) === true) {
      this.absentCount++;
      return null;
    }
    this.missCount++;
    return undefined;
  }

  /** Makes `entry` the newest version of `id`, in the first tier if it fits there, else as metadata. */
  private set(id: string, entry: LatestEntry | null): void {
    let slot = this.slots.get(id);
    if (slot === undefined) {
      slot = { id, entry: undefined, meta: null, charge: 0, prev: undefined, next: undefined };
      this.slots.set(id, slot);
    } else {
      this.listOf(slot).unlink(slot);
    }
    const charge = entryBytes(id, entry);
    // An entry too large for the first tier (or with that tier off) keeps its metadata.
    if (charge > this.first.bytesMax) return this.keepMeta(slot, entry);
    slot.entry = entry;
    slot.meta = null;
    slot.charge = charge;
    this.first.append(slot);
    for (let old = this.first.overflow(); old !== undefined; old = this.first.overflow()) this.keepMeta(old, old.entry ?? null);
  }

  /**
   * Moves `slot` (in the table, in no list) to the second tier with the
   * metadata of `entry`, evicting that tier's least recently used beyond its
   * bound; or forgets it, if the metadata cannot be held. A record that does not
   * decode (a damaged engine value read by a fill) is forgotten too: its
   * readers meet it in the engine, not in an unrelated commit that evicted it.
   */
  private keepMeta(slot: Slot, entry: LatestEntry | null): void {
    let meta: LatestMeta | null;
    try {
      meta = metaOf(entry);
    } catch {
      this.slots.delete(slot.id);
      return;
    }
    const charge = metaBytes(slot.id);
    if (charge > this.second.bytesMax) {
      this.slots.delete(slot.id);
      return;
    }
    slot.entry = undefined;
    slot.meta = meta;
    slot.charge = charge;
    this.second.append(slot);
    for (let old = this.second.overflow(); old !== undefined; old = this.second.overflow()) this.slots.delete(old.id);
  }

  private listOf(slot: Slot): SlotList {
    return slot.entry !== undefined ? this.first : this.second;
  }
}

/** See {@link LatestCache.stats}. */
export interface LatestCacheStats {
  readonly hits: number;
  readonly metaHits: number;
  readonly absent: number;
  readonly misses: number;
  readonly keys: number;
  readonly bytes: number;
  readonly metaKeys: number;
  readonly metaBytes: number;
}

/** One cached key: a whole entry (first tier) or its metadata (second tier). */
interface Slot {
  readonly id: string;
  /** The newest entry while in the first tier; undefined in the second. */
  entry: LatestEntry | null | undefined;
  /** The metadata while in the second tier. */
  meta: LatestMeta | null;
  /** Bytes charged to the slot's tier. */
  charge: number;
  prev: Slot | undefined;
  next: Slot | undefined;
}

/** A doubly linked list of slots in least-recently-used order, with the bytes they are charged. */
class SlotList {
  private head: Slot | undefined;
  private tail: Slot | undefined;
  size = 0;
  bytes = 0;

  constructor(readonly bytesMax: number) {}

  /** Adds `slot` (in no list) as the most recently used. */
  append(slot: Slot): void {
    slot.prev = this.tail;
    slot.next = undefined;
    if (this.tail === undefined) this.head = slot;
    else this.tail.next = slot;
    this.tail = slot;
    this.size++;
    this.bytes += slot.charge;
  }

  unlink(slot: Slot): void {
    if (slot.prev === undefined) this.head = slot.next;
    else slot.prev.next = slot.next;
    if (slot.next === undefined) this.tail = slot.prev;
    else slot.next.prev = slot.prev;
    slot.prev = undefined;
    slot.next = undefined;
    this.size--;
    this.bytes -= slot.charge;
  }

  /** Makes `slot` (in this list) the most recently used. */
  touch(slot: Slot): void {
    if (this.tail === slot) return;
    this.unlink(slot);
    this.append(slot);
  }

  /** Unlinks and returns the least recently used slot while the list is over its bound. */
  overflow(): Slot | undefined {
    if (this.bytes <= this.bytesMax || this.head === undefined) return undefined;
    const slot = this.head;
    this.unlink(slot);
    return slot;
  }

  clear(): void {
    this.head = undefined;
    this.tail = undefined;
    this.size = 0;
    this.bytes = 0;
  }
}

function entryBytes(id: string, e: LatestEntry | null): number {
  return ENTRY_OVERHEAD_BYTES + 2 * id.length + (e === null ? 0 : e.record.length);
}

function metaBytes(id: string): number {
  return ENTRY_OVERHEAD_BYTES + 2 * id.length + META_RECORD_BYTES;
}
