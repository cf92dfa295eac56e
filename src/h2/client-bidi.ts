/**
 * A bidirectional gRPC call over the project's own HTTP/2 client
 * (client-connection.ts, client-socket.ts) with grpc-js' stream surface:
 * `write(message, callback)`, 'data' per response, 'end' when the server
 * ends the call with OK, 'error' (a {@link GrpcCallError}) otherwise,
 * including CANCELLED after `cancel`. Used where a long-lived stream's cost
 * per message matters: the gateway's forwarding stream and the benchmark's
 * Watch and LeaseKeepAlive streams.
 */
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { CallEnd, ClientCall } from './client-connection.js';
import type { H2ClientSocket } from './client-socket.js';

/** A failed call, worded as grpc-js words it (`<code> <NAME>: <details>`), with its gRPC status code. */
export class GrpcCallError extends Error {
  override readonly name = 'GrpcCallError';
  constructor(
    readonly code: number,
    readonly details: string,
  ) {
    super(`${code} ${grpc.status[code] ?? 'UNKNOWN'}: ${details}`);
  }
}

/** The error a call's end means; a call that ended without a gRPC status failed in transport (UNAVAILABLE). */
export function callEndError(end: CallEnd): GrpcCallError {
  if (end.grpcStatus === undefined) return new GrpcCallError(grpc.status.UNAVAILABLE, end.reason);
  return new GrpcCallError(end.grpcStatus, end.details);
}

/** Options of a {@link GrpcBidiCall}. */
export interface BidiCallOptions {
  /** The call is its socket's only user: the socket closes when the call ends. */
  readonly ownsSocket?: boolean;
}

/** One bidirectional call on a client socket. */
export class GrpcBidiCall<Request, Response> extends EventEmitter {
  private readonly call: ClientCall;
  /** Callbacks of writes that wait for the windows or the socket to take more. */
  private waiting: Array<() => void> = [];
  private drainHooked = false;
  private cancelled = false;

  constructor(
    private readonly socket: H2ClientSocket,
    path: string,
    private readonly encode: (message: Request) => Uint8Array,
    decode: (body: Buffer) => Response,
    private readonly options: BidiCallOptions = {},
  ) {
    super();
    this.call = socket.connection.openCall(
      { path },
      {
        onMessage: (body) => {
          let message: Response;
          try {
            message = decode(body);
          } catch (e) {
            // As grpc-js: a response that does not parse ends the call with INTERNAL.
            this.abandon(new GrpcCallError(grpc.status.INTERNAL, `Failed to parse server response: ${(e as Error).message}`));
            return;
          }
          this.emit('data', message);
        },
        onWindowOpen: () => this.release(),
        onEnd: (end) => {
          this.releaseAll();
          if (this.options.ownsSocket === true) this.socket.close();
          // Events leave the connection's receive loop, as grpc-js' do.
          process.nextTick(() => {
            if (this.cancelled) return;
            if (end.grpcStatus === grpc.status.OK) this.emit('end');
            else this.emit('error', callEndError(end));
          });
        },
      },
    );
  }

  /**
   * Sends one message. `callback` runs once more may be written: on the
   * next turn when the message went out, else when the flow-control
   * windows and the socket's buffer have taken it. False in the latter case.
   */
  write(message: Request, callback?: () => void): boolean {
    if (this.call.ended) {
      if (callback !== undefined) process.nextTick(callback);
      return false;
    }
    const sent = this.call.write(this.encode(message));
    if (sent && !this.socket.writableNeedDrain) {
      if (callback !== undefined) setImmediate(callback);
      return true;
    }
    if (callback !== undefined) this.waiting.push(callback);
    this.release();
    return false;
  }

  /** Half-closes the call: the server's answers go on until it ends the call. */
  end(): void {
    this.call.end();
  }

  /** Abandons the call: resets its stream, then 'error' with CANCELLED. */
  cancel(): void {
    this.abandon(new GrpcCallError(grpc.status.CANCELLED, 'Cancelled on client'));
  }

  /** Resets the stream and reports `error` as the call's end. */
  private abandon(error: GrpcCallError): void {
    if (this.cancelled || this.call.ended) return;
    this.cancelled = true;
    this.call.cancel();
    this.releaseAll();
    if (this.options.ownsSocket === true) this.socket.close();
    process.nextTick(() => this.emit('error', error));
  }

  /** Runs the waiting write callbacks once neither the windows nor the socket hold bytes back. */
  private release(): void {
    if (this.waiting.length === 0) return;
    if (this.call.queuedBytes > 0) return; // onWindowOpen calls again
    if (this.socket.writableNeedDrain) {
      if (!this.drainHooked) {
        this.drainHooked = true;
        this.socket.onceDrained(() => {
          this.drainHooked = false;
          this.release();
        });
      }
      return;
    }
    this.releaseAll();
  }

  private releaseAll(): void {
    for (const callback of this.waiting.splice(0)) callback();
  }
}
