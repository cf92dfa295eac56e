/**
 * The project's own gRPC server — the client port's, and the peer port's
 * for raft message streams: calls over {@link H2Connection}s, one per
 * client socket. Methods are registered by path with their codec
 * and a handler; a unary handler returns the response, a streaming handler
 * reads the client's messages and sends through its call. A handler's
 * failure becomes the call's status through `statusOf`.
 *
 * Sockets are the I/O edge: what a connection sends in one event-loop turn
 * leaves in one write (writev), and stream data waits while the socket
 * holds more than {@link SOCKET_QUEUED_BYTES_HIGH}.
 */
import type * as net from 'node:net';
import type { Duplex } from 'node:stream';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { H2Connection, type H2Output, type H2Stream } from './connection.js';
import { H2Error } from './frames.js';
import { LazyAbort } from './lazy-abort.js';
import {
  frameMessage,
  GrpcStatusError,
  MESSAGE_PREFIX_BYTES,
  MessageReader,
  metadataOf,
  OK_TRAILERS,
  OK_TRAILERS_ONLY,
  parseTimeout,
  RESPONSE_HEADERS,
  statusBlock,
} from './grpc-wire.js';

/** A unary method's handler: the decoded request in, the response out, failures thrown. */
export type UnaryMethod = (request: unknown, call: ServerCall) => Promise<unknown>;
/** A streaming method's handler: reads `call.requests`, answers with `call.send`; resolving ends the call with OK. */
export type StreamingMethod = (call: ServerCall) => Promise<void>;

/** One registered method. */
export interface GrpcMethod {
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  decode(body: Buffer): unknown;
  encode(message: unknown): Buffer;
  readonly unary?: UnaryMethod;
  readonly streaming?: StreamingMethod;
}

/** Options of a {@link GrpcServer}. */
export interface GrpcServerOptions {
  /** Largest request message accepted (RESOURCE_EXHAUSTED above it). */
  readonly maxReceiveBytes: number;
  /** The status a handler's failure is answered with. */
  statusOf(err: unknown): { code: number; message: string };
  /** Called when a connection ends because the server failed serving it (not for a client's protocol errors). */
  onServerFailure?(err: Error): void;
}

/** HTTP/2 settings of client connections. */
const STREAM_WINDOW_BYTES = 1024 * 1024;
const CONNECTION_WINDOW_BYTES = 16 * 1024 * 1024;
const HEADER_BLOCK_BYTES_MAX = 256 * 1024;
/** Bytes of a streaming call's messages received and not yet read above which the client is not credited more. */
const INBOX_BYTES_MAX = 1024 * 1024;
/** Unsent bytes a socket may hold before stream data waits for 'drain'. */
export const SOCKET_QUEUED_BYTES_HIGH = 1024 * 1024;
/** Bodies up to this size are sent in one buffer with their prefix; larger ones as two, uncopied. */
const COPY_BODY_BYTES_MAX = 16 * 1024;

/** A call as its handler sees it. */
export class ServerCall {
  /** The client's metadata (request headers but transport ones). */
  readonly metadata: grpc.Metadata;
  private readonly abort = new LazyAbort();
  private over = false;
  private deadlineTimer: NodeJS.Timeout | undefined;
  /** Streaming calls: messages received and not yet read, with their sizes on the wire (made on first use: unary calls have none). */
  private inbox: Array<{ message: unknown; bytes: number }> | undefined;
  private inboxBytes = 0;
  /** Bytes received but not credited back while the inbox was above its bound. */
  private owed = 0;
  private inboxEnded = false;
  private wakeReader: (() => void) | undefined;
  private wakeWriter: (() => void) | undefined;

  constructor(
    private readonly stream: H2Stream,
    private readonly method: GrpcMethod,
    private readonly socket: Duplex,
  ) {
    this.metadata = metadataOf(stream.headers);
  }

  /** Fires when the client cancels, the deadline passes or the connection ends. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** What grpc-js' `getAuthContext` gives: the verified client certificate of a TLS connection. */
  getAuthContext(): { sslPeerCertificate?: PeerCertificate } {
    const tlsSocket = this.socket as Partial<TLSSocket>;
    if (tlsSocket.authorized !== true || typeof tlsSocket.getPeerCertificate !== 'function') return {};
    return { sslPeerCertificate: tlsSocket.getPeerCertificate() };
  }

  /** The client's messages (streaming calls); ends when the client half-closes or the call ends. */
  get requests(): AsyncIterable<unknown> {
    return { [Symbol.asyncIterator]: () => ({ next: () => this.nextRequest() }) };
  }

  private async nextRequest(): Promise<IteratorResult<unknown>> {
    for (;;) {
      const m = this.inbox?.shift();
      if (m !== undefined) {
        this.inboxBytes -= m.bytes;
        if (this.owed > 0 && this.inboxBytes <= INBOX_BYTES_MAX) {
          this.stream.credit(this.owed);
          this.owed = 0;
        }
        return { value: m.message, done: false };
      }
      if (this.inboxEnded || this.over) return { value: undefined, done: true };
      await new Promise<void>((resolve) => (this.wakeReader = resolve));
      this.wakeReader = undefined;
    }
  }

  /**
   * Sends one response message. Resolves when more may be sent, so a
   * handler that awaits it never buffers without bound for a slow client;
   * rejects once the call is over.
   */
  send(message: unknown): Promise<void> {
    if (this.over) return Promise.reject(new GrpcStatusError(grpc.status.CANCELLED, 'call is over'));
    this.writeMessage(this.method.encode(message));
    if (this.stream.writable) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.wakeWriter = () => {
        this.wakeWriter = undefined;
        if (this.over) reject(new GrpcStatusError(grpc.status.CANCELLED, 'call is over'));
        else resolve();
      };
    });
  }

  /** Whether the call has ended (answered, cancelled or failed). */
  get ended(): boolean {
    return this.over;
  }

  /** @internal Wires the call to its stream and starts the deadline. */
  start(timeoutMs: number | undefined): void {
    this.stream.onClose = (reset) => {
      if (reset) this.cancel();
      else this.finished();
    };
    this.stream.onWritable = () => this.wakeWriter?.();
    if (timeoutMs !== undefined) {
      this.deadlineTimer = setTimeout(() => this.finish(grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded'), timeoutMs);
      this.deadlineTimer.unref?.();
    }
  }

  /** @internal A streaming call's next message. */
  deliver(message: unknown, bytes: number): void {
    (this.inbox ??= []).push({ message, bytes });
    this.inboxBytes += bytes;
    this.wakeReader?.();
  }

  /**
   * @internal `bytes` of a streaming call's DATA arrived: credited back to
   * the client at once while the messages not yet read stay within
   * {@link INBOX_BYTES_MAX}, else when the handler has read them down to it.
   */
  received(bytes: number): void {
    if (this.inboxBytes <= INBOX_BYTES_MAX) this.stream.credit(bytes);
    else this.owed += bytes;
  }

  /** @internal The client half-closed. */
  endRequests(): void {
    this.inboxEnded = true;
    this.wakeReader?.();
  }

  /** @internal Answers a unary call. */
  reply(response: unknown): void {
    if (this.over) return;
    let body: Buffer;
    try {
      body = this.method.encode(response);
    } catch (err) {
      this.finish(grpc.status.INTERNAL, `failed to encode the response: ${(err as Error).message}`);
      return;
    }
    this.writeMessage(body);
    this.finishOk();
  }

  /** @internal Ends the call well (after its messages). */
  finishOk(): void {
    if (this.over) return;
    // A call that sent nothing still needs the response headers (trailers-only).
    this.stream.end(this.stream.responded ? OK_TRAILERS : OK_TRAILERS_ONLY);
    this.finished();
  }

  /** @internal Ends the call with a status. */
  finish(code: number, message: string): void {
    if (this.over) return;
    if (code === grpc.status.OK) {
      this.finishOk();
      return;
    }
    const trailersOnly = !this.stream.responded;
    this.stream.end(statusBlock(code, message, trailersOnly));
    if (code === grpc.status.DEADLINE_EXCEEDED || code === grpc.status.CANCELLED) this.cancel();
    this.finished();
  }

  private writeMessage(body: Buffer): void {
    this.stream.respond(RESPONSE_HEADERS);
    if (body.length <= COPY_BODY_BYTES_MAX) {
      this.stream.write(frameMessage(body));
    } else {
      const prefix = Buffer.allocUnsafe(MESSAGE_PREFIX_BYTES);
      prefix[0] = 0;
      prefix.writeUInt32BE(body.length, 1);
      this.stream.write(prefix);
      this.stream.write(body);
    }
  }

  private finished(): void {
    if (this.deadlineTimer !== undefined) clearTimeout(this.deadlineTimer);
    this.over = true;
    this.wakeReader?.();
    this.wakeWriter?.();
  }

  private cancel(): void {
    this.abort.abort();
    this.finished();
  }
}

/** The gRPC server; {@link serve} takes each client connection after its first bytes were read. */
export class GrpcServer {
  private readonly methods = new Map<string, GrpcMethod>();
  private readonly connections = new Map<H2Connection, Duplex>();
  private closing = false;
  private idle: (() => void) | undefined;

  constructor(private readonly options: GrpcServerOptions) {}

  /** Registers `method` at `path` (`/package.Service/Method`). */
  register(path: string, method: GrpcMethod): void {
    this.methods.set(path, method);
  }

  /** Serves an HTTP/2 connection; `head` holds bytes already read from it (starting with the client preface). */
  serve(socket: Duplex, head: Buffer): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    // Writes leave at once: with Nagle's algorithm a server-initiated write (a
    // watch event) behind an unacknowledged one waits for the client's delayed ACK.
    (socket as Partial<net.Socket>).setNoDelay?.(true);
    const output = new SocketOutput(socket);
    const connection: H2Connection = new H2Connection(output, {
      streamWindowBytes: STREAM_WINDOW_BYTES,
      connectionWindowBytes: CONNECTION_WINDOW_BYTES,
      headerBlockBytesMax: HEADER_BLOCK_BYTES_MAX,
      onStream: (stream) => this.onStream(stream, socket),
      onClose: (err) => {
        if (err?.code === H2Error.INTERNAL_ERROR) this.options.onServerFailure?.(err);
        this.connections.delete(connection);
        if (this.connections.size === 0) this.idle?.();
      },
    });
    output.onDrain = () => connection.drained();
    this.connections.set(connection, socket);
    const end = (): void => {
      connection.destroy();
      socket.destroy();
    };
    socket.on('data', (chunk: Buffer) => connection.receive(chunk));
    socket.on('error', end);
    socket.on('close', end);
    if (head.length > 0) connection.receive(head);
    socket.resume();
  }

  /** Open connections. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /**
   * Stops taking calls: every connection gets GOAWAY and ends once its open
   * calls are over. Resolves when all have ended, or after `graceMs`, when
   * the rest are cut (their calls cancelled).
   */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    for (const c of this.connections.keys()) c.goAway();
    if (this.connections.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (this.idle = resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
      ]);
      clearTimeout(timer);
    }
    for (const [c, socket] of [...this.connections]) {
      c.destroy();
      socket.destroy();
    }
  }

  private onStream(stream: H2Stream, socket: Duplex): void {
    const path = stream.header(':path') ?? '';
    const method = this.methods.get(path);
    if (method === undefined) {
      stream.respond(statusBlock(grpc.status.UNIMPLEMENTED, unknownMethodText(path), true), true);
      return;
    }
    const contentType = stream.header('content-type') ?? '';
    if (stream.header(':method') !== 'POST' || !contentType.startsWith('application/grpc')) {
      stream.respond(statusBlock(grpc.status.INTERNAL, `invalid gRPC request (method ${stream.header(':method') ?? ''}, content-type "${contentType}")`, true), true);
      return;
    }
    const call = new ServerCall(stream, method, socket);
    const timeout = stream.header('grpc-timeout');
    call.start(timeout === undefined ? undefined : parseTimeout(timeout));
    const reader = new MessageReader(this.options.maxReceiveBytes, stream.header('grpc-encoding'));
    if (method.requestStream) this.readStreaming(stream, call, method, reader);
    else this.readSingle(stream, call, method, reader);
  }

  /** Unary and server-streaming calls: one request, read whole, then the handler runs. */
  private readSingle(stream: H2Stream, call: ServerCall, method: GrpcMethod, reader: MessageReader): void {
    let request: Buffer | undefined;
    let failed = false;
    stream.onData = (data) => {
      if (failed) return;
      stream.credit(data.length);
      try {
        for (const m of reader.push(data)) {
          if (request !== undefined) throw new GrpcStatusError(grpc.status.UNIMPLEMENTED, 'grpc: more than one request message on a unary call');
          request = m;
        }
      } catch (err) {
        failed = true;
        this.fail(call, err);
      }
    };
    stream.onEnd = () => {
      if (failed || call.ended) return;
      if (request === undefined || reader.partial) {
        call.finish(grpc.status.INTERNAL, 'grpc: the client sent no complete request message');
        return;
      }
      let decoded: unknown;
      try {
        decoded = method.decode(request);
      } catch (err) {
        call.finish(grpc.status.INTERNAL, `grpc: error unmarshalling request: ${(err as Error).message}`);
        return;
      }
      if (method.unary !== undefined) {
        let answer: Promise<unknown>;
        try {
          answer = method.unary(decoded, call);
        } catch (err) {
          this.answerFailure(call, err);
          return;
        }
        answer.then(
          (response) => call.reply(response),
          (err: unknown) => this.answerFailure(call, err),
        );
      } else {
        call.deliver(decoded, 0);
        call.endRequests();
        this.runStreaming(call, method);
      }
    };
  }

  /** Bidi calls: each message is handed on as it completes; the handler starts at once. */
  private readStreaming(stream: H2Stream, call: ServerCall, method: GrpcMethod, reader: MessageReader): void {
    let failed = false;
    stream.onData = (data) => {
      if (failed) return;
      try {
        for (const m of reader.push(data)) call.deliver(method.decode(m), m.length + MESSAGE_PREFIX_BYTES);
        call.received(data.length);
      } catch (err) {
        failed = true;
        this.fail(call, err);
      }
    };
    stream.onEnd = () => call.endRequests();
    this.runStreaming(call, method);
  }

  private runStreaming(call: ServerCall, method: GrpcMethod): void {
    let run: Promise<void>;
    try {
      run = (method.streaming as StreamingMethod)(call);
    } catch (err) {
      this.answerFailure(call, err);
      return;
    }
    run.then(
      () => call.finishOk(),
      (err: unknown) => this.answerFailure(call, err),
    );
  }

  private answerFailure(call: ServerCall, err: unknown): void {
    if (err instanceof GrpcStatusError) {
      call.finish(err.code, err.details);
      return;
    }
    const { code, message } = this.options.statusOf(err);
    call.finish(code, message);
  }

  /** A request the transport refuses (too large, undecodable): answered at once; the stream then closes. */
  private fail(call: ServerCall, err: unknown): void {
    if (err instanceof GrpcStatusError) call.finish(err.code, err.details);
    else call.finish(grpc.status.INTERNAL, `grpc: ${(err as Error).message}`);
  }
}

/** grpc-go's texts for a path no service answers. */
function unknownMethodText(path: string): string {
  const m = /^\/([^/]+)\/([^/]+)$/.exec(path);
  if (m === null) return `malformed method name: "${path}"`;
  return `unknown service ${m[1]}`;
}

/**
 * An {@link H2Output} over a socket: bytes queued in one turn of the event
 * loop leave together in `setImmediate` (one writev).
 */
class SocketOutput implements H2Output {
  onDrain: () => void = () => undefined;
  private queued: Buffer[] = [];
  private queuedBytes = 0;
  private scheduled = false;
  private ending = false;
  private waitingDrain = false;

  constructor(private readonly socket: Duplex) {
    socket.on('drain', () => {
      this.waitingDrain = false;
      this.onDrain();
    });
  }

  write(bytes: Buffer): void {
    this.queued.push(bytes);
    this.queuedBytes += bytes.length;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  get congested(): boolean {
    return this.queuedBytes + this.socket.writableLength >= SOCKET_QUEUED_BYTES_HIGH;
  }

  end(): void {
    this.ending = true;
    if (!this.scheduled) this.flush();
  }

  private flush(): void {
    this.scheduled = false;
    const chunks = this.queued;
    const wasCongested = this.congested;
    this.queued = [];
    this.queuedBytes = 0;
    if (!this.socket.destroyed && chunks.length > 0) {
      this.socket.cork();
      for (const c of chunks) if (!this.socket.write(c)) this.waitingDrain = true;
      this.socket.uncork();
    }
    if (this.ending && !this.socket.destroyed) this.socket.end();
    else if (wasCongested && !this.waitingDrain && !this.congested) this.onDrain();
  }
}
