/**
 * The bidi call over the own HTTP/2 client (src/h2/client-bidi.ts) against
 * the own gRPC server on loopback: messages both ways with write callbacks,
 * 'end' on OK, 'error' with the server's status, CANCELLED on cancel, and
 * INTERNAL (the stream reset) for a response that does not parse, as grpc-js.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { GrpcBidiCall, GrpcCallError } from '../../src/h2/client-bidi.js';
import { H2ClientSocket } from '../../src/h2/client-socket.js';
import { GrpcServer, type ServerCall } from '../../src/h2/grpc-server.js';
import { GrpcStatusError } from '../../src/h2/grpc-wire.js';

const PATH = '/test.Echo/Chat';
/** Bound on each test: an event that never comes fails the test instead of stalling the run. */
const BOUND = { timeout: 10_000 };

/** An own gRPC server whose Chat echoes each message; 'fail' ends the call with NOT_FOUND, 'bye' with OK. */
async function echoServer(): Promise<{ address: string; aborted: AbortSignal[]; close(): void }> {
  const aborted: AbortSignal[] = [];
  const server = new GrpcServer({ maxReceiveBytes: 1 << 20, statusOf: (e) => ({ code: 13, message: String(e) }) });
  server.register(PATH, {
    requestStream: true,
    responseStream: true,
    decode: (body) => body.toString(),
    encode: (m) => Buffer.from(String(m)),
    streaming: async (call: ServerCall) => {
      aborted.push(call.signal);
      for await (const m of call.requests) {
        if (m === 'fail') throw new GrpcStatusError(5, 'no such thing');
        if (m === 'bye') return;
        await call.send(m);
      }
    },
  });
  const listener = net.createServer((socket) => server.serve(socket, Buffer.alloc(0)));
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(listener.address() as net.AddressInfo).port}`,
    aborted,
    close: () => {
      listener.close();
      void server.close(0);
    },
  };
}

function open(address: string, decode: (b: Buffer) => string = (b) => b.toString()): GrpcBidiCall<string, string> {
  const socket = new H2ClientSocket(address, {}, { connectTimeoutMs: 2_000 }, { onReady: () => undefined, onDrain: () => undefined, onClose: () => undefined });
  return new GrpcBidiCall(socket, PATH, (m) => Buffer.from(m), decode, { ownsSocket: true });
}

function outcome(call: GrpcBidiCall<string, string>): Promise<{ data: string[]; end: 'end' | GrpcCallError }> {
  const data: string[] = [];
  call.on('data', (m: string) => data.push(m));
  return new Promise((resolve) => {
    call.on('end', () => resolve({ data, end: 'end' }));
    call.on('error', (e: GrpcCallError) => resolve({ data, end: e }));
  });
}

test('messages go both ways, each write calls back, and the server ending with OK is the end', BOUND, async () => {
  const srv = await echoServer();
  try {
    const call = open(srv.address);
    const done = outcome(call);
    let callbacks = 0;
    for (const m of ['a', 'b', 'c']) call.write(m, () => callbacks++);
    call.write('bye');
    const { data, end } = await done;
    assert.deepEqual(data, ['a', 'b', 'c']);
    assert.equal(end, 'end');
    assert.equal(callbacks, 3);
  } finally {
    srv.close();
  }
});

test("the server's status is the error; cancel is CANCELLED and aborts the server's call", BOUND, async () => {
  const srv = await echoServer();
  try {
    const failing = open(srv.address);
    const failed = outcome(failing);
    failing.write('fail');
    const { end } = await failed;
    assert.ok(end instanceof GrpcCallError);
    assert.equal(end.code, 5);
    assert.equal(end.message, '5 NOT_FOUND: no such thing');

    const cancelled = open(srv.address);
    const result = outcome(cancelled);
    cancelled.write('x');
    await new Promise<void>((resolve) => cancelled.once('data', () => resolve()));
    cancelled.cancel();
    const r = await result;
    assert.ok(r.end instanceof GrpcCallError);
    assert.equal(r.end.code, 1);
    const signal = srv.aborted[1] as AbortSignal;
    for (let i = 0; !signal.aborted && i < 200; i++) await new Promise((res) => setTimeout(res, 10));
    assert.equal(signal.aborted, true);
  } finally {
    srv.close();
  }
});

test('a response that does not parse ends the call with INTERNAL, and no data', BOUND, async () => {
  const srv = await echoServer();
  try {
    const call = open(srv.address, (b) => {
      if (b.toString() === 'garbled') throw new Error('index out of range');
      return b.toString();
    });
    const done = outcome(call);
    call.write('fine');
    call.write('garbled');
    call.write('after');
    const { data, end } = await done;
    assert.deepEqual(data, ['fine']);
    assert.ok(end instanceof GrpcCallError);
    assert.equal(end.code, 13);
    assert.equal(end.details, 'Failed to parse server response: index out of range');
  } finally {
    srv.close();
  }
});
