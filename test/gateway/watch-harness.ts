/**
 * Helpers of the Watch tests: a raw grpc-js bidi Watch stream whose
 * responses are read one at a time with a deadline, one over Node's HTTP/2
 * client whose pause really stops reading, and the event shapes the tests
 * compare.
 */
import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { etcdServiceDefinition, type EtcdMessage } from '../../src/gateway/proto.js';

/** Bound on waiting for one watch response. */
export const WATCH_RESPONSE_TIMEOUT_MS = 10_000;

/** A Watch call under test. */
export interface TestWatchStream {
  /** Writes one WatchRequest. */
  write(req: EtcdMessage): void;
  /** The next response (rejects after `timeoutMs`, or with the call's error). */
  next(timeoutMs?: number): Promise<EtcdMessage>;
  /** Resolves with the next response if one arrives within `ms`, else undefined. */
  maybeNext(ms: number): Promise<EtcdMessage | undefined>;
  /** Stops reading from the transport (responses pile up on the server). */
  pause(): void;
  resume(): void;
  /** The call's final status, once it ended. */
  readonly ended: Promise<grpc.StatusObject | grpc.ServiceError>;
  close(): void;
}

/** Opens a Watch stream at `address`. */
export function openWatch(address: string, metadata: grpc.Metadata = new grpc.Metadata(), options: grpc.ClientOptions = {}): TestWatchStream {
  const Ctor = grpc.makeGenericClientConstructor(etcdServiceDefinition('etcdserverpb.Watch'), 'etcdserverpb.Watch');
  const client = new Ctor(address, grpc.credentials.createInsecure(), options) as unknown as grpc.Client & {
    Watch(md: grpc.Metadata): grpc.ClientDuplexStream<EtcdMessage, EtcdMessage>;
  };
  const call = client.Watch(metadata);
  const queue: EtcdMessage[] = [];
  let failure: Error | undefined;
  const reader = responseReader(
    () => queue.shift(),
    () => failure,
  );
  const ended = new Promise<grpc.StatusObject | grpc.ServiceError>((resolve) => {
    call.on('status', (s: grpc.StatusObject) => resolve(s));
    call.on('error', (e: grpc.ServiceError) => {
      failure = e;
      reader.wake();
      resolve(e);
    });
  });
  call.on('data', (m: EtcdMessage) => {
    queue.push(m);
    reader.wake();
  });
  return {
    write: (req) => call.write(req),
    next: reader.next,
    maybeNext: reader.maybeNext,
    pause: () => call.pause(),
    resume: () => call.resume(),
    ended,
    close: () => {
      call.cancel();
      client.close();
    },
  };
}

/**
 * A Watch call over Node's HTTP/2 client. grpc-js keeps reading a paused
 * call's messages into memory, so a server sees no slow client; here pause()
 * stops reading the HTTP/2 stream, whose window then closes (HTTP/2 flow
 * control, as a grpc-go client that stops calling Recv). Responses are
 * decoded only as they are taken.
 */
export function openPausableWatch(address: string): TestWatchStream {
  const def = etcdServiceDefinition('etcdserverpb.Watch')['Watch'] as grpc.MethodDefinition<EtcdMessage, EtcdMessage>;
  const session = http2.connect(`http://${address}`);
  session.on('error', () => undefined);
  const stream = session.request({ ':method': 'POST', ':path': def.path, 'content-type': 'application/grpc', te: 'trailers' });
  let buffered = Buffer.alloc(0);
  let failure: Error | undefined;
  const take = (): EtcdMessage | undefined => {
    if (buffered.length < 5) return undefined;
    const n = buffered.readUInt32BE(1);
    if (buffered.length < 5 + n) return undefined;
    const m = def.responseDeserialize(buffered.subarray(5, 5 + n));
    buffered = buffered.subarray(5 + n);
    return m;
  };
  const reader = responseReader(take, () => failure);
  const ended = new Promise<grpc.StatusObject>((resolve) => {
    stream.on('trailers', (t) => resolve({ code: Number(t['grpc-status']), details: String(t['grpc-message'] ?? ''), metadata: new grpc.Metadata() }));
    stream.on('close', () => {
      failure ??= new Error('watch stream closed');
      reader.wake();
    });
  });
  stream.on('error', (e: Error) => {
    failure = e;
    reader.wake();
  });
  stream.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    reader.wake();
  });
  return {
    write: (req) => {
      const body = def.requestSerialize(req);
      const framed = Buffer.alloc(5 + body.length);
      framed.writeUInt32BE(body.length, 1);
      body.copy(framed, 5);
      stream.write(framed);
    },
    next: reader.next,
    maybeNext: reader.maybeNext,
    pause: () => stream.pause(),
    resume: () => stream.resume(),
    ended,
    close: () => {
      stream.close();
      session.close();
    },
  };
}

/**
 * Reads a call's responses one at a time with a deadline: `take` gives the
 * next one if it has arrived, `failure` the call's error once it failed;
 * the transport calls `wake` when either may have changed.
 */
function responseReader(
  take: () => EtcdMessage | undefined,
  failure: () => Error | undefined,
): Pick<TestWatchStream, 'next' | 'maybeNext'> & { wake(): void } {
  let waiter: (() => void) | undefined;
  const next = async (timeoutMs = WATCH_RESPONSE_TIMEOUT_MS): Promise<EtcdMessage> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = take();
      if (m !== undefined) return m;
      const failed = failure();
      if (failed !== undefined) throw failed;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no watch response within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  };
  return {
    next,
    maybeNext: async (ms) => {
      try {
        return await next(ms);
      } catch (err) {
        if (failure() !== undefined) throw err;
        return undefined;
      }
    },
    wake: () => {
      const w = waiter;
      waiter = undefined;
      w?.();
    },
  };
}

/** A create request with etcd's defaults for the rest. */
export function createReq(key: string, extra: EtcdMessage = {}): EtcdMessage {
  return { create_request: { key: Buffer.from(key), ...extra } };
}

/** An event as `TYPE key=value@mod` (DELETE: `DELETE key@mod`), prev as `(prev=value@mod)`. */
export function eventText(e: EtcdMessage): string {
  const kv = e['kv'] as { key: Buffer; value: Buffer; mod_revision: number };
  const prev = e['prev_kv'] as { value: Buffer; mod_revision: number } | undefined;
  const type = e['type'] === 1 ? 'DELETE' : 'PUT';
  const body = type === 'PUT' ? `${kv.key.toString()}=${kv.value.toString()}` : kv.key.toString();
  return `${type} ${body}@${kv.mod_revision}${prev === undefined ? '' : ` (prev=${prev.value.toString()}@${prev.mod_revision})`}`;
}

/** Events of a response as text. */
export function eventsText(r: EtcdMessage): string[] {
  return ((r['events'] as EtcdMessage[] | undefined) ?? []).map(eventText);
}

/** The header revision of a response. */
export function headerRev(r: EtcdMessage): number {
  return (r['header'] as { revision: number } | undefined)?.revision ?? 0;
}
