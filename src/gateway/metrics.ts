/**
 * The client server's Prometheus metrics, on the node's own registry (never
 * prom-client's global one), under the names etcd exposes:
 *
 * - go-grpc-prometheus' server metrics, which etcd registers for its gRPC
 *   server: `grpc_server_started_total`, `grpc_server_handled_total` (with
 *   `grpc_code` as Go's codes.Code names), `grpc_server_msg_received_total`,
 *   `grpc_server_msg_sent_total` and the `grpc_server_handling_seconds`
 *   histogram (etcd only with `--metrics=extensive`). As in go-grpc-prometheus
 *   every method's series start at 0 for every code. The JSON gateway's calls
 *   count as the gRPC calls they stand for (etcd's grpc-gateway calls its
 *   gRPC server, so they count there too).
 * - `etcd_network_client_grpc_{received,sent}_bytes_total`: encoded request
 *   and response bytes (protobuf for gRPC, JSON bodies for the gateway).
 * - store gauges, read at scrape time: `etcd_mvcc_db_total_size_in_bytes`
 *   (and its 3.4 alias `etcd_debugging_mvcc_db_total_size_in_bytes`,
 *   `etcd_mvcc_db_total_size_in_use_in_bytes`: the size Status reports),
 *   `etcd_debugging_mvcc_current_revision`, `etcd_server_is_leader`.
 * - `/health` outcomes: `etcd_server_health_success` and
 *   `etcd_server_health_failures`.
 */
import * as grpc from '@grpc/grpc-js';
import { Counter, Gauge, type Registry } from 'prom-client';
import { SeriesHistogram, type HistogramSeries } from '../metrics/histogram.js';
import type { GatewayContext } from './context.js';

/** Go's names of the gRPC status codes (codes.Code.String()), indexed by code. */
export const GRPC_CODE_NAMES: readonly string[] = [
  'OK',
  'Canceled',
  'Unknown',
  'InvalidArgument',
  'DeadlineExceeded',
  'NotFound',
  'AlreadyExists',
  'PermissionDenied',
  'ResourceExhausted',
  'FailedPrecondition',
  'Aborted',
  'OutOfRange',
  'Unimplemented',
  'Internal',
  'Unavailable',
  'DataLoss',
  'Unauthenticated',
];

/** go-grpc-prometheus' grpc_type values. */
export type GrpcType = 'unary' | 'client_stream' | 'server_stream' | 'bidi_stream';

/** Where the store gauges read their values (the gateway context). */
type GaugeSource = Pick<GatewayContext, 'router' | 'member' | 'memberIdOfNode' | 'dbSizeBytes'>;

/**
 * One method's metrics. Its counters are plain numbers here, added to the
 * prom-client counters when the registry is read (their `collect`), because
 * prom-client builds and looks up a label-set key on every increment — four
 * counter increments per call cost more than the call's other bookkeeping.
 * The latency histogram's series is this method's own (src/metrics/histogram.ts).
 */
export class MethodMetrics {
  private readonly labels: Record<string, string>;
  private readonly handledLabels: Record<string, string>[];
  private readonly latency: HistogramSeries;
  private started = 0;
  private received = 0;
  private sent = 0;
  /** Calls ended per gRPC code (index = code) since the last flush. */
  private readonly handled: number[] = GRPC_CODE_NAMES.map(() => 0);
  private pending = false;

  constructor(
    private readonly m: GatewayMetrics,
    type: GrpcType,
    service: string,
    method: string,
  ) {
    this.labels = { grpc_type: type, grpc_service: service, grpc_method: method };
    this.handledLabels = GRPC_CODE_NAMES.map((code) => ({ ...this.labels, grpc_code: code }));
    this.latency = m.handlingSeconds.series(this.labels);
    // go-grpc-prometheus pre-registers every method's series at 0.
    m.started.inc(this.labels, 0);
    m.msgReceived.inc(this.labels, 0);
    m.msgSent.inc(this.labels, 0);
    for (const l of this.handledLabels) m.handled.inc(l, 0);
  }

  /** A call began (one request message received); returns its start time. */
  start(): number {
    this.started++;
    this.received++;
    this.markPending();
    return performance.now();
  }

  /** The call that began at `startMs` ended with gRPC status `code`. */
  done(startMs: number, code: number): void {
    const i = code >= 0 && code < this.handled.length ? code : grpc.status.UNKNOWN;
    this.handled[i]!++;
    if (code === grpc.status.OK) this.sent++;
    this.markPending();
    this.latency.observe((performance.now() - startMs) / 1000);
  }

  /** Adds the counts since the last flush to the prom-client counters. */
  flush(): void {
    if (!this.pending) return;
    this.pending = false;
    if (this.started > 0) this.m.started.inc(this.labels, this.started);
    if (this.received > 0) this.m.msgReceived.inc(this.labels, this.received);
    if (this.sent > 0) this.m.msgSent.inc(this.labels, this.sent);
    this.started = this.received = this.sent = 0;
    for (let code = 0; code < this.handled.length; code++) {
      const n = this.handled[code]!;
      if (n > 0) this.m.handled.inc(this.handledLabels[code]!, n);
      this.handled[code] = 0;
    }
  }

  private markPending(): void {
    if (!this.pending) {
      this.pending = true;
      this.m.markPending(this);
    }
  }
}

const LABELS = ['grpc_type', 'grpc_service', 'grpc_method'] as const;

/** The gateway's metrics on one registry (one instance per registry: see {@link GatewayMetrics.of}). */
export class GatewayMetrics {
  readonly started: Counter;
  readonly handled: Counter;
  readonly msgReceived: Counter;
  readonly msgSent: Counter;
  readonly handlingSeconds: SeriesHistogram;
  readonly receivedBytes: Counter;
  readonly sentBytes: Counter;
  readonly healthSuccess: Counter;
  readonly healthFailures: Counter;
  private readonly methods = new Map<string, MethodMetrics>();
  /** Methods with counts not yet added to the counters. */
  private readonly pending = new Set<MethodMetrics>();
  /** Bytes not yet added to the byte counters. */
  private receivedPending = 0;
  private sentPending = 0;
  /** The context the gauges read; the latest server started on the registry. */
  private source: GaugeSource | undefined;

  private static readonly byRegistry = new WeakMap<Registry, GatewayMetrics>();

  /**
   * The gateway metrics of `registry`, created on first use; the store
   * gauges read `source` from now on (a server restarted on the same node
   * registry takes them over instead of registering the names twice).
   */
  static of(registry: Registry, source: GaugeSource): GatewayMetrics {
    let m = GatewayMetrics.byRegistry.get(registry);
    if (m === undefined) {
      m = new GatewayMetrics(registry);
      GatewayMetrics.byRegistry.set(registry, m);
    }
    m.source = source;
    return m;
  }

  private constructor(
    /** The registry these metrics are on (other gateway parts add theirs to it, e.g. the watch gauges). */
    readonly registry: Registry,
  ) {
    const registers = [registry];
    const self = this;
    // Reading any of the call counters brings all of them up to date.
    const collect = (): void => self.flush();
    this.started = new Counter({
      name: 'grpc_server_started_total',
      help: 'Total number of RPCs started on the server.',
      labelNames: LABELS,
      registers,
      collect,
    });
    this.handled = new Counter({
      name: 'grpc_server_handled_total',
      help: 'Total number of RPCs completed on the server, regardless of success or failure.',
      labelNames: [...LABELS, 'grpc_code'],
      registers,
      collect,
    });
    this.msgReceived = new Counter({
      name: 'grpc_server_msg_received_total',
      help: 'Total number of RPC stream messages received on the server.',
      labelNames: LABELS,
      registers,
      collect,
    });
    this.msgSent = new Counter({
      name: 'grpc_server_msg_sent_total',
      help: 'Total number of gRPC stream messages sent by the server.',
      labelNames: LABELS,
      registers,
      collect,
    });
    // Prometheus' DefBuckets, go-grpc-prometheus' default.
    this.handlingSeconds = new SeriesHistogram(
      'grpc_server_handling_seconds',
      'Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.',
      registry,
    );
    this.receivedBytes = new Counter({
      name: 'etcd_network_client_grpc_received_bytes_total',
      help: 'The total number of bytes received from grpc clients.',
      registers,
      collect,
    });
    this.sentBytes = new Counter({
      name: 'etcd_network_client_grpc_sent_bytes_total',
      help: 'The total number of bytes sent to grpc clients.',
      registers,
      collect,
    });
    this.healthSuccess = new Counter({
      name: 'etcd_server_health_success',
      help: 'The total number of successful health checks',
      registers,
    });
    this.healthFailures = new Counter({
      name: 'etcd_server_health_failures',
      help: 'The total number of failed health checks',
      registers,
    });

    const dbSize = (name: string, help: string): void => {
      new Gauge({
        name,
        help,
        registers,
        async collect() {
          const src = self.source;
          this.set(src === undefined ? 0 : await src.dbSizeBytes().catch(() => 0));
        },
      });
    };
    dbSize('etcd_mvcc_db_total_size_in_bytes', 'Total size of the underlying database physically allocated in bytes.');
    dbSize('etcd_debugging_mvcc_db_total_size_in_bytes', 'Total size of the underlying database physically allocated in bytes.');
    dbSize('etcd_mvcc_db_total_size_in_use_in_bytes', 'Total size of the underlying database logically in use in bytes.');
    new Gauge({
      name: 'etcd_debugging_mvcc_current_revision',
      help: 'The current revision of store (the largest of the node\'s ranges).',
      registers,
      collect() {
        let rev = 0;
        for (const t of self.source?.router.ranges() ?? []) if (t.replica.isInitialized) rev = Math.max(rev, t.replica.currentRevision);
        this.set(rev);
      },
    });
    new Gauge({
      name: 'etcd_debugging_mvcc_keys_total',
      help: 'Total number of keys (live keys of the node\'s ranges).',
      registers,
      collect() {
        let keys = 0;
        for (const t of self.source?.router.ranges() ?? []) if (t.replica.isInitialized) keys += t.replica.keyCount;
        this.set(keys);
      },
    });
    new Gauge({
      name: 'etcd_server_is_leader',
      help: 'Whether or not this member is a leader (of the range Status reports). 1 if is, 0 otherwise.',
      registers,
      collect() {
        const src = self.source;
        const st = src?.router.ranges()[0]?.raftStatus();
        this.set(src !== undefined && st !== undefined && st.leader !== 0 && src.memberIdOfNode(st.leader) === src.member.id ? 1 : 0);
      },
    });
  }

  /** @internal `m` has counts to add at the next flush. */
  markPending(m: MethodMetrics): void {
    this.pending.add(m);
  }

  /** Adds every count kept since the last read to the prom-client counters. */
  flush(): void {
    for (const m of this.pending) m.flush();
    this.pending.clear();
    if (this.receivedPending > 0) this.receivedBytes.inc(this.receivedPending);
    if (this.sentPending > 0) this.sentBytes.inc(this.sentPending);
    this.receivedPending = this.sentPending = 0;
  }

  /** The pre-resolved metrics of one method (created, with its zero series, on first use). */
  method(service: string, method: string, type: GrpcType = 'unary'): MethodMetrics {
    const key = `${type} ${service}/${method}`;
    let m = this.methods.get(key);
    if (m === undefined) {
      m = new MethodMetrics(this, type, service, method);
      this.methods.set(key, m);
    }
    return m;
  }

  /**
   * `def` with byte counting: each request's encoded size as it is decoded,
   * each response's as it is encoded.
   */
  countBytes(def: grpc.ServiceDefinition<grpc.UntypedServiceImplementation>): grpc.ServiceDefinition<grpc.UntypedServiceImplementation> {
    const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
    for (const [name, md] of Object.entries(def)) {
      const m = md as grpc.MethodDefinition<unknown, unknown>;
      out[name] = {
        ...m,
        requestDeserialize: (buf: Buffer) => {
          this.receivedPending += buf.length;
          return m.requestDeserialize(buf);
        },
        responseSerialize: (msg: unknown) => {
          const buf = m.responseSerialize(msg);
          this.sentPending += buf.length;
          return buf;
        },
      };
    }
    return out as grpc.ServiceDefinition<grpc.UntypedServiceImplementation>;
  }
}
