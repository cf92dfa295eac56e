/**
 * Keeps leader leases honest about real time. Raft measures a lease in
 * ticks (docs/raft.md, "Lease-based"): it is sound only while the leader's
 * tick count does not fall behind real time. The host drops ticks that pile
 * up during a slow turn (so a slow disk slows elections instead of causing
 * them), and a lease read may arrive while a tick is overdue; either would
 * let a lease outlive the followers' promise. This guard compares the ticks
 * applied with the ticks due by the wall clock and says when leases must be
 * forfeited. Pure: the caller passes the time.
 *
 * The invariant it keeps: every tick h was applied at or after
 * `baseMs + h * periodMs` (the base only moves down, except when every
 * lease is forfeited at once). With a lease read allowed only while fewer
 * than LEASE_TICKS_BEHIND_MAX ticks are due and not applied, a read at
 * clock c on a lease confirmed by a heartbeat stamped s happens less than
 * (c - s + LEASE_TICKS_BEHIND_MAX) periods after that heartbeat left; the
 * host's lease margin (hostLeaseDriftMarginTicks) pays for the extra tick.
 */
import { defaultLeaseDriftMarginTicks } from '../raft/index.js';

/** Lease reads are refused (the lease forfeited) once this many ticks are due and not applied. */
export const LEASE_TICKS_BEHIND_MAX = 2;

/**
 * The lease margin the host gives raft: raft's default (one tick for the tick phase, about 10%
 * for tick-rate differences) plus one tick, since a tick due may be applied up to a tick late
 * (LEASE_TICKS_BEHIND_MAX - 1 ticks behind are tolerated). Capped at electionTick - 1.
 */
export function hostLeaseDriftMarginTicks(electionTick: number): number {
  return Math.min(electionTick - 1, defaultLeaseDriftMarginTicks(electionTick) + LEASE_TICKS_BEHIND_MAX - 1);
}

/** Tracks ticks applied against ticks due by a wall clock of period `periodMs`. */
export class LeaseClock {
  private baseMs: number;
  private ticks = 0;

  constructor(
    readonly periodMs: number,
    nowMs: number,
  ) {
    if (!(periodMs > 0)) throw new RangeError(`tick period must be > 0 ms, got ${periodMs}`);
    this.baseMs = nowMs;
  }

  /** Ticks due by `nowMs` and not applied yet. */
  behind(nowMs: number): number {
    return Math.floor((nowMs - this.baseMs) / this.periodMs) - this.ticks;
  }

  /** May a lease read be served at `nowMs`? (If not, forfeit the group's lease first.) */
  leaseUsable(nowMs: number): boolean {
    return this.behind(nowMs) < LEASE_TICKS_BEHIND_MAX;
  }

  /**
   * A tick is applied at `nowMs` (call before ticking the groups). Returns true when ticks fell
   * behind real time: the caller must forfeit every leader's lease before ticking; the guard
   * then starts over from this tick.
   */
  onTick(nowMs: number): boolean {
    this.ticks++;
    // A tick applied earlier than the base predicts (the timer fired early) moves the base down.
    this.baseMs = Math.min(this.baseMs, nowMs - this.ticks * this.periodMs);
    if (this.leaseUsable(nowMs)) return false;
    this.baseMs = nowMs - this.ticks * this.periodMs;
    return true;
  }
}
