/**
 * One gRPC client-streaming call as the only stream of an HTTP/2 client
 * connection (RFC 9113; grpc/doc/PROTOCOL-HTTP2.md): the connection preface,
 * the request headers, each message as DATA within the server's flow-control
 * windows, and what the server's frames mean for the call. Pure: bytes to
 * send go to `output`, bytes received come in through `receive`; no sockets,
 * no timers.
 *
 * It is made for calls that stream for the life of their connection (the
 * raft transport's `Send`): it never reads a response message, and the call
 * ends when the server sends trailers, resets the stream, goes away or
 * breaks the protocol. Each of those is reported once, as the call's end.
 */
import {
  CLIENT_PREFACE,
  ConnectionError,
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW_SIZE,
  FRAME_HEADER_BYTES,
  Flag,
  FrameReader,
  FrameType,
  H2Error,
  MAX_FRAME_SIZE_LIMIT,
  MAX_WINDOW_SIZE,
  Setting,
  type Frame,
  encodeFrame,
  goAwayFrame,
  parseSettings,
  rstStreamFrame,
  settingsFrame,
  windowIncrement,
} from './frames.js';
import { HeaderDecoder, HpackError, encodeLiteralFields } from './hpack.js';

/** The call's stream: the first a client opens. */
const STREAM_ID = 1;
/** Bytes of a gRPC message's prefix (compressed flag, length). */
const MESSAGE_PREFIX_BYTES = 5;
/** The largest header block (HEADERS plus CONTINUATIONs) taken from the server. */
const HEADER_BLOCK_BYTES_MAX = 64 * 1024;

/** How the call ended. */
export interface CallEnd {
  /** gRPC status code from the server's trailers; undefined when the call ended without them. */
  readonly grpcStatus: number | undefined;
  /** What happened, for logs and errors. */
  readonly reason: string;
}

/** What the call reports; each callback runs inside `receive`. */
export interface ClientCallEvents {
  /** The server's first SETTINGS arrived: an HTTP/2 server answers. */
  onSettled(): void;
  /** DATA held back by flow control has all been sent. */
  onWindowOpen(): void;
  /** The server acknowledged one of our PINGs. */
  onPingAck(): void;
  /** The call is over; called once, and nothing is sent after it. */
  onEnd(end: CallEnd): void;
}

/** Request line and metadata of the call. */
export interface ClientCallRequest {
  /** `/package.Service/Method`. */
  readonly path: string;
  /** `host:port` of the server, as HTTP/2's `:authority`. */
  readonly authority: string;
  /** Settings sent besides ours (e.g. a private one that routes the connection at the server). */
  readonly settings?: ReadonlyArray<readonly [id: number, value: number]>;
}

/** The client end of one long-lived gRPC client-streaming call over HTTP/2. */
export class H2ClientCall {
  private readonly reader = new FrameReader(DEFAULT_MAX_FRAME_SIZE);
  private readonly decoder = new HeaderDecoder();
  /** Our send windows (§6.9): the connection's and the stream's; the stream's may go negative (§6.9.2). */
  private connectionWindow = DEFAULT_WINDOW_SIZE;
  private streamWindow = DEFAULT_WINDOW_SIZE;
  /** The server's SETTINGS_INITIAL_WINDOW_SIZE, which the stream window follows. */
  private initialWindow = DEFAULT_WINDOW_SIZE;
  /** The server's SETTINGS_MAX_FRAME_SIZE. */
  private maxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  /** Encoded messages (prefix and body) not yet sent, oldest first; the first may be partly sent. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** A header block in progress: HEADERS without END_HEADERS, then CONTINUATIONs. */
  private block: { parts: Buffer[]; bytes: number; endStream: boolean } | undefined;
  private responseHeadersSeen = false;
  private settled = false;
  private started = false;
  private ended = false;

  constructor(
    private readonly request: ClientCallRequest,
    private readonly output: (bytes: Buffer) => void,
    private readonly events: ClientCallEvents,
  ) {}

  /** Bytes of messages waiting for the server's flow-control windows. */
  get queuedBytes(): number {
    return this.pendingBytes;
  }

  /** The call ended (by the server, a protocol error or `cancel`). */
  get isEnded(): boolean {
    return this.ended;
  }

  /**
   * Sends the connection preface, our settings and the request headers.
   * Messages may follow at once: the server's settings only ever narrow what
   * we may send, and the windows start at the protocol's defaults.
   */
  start(): void {
    if (this.started) return;
    this.started = true;
    const headers = encodeLiteralFields([
      [':method', 'POST'],
      [':scheme', 'http'],
      [':path', this.request.path],
      [':authority', this.request.authority],
      ['content-type', 'application/grpc'],
      ['te', 'trailers'],
    ]);
    this.output(
      Buffer.concat([
        CLIENT_PREFACE,
        // The server pushes nothing and opens no streams to us.
        settingsFrame([
          [Setting.ENABLE_PUSH, 0],
          [Setting.MAX_CONCURRENT_STREAMS, 0],
          ...(this.request.settings ?? []),
        ]),
        encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, STREAM_ID, headers),
      ]),
    );
  }

  /**
   * Sends one message, or queues what the flow-control windows do not admit
   * now. True when all of it went out; false when some waits (`onWindowOpen`
   * follows once the queue has drained).
   */
  write(body: Uint8Array): boolean {
    if (this.ended || !this.started) return false;
    const length = MESSAGE_PREFIX_BYTES + body.length;
    if (this.pendingBytes === 0 && length <= this.sendable()) {
      // The common case: one frame, one buffer (frame header, message prefix, body).
      const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length);
      frame[0] = length >>> 16;
      frame[1] = (length >>> 8) & 0xff;
      frame[2] = length & 0xff;
      frame[3] = FrameType.DATA;
      frame[4] = 0;
      frame.writeUInt32BE(STREAM_ID, 5);
      frame[FRAME_HEADER_BYTES] = 0;
      frame.writeUInt32BE(body.length, FRAME_HEADER_BYTES + 1);
      frame.set(body, FRAME_HEADER_BYTES + MESSAGE_PREFIX_BYTES);
      this.connectionWindow -= length;
      this.streamWindow -= length;
      this.output(frame);
      return true;
    }
    const message = Buffer.allocUnsafe(length);
    message[0] = 0;
    message.writeUInt32BE(body.length, 1);
    message.set(body, MESSAGE_PREFIX_BYTES);
    this.pending.push(message);
    this.pendingBytes += length;
    this.sendPending();
    return this.pendingBytes === 0;
  }

  /** Sends a PING carrying `payload` (8 bytes). */
  ping(payload: Buffer): void {
    if (this.ended || !this.started) return;
    this.output(encodeFrame(FrameType.PING, 0, 0, payload));
  }

  /** Abandons the call: resets its stream; no `onEnd` follows. */
  cancel(): void {
    if (this.ended) return;
    this.ended = true;
    this.dropPending();
    if (this.started) this.output(rstStreamFrame(STREAM_ID, H2Error.CANCEL));
  }

  /** Bytes read from the connection, in order. */
  receive(chunk: Buffer): void {
    if (this.ended) return;
    try {
      for (const frame of this.reader.push(chunk)) {
        this.onFrame(frame);
        if (this.ended) return;
      }
    } catch (e) {
      if (e instanceof ConnectionError) this.failConnection(e.code, e.message);
      else if (e instanceof HpackError) this.failConnection(H2Error.COMPRESSION_ERROR, e.message);
      else throw e;
    }
  }

  /** What one DATA frame may carry now. */
  private sendable(): number {
    return Math.max(0, Math.min(this.connectionWindow, this.streamWindow, this.maxFrameSize));
  }

  /** Sends queued bytes while the windows admit them; a message may span several frames. */
  private sendPending(): void {
    while (this.pendingBytes > 0) {
      const room = this.sendable();
      if (room === 0) return;
      const parts: Buffer[] = [];
      let size = 0;
      while (size < room && this.pending.length > 0) {
        const head = this.pending[0] as Buffer;
        const take = Math.min(head.length, room - size);
        parts.push(take === head.length ? head : head.subarray(0, take));
        if (take === head.length) this.pending.shift();
        else this.pending[0] = head.subarray(take);
        size += take;
      }
      this.pendingBytes -= size;
      this.connectionWindow -= size;
      this.streamWindow -= size;
      this.output(encodeFrame(FrameType.DATA, 0, STREAM_ID, parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, size)));
    }
  }

  private onFrame(f: Frame): void {
    if (this.block !== undefined && f.type !== FrameType.CONTINUATION) {
      throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'header block interrupted');
    }
    switch (f.type) {
      case FrameType.SETTINGS:
        this.onSettings(f);
        return;
      case FrameType.PING:
        if (f.streamId !== 0 || f.payload.length !== 8) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'malformed PING');
        if ((f.flags & Flag.ACK) !== 0) this.events.onPingAck();
        else this.output(encodeFrame(FrameType.PING, Flag.ACK, 0, f.payload));
        return;
      case FrameType.WINDOW_UPDATE:
        this.onWindowUpdate(f);
        return;
      case FrameType.GOAWAY: {
        if (f.payload.length < 8) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'short GOAWAY');
        const code = f.payload.readUInt32BE(4);
        const debug = f.payload.subarray(8).toString('utf8');
        this.end({ grpcStatus: undefined, reason: `server went away (HTTP/2 error ${code}${debug === '' ? '' : `: ${debug}`})` });
        return;
      }
      case FrameType.RST_STREAM:
        if (f.streamId === STREAM_ID) {
          const code = f.payload.length === 4 ? f.payload.readUInt32BE(0) : H2Error.PROTOCOL_ERROR;
          this.end({ grpcStatus: undefined, reason: `server reset the stream (HTTP/2 error ${code})` });
        }
        return;
      case FrameType.HEADERS:
        this.onHeaders(f);
        return;
      case FrameType.CONTINUATION: {
        const block = this.block;
        if (block === undefined || f.streamId !== STREAM_ID) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'unexpected CONTINUATION');
        this.addToBlock(block, f.payload);
        if ((f.flags & Flag.END_HEADERS) !== 0) this.finishBlock(block);
        return;
      }
      case FrameType.DATA:
        // A response message: this call has no use for one. Its bytes are
        // never acknowledged, which stops a server that keeps sending.
        if (f.streamId === STREAM_ID && (f.flags & Flag.END_STREAM) !== 0) {
          this.end({ grpcStatus: undefined, reason: 'server ended the stream without trailers' });
        }
        return;
      case FrameType.PUSH_PROMISE:
        throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'PUSH_PROMISE with push disabled');
      default:
        return; // PRIORITY and unknown types are ignored (§5.5)
    }
  }

  private onSettings(f: Frame): void {
    if (f.streamId !== 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if ((f.flags & Flag.ACK) !== 0) return;
    for (const [id, value] of parseSettings(f.payload)) {
      if (id === Setting.INITIAL_WINDOW_SIZE) {
        if (value > MAX_WINDOW_SIZE) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, `initial window ${value} too large`);
        this.streamWindow += value - this.initialWindow;
        this.initialWindow = value;
      } else if (id === Setting.MAX_FRAME_SIZE) {
        if (value < DEFAULT_MAX_FRAME_SIZE || value > MAX_FRAME_SIZE_LIMIT) {
          throw new ConnectionError(H2Error.PROTOCOL_ERROR, `max frame size ${value} out of range`);
        }
        this.maxFrameSize = value;
      }
    }
    this.output(encodeFrame(FrameType.SETTINGS, Flag.ACK, 0));
    if (!this.settled) {
      this.settled = true;
      this.events.onSettled();
      if (this.ended) return;
    }
    this.afterWindowChange();
  }

  private onWindowUpdate(f: Frame): void {
    const increment = windowIncrement(f.payload);
    if (f.streamId === 0) {
      if (increment === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.connectionWindow += increment;
      if (this.connectionWindow > MAX_WINDOW_SIZE) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, 'connection window above 2^31-1');
    } else if (f.streamId === STREAM_ID) {
      if (increment === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'stream WINDOW_UPDATE of 0');
      this.streamWindow += increment;
      if (this.streamWindow > MAX_WINDOW_SIZE) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, 'stream window above 2^31-1');
    } else {
      return;
    }
    this.afterWindowChange();
  }

  private afterWindowChange(): void {
    if (this.pendingBytes === 0) return;
    this.sendPending();
    if (this.pendingBytes === 0) this.events.onWindowOpen();
  }

  private onHeaders(f: Frame): void {
    if (f.streamId !== STREAM_ID) throw new ConnectionError(H2Error.PROTOCOL_ERROR, `HEADERS on stream ${f.streamId}`);
    let payload = f.payload;
    if ((f.flags & Flag.PADDED) !== 0) {
      const padLength = payload[0] ?? 0;
      if (payload.length < 1 + padLength) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'padding exceeds the frame');
      payload = payload.subarray(1, payload.length - padLength);
    }
    if ((f.flags & Flag.PRIORITY) !== 0) {
      if (payload.length < 5) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'short priority fields');
      payload = payload.subarray(5);
    }
    const block = { parts: [] as Buffer[], bytes: 0, endStream: (f.flags & Flag.END_STREAM) !== 0 };
    this.addToBlock(block, payload);
    if ((f.flags & Flag.END_HEADERS) !== 0) this.finishBlock(block);
    else this.block = block;
  }

  private addToBlock(block: { parts: Buffer[]; bytes: number }, payload: Buffer): void {
    block.parts.push(payload);
    block.bytes += payload.length;
    if (block.bytes > HEADER_BLOCK_BYTES_MAX) throw new ConnectionError(H2Error.ENHANCE_YOUR_CALM, `header block above ${HEADER_BLOCK_BYTES_MAX} bytes`);
  }

  /** A complete header block: the response headers, or trailers that end the call. */
  private finishBlock(block: { parts: Buffer[]; bytes: number; endStream: boolean }): void {
    this.block = undefined;
    // Always decoded: the decoder's table must follow every block the server encodes.
    const fields = this.decoder.decode(Buffer.concat(block.parts, block.bytes));
    const first = !this.responseHeadersSeen;
    this.responseHeadersSeen = true;
    if (!block.endStream) {
      if (!first) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'trailers without END_STREAM');
      return;
    }
    const get = (name: string): string | undefined => fields.find((h) => h.name === name)?.value;
    const status = get('grpc-status');
    const httpStatus = get(':status');
    const grpcStatus = status === undefined || !/^\d+$/.test(status) ? undefined : Number(status);
    const message = decodeGrpcMessage(get('grpc-message') ?? '');
    const reason =
      grpcStatus !== undefined
        ? `call ended with gRPC status ${grpcStatus}${message === '' ? '' : `: ${message}`}`
        : `call ended without a gRPC status${httpStatus === undefined ? '' : ` (HTTP ${httpStatus})`}`;
    this.end({ grpcStatus, reason });
  }

  /** A protocol violation by the server: GOAWAY, then the call's end. */
  private failConnection(code: number, message: string): void {
    if (this.ended) return;
    this.output(goAwayFrame(0, code, message));
    this.end({ grpcStatus: undefined, reason: `HTTP/2 protocol error from the server: ${message}` });
  }

  private end(end: CallEnd): void {
    if (this.ended) return;
    this.ended = true;
    this.dropPending();
    this.events.onEnd(end);
  }

  private dropPending(): void {
    this.pending = [];
    this.pendingBytes = 0;
  }
}

/** `grpc-message` is percent-encoded (PROTOCOL-HTTP2.md); a malformed one is kept as sent. */
function decodeGrpcMessage(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
