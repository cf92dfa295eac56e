/**
 * The client port's gRPC server (src/h2/grpc-server.ts over connection.ts)
 * against grpc-js' client on loopback: unary and bidi calls, metadata,
 * statuses with encoded messages, unknown methods, the receive limit with
 * grpc-go's text, deadlines and cancellation reaching the handler's signal,
 * compressed requests, a response far above the client's windows, many
 * calls at once, and a graceful close. (etcdctl, clientv3 and etcd3 reach
 * it through every other gateway test.)
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { GrpcServer, type ServerCall } from '../../src/h2/grpc-server.js';
import { MessageReader, parseTimeout, percentEncode } from '../../src/h2/grpc-wire.js';

const MAX_RECEIVE = 64 * 1024;
/** Releases each server's Hold handler. */
const holds = new Map<GrpcServer, () => void>();
const identity = (b: Buffer): Buffer => b;

class TestFailure extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

interface Harness {
  address: string;
  server: GrpcServer;
  listener: net.Server;
  /** Signals of the handlers that waited, by name. */
  aborted: Map<string, Promise<void>>;
}

async function startServer(): Promise<Harness> {
  const server = new GrpcServer({
    maxReceiveBytes: MAX_RECEIVE,
    statusOf: (err) => (err instanceof TestFailure ? { code: err.code, message: err.message } : { code: grpc.status.UNKNOWN, message: String(err) }),
  });
  const aborted = new Map<string, Promise<void>>();
  const codec = { decode: identity, encode: (m: unknown) => m as Buffer };
  server.register('/test.Svc/Echo', {
    ...codec,
    requestStream: false,
    responseStream: false,
    unary: async (req, call: ServerCall) => {
      const text = (req as Buffer).toString();
      if (text.startsWith('fail:')) throw new TestFailure(grpc.status.FAILED_PRECONDITION, text.slice(5));
      if (text.startsWith('big:')) return Buffer.alloc(Number(text.slice(4)), 0x61);
      if (text.startsWith('wait:')) {
        const signal = call.signal;
        aborted.set(text.slice(5), new Promise((resolve) => signal.addEventListener('abort', () => resolve())));
        await new Promise((resolve) => setTimeout(resolve, 5_000).unref());
        return Buffer.from('late');
      }
      if (text === 'metadata') return Buffer.from(JSON.stringify({ key: call.metadata.get('x-key'), bin: (call.metadata.get('x-bin')[0] as Buffer).toString('hex') }));
      return Buffer.from(`echo ${text}`);
    },
  });
  server.register('/test.Svc/Chat', {
    ...codec,
    requestStream: true,
    responseStream: true,
    streaming: async (call) => {
      let n = 0;
      for await (const m of call.requests) {
        n++;
        await call.send(Buffer.from(`got ${(m as Buffer).toString()}`));
      }
      await call.send(Buffer.from(`total ${n}`));
    },
  });
  // Reads nothing until released, then counts what the client sent.
  let release: (() => void) | undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  server.register('/test.Svc/Hold', {
    ...codec,
    requestStream: true,
    responseStream: true,
    streaming: async (call) => {
      await released;
      let n = 0;
      for await (const m of call.requests) n += (m as Buffer).length;
      await call.send(Buffer.from(String(n)));
    },
  });
  holds.set(server, () => release?.());
  server.register('/test.Svc/Quiet', { ...codec, requestStream: true, responseStream: true, streaming: async () => undefined });
  const listener = net.createServer((socket) => server.serve(socket, Buffer.alloc(0)));
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  return { address: `127.0.0.1:${(listener.address() as net.AddressInfo).port}`, server, listener, aborted };
}

function unary(client: grpc.Client, payload: Buffer | string, options: { metadata?: grpc.Metadata; deadline?: number; path?: string } = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const opts: grpc.CallOptions = options.deadline !== undefined ? { deadline: Date.now() + options.deadline } : {};
    client.makeUnaryRequest(
      options.path ?? '/test.Svc/Echo',
      identity,
      identity,
      Buffer.from(payload),
      options.metadata ?? new grpc.Metadata(),
      opts,
      (err, value) => (err !== null ? reject(err) : resolve(value as Buffer)),
    );
  });
}

async function failure(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as grpc.ServiceError;
    return { code: e.code, details: e.details };
  }
  throw new Error('call succeeded');
}

describe('gRPC server', { timeout: 60_000 }, () => {
  let h: Harness;
  let client: grpc.Client;
  before(async () => {
    h = await startServer();
    client = new grpc.Client(h.address, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': -1 });
  });
  after(async () => {
    client.close();
    await h.server.close(1_000);
    h.listener.close();
  });

  it('answers unary calls and passes metadata on, -bin values decoded', async () => {
    assert.equal((await unary(client, 'hello')).toString(), 'echo hello');
    const md = new grpc.Metadata();
    md.set('x-key', 'v1');
    md.set('x-bin', Buffer.from([0, 1, 0xff]));
    assert.deepEqual(JSON.parse((await unary(client, 'metadata', { metadata: md })).toString()), { key: ['v1'], bin: '0001ff' });
  });

  it('ends a failed call with its status and message, percent-encoded on the wire', async () => {
    assert.deepEqual(await failure(unary(client, 'fail:etcdserver: 100% — non-ASCII ok')), {
      code: grpc.status.FAILED_PRECONDITION,
      details: 'etcdserver: 100% — non-ASCII ok',
    });
    assert.equal(percentEncode('a%b\n'), 'a%25b%0A');
  });

  it('answers an unknown method UNIMPLEMENTED', async () => {
    const e = await failure(unary(client, 'x', { path: '/test.Nope/Echo' }));
    assert.deepEqual(e, { code: grpc.status.UNIMPLEMENTED, details: 'unknown service test.Nope' });
  });

  it('refuses a request above the receive limit with grpc-go\'s text, and the connection serves on', async () => {
    const e = await failure(unary(client, Buffer.alloc(MAX_RECEIVE + 1)));
    assert.deepEqual(e, { code: grpc.status.RESOURCE_EXHAUSTED, details: `grpc: received message larger than max (${MAX_RECEIVE + 1} vs. ${MAX_RECEIVE})` });
    assert.equal((await unary(client, Buffer.alloc(MAX_RECEIVE, 0x62))).length, 5 + MAX_RECEIVE);
  });

  it('fires the handler\'s signal when the deadline passes or the client cancels', async () => {
    const e = await failure(unary(client, 'wait:deadline', { deadline: 100 }));
    assert.equal(e.code, grpc.status.DEADLINE_EXCEEDED);
    await h.aborted.get('deadline');
    const call = client.makeUnaryRequest('/test.Svc/Echo', identity, identity, Buffer.from('wait:cancel'), () => undefined);
    for (let i = 0; i < 100 && !h.aborted.has('cancel'); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    call.cancel();
    await h.aborted.get('cancel');
  });

  it('streams both ways: every message answered in order, the end after the client half-closes', async () => {
    const call = client.makeBidiStreamRequest('/test.Svc/Chat', identity, identity);
    const got: string[] = [];
    call.on('data', (m: Buffer) => got.push(m.toString()));
    const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    for (let i = 0; i < 100; i++) call.write(Buffer.from(String(i)));
    call.end();
    assert.equal((await status).code, grpc.status.OK);
    assert.deepEqual(got, [...Array.from({ length: 100 }, (_, i) => `got ${i}`), 'total 100']);
  });

  it('ends a streaming call that sent nothing with OK (trailers-only)', async () => {
    const call = client.makeBidiStreamRequest('/test.Svc/Quiet', identity, identity);
    const got: Buffer[] = [];
    call.on('data', (m: Buffer) => got.push(m));
    const status = await new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    assert.equal(status.code, grpc.status.OK);
    assert.deepEqual(got, []);
  });

  it('sends a response far above the client\'s windows, and many calls at once on one connection', async () => {
    const big = await unary(client, 'big:6000000');
    assert.equal(big.length, 6_000_000);
    assert.ok(big.every((b) => b === 0x61));
    const answers = await Promise.all(Array.from({ length: 500 }, (_, i) => unary(client, `n${i}`)));
    assert.deepEqual(answers.map((a) => a.toString()), Array.from({ length: 500 }, (_, i) => `echo n${i}`));
  });

  it('stops crediting a streaming call whose handler reads nothing, and credits again as it reads', async () => {
    const session = http2.connect(`http://${h.address}`);
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/test.Svc/Hold', 'content-type': 'application/grpc', te: 'trailers' });
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      const message = Buffer.alloc(5 + 60_000, 0x63);
      message[0] = 0;
      message.writeUInt32BE(60_000, 1);
      const count = 100; // 6 MB: far above the stream's window and the unread bound together
      for (let i = 0; i < count; i++) stream.write(message);
      stream.end();
      await new Promise((resolve) => setTimeout(resolve, 300));
      // The server took at most its window plus the unread bound; the rest waits in the client.
      assert.ok(stream.writableLength > 2_000_000, `client still holds ${stream.writableLength} bytes`);
      holds.get(h.server)?.();
      await new Promise<void>((resolve) => stream.on('close', () => resolve()));
      const body = Buffer.concat(chunks);
      assert.equal(body.subarray(5).toString(), String(count * 60_000));
    } finally {
      session.close();
    }
  });

  it('reads gzip-compressed requests', async () => {
    const gz = new grpc.Client(h.address, grpc.credentials.createInsecure(), { 'grpc.default_compression_algorithm': 2 });
    try {
      assert.equal((await unary(gz, 'x'.repeat(5000))).toString(), `echo ${'x'.repeat(5000)}`);
    } finally {
      gz.close();
    }
  });
});

describe('gRPC server close', { timeout: 20_000 }, () => {
  it('lets a call in flight finish, then ends its connections', async () => {
    const h = await startServer();
    const client = new grpc.Client(h.address, grpc.credentials.createInsecure());
    try {
      assert.equal((await unary(client, 'warm')).toString(), 'echo warm');
      const inFlight = unary(client, 'wait:close');
      for (let i = 0; i < 100 && !h.aborted.has('close'); i++) await new Promise((resolve) => setTimeout(resolve, 10));
      const closed = h.server.close(200);
      // The grace is shorter than the handler: the call is cut and its signal fires.
      await h.aborted.get('close');
      await closed;
      assert.equal((await failure(inFlight)).code, grpc.status.UNAVAILABLE);
      assert.equal(h.server.connectionCount, 0);
    } finally {
      client.close();
      h.listener.close();
    }
  });
});

describe('gRPC wire', () => {
  it('cuts messages the same wherever the data is split, and refuses one above the limit before reading it', () => {
    const bodies = Array.from({ length: 30 }, (_, i) => Buffer.alloc(i * 37, i));
    const wire = Buffer.concat(
      bodies.map((b) => {
        const p = Buffer.alloc(5);
        p.writeUInt32BE(b.length, 1);
        return Buffer.concat([p, b]);
      }),
    );
    let seed = 11;
    const random = (): number => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    for (let run = 0; run < 100; run++) {
      const r = new MessageReader(10_000, undefined);
      const got: Buffer[] = [];
      for (let pos = 0; pos < wire.length; ) {
        const n = 1 + Math.floor(random() * 60);
        got.push(...r.push(wire.subarray(pos, pos + n)));
        pos += n;
      }
      assert.deepEqual(got.map((b) => b.toString('hex')), bodies.map((b) => b.toString('hex')));
      assert.equal(r.partial, false);
    }
    const prefix = Buffer.from([0, 0, 0, 0x27, 0x11]);
    assert.throws(() => new MessageReader(10_000, undefined).push(prefix), /larger than max \(10001 vs\. 10000\)/);
    assert.throws(() => new MessageReader(10_000, 'identity').push(Buffer.from([1, 0, 0, 0, 0])), /compressed flag set/);
  });

  it('reads grpc-timeout in every unit and refuses malformed ones', () => {
    assert.deepEqual(['1H', '2M', '3S', '400m', '5000u', '6000000n'].map(parseTimeout), [3_600_000, 120_000, 3_000, 400, 5, 6]);
    assert.deepEqual(['', '5', '5s', '123456789S', '-1S'].map(parseTimeout), [undefined, undefined, undefined, undefined, undefined]);
  });
});
