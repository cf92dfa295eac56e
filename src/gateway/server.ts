/**
 * The etcd v3 client server: gRPC (KV, Maintenance, Cluster, Auth, grpc.health.v1)
 * and the JSON gateway on the same client port, as etcd does.
 *
 * One port, two protocols: etcd multiplexes with cmux. Here each listener is
 * a plain `net.Server`; the first bytes of a connection decide: the HTTP/2
 * client preface (`PRI * HTTP/2.0...`, what every gRPC client sends first)
 * hands the socket to the gRPC server (src/h2/grpc-server.ts, its own HTTP/2 in
 * src/h2/connection.ts), anything else to the HTTP/1.1 server of the JSON
 * gateway. (A JSON-gateway client speaking HTTP/2 with prior knowledge would
 * reach gRPC instead; etcd's cmux routes by the same preface, so it behaves
 * the same.) Any `:authority` is accepted, so etcdctl's with a scheme
 * (`http://host:port`) too. An `https://` listener is a TLS server (tls.ts)
 * whose connections, once their handshake is done, take the same path.
 */
import * as net from 'node:net';
import * as http from 'node:http';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import { AlarmStore } from './alarm.js';
import { AuthGuard, withAppliedTokens } from './auth-guard.js';
import { authService } from './auth-service.js';
import { SimpleTokenStore } from './auth-tokens.js';
import { clusterService } from './cluster-service.js';
import { type GatewayContext, type RpcStream, type ServiceHandlers, type StreamHandler, type UnaryHandler, invoke, isStreamHandler, runStream } from './context.js';
import type { MemberDirectory } from './cluster-service.js';
import { HEALTH_SERVICE_DEFINITION, HEALTH_SERVICE_NAME, healthStatus } from './health-service.js';
import { EtcdError, toEtcdError } from './errors.js';
import { GrpcServer, type GrpcMethod, type ServerCall } from '../h2/grpc-server.js';
import type { EtcdMessage } from './proto.js';
import { createHttpGateway, HTTP_REQUEST_TIMEOUT_MS } from './http-gateway.js';
import { opsEndpoints, sendText } from './ops-endpoints.js';
import { electionService } from './election-service.js';
import { kvService } from './kv-service.js';
import { bindKeepAlive, leaseService } from './lease-service.js';
import { lockService } from './lock-service.js';
import { GatewayMetrics } from './metrics.js';
import { maintenanceService } from './maintenance-service.js';
import { etcdServiceDefinition, type EtcdServiceName } from './proto.js';
import { guardServices, resolveQuotaBytes, SpaceQuota } from './quota.js';
import { hostPort } from './urls.js';
import { CLIENT_PREFACE } from '../h2/frames.js';
import { type ClientTls, ClientTlsError, tlsServerOptions, withTlsIdentity } from './tls.js';
import { watchService } from './watch/index.js';
import { DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_TXN_OPS, grpcMaxReceiveBytes } from './validate.js';

/** A connection that sends nothing for this long before we can tell its protocol is closed. */
export const PROTOCOL_SNIFF_TIMEOUT_MS = 10_000;
/** Time a graceful close waits for in-flight calls before cutting connections. */
export const SHUTDOWN_GRACE_MS = 5_000;
/** Most client connections open at once per listener (each holds buffers and a session). */
export const CLIENT_CONNECTIONS_MAX = 10_000;

/** Options of {@link EtcdServer.start}. */
export interface EtcdServerOptions
  extends Omit<GatewayContext, 'maxRequestBytes' | 'maxTxnOps' | 'rpcMetrics' | 'auth' | 'alarms' | 'spaceQuota'> {
  /** `host:port` pairs to listen on (port 0: ephemeral); `tls`: an `https://` URL, served with {@link tls}. */
  readonly listen: readonly { host: string; port: number; tls?: boolean }[];
  /** Certificates of the `tls` listeners (etcd's --cert-file, --key-file, --trusted-ca-file, --client-cert-auth). */
  readonly tls?: ClientTls;
  /** etcd's --max-request-bytes; default 1.5 MiB. */
  readonly maxRequestBytes?: number;
  /** etcd's --max-txn-ops; default 128. */
  readonly maxTxnOps?: number;
  /** etcd's --quota-backend-bytes: 0 or unset = 2 GiB, negative = no quota. */
  readonly quotaBackendBytes?: number;
  /** The node's alarm state; default a fresh, empty one. */
  readonly alarms?: AlarmStore;
  /** The node's Prometheus registry, served on /metrics; the gateway's own metrics (metrics.ts) are added to it. */
  readonly metrics?: Registry;
  /** etcd's --listen-metrics-urls: extra plain-HTTP listeners serving only /metrics, /health and /version. */
  readonly listenMetrics?: readonly { host: string; port: number }[];
  /** etcd's --experimental-watch-progress-notify-interval; default 10 minutes. */
  readonly progressNotifyIntervalMs?: number;
  /**
   * Wraps every unary handler (`method` is `service/method`), for gRPC and
   * the JSON gateway alike: a cluster member forwards calls its replicas
   * cannot serve to the leader's node (forward.ts).
   */
  readonly wrapUnary?: (method: string, handler: UnaryHandler) => UnaryHandler;
  /** The cluster's members for MemberList; default: this member alone. */
  readonly members?: MemberDirectory;
  /** etcd's --auth-token-ttl for simple tokens, in ms; default 300 s. */
  readonly authTokenTtlMs?: number;
}

/** The running client server. */
export class EtcdServer {
  private closing: Promise<void> | undefined;
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly grpcServer: GrpcServer,
    private readonly httpServer: http.Server,
    private readonly listeners: net.Server[],
    /** Bound addresses, in the order given (`host:port`, ports resolved). */
    readonly addresses: readonly string[],
    /** Bound metrics listener addresses (`--listen-metrics-urls`), in the order given. */
    readonly metricsAddresses: readonly string[],
    private readonly services: ReadonlyMap<EtcdServiceName, ServiceHandlers>,
  ) {}

  /** The unary handler of `service/method` as clients reach it (wrapped), if there is one. */
  unaryHandler(method: string): UnaryHandler | undefined {
    const i = method.lastIndexOf('/');
    const handler = this.services.get(method.slice(0, i) as EtcdServiceName)?.[method.slice(i + 1)];
    return handler === undefined || isStreamHandler(handler) ? undefined : handler;
  }

  /** Binds every listen address and serves until {@link close}. */
  static async start(options: EtcdServerOptions): Promise<EtcdServer> {
    const maxRequestBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
    const base: GatewayContext = {
      ...options,
      maxRequestBytes,
      maxTxnOps: options.maxTxnOps ?? DEFAULT_MAX_TXN_OPS,
      auth: new AuthGuard(options.router, new SimpleTokenStore(options.authTokenTtlMs !== undefined ? { ttlMs: options.authTokenTtlMs } : {})),
      alarms: options.alarms ?? new AlarmStore(),
      spaceQuota: new SpaceQuota(resolveQuotaBytes(options.quotaBackendBytes), () => options.dbSizeBytes()),
    };
    const rpcMetrics = options.metrics === undefined ? undefined : GatewayMetrics.of(options.metrics, base);
    const ctx: GatewayContext = rpcMetrics === undefined ? base : { ...base, rpcMetrics };
    const guarded = guardServices(
      new Map<EtcdServiceName, ServiceHandlers>([
        ['etcdserverpb.KV', kvService(ctx)],
        ['etcdserverpb.Lease', leaseService(ctx)],
        ['etcdserverpb.Maintenance', maintenanceService(ctx)],
        ['etcdserverpb.Cluster', clusterService(ctx, options.members)],
        ['etcdserverpb.Auth', authService(ctx, ctx.auth)],
        [
          'etcdserverpb.Watch',
          watchService(ctx, options.progressNotifyIntervalMs !== undefined ? { progressNotifyIntervalMs: options.progressNotifyIntervalMs } : {}).handlers,
        ],
      ]),
      { alarms: ctx.alarms, spaceQuota: ctx.spaceQuota, memberId: ctx.member.id },
    );
    // A token issued on another member a moment ago is waited for before anything checks it (auth-guard.ts).
    const services = withAppliedTokens(wrapServices(guarded, options.wrapUnary), ctx.auth);
    // KeepAlive answers each request through the wrapped keepalive-once handler (forwarded on a follower).
    bindKeepAlive(services);
    // Lock and Election run over the other services' handlers, as etcd's do over its in-process client.
    services.set('v3lockpb.Lock', lockService(ctx, services));
    services.set('v3electionpb.Election', electionService(ctx, services));
    const grpcServer = new GrpcServer({
      maxReceiveBytes: grpcMaxReceiveBytes(maxRequestBytes),
      statusOf: (err) => {
        const e = toEtcdError(err);
        return { code: e.grpcCode, message: e.message };
      },
      onServerFailure: (err) => ctx.onInternalError?.('gRPC connection', err),
    });
    for (const [name, handlers] of services) {
      const def = etcdServiceDefinition(name);
      const counted = rpcMetrics === undefined ? def : rpcMetrics.countBytes(def);
      for (const [method, handler] of Object.entries(handlers)) {
        // Handlers that are no RPC of the service (LeaseKeepAliveOnce, lease-service.ts) are not served.
        const md = counted[method] as grpc.MethodDefinition<EtcdMessage, EtcdMessage> | undefined;
        if (md !== undefined) grpcServer.register(md.path, grpcMethod(ctx, `${name}/${method}`, md, handler));
      }
    }
    registerHealth(grpcServer, ctx, rpcMetrics);
    const httpServer = createHttpGateway({ ctx, services, ...(options.metrics !== undefined ? { metrics: options.metrics } : {}) });

    const listeners: net.Server[] = [];
    const addresses: string[] = [];
    const metricsAddresses: string[] = [];
    const server = new EtcdServer(grpcServer, httpServer, listeners, addresses, metricsAddresses, services);
    try {
      const tlsOptions = options.listen.some((l) => l.tls === true) ? clientTlsOptions(options.tls) : undefined;
      for (const l of options.listen) {
        const ln =
          l.tls === true && tlsOptions !== undefined
            ? tls.createServer(tlsOptions, (socket) => server.accept(socket))
            : net.createServer({ pauseOnConnect: true }, (socket) => server.accept(socket));
        ln.maxConnections = CLIENT_CONNECTIONS_MAX;
        await listenOn(ln, l.host, l.port);
        listeners.push(ln);
        const a = ln.address() as net.AddressInfo;
        addresses.push(hostPort(l.host, a.port));
      }
      const ops = opsEndpoints(ctx, services, options.metrics);
      for (const l of options.listenMetrics ?? []) {
        const ln = http.createServer({ requestTimeout: HTTP_REQUEST_TIMEOUT_MS }, (req, res) => {
          ops(req, res).then(
            (handled) => {
              if (!handled) sendText(res, 404, '404 page not found\n');
            },
            (err: unknown) => {
              ctx.onInternalError?.(`metrics ${req.url ?? ''}`, err);
              res.destroy();
            },
          );
        });
        await listenOn(ln, l.host, l.port);
        listeners.push(ln);
        metricsAddresses.push(hostPort(l.host, (ln.address() as net.AddressInfo).port));
      }
    } catch (err) {
      await server.close();
      throw err;
    }
    return server;
  }

  /** The first bound port (tests listen on port 0). */
  get port(): number {
    const a = this.addresses[0];
    return a === undefined ? 0 : Number(a.slice(a.lastIndexOf(':') + 1));
  }

  /**
   * Reads a connection's first bytes and hands it to gRPC or to the HTTP/1.1
   * gateway. A TLS connection arrives here after its handshake; its bytes
   * are the decrypted ones.
   */
  private accept(socket: net.Socket): void {
    if (this.closing !== undefined) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), PROTOCOL_SNIFF_TIMEOUT_MS);
    const decide = (http2: boolean): void => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('error', onError);
      socket.pause();
      if (http2) {
        this.grpcServer.serve(socket, buffered);
      } else {
        socket.unshift(buffered);
        this.httpServer.emit('connection', socket);
        // http's connection handler reads through 'data' events but leaves an
        // explicitly paused socket paused.
        socket.resume();
      }
    };
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const n = Math.min(buffered.length, CLIENT_PREFACE.length);
      if (!buffered.subarray(0, n).equals(CLIENT_PREFACE.subarray(0, n))) decide(false);
      else if (n === CLIENT_PREFACE.length) decide(true);
    };
    const onError = (): void => {
      clearTimeout(timer);
      socket.destroy();
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.resume();
  }

  /**
   * Stops accepting, lets in-flight calls finish for up to SHUTDOWN_GRACE_MS,
   * then cuts what is left. Idempotent.
   */
  close(graceMs = SHUTDOWN_GRACE_MS): Promise<void> {
    this.closing ??= (async () => {
      for (const ln of this.listeners) {
        ln.close();
        if (ln instanceof http.Server) ln.closeAllConnections();
      }
      this.httpServer.closeIdleConnections();
      await this.grpcServer.close(graceMs);
      this.httpServer.closeAllConnections();
      for (const s of this.sockets) s.destroy();
    })();
    return this.closing;
  }
}

/** The TLS listeners' options; throws ClientTlsError without certificates or when Node refuses them. */
function clientTlsOptions(material: ClientTls | undefined): tls.TlsOptions {
  if (material === undefined) throw new ClientTlsError('an https:// client URL needs --cert-file and --key-file');
  const options = tlsServerOptions(material);
  try {
    tls.createSecureContext(options);
  } catch (err: unknown) {
    throw new ClientTlsError(`client TLS certificates: ${(err as Error).message}`);
  }
  return options;
}

/** Every unary handler of `services` through `wrap` (streaming handlers stay as they are). */
function wrapServices(
  services: Map<EtcdServiceName, ServiceHandlers>,
  wrap: ((method: string, handler: UnaryHandler) => UnaryHandler) | undefined,
): Map<EtcdServiceName, ServiceHandlers> {
  if (wrap === undefined) return services;
  const out = new Map<EtcdServiceName, ServiceHandlers>();
  for (const [name, handlers] of services) {
    const wrapped: Record<string, ServiceHandlers[string]> = {};
    for (const [method, h] of Object.entries(handlers)) wrapped[method] = isStreamHandler(h) ? h : wrap(`${name}/${method}`, h);
    out.set(name, wrapped);
  }
  return out;
}

/**
 * A service handler as a method of the gRPC server: unary handlers through {@link invoke},
 * streaming ones through {@link runStream}, both with the call's metadata
 * (plus the TLS client's CN) and abort signal, counted by `ctx.rpcMetrics`.
 */
export function grpcMethod(
  ctx: GatewayContext,
  method: string,
  md: grpc.MethodDefinition<EtcdMessage, EtcdMessage>,
  handler: UnaryHandler | StreamHandler,
): GrpcMethod {
  const i = method.lastIndexOf('/');
  const codec = {
    requestStream: md.requestStream,
    responseStream: md.responseStream,
    decode: (body: Buffer) => md.requestDeserialize(body),
    encode: (message: unknown) => md.responseSerialize(message as EtcdMessage),
  };
  if (!isStreamHandler(handler)) {
    const metrics = ctx.rpcMetrics?.method(method.slice(0, i), method.slice(i + 1), 'unary');
    return {
      ...codec,
      unary: (request, call) => {
        withTlsIdentity(call);
        return invoke(ctx, method, handler, request as EtcdMessage, call, metrics);
      },
    };
  }
  const metrics = ctx.rpcMetrics?.method(method.slice(0, i), method.slice(i + 1), handler.streaming === 'bidi' ? 'bidi_stream' : 'server_stream');
  return {
    ...codec,
    streaming: async (call: ServerCall) => {
      withTlsIdentity(call);
      const stream: RpcStream = {
        requests: call.requests as AsyncIterable<EtcdMessage>,
        send: (m) => (call.ended ? Promise.reject(EtcdError.of('CANCELED')) : call.send(m).catch(() => Promise.reject(EtcdError.of('CANCELED')))),
        call,
      };
      const err = await runStream(ctx, method, handler, stream, metrics);
      if (err !== undefined) throw err;
    },
  };
}

/** grpc.health.v1.Health/Check, counted like the etcd services' calls (go-grpc-prometheus counts it too). */
function registerHealth(server: GrpcServer, ctx: GatewayContext, rpcMetrics: GatewayMetrics | undefined): void {
  const def = rpcMetrics === undefined ? HEALTH_SERVICE_DEFINITION : rpcMetrics.countBytes(HEALTH_SERVICE_DEFINITION);
  const md = def['Check'] as grpc.MethodDefinition<unknown, unknown>;
  const m = rpcMetrics?.method(HEALTH_SERVICE_NAME, 'Check', 'unary');
  server.register(md.path, {
    requestStream: false,
    responseStream: false,
    decode: (body) => md.requestDeserialize(body),
    encode: (message) => md.responseSerialize(message),
    unary: async () => {
      const start = m?.start() ?? 0;
      const status = healthStatus(ctx);
      m?.done(start, grpc.status.OK);
      return { status };
    },
  });
}

/** Binds `ln` to host:port; rejects with the bind error (e.g. EADDRINUSE). */
function listenOn(ln: net.Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    ln.once('error', reject);
    ln.listen(port, host, () => {
      ln.removeListener('error', reject);
      resolve();
    });
  });
}
