/**
 * The server side of one HTTP/2 connection (RFC 9113), as the gRPC server
 * needs it: streams opened by the client, header blocks decoded, flow
 * control both ways, SETTINGS, PING, RST_STREAM and GOAWAY. It is a state
 * machine over bytes: {@link H2Connection.receive} takes what the socket
 * read, and every byte to send goes to an {@link H2Output}, which the socket
 * adapter (grpc-server.ts) writes once per event-loop turn. No I/O here.
 *
 * Why not Node's `http2` module: each of its streams is a Duplex with its
 * own native handle, callbacks and events, and grpc-js adds a call object
 * stack on top; together about 140 µs of CPU per unary call, where this
 * connection and the gRPC layer above take about 30 (docs/benchmarks.md).
 *
 * Flow control: the client's sends are bounded by our windows (a stream's is
 * credited back as {@link H2Stream.credit} reports bytes consumed, the
 * connection's as bytes arrive); our sends wait for the client's windows
 * and are cut to its SETTINGS_MAX_FRAME_SIZE.
 */
import {
  ConnectionError,
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW_SIZE,
  encodeFrame,
  Flag,
  type Frame,
  FrameReader,
  frameHeader,
  FrameType,
  goAwayFrame,
  H2Error,
  MAX_FRAME_SIZE_LIMIT,
  MAX_WINDOW_SIZE,
  CLIENT_PREFACE,
  parseSettings,
  rstStreamFrame,
  Setting,
  settingsFrame,
  windowIncrement,
  windowUpdateFrame,
} from './frames.js';
import { HeaderDecoder, type HeaderField, HpackError } from './hpack.js';

/** Where a connection's outgoing bytes go. */
export interface H2Output {
  /** Queues bytes for the client, in order. */
  write(bytes: Buffer): void;
  /** Whether the transport holds enough unsent bytes that stream data should wait for {@link H2Connection.drained}. */
  readonly congested: boolean;
  /** Ends the connection once queued bytes are written. */
  end(): void;
}

/** Options of an {@link H2Connection}. */
export interface H2ConnectionOptions {
  /** Called for each stream the client opens, with its request headers; set the stream's callbacks here. */
  onStream(stream: H2Stream): void;
  /** Our SETTINGS_INITIAL_WINDOW_SIZE: what a client may send on a stream before we credit it. */
  readonly streamWindowBytes: number;
  /** Our connection receive window (raised from 65,535 at start with a WINDOW_UPDATE). */
  readonly connectionWindowBytes: number;
  /** The largest header block (HEADERS plus CONTINUATIONs) accepted; more is a connection error. */
  readonly headerBlockBytesMax: number;
  /** Called once when the connection is over (closed by either side, or failed). */
  onClose?(error: ConnectionError | undefined): void;
}

/** Bytes of a stream's queued data above which its writer is told to wait ({@link H2Stream.writable}). */
export const STREAM_QUEUED_BYTES_HIGH = 64 * 1024;

/**
 * One client-initiated stream. The application reads through the `on*`
 * callbacks (set in onStream) and answers with respond/write/end or reset.
 */
export class H2Stream {
  /** Client's data arrives here (DATA payloads, padding removed). */
  onData: (data: Buffer) => void = ignore;
  /** The client half-closed (END_STREAM). */
  onEnd: () => void = ignore;
  /** The stream is over: `reset` when by RST_STREAM, GOAWAY or the connection ending before our end. */
  onClose: (reset: boolean) => void = ignore;
  /** The stream can take more ({@link writable}); called after sends and window updates, also when nothing waited. */
  onWritable: () => void = ignore;

  /** @internal What the client's window lets us send. */
  sendWindow: number;
  /** @internal What our window still lets the client send. */
  recvWindow: number;
  /** @internal Consumed bytes not yet credited back. */
  recvUncredited = 0;
  /** @internal Data waiting for window or for the transport. */
  readonly pending: Buffer[] = [];
  /** @internal */
  pendingBytes = 0;
  /** @internal The trailer block to send once pending data is out. */
  trailers: Buffer | undefined;
  /** @internal */
  remoteEnded = false;
  /** @internal Whether response headers went out. */
  responded = false;
  /** @internal */
  closed = false;

  constructor(
    private readonly connection: H2Connection,
    readonly id: number,
    readonly headers: readonly HeaderField[],
    sendWindow: number,
    recvWindow: number,
  ) {
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  /** The first value of header `name`, if present. */
  header(name: string): string | undefined {
    for (const h of this.headers) if (h.name === name) return h.value;
    return undefined;
  }

  /** Sends the response header block; with `end`, it is the whole response (trailers-only). */
  respond(block: Buffer, end = false): void {
    if (this.closed || this.responded) return;
    this.responded = true;
    if (end) this.end(block);
    else this.connection.sendHeaders(this, block, false);
  }

  /** Queues response data (sent as the client's windows allow). */
  write(data: Buffer): void {
    if (this.closed || this.trailers !== undefined) return;
    this.pending.push(data);
    this.pendingBytes += data.length;
    this.connection.flushStream(this);
  }

  /** Ends the response with `trailerBlock` once queued data is out. */
  end(trailerBlock: Buffer): void {
    if (this.closed || this.trailers !== undefined) return;
    this.responded = true;
    this.trailers = trailerBlock;
    this.connection.flushStream(this);
  }

  /** Resets the stream (RST_STREAM) and closes it. */
  reset(code: number = H2Error.CANCEL): void {
    if (this.closed) return;
    this.connection.resetStream(this, code);
  }

  /** Reports `bytes` of received data consumed, so the client may send that much more. */
  credit(bytes: number): void {
    if (this.closed || this.remoteEnded || bytes <= 0) return;
    this.connection.creditStream(this, bytes);
  }

  /** Whether a writer may queue more without waiting for onWritable. */
  get writable(): boolean {
    return !this.closed && this.pendingBytes < STREAM_QUEUED_BYTES_HIGH && !this.connection.congested;
  }
}

/** The server end of one HTTP/2 connection; see the module comment. */
export class H2Connection {
  private readonly reader = new FrameReader();
  private readonly decoder = new HeaderDecoder();
  private readonly streams = new Map<number, H2Stream>();
  /** Streams with data held back by the connection window or the transport, in arrival order. */
  private readonly waiting = new Set<H2Stream>();
  private prefaceSeen = 0;
  private settingsSeen = false;
  private lastStreamId = 0;
  /** A header block in progress (HEADERS without END_HEADERS, then CONTINUATIONs). */
  private block: { streamId: number; endStream: boolean; parts: Buffer[]; bytes: number } | undefined;
  private peerInitialWindow = DEFAULT_WINDOW_SIZE;
  private peerMaxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  private sendWindow = DEFAULT_WINDOW_SIZE;
  private recvWindow: number;
  private recvUncredited = 0;
  private goingAway = false;
  private over = false;

  constructor(
    private readonly out: H2Output,
    private readonly options: H2ConnectionOptions,
  ) {
    this.recvWindow = options.connectionWindowBytes;
    // Our preface: SETTINGS (the server's may be sent before the client's arrives), then the connection window.
    out.write(
      settingsFrame([
        [Setting.ENABLE_PUSH, 0],
        [Setting.INITIAL_WINDOW_SIZE, options.streamWindowBytes],
      ]),
    );
    if (options.connectionWindowBytes > DEFAULT_WINDOW_SIZE) out.write(windowUpdateFrame(0, options.connectionWindowBytes - DEFAULT_WINDOW_SIZE));
  }

  /** Open streams. */
  get streamCount(): number {
    return this.streams.size;
  }

  /** Whether the transport asks stream data to wait. */
  get congested(): boolean {
    return this.out.congested;
  }

  /** Whether the connection is over. */
  get closed(): boolean {
    return this.over;
  }

  /**
   * Takes bytes read from the client. A protocol violation ends the
   * connection with GOAWAY and its code; so does an exception thrown by a
   * stream callback (INTERNAL_ERROR), reported through onClose.
   */
  receive(chunk: Buffer): void {
    if (this.over) return;
    try {
      let bytes = chunk;
      if (this.prefaceSeen < CLIENT_PREFACE.length) {
        const n = Math.min(CLIENT_PREFACE.length - this.prefaceSeen, bytes.length);
        if (!bytes.subarray(0, n).equals(CLIENT_PREFACE.subarray(this.prefaceSeen, this.prefaceSeen + n))) {
          throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'invalid connection preface');
        }
        this.prefaceSeen += n;
        bytes = bytes.subarray(n);
        if (bytes.length === 0) return;
      }
      for (const frame of this.reader.push(bytes)) {
        this.onFrame(frame);
        if (this.over) return;
      }
    } catch (err) {
      // A failure of the code serving a stream ends this connection, not the process.
      this.fail(err instanceof ConnectionError ? err : new ConnectionError(H2Error.INTERNAL_ERROR, `server failure: ${(err as Error).message}`));
    }
  }

  /** The transport can take more: resume streams that waited for it. */
  drained(): void {
    for (const s of [...this.waiting]) {
      if (this.out.congested) break;
      this.flushStream(s);
    }
    for (const s of this.streams.values()) if (s.writable) s.onWritable();
  }

  /**
   * Stops taking new streams (GOAWAY naming the last one taken) and ends the
   * connection once the open ones are over.
   */
  goAway(): void {
    if (this.over || this.goingAway) return;
    this.goingAway = true;
    this.out.write(goAwayFrame(this.lastStreamId, H2Error.NO_ERROR));
    this.endIfIdle();
  }

  /** The transport is gone: every open stream is reset. */
  destroy(): void {
    if (this.over) return;
    this.over = true;
    this.closeAll();
    this.options.onClose?.(undefined);
  }

  private fail(err: ConnectionError): void {
    if (this.over) return;
    this.out.write(goAwayFrame(this.lastStreamId, err.code, err.message));
    this.over = true;
    this.out.end();
    this.closeAll();
    this.options.onClose?.(err);
  }

  private closeAll(): void {
    for (const s of [...this.streams.values()]) this.closeStream(s, true);
  }

  private endIfIdle(): void {
    if (this.goingAway && this.streams.size === 0 && !this.over) {
      this.over = true;
      this.out.end();
      this.options.onClose?.(undefined);
    }
  }

  private onFrame(f: Frame): void {
    if (!this.settingsSeen) {
      if (f.type !== FrameType.SETTINGS || (f.flags & Flag.ACK) !== 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'first frame is not SETTINGS');
      this.settingsSeen = true;
    }
    if (this.block !== undefined && f.type !== FrameType.CONTINUATION) {
      throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'header block interrupted');
    }
    switch (f.type) {
      case FrameType.DATA:
        return this.onData(f);
      case FrameType.HEADERS:
        return this.onHeaders(f);
      case FrameType.CONTINUATION:
        return this.onContinuation(f);
      case FrameType.PRIORITY:
        if (f.streamId === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'PRIORITY on stream 0');
        if (f.payload.length !== 5) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'PRIORITY length is not 5');
        return;
      case FrameType.RST_STREAM:
        return this.onRstStream(f);
      case FrameType.SETTINGS:
        return this.onSettings(f);
      case FrameType.PING:
        if (f.streamId !== 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'PING on a stream');
        if (f.payload.length !== 8) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'PING length is not 8');
        if ((f.flags & Flag.ACK) === 0) this.out.write(encodeFrame(FrameType.PING, Flag.ACK, 0, f.payload));
        return;
      case FrameType.GOAWAY:
        if (f.streamId !== 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'GOAWAY on a stream');
        // The client opens no more streams; the open ones finish.
        this.goingAway = true;
        this.endIfIdle();
        return;
      case FrameType.WINDOW_UPDATE:
        return this.onWindowUpdate(f);
      case FrameType.PUSH_PROMISE:
        throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'PUSH_PROMISE from a client');
      default:
        return; // §4.1: unknown frame types are ignored.
    }
  }

  private onData(f: Frame): void {
    if (f.streamId === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'DATA on stream 0');
    const length = f.payload.length;
    this.recvWindow -= length;
    if (this.recvWindow < 0) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, 'connection window exceeded');
    // The connection's window is credited as data arrives; streams bound what is buffered.
    this.recvUncredited += length;
    if (this.recvUncredited >= this.options.connectionWindowBytes / 2) {
      this.out.write(windowUpdateFrame(0, this.recvUncredited));
      this.recvWindow += this.recvUncredited;
      this.recvUncredited = 0;
    }
    const data = unpad(f);
    const s = this.streams.get(f.streamId);
    if (s === undefined) {
      if (f.streamId > this.lastStreamId) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'DATA on an idle stream');
      return; // A stream we closed: its late data only counted against the connection.
    }
    if (s.remoteEnded) {
      this.resetStream(s, H2Error.STREAM_CLOSED);
      return;
    }
    s.recvWindow -= length;
    if (s.recvWindow < 0) {
      this.resetStream(s, H2Error.FLOW_CONTROL_ERROR);
      return;
    }
    // Padding is consumed on arrival.
    if (length > data.length) this.creditStream(s, length - data.length);
    if (data.length > 0) s.onData(data);
    if ((f.flags & Flag.END_STREAM) !== 0 && !s.closed) this.remoteEnd(s);
  }

  private onHeaders(f: Frame): void {
    if (f.streamId === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'HEADERS on stream 0');
    let payload = unpad(f);
    if ((f.flags & Flag.PRIORITY) !== 0) {
      if (payload.length < 5) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'HEADERS too short for its priority');
      payload = payload.subarray(5);
    }
    this.block = { streamId: f.streamId, endStream: (f.flags & Flag.END_STREAM) !== 0, parts: [payload], bytes: payload.length };
    this.checkBlockSize();
    if ((f.flags & Flag.END_HEADERS) !== 0) this.onHeaderBlock();
  }

  private onContinuation(f: Frame): void {
    const block = this.block;
    if (block === undefined || f.streamId !== block.streamId) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'unexpected CONTINUATION');
    block.parts.push(f.payload);
    block.bytes += f.payload.length;
    this.checkBlockSize();
    if ((f.flags & Flag.END_HEADERS) !== 0) this.onHeaderBlock();
  }

  private checkBlockSize(): void {
    if ((this.block?.bytes ?? 0) > this.options.headerBlockBytesMax) {
      throw new ConnectionError(H2Error.ENHANCE_YOUR_CALM, `header block above ${this.options.headerBlockBytesMax} bytes`);
    }
  }

  private onHeaderBlock(): void {
    const block = this.block as NonNullable<H2Connection['block']>;
    this.block = undefined;
    let fields: HeaderField[];
    try {
      // Always decoded, even for a refused stream: the decoder's table must follow every block.
      fields = this.decoder.decode(block.parts.length === 1 ? (block.parts[0] as Buffer) : Buffer.concat(block.parts));
    } catch (err) {
      if (err instanceof HpackError) throw new ConnectionError(H2Error.COMPRESSION_ERROR, err.message);
      throw err;
    }
    const id = block.streamId;
    const existing = this.streams.get(id);
    if (existing !== undefined) {
      // Trailers: they must end the stream.
      if (!block.endStream || existing.remoteEnded) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'HEADERS in the middle of a stream');
      this.remoteEnd(existing);
      return;
    }
    if (id % 2 === 0 || id <= this.lastStreamId) {
      if (id % 2 === 1 && id <= this.lastStreamId) return; // Trailers of a stream we already closed.
      throw new ConnectionError(H2Error.PROTOCOL_ERROR, `stream ${id} opened out of order`);
    }
    if (this.goingAway) {
      this.out.write(rstStreamFrame(id, H2Error.REFUSED_STREAM));
      return;
    }
    this.lastStreamId = id;
    const s = new H2Stream(this, id, fields, this.peerInitialWindow, this.options.streamWindowBytes);
    this.streams.set(id, s);
    this.options.onStream(s);
    if (block.endStream && !s.closed) this.remoteEnd(s);
  }

  private remoteEnd(s: H2Stream): void {
    s.remoteEnded = true;
    s.onEnd();
  }

  private onRstStream(f: Frame): void {
    if (f.streamId === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (f.payload.length !== 4) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'RST_STREAM length is not 4');
    const s = this.streams.get(f.streamId);
    if (s === undefined) {
      if (f.streamId > this.lastStreamId) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'RST_STREAM on an idle stream');
      return;
    }
    this.closeStream(s, true);
  }

  private onSettings(f: Frame): void {
    if (f.streamId !== 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if ((f.flags & Flag.ACK) !== 0) {
      if (f.payload.length !== 0) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      return;
    }
    for (const [id, value] of parseSettings(f.payload)) {
      switch (id) {
        case Setting.ENABLE_PUSH:
          if (value > 1) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'ENABLE_PUSH above 1');
          break;
        case Setting.INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW_SIZE) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, 'INITIAL_WINDOW_SIZE above 2^31-1');
          // §6.9.2: every stream's window moves by the difference.
          const delta = value - this.peerInitialWindow;
          this.peerInitialWindow = value;
          for (const s of this.streams.values()) {
            s.sendWindow += delta;
            if (s.sendWindow > MAX_WINDOW_SIZE) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, 'stream window above 2^31-1');
          }
          break;
        }
        case Setting.MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME_SIZE || value > MAX_FRAME_SIZE_LIMIT) throw new ConnectionError(H2Error.PROTOCOL_ERROR, `MAX_FRAME_SIZE ${value} out of bounds`);
          this.peerMaxFrameSize = value;
          break;
        default:
          // HEADER_TABLE_SIZE: our blocks never use the dynamic table. Others bound what the client receives or do not apply.
          break;
      }
    }
    this.out.write(encodeFrame(FrameType.SETTINGS, Flag.ACK, 0));
    for (const s of [...this.streams.values()]) if (s.pendingBytes > 0 || s.trailers !== undefined) this.flushStream(s);
  }

  private onWindowUpdate(f: Frame): void {
    const increment = windowIncrement(f.payload);
    if (f.streamId === 0) {
      if (increment === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.sendWindow += increment;
      if (this.sendWindow > MAX_WINDOW_SIZE) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, 'connection window above 2^31-1');
      for (const s of [...this.waiting]) {
        if (this.sendWindow <= 0 || this.out.congested) break;
        this.flushStream(s);
      }
      return;
    }
    const s = this.streams.get(f.streamId);
    if (s === undefined) {
      if (f.streamId > this.lastStreamId) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'WINDOW_UPDATE on an idle stream');
      return;
    }
    if (increment === 0) {
      this.resetStream(s, H2Error.PROTOCOL_ERROR);
      return;
    }
    s.sendWindow += increment;
    if (s.sendWindow > MAX_WINDOW_SIZE) {
      this.resetStream(s, H2Error.FLOW_CONTROL_ERROR);
      return;
    }
    this.flushStream(s);
  }

  /** @internal Sends a header block on `s` (HEADERS, then CONTINUATIONs above the client's frame size). */
  sendHeaders(s: H2Stream, block: Buffer, endStream: boolean): void {
    const max = this.peerMaxFrameSize;
    const endFlag = endStream ? Flag.END_STREAM : 0;
    if (block.length <= max) {
      this.out.write(encodeFrame(FrameType.HEADERS, endFlag | Flag.END_HEADERS, s.id, block));
      return;
    }
    for (let off = 0; off < block.length; off += max) {
      const last = off + max >= block.length;
      const type = off === 0 ? FrameType.HEADERS : FrameType.CONTINUATION;
      const flags = (off === 0 ? endFlag : 0) | (last ? Flag.END_HEADERS : 0);
      this.out.write(encodeFrame(type, flags, s.id, block.subarray(off, off + max)));
    }
  }

  /**
   * @internal Sends what the windows allow of `s`'s queued data, then its
   * trailers once nothing is queued. Every exit but the stream's end tells a
   * waiting writer when the stream can take more: a writer blocked at one
   * call may be freed by a later one for any reason (its window, the
   * connection's, the transport), so the check is on the state, not on what
   * changed.
   */
  flushStream(s: H2Stream): void {
    if (s.closed) return;
    while (s.pending.length > 0) {
      if (this.out.congested || this.sendWindow <= 0) {
        this.waiting.add(s);
        break;
      }
      if (s.sendWindow <= 0) {
        this.waiting.delete(s); // Its own WINDOW_UPDATE resumes it.
        break;
      }
      const chunk = s.pending[0] as Buffer;
      const n = Math.min(chunk.length, s.sendWindow, this.sendWindow, this.peerMaxFrameSize);
      this.out.write(frameHeader(n, FrameType.DATA, 0, s.id));
      this.out.write(n === chunk.length ? chunk : chunk.subarray(0, n));
      if (n === chunk.length) s.pending.shift();
      else s.pending[0] = chunk.subarray(n);
      s.pendingBytes -= n;
      s.sendWindow -= n;
      this.sendWindow -= n;
    }
    if (s.pending.length === 0) {
      this.waiting.delete(s);
      if (s.trailers !== undefined) {
        this.sendHeaders(s, s.trailers, true);
        // The answer is complete; a client still sending need send nothing more (as grpc-go's server does).
        if (!s.remoteEnded) this.out.write(rstStreamFrame(s.id, H2Error.NO_ERROR));
        this.closeStream(s, false);
        return;
      }
    }
    if (s.writable) s.onWritable();
  }

  /** @internal */
  creditStream(s: H2Stream, bytes: number): void {
    s.recvUncredited += bytes;
    if (s.recvUncredited >= this.options.streamWindowBytes / 2) {
      this.out.write(windowUpdateFrame(s.id, s.recvUncredited));
      s.recvWindow += s.recvUncredited;
      s.recvUncredited = 0;
    }
  }

  /** @internal */
  resetStream(s: H2Stream, code: number): void {
    this.out.write(rstStreamFrame(s.id, code));
    this.closeStream(s, true);
  }

  private closeStream(s: H2Stream, reset: boolean): void {
    if (s.closed) return;
    s.closed = true;
    this.streams.delete(s.id);
    this.waiting.delete(s);
    s.pending.length = 0;
    s.pendingBytes = 0;
    s.onClose(reset);
    this.endIfIdle();
  }
}

function ignore(): void {}

/** A DATA or HEADERS payload without its padding (§6.1). */
function unpad(f: Frame): Buffer {
  if ((f.flags & Flag.PADDED) === 0) return f.payload;
  const padLength = f.payload[0];
  if (padLength === undefined || padLength >= f.payload.length) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'padding exceeds the frame');
  return f.payload.subarray(1, f.payload.length - padLength);
}
