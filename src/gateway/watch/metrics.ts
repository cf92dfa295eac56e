/**
 * etcd's watch gauges, under etcd's names (mvcc/metrics.go):
 * `etcd_debugging_mvcc_watch_stream_total`, `etcd_debugging_mvcc_watcher_total`
 * and `etcd_debugging_mvcc_slow_watcher_total` (watchers reading history
 * instead of receiving new revisions directly: new watchers from a past
 * revision and watchers whose client fell behind).
 */
import { Gauge, type Registry } from 'prom-client';

/** The watch gauges of one registry (shared by every watch service on it). */
export class WatchMetrics {
  readonly streams: Gauge;
  readonly watchers: Gauge;
  readonly slowWatchers: Gauge;

  private static readonly byRegistry = new WeakMap<Registry, WatchMetrics>();

  /** The gauges on `registry`, registered on first use; without one, gauges that count but are exported nowhere. */
  static of(registry: Registry | undefined): WatchMetrics {
    if (registry === undefined) return new WatchMetrics([]);
    let m = WatchMetrics.byRegistry.get(registry);
    if (m === undefined) {
      m = new WatchMetrics([registry]);
      WatchMetrics.byRegistry.set(registry, m);
    }
    return m;
  }

  private constructor(registers: Registry[]) {
    this.streams = new Gauge({ name: 'etcd_debugging_mvcc_watch_stream_total', help: 'Total number of watch streams.', registers });
    this.watchers = new Gauge({ name: 'etcd_debugging_mvcc_watcher_total', help: 'Total number of watchers.', registers });
    this.slowWatchers = new Gauge({
      name: 'etcd_debugging_mvcc_slow_watcher_total',
      help: 'Total number of unsynced slow watchers.',
      registers,
    });
  }
}
