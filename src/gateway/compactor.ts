/**
 * The automatic compactor of one member: a timer that feeds a
 * {@link CompactionSchedule} with the local replica's current revision and
 * raft role, and compacts through the range's replica when the schedule says
 * so. Only a member whose replica leads the range compacts (etcd runs its
 * compactor only on the leader), so members never issue duplicate
 * compactions. The compaction is the same replicated command as the KV
 * Compact RPC, issued inside the server as etcd's compactor does (no client
 * token needed when auth is on).
 */
import { CompactedError } from '../shard/mvcc/index.js';
import { compactionSchedule, type CompactionPolicy, type CompactionSchedule } from './compactor-schedule.js';
import type { RangeRouter, RangeTarget } from './router.js';

/** Start of the whole keyspace and the "every key from here" end: compaction is keyspace-wide. */
const WHOLE_KEYSPACE = { key: Buffer.alloc(0), rangeEnd: Buffer.of(0) } as const;

/** What the compactor reports, for the operator's log. */
export type CompactorEvent =
  | { readonly kind: 'compacted'; readonly revision: number }
  | { readonly kind: 'failed'; readonly revision: number; readonly error: unknown };

/** Options of {@link AutoCompactor.start}. */
export interface AutoCompactorOptions {
  readonly policy: CompactionPolicy;
  /** Routes to the local replica of the range holding the keyspace. */
  readonly router: RangeRouter;
  /** Revision mode's check interval (default etcd's 5 minutes; tests shorten it). */
  readonly revisionCheckIntervalMs?: number;
  readonly onEvent?: (event: CompactorEvent) => void;
  /** Clock (default Date.now). */
  readonly nowMs?: () => number;
}

/** A running automatic compactor; {@link close} stops it. */
export class AutoCompactor {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;

  private constructor(
    private readonly schedule: CompactionSchedule,
    private readonly options: AutoCompactorOptions,
    private readonly nowMs: () => number,
  ) {}

  /** Starts checking every schedule interval. */
  static start(options: AutoCompactorOptions): AutoCompactor {
    const nowMs = options.nowMs ?? Date.now;
    const schedule = compactionSchedule(options.policy, nowMs(), localRevision(options.router) ?? 0, {
      ...(options.revisionCheckIntervalMs !== undefined ? { revisionCheckIntervalMs: options.revisionCheckIntervalMs } : {}),
    });
    const c = new AutoCompactor(schedule, options, nowMs);
    c.timer = setInterval(() => c.tick(), schedule.checkIntervalMs);
    c.timer.unref();
    return c;
  }

  /** Stops the timer and waits for a compaction in flight. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One check; a check while the previous compaction still runs is skipped. */
  private tick(): void {
    if (this.closed || this.running !== undefined) return;
    let target: RangeTarget;
    try {
      target = this.options.router.route(WHOLE_KEYSPACE.key, WHOLE_KEYSPACE.rangeEnd);
    } catch {
      return; // no local replica yet (starting): nothing to sample
    }
    const leader = target.raftStatus().role === 'leader';
    const revision = this.schedule.check(this.nowMs(), target.replica.currentRevision, leader);
    if (revision === undefined) return;
    const t = target;
    this.running = (async () => {
      try {
        await t.replica.compact({ revision, physical: false }, { epoch: t.epoch });
        this.schedule.done(this.nowMs(), revision, true);
        this.options.onEvent?.({ kind: 'compacted', revision });
      } catch (err: unknown) {
        // Already compacted (by a client, or by a previous leader) is etcd's success too.
        const ok = err instanceof CompactedError;
        this.schedule.done(this.nowMs(), revision, ok);
        this.options.onEvent?.(ok ? { kind: 'compacted', revision } : { kind: 'failed', revision, error: err });
      } finally {
        this.running = undefined;
      }
    })();
  }
}

/** The local replica's current revision, if the range is hosted here. */
function localRevision(router: RangeRouter): number | undefined {
  try {
    return router.route(WHOLE_KEYSPACE.key, WHOLE_KEYSPACE.rangeEnd).replica.currentRevision;
  } catch {
    return undefined;
  }
}
