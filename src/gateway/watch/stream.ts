/**
 * One Watch RPC: many watchers on one bidi stream, as etcd's v3rpc
 * watchServer runs it. Requests are handled in order; control replies
 * (created, canceled, stream-wide progress) go out in request order ahead
 * of events; each watcher's events come from its own bounded buffer, which
 * the range's hub fills. One sender loop awaits every `send`, so a client
 * that stops reading stops the loop, the buffers fill, and the hub moves
 * the watchers to history reads instead of queueing more.
 */
import { KeyNotInRangeError } from '../../shard/replica/index.js';
import { checkRequireLeader, nodeHeader, responseHeader, type GatewayContext, type RpcStream } from '../context.js';
import { EtcdError } from '../errors.js';
import { kvToWire } from '../convert.js';
import { EventType, type Out, type ResponseHeader, type WatchCreateRequest, type WatchRequest, type WatchResponse } from '../messages.js';
import { ENCODED_FIELDS, encodeEtcdMessage, type EncodedField, type EtcdMessage, type MessageWithEncodedFields } from '../proto.js';
import type { RangeTarget } from '../router.js';
import { GRPC_OVERHEAD_BYTES } from '../validate.js';
import type { HubWatcher, RangeWatchHub, WatchHubs } from './hub.js';
import type { WatchMetrics } from './metrics.js';
import type { MvccEvent } from '../../shard/mvcc/index.js';
import {
  fragmentLengths,
  INVALID_WATCH_ID,
  LeaderLossCounter,
  watchSpecOf,
  WatcherBuffer,
  WatchIds,
  type WatchSpec,
  type WatcherItem,
} from './watcher.js';

/** A WatchResponse as handed to the transport (events already in wire shape). */
type Reply = Omit<Out<WatchResponse>, 'events'> & { events?: EtcdMessage[] };

/** Control replies waiting to be sent before the stream stops reading requests (etcd's ctrlStream buffer). */
export const CONTROL_QUEUE_MAX = 16;
/** Events one response carries at most when a watcher's buffered revisions are sent together (etcd's watchBatchMaxRevs is 1000). */
export const MERGED_EVENTS_MAX = 1000;
/** Event bytes one merged response carries at most: well under grpc-js clients' 4 MiB default receive limit. */
export const MERGED_BYTES_MAX = 1024 * 1024;
/** Cancel reason of a watch whose span lies in more than one range (not served yet: docs/watch.md). */
export const CROSS_RANGE_CANCEL_REASON = 'keyspan: a watch across several ranges is not supported yet';

/** Tunables of a watch stream (defaults: etcd's). */
export interface WatchStreamOptions {
  /** etcd's --experimental-watch-progress-notify-interval (default 10 min). */
  readonly progressNotifyIntervalMs: number;
  /** How often a stream that requires a leader checks for one (etcd: every election timeout). */
  readonly leaderCheckIntervalMs: number;
  readonly bufferEventsMax: number;
  readonly bufferBytesMax: number;
}

/** A watcher of one stream. */
class StreamWatcher implements HubWatcher {
  /** etcd's progress[id]: no events were sent since the last progress tick. */
  progressDue = true;
  /** The watch_id field as every event response of this watcher carries it, encoded once. */
  readonly encodedId: EncodedField;

  constructor(
    readonly id: number,
    readonly spec: WatchSpec,
    readonly hub: RangeWatchHub,
    readonly target: RangeTarget,
    readonly startRevision: number,
    public nextRevision: number,
    readonly buffer: WatcherBuffer,
    private readonly stream: WatchStream,
  ) {
    this.encodedId = { name: 'watch_id', parts: [encodeEtcdMessage('etcdserverpb.WatchResponse', { watch_id: id })] };
  }

  notify(): void {
    this.stream.ready(this);
  }

  fail(err: unknown): void {
    this.stream.fail(err);
  }
}

/** The server side of one Watch call. */
export class WatchStream {
  private readonly watchers = new Map<number, StreamWatcher>();
  private readonly ids = new WatchIds();
  private readonly control: Reply[] = [];
  /** Watchers with buffered items, in the order they are served (round robin). */
  private readonly readyWatchers = new Set<StreamWatcher>();
  private progressRequested = false;
  private closed = false;
  private wakeSender: (() => void) | undefined;
  private wakeReceiver: (() => void) | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private finish!: (err: unknown) => void;
  private readonly finished = new Promise<unknown>((resolve) => (this.finish = resolve));

  constructor(
    private readonly ctx: GatewayContext,
    private readonly hubs: WatchHubs,
    private readonly metrics: WatchMetrics,
    private readonly options: WatchStreamOptions,
    private readonly rpc: RpcStream,
  ) {}

  /** Serves the call until the client cancels it (resolves) or it fails (throws). */
  async run(): Promise<void> {
    this.metrics.streams.inc();
    const onAbort = (): void => this.end(undefined);
    this.rpc.call.signal.addEventListener('abort', onAbort);
    if (this.rpc.call.signal.aborted) this.end(undefined);
    this.startTimers();
    void this.receive().catch((err: unknown) => this.end(err));
    // A rejected send means the call is over (the client went away).
    void this.sendLoop().catch(() => this.end(undefined));
    try {
      const err = await this.finished;
      if (err !== undefined) throw err;
    } finally {
      this.rpc.call.signal.removeEventListener('abort', onAbort);
      this.metrics.streams.dec();
    }
  }

  /** A watcher has new items or a new sync state. */
  ready(w: StreamWatcher): void {
    if (this.closed || this.watchers.get(w.id) !== w) return;
    if (!w.buffer.isEmpty) this.readyWatchers.add(w);
    this.wake();
  }

  /** Ends the stream with `err` (a failed hub, a lost leader). */
  fail(err: unknown): void {
    this.end(err);
  }

  // ------------------------------------------------------------- requests

  private async receive(): Promise<void> {
    for await (const m of this.rpc.requests) {
      if (this.closed) return;
      this.handle(m as WatchRequest);
      // Back-pressure on requests as etcd's bounded ctrlStream does.
      while (this.control.length >= CONTROL_QUEUE_MAX && !this.closed) {
        await new Promise<void>((resolve) => (this.wakeReceiver = resolve));
      }
    }
    // A half-closed stream keeps serving its watchers until the call ends, as etcd.
  }

  private handle(req: WatchRequest): void {
    if (req.create_request !== undefined) this.create(req.create_request);
    else if (req.cancel_request !== undefined) this.cancel(req.cancel_request.watch_id);
    else if (req.progress_request !== undefined) {
      this.progressRequested = true;
      this.wake();
    }
  }

  private create(c: WatchCreateRequest): void {
    const spec = watchSpecOf(c);
    if ('cancelReason' in spec) return this.refuseCreate(nodeHeader(this.ctx).revision, spec.cancelReason);
    try {
      this.ctx.auth.checkWatch(this.rpc.call.metadata, spec.key, spec.rangeEnd);
    } catch (err) {
      // etcd: a watch the caller may not read is created and cancelled with the reason.
      return this.refuseCreate(nodeHeader(this.ctx).revision, err instanceof Error ? err.message : String(err));
    }
    let target: RangeTarget;
    try {
      target = this.ctx.router.route(spec.key, spec.rangeEnd);
    } catch (err) {
      if (err instanceof KeyNotInRangeError) return this.refuseCreate(nodeHeader(this.ctx).revision, CROSS_RANGE_CANCEL_REASON);
      throw err;
    }
    const current = target.replica.currentRevision;
    const id = this.ids.claim(c.watch_id);
    if (id === undefined) return this.refuseCreate(current, 'mvcc: duplicate watch ID provided on the WatchStream');
    const hub = this.hubs.hubOf(target.replica);
    const start = c.start_revision === 0 ? current + 1 : c.start_revision;
    const buffer = new WatcherBuffer(this.options.bufferEventsMax, this.options.bufferBytesMax);
    const w = new StreamWatcher(id, spec, hub, target, start, start, buffer, this);
    this.watchers.set(id, w);
    this.pushControl({ header: this.header(target, current), watch_id: id, created: true });
    hub.add(w);
  }

  /** etcd's reply to a create it refuses: created and canceled at once, watch_id -1, the reason. */
  private refuseCreate(revision: number, reason: string): void {
    this.pushControl({
      header: { ...nodeHeader(this.ctx), revision },
      watch_id: INVALID_WATCH_ID,
      created: true,
      canceled: true,
      cancel_reason: reason,
    });
  }

  /** etcd answers a cancel of an unknown ID with nothing. */
  private cancel(id: number): void {
    const w = this.watchers.get(id);
    if (w === undefined) return;
    this.drop(w);
    this.pushControl({ header: this.header(w.target, w.hub.currentRevision), watch_id: id, canceled: true });
  }

  private drop(w: StreamWatcher): void {
    w.hub.remove(w);
    w.buffer.clear();
    this.readyWatchers.delete(w);
    this.watchers.delete(w.id);
    this.ids.release(w.id);
  }

  private pushControl(r: Reply): void {
    this.control.push(r);
    this.wake();
  }

  // ------------------------------------------------------------- sending

  private async sendLoop(): Promise<void> {
    while (!this.closed) {
      const next = this.next();
      if (next === undefined) {
        await new Promise<void>((resolve) => (this.wakeSender = resolve));
        continue;
      }
      for (const r of next) await this.rpc.send(r as EtcdMessage);
    }
  }

  private wake(): void {
    const s = this.wakeSender;
    this.wakeSender = undefined;
    s?.();
  }

  /** The next response(s) to send: control replies first, then a requested progress, then one watcher's item. */
  private next(): Reply[] | undefined {
    const c = this.control.shift();
    if (c !== undefined) {
      const r = this.wakeReceiver;
      this.wakeReceiver = undefined;
      r?.();
      return [c];
    }
    if (this.progressRequested && this.allCaughtUp()) {
      this.progressRequested = false;
      return [{ header: this.progressHeader(), watch_id: INVALID_WATCH_ID }];
    }
    for (const w of this.readyWatchers) {
      this.readyWatchers.delete(w);
      const item = w.buffer.shiftMerged(MERGED_EVENTS_MAX, MERGED_BYTES_MAX);
      if (item === undefined) continue;
      if (!w.buffer.isEmpty) this.readyWatchers.add(w); // to the back: round robin
      // Room was freed: a watcher reading history may go on (synced ones are fed on new revisions).
      if (w.hub.hasUnsynced) w.hub.kick();
      return this.responsesOf(w, item);
    }
    return undefined;
  }

  private responsesOf(w: StreamWatcher, item: WatcherItem): Reply[] {
    switch (item.kind) {
      case 'progress':
        return [{ header: this.header(w.target, item.revision), watch_id: w.id }];
      case 'compacted':
        // The hub has let go of the watcher; its ID is free once this last reply is out.
        this.drop(w);
        return [{ header: this.header(w.target, 0), watch_id: w.id, canceled: true, compact_revision: item.compactRevision }];
      case 'events': {
        w.progressDue = false;
        const wires = item.events.map(wiredEvent);
        const events = wires.map((x) => x.wire);
        const header = this.header(w.target, item.revision);
        if (!w.spec.fragment || events.length < 2) {
          // One literal (no spread, no property added later): this runs once per watcher per revision.
          const reply: Reply & MessageWithEncodedFields = {
            header,
            watch_id: w.id,
            events,
            [ENCODED_FIELDS]: [encodedHeader(header), w.encodedId, { name: 'events', parts: wires.map((x) => x.encoded) }],
          };
          return [reply];
        }
        return fragmentsOf({ header, watch_id: w.id }, events, this.ctx.maxRequestBytes + GRPC_OVERHEAD_BYTES);
      }
    }
  }

  /** Every watcher has been sent everything through its hub's revision (etcd 3.4.25+ progress rule). */
  private allCaughtUp(): boolean {
    for (const w of this.watchers.values()) if (!w.hub.isCaughtUp(w)) return false;
    return true;
  }

  /** The header of a stream-wide progress reply: the revision every watcher is synced to. */
  private progressHeader(): ResponseHeader {
    let first: StreamWatcher | undefined;
    let revision = Number.MAX_SAFE_INTEGER;
    for (const w of this.watchers.values()) {
      first ??= w;
      revision = Math.min(revision, w.hub.revision);
    }
    if (first === undefined) return nodeHeader(this.ctx);
    return this.header(first.target, revision);
  }

  private header(target: RangeTarget, revision: number): ResponseHeader {
    return responseHeader(this.ctx, revision, target.raftStatus().term);
  }

  // ------------------------------------------------------------- timers

  private startTimers(): void {
    const progress = setInterval(() => this.progressTick(), this.options.progressNotifyIntervalMs);
    progress.unref();
    this.timers.push(progress);
    if (!requiresLeader(this.rpc)) return;
    const loss = new LeaderLossCounter();
    const leader = setInterval(() => {
      let hasLeader = true;
      try {
        checkRequireLeader(this.ctx, this.rpc.call.metadata);
      } catch {
        hasLeader = false;
      }
      if (loss.check(hasLeader)) this.end(EtcdError.of('NO_LEADER'));
    }, this.options.leaderCheckIntervalMs);
    leader.unref();
    this.timers.push(leader);
  }

  /**
   * etcd's progress ticker: a progress_notify watcher that got no events
   * since the last tick and is synced gets one (3.4.23: a watcher from a
   * future revision too — it has missed nothing up to the hub's revision).
   */
  private progressTick(): void {
    for (const w of this.watchers.values()) {
      if (!w.spec.progressNotify) continue;
      if (w.progressDue && w.hub.isSynced(w)) {
        w.buffer.push({ kind: 'progress', revision: w.hub.revision });
        this.ready(w);
      }
      w.progressDue = true;
    }
  }

  // ------------------------------------------------------------- end

  private end(err: unknown): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    for (const w of [...this.watchers.values()]) this.drop(w);
    this.wake();
    const r = this.wakeReceiver;
    this.wakeReceiver = undefined;
    r?.();
    this.finish(err);
  }
}

/** Whether the call carries clientv3's require-leader metadata. */
function requiresLeader(rpc: RpcStream): boolean {
  const v = rpc.call.metadata.get('hasleader');
  return v.length > 0 && String(v[0]) === 'true';
}

/** An event in a WatchResponse: its message, and its bytes there (field `events`: tag, length, mvccpb.Event). */
interface WiredEvent {
  readonly wire: EtcdMessage;
  readonly encoded: Buffer;
}

/**
 * Events as sent, by event: the hub hands the same event objects to every
 * synced watcher, so an event is converted and encoded once however many
 * watchers receive it (etcd, too, encodes per watcher; with a thousand
 * watchers on a prefix that was most of the server's work).
 */
const wiredEvents = new WeakMap<MvccEvent, WiredEvent>();

function wiredEvent(e: MvccEvent): WiredEvent {
  let x = wiredEvents.get(e);
  if (x === undefined) {
    const wire = eventToWire(e);
    x = { wire, encoded: encodeEtcdMessage('etcdserverpb.WatchResponse', { events: [wire] }) };
    wiredEvents.set(e, x);
  }
  return x;
}

/** The last header encoded by {@link encodedHeader}: every watcher of a revision gets the same one. */
let lastHeader: { readonly header: ResponseHeader; readonly field: EncodedField } | undefined;

/** `header` as the header field of a WatchResponse, encoded once per distinct header. */
function encodedHeader(header: ResponseHeader): EncodedField {
  const last = lastHeader;
  if (
    last !== undefined &&
    last.header.revision === header.revision &&
    last.header.raft_term === header.raft_term &&
    last.header.member_id === header.member_id &&
    last.header.cluster_id === header.cluster_id
  ) {
    return last.field;
  }
  const field = { name: 'header', parts: [encodeEtcdMessage('etcdserverpb.WatchResponse', { header } as EtcdMessage)] };
  lastHeader = { header, field };
  return field;
}

/** An MVCC event as mvccpb.Event. */
function eventToWire(e: MvccEvent): EtcdMessage {
  const out: EtcdMessage = { type: e.type === 'PUT' ? EventType.PUT : EventType.DELETE, kv: kvToWire(e.kv) };
  if (e.prevKv !== undefined) out['prev_kv'] = kvToWire(e.prevKv);
  return out;
}

/** A response cut as etcd's sendFragments cuts it; every chunk but the last has fragment=true. */
function fragmentsOf(base: Reply, events: EtcdMessage[], limitBytes: number): Reply[] {
  // Each event costs its encoding plus the field tag and length prefix (at most 6 bytes).
  const sizes = events.map((e) => encodeEtcdMessage('mvccpb.Event', e).length + 6);
  const baseBytes = encodeEtcdMessage('etcdserverpb.WatchResponse', { ...base, fragment: true } as EtcdMessage).length;
  const lengths = fragmentLengths(sizes, baseBytes, limitBytes);
  if (lengths.length === 1) return [{ ...base, events: events }];
  const out: Reply[] = [];
  let at = 0;
  lengths.forEach((n, i) => {
    out.push({ ...base, events: events.slice(at, at + n), fragment: i < lengths.length - 1 });
    at += n;
  });
  return out;
}
