/**
 * Helpers of the gateway server tests: the embedded default (one StoreNode
 * with range 1, memory engine, fast ticks) with the etcd server on
 * 127.0.0.1 ephemeral ports, and promise-returning grpc-js clients of the
 * etcd services built from our own service definitions.
 */
import * as grpc from '@grpc/grpc-js';
import { startEmbedded, type Embedded } from '../../src/gateway/embedded.js';
import { etcdServiceDefinition, type EtcdMessage, type EtcdServiceName } from '../../src/gateway/proto.js';

/** Raft tick of test nodes: elections in ~100-200 ms instead of seconds. */
export const TEST_TICK_MS = 10;
/** Deadline of every test RPC, so a hang fails the test instead of stalling it. */
export const RPC_DEADLINE_MS = 10_000;

/** Starts the embedded default on ephemeral loopback ports (memory engine unless a data dir is given). */
export async function startTestServer(options: { dataDir?: string; maxRequestBytes?: number } = {}): Promise<Embedded> {
  return startEmbedded({
    name: 'test',
    engineKind: options.dataDir === undefined ? 'memory' : 'leveldb',
    ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
    listenClient: [{ url: 'http://127.0.0.1:0', host: '127.0.0.1', port: 0 }],
    listenPeer: { url: 'http://127.0.0.1:0', host: '127.0.0.1', port: 0 },
    tickMs: TEST_TICK_MS,
    ...(options.maxRequestBytes !== undefined ? { maxRequestBytes: options.maxRequestBytes } : {}),
    onInternalError: (method, err) => console.error('internal error in', method, err),
  });
}

/** A failed call as the tests check it: gRPC code and exact message. */
export interface CallError {
  readonly code: number;
  readonly details: string;
}

/** A client of one etcd service: `call('Put', req)` resolves the response or rejects with the ServiceError. */
export interface EtcdTestClient {
  call(method: string, request: EtcdMessage, metadata?: grpc.Metadata): Promise<EtcdMessage>;
  close(): void;
}

/** A client of `service` at `address` (host:port). */
export function client(service: EtcdServiceName, address: string, options: grpc.ClientOptions = {}): EtcdTestClient {
  const Ctor = grpc.makeGenericClientConstructor(etcdServiceDefinition(service), service);
  const c = new Ctor(address, grpc.credentials.createInsecure(), options) as unknown as grpc.Client &
    Record<string, (req: EtcdMessage, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: EtcdMessage) => void) => void>;
  return {
    call(method, request, metadata = new grpc.Metadata()) {
      const fn = c[method];
      if (typeof fn !== 'function') return Promise.reject(new Error(`no method ${method}`));
      return new Promise((resolve, reject) => {
        fn.call(c, request, metadata, { deadline: Date.now() + RPC_DEADLINE_MS }, (err, res) => (err ? reject(err) : resolve(res)));
      });
    },
    close: () => c.close(),
  };
}

/** Runs `p`, expecting it to fail; returns the gRPC code and details. */
export async function failure(p: Promise<unknown>): Promise<CallError> {
  try {
    await p;
  } catch (err) {
    const e = err as grpc.ServiceError;
    return { code: e.code, details: e.details };
  }
  throw new Error('expected the call to fail');
}

/** Call metadata carrying an auth token (etcd's `token` key). */
export function withToken(token: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set('token', token);
  return md;
}

/** Bytes of a string. */
export function b(s: string): Buffer {
  return Buffer.from(s);
}

/** Keys of a RangeResponse's kvs as strings. */
export function keysOf(res: EtcdMessage): string[] {
  return (res['kvs'] as Array<{ key: Buffer }>).map((kv) => kv.key.toString());
}

/** The header revision of a response. */
export function revOf(res: EtcdMessage): number {
  return (res['header'] as { revision: number }).revision;
}
