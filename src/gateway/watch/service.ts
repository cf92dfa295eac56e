/**
 * etcdserverpb.Watch served from the local replicas' applied history (any
 * replica serves a watch; a follower lags slightly but never shows
 * uncommitted data). One {@link WatchHubs} per service: a range's watchers
 * from every stream share one history read per new revision.
 */
import type { GatewayContext, ServiceHandlers, StreamHandler } from '../context.js';
import { DEFAULT_ELECTION_TIMEOUT_MS } from '../validate.js';
import { WatchHubs } from './hub.js';
import { WatchMetrics } from './metrics.js';
import { WatchStream, type WatchStreamOptions } from './stream.js';
import { WATCHER_BUFFER_BYTES_MAX, WATCHER_BUFFER_EVENTS_MAX } from './watcher.js';

/** etcd's default progress-notify interval: 10 minutes. */
export const DEFAULT_PROGRESS_NOTIFY_INTERVAL_MS = 10 * 60 * 1000;
/** etcd's lower bound on the progress-notify interval. */
export const PROGRESS_NOTIFY_INTERVAL_MS_MIN = 100;

/** The Watch service's handlers plus what operators and tests read of it. */
export interface WatchService {
  readonly handlers: ServiceHandlers;
  /** Hubs alive (one per range with watchers). */
  readonly hubs: WatchHubs;
}

/** Builds the Watch service; options default to etcd's values. */
export function watchService(ctx: GatewayContext, options: Partial<WatchStreamOptions> = {}): WatchService {
  const resolved: WatchStreamOptions = {
    progressNotifyIntervalMs: Math.max(options.progressNotifyIntervalMs ?? DEFAULT_PROGRESS_NOTIFY_INTERVAL_MS, PROGRESS_NOTIFY_INTERVAL_MS_MIN),
    leaderCheckIntervalMs: options.leaderCheckIntervalMs ?? DEFAULT_ELECTION_TIMEOUT_MS,
    bufferEventsMax: options.bufferEventsMax ?? WATCHER_BUFFER_EVENTS_MAX,
    bufferBytesMax: options.bufferBytesMax ?? WATCHER_BUFFER_BYTES_MAX,
  };
  const metrics = WatchMetrics.of(ctx.rpcMetrics?.registry);
  const hubs = new WatchHubs(metrics);
  const watch: StreamHandler = {
    streaming: 'bidi',
    run: (rpc) => new WatchStream(ctx, hubs, metrics, resolved, rpc).run(),
  };
  return { handlers: { Watch: watch }, hubs };
}
