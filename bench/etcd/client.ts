/**
 * The generator's etcd v3 client: gRPC over the project's own HTTP/2 client
 * (src/h2/client-connection.ts), with the gateway's message codecs
 * (src/gateway/proto.ts), so the wire format is the one keyspan serves. One
 * {@link Conn} is one HTTP/2 connection; calls on it share it as streams.
 *
 * grpc-js' client took ~500 µs of CPU per unary call on this project's
 * benchmark machine, a quarter of two cores at one client and more than the
 * leader's share at 10 × 100: the generator competed with the servers it
 * measured. This client does the same exchange for a fraction of that
 * (docs/benchmarks.md); both systems are measured with it.
 */
import * as grpc from '@grpc/grpc-js';
import { GrpcBidiCall, GrpcCallError, callEndError } from '../../src/h2/client-bidi.js';
import type { ClientCall } from '../../src/h2/client-connection.js';
import { H2ClientSocket } from '../../src/h2/client-socket.js';
import { etcdServiceDefinition, type EtcdMessage, type EtcdServiceName } from '../../src/gateway/proto.js';

/** Deadline of one unary request; a request slower than this counts as an error. */
export const REQUEST_TIMEOUT_MS = 30_000;
/** How long a connection may take to answer with its HTTP/2 settings. */
const CONNECT_TIMEOUT_MS = 10_000;
/** How often unary calls are checked against their deadline. */
const DEADLINE_SWEEP_MS = 1_000;
/** The largest response taken (a list page at full scale stays far below). */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** The services the generator calls. */
type Service = Extract<EtcdServiceName, 'etcdserverpb.KV' | 'etcdserverpb.Watch' | 'etcdserverpb.Lease' | 'etcdserverpb.Maintenance'>;

type MethodDef = grpc.MethodDefinition<EtcdMessage, EtcdMessage>;

/** A Watch or LeaseKeepAlive stream. */
export type BidiStream = GrpcBidiCall<EtcdMessage, EtcdMessage>;

const definitions = new Map<Service, Record<string, MethodDef>>();

function method(service: Service, name: string): MethodDef {
  let def = definitions.get(service);
  if (def === undefined) {
    def = etcdServiceDefinition(service) as unknown as Record<string, MethodDef>;
    definitions.set(service, def);
  }
  const m = def[name];
  if (m === undefined) throw new Error(`${service} has no method ${name}`);
  return m;
}

/**
 * The generator's HTTP/2 receive window, per stream and per connection:
 * gRPC-Go's largest (clientv3, etcdctl and etcd's own benchmark grow their
 * windows by bandwidth-delay estimation up to 16 MiB), so a 500 KB list
 * page does not wait for window updates from a busy generator.
 */
export const CLIENT_FLOW_CONTROL_WINDOW_BYTES = 16 * 1024 * 1024;

interface Unary {
  readonly deadline: number;
  call: ClientCall | undefined;
  readonly reject: (e: Error) => void;
}

/** One connection to one endpoint; it reconnects on the next call after it closes. */
export class Conn {
  private socket: H2ClientSocket | undefined;
  private readyWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  /** Unary calls in flight, oldest first (all share one timeout, so this is deadline order). */
  private readonly inflight = new Set<Unary>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(readonly endpoint: string) {
    this.connection();
  }

  /** Waits until the connection is up, so connection setup is not timed as the first request. */
  ready(timeoutMs = CONNECT_TIMEOUT_MS): Promise<void> {
    const socket = this.connection();
    if (socket.isReady) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`cannot connect to ${this.endpoint}: no answer within ${timeoutMs} ms`)), timeoutMs);
      this.readyWaiters.push({
        resolve: () => (clearTimeout(timer), resolve()),
        reject: (e) => (clearTimeout(timer), reject(new Error(`cannot connect to ${this.endpoint}: ${e.message}`, { cause: e }))),
      });
    });
  }

  /** One unary RPC, e.g. `unary('etcdserverpb.KV', 'Put', {...})`. */
  unary(service: Service, name: string, request: EtcdMessage): Promise<EtcdMessage> {
    const m = method(service, name);
    const socket = this.connection();
    return new Promise((resolve, reject) => {
      let answer: EtcdMessage | undefined;
      const entry: Unary = { deadline: Date.now() + REQUEST_TIMEOUT_MS, call: undefined, reject };
      entry.call = socket.connection.openCall(
        { path: m.path },
        {
          onMessage: (body) => {
            try {
              answer = m.responseDeserialize(body);
            } catch (e) {
              this.inflight.delete(entry);
              entry.call?.cancel();
              reject(new GrpcCallError(grpc.status.INTERNAL, `Failed to parse server response: ${(e as Error).message}`));
            }
          },
          onWindowOpen: () => {},
          onEnd: (end) => {
            this.inflight.delete(entry);
            if (end.grpcStatus !== grpc.status.OK) reject(callEndError(end));
            else if (answer === undefined) reject(new GrpcCallError(grpc.status.INTERNAL, `${name}: no response message`));
            else resolve(answer);
          },
        },
        m.requestSerialize(request),
      );
      if (!entry.call.ended) {
        this.inflight.add(entry);
        this.sweepTimer ??= setInterval(() => this.sweep(), DEADLINE_SWEEP_MS).unref();
      }
    });
  }

  /** A bidirectional stream (`Watch`, `LeaseKeepAlive`). */
  bidi(service: Service, name: string): BidiStream {
    const m = method(service, name);
    return new GrpcBidiCall(this.connection(), m.path, m.requestSerialize, m.responseDeserialize);
  }

  /** Closes the connection; calls in flight fail. */
  close(): void {
    this.closed = true;
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    const failure = new GrpcCallError(grpc.status.CANCELLED, 'connection closed by the client');
    for (const u of this.inflight) u.reject(failure);
    this.inflight.clear();
    this.socket?.close();
  }

  /** The open connection, or a new one when the last has closed. */
  private connection(): H2ClientSocket {
    if (this.socket !== undefined && !this.socket.isClosed) return this.socket;
    if (this.closed) throw new Error(`connection to ${this.endpoint} is closed`);
    const socket: H2ClientSocket = new H2ClientSocket(
      this.endpoint,
      { receiveWindowBytes: CLIENT_FLOW_CONTROL_WINDOW_BYTES, maxMessageBytes: MAX_MESSAGE_BYTES },
      { connectTimeoutMs: CONNECT_TIMEOUT_MS },
      {
        onReady: () => {
          for (const w of this.readyWaiters.splice(0)) w.resolve();
        },
        onDrain: () => {},
        onClose: (error) => {
          for (const w of this.readyWaiters.splice(0)) w.reject(error);
        },
      },
    );
    this.socket = socket;
    return socket;
  }

  /** Fails unary calls past their deadline (DEADLINE_EXCEEDED, as a client deadline does), resetting their streams. */
  private sweep(): void {
    const now = Date.now();
    for (const u of this.inflight) {
      if (u.deadline > now) break;
      this.inflight.delete(u);
      u.call?.cancel();
      u.reject(new GrpcCallError(grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded'));
    }
    if (this.inflight.size === 0 && this.sweepTimer !== undefined) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
    }
  }
}

/** `count` conns spread round-robin over `endpoints`, starting at endpoint `offset`. */
export function openConns(endpoints: readonly string[], count: number, offset = 0): Conn[] {
  const conns: Conn[] = [];
  for (let i = 0; i < count; i++) conns.push(new Conn(endpoints[(offset + i) % endpoints.length] as string));
  return conns;
}

/**
 * Request/response exchanges over one bidi stream whose server answers every
 * request with exactly one response, in order (LeaseKeepAlive). Several
 * clients may share it; their requests queue FIFO, at most one per client.
 * A response later than {@link REQUEST_TIMEOUT_MS} fails the stream (answers
 * are matched by order, so one lost answer would misattribute the rest).
 */
export class StreamPinger {
  private readonly waiting: Array<{ resolve: (m: EtcdMessage) => void; reject: (e: Error) => void }> = [];
  private failed: Error | undefined;

  constructor(private readonly stream: BidiStream) {
    stream.on('data', (m: EtcdMessage) => this.waiting.shift()?.resolve(m));
    stream.on('error', (e: Error) => this.fail(e));
    stream.on('end', () => this.fail(new Error('stream ended')));
  }

  /** Sends `req` and resolves with its response. */
  ping(req: EtcdMessage): Promise<EtcdMessage> {
    if (this.failed !== undefined) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new Error(`no response in ${REQUEST_TIMEOUT_MS} ms`));
        this.stream.cancel();
      }, REQUEST_TIMEOUT_MS);
      this.waiting.push({
        resolve: (m) => (clearTimeout(timer), resolve(m)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.stream.write(req);
    });
  }

  private fail(e: Error): void {
    this.failed ??= e;
    for (const w of this.waiting.splice(0)) w.reject(e);
  }

  /** Ends the stream; pending pings fail. */
  close(): void {
    this.failed ??= new Error('closed');
    this.stream.cancel();
  }
}
