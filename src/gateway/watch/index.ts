/** etcd's Watch service (docs/watch.md). */
export { watchService, DEFAULT_PROGRESS_NOTIFY_INTERVAL_MS, PROGRESS_NOTIFY_INTERVAL_MS_MIN, type WatchService } from './service.js';
export type { WatchStreamOptions } from './stream.js';
export { WatchMetrics } from './metrics.js';
