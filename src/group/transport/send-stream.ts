/**
 * The sending end of one peer's `Send` call: a TCP connection of its own
 * speaking HTTP/2 and gRPC directly (src/h2/client-call.ts), instead of
 * through grpc-js' client and Node's HTTP/2 session: the cost per batch is
 * on the path of every raft append and acknowledgement (docs/transport.md).
 * Any gRPC server can receive it; the peer port's routes it to its own
 * (server.ts).
 *
 * The I/O edge around the pure call: the socket, the connect deadline and
 * the keepalive pings (a peer that vanished without closing TCP is found by
 * an unanswered ping, as grpc-js' keepalive did).
 */
import net from 'node:net';
import { H2ClientCall } from '../../h2/client-call.js';

/** What the stream reports; none of these runs inside `write` or `cancel`. */
export interface SendStreamHandlers {
  /** The server answered with its HTTP/2 settings: messages may be written. */
  onReady(): void;
  /** A write that returned false has drained: writing may go on. */
  onDrain(): void;
  /** The call is over (connect failure, server end, broken connection, keepalive timeout). Once; never after `cancel`. */
  onEnd(error: Error): void;
}

/** Deadlines of a send stream. */
export interface SendStreamTimes {
  readonly connectTimeoutMs: number;
  readonly keepaliveTimeMs: number;
  readonly keepaliveTimeoutMs: number;
}

/** Splits "host:port" (IPv6 hosts in brackets), as `checkAddress` admits it. */
export function splitAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  let host = address.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, port: Number(address.slice(colon + 1)) };
}

/** One long-lived client-streaming call on its own connection. */
export class SendStream {
  private readonly socket: net.Socket;
  private readonly call: H2ClientCall;
  private ready = false;
  private done = false;
  /** A write returned false; `onDrain` is owed once the socket and the windows take more. */
  private blocked = false;
  private connectTimer: NodeJS.Timeout | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;

  /**
   * @param call the method's path, and settings to send besides the client's
   *   own (the message stream marks its connection with RAFT_STREAM_SETTING)
   */
  constructor(
    address: string,
    call: { readonly path: string; readonly settings?: ReadonlyArray<readonly [id: number, value: number]> },
    private readonly times: SendStreamTimes,
    private readonly handlers: SendStreamHandlers,
  ) {
    const { host, port } = splitAddress(address);
    this.call = new H2ClientCall(
      { path: call.path, authority: address, ...(call.settings === undefined ? {} : { settings: call.settings }) },
      (bytes) => {
        if (!this.done) this.socket.write(bytes);
      },
      {
        onSettled: () => {
          this.ready = true;
          if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
          this.connectTimer = undefined;
          this.scheduleKeepalive();
          this.handlers.onReady();
        },
        onWindowOpen: () => this.maybeDrained(),
        onPingAck: () => {
          if (this.pingTimer !== undefined) clearTimeout(this.pingTimer);
          this.pingTimer = undefined;
          this.scheduleKeepalive();
        },
        onEnd: (end) => this.finish(new Error(end.reason)),
      },
    );
    this.socket = net.connect({ host, port, noDelay: true });
    this.connectTimer = setTimeout(() => this.finish(new Error(`no HTTP/2 settings from ${address} within ${times.connectTimeoutMs} ms`)), times.connectTimeoutMs);
    this.socket.on('connect', () => this.call.start());
    this.socket.on('data', (chunk: Buffer) => this.call.receive(chunk));
    this.socket.on('drain', () => this.maybeDrained());
    this.socket.on('error', (e) => this.finish(e));
    this.socket.on('close', () => this.finish(new Error(`connection to ${address} closed`)));
  }

  /**
   * Sends one message (an encoded batch). False when it is queued behind
   * the socket's buffer or the server's flow-control windows: wait for
   * `onDrain` before writing more (what is written meanwhile still goes, in order).
   */
  write(message: Uint8Array): boolean {
    if (this.done || !this.ready) return false;
    const sent = this.call.write(message);
    if (sent && !this.socket.writableNeedDrain) return true;
    this.blocked = true;
    return false;
  }

  /** Abandons the call: resets its stream and closes the connection; no `onEnd` follows. */
  cancel(): void {
    if (this.done) return;
    this.call.cancel();
    this.close();
    this.socket.end();
    this.socket.destroySoon();
  }

  private maybeDrained(): void {
    if (!this.blocked || this.done || this.socket.writableNeedDrain || this.call.queuedBytes > 0) return;
    this.blocked = false;
    this.handlers.onDrain();
  }

  private scheduleKeepalive(): void {
    if (this.done) return;
    if (this.keepaliveTimer !== undefined) clearTimeout(this.keepaliveTimer);
    this.keepaliveTimer = setTimeout(() => {
      this.keepaliveTimer = undefined;
      this.call.ping(Buffer.alloc(8));
      this.pingTimer = setTimeout(() => this.finish(new Error(`keepalive ping unanswered for ${this.times.keepaliveTimeoutMs} ms`)), this.times.keepaliveTimeoutMs);
    }, this.times.keepaliveTimeMs);
  }

  private finish(error: Error): void {
    if (this.done) return;
    this.close();
    this.socket.destroy();
    this.handlers.onEnd(error);
  }

  private close(): void {
    this.done = true;
    for (const timer of [this.connectTimer, this.keepaliveTimer, this.pingTimer]) {
      if (timer !== undefined) clearTimeout(timer);
    }
    this.connectTimer = this.keepaliveTimer = this.pingTimer = undefined;
  }
}
