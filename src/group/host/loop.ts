/**
 * The driving loop's scheduler: ONE loop per node. Triggers (a tick, an
 * incoming message, a proposal, a transport report) only mark work and call
 * `wake()`; wakes are coalesced with setImmediate, so every trigger that
 * arrives in one event-loop turn is handled by the same loop turn. Turns
 * never overlap: a wake during a turn schedules exactly one more turn after
 * it. A turn that throws stops the loop and reports the error (a broken
 * invariant or a failed log store must not be retried blindly).
 */

/** Runs `turn` on demand, one at a time, coalescing wakes. */
export class DriveLoop {
  private scheduled: NodeJS.Immediate | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly turn: () => Promise<boolean>,
    private readonly onError: (e: unknown) => void,
  ) {}

  /** Asks for a turn soon (coalesced). */
  wake(): void {
    if (this.stopped) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    this.scheduled ??= setImmediate(() => {
      this.scheduled = undefined;
      this.run();
    });
  }

  /** True while a turn runs. */
  get busy(): boolean {
    return this.running !== undefined;
  }

  /** Stops scheduling turns and resolves once the current one (if any) is done. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    if (this.running !== undefined) await this.running.catch(() => undefined);
  }

  /** Resolves when the turn running now (if any) has finished; later turns are not waited for. */
  async settle(): Promise<void> {
    if (this.running !== undefined) await this.running.catch(() => undefined);
  }

  /** Resolves when no turn is running or scheduled. */
  idle(): Promise<void> {
    if (this.running === undefined && this.scheduled === undefined) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private run(): void {
    if (this.stopped) return;
    this.again = false;
    this.running = this.turn().then(
      (more) => {
        this.running = undefined;
        // More work left by the per-turn bounds, or triggers that arrived during the turn.
        if (more || this.again) this.wake();
        else this.notifyIdle();
      },
      (e: unknown) => {
        this.running = undefined;
        this.stopped = true;
        this.notifyIdle();
        this.onError(e);
      },
    );
  }

  private notifyIdle(): void {
    if (this.scheduled !== undefined || this.running !== undefined) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
