/**
 * The watchers of one range, fed from the local replica's applied history.
 *
 * Watchers are "synced" (they receive each new revision as the hub reads it)
 * or "unsynced" (they read their own span's history in pages, as fast as
 * their client takes it, until they reach the hub's revision and join the
 * synced set). After every applied batch the hub reads the new revisions
 * once, for the whole range, and hands each synced watcher its events; a
 * synced watcher whose buffer is full becomes unsynced instead of growing
 * it, so a slow client costs history reads later, never unbounded memory.
 * An unsynced watcher whose next revision is compacted gets the compacted
 * reply and leaves (etcd's chooseAll). One async pump does all reads, so
 * the hub's state only changes between them.
 */
import { CompactedError, type MvccEvent } from '../../shard/mvcc/index.js';
import type { Replica } from '../../shard/replica/index.js';
import type { WatchMetrics } from './metrics.js';
import { eventBytes, eventsFor, type WatchSpec, type WatcherBuffer } from './watcher.js';

/** Events one read of new revisions returns at most (a revision is never split, so a page may hold more). */
export const HUB_PAGE_EVENTS_MAX = 1000;

/** What the hub needs of a watcher; the stream owns it. */
export interface HubWatcher {
  readonly spec: WatchSpec;
  /** The revision the watch started from (its first possible event). */
  readonly startRevision: number;
  /** The first revision not yet queued for this watcher. */
  nextRevision: number;
  readonly buffer: WatcherBuffer;
  /** The hub queued an item or moved the watcher between synced and unsynced. */
  notify(): void;
  /** The hub cannot serve the watcher any more (its replica failed). */
  fail(err: unknown): void;
}

/** The watchers of one range on one replica. */
export class RangeWatchHub {
  /** History through this revision has been handed to every synced watcher. */
  private hubRevision: number;
  private readonly synced = new Set<HubWatcher>();
  private readonly unsynced = new Set<HubWatcher>();
  /** Synced single-key watchers by key (latin1), the rest in `syncedSpans`: most watches are on one key. */
  private readonly syncedByKey = new Map<string, Set<HubWatcher>>();
  private readonly syncedSpans = new Set<HubWatcher>();
  private pumping = false;
  private again = false;
  private disposed = false;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly replica: Replica,
    private readonly metrics: WatchMetrics,
    /** Called when the last watcher leaves (the owner drops the hub). */
    private readonly onEmpty: () => void,
  ) {
    this.hubRevision = replica.currentRevision;
    this.unsubscribe = replica.onRevision(() => this.kick());
  }

  /** The revision through which every synced watcher has been served. */
  get revision(): number {
    return this.hubRevision;
  }

  /** Whether some watcher reads its own history (room freed in its buffer lets it go on). */
  get hasUnsynced(): boolean {
    return this.unsynced.size > 0;
  }

  /** Watchers on the hub. */
  get size(): number {
    return this.synced.size + this.unsynced.size;
  }

  /** The replica's current revision: what a watch from "now" starts after. */
  get currentRevision(): number {
    return this.replica.currentRevision;
  }

  /**
   * Whether `w` has received everything through the hub's revision and has
   * nothing waiting: a progress reply at {@link revision} is then truthful.
   * A watcher whose start revision the store has not reached is not synced
   * yet (etcd 3.4.25+'s progressIfSync).
   */
  isCaughtUp(w: HubWatcher): boolean {
    return this.synced.has(w) && w.buffer.isEmpty && w.nextRevision <= this.hubRevision + 1 && this.hubRevision >= w.startRevision;
  }

  /**
   * Whether `w` is synced and has nothing waiting: everything through the
   * hub's revision that it wants has been sent (etcd 3.4.23's rule for
   * progress_notify, which also holds for a watcher starting in the future).
   */
  isSynced(w: HubWatcher): boolean {
    return this.synced.has(w) && w.buffer.isEmpty;
  }

  /** Adds a watcher; it starts synced when its start revision is past the hub's revision. */
  add(w: HubWatcher): void {
    if (this.disposed) throw new Error('watch hub used after dispose');
    this.metrics.watchers.inc();
    if (w.nextRevision > this.hubRevision) this.join(w);
    else {
      this.unsynced.add(w);
      this.metrics.slowWatchers.inc();
    }
    this.kick();
  }

  /** Removes a watcher (canceled, or its stream ended). */
  remove(w: HubWatcher): void {
    if (this.synced.has(w)) this.leave(w);
    else if (this.unsynced.delete(w)) this.metrics.slowWatchers.dec();
    else return;
    this.metrics.watchers.dec();
    if (this.size === 0) this.dispose();
  }

  /** New revisions were applied, or a watcher's client took some of its buffer: run the pump. */
  kick(): void {
    if (this.disposed) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    void this.pump();
  }

  private dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.unsubscribe();
    this.onEmpty();
  }

  private async pump(): Promise<void> {
    try {
      for (;;) {
        this.again = false;
        await this.advance();
        const progressed = await this.catchUp();
        if (this.disposed || (!this.again && !progressed)) break;
      }
    } catch (err) {
      // The replica cannot serve reads (closed, replaced): every watcher's stream ends with the error.
      for (const w of [...this.synced, ...this.unsynced]) {
        this.remove(w);
        w.fail(err);
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Reads the revisions applied since {@link hubRevision} once and serves every synced watcher. */
  private async advance(): Promise<void> {
    for (;;) {
      const target = this.replica.currentRevision;
      if (this.disposed || target <= this.hubRevision) return;
      // Revisions below every synced watcher's next one interest nobody: skip them unread.
      let wantedFrom = Number.MAX_SAFE_INTEGER;
      for (const w of this.synced) wantedFrom = Math.min(wantedFrom, w.nextRevision);
      if (wantedFrom > target) {
        this.hubRevision = target;
        return;
      }
      const { key, rangeEnd } = this.span();
      let page;
      try {
        page = await this.replica.changes({
          key,
          rangeEnd,
          startRevision: Math.max(this.hubRevision + 1, wantedFrom),
          endRevision: target,
          prevKv: [...this.synced].some((w) => w.spec.prevKv),
          maxEvents: HUB_PAGE_EVENTS_MAX,
        });
      } catch (err) {
        if (!(err instanceof CompactedError)) throw err;
        // Compacted before the hub read it (the hub fell far behind): those watchers cannot be served gaplessly.
        for (const w of [...this.synced]) this.cancelCompacted(w, err.compactRevision);
        this.hubRevision = target;
        continue;
      }
      if (this.disposed) return;
      for (const [revision, events] of byRevision(page.events)) this.dispatch(revision, events);
      this.hubRevision = page.nextRevision - 1;
      for (const w of this.synced) if (w.nextRevision <= this.hubRevision) w.nextRevision = this.hubRevision + 1;
      for (const w of this.synced) w.notify();
    }
  }

  /** Hands one revision's events to the synced watchers that want them. */
  private dispatch(revision: number, events: readonly MvccEvent[]): void {
    const wanted = new Map<HubWatcher, MvccEvent[]>();
    for (const e of events) {
      const candidates = [...(this.syncedByKey.get(e.kv.key.toString('latin1')) ?? []), ...this.syncedSpans];
      for (const w of candidates) {
        if (w.nextRevision > revision) continue;
        let list = wanted.get(w);
        if (list === undefined) wanted.set(w, (list = []));
        list.push(e);
      }
    }
    for (const [w, list] of wanted) {
      const mine = eventsFor(w.spec, list);
      if (mine.length === 0) continue;
      const bytes = mine.reduce((a, e) => a + eventBytes(e), 0);
      if (!w.buffer.fits(mine.length, bytes)) {
        // The client is behind: stop serving it from here; it reads this revision from history later.
        this.leave(w);
        this.unsynced.add(w);
        this.metrics.slowWatchers.inc();
        w.notify();
        continue;
      }
      w.buffer.push({ kind: 'events', events: mine, revision });
      w.nextRevision = revision + 1;
    }
  }

  /**
   * One page of history for each unsynced watcher with room in its buffer.
   * Returns whether any watcher moved on.
   */
  private async catchUp(): Promise<boolean> {
    let progressed = false;
    for (const w of [...this.unsynced]) {
      if (this.disposed) return progressed;
      if (!this.unsynced.has(w)) continue;
      if (w.nextRevision > this.hubRevision) {
        this.unsynced.delete(w);
        this.metrics.slowWatchers.dec();
        this.join(w);
        w.notify();
        progressed = true;
        continue;
      }
      if (!w.buffer.fits(1, 1)) continue;
      const room = w.buffer.room();
      let page;
      try {
        page = await this.replica.changes({
          key: w.spec.key,
          rangeEnd: w.spec.rangeEnd,
          startRevision: w.nextRevision,
          endRevision: this.hubRevision,
          prevKv: w.spec.prevKv,
          maxEvents: room.events,
          maxBytes: room.bytes,
        });
      } catch (err) {
        if (!(err instanceof CompactedError)) throw err;
        if (this.unsynced.has(w)) this.cancelCompacted(w, err.compactRevision);
        progressed = true;
        continue;
      }
      if (!this.unsynced.has(w)) continue; // removed while reading
      const mine = eventsFor(w.spec, page.events);
      if (mine.length > 0) w.buffer.push({ kind: 'events', events: mine, revision: page.nextRevision - 1 });
      w.nextRevision = page.nextRevision;
      progressed = true;
      if (w.nextRevision > this.hubRevision) {
        this.unsynced.delete(w);
        this.metrics.slowWatchers.dec();
        this.join(w);
      }
      w.notify();
    }
    return progressed;
  }

  /** The watcher's last reply: its next revision is compacted; it leaves the hub. */
  private cancelCompacted(w: HubWatcher, compactRevision: number): void {
    this.remove(w);
    w.buffer.push({ kind: 'compacted', compactRevision });
    w.notify();
  }

  private join(w: HubWatcher): void {
    this.synced.add(w);
    if (w.spec.span.kind === 'single') {
      const k = w.spec.span.key.toString('latin1');
      let set = this.syncedByKey.get(k);
      if (set === undefined) this.syncedByKey.set(k, (set = new Set()));
      set.add(w);
    } else this.syncedSpans.add(w);
  }

  private leave(w: HubWatcher): void {
    this.synced.delete(w);
    if (w.spec.span.kind === 'single') {
      const k = w.spec.span.key.toString('latin1');
      const set = this.syncedByKey.get(k);
      set?.delete(w);
      if (set?.size === 0) this.syncedByKey.delete(k);
    } else this.syncedSpans.delete(w);
  }

  /** The range's key span as a history read takes it ("\0" for an open end or start). */
  private span(): { key: Uint8Array; rangeEnd: Uint8Array } {
    const d = this.replica.descriptor;
    return {
      key: d.start.length === 0 ? Buffer.from([0]) : d.start,
      rangeEnd: d.end.length === 0 ? Buffer.from([0]) : d.end,
    };
  }
}

/** Events grouped by revision, in order (the history is in revision order). */
function byRevision(events: readonly MvccEvent[]): Array<[number, MvccEvent[]]> {
  const out: Array<[number, MvccEvent[]]> = [];
  for (const e of events) {
    const last = out[out.length - 1];
    if (last !== undefined && last[0] === e.kv.modRevision) last[1].push(e);
    else out.push([e.kv.modRevision, [e]]);
  }
  return out;
}

/**
 * The hubs of a node, one per replica, created on a range's first watcher
 * and dropped with its last.
 */
export class WatchHubs {
  private readonly hubs = new Map<Replica, RangeWatchHub>();

  constructor(private readonly metrics: WatchMetrics) {}

  /** The hub of `replica`. */
  hubOf(replica: Replica): RangeWatchHub {
    let hub = this.hubs.get(replica);
    if (hub === undefined) {
      const created: RangeWatchHub = new RangeWatchHub(replica, this.metrics, () => {
        if (this.hubs.get(replica) === created) this.hubs.delete(replica);
      });
      hub = created;
      this.hubs.set(replica, hub);
    }
    return hub;
  }

  /** Hubs alive. */
  get size(): number {
    return this.hubs.size;
  }
}
