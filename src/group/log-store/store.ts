/**
 * LogStore: the node's durable raft log store, shared by every raft group on
 * the node, over one engine (docs/log-store.md).
 *
 * Writes follow the multi-raft Ready loop. For each group with a Ready the
 * host calls `stage()`, which applies the change to the group's in-memory
 * log at once and appends the matching engine ops to one pending batch; then
 * one `flush({ sync: true })` writes that batch with a single fsync for all
 * groups and resolves only once it is durable. Only then may the host send
 * the Readys' messages and apply their committed entries.
 *
 * Flushes are serialized: one is in flight at a time, and flush calls made
 * meanwhile share the next one, which takes everything staged until it
 * starts. Engine writes are therefore applied in stage order.
 */
import type { BatchOp, Engine } from '../../storage/index.js';
import {
  type ConfState,
  type Entry,
  type HardState,
  type Snapshot,
  RaftInvariantError,
  SnapshotOutOfDateError,
  StorageCompactedError,
  cloneConfState,
} from '../raft/index.js';
import {
  ENTRY_HEADER_BYTES,
  FORMAT_VERSION,
  type TruncatedState,
  decodeVersion,
  encodeConfState,
  encodeHardState,
  encodeSnapshotMeta,
  encodeTruncatedState,
  encodeVersion,
} from './codec.js';
import { LogStoreError } from './errors.js';
import { Garbage } from './garbage.js';
import { GroupLog } from './group-log.js';
import { META_SUFFIX, VERSION_KEY, metaKey } from './keys.js';
import { loadStore } from './load.js';
import { checkEntries, checkGroupId, checkHardState, checkIndex } from './validate.js';

/** Default cap on the bytes staged for one flush (see LogStoreOptions.batchBytesMax). */
export const BATCH_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;
/** Default cap on the garbage entry keys one flush deletes (see LogStoreOptions.gcKeysPerFlushMax). */
export const GC_KEYS_PER_FLUSH_MAX_DEFAULT = 4096;

/** Options of {@link LogStore.open}. */
export interface LogStoreOptions {
  /**
   * Cap on the bytes (keys + values) staged for one flush. A stage that
   * would pass it, while something is already pending, throws BATCH_FULL
   * and changes nothing: flush, then stage again. A single stage into an
   * empty batch is always accepted, so no Ready can be refused forever.
   */
  readonly batchBytesMax?: number;
  /**
   * Cap on the entry keys of truncated or destroyed logs that one flush
   * deletes, so truncating a long log never makes one huge batch.
   */
  readonly gcKeysPerFlushMax?: number;
}

/** One group's part of a Ready, as handed to {@link LogStore.stage}. Applied in the order snapshot, entries, conf state, hard state. */
export interface StageOps {
  /** Ready.hardState. */
  readonly hardState?: HardState;
  /** Ready.entries: appended, dropping any conflicting suffix. */
  readonly entries?: readonly Entry[];
  /** Ready.snapshot: replaces the whole log (a snapshot received from the leader). */
  readonly snapshot?: Snapshot;
  /** The conf state after applying a conf change, answered by initialState() on restart. */
  readonly confState?: ConfState;
}

/** Options of {@link LogStore.flush}. */
export interface FlushOptions {
  /** fsync before resolving (default true). Raft's durability rule needs it before messages leave. */
  readonly sync?: boolean;
}

/** Options of {@link LogStore.createGroup}. */
export interface CreateGroupOptions {
  /** The group's initial membership. */
  readonly confState: ConfState;
  /** A non-zero starting point, for a group created from existing state (e.g. by a split). */
  readonly truncatedState?: TruncatedState;
  /** The initial hard state (default all zero). */
  readonly hardState?: HardState;
}

/** Counters for metrics; plain fields the host reads and exports. They only grow. */
export interface LogStoreCounters {
  /** Engine batches written by flushes. */
  batchesFlushed: number;
  /** Batches written with sync (each one fsync of the engine's log). */
  fsyncs: number;
  /** Log entries written. */
  entriesWritten: number;
  /** Key + value bytes written. */
  bytesWritten: number;
  /** Engine ops (puts and deletes) written. */
  opsWritten: number;
  /** Entry keys deleted by garbage collection of truncated and destroyed logs. */
  garbageKeysDeleted: number;
  /** Flushes that failed (after the first, the store refuses everything). */
  flushFailures: number;
}

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(e: unknown): void;
  sync: boolean;
}

function deferred(sync: boolean): Deferred {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject, sync };
}

function opBytes(op: BatchOp): number {
  return op.key.byteLength + (op.type === 'put' ? op.value.byteLength : 0);
}

/** The durable raft state of every group on a node. See the module comment. */
export class LogStore {
  /** Counters for metrics. */
  readonly counters: LogStoreCounters = {
    batchesFlushed: 0,
    fsyncs: 0,
    entriesWritten: 0,
    bytesWritten: 0,
    opsWritten: 0,
    garbageKeysDeleted: 0,
    flushFailures: 0,
  };

  private readonly groups = new Map<number, GroupLog>();
  /** Entry keys to delete lazily, per group: at or below its truncated index, or all of a destroyed group's. */
  private readonly garbage = new Garbage();
  /** Groups being destroyed: their id cannot be created again until their keys are gone. */
  private readonly destroying = new Set<number>();
  private readonly batchBytesMax: number;
  private readonly gcKeysPerFlushMax: number;
  private pending: BatchOp[] = [];
  private pendingBytesCount = 0;
  private pendingEntriesCount = 0;
  /** A write went out without sync since the last synced one. */
  private unsynced = false;
  private inFlight: Promise<void> | undefined;
  private next: Deferred | undefined;
  private failure: LogStoreError | undefined;
  private closed = false;

  private constructor(
    private readonly engine: Engine,
    options: LogStoreOptions,
  ) {
    this.batchBytesMax = options.batchBytesMax ?? BATCH_BYTES_MAX_DEFAULT;
    this.gcKeysPerFlushMax = options.gcKeysPerFlushMax ?? GC_KEYS_PER_FLUSH_MAX_DEFAULT;
    checkIndex('batchBytesMax', this.batchBytesMax);
    checkIndex('gcKeysPerFlushMax', this.gcKeysPerFlushMax);
    if (this.gcKeysPerFlushMax === 0) throw new LogStoreError('INVALID_ARGUMENT', 'gcKeysPerFlushMax must be positive');
  }

  /**
   * Opens the store over `engine` (which the caller keeps owning and closes
   * after `close()`), loading every group's state and retained entries. Keys
   * left by a destroy that a crash cut short are deleted before it resolves.
   */
  static async open(engine: Engine, options: LogStoreOptions = {}): Promise<LogStore> {
    const store = new LogStore(engine, options);
    const version = await engine.get(VERSION_KEY);
    if (version === undefined) {
      await engine.write([{ type: 'put', key: VERSION_KEY, value: encodeVersion(FORMAT_VERSION) }], { sync: true });
    } else if (decodeVersion(version) !== FORMAT_VERSION) {
      throw new LogStoreError('UNSUPPORTED_FORMAT', `on-disk format ${decodeVersion(version)}, this build reads ${FORMAT_VERSION}`);
    }
    const loaded = await loadStore(engine);
    for (const [id, state] of loaded.groups) store.groups.set(id, new GroupLog(id, state));
    for (const [id, span] of loaded.garbage) store.garbage.add(id, span);
    if (loaded.orphans.size > 0) await store.drainGarbage(loaded.orphans);
    return store;
  }

  // ---- groups ----

  /** Ids of every live group, ascending. */
  groupIds(): number[] {
    return [...this.groups.keys()].sort((a, b) => a - b);
  }

  /** Number of live groups. */
  get groupCount(): number {
    return this.groups.size;
  }

  /** True if the group exists. */
  has(groupId: number): boolean {
    return this.groups.has(groupId);
  }

  /** The group's Storage view; throws GROUP_NOT_FOUND if there is none. */
  group(groupId: number): GroupLog {
    const log = this.groups.get(groupId);
    if (log === undefined) throw new LogStoreError('GROUP_NOT_FOUND', `no group ${groupId}`);
    return log;
  }

  /**
   * Creates a group and stages its state records; it is visible at once and
   * durable after the next flush. Throws GROUP_EXISTS for a live id and
   * GROUP_BUSY while a destroyed group of that id is still being deleted.
   */
  createGroup(groupId: number, options: CreateGroupOptions): GroupLog {
    this.checkUsable();
    checkGroupId(groupId);
    if (this.groups.has(groupId)) throw new LogStoreError('GROUP_EXISTS', `group ${groupId} exists`);
    if (this.destroying.has(groupId) || this.garbage.has(groupId)) {
      throw new LogStoreError('GROUP_BUSY', `group ${groupId} is still being deleted`);
    }
    const truncated = options.truncatedState ?? { index: 0, term: 0 };
    checkIndex('truncatedState.index', truncated.index);
    checkIndex('truncatedState.term', truncated.term);
    const hardState = options.hardState ?? { term: 0, vote: 0, commit: 0 };
    checkHardState(hardState);
    const confState = cloneConfState(options.confState);
    const snapshotMeta = { index: truncated.index, term: truncated.term, confState };
    const ops: BatchOp[] = [
      { type: 'put', key: metaKey(groupId, META_SUFFIX.confState), value: encodeConfState(confState) },
      { type: 'put', key: metaKey(groupId, META_SUFFIX.hardState), value: encodeHardState(hardState) },
      { type: 'put', key: metaKey(groupId, META_SUFFIX.snapshotMeta), value: encodeSnapshotMeta(snapshotMeta) },
      { type: 'put', key: metaKey(groupId, META_SUFFIX.truncatedState), value: encodeTruncatedState(truncated) },
    ];
    const log = new GroupLog(groupId, { hardState, confState, snapshotMeta, truncated: { ...truncated }, entries: [] });
    this.groups.set(groupId, log);
    this.addPending(ops, 0);
    return log;
  }

  /**
   * Destroys a group: it disappears at once, its state records go in the
   * next batch, and its entries are deleted in bounded chunks by the flushes
   * that follow. Resolves when every key of the group is durably gone.
   */
  async destroyGroup(groupId: number): Promise<void> {
    this.checkUsable();
    const log = this.group(groupId);
    this.groups.delete(groupId);
    const ops: BatchOp[] = Object.values(META_SUFFIX).map((s) => ({ type: 'del' as const, key: metaKey(groupId, s) }));
    this.addPending(ops, 0);
    if (log.lastIndex() >= log.firstIndex()) this.garbage.add(groupId, { lo: log.firstIndex(), hi: log.lastIndex() });
    this.destroying.add(groupId);
    try {
      await this.drainGarbage(new Set([groupId]));
    } finally {
      this.destroying.delete(groupId);
    }
  }

  // ---- writes ----

  /**
   * Stages one group's Ready: installs `snapshot`, appends `entries`
   * (truncating any conflicting suffix), records `confState` and
   * `hardState`. The change is visible in the group's Storage view at once
   * and durable once a later flush resolves. Everything is validated first;
   * a throw changes nothing.
   */
  stage(groupId: number, ready: StageOps): void {
    this.checkUsable();
    const log = this.group(groupId);
    const entries = ready.entries ?? [];
    checkEntries(entries);
    if (ready.hardState !== undefined) checkHardState(ready.hardState);
    if (ready.confState !== undefined) encodeConfState(ready.confState); // validates members
    let first = log.firstIndex();
    let last = log.lastIndex();
    const snap = ready.snapshot;
    if (snap !== undefined) {
      checkIndex('snapshot index', snap.meta.index);
      checkIndex('snapshot term', snap.meta.term);
      encodeConfState(snap.meta.confState);
      if (snap.meta.index < log.snapshotMeta.index) throw new SnapshotOutOfDateError(snap.meta.index, log.snapshotMeta.index);
      first = snap.meta.index + 1;
      last = snap.meta.index;
    }
    if (entries.length > 0) {
      const start = Math.max(first, entries[0]!.index);
      if (entries[entries.length - 1]!.index >= first && start > last + 1) {
        throw new RaftInvariantError(`log store append: gap in group ${groupId} (last ${last}, appending ${start})`);
      }
    }
    let estimate = 256;
    for (const e of entries) estimate += 18 + ENTRY_HEADER_BYTES + e.data.byteLength;
    if (this.pending.length > 0 && this.pendingBytesCount + estimate > this.batchBytesMax) {
      throw new LogStoreError('BATCH_FULL', `pending batch of ${this.pendingBytesCount} bytes is full; flush first`);
    }

    const ops: BatchOp[] = [];
    if (snap !== undefined) this.installSnapshot(log, snap, ops);
    const appended = log.appendEntries(entries, ops);
    if (ready.confState !== undefined) log.setConfState(ready.confState, ops);
    if (ready.hardState !== undefined) log.setHardState(ready.hardState, ops);
    this.addPending(ops, appended);
  }

  /**
   * Records a state-machine snapshot of the group at `index` (which must be
   * in the log and above the previous snapshot), as MemoryStorage.createSnapshot.
   * With `data`, the store keeps the Snapshot and snapshot() returns it until
   * a newer one; without, only the metadata is kept and snapshot() asks the
   * group's snapshot source. Its conf state (default: the previous
   * snapshot's) becomes the group's. Durable after the next flush.
   */
  createSnapshot(groupId: number, index: number, confState: ConfState | undefined, data?: Uint8Array): Snapshot {
    this.checkUsable();
    const log = this.group(groupId);
    checkIndex('snapshot index', index);
    if (index <= log.snapshotMeta.index) throw new SnapshotOutOfDateError(index, log.snapshotMeta.index);
    if (index > log.lastIndex()) throw new RaftInvariantError(`createSnapshot: index ${index} > last index ${log.lastIndex()}`);
    if (index < log.truncatedState.index) throw new StorageCompactedError(index, log.firstIndex());
    if (confState !== undefined) encodeConfState(confState);
    const ops: BatchOp[] = [];
    const snap = log.recordSnapshot(index, confState, data, ops);
    this.addPending(ops, 0);
    return snap;
  }

  /**
   * Compacts the group's log after the host took a state-machine snapshot at
   * `index`: entries up to and including `index` leave memory now, the new
   * truncated state (index, term) goes in the next batch, and the entry keys
   * are deleted in bounded chunks by the following flushes. Throws
   * StorageCompactedError if `index` is already compacted, and
   * INVALID_ARGUMENT if `term` is not the term of the entry at `index`.
   */
  truncate(groupId: number, index: number, term: number): void {
    this.checkUsable();
    const log = this.group(groupId);
    checkIndex('index', index);
    if (index <= log.truncatedState.index) throw new StorageCompactedError(index, log.firstIndex());
    if (index > log.lastIndex()) throw new RaftInvariantError(`truncate: index ${index} > last index ${log.lastIndex()}`);
    const actual = log.term(index);
    if (actual !== term) {
      throw new LogStoreError('INVALID_ARGUMENT', `truncate: entry ${index} has term ${actual}, not ${term}`);
    }
    const ops: BatchOp[] = [];
    const span = log.compactTo(index, ops);
    this.addPending(ops, 0);
    this.garbage.add(groupId, span);
  }

  /**
   * Writes everything staged so far, with garbage deletes, as ONE engine
   * batch, fsynced if `sync` (the default), and resolves once it is durable.
   * At most one flush is in flight; calls made meanwhile share the next.
   * An engine failure rejects with FAILED and fails the store for good.
   */
  flush(options: FlushOptions = {}): Promise<void> {
    const sync = options.sync ?? true;
    try {
      this.checkUsable();
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.inFlight === undefined) return this.startFlush(sync);
    if (this.next === undefined) this.next = deferred(sync);
    else this.next.sync ||= sync;
    return this.next.promise;
  }

  /** Flushes everything (synced) and refuses further use. The engine stays open: its owner closes it. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.failure === undefined) await this.flush({ sync: true });
    else if (this.inFlight !== undefined) await this.inFlight.catch(() => undefined);
    this.closed = true;
  }

  // ---- observability ----

  /** Bytes staged for the next flush. */
  get pendingBytes(): number {
    return this.pendingBytesCount;
  }

  /** Engine ops staged for the next flush. */
  get pendingOps(): number {
    return this.pending.length;
  }

  /** Entry keys still waiting to be garbage-collected. */
  get garbageKeys(): number {
    return this.garbage.keys;
  }

  /** True once an engine write failed; the store must be reopened. */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  // ---- private ----

  private checkUsable(): void {
    if (this.closed) throw new LogStoreError('CLOSED', 'the store is closed');
    if (this.failure !== undefined) throw this.failure;
  }

  private addPending(ops: BatchOp[], entries: number): void {
    for (const op of ops) {
      this.pending.push(op);
      this.pendingBytesCount += opBytes(op);
    }
    this.pendingEntriesCount += entries;
  }

  /**
   * Installs a received snapshot. A snapshot below the current truncated
   * index would make garbage keys above it live log positions again, so
   * those are deleted in this batch (before any put that reuses them) and
   * the lazy span is clipped to the snapshot index.
   */
  private installSnapshot(log: GroupLog, snap: Snapshot, ops: BatchOp[]): void {
    this.garbage.clipAbove(log.groupId, snap.meta.index, ops);
    const span = log.installSnapshot(snap, ops);
    if (span !== undefined) this.garbage.add(log.groupId, span);
  }

  /** Flushes until none of `ids` has garbage left (their spans go first, so one flush per gcKeysPerFlushMax of their keys). */
  private async drainGarbage(ids: ReadonlySet<number>): Promise<void> {
    const has = (): boolean => [...ids].some((id) => this.garbage.has(id));
    this.garbage.setUrgent(ids, true);
    try {
      do {
        await this.flush({ sync: true });
      } while (has());
    } finally {
      this.garbage.setUrgent(ids, false);
    }
  }

  private startFlush(sync: boolean): Promise<void> {
    const run = this.runFlush(sync).finally(() => {
      this.inFlight = undefined;
      const queued = this.next;
      this.next = undefined;
      if (queued !== undefined) {
        // A failure already recorded fails the queued flush through checkUsable in runFlush.
        this.startFlush(queued.sync).then(queued.resolve, queued.reject);
      }
    });
    this.inFlight = run;
    return run;
  }

  /** One flush. Everything up to the first await runs synchronously, so the batch is exactly what was staged before it started. */
  private async runFlush(sync: boolean): Promise<void> {
    this.checkUsable();
    const ops = this.pending;
    const entries = this.pendingEntriesCount;
    this.pending = [];
    this.pendingBytesCount = 0;
    this.pendingEntriesCount = 0;
    const garbageDeleted = this.garbage.collect(this.gcKeysPerFlushMax, ops);
    if (ops.length === 0) {
      if (!sync || !this.unsynced) return;
      // Nothing new, but earlier unsynced writes must become durable: a synced write of the
      // version key (unchanged) forces the engine's sequential log to disk.
      ops.push({ type: 'put', key: VERSION_KEY, value: encodeVersion(FORMAT_VERSION) });
    }
    try {
      await this.engine.write(ops, { sync });
    } catch (e) {
      this.counters.flushFailures++;
      this.failure ??= new LogStoreError('FAILED', 'an engine write failed; memory may be ahead of disk, reopen the store', { cause: e });
      throw this.failure;
    }
    this.unsynced = !sync;
    let written = 0;
    for (let i = 0; i < ops.length; i++) written += opBytes(ops[i]!);
    this.counters.batchesFlushed++;
    if (sync) this.counters.fsyncs++;
    this.counters.entriesWritten += entries;
    this.counters.bytesWritten += written;
    this.counters.opsWritten += ops.length;
    this.counters.garbageKeysDeleted += garbageDeleted;
  }
}
