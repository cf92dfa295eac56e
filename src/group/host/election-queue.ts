/**
 * Election admission: how a host starts thousands of leaderless groups
 * without an election storm (docs/host.md, "Starting many groups").
 *
 * A group that knows no leader when it is created or reopened does not tick
 * on its own: it waits here, *dormant*. It steps every message as usual
 * (it answers votes) but its election timer does not run, so answering a
 * candidate that is slow to win never starts a competing election. It
 * leaves the queue when
 * - raft learns a leader (or becomes a candidate through a transfer): it
 *   starts ticking at once, outside this queue;
 * - a request (proposal, read, conf change, transfer) needs it: it wakes and
 *   campaigns at once (CockroachDB campaigns on demand after a restart);
 * - the host admits it: at most `inFlightMax` admitted groups may be
 *   electing at a time (admitted, no leader known yet). Groups that asked to
 *   campaign (the first replica of a new range) are admitted first and
 *   campaign; the others start their election timers, so a group nobody
 *   campaigns for still elects a leader. A waiter may carry a "not before"
 *   tick: the other replicas of a brand-new range give their designated
 *   campaigner time to win (its leader's first append wakes them) rather
 *   than start timers that would race it when the campaigner's host is busy.
 * An admitted group stops counting once it knows a leader or after
 * `timeoutTicks` (it keeps electing on raft's timers, it just no longer
 * holds a slot), so a group that cannot elect (its peers are down) never
 * blocks the queue.
 *
 * Only ticking is deferred; raft's rules are untouched (a replica whose
 * clock runs late is always allowed), and a dormant group's Readys (entries
 * to apply after a restart) are handled as usual. Pure: no I/O, no clock.
 */

/** What the queue hands back for each admitted group. */
export interface Admission<T> {
  readonly item: T;
  /** The group asked to campaign (else it only starts its election timer). */
  readonly campaign: boolean;
}

/** FIFO admission of dormant groups, bounded by elections in flight. */
export class ElectionQueue<T> {
  /** Insertion-ordered sets: FIFO with O(1) removal. */
  private readonly campaigners = new Set<T>();
  /** Waiters → the first tick at which they may be admitted. */
  private readonly waiters = new Map<T, number>();
  /** Admitted groups without a known leader yet → the tick of their admission. */
  private readonly inFlight = new Map<T, number>();

  constructor(
    readonly inFlightMax: number,
    readonly timeoutTicks: number,
  ) {
    if (!Number.isSafeInteger(inFlightMax) || inFlightMax < 1) throw new RangeError(`election queue: inFlightMax ${inFlightMax} must be a positive integer`);
    if (!Number.isSafeInteger(timeoutTicks) || timeoutTicks < 1) throw new RangeError(`election queue: timeoutTicks ${timeoutTicks} must be a positive integer`);
  }

  /** Groups waiting (not yet admitted or woken). */
  get queued(): number {
    return this.campaigners.size + this.waiters.size;
  }

  /** Admitted groups still counting against `inFlightMax`. */
  get electing(): number {
    return this.inFlight.size;
  }

  /** Is `item` waiting here? */
  has(item: T): boolean {
    return this.campaigners.has(item) || this.waiters.has(item);
  }

  /** Queues a dormant group; `campaign`: it should campaign when admitted; a waiter is not admitted before `notBeforeTick`. */
  enqueue(item: T, campaign: boolean, notBeforeTick = 0): void {
    if (this.has(item)) return;
    if (campaign) this.campaigners.add(item);
    else this.waiters.set(item, notBeforeTick);
  }

  /**
   * Takes `item` out of the queue (woken by a message or a request, or
   * removed); returns whether it had asked to campaign, undefined if it was not queued.
   */
  remove(item: T): boolean | undefined {
    if (this.campaigners.delete(item)) return true;
    if (this.waiters.delete(item)) return false;
    return undefined;
  }

  /** `item` knows a leader now (or is gone): it frees its slot. */
  settle(item: T): void {
    this.inFlight.delete(item);
  }

  /** Frees the slots of groups admitted more than `timeoutTicks` ago. */
  expire(tick: number): void {
    for (const [item, since] of this.inFlight) {
      // Map iteration is in admission order, so the first young one ends the scan.
      if (tick - since <= this.timeoutTicks) break;
      this.inFlight.delete(item);
    }
  }

  /** Admits queued groups, campaigners first, while fewer than `inFlightMax` are electing. */
  admit(tick: number): Admission<T>[] {
    const out: Admission<T>[] = [];
    for (const item of this.campaigners) {
      if (this.inFlight.size >= this.inFlightMax) return out;
      this.campaigners.delete(item);
      this.inFlight.set(item, tick);
      out.push({ item, campaign: true });
    }
    for (const [item, notBefore] of this.waiters) {
      if (this.inFlight.size >= this.inFlightMax) return out;
      if (notBefore > tick) continue;
      this.waiters.delete(item);
      this.inFlight.set(item, tick);
      out.push({ item, campaign: false });
    }
    return out;
  }
}
