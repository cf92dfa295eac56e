/**
 * When to compact automatically (etcd's --auto-compaction-mode and
 * --auto-compaction-retention, etcd 3.4 etcdserver/api/v3compactor): pure
 * decisions from the time of each check, the revision seen then and whether
 * this member leads; no timers, no I/O. The driver (compactor.ts) calls
 * {@link CompactionSchedule.check} every {@link CompactionSchedule.checkIntervalMs}
 * and reports each compaction's outcome with {@link CompactionSchedule.done}.
 *
 * Periodic (retention P): a revision is sampled every P/10 (P capped at one
 * hour for the sampling step), keeping the samples of the last P; nothing is
 * compacted during the first P; then, every min(P, 1h) after the last
 * successful compaction, the oldest kept sample (the revision of about P
 * ago) is compacted. A failed compaction is retried at the next check.
 *
 * Revision (retention N): every check (etcd: 5 minutes) compacts
 * `current - N`, unless that is not positive or was already compacted.
 *
 * As etcd, only the leader compacts: a follower keeps sampling (so a new
 * leader compacts on the same timeline) but never issues a compaction.
 */

/** How history is compacted automatically. */
export type CompactionPolicy =
  /** Keep about `retentionMs` of history. */
  | { readonly mode: 'periodic'; readonly retentionMs: number }
  /** Keep the last `retentionRevisions` revisions. */
  | { readonly mode: 'revision'; readonly retentionRevisions: number };

/** etcd's check interval of revision mode: 5 minutes. */
export const REVISION_COMPACTION_CHECK_INTERVAL_MS = 5 * 60 * 1000;
/** Periodic mode compacts at most this often, and samples every tenth of it (etcd: one hour). */
export const PERIODIC_COMPACTION_INTERVAL_MS_MAX = 60 * 60 * 1000;
/** Samples per compaction interval in periodic mode (etcd's retryDivisor). */
export const PERIODIC_SAMPLES_PER_INTERVAL = 10;
/** Smallest periodic retention: the sampling step must be at least 1 ms. */
export const PERIODIC_RETENTION_MS_MIN = PERIODIC_SAMPLES_PER_INTERVAL;
/** Most revision samples kept (a retention of 1000 hours sampled every 6 minutes). */
export const PERIODIC_SAMPLES_MAX = 10_001;

/** Pure scheduling state of one member's automatic compaction. */
export interface CompactionSchedule {
  /** Time between two checks. */
  readonly checkIntervalMs: number;
  /**
   * A check at `nowMs` seeing `revision` as current: the revision to compact
   * now, or undefined. `leader` false: never compact (sampling continues).
   */
  check(nowMs: number, revision: number, leader: boolean): number | undefined;
  /** The outcome of compacting `revision` (already compacted counts as success). */
  done(nowMs: number, revision: number, ok: boolean): void;
}

/** The schedule of `policy`, started at `startMs` with `revision` current. */
export function compactionSchedule(
  policy: CompactionPolicy,
  startMs: number,
  revision: number,
  options: { revisionCheckIntervalMs?: number } = {},
): CompactionSchedule {
  switch (policy.mode) {
    case 'periodic':
      return new PeriodicSchedule(policy.retentionMs, startMs, revision);
    case 'revision':
      return new RevisionSchedule(policy.retentionRevisions, options.revisionCheckIntervalMs ?? REVISION_COMPACTION_CHECK_INTERVAL_MS);
  }
}

/** Periodic mode (see the module comment). */
export class PeriodicSchedule implements CompactionSchedule {
  readonly checkIntervalMs: number;
  /** Time between compactions once the first retention period has passed. */
  readonly compactIntervalMs: number;
  /** Samples kept: the oldest is the revision of one retention period ago. */
  readonly samplesKept: number;
  private readonly samples: number[];
  private lastSuccessMs: number;
  /** The first retention period must pass before the first compaction. */
  private waitMs: number;

  constructor(
    readonly retentionMs: number,
    startMs: number,
    revision: number,
  ) {
    if (!Number.isSafeInteger(retentionMs) || retentionMs < PERIODIC_RETENTION_MS_MIN) {
      throw new RangeError(`periodic retention must be an integer >= ${PERIODIC_RETENTION_MS_MIN} ms, got ${retentionMs}`);
    }
    this.compactIntervalMs = Math.min(retentionMs, PERIODIC_COMPACTION_INTERVAL_MS_MAX);
    this.checkIntervalMs = Math.floor(this.compactIntervalMs / PERIODIC_SAMPLES_PER_INTERVAL);
    this.samplesKept = Math.min(Math.floor(retentionMs / this.checkIntervalMs) + 1, PERIODIC_SAMPLES_MAX);
    this.samples = [revision];
    this.lastSuccessMs = startMs;
    this.waitMs = retentionMs;
  }

  check(nowMs: number, revision: number, leader: boolean): number | undefined {
    const due = leader && nowMs - this.lastSuccessMs >= this.waitMs;
    const oldest = this.samples[0];
    this.samples.push(revision);
    if (this.samples.length > this.samplesKept) this.samples.shift();
    if (!due || oldest === undefined) return undefined;
    this.waitMs = this.compactIntervalMs;
    return oldest;
  }

  done(nowMs: number, _revision: number, ok: boolean): void {
    if (ok) this.lastSuccessMs = nowMs;
  }
}

/** Revision mode (see the module comment). */
export class RevisionSchedule implements CompactionSchedule {
  private compacted = 0;

  constructor(
    readonly retentionRevisions: number,
    readonly checkIntervalMs: number,
  ) {
    if (!Number.isSafeInteger(retentionRevisions) || retentionRevisions < 1) {
      throw new RangeError(`revision retention must be a positive integer, got ${retentionRevisions}`);
    }
    if (!Number.isSafeInteger(checkIntervalMs) || checkIntervalMs < 1) throw new RangeError(`check interval must be >= 1 ms, got ${checkIntervalMs}`);
  }

  check(_nowMs: number, revision: number, leader: boolean): number | undefined {
    const target = revision - this.retentionRevisions;
    if (!leader || target <= 0 || target === this.compacted) return undefined;
    return target;
  }

  done(_nowMs: number, revision: number, ok: boolean): void {
    if (ok) this.compacted = revision;
  }
}
