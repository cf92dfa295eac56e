/**
 * Metrics of the raft log's WAL engine (docs/storage.md, "The WAL engine"),
 * read from its counters at scrape time, on the node's registry.
 */
import { Gauge, type Registry } from 'prom-client';
import { registerMirroredCounter } from '../metrics/mirrored.js';
import type { WalCounters, WalEngine } from '../storage/index.js';

/** Registers the WAL's counters and its bytes in use on `registry`. */
export function registerWalMetrics(registry: Registry, wal: WalEngine): void {
  const counter = (name: string, help: string, field: keyof WalCounters): void =>
    registerMirroredCounter(registry, name, help, () => wal.counters[field]);
  counter('keyspan_wal_appends_total', 'Appends to the raft log WAL (one positional write of the queued records each).', 'appends');
  counter('keyspan_wal_syncs_total', 'Synced appends and fdatasyncs of the raft log WAL.', 'syncs');
  counter('keyspan_wal_inline_appends_total', 'Small synced appends of the raft log WAL written on the main thread.', 'inlineAppends');
  counter('keyspan_wal_bytes_appended_total', 'Bytes appended to the raft log WAL.', 'bytesAppended');
  counter('keyspan_wal_segments_started_total', 'Raft log WAL segments started.', 'segmentsStarted');
  counter('keyspan_wal_checkpoints_total', 'Checkpoints of the raft log WAL written.', 'checkpoints');
  counter('keyspan_wal_checkpoint_bytes_total', 'Bytes of raft log WAL checkpoints written.', 'checkpointBytes');
  new Gauge({
    name: 'keyspan_wal_log_bytes',
    help: 'Bytes of the raft log WAL in use: its checkpoint and the records after it.',
    registers: [registry],
    collect() {
      this.set(wal.logBytes);
    },
  });
}
