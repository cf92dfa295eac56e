/**
 * The operator's HTTP endpoints, served on the client URLs (with the JSON
 * gateway) and on `--listen-metrics-urls`, as etcd does: `/metrics`
 * (Prometheus text), `/health` (etcd's JSON, 503 with a reason when
 * unhealthy; the rules are in health-check.ts) and `/version`.
 */
import type * as http from 'node:http';
import * as grpc from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import { isStreamHandler, type CallInfo, type GatewayContext, type ServiceHandlers } from './context.js';
import { EtcdError } from './errors.js';
import { AuthError } from '../shard/auth/errors.js';
import { ETCD_CLUSTER_VERSION_REPORTED, ETCD_VERSION_REPORTED } from './maintenance-service.js';
import type { EtcdMessage, EtcdServiceName } from './proto.js';
import { rangeRequest } from './recipes/local-client.js';
import { alarmReason, excludedAlarms, healthAnswer, NO_LEADER_REASON, readFailureReason } from './health-check.js';

/** Key etcd's /health reads (linearizable), as etcdctl's `endpoint health`. */
const HEALTH_KEY = Buffer.from('health');

/** How long /health waits for its linearizable read (etcd 3.4: 1 s; a little more for loaded hosts). */
export const HEALTH_READ_TIMEOUT_MS = 2_000;


/** Handles a request if it is one of the operator endpoints; resolves whether it did. */
export type OpsHandler = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<boolean>;

/** The operator endpoints over the gateway's services and the node's registry (absent: /metrics is 404). */
export function opsEndpoints(ctx: GatewayContext, services: ReadonlyMap<EtcdServiceName, ServiceHandlers>, metrics?: Registry): OpsHandler {
  /** Why the node is unhealthy, or undefined if it is healthy: alarms first, then the leader, then a read (etcd's order). */
  const unhealthyReason = async (url: string): Promise<string | undefined> => {
    const alarm = alarmReason(ctx.alarms.get(), excludedAlarms(url));
    if (alarm !== undefined) return alarm;
    const range = services.get('etcdserverpb.KV')?.['Range'];
    const ranges = ctx.router.ranges();
    if (ranges.length === 0 || ranges.some((t) => t.raftStatus().leader === 0)) return NO_LEADER_REASON;
    if (range === undefined || isStreamHandler(range)) return readFailureReason('KV service not served');
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => {
        abort.abort();
        resolve(readFailureReason(EtcdError.of('TIMEOUT').message));
      }, HEALTH_READ_TIMEOUT_MS);
    });
    const call: CallInfo = { signal: abort.signal, metadata: new grpc.Metadata() };
    const read = range(rangeRequest(HEALTH_KEY) as unknown as EtcdMessage, call).then(
      () => undefined,
      // With auth enabled the anonymous read is refused, yet it reached the store (etcd 3.5 counts that as healthy).
      (err: unknown) => (isAuthRefusal(err) ? undefined : readFailureReason(err instanceof Error ? err.message : String(err))),
    );
    try {
      return await Promise.race([read, timeout]);
    } finally {
      clearTimeout(timer);
    }
  };

  return async (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === '/health' && req.method !== 'GET') {
      // etcd's health handler answers any other method itself.
      res.writeHead(405, { allow: 'GET', 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' });
      res.end('Method Not Allowed\n');
      return true;
    }
    if (req.method !== 'GET') return false;
    switch (path) {
      case '/version':
        sendJson(res, 200, { etcdserver: ETCD_VERSION_REPORTED, etcdcluster: ETCD_CLUSTER_VERSION_REPORTED });
        return true;
      case '/health': {
        // Healthy with no alarm (but the excluded ones), a leader for every
        // local range and a linearizable read of "health" in time; else 503.
        const reason = await unhealthyReason(req.url ?? '/');
        if (reason === undefined) ctx.rpcMetrics?.healthSuccess.inc();
        else ctx.rpcMetrics?.healthFailures.inc();
        const answer = healthAnswer(reason);
        res.writeHead(answer.status, { ...answer.headers, 'content-length': Buffer.byteLength(answer.body) });
        res.end(answer.body);
        return true;
      }
      case '/metrics': {
        if (metrics === undefined) {
          sendText(res, 404, 'no metrics\n');
          return true;
        }
        const text = await metrics.metrics();
        res.writeHead(200, { 'content-type': metrics.contentType });
        res.end(text);
        return true;
      }
      default:
        return false;
    }
  };
}

/** Sends `body` as JSON; returns the body's size in bytes. */
export function sendJson(res: http.ServerResponse, status: number, body: unknown): number {
  const text = JSON.stringify(body);
  const length = Buffer.byteLength(text);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': length });
  res.end(text);
  return length;
}

/** Sends plain text. */
export function sendText(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** An auth refusal of the health read: no user, or a user without READ on the health key. */
function isAuthRefusal(err: unknown): boolean {
  return err instanceof AuthError && (err.code === 'USER_EMPTY' || err.code === 'PERMISSION_DENIED');
}
