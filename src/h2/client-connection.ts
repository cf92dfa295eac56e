/**
 * The client end of one HTTP/2 connection carrying gRPC calls (RFC 9113;
 * grpc/doc/PROTOCOL-HTTP2.md): the connection preface and settings, one
 * stream per call, each request message as DATA within the server's
 * flow-control windows, response messages cut from DATA with our receive
 * windows replenished as they are read, and what the server's frames mean
 * for each call and for the connection. Pure: bytes to send go to `output`,
 * bytes received come in through `receive`; no sockets, no timers.
 *
 * Two kinds of caller: a long-lived stream that is the connection's only
 * call (the raft transport's `Send`), and many short calls multiplexed on
 * one connection (the benchmark's generator). Calls beyond the server's
 * SETTINGS_MAX_CONCURRENT_STREAMS wait, in order, for a stream to close.
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
  windowUpdateFrame,
} from './frames.js';
import { GrpcStatusError, MESSAGE_PREFIX_BYTES, MessageReader } from './grpc-wire.js';
import { HeaderDecoder, HpackError, encodeLiteralFields } from './hpack.js';

/** The largest header block (HEADERS plus CONTINUATIONs) taken from the server. */
const HEADER_BLOCK_BYTES_MAX = 64 * 1024;
/** The highest stream id a client may open (odd, below 2^31). */
const LAST_STREAM_ID = 0x7fff_ffff;
/** gRPC status CANCELLED, given to a message the reader refuses as the stream is reset. */
const GRPC_CANCELLED = 1;

/** How a call ended. */
export interface CallEnd {
  /** gRPC status code from the server's trailers (or the reader's refusal); undefined when the call ended without one. */
  readonly grpcStatus: number | undefined;
  /** The status message (`grpc-message`, percent-decoded); empty when none. */
  readonly details: string;
  /** What happened, for logs and errors. */
  readonly reason: string;
}

/** What one call reports; each callback runs inside `receive` (or `open` for a call that cannot start). */
export interface CallEvents {
  /** One response message, prefix removed (inflated when the server compressed it). */
  onMessage(body: Buffer): void;
  /** The call's DATA held back by flow control has all been sent. */
  onWindowOpen(): void;
  /** The call is over; called once, and nothing is sent for it after. */
  onEnd(end: CallEnd): void;
}

/** What the connection reports; each callback runs inside `receive` or `close`. */
export interface ConnectionEvents {
  /** The server's first SETTINGS arrived: an HTTP/2 server answers. */
  onSettled(): void;
  /** The server acknowledged one of our PINGs. */
  onPingAck(): void;
  /** The connection is over (GOAWAY with no call left, protocol error, `close`); every call has had its `onEnd` first. Once. */
  onClose(reason: string): void;
}

/** The connection's fixed parameters. */
export interface ClientConnectionOptions {
  /** `host:port` of the server, as HTTP/2's `:authority`. */
  readonly authority: string;
  /** Settings sent besides ours (e.g. a private one that routes the connection at the server). */
  readonly settings?: ReadonlyArray<readonly [id: number, value: number]>;
  /** Our receive window, per stream and for the connection (at least the protocol's 65,535). */
  readonly receiveWindowBytes?: number;
  /** The largest response message taken; a larger one ends its call with RESOURCE_EXHAUSTED. */
  readonly maxMessageBytes?: number;
}

/** A call's request line and metadata. */
export interface CallRequest {
  /** `/package.Service/Method`. */
  readonly path: string;
  /** Metadata as header fields (lower-case names, latin1 values). */
  readonly metadata?: ReadonlyArray<readonly [name: string, value: string]>;
}

/** One call: its stream and what is queued for it. */
export class ClientCall {
  /** Stream id; 0 while the call waits for a stream slot. */
  id = 0;
  /** Our send window on this stream (§6.9.2: may go negative after a settings change). */
  sendWindow = 0;
  /** What the server may still send on this stream, and what we have read and not yet returned to it. */
  receiveWindow = 0;
  receivedUnacknowledged = 0;
  /** Encoded messages not yet sent, oldest first; the first may be partly sent. */
  pending: Buffer[] = [];
  pendingBytes = 0;
  /** END_STREAM is owed once `pending` has gone. */
  halfClosePending = false;
  halfClosed = false;
  /** A `write` returned false: `onWindowOpen` is owed once the queue has gone. */
  windowOpenOwed = false;
  responseHeadersSeen = false;
  ended = false;

  constructor(
    private readonly connection: H2ClientConnection,
    readonly request: CallRequest,
    readonly events: CallEvents,
    readonly reader: MessageReader,
  ) {}

  /** Bytes of messages waiting for a stream or the server's flow-control windows. */
  get queuedBytes(): number {
    return this.pendingBytes;
  }

  /**
   * Sends one message, or queues what the windows do not admit now; `last`
   * half-closes the call after it. True when all of it went out; false when
   * some waits (`onWindowOpen` follows once the queue has drained).
   */
  write(body: Uint8Array, last = false): boolean {
    return this.connection.writeMessage(this, body, last);
  }

  /** Half-closes the call: no more messages; responses go on until the server ends it. */
  end(): void {
    this.connection.halfClose(this);
  }

  /** Abandons the call: resets its stream; no `onEnd` follows. */
  cancel(): void {
    this.connection.cancelCall(this);
  }
}

/** The client end of one HTTP/2 connection carrying gRPC calls. */
export class H2ClientConnection {
  private readonly reader = new FrameReader(DEFAULT_MAX_FRAME_SIZE);
  private readonly decoder = new HeaderDecoder();
  private readonly receiveWindowBytes: number;
  private readonly maxMessageBytes: number;
  /** Request header blocks by path, for calls without metadata (most). */
  private readonly headerBlocks = new Map<string, Buffer>();
  /** Calls with a stream, by stream id. */
  private readonly open = new Map<number, ClientCall>();
  /** Calls waiting for a stream slot, oldest first. */
  private waiting: ClientCall[] = [];
  /** Calls with DATA held back by flow control, in the order they blocked. */
  private readonly blocked = new Set<ClientCall>();
  private nextStreamId = 1;
  /** Our send window on the connection. */
  private connectionWindow = DEFAULT_WINDOW_SIZE;
  private connectionReceiveWindow: number;
  private connectionReceivedUnacknowledged = 0;
  /** The server's settings that bound what we send. */
  private initialWindow = DEFAULT_WINDOW_SIZE;
  private maxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  private maxConcurrentStreams = Infinity;
  /** A header block in progress: HEADERS without END_HEADERS, then CONTINUATIONs. */
  private block: { streamId: number; parts: Buffer[]; bytes: number; endStream: boolean } | undefined;
  /** The highest stream the server will still process after its GOAWAY; undefined before one. */
  private goAwayLastStream: number | undefined;
  private goAwayReason = '';
  private settled = false;
  private started = false;
  private closed = false;

  constructor(
    private readonly options: ClientConnectionOptions,
    private readonly output: (bytes: Buffer) => void,
    private readonly events: ConnectionEvents,
  ) {
    this.receiveWindowBytes = Math.min(MAX_WINDOW_SIZE, Math.max(DEFAULT_WINDOW_SIZE, options.receiveWindowBytes ?? DEFAULT_WINDOW_SIZE));
    this.maxMessageBytes = options.maxMessageBytes ?? 4 * 1024 * 1024;
    this.connectionReceiveWindow = this.receiveWindowBytes;
  }

  /** The connection is over: no call can be opened on it. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** The server sent GOAWAY: calls already open may finish, new ones need another connection. */
  get isDraining(): boolean {
    return this.goAwayLastStream !== undefined;
  }

  /** Calls open or waiting for a stream. */
  get callCount(): number {
    return this.open.size + this.waiting.length;
  }

  /**
   * Sends the connection preface and our settings. Calls may be opened at
   * once: the server's settings only ever narrow what we may send, and the
   * windows start at the protocol's defaults.
   */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    const frames = [
      CLIENT_PREFACE,
      // The server pushes nothing and opens no streams to us.
      settingsFrame([
        [Setting.ENABLE_PUSH, 0],
        [Setting.MAX_CONCURRENT_STREAMS, 0],
        ...(this.receiveWindowBytes === DEFAULT_WINDOW_SIZE ? [] : [[Setting.INITIAL_WINDOW_SIZE, this.receiveWindowBytes] as const]),
        ...(this.options.settings ?? []),
      ]),
    ];
    if (this.receiveWindowBytes > DEFAULT_WINDOW_SIZE) frames.push(windowUpdateFrame(0, this.receiveWindowBytes - DEFAULT_WINDOW_SIZE));
    this.output(Buffer.concat(frames));
    this.startWaiting();
  }

  /**
   * Opens a call. With `message`, it is sent as the call's only message and
   * the call half-closes (a unary or server-streaming request), in the same
   * write as its headers when the windows admit it. A call opened on a
   * closed or draining connection ends at once (its `onEnd` runs inside
   * `open`).
   */
  openCall(request: CallRequest, events: CallEvents, message?: Uint8Array): ClientCall {
    const call = new ClientCall(this, request, events, new MessageReader(this.maxMessageBytes, undefined));
    if (message !== undefined) {
      this.queueMessage(call, message);
      call.halfClosePending = true;
    }
    if (this.closed || this.goAwayLastStream !== undefined) {
      this.endCall(call, { grpcStatus: undefined, details: '', reason: this.closed ? 'connection closed' : this.goAwayReason });
      return call;
    }
    this.waiting.push(call);
    this.startWaiting();
    return call;
  }

  /** Sends a PING carrying `payload` (8 bytes). */
  ping(payload: Buffer): void {
    if (this.closed || !this.started) return;
    this.output(encodeFrame(FrameType.PING, 0, 0, payload));
  }

  /**
   * Ends the connection from our side (the socket closed, or the owner gives
   * up): every call ends with `reason`, then `onClose`. With `goAway`, a
   * GOAWAY (NO_ERROR) is sent first.
   */
  close(reason: string, goAway = false): void {
    if (this.closed) return;
    if (goAway && this.started) this.output(goAwayFrame(0, H2Error.NO_ERROR));
    this.shutDown(reason);
  }

  /** Bytes read from the connection, in order. */
  receive(chunk: Buffer): void {
    if (this.closed) return;
    try {
      for (const frame of this.reader.push(chunk)) {
        this.onFrame(frame);
        if (this.closed) return;
      }
    } catch (e) {
      if (e instanceof ConnectionError) this.failConnection(e.code, e.message);
      else if (e instanceof HpackError) this.failConnection(H2Error.COMPRESSION_ERROR, e.message);
      else throw e;
    }
  }

  /** @internal ClientCall.write */
  writeMessage(call: ClientCall, body: Uint8Array, last: boolean): boolean {
    if (call.ended || call.halfClosed || call.halfClosePending) return false;
    if (call.id !== 0 && call.pendingBytes === 0) {
      const length = MESSAGE_PREFIX_BYTES + body.length;
      if (length <= this.sendable(call)) {
        // The common case: one frame, one buffer (frame header, message prefix, body).
        this.output(this.messageFrame(call, body, last));
        if (last) this.afterHalfClose(call);
        return true;
      }
    }
    this.queueMessage(call, body);
    if (last) call.halfClosePending = true;
    if (call.id !== 0) this.sendPending(call);
    if (call.pendingBytes === 0) return true;
    call.windowOpenOwed = true;
    return false;
  }

  /** @internal ClientCall.end */
  halfClose(call: ClientCall): void {
    if (call.ended || call.halfClosed || call.halfClosePending) return;
    call.halfClosePending = true;
    if (call.id !== 0 && call.pendingBytes === 0) this.sendHalfClose(call);
  }

  /** @internal ClientCall.cancel */
  cancelCall(call: ClientCall): void {
    if (call.ended) return;
    const hadStream = call.id !== 0;
    this.forget(call);
    if (hadStream && !this.closed) this.output(rstStreamFrame(call.id, H2Error.CANCEL));
    this.startWaiting();
    this.closeIfDrained();
  }

  /** Opens streams for waiting calls while the server's limit and the stream ids allow. */
  private startWaiting(): void {
    if (!this.started || this.closed) return;
    while (this.waiting.length > 0 && this.open.size < this.maxConcurrentStreams) {
      const call = this.waiting.shift() as ClientCall;
      if (this.nextStreamId > LAST_STREAM_ID) {
        this.endCall(call, { grpcStatus: undefined, details: '', reason: 'stream ids exhausted on this connection' });
        continue;
      }
      call.id = this.nextStreamId;
      this.nextStreamId += 2;
      call.sendWindow = this.initialWindow;
      call.receiveWindow = this.receiveWindowBytes;
      this.open.set(call.id, call);
      const block = this.headerBlock(call.request);
      if (block.length > this.maxFrameSize) {
        // Request metadata this large is a caller's mistake; CONTINUATION is not worth carrying for it.
        this.open.delete(call.id);
        this.endCall(call, { grpcStatus: undefined, details: '', reason: `request headers of ${block.length} bytes exceed one frame` });
        continue;
      }
      const headers = encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, call.id, block);
      const length = call.pending.length === 1 ? (call.pending[0] as Buffer).length : -1;
      if (length >= 0 && length <= this.sendable(call)) {
        // A single queued message that fits goes with the headers, in one write.
        const message = call.pending[0] as Buffer;
        call.pending = [];
        call.pendingBytes = 0;
        const last = call.halfClosePending;
        this.output(Buffer.concat([headers, this.dataFrame(call, message, last)]));
        if (last) this.afterHalfClose(call);
      } else {
        this.output(headers);
        this.sendPending(call);
      }
      // Writes made while the call waited for its stream were refused (queued): now they are out.
      this.maybeWindowOpen(call);
    }
  }

  private headerBlock(request: CallRequest): Buffer {
    if (request.metadata === undefined || request.metadata.length === 0) {
      let block = this.headerBlocks.get(request.path);
      if (block === undefined) {
        block = encodeLiteralFields(this.requestFields(request.path));
        this.headerBlocks.set(request.path, block);
      }
      return block;
    }
    return encodeLiteralFields([...this.requestFields(request.path), ...request.metadata]);
  }

  private requestFields(path: string): Array<readonly [string, string]> {
    return [
      [':method', 'POST'],
      [':scheme', 'http'],
      [':path', path],
      [':authority', this.options.authority],
      ['content-type', 'application/grpc'],
      ['te', 'trailers'],
    ];
  }

  private queueMessage(call: ClientCall, body: Uint8Array): void {
    const message = Buffer.allocUnsafe(MESSAGE_PREFIX_BYTES + body.length);
    message[0] = 0;
    message.writeUInt32BE(body.length, 1);
    message.set(body, MESSAGE_PREFIX_BYTES);
    call.pending.push(message);
    call.pendingBytes += message.length;
  }

  /** One DATA frame carrying `body` as one message, charged to both windows. */
  private messageFrame(call: ClientCall, body: Uint8Array, last: boolean): Buffer {
    const length = MESSAGE_PREFIX_BYTES + body.length;
    const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length);
    frame[0] = length >>> 16;
    frame[1] = (length >>> 8) & 0xff;
    frame[2] = length & 0xff;
    frame[3] = FrameType.DATA;
    frame[4] = last ? Flag.END_STREAM : 0;
    frame.writeUInt32BE(call.id, 5);
    frame[FRAME_HEADER_BYTES] = 0;
    frame.writeUInt32BE(body.length, FRAME_HEADER_BYTES + 1);
    frame.set(body, FRAME_HEADER_BYTES + MESSAGE_PREFIX_BYTES);
    this.connectionWindow -= length;
    call.sendWindow -= length;
    return frame;
  }

  /** One DATA frame carrying `payload` (already prefixed), charged to both windows. */
  private dataFrame(call: ClientCall, payload: Buffer, last: boolean): Buffer {
    this.connectionWindow -= payload.length;
    call.sendWindow -= payload.length;
    return encodeFrame(FrameType.DATA, last ? Flag.END_STREAM : 0, call.id, payload);
  }

  /** What one DATA frame of `call` may carry now. */
  private sendable(call: ClientCall): number {
    return Math.max(0, Math.min(this.connectionWindow, call.sendWindow, this.maxFrameSize));
  }

  /** Sends `call`'s queued bytes while the windows admit them; a message may span several frames. */
  private sendPending(call: ClientCall): void {
    while (call.pendingBytes > 0) {
      const room = this.sendable(call);
      if (room === 0) {
        this.blocked.add(call);
        return;
      }
      const parts: Buffer[] = [];
      let size = 0;
      while (size < room && call.pending.length > 0) {
        const head = call.pending[0] as Buffer;
        const take = Math.min(head.length, room - size);
        parts.push(take === head.length ? head : head.subarray(0, take));
        if (take === head.length) call.pending.shift();
        else call.pending[0] = head.subarray(take);
        size += take;
      }
      call.pendingBytes -= size;
      const last = call.pendingBytes === 0 && call.halfClosePending;
      this.output(this.dataFrame(call, parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, size), last));
      if (last) this.afterHalfClose(call);
    }
    this.blocked.delete(call);
    if (call.halfClosePending) this.sendHalfClose(call);
  }

  private sendHalfClose(call: ClientCall): void {
    this.output(encodeFrame(FrameType.DATA, Flag.END_STREAM, call.id));
    this.afterHalfClose(call);
  }

  private afterHalfClose(call: ClientCall): void {
    call.halfClosePending = false;
    call.halfClosed = true;
  }

  private onFrame(f: Frame): void {
    if (this.block !== undefined && f.type !== FrameType.CONTINUATION) {
      throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'header block interrupted');
    }
    switch (f.type) {
      case FrameType.DATA:
        this.onData(f);
        return;
      case FrameType.HEADERS:
        this.onHeaders(f);
        return;
      case FrameType.CONTINUATION: {
        const block = this.block;
        if (block === undefined || f.streamId !== block.streamId) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'unexpected CONTINUATION');
        this.addToBlock(block, f.payload);
        if ((f.flags & Flag.END_HEADERS) !== 0) this.finishBlock(block);
        return;
      }
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
      case FrameType.RST_STREAM: {
        if (f.streamId === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
        const call = this.open.get(f.streamId);
        if (call !== undefined) {
          const code = f.payload.length === 4 ? f.payload.readUInt32BE(0) : H2Error.PROTOCOL_ERROR;
          this.endCall(call, { grpcStatus: undefined, details: '', reason: `server reset the stream (HTTP/2 error ${code})` });
          this.startWaiting();
        }
        return;
      }
      case FrameType.GOAWAY:
        this.onGoAway(f);
        return;
      case FrameType.PUSH_PROMISE:
        throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'PUSH_PROMISE with push disabled');
      default:
        return; // PRIORITY and unknown types are ignored (§5.5)
    }
  }

  private onData(f: Frame): void {
    if (f.streamId === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'DATA on stream 0');
    // Flow control counts the whole payload, padding included (§6.9.1).
    this.connectionReceiveWindow -= f.payload.length;
    if (this.connectionReceiveWindow < 0) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, 'DATA beyond the connection window');
    this.connectionReceivedUnacknowledged += f.payload.length;
    if (this.connectionReceivedUnacknowledged >= this.receiveWindowBytes / 2) {
      this.output(windowUpdateFrame(0, this.connectionReceivedUnacknowledged));
      this.connectionReceiveWindow += this.connectionReceivedUnacknowledged;
      this.connectionReceivedUnacknowledged = 0;
    }
    const call = this.open.get(f.streamId);
    if (call === undefined) {
      // A stream we reset or that ended may still have frames in flight (§5.1); one never opened may not.
      if (f.streamId >= this.nextStreamId) throw new ConnectionError(H2Error.PROTOCOL_ERROR, `DATA on idle stream ${f.streamId}`);
      return;
    }
    if (!call.responseHeadersSeen) throw new ConnectionError(H2Error.PROTOCOL_ERROR, `DATA before headers on stream ${f.streamId}`);
    call.receiveWindow -= f.payload.length;
    if (call.receiveWindow < 0) {
      this.resetCall(call, H2Error.FLOW_CONTROL_ERROR, 'server sent DATA beyond the stream window');
      return;
    }
    const endStream = (f.flags & Flag.END_STREAM) !== 0;
    let payload = f.payload;
    if ((f.flags & Flag.PADDED) !== 0) {
      const padLength = payload[0] ?? 0;
      if (payload.length < 1 + padLength) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'padding exceeds the frame');
      payload = payload.subarray(1, payload.length - padLength);
    }
    if (payload.length > 0) {
      let messages: Buffer[];
      try {
        messages = call.reader.push(payload);
      } catch (e) {
        if (!(e instanceof GrpcStatusError)) throw e;
        this.resetCall(call, H2Error.CANCEL, e.message, e.code);
        return;
      }
      for (const m of messages) {
        call.events.onMessage(m);
        if (call.ended || this.closed) return;
      }
    }
    if (endStream) {
      this.endCall(call, { grpcStatus: undefined, details: '', reason: 'server ended the stream without trailers' });
      this.startWaiting();
      return;
    }
    call.receivedUnacknowledged += f.payload.length;
    if (call.receivedUnacknowledged >= this.receiveWindowBytes / 2) {
      this.output(windowUpdateFrame(call.id, call.receivedUnacknowledged));
      call.receiveWindow += call.receivedUnacknowledged;
      call.receivedUnacknowledged = 0;
    }
  }

  private onHeaders(f: Frame): void {
    if (f.streamId === 0 || f.streamId % 2 === 0 || f.streamId >= this.nextStreamId) {
      throw new ConnectionError(H2Error.PROTOCOL_ERROR, `HEADERS on stream ${f.streamId}`);
    }
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
    const block = { streamId: f.streamId, parts: [] as Buffer[], bytes: 0, endStream: (f.flags & Flag.END_STREAM) !== 0 };
    this.addToBlock(block, payload);
    if ((f.flags & Flag.END_HEADERS) !== 0) this.finishBlock(block);
    else this.block = block;
  }

  private addToBlock(block: { parts: Buffer[]; bytes: number }, payload: Buffer): void {
    block.parts.push(payload);
    block.bytes += payload.length;
    if (block.bytes > HEADER_BLOCK_BYTES_MAX) throw new ConnectionError(H2Error.ENHANCE_YOUR_CALM, `header block above ${HEADER_BLOCK_BYTES_MAX} bytes`);
  }

  /** A complete header block: a call's response headers, or trailers that end it. */
  private finishBlock(block: { streamId: number; parts: Buffer[]; bytes: number; endStream: boolean }): void {
    this.block = undefined;
    // Always decoded, even for a call already gone: the decoder's table must follow every block the server encodes.
    const fields = this.decoder.decode(block.parts.length === 1 ? (block.parts[0] as Buffer) : Buffer.concat(block.parts, block.bytes));
    const call = this.open.get(block.streamId);
    if (call === undefined) return;
    const first = !call.responseHeadersSeen;
    call.responseHeadersSeen = true;
    if (!block.endStream) {
      if (!first) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'trailers without END_STREAM');
      return;
    }
    let status: string | undefined;
    let httpStatus: string | undefined;
    let rawMessage = '';
    for (const h of fields) {
      if (h.name === 'grpc-status') status = h.value;
      else if (h.name === ':status') httpStatus = h.value;
      else if (h.name === 'grpc-message') rawMessage = h.value;
    }
    const grpcStatus = status === undefined || !/^\d+$/.test(status) ? undefined : Number(status);
    const details = decodeGrpcMessage(rawMessage);
    const reason =
      grpcStatus !== undefined
        ? `call ended with gRPC status ${grpcStatus}${details === '' ? '' : `: ${details}`}`
        : `call ended without a gRPC status${httpStatus === undefined ? '' : ` (HTTP ${httpStatus})`}`;
    this.endCall(call, { grpcStatus, details, reason });
    this.startWaiting();
  }

  private onSettings(f: Frame): void {
    if (f.streamId !== 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if ((f.flags & Flag.ACK) !== 0) return;
    for (const [id, value] of parseSettings(f.payload)) {
      if (id === Setting.INITIAL_WINDOW_SIZE) {
        if (value > MAX_WINDOW_SIZE) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, `initial window ${value} too large`);
        const delta = value - this.initialWindow;
        this.initialWindow = value;
        for (const call of this.open.values()) {
          call.sendWindow += delta;
          if (call.sendWindow > MAX_WINDOW_SIZE) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, 'stream window above 2^31-1');
        }
      } else if (id === Setting.MAX_FRAME_SIZE) {
        if (value < DEFAULT_MAX_FRAME_SIZE || value > MAX_FRAME_SIZE_LIMIT) {
          throw new ConnectionError(H2Error.PROTOCOL_ERROR, `max frame size ${value} out of range`);
        }
        this.maxFrameSize = value;
      } else if (id === Setting.MAX_CONCURRENT_STREAMS) {
        this.maxConcurrentStreams = value;
      }
    }
    this.output(encodeFrame(FrameType.SETTINGS, Flag.ACK, 0));
    if (!this.settled) {
      this.settled = true;
      this.events.onSettled();
      if (this.closed) return;
    }
    this.afterWindowChange();
    this.startWaiting();
  }

  private onWindowUpdate(f: Frame): void {
    const increment = windowIncrement(f.payload);
    if (f.streamId === 0) {
      if (increment === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.connectionWindow += increment;
      if (this.connectionWindow > MAX_WINDOW_SIZE) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, 'connection window above 2^31-1');
    } else {
      const call = this.open.get(f.streamId);
      if (call === undefined) return;
      if (increment === 0) {
        this.resetCall(call, H2Error.PROTOCOL_ERROR, 'stream WINDOW_UPDATE of 0');
        return;
      }
      call.sendWindow += increment;
      if (call.sendWindow > MAX_WINDOW_SIZE) {
        this.resetCall(call, H2Error.FLOW_CONTROL_ERROR, 'stream window above 2^31-1');
        return;
      }
    }
    this.afterWindowChange();
  }

  /** Sends what the windows now admit, oldest blocked call first. */
  private afterWindowChange(): void {
    // Per WINDOW_UPDATE the server returns: usually nothing waits.
    if (this.blocked.size === 0) return;
    for (const call of [...this.blocked]) {
      if (this.connectionWindow <= 0) return;
      this.sendPending(call);
      this.maybeWindowOpen(call);
      if (this.closed) return;
    }
  }

  private maybeWindowOpen(call: ClientCall): void {
    if (!call.windowOpenOwed || call.pendingBytes > 0 || call.ended) return;
    call.windowOpenOwed = false;
    call.events.onWindowOpen();
  }

  private onGoAway(f: Frame): void {
    if (f.streamId !== 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'GOAWAY on a stream');
    if (f.payload.length < 8) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'short GOAWAY');
    const lastStream = f.payload.readUInt32BE(0) & 0x7fff_ffff;
    const code = f.payload.readUInt32BE(4);
    const debug = f.payload.subarray(8).toString('utf8');
    this.goAwayLastStream = Math.min(lastStream, this.goAwayLastStream ?? lastStream);
    this.goAwayReason = `server went away (HTTP/2 error ${code}${debug === '' ? '' : `: ${debug}`})`;
    // Streams above the last one were never processed; those at or below it may still finish (§6.8).
    for (const call of [...this.open.values(), ...this.waiting]) {
      if (call.id === 0 || call.id > this.goAwayLastStream) this.endCall(call, { grpcStatus: undefined, details: '', reason: this.goAwayReason });
    }
    this.waiting = [];
    if (this.open.size === 0) this.shutDown(this.goAwayReason);
  }

  /** A stream error (§5.4.2): RST_STREAM, and the call ends with `message` (and the reader's gRPC status, when it refused a message). */
  private resetCall(call: ClientCall, code: number, message: string, grpcStatus: number | undefined = code === H2Error.CANCEL ? GRPC_CANCELLED : undefined): void {
    this.output(rstStreamFrame(call.id, code));
    this.endCall(call, { grpcStatus, details: message, reason: message });
    this.startWaiting();
  }

  /** A protocol violation by the server: GOAWAY, then every call's end. */
  private failConnection(code: number, message: string): void {
    if (this.closed) return;
    this.output(goAwayFrame(0, code, message));
    this.shutDown(`HTTP/2 protocol error from the server: ${message}`);
  }

  private shutDown(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    const calls = [...this.open.values(), ...this.waiting];
    this.waiting = [];
    for (const call of calls) this.endCall(call, { grpcStatus: undefined, details: '', reason });
    this.events.onClose(reason);
  }

  /** Drops the call's stream and queue without telling it. */
  private forget(call: ClientCall): void {
    call.ended = true;
    call.pending = [];
    call.pendingBytes = 0;
    this.blocked.delete(call);
    if (call.id !== 0) this.open.delete(call.id);
    else this.waiting = this.waiting.filter((c) => c !== call);
  }

  private endCall(call: ClientCall, end: CallEnd): void {
    if (call.ended) return;
    this.forget(call);
    call.events.onEnd(end);
    this.closeIfDrained();
  }

  /** A draining connection closes with its last call. */
  private closeIfDrained(): void {
    if (this.goAwayLastStream !== undefined && !this.closed && this.open.size === 0 && this.waiting.length === 0) this.shutDown(this.goAwayReason);
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
