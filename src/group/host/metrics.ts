/**
 * The host's Prometheus metrics, in a registry of its own (never the global
 * default one), so several nodes in one process keep separate figures.
 * etcd's names are used where a counterpart exists; the rest are keyspan_*.
 * Transport and log-store counters are plain fields in those modules and
 * are read at scrape time.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { SeriesHistogram, type HistogramSeries } from '../../metrics/histogram.js';
import { registerMirroredCounter } from '../../metrics/mirrored.js';
import type { LogStoreCounters } from '../log-store/index.js';
import type { TransportStats } from '../transport/index.js';
import type { RaftReadCounters } from '../raft/index.js';

/** Bucket bounds of etcd's etcd_disk_wal_fsync_duration_seconds (0.001 s .. ~4 s, doubling). */
const FSYNC_BUCKETS = Array.from({ length: 14 }, (_, i) => 0.001 * 2 ** i);
/** Bucket bounds of apply durations (0.1 ms .. ~1.6 s). */
const APPLY_BUCKETS = Array.from({ length: 15 }, (_, i) => 0.0001 * 2 ** i);

/**
 * A counter the loop bumps as a plain number, read into its prom-client
 * counter at scrape time: prom-client looks up a label key on every
 * increment, and the loop increments several counters per turn.
 */
export class Tally {
  value = 0;
  inc(by = 1): void {
    this.value += by;
  }
}

/** Values the host computes at scrape time. */
export interface HostGauges {
  proposalsPending(): number;
  /** 1 if every local group knows a leader. */
  hasLeader(): number;
  /** Dormant: leaderless and not ticking until admitted to an election or needed (election-queue.ts). */
  groups(): { total: number; active: number; quiesced: number; dormant: number };
  /** Read points confirmed as leader, by how (monotonic). */
  reads(): RaftReadCounters;
  /** Leader leases forfeited, by cause (monotonic). */
  leaseForfeits(): { quiesce: number; ticksBehind: number };
}

/** The metrics of one host. */
export class HostMetrics {
  /** The node's registry: expose `registry.metrics()` on /metrics. */
  readonly registry: Registry;
  readonly proposalsCommitted: Tally;
  readonly proposalsApplied: Tally;
  readonly proposalsFailed: Counter;
  readonly leaderChanges: Counter;
  readonly fsyncDuration: HistogramSeries;
  readonly applyDuration: HistogramSeries;
  readonly snapshotsSent: Counter;
  readonly snapshotsReceived: Counter;
  readonly loopTurns: Tally;
  readonly readysHandled: Tally;
  readonly heartbeatsSent: Tally;
  readonly coalescedMessages: Counter;
  readonly quiesceEvents: Counter;
  readonly logTruncations: Counter;

  constructor(gauges: HostGauges, transport: () => TransportStats, logStore: () => LogStoreCounters, labels: Record<string, string> = {}) {
    const registry = new Registry();
    if (Object.keys(labels).length > 0) registry.setDefaultLabels(labels);
    this.registry = registry;
    const counter = (name: string, help: string): Counter => new Counter({ name, help, registers: [registry] });
    /** A counter whose value is read at scrape time. */
    const mirrored = (name: string, help: string, read: () => number): void => registerMirroredCounter(registry, name, help, read);
    const tally = (name: string, help: string): Tally => {
      const t = new Tally();
      mirrored(name, help, () => t.value);
      return t;
    };
    this.proposalsCommitted = tally('etcd_server_proposals_committed_total', 'Proposals (normal entries with data) committed, all groups.');
    this.proposalsApplied = tally('etcd_server_proposals_applied_total', 'Proposals (normal entries with data) applied, all groups.');
    this.proposalsFailed = counter('etcd_server_proposals_failed_total', 'Proposals refused by raft or by backpressure.');
    this.leaderChanges = counter('etcd_server_leader_changes_seen_total', 'Leader changes seen, all groups.');
    this.snapshotsSent = counter('keyspan_snapshots_sent_total', 'Raft snapshots handed to the transport.');
    this.snapshotsReceived = counter('keyspan_snapshots_received_total', 'Raft snapshots installed.');
    this.loopTurns = tally('keyspan_host_loop_turns_total', 'Turns of the driving loop.');
    this.readysHandled = tally('keyspan_host_readys_total', 'Readys handled (persisted in a shared flush).');
    this.heartbeatsSent = tally('keyspan_host_heartbeats_sent_total', 'Raft heartbeats sent (quiesce heartbeats included).');
    this.coalescedMessages = counter('keyspan_host_coalesced_heartbeat_messages_total', 'Messages that carried several groups\' heartbeats to one peer.');
    this.quiesceEvents = counter('keyspan_host_quiesce_total', 'Times a group quiesced.');
    this.logTruncations = counter('keyspan_host_log_truncations_total', 'Raft log truncations after a state-machine snapshot.');
    this.fsyncDuration = new SeriesHistogram(
      'etcd_disk_wal_fsync_duration_seconds',
      'Duration of log store flushes (one fsync for every group of a loop turn).',
      registry,
      FSYNC_BUCKETS,
    ).series({});
    this.applyDuration = new SeriesHistogram(
      'keyspan_apply_duration_seconds',
      'Duration of one applyEntries call of a group state machine.',
      registry,
      APPLY_BUCKETS,
    ).series({});
    new Gauge({
      name: 'etcd_server_proposals_pending',
      help: 'Proposals of this node in flight (proposed, not yet applied).',
      registers: [registry],
      collect() {
        this.set(gauges.proposalsPending());
      },
    });
    new Gauge({
      name: 'etcd_server_has_leader',
      help: '1 if every group on this node has a leader, else 0.',
      registers: [registry],
      collect() {
        this.set(gauges.hasLeader());
      },
    });
    new Gauge({
      name: 'keyspan_groups',
      help: 'Raft groups on this node, by state.',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        const g = gauges.groups();
        this.set({ state: 'total' }, g.total);
        this.set({ state: 'active' }, g.active);
        this.set({ state: 'quiesced' }, g.quiesced);
        this.set({ state: 'dormant' }, g.dormant);
      },
    });
    new Counter({
      name: 'keyspan_linearizable_reads_total',
      help: 'Read points this node confirmed as a group leader, by how: lease (no round trip), read_index (a heartbeat quorum round), single_voter.',
      labelNames: ['via'],
      registers: [registry],
      collect() {
        const r = gauges.reads();
        this.reset();
        this.inc({ via: 'lease' }, r.lease);
        this.inc({ via: 'read_index' }, r.heartbeatQuorum);
        this.inc({ via: 'single_voter' }, r.singleVoter);
      },
    });
    new Counter({
      name: 'keyspan_host_lease_forfeits_total',
      help: 'Leader leases ended early by the host, by reason: quiesce (a quiesced leader is not ticked), ticks_behind (ticks fell behind real time).',
      labelNames: ['reason'],
      registers: [registry],
      collect() {
        const f = gauges.leaseForfeits();
        this.reset();
        this.inc({ reason: 'quiesce' }, f.quiesce);
        this.inc({ reason: 'ticks_behind' }, f.ticksBehind);
      },
    });
    mirrored('keyspan_transport_messages_sent_total', 'Raft messages sent by the transport.', () => transport().messagesSent);
    mirrored('keyspan_transport_messages_received_total', 'Raft messages received by the transport.', () => transport().messagesReceived);
    mirrored('keyspan_transport_messages_dropped_total', 'Raft messages the transport dropped.', () => transport().messagesDropped);
    mirrored('keyspan_transport_batches_sent_total', 'Message batches sent (one per peer per loop turn at most).', () => transport().batchesSent);
    mirrored('keyspan_transport_bytes_sent_total', 'Bytes of message batches sent.', () => transport().bytesSent);
    mirrored('keyspan_transport_bytes_received_total', 'Bytes of message batches received.', () => transport().bytesReceived);
    mirrored('keyspan_transport_unreachable_reports_total', 'Peers reported unreachable.', () => transport().unreachableReports);
    mirrored('keyspan_logstore_flushes_total', 'Log store batches flushed.', () => logStore().batchesFlushed);
    mirrored('keyspan_logstore_fsyncs_total', 'Log store fsyncs.', () => logStore().fsyncs);
    mirrored('keyspan_logstore_entries_written_total', 'Raft entries written by the log store.', () => logStore().entriesWritten);
    mirrored('keyspan_logstore_bytes_written_total', 'Bytes written by the log store.', () => logStore().bytesWritten);
    mirrored('keyspan_logstore_garbage_keys_deleted_total', 'Truncated entry keys deleted.', () => logStore().garbageKeysDeleted);
  }
}
