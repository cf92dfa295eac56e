/**
 * The I/O edge of a client HTTP/2 connection (client-connection.ts): the
 * TCP socket, the connect deadline (the server's first SETTINGS must arrive
 * within it) and optional keepalive pings (a server that vanished without
 * closing TCP is found by an unanswered ping, as grpc-js' keepalive does).
 */
import net from 'node:net';
import { type ClientConnectionOptions, H2ClientConnection } from './client-connection.js';

/** Deadlines of a client socket; without `keepaliveTimeMs` no pings are sent. */
export interface ClientSocketTimes {
  readonly connectTimeoutMs: number;
  readonly keepaliveTimeMs?: number;
  readonly keepaliveTimeoutMs?: number;
}

/** What the socket reports; none of these runs inside a call's `write` or `cancel`, or `close`. */
export interface ClientSocketHandlers {
  /** The server answered with its HTTP/2 settings. */
  onReady(): void;
  /** The socket's write buffer drained after `writableNeedDrain` was true. */
  onDrain(): void;
  /** The connection is over (connect failure, server close, protocol error, keepalive timeout); its calls have ended first. Once; never after `close`. */
  onClose(error: Error): void;
}

/** Splits "host:port" (IPv6 hosts in brackets). */
export function splitAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  let host = address.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, port: Number(address.slice(colon + 1)) };
}

/** One client HTTP/2 connection over TCP. */
export class H2ClientSocket {
  /** Open calls on it (`openCall`); they start once the socket connects. */
  readonly connection: H2ClientConnection;
  private readonly socket: net.Socket;
  private done = false;
  private ready = false;
  /** The socket's own error, reported rather than the connection's summary of it. */
  private failure: Error | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly address: string,
    options: Omit<ClientConnectionOptions, 'authority'>,
    private readonly times: ClientSocketTimes,
    private readonly handlers: ClientSocketHandlers,
  ) {
    const { host, port } = splitAddress(address);
    this.connection = new H2ClientConnection(
      { ...options, authority: address },
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
        onPingAck: () => {
          if (this.pingTimer !== undefined) clearTimeout(this.pingTimer);
          this.pingTimer = undefined;
          this.scheduleKeepalive();
        },
        onClose: (reason) => this.finish(this.failure ?? new Error(reason)),
      },
    );
    this.socket = net.connect({ host, port, noDelay: true });
    this.connectTimer = setTimeout(() => this.fail(new Error(`no HTTP/2 settings from ${address} within ${times.connectTimeoutMs} ms`)), times.connectTimeoutMs);
    this.socket.on('connect', () => this.connection.start());
    this.socket.on('data', (chunk: Buffer) => this.connection.receive(chunk));
    this.socket.on('drain', () => {
      if (!this.done) this.handlers.onDrain();
    });
    this.socket.on('error', (e) => this.fail(e));
    this.socket.on('close', () => this.fail(new Error(`connection to ${address} closed`)));
  }

  /** The server's settings arrived and the connection is still up. */
  get isReady(): boolean {
    return this.ready && !this.done;
  }

  /** The connection is over. */
  get isClosed(): boolean {
    return this.done;
  }

  /** The socket holds more unsent bytes than its high-water mark: wait for `onDrain`. */
  get writableNeedDrain(): boolean {
    return this.socket.writableNeedDrain;
  }

  /** Runs `callback` when the socket's buffer next drains (not if the connection ends first). */
  onceDrained(callback: () => void): void {
    this.socket.once('drain', () => {
      if (!this.done) callback();
    });
  }

  /** Closes the connection from our side: open calls end with "closed", no `onClose` follows. */
  close(): void {
    if (this.done) return;
    this.stopTimers();
    this.done = true;
    this.connection.close('connection closed by the client');
    this.socket.end();
    this.socket.destroySoon();
  }

  /** The socket failed or closed: the connection's calls end, then `onClose`. */
  private fail(error: Error): void {
    if (this.done) return;
    this.failure = error;
    this.connection.close(error.message);
    this.finish(error);
  }

  private finish(error: Error): void {
    if (this.done) return;
    this.stopTimers();
    this.done = true;
    this.socket.destroy();
    this.handlers.onClose(error);
  }

  private scheduleKeepalive(): void {
    const interval = this.times.keepaliveTimeMs;
    if (this.done || interval === undefined) return;
    if (this.keepaliveTimer !== undefined) clearTimeout(this.keepaliveTimer);
    this.keepaliveTimer = setTimeout(() => {
      this.keepaliveTimer = undefined;
      this.connection.ping(Buffer.alloc(8));
      const timeout = this.times.keepaliveTimeoutMs ?? interval;
      this.pingTimer = setTimeout(() => this.fail(new Error(`keepalive ping unanswered for ${timeout} ms`)), timeout);
    }, interval);
  }

  private stopTimers(): void {
    for (const timer of [this.connectTimer, this.keepaliveTimer, this.pingTimer]) {
      if (timer !== undefined) clearTimeout(timer);
    }
    this.connectTimer = this.keepaliveTimer = this.pingTimer = undefined;
  }
}
