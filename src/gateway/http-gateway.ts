/**
 * The HTTP/1.1 side of the client port: etcd's JSON gateway (POST
 * /v3/kv/range, ... with the routes and codec of http-paths.ts) for the
 * unary RPCs the gRPC server implements, plus `/health`, `/version` and
 * `/metrics`. It calls the very same handlers as gRPC (context.ts `invoke`),
 * so validation, routing and errors are identical on both.
 *
 * Streaming routes (/v3/watch, lease keepalive, snapshot, observe) and RPCs
 * not implemented yet answer gRPC Unimplemented (HTTP 501) in the gateway's
 * error shape.
 */
import * as http from 'node:http';
import * as grpc from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import { drained, invoke, isStreamHandler, oneMessage, runStream, type CallInfo, type GatewayContext, type ServiceHandlers, type StreamHandler } from './context.js';
import { EtcdError, GrpcStatus } from './errors.js';
import { findGatewayRoute, gatewayErrorResponse, jsonToMessage, messageToJson, streamErrorJson, streamResultJson, type GatewayRoute } from './http-paths.js';
import { JsonValueSplitter } from './json-stream.js';
import type { EtcdMessage } from './proto.js';
import { opsEndpoints, sendJson, sendText } from './ops-endpoints.js';
import { etcdMethods, type EtcdServiceName } from './proto.js';
import { grpcMaxReceiveBytes } from './validate.js';

/** Options of {@link createHttpGateway}. */
export interface HttpGatewayOptions {
  readonly ctx: GatewayContext;
  /** Implemented unary RPCs per service. */
  readonly services: ReadonlyMap<EtcdServiceName, ServiceHandlers>;
  /** The node's Prometheus registry for `/metrics`; absent: 404. */
  readonly metrics?: Registry;
}

/**
 * Largest request body: a JSON body carries bytes as base64 (4/3 larger) plus
 * field names, so twice gRPC's receive limit leaves room for any request gRPC
 * would take, and no more.
 */
function bodyBytesMax(maxRequestBytes: number): number {
  return 2 * grpcMaxReceiveBytes(maxRequestBytes);
}

/** Time a request may take to send its body, so a slow client cannot hold a socket forever. */
export const HTTP_REQUEST_TIMEOUT_MS = 30_000;


/** The HTTP/1.1 server of the JSON gateway (not listening: the client port hands it connections). */
export function createHttpGateway(options: HttpGatewayOptions): http.Server {
  const { ctx } = options;
  const ops = opsEndpoints(ctx, options.services, options.metrics);
  const responseTypes = new Map<string, string>();
  for (const service of options.services.keys()) {
    for (const m of etcdMethods(service)) responseTypes.set(`${service}/${m.method}`, m.responseType);
  }
  const server = http.createServer({ requestTimeout: HTTP_REQUEST_TIMEOUT_MS }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      ctx.onInternalError?.(`HTTP ${req.url ?? ''}`, err);
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error', message: 'internal error', code: GrpcStatus.INTERNAL });
      else res.destroy();
    });
  });

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (await ops(req, res)) return;
    const route = findGatewayRoute(path);
    if (route === undefined) return sendText(res, 404, '404 page not found\n');
    if (req.method !== 'POST') return sendText(res, 405, 'Method Not Allowed\n');
    const handler = options.services.get(route.service)?.[route.method];
    const responseType = responseTypes.get(`${route.service}/${route.method}`);
    if (handler === undefined || responseType === undefined || isStreamHandler(handler) !== (route.kind !== 'unary')) {
      return sendError(res, new EtcdError('UNKNOWN', `${route.service}/${route.method} is not implemented by keyspan yet`, GrpcStatus.UNIMPLEMENTED));
    }
    const requestType = etcdMethods(route.service).find((m) => m.method === route.method)?.requestType ?? '';
    if (isStreamHandler(handler)) return serveStream(req, res, route, handler, requestType, responseType);
    const body = await readBody(req, bodyBytesMax(ctx.maxRequestBytes));
    const request = body === undefined ? EtcdError.of('REQUEST_TOO_LARGE') : bodyRequest(requestType, body);
    if (request instanceof EtcdError) return sendError(res, request);
    const abort = new AbortController();
    res.once('close', () => abort.abort());
    const call: CallInfo = { signal: abort.signal, metadata: metadataOf(req) };
    // Counted as the gRPC call it stands for (etcd's gateway calls its gRPC server).
    const rpcMetrics = ctx.rpcMetrics;
    rpcMetrics?.receivedBytes.inc(body?.length ?? 0);
    const metrics = rpcMetrics?.method(route.service, route.method, 'unary');
    try {
      const response = await invoke(ctx, `HTTP ${route.path}`, handler, request, call, metrics);
      const sent = sendJson(res, 200, messageToJson(responseType, response));
      rpcMetrics?.sentBytes.inc(sent);
    } catch (err) {
      sendError(res, err instanceof EtcdError ? err : new EtcdError('INTERNAL', String(err), GrpcStatus.INTERNAL));
    }
  };

  /**
   * A streaming route as grpc-gateway v1 serves it: the request body is a
   * sequence of JSON objects (one for a server-streaming RPC), the response
   * a chunked 200 of newline-separated `{"result": ...}` objects, an error
   * as a final `{"error": ...}` object.
   */
  const serveStream = async (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    route: GatewayRoute,
    handler: StreamHandler,
    requestType: string,
    responseType: string,
  ): Promise<void> => {
    const abort = new AbortController();
    res.once('close', () => abort.abort());
    const maxBytes = bodyBytesMax(ctx.maxRequestBytes);
    let requests: AsyncIterable<EtcdMessage>;
    if (handler.streaming === 'server') {
      const body = await readBody(req, maxBytes);
      const request = body === undefined ? EtcdError.of('REQUEST_TOO_LARGE') : bodyRequest(requestType, body);
      if (request instanceof EtcdError) return sendError(res, request);
      requests = oneMessage(request);
    } else {
      requests = streamedRequests(req, requestType, maxBytes);
    }
    const rpcMetrics = ctx.rpcMetrics;
    const started = (): void => {
      if (!res.headersSent) res.writeHead(200, { 'content-type': 'application/json' });
    };
    const writeLine = (obj: unknown): boolean => {
      started();
      const line = `${JSON.stringify(obj)}\n`;
      rpcMetrics?.sentBytes.inc(Buffer.byteLength(line));
      return res.write(line);
    };
    const send = async (msg: EtcdMessage): Promise<void> => {
      if (abort.signal.aborted || res.writableEnded) throw EtcdError.of('CANCELED');
      if (!writeLine(streamResultJson(responseType, msg))) await drained(res, abort.signal);
    };
    const call: CallInfo = { signal: abort.signal, metadata: metadataOf(req) };
    const metrics = rpcMetrics?.method(route.service, route.method, handler.streaming === 'bidi' ? 'bidi_stream' : 'server_stream');
    const err = await runStream(ctx, `HTTP ${route.path}`, handler, { requests, send, call }, metrics);
    if (res.writableEnded || abort.signal.aborted) return;
    if (err !== undefined) writeLine(streamErrorJson(err));
    started();
    res.end();
  };

  return server;
}

/** gRPC-style metadata from HTTP headers: the auth token (grpc-gateway maps Authorization to `token`). */
function metadataOf(req: http.IncomingMessage): grpc.Metadata {
  const md = new grpc.Metadata();
  const auth = req.headers['authorization'];
  if (typeof auth === 'string' && auth !== '') md.set('token', auth);
  return md;
}

/** A request from its parsed JSON; errors are etcd's (a bad body is InvalidArgument, as grpc-gateway). */
function parseRequest(requestType: string, json: unknown): EtcdMessage {
  try {
    return jsonToMessage(requestType, json);
  } catch (err) {
    if (err instanceof EtcdError) throw err;
    throw new EtcdError('BAD_REQUEST', (err as Error).message, GrpcStatus.INVALID_ARGUMENT);
  }
}

/** A unary or server-streaming route's request from its whole body (empty: every field at its default); errors as values. */
function bodyRequest(requestType: string, body: Buffer): EtcdMessage | EtcdError {
  try {
    return parseRequest(requestType, body.length === 0 ? {} : JSON.parse(body.toString('utf8')));
  } catch (err) {
    return err instanceof EtcdError ? err : new EtcdError('BAD_REQUEST', (err as Error).message, GrpcStatus.INVALID_ARGUMENT);
  }
}

/** The request messages of a bidi route's body, as they arrive; a malformed body ends the call with InvalidArgument. */
async function* streamedRequests(req: http.IncomingMessage, requestType: string, maxBytes: number): AsyncGenerator<EtcdMessage> {
  const splitter = new JsonValueSplitter(maxBytes);
  let values: unknown[];
  try {
    for await (const chunk of req) {
      try {
        values = splitter.push(chunk as Buffer);
      } catch (err) {
        throw new EtcdError('BAD_REQUEST', (err as Error).message, GrpcStatus.INVALID_ARGUMENT);
      }
      for (const v of values) yield parseRequest(requestType, v);
    }
  } catch (err) {
    if (err instanceof EtcdError) throw err;
    return; // the client went away
  }
}

/** The whole body, or undefined once it exceeds `max` bytes (the rest is not read). */
async function readBody(req: http.IncomingMessage, max: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > max) return undefined;
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

function sendError(res: http.ServerResponse, err: EtcdError): void {
  const { status, body } = gatewayErrorResponse(err);
  sendJson(res, status, body);
}
