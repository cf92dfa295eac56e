/**
 * How an HTTP/2 client connection reaches the gRPC server, given that some
 * clients' `:authority` must be rewritten (h2-authority.ts) and rewriting
 * costs a JavaScript hop per read.
 *
 * After the client preface the connection layer sends the client an empty
 * SETTINGS frame itself (the server's connection preface may be any
 * SETTINGS frame), so that clients which wait for the server's preface
 * (grpc-go, hence etcdctl) send their first request. It then reads until
 * it has the client's first complete header block and the acknowledgement
 * of that SETTINGS frame (which it removes: the HTTP/2 server never sent
 * it). A first request with a scheme in its authority gets the rewriting
 * relay for the whole connection; otherwise (also for a client that sends
 * no request within {@link FIRST_REQUEST_WAIT_MS}: an idle clientv3
 * connection, whose authority is plain) the socket itself goes to the
 * server, with no per-read cost.
 */
import { Duplex } from 'node:stream';
import type * as net from 'node:net';
import { AuthorityRewriter } from './h2-authority.js';

/** How long the first request is waited for before the connection goes to the server as it is. */
export const FIRST_REQUEST_WAIT_MS = 1_000;
/** An empty SETTINGS frame (RFC 9113 §6.5). */
const EMPTY_SETTINGS = Buffer.from([0, 0, 0, 0x4, 0, 0, 0, 0, 0]);

/**
 * Routes an HTTP/2 connection whose first bytes `head` (starting with the
 * client preface) were read: `inject` gets the socket itself or a rewriting
 * relay over it (see the module comment); `relay` asks for the relay in any case.
 */
export function routeHttp2(socket: net.Socket, head: Buffer, inject: (connection: Duplex) => void, options: { relay?: boolean } = {}): void {
  const rewriter = new AuthorityRewriter({ dropFirstSettingsAck: true });
  const out: Buffer[] = [];
  let decided = false;
  const decide = (): void => {
    decided = true;
    clearTimeout(timer);
    socket.removeListener('data', onData);
    socket.removeListener('error', onError);
    socket.pause();
    if (options.relay !== true && rewriter.rewritten === 0) {
      socket.unshift(Buffer.concat([...out, rewriter.takeHeld()]));
      inject(socket);
    } else {
      inject(authorityRelay(socket, rewriter, out));
    }
  };
  const onData = (chunk: Buffer): void => {
    out.push(...rewriter.push(chunk));
    if (rewriter.passthrough || (rewriter.headerBlocks > 0 && rewriter.settingsAckDropped)) decide();
  };
  // Until handed over, a reset connection is just closed.
  const onError = (): void => {
    clearTimeout(timer);
    socket.destroy();
  };
  const timer = setTimeout(decide, FIRST_REQUEST_WAIT_MS);
  socket.once('close', () => clearTimeout(timer));
  socket.on('error', onError);
  socket.write(EMPTY_SETTINGS);
  socket.on('data', onData);
  onData(head);
  if (!decided) socket.resume();
}

/**
 * A Duplex over `socket` whose readable side is the socket's bytes through
 * `rewriter` (starting with `first`, already rewritten) and whose writable
 * side writes to the socket. Backpressure is kept both ways; closing either
 * side closes the other.
 */
export function authorityRelay(socket: net.Socket, rewriter: AuthorityRewriter, first: readonly Buffer[]): Duplex {
  const relay = new Duplex({
    allowHalfOpen: false,
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      socket.end(callback);
    },
    destroy(err, callback) {
      socket.destroy();
      callback(err);
    },
  });
  const forward = (parts: readonly Buffer[]): void => {
    let more = true;
    for (const part of parts) if (part.length > 0) more = relay.push(part);
    if (!more) socket.pause();
  };
  socket.on('data', (chunk: Buffer) => forward(rewriter.push(chunk)));
  socket.once('end', () => relay.push(null));
  socket.once('error', (err) => relay.destroy(err));
  socket.once('close', () => relay.destroy());
  forward(first);
  return relay;
}
