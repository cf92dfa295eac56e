/**
 * The host's clock: raft counts time in ticks, and the host gets its ticks
 * from an injected Ticker, so tests and the simulator can drive time
 * themselves while production uses a real interval timer.
 */

/** A source of ticks. `start` may be called again after `stop`. */
export interface Ticker {
  /**
   * The real-time period of a tick, if ticks follow a wall clock. The host then checks before
   * each lease read that its ticks keep up with real time (lease-clock.ts). Undefined: ticks
   * are the only time (tests, simulation).
   */
  readonly intervalMs?: number;
  /** Calls `onTick` once per tick until `stop()`. */
  start(onTick: () => void): void;
  /** Stops ticking; idempotent. */
  stop(): void;
}

/** Smallest tick interval accepted: below it timers mostly measure event-loop jitter. */
export const TICK_INTERVAL_MS_MIN = 1;
/** Default tick interval: with heartbeatTick 1 and electionTick 10 this is etcd's 100 ms heartbeat / 1 s election. */
export const TICK_INTERVAL_MS_DEFAULT = 100;

/**
 * A real ticker on the wall clock: tick k fires at start + k * intervalMs (or as soon as the
 * event loop allows after it). Each timer is set for the next due time, so timer lateness does
 * not accumulate as it does with setInterval, whose ticks drift behind real time: leader leases
 * are counted in ticks and must not outlast real time (lease-clock.ts). Ticks missed while the
 * event loop was blocked are skipped, not fired in a burst: a burst would expire election
 * timers at once (etcd drops missed ticks too); the host's LeaseClock sees the gap.
 */
export class IntervalTicker implements Ticker {
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly intervalMs: number = TICK_INTERVAL_MS_DEFAULT) {
    if (!Number.isFinite(intervalMs) || intervalMs < TICK_INTERVAL_MS_MIN) {
      throw new RangeError(`tick interval must be >= ${TICK_INTERVAL_MS_MIN} ms, got ${intervalMs}`);
    }
  }

  start(onTick: () => void): void {
    this.stop();
    const startMs = performance.now();
    let ticks = 0;
    const schedule = (): void => {
      const dueMs = startMs + (ticks + 1) * this.intervalMs;
      this.timer = setTimeout(() => {
        ticks = Math.max(ticks + 1, Math.floor((performance.now() - startMs) / this.intervalMs));
        schedule();
        onTick();
      }, Math.max(0, dueMs - performance.now()));
    };
    schedule();
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** A ticker driven by hand (`tick()`), for deterministic tests. */
export class ManualTicker implements Ticker {
  private onTick: (() => void) | undefined;

  start(onTick: () => void): void {
    this.onTick = onTick;
  }

  stop(): void {
    this.onTick = undefined;
  }

  /** Delivers `n` ticks now (nothing if stopped). */
  tick(n = 1): void {
    for (let i = 0; i < n; i++) this.onTick?.();
  }
}
