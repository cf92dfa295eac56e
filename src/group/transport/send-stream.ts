/**
 * The sending end of one peer's `Send` call: a TCP connection of its own
 * speaking HTTP/2 and gRPC directly (src/h2/client-connection.ts), instead
 * of through grpc-js' client and Node's HTTP/2 session: the cost per batch
 * is on the path of every raft append and acknowledgement
 * (docs/transport.md). Any gRPC server can receive it; the peer port's
 * routes it to its own (server.ts).
 *
 * The call is the connection's only stream; the socket, the connect
 * deadline and the keepalive pings are src/h2/client-socket.ts'.
 */
import type { ClientCall } from '../../h2/client-connection.js';
import { H2ClientSocket, splitAddress } from '../../h2/client-socket.js';

export { splitAddress };

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

/** One long-lived client-streaming call on its own connection. */
export class SendStream {
  private readonly socket: H2ClientSocket;
  private readonly call: ClientCall;
  private done = false;
  /** A write returned false; `onDrain` is owed once the socket and the windows take more. */
  private blocked = false;

  /**
   * @param call the method's path, and settings to send besides the client's
   *   own (the message stream marks its connection with OWN_SERVER_SETTING)
   */
  constructor(
    address: string,
    call: { readonly path: string; readonly settings?: ReadonlyArray<readonly [id: number, value: number]> },
    times: SendStreamTimes,
    private readonly handlers: SendStreamHandlers,
  ) {
    this.socket = new H2ClientSocket(address, call.settings === undefined ? {} : { settings: call.settings }, times, {
      onReady: () => {
        if (!this.done) this.handlers.onReady();
      },
      onDrain: () => this.maybeDrained(),
      onClose: (error) => this.finish(error),
    });
    this.call = this.socket.connection.openCall(
      { path: call.path },
      {
        // The server answers Send only with its trailers.
        onMessage: () => {},
        onWindowOpen: () => this.maybeDrained(),
        // When the whole connection went, its onClose follows with the cause (a socket error keeps its code).
        onEnd: (end) => {
          if (!this.socket.connection.isClosed) this.finish(new Error(end.reason));
        },
      },
    );
  }

  /**
   * Sends one message (an encoded batch). False when it is queued behind
   * the socket's buffer or the server's flow-control windows: wait for
   * `onDrain` before writing more (what is written meanwhile still goes, in order).
   */
  write(message: Uint8Array): boolean {
    if (this.done || !this.socket.isReady) return false;
    const sent = this.call.write(message);
    if (sent && !this.socket.writableNeedDrain) return true;
    this.blocked = true;
    return false;
  }

  /** Abandons the call: resets its stream and closes the connection; no `onEnd` follows. */
  cancel(): void {
    if (this.done) return;
    this.done = true;
    this.call.cancel();
    this.socket.close();
  }

  private maybeDrained(): void {
    if (!this.blocked || this.done || this.socket.writableNeedDrain || this.call.queuedBytes > 0) return;
    this.blocked = false;
    this.handlers.onDrain();
  }

  /** The call or its connection ended: the connection goes too, and the handler hears of it once. */
  private finish(error: Error): void {
    if (this.done) return;
    this.done = true;
    this.socket.close();
    this.handlers.onEnd(error);
  }
}
