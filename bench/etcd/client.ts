/**
 * Raw grpc-js access to an etcd v3 endpoint, built on the gateway's service
 * definitions (src/gateway/proto.ts) so the wire format is the one keyspan
 * serves. One {@link Conn} is one gRPC channel, i.e. one HTTP/2 connection:
 * every channel gets its own subchannel pool, otherwise grpc-js would share a
 * single TCP connection between channels to the same address and `--conns`
 * would measure nothing.
 */
import * as grpc from '@grpc/grpc-js';
import { etcdServiceDefinition, type EtcdMessage, type EtcdServiceName } from '../../src/gateway/proto.js';

/** Deadline of one unary request; a request slower than this counts as an error. */
export const REQUEST_TIMEOUT_MS = 30_000;

/** The services the generator calls. */
type Service = Extract<EtcdServiceName, 'etcdserverpb.KV' | 'etcdserverpb.Watch' | 'etcdserverpb.Lease'>;

type MethodDef = grpc.MethodDefinition<EtcdMessage, EtcdMessage>;

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

/** The generator's HTTP/2 receive window per connection: gRPC-Go's largest (see Conn). */
export const CLIENT_FLOW_CONTROL_WINDOW_BYTES = 16 * 1024 * 1024;

/** One connection (gRPC channel) to one endpoint. */
export class Conn {
  private readonly client: grpc.Client;

  constructor(readonly endpoint: string) {
    const options: grpc.ChannelOptions = {
      'grpc.use_local_subchannel_pool': 1,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      'grpc.max_send_message_length': 64 * 1024 * 1024,
      // HTTP/2 receive window: grpc-js keeps the 64 KiB default for the whole
      // connection, so a 500 KB list waits for several window updates from a
      // busy generator. gRPC-Go (clientv3, etcdctl, etcd's own benchmark)
      // grows its windows by bandwidth-delay estimation up to 16 MiB.
      'grpc-node.flow_control_window': CLIENT_FLOW_CONTROL_WINDOW_BYTES,
    };
    this.client = new grpc.Client(endpoint, grpc.credentials.createInsecure(), options);
  }

  /** Waits until the connection is up, so connection setup is not timed as the first request. */
  ready(timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.waitForReady(Date.now() + timeoutMs, (err) => {
        if (err) reject(new Error(`cannot connect to ${this.endpoint}: ${err.message}`, { cause: err }));
        else resolve();
      });
    });
  }

  /** One unary RPC, e.g. `unary('etcdserverpb.KV', 'Put', {...})`. */
  unary(service: Service, name: string, request: EtcdMessage): Promise<EtcdMessage> {
    const m = method(service, name);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        m.path,
        m.requestSerialize,
        m.responseDeserialize,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + REQUEST_TIMEOUT_MS },
        (err, res) => {
          if (err) reject(err);
          else if (res === undefined) reject(new Error(`${name}: empty response`));
          else resolve(res);
        },
      );
    });
  }

  /** A bidirectional stream (`Watch`, `LeaseKeepAlive`). */
  bidi(service: Service, name: string): grpc.ClientDuplexStream<EtcdMessage, EtcdMessage> {
    const m = method(service, name);
    return this.client.makeBidiStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, new grpc.Metadata(), {});
  }

  close(): void {
    this.client.close();
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

  constructor(private readonly stream: grpc.ClientDuplexStream<EtcdMessage, EtcdMessage>) {
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
