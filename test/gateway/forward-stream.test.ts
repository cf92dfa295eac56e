/**
 * Forwarding over the per-peer stream (forward-stream.ts): two Forwarding
 * ends on loopback gRPC servers, the receiver running real handlers. A
 * forwarded call's answer, its errors and leader hints, cancellation at the
 * deadline, many calls at once on one stream in few messages, calls in
 * flight failed (and retried elsewhere) when their stream breaks, the fallback to unary calls
 * for a receiver without the stream method, and the forwarding scope each
 * end's handler gets in its CallInfo (one hop, one request id per call).
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { CallInfo, MemberInfo, UnaryHandler } from '../../src/gateway/context.js';
import { EtcdError } from '../../src/gateway/errors.js';
import { Forwarding } from '../../src/gateway/forward.js';
import { forwardServiceDefinition, type CallBatch } from '../../src/gateway/forward-proto.js';
import { LeaderElsewhereError, type ForwardScope } from '../../src/gateway/forward-scope.js';
import { NotLeaderError } from '../../src/shard/range/errors.js';
import { resolveLimits } from '../../src/group/transport/limits.js';
import { RaftServer } from '../../src/group/transport/server.js';
import { newTransportStats } from '../../src/group/transport/stats.js';

const PUT = 'etcdserverpb.KV/Put';

function member(id: number): () => MemberInfo {
  return () => ({ id: String(id), name: `n${id}`, peerURLs: [], clientURLs: [] }) as unknown as MemberInfo;
}

/**
 * A Put handler that always finds its leader on node `leader` when its call
 * is not a forwarded one; each attempt's scope is pushed to `scopes`.
 */
function originPut(leader: number, scopes: Array<ForwardScope | undefined> = []): UnaryHandler {
  return async (_request, call) => {
    scopes.push(call.forward);
    if (call.forward?.forwarded !== true) throw new LeaderElsewhereError(leader, { cause: new NotLeaderError(1, { replicaId: leader, nodeId: leader }) });
    throw new Error('the origin never runs a forwarded call');
  };
}

/** Waits (up to 10 s) for a call's signal at the receiver to abort; fails if it does not. */
async function cancelledAtReceiver(signal: AbortSignal | undefined): Promise<void> {
  assert.ok(signal !== undefined, 'the receiver ran the call');
  const deadline = Date.now() + 10_000;
  while (!signal.aborted && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(signal.aborted, true, "the receiver's call was cancelled");
}

async function listen(server: grpc.Server): Promise<string> {
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err === null ? resolve(p) : reject(err))),
  );
  return `127.0.0.1:${port}`;
}

describe('forwarding stream', () => {
  const servers: grpc.Server[] = [];
  const ends: Forwarding[] = [];
  const receiverSignals: AbortSignal[] = [];
  /** The forwarding scope of each call node 2's Put ran, by key. */
  const receiverScopes = new Map<string, Array<ForwardScope | undefined>>();
  let streamAddress = '';
  let unaryOnlyAddress = '';
  let unaryOnlyCalls = 0;
  let streamServerUnaryCalls = 0;
  /** Calls per message the stream receiver got. */
  const callBatches: number[] = [];

  /** Node 2's Put: echoes the key as the response's revision count; special keys fail or hang. */
  const receiverPut: UnaryHandler = async (request, call) => {
    receiverSignals.push(call.signal);
    const key = Buffer.from(request['key'] as Uint8Array).toString();
    receiverScopes.set(key, [...(receiverScopes.get(key) ?? []), call.forward]);
    if (key === 'too-large') throw EtcdError.of('REQUEST_TOO_LARGE');
    if (key === 'elsewhere') throw new LeaderElsewhereError(3, { cause: new NotLeaderError(1, { replicaId: 3, nodeId: 3 }) });
    if (key === 'hang') await new Promise((resolve) => call.signal.addEventListener('abort', resolve, { once: true }));
    if (key === 'large-answer') {
      // An answer above grpc-js's default 4 MiB receive limit, as a Txn with ranges may return.
      return { header: { cluster_id: 1, member_id: 2, revision: 1, raft_term: 1 }, prev_kv: { key: Buffer.from(key), value: Buffer.alloc(6 * 1024 * 1024, 1) } };
    }
    return { header: { cluster_id: 1, member_id: 2, revision: Number(key.slice(1)) || 0, raft_term: 1 } };
  };

  before(async () => {
    const receiver = new Forwarding({ localNodeId: 2, member: member(2), peerAddress: () => undefined });
    ends.push(receiver);
    // The receiver's Put is wrapped as on a member: a forwarded call must run here, never forward again.
    const wrappedPut = receiver.wrap(PUT, receiverPut);
    const svc = receiver.service((m) => (m === PUT ? wrappedPut : undefined));
    const withStream = new grpc.Server();
    const unary = svc.implementation['Unary'] as grpc.handleUnaryCall<object, object>;
    const callStream = svc.implementation['CallStream'] as grpc.handleBidiStreamingCall<CallBatch, object>;
    withStream.addService(svc.definition, {
      ...svc.implementation,
      CallStream: (c: grpc.ServerDuplexStream<CallBatch, object>) => {
        c.on('data', (batch: CallBatch) => callBatches.push(batch.calls.length));
        callStream(c);
      },
      Unary: (c: grpc.ServerUnaryCall<object, object>, cb: grpc.sendUnaryData<object>) => {
        streamServerUnaryCalls++;
        unary(c, cb);
      },
    });
    streamAddress = await listen(withStream);
    // A receiver that predates the stream method: Unary and MemberInfo only.
    const older = new grpc.Server();
    const { CallStream: _omitted, ...oldDefinition } = forwardServiceDefinition();
    const { CallStream: _omittedImpl, ...oldImplementation } = svc.implementation;
    const countingUnary: grpc.handleUnaryCall<object, object> = (call, callback) => {
      unaryOnlyCalls++;
      (oldImplementation['Unary'] as grpc.handleUnaryCall<object, object>)(call, callback);
    };
    older.addService(oldDefinition, { ...oldImplementation, Unary: countingUnary });
    unaryOnlyAddress = await listen(older);
    servers.push(withStream, older);
  });

  after(() => {
    for (const f of ends) f.close();
    for (const s of servers) s.forceShutdown();
  });

  function origin(address: string, deadlineMs = 10_000, attemptsMax = 3): Forwarding {
    const f = new Forwarding({ localNodeId: 1, member: member(1), peerAddress: (n) => (n === 2 ? address : undefined), deadlineMs, attemptsMax });
    ends.push(f);
    return f;
  }

  const call = (signal = new AbortController().signal): CallInfo => ({ signal, metadata: new grpc.Metadata() });

  it('runs the call on the origin with its own scope and on the receiver with a forwarded scope carrying the same request id', async () => {
    const originScopes: Array<ForwardScope | undefined> = [];
    const put = origin(streamAddress).wrap(PUT, originPut(2, originScopes));
    const c = call();
    const answer = await put({ key: Buffer.from('k42') }, c);
    assert.equal((answer['header'] as { revision: number }).revision, 42);
    assert.equal(c.forward, undefined, "the caller's CallInfo is left as it was");
    assert.equal(originScopes.length, 1, 'one local attempt, then one hop');
    const local = originScopes[0];
    assert.ok(local !== undefined);
    assert.equal(local.localNodeId, 1);
    assert.equal(local.forwarded, false);
    const remote = receiverScopes.get('k42');
    assert.equal(remote?.length, 1, 'the receiver ran it once');
    assert.deepEqual(remote[0], { localNodeId: 2, forwarded: true, requestId: local.requestId });
  });

  it('keeps one request id across every attempt of a call, local and forwarded; the next call gets its own', async () => {
    const originScopes: Array<ForwardScope | undefined> = [];
    const put = origin(streamAddress, 10_000, 6).wrap(PUT, originPut(2, originScopes));
    // Node 2 names node 3, unknown to the origin: local attempt, hop to 2,
    // hop to 3 (not sent), and the same again until the attempts run out.
    await assert.rejects(put({ key: Buffer.from('elsewhere') }, call()), /leader changed/);
    const remote = receiverScopes.get('elsewhere') ?? [];
    receiverScopes.delete('elsewhere');
    assert.equal(originScopes.length, 2, 'local attempts');
    assert.equal(remote.length, 2, 'forwarded attempts, each run on the receiver (never forwarded again from there)');
    const id = originScopes[0]?.requestId;
    assert.ok(id !== undefined);
    for (const s of originScopes) assert.deepEqual(s, { localNodeId: 1, forwarded: false, requestId: id });
    for (const s of remote) assert.deepEqual(s, { localNodeId: 2, forwarded: true, requestId: id });
    await put({ key: Buffer.from('k9') }, call());
    assert.equal(originScopes.length, 3);
    assert.notDeepEqual(originScopes[2]?.requestId, id);
  });

  it('answers with the receiver result and the origin member id; many calls share the stream', async () => {
    const put = origin(streamAddress).wrap(PUT, originPut(2));
    const keys = Array.from({ length: 20 }, (_, i) => `k${i + 1}`);
    const answers = await Promise.all(keys.map((k) => put({ key: Buffer.from(k), value: Buffer.from('v') }, call())));
    assert.deepEqual(
      answers.map((a) => (a['header'] as { revision: number }).revision),
      keys.map((_, i) => i + 1),
    );
    for (const a of answers) assert.equal((a['header'] as { member_id: string }).member_id, '1');
    assert.equal(streamServerUnaryCalls, 0, 'the calls went on the stream, not as unary calls');
  });

  it('gathers calls made at once into few stream messages', async () => {
    const put = origin(streamAddress).wrap(PUT, originPut(2));
    const before = callBatches.length;
    const n = 200;
    const answers = await Promise.all(Array.from({ length: n }, (_, i) => put({ key: Buffer.from(`k${i + 1}`) }, call())));
    assert.deepEqual(
      answers.map((a) => (a['header'] as { revision: number }).revision),
      Array.from({ length: n }, (_, i) => i + 1),
    );
    const sizes = callBatches.slice(before);
    assert.equal(
      sizes.reduce((a, b) => a + b, 0),
      n,
      'every call arrived once',
    );
    // The first call leaves alone; the rest wait for its write and go together.
    assert.ok(sizes.length <= n / 4, `${n} calls in ${sizes.length} messages`);
  });

  it('receives an answer larger than the default 4 MiB gRPC message limit', async () => {
    const put = origin(streamAddress).wrap(PUT, originPut(2));
    const answer = await put({ key: Buffer.from('large-answer') }, call());
    const prev = answer['prev_kv'] as { value: Uint8Array };
    assert.equal(prev.value.length, 6 * 1024 * 1024);
  });

  it('fails the calls in flight when the stream breaks; their retries reach the leader named next', async () => {
    // Two receivers: A holds every call until it dies, B answers.
    const serve = async (put: UnaryHandler): Promise<{ server: grpc.Server; address: string }> => {
      const end = new Forwarding({ localNodeId: 2, member: member(2), peerAddress: () => undefined });
      ends.push(end);
      const svc = end.service((m) => (m === PUT ? put : undefined));
      const server = new grpc.Server();
      server.addService(svc.definition, svc.implementation);
      servers.push(server);
      return { server, address: await listen(server) };
    };
    const held: AbortSignal[] = [];
    const a = await serve(async (_req, c) => {
      held.push(c.signal);
      await new Promise((resolve) => c.signal.addEventListener('abort', resolve, { once: true }));
      throw new Error('never answered');
    });
    const b = await serve(async (req) => ({ header: { cluster_id: 1, member_id: 2, revision: Number(Buffer.from(req['key'] as Uint8Array).toString().slice(1)), raft_term: 1 } }));
    let address = a.address;
    const f = new Forwarding({ localNodeId: 1, member: member(1), peerAddress: (n) => (n === 2 ? address : undefined), deadlineMs: 20_000, attemptsMax: 6 });
    ends.push(f);
    const put = f.wrap(PUT, originPut(2));
    const started = Date.now();
    const answers = [1, 2, 3].map((i) => put({ key: Buffer.from(`k${i}`) }, call()));
    for (let i = 0; held.length < 3 && i < 500; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(held.length, 3, 'A holds the three calls (one stream, batched behind the first write)');
    address = b.address; // node 2 is now reached at B
    a.server.forceShutdown();
    const revisions = (await Promise.all(answers)).map((r) => (r['header'] as { revision: number }).revision);
    assert.deepEqual(revisions, [1, 2, 3]);
    assert.ok(Date.now() - started < 10_000, 'retried when the stream broke, not at the deadline');
    assert.ok(held.every((sig) => sig.aborted), "A's calls were cancelled with their stream");
  });

  it('passes etcd errors through unchanged', async () => {
    const put = origin(streamAddress).wrap(PUT, originPut(2));
    await assert.rejects(put({ key: Buffer.from('too-large') }, call()), (err: unknown) => {
      assert.ok(err instanceof EtcdError);
      assert.equal(err.message, 'etcdserver: request is too large');
      return true;
    });
  });

  it('follows the leader the receiver names (an unknown node ends as leader changed)', async () => {
    const put = origin(streamAddress).wrap(PUT, originPut(2));
    await assert.rejects(put({ key: Buffer.from('elsewhere') }, call()), (err: unknown) => {
      assert.ok(err instanceof EtcdError);
      assert.equal(err.message, 'etcdserver: leader changed');
      return true;
    });
  });

  it('times out at the deadline and cancels the call at the receiver', async () => {
    const put = origin(streamAddress, 300).wrap(PUT, originPut(2));
    const before = receiverSignals.length;
    await assert.rejects(put({ key: Buffer.from('hang') }, call()), (err: unknown) => {
      assert.ok(err instanceof EtcdError);
      assert.equal(err.message, 'etcdserver: request timed out');
      return true;
    });
    await cancelledAtReceiver(receiverSignals[before]);
  });

  it('falls back to unary calls for a receiver without the stream method', async () => {
    const put = origin(unaryOnlyAddress).wrap(PUT, originPut(2));
    const first = await put({ key: Buffer.from('k7') }, call());
    assert.equal((first['header'] as { revision: number }).revision, 7);
    const second = await put({ key: Buffer.from('k8') }, call());
    assert.equal((second['header'] as { revision: number }).revision, 8);
    assert.equal(unaryOnlyCalls, 2);
  });
});

describe("forwarding stream on the peer port's own gRPC server", () => {
  let server: RaftServer;
  let address = '';
  const ends: Forwarding[] = [];
  const receiverSignals: AbortSignal[] = [];
  /** Calls per message the receiver decoded. */
  const callBatches: number[] = [];

  before(async () => {
    const receiver = new Forwarding({ localNodeId: 2, member: member(2), peerAddress: () => undefined });
    ends.push(receiver);
    const put: UnaryHandler = async (request, c) => {
      receiverSignals.push(c.signal);
      const key = Buffer.from(request['key'] as Uint8Array).toString();
      if (key === 'hang') await new Promise((resolve) => c.signal.addEventListener('abort', resolve, { once: true }));
      if (key === 'large-answer') return { header: { cluster_id: 1, member_id: 2, revision: 1, raft_term: 1 }, prev_kv: { key: Buffer.from(key), value: Buffer.alloc(6 * 1024 * 1024, 1) } };
      if (key === 'too-large') throw EtcdError.of('REQUEST_TOO_LARGE');
      return { header: { cluster_id: 1, member_id: 2, revision: Number(key.slice(1)) || 0, raft_term: 1 } };
    };
    const wrapped = receiver.wrap(PUT, put);
    const lookup = (m: string): UnaryHandler | undefined => (m === PUT ? wrapped : undefined);
    const svc = receiver.service(lookup);
    const own = new Map(
      [...receiver.ownStreamMethods(lookup)].map(([path, method]) => [
        path,
        {
          ...method,
          decode: (body: Buffer) => {
            const batch = method.decode(body) as CallBatch;
            callBatches.push(batch.calls.length);
            return batch;
          },
        },
      ]),
    );
    server = new RaftServer({ localNodeId: 2, limits: resolveLimits(undefined), stats: newTransportStats(), deliver: () => undefined });
    server.addService(svc.definition, svc.implementation, own);
    address = `127.0.0.1:${await server.listen('127.0.0.1:0')}`;
  });

  after(() => {
    for (const f of ends) f.close();
    server.close();
  });

  function origin(deadlineMs = 10_000): Forwarding {
    const f = new Forwarding({ localNodeId: 1, member: member(1), peerAddress: (n) => (n === 2 ? address : undefined), deadlineMs, attemptsMax: 3 });
    ends.push(f);
    return f;
  }
  const call = (): CallInfo => ({ signal: new AbortController().signal, metadata: new grpc.Metadata() });

  it('carries many calls at once in few messages on a marked connection, and etcd errors unchanged', async () => {
    const put = origin().wrap(PUT, originPut(2));
    const n = 200;
    const answers = await Promise.all(Array.from({ length: n }, (_, i) => put({ key: Buffer.from(`k${i + 1}`) }, call())));
    assert.deepEqual(
      answers.map((a) => (a['header'] as { revision: number }).revision),
      Array.from({ length: n }, (_, i) => i + 1),
    );
    assert.equal(server.ownServerConnections, 1, 'served by the own gRPC server');
    assert.equal(
      callBatches.reduce((a, b) => a + b, 0),
      n,
    );
    assert.ok(callBatches.length <= n / 4, `${n} calls in ${callBatches.length} messages`);
    await assert.rejects(put({ key: Buffer.from('too-large') }, call()), /etcdserver: request is too large/);
  });

  it('receives a 6 MiB answer', async () => {
    const answer = await origin().wrap(PUT, originPut(2))({ key: Buffer.from('large-answer') }, call());
    assert.equal((answer['prev_kv'] as { value: Uint8Array }).value.length, 6 * 1024 * 1024);
  });

  it('cancels the call at the receiver when the origin gives up at its deadline', async () => {
    const before = receiverSignals.length;
    await assert.rejects(origin(300).wrap(PUT, originPut(2))({ key: Buffer.from('hang') }, call()), /request timed out/);
    await cancelledAtReceiver(receiverSignals[before]);
  });

  it('fails the calls in flight when the receiver closes (last: it closes the receiver)', async () => {
    const put = origin(20_000).wrap(PUT, originPut(2));
    const before = receiverSignals.length;
    const started = Date.now();
    const held = put({ key: Buffer.from('hang') }, call());
    for (let i = 0; receiverSignals.length === before && i < 500; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(receiverSignals.length, before + 1, 'the receiver runs the call');
    server.close();
    // The break fails the hop; the retries find nobody listening and the attempts run out.
    await assert.rejects(held, /etcdserver: leader changed/);
    assert.ok(Date.now() - started < 10_000, 'failed when the stream broke, not at the deadline');
    await cancelledAtReceiver(receiverSignals[before]);
  });
});
