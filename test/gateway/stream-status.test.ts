/**
 * A streaming handler that ends while the client still has its side open
 * (a LeaseKeepAlive whose forwarded request failed, a handler returning
 * early) must still end the call with its status: the client sees the
 * error, or the OK end, instead of waiting on a stream nobody serves.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as net from 'node:net';
import type { GatewayContext, StreamHandler } from '../../src/gateway/context.js';
import { GrpcServer } from '../../src/h2/grpc-server.js';
import { grpcMethod } from '../../src/gateway/server.js';
import { toEtcdError } from '../../src/gateway/errors.js';
import { EtcdError, GrpcStatus } from '../../src/gateway/errors.js';

type Message = Record<string, unknown>;

const json = {
  serialize: (m: Message): Buffer => Buffer.from(JSON.stringify(m)),
  deserialize: (b: Buffer): Message => JSON.parse(b.toString()) as Message,
};

function bidi(path: string): grpc.MethodDefinition<Message, Message> {
  return {
    path,
    requestStream: true,
    responseStream: true,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  };
}

/** Answers each request; the second fails (as a forwarded keep-alive whose leader is unreachable). */
const failsOnSecond: StreamHandler = {
  streaming: 'bidi',
  async run({ requests, send }) {
    let n = 0;
    for await (const m of requests) {
      if (++n === 2) throw EtcdError.of('NO_LEADER');
      await send({ echo: m['n'] });
    }
  },
};

/** Answers the first request and returns while the client's side is still open. */
const returnsAfterFirst: StreamHandler = {
  streaming: 'bidi',
  async run({ requests, send }) {
    for await (const m of requests) {
      await send({ echo: m['n'] });
      return;
    }
  },
};

const SERVICE: grpc.ServiceDefinition = {
  FailsOnSecond: bidi('/test.Streams/FailsOnSecond'),
  ReturnsAfterFirst: bidi('/test.Streams/ReturnsAfterFirst'),
};

/** What the client saw: the messages, then the status or the error that ended the call. */
function exchange(client: grpc.Client, path: string, messages: number): Promise<{ replies: unknown[]; code: number; details: string }> {
  return new Promise((resolve) => {
    const call = client.makeBidiStreamRequest(path, json.serialize, json.deserialize, new grpc.Metadata(), {});
    const replies: unknown[] = [];
    call.on('data', (m: Message) => replies.push(m['echo']));
    call.on('error', (err: grpc.ServiceError) => resolve({ replies, code: err.code, details: err.details }));
    call.on('status', (s: grpc.StatusObject) => {
      if (s.code === GrpcStatus.OK) resolve({ replies, code: s.code, details: s.details });
    });
    // The client never half-closes: the server alone decides when the call ends.
    for (let n = 1; n <= messages; n++) call.write({ n });
  });
}

describe('stream status when a handler ends first', () => {
  const server = new GrpcServer({
    maxReceiveBytes: 1024 * 1024,
    statusOf: (err) => {
      const e = toEtcdError(err);
      return { code: e.grpcCode, message: e.message };
    },
  });
  const listener = net.createServer((socket) => server.serve(socket, Buffer.alloc(0)));
  let client: grpc.Client;

  before(async () => {
    // grpcMethod reads only the metrics and the error hook of its context; neither is set here.
    const ctx = {} as GatewayContext;
    const handlers: Record<string, StreamHandler> = { FailsOnSecond: failsOnSecond, ReturnsAfterFirst: returnsAfterFirst };
    for (const [name, handler] of Object.entries(handlers)) {
      const md = SERVICE[name] as grpc.MethodDefinition<Message, Message>;
      server.register(md.path, grpcMethod(ctx, `test.Streams/${name}`, md as unknown as Parameters<typeof grpcMethod>[2], handler));
    }
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    client = new grpc.Client(`127.0.0.1:${(listener.address() as net.AddressInfo).port}`, grpc.credentials.createInsecure());
  });

  after(async () => {
    client.close();
    await server.close(1_000);
    listener.close();
  });

  it('a handler that throws mid-stream ends the call with its error', { timeout: 10_000 }, async () => {
    const r = await exchange(client, '/test.Streams/FailsOnSecond', 3);
    assert.deepEqual(r.replies, [1]);
    assert.equal(r.code, GrpcStatus.UNAVAILABLE);
    assert.equal(r.details, EtcdError.of('NO_LEADER').message);
  });

  it('a handler that returns while the client still sends ends the call OK', { timeout: 10_000 }, async () => {
    const r = await exchange(client, '/test.Streams/ReturnsAfterFirst', 2);
    assert.deepEqual(r.replies, [1]);
    assert.equal(r.code, GrpcStatus.OK);
  });
});
