/**
 * Routing from the gateway to range replicas (DESIGN property 7). The gateway
 * asks a {@link RangeRouter} for the range that holds a key (or key span) and
 * sends the request there with the epoch it was routed with; a replica that
 * disagrees answers with a typed routing error (not leader, epoch mismatch,
 * key not in range, ...), and {@link routed} refreshes the route and retries,
 * bounded, so clients never see those errors unless routing keeps failing.
 *
 * Today one implementation exists, {@link LocalRangeRouter}: the ranges this
 * node hosts (the embedded default has one range over the whole keyspace).
 * The placement driver's range cache implements the same interface later.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  EpochMismatchError,
  KeyNotInRangeError,
  NotLeaderError,
  RangeNotFoundError,
  RangeNotInitializedError,
  ReplicaError,
  type Epoch,
  type Replica,
} from '../shard/replica/index.js';
import { spanContainsRange } from '../shard/range/descriptor.js';
import type { CallInfo } from './context.js';
import { LeaderElsewhereError, leaderElsewhere, type ForwardScope } from './forward-scope.js';

/** Raft state of the local replica of a range, as the gateway needs it. */
export interface RangeRaftStatus {
  /** Node id of the leader this replica knows; 0 when there is none. */
  readonly leader: number;
  readonly term: number;
  /** Raft's commit index on this replica. */
  readonly commit: number;
  /** The replica's applied index. */
  readonly applied: number;
  /** Raft role of this replica ('leader', 'follower', 'learner', ...). */
  readonly role: string;
}

/** Where a request goes: a replica handle plus the epoch the request is routed with. */
export interface RangeTarget {
  readonly rangeId: number;
  readonly replica: Replica;
  readonly epoch: Epoch;
  /** The local replica's raft state (header raft_term, Status, `hasleader`). */
  raftStatus(): RangeRaftStatus;
}

/** Finds the range of a key span. */
export interface RangeRouter {
  /**
   * The range holding `[key, rangeEnd)` (`rangeEnd` empty: the single key;
   * "\0": every key from `key`). A span that crosses ranges is refused with
   * KeyNotInRangeError until cross-range requests exist.
   */
  route(key: Uint8Array, rangeEnd?: Uint8Array): RangeTarget;
  /** Every range this router knows, in key order (node-wide RPCs: Status, HashKV). */
  ranges(): readonly RangeTarget[];
  /**
   * The range `rangeId` if this router knows it (the auth store's range on
   * every request), without listing them all; a router without it is asked
   * for {@link ranges}.
   */
  rangeTarget?(rangeId: number): RangeTarget | undefined;
  /** Called after `err` refused a request routed to `target`: drop what is stale. */
  invalidate(target: RangeTarget, err: ReplicaError): void;
}

/** What {@link LocalRangeRouter} needs of a node (a StoreNode satisfies it). */
export interface LocalRanges {
  range(rangeId: number): Replica;
  rangeIds(): number[];
  status(rangeId: number): RangeRaftStatus;
  /**
   * Changes whenever a range is added or becomes serviceable: while it
   * stays the same, the router routes through its index of the ranges by
   * start key instead of listing every range per request.
   */
  readonly rangesVersion?: number;
}

/** A range's first key, as the router's index holds it. */
interface IndexedRange {
  readonly rangeId: number;
  readonly start: Uint8Array;
}

/**
 * Routes to the ranges hosted on this node, reading each replica's current
 * descriptor, so a route is always fresh (invalidate has nothing to drop).
 * With one range over the whole keyspace every key routes to it.
 */
export class LocalRangeRouter implements RangeRouter {
  /** The ranges by start key, as of `indexedVersion` of the node's range set. */
  private index: readonly IndexedRange[] = [];
  private indexedVersion: number | undefined;

  constructor(private readonly node: LocalRanges) {}

  route(key: Uint8Array, rangeEnd: Uint8Array = new Uint8Array()): RangeTarget {
    // The index finds the one range whose span may hold the key; its
    // descriptor is read afresh, and a span it does not hold (a split or a
    // recovery moving spans) falls back to asking every range.
    const candidate = this.indexed(key);
    if (candidate !== undefined) {
      const replica = this.node.range(candidate);
      if (spanContainsRange(replica.descriptor, key, rangeEnd)) return this.targetOf(candidate, replica);
    }
    let first: RangeTarget | undefined;
    for (const t of this.ranges()) {
      first ??= t;
      if (spanContainsRange(t.replica.descriptor, key, rangeEnd)) {
        // A range the index did not point to holds it: spans moved (a range got its first snapshot).
        if (t.rangeId !== candidate) this.indexedVersion = undefined;
        return t;
      }
    }
    if (first === undefined) throw new RangeNotInitializedError(0);
    const d = first.replica.descriptor;
    throw new KeyNotInRangeError(key, d.rangeId, d.start, d.end);
  }

  ranges(): readonly RangeTarget[] {
    return this.node.rangeIds().map((rangeId) => this.targetOf(rangeId, this.node.range(rangeId)));
  }

  rangeTarget(rangeId: number): RangeTarget | undefined {
    let replica: Replica;
    try {
      replica = this.node.range(rangeId);
    } catch (err) {
      if (err instanceof RangeNotFoundError) return undefined;
      throw err;
    }
    return this.targetOf(rangeId, replica);
  }

  invalidate(): void {
    // Nothing cached: every route reads the replica's descriptor afresh.
  }

  private targetOf(rangeId: number, replica: Replica): RangeTarget {
    return {
      rangeId,
      replica,
      epoch: replica.descriptor.epoch,
      raftStatus: () => this.node.status(rangeId),
    };
  }

  /** The id of the last range starting at or before `key`, by the index; undefined without one. */
  private indexed(key: Uint8Array): number | undefined {
    const version = this.node.rangesVersion;
    if (version === undefined) return undefined;
    if (version !== this.indexedVersion) this.reindex(version);
    let lo = 0;
    let hi = this.index.length - 1;
    let found: IndexedRange | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const r = this.index[mid]!;
      if (Buffer.compare(r.start, key) <= 0) {
        found = r;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found?.rangeId;
  }

  private reindex(version: number): void {
    const index: IndexedRange[] = [];
    for (const rangeId of this.node.rangeIds()) {
      try {
        index.push({ rangeId, start: this.node.range(rangeId).descriptor.start });
      } catch {
        // Not serviceable yet (recovering): routed by the full listing meanwhile.
      }
    }
    index.sort((a, b) => Buffer.compare(a.start, b.start));
    this.index = index;
    this.indexedVersion = version;
  }
}

/** Attempts of one request across routing errors (the first try included). */
export const ROUTING_ATTEMPTS_MAX = 30;
/** First back-off after a routing error whose fix takes time (no leader yet). */
export const ROUTING_BACKOFF_MS_MIN = 10;
/** Largest back-off between two attempts. */
export const ROUTING_BACKOFF_MS_MAX = 200;
/**
 * Total time a request may spend retrying routing errors: about etcd's
 * election-bound request timeout, so a request sent during a leader election
 * waits it out as with etcd, instead of failing at once.
 */
export const ROUTING_DEADLINE_MS = 5_000;

/** Options of {@link routed}. */
export interface RoutedOptions {
  /** Aborts the retries (client cancelled or deadline passed). */
  readonly signal?: AbortSignal;
  /**
   * The call's forwarding scope (`CallInfo.forward`): with one, a leader on
   * another node ends the retries at once (see {@link routed}).
   */
  readonly scope?: ForwardScope | undefined;
  readonly attemptsMax?: number;
  readonly deadlineMs?: number;
}

/** The routing options of a client call: its abort signal and its forwarding scope. */
export function routeOptionsOf(call: CallInfo): RoutedOptions {
  // The signal is read only when a retry needs it (a call's signal may be made on first use).
  return {
    get signal() {
      return call.signal;
    },
    scope: call.forward,
  };
}

/**
 * Whether a routing error can heal by retrying: a stale route (epoch, span)
 * heals at once with a fresh route, a missing leader or uninitialized
 * replica after a back-off.
 */
function retryable(err: unknown): err is ReplicaError {
  return (
    err instanceof NotLeaderError ||
    err instanceof EpochMismatchError ||
    err instanceof KeyNotInRangeError ||
    err instanceof RangeNotInitializedError
  );
}

/**
 * Runs `send` against the route of `[key, rangeEnd)`, re-routing and retrying
 * on routing errors, bounded by attempts and time. Writes must pass the same
 * request id on every attempt (the replica's dedupe table makes a retry of a
 * write that did commit answer with its first result). The last routing
 * error is rethrown when the bound is reached (the gateway maps it to
 * `etcdserver: leader changed`, which clientv3 retries).
 *
 * With a forwarding scope (`options.scope`, forward-scope.ts), a
 * NotLeaderError whose hint names another node is not retried here: it
 * becomes a LeaderElsewhereError at once, and the forwarding wrapper sends
 * the whole call to that node.
 */
export function routed<T>(
  router: RangeRouter,
  key: Uint8Array,
  rangeEnd: Uint8Array | undefined,
  send: (target: RangeTarget) => Promise<T>,
  options: RoutedOptions = {},
): Promise<T> {
  // The first attempt runs without an async frame of its own: nearly every request needs no other.
  const started = Date.now();
  let target: RangeTarget | undefined;
  let first: Promise<T>;
  try {
    target = router.route(key, rangeEnd);
    first = send(target);
  } catch (err) {
    return retryRouted(router, key, rangeEnd, send, options, started, target, err);
  }
  return first.catch((err: unknown) => retryRouted(router, key, rangeEnd, send, options, started, target, err));
}

/** The attempts after a first one (started at `started`, routed to `target` if routing got that far) failed with `err`. */
async function retryRouted<T>(
  router: RangeRouter,
  key: Uint8Array,
  rangeEnd: Uint8Array | undefined,
  send: (target: RangeTarget) => Promise<T>,
  options: RoutedOptions,
  started: number,
  target: RangeTarget | undefined,
  err: unknown,
): Promise<T> {
  const attemptsMax = options.attemptsMax ?? ROUTING_ATTEMPTS_MAX;
  const deadline = started + (options.deadlineMs ?? ROUTING_DEADLINE_MS);
  let backoffMs = ROUTING_BACKOFF_MS_MIN;
  for (let attempt = 1; ; attempt++) {
    if (err instanceof NotLeaderError) {
      const leader = leaderElsewhere(err, options.scope);
      if (leader !== undefined) throw new LeaderElsewhereError(leader, { cause: err });
    }
    if (!retryable(err) || attempt >= attemptsMax || Date.now() >= deadline || options.signal?.aborted === true) throw err;
    if (target !== undefined) router.invalidate(target, err);
    // A stale epoch or span heals with the fresh route at once; a missing
    // leader or replica needs time (an election, a snapshot).
    if (err instanceof NotLeaderError || err instanceof RangeNotInitializedError) {
      const waitMs = Math.min(backoffMs, Math.max(0, deadline - Date.now()));
      await sleep(waitMs, undefined, options.signal === undefined ? {} : { signal: options.signal }).catch(() => undefined);
      backoffMs = Math.min(backoffMs * 2, ROUTING_BACKOFF_MS_MAX);
    }
    target = undefined;
    try {
      target = router.route(key, rangeEnd);
      return await send(target);
    } catch (next) {
      err = next;
    }
  }
}
