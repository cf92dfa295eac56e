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
 * relay for the whole connection ({@link relayThrough}: the rewritten bytes
 * reach the server over a private Unix socket); otherwise (also for a client that sends
 * no request within {@link FIRST_REQUEST_WAIT_MS}: an idle clientv3
 * connection, whose authority is plain) the socket itself goes to the
 * server, with no per-read cost.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { AuthorityRewriter } from './h2-authority.js';

/** How long the first request is waited for before the connection goes to the server as it is. */
export const FIRST_REQUEST_WAIT_MS = 1_000;
/** An empty SETTINGS frame (RFC 9113 §6.5). */
const EMPTY_SETTINGS = Buffer.from([0, 0, 0, 0x4, 0, 0, 0, 0, 0]);

/**
 * Routes an HTTP/2 connection whose first bytes `head` (starting with the
 * client preface) were read: the server gets the socket itself, or the
 * rewritten bytes through `relay` (see the module comment); `options.relay`
 * asks for the relay in any case.
 */
export function routeHttp2(socket: net.Socket, head: Buffer, relay: RelayListener, options: { relay?: boolean } = {}): void {
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
      relay.inject(socket);
    } else {
      relayThrough(relay, socket, rewriter, out);
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
 * Where relayed connections reach the HTTP/2 server: a Unix socket in a
 * private (0700) temporary directory whose accepted connections are handed
 * to the server. The server gets a real socket rather than a JavaScript
 * stream: Node's HTTP/2 over a JS stream (JSStreamSocket) can fail an
 * internal assertion when a session writes while its stream shuts down.
 */
export class RelayListener {
  private server: net.Server | undefined;
  private dir: string | undefined;
  private starting: Promise<string> | undefined;

  /** `inject` hands a connection to the HTTP/2 server. */
  constructor(readonly inject: (connection: Duplex) => void) {}

  /** The socket path, listening once first asked. */
  path(): Promise<string> {
    this.starting ??= (async () => {
      this.dir = await mkdtemp(join(tmpdir(), 'keyspan-h2-'));
      const path = join(this.dir, 'relay.sock');
      const server = net.createServer((conn) => this.inject(conn));
      this.server = server;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(path, () => {
          server.removeListener('error', reject);
          resolve();
        });
      });
      return path;
    })();
    return this.starting;
  }

  /** Stops listening and removes the directory. */
  async close(): Promise<void> {
    this.server?.close();
    if (this.dir !== undefined) await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * Pumps `socket`'s bytes through `rewriter` (starting with `first`, already
 * rewritten) into a new connection to `relay`, and that connection's bytes
 * back to `socket`. Backpressure is kept both ways; closing either side
 * closes the other.
 */
export function relayThrough(relay: RelayListener, socket: net.Socket, rewriter: AuthorityRewriter, first: readonly Buffer[]): void {
  const held: Buffer[] = [...first];
  const collect = (chunk: Buffer): void => {
    held.push(...rewriter.push(chunk));
  };
  socket.on('data', collect);
  socket.resume();
  const fail = (): void => {
    socket.destroy();
  };
  socket.on('error', fail);
  relay.path().then(
    (path) => {
      if (socket.destroyed) return;
      const inner = net.connect(path);
      socket.removeListener('data', collect);
      const toInner = (parts: readonly Buffer[]): void => {
        let more = true;
        for (const part of parts) if (part.length > 0) more = inner.write(part);
        if (!more) socket.pause();
      };
      inner.on('drain', () => socket.resume());
      socket.on('data', (chunk: Buffer) => toInner(rewriter.push(chunk)));
      inner.on('data', (chunk: Buffer) => {
        if (!socket.write(chunk)) inner.pause();
      });
      socket.on('drain', () => inner.resume());
      socket.once('end', () => inner.end());
      inner.once('end', () => socket.end());
      socket.once('close', () => inner.destroy());
      inner.once('close', () => socket.destroy());
      inner.on('error', () => inner.destroy());
      toInner(held);
    },
    () => socket.destroy(),
  );
}
