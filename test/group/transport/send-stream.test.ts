/**
 * The message stream's own HTTP/2 client (send-stream.ts) against a real
 * receiver (a transport's server) and against servers that stay silent, stop
 * answering pings or go away: what arrives, back-pressure, and how each kind
 * of end is reported; and the receiving port's routing of marked message
 * streams to its own gRPC server, everything else to grpc-js' (server.ts).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { SendStream, type SendStreamTimes, splitAddress } from '../../../src/group/transport/send-stream.js';
import { SEND_METHOD_PATH, encodeBatch, encodeGroupMessage, newTransportStats, resolveLimits } from '../../../src/group/transport/index.js';
import { RaftServer, isMarkedForOwnServer } from '../../../src/group/transport/server.js';
import { OWN_SERVER_SETTING } from '../../../src/group/transport/service.js';
import { CLIENT_PREFACE, FrameReader, FrameType, settingsFrame } from '../../../src/h2/frames.js';
import { closeAll, entry, msg, startNode, waitFor } from './harness.js';

after(closeAll);

const TIMES: SendStreamTimes = { connectTimeoutMs: 1000, keepaliveTimeMs: 10_000, keepaliveTimeoutMs: 5000 };

/** A stream to `address` whose events are recorded. */
function open(address: string, times: SendStreamTimes = TIMES): { stream: SendStream; ready: () => boolean; drains: () => number; ended: () => Error | undefined } {
  let ready = false;
  let drains = 0;
  let ended: Error | undefined;
  const stream = new SendStream(address, { path: SEND_METHOD_PATH }, times, {
    onReady: () => (ready = true),
    onDrain: () => drains++,
    onEnd: (e) => (ended = e),
  });
  return { stream, ready: () => ready, drains: () => drains, ended: () => ended };
}

/** A TCP server on 127.0.0.1 that hands each connection to `onSocket`. */
async function rawServer(onSocket: (s: net.Socket) => void): Promise<{ address: string; close: () => void }> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
    onSocket(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

test('splitAddress takes host names, IPv4 and bracketed IPv6', () => {
  assert.deepEqual(splitAddress('127.0.0.1:2380'), { host: '127.0.0.1', port: 2380 });
  assert.deepEqual(splitAddress('[::1]:2380'), { host: '::1', port: 2380 });
  assert.deepEqual(splitAddress('localhost:1'), { host: 'localhost', port: 1 });
});

test('batches reach a grpc-js receiver in order, through back-pressure, large ones across many frames', async () => {
  const receiver = await startNode(2);
  const s = open(receiver.address);
  await waitFor(s.ready, 'ready');
  const BATCHES = 40;
  const big = Array.from({ length: 200_000 }, (_, i) => i % 256);
  let refused = 0;
  for (let i = 0; i < BATCHES; i++) {
    // Every fourth batch carries ~200 kB: more than a flow-control window.
    const m = msg('app', { from: 1, to: 2, index: i, entries: [entry(1, i, i % 4 === 0 ? big : [i])] });
    if (!s.stream.write(encodeBatch(1, 2, [encodeGroupMessage(7, m)]))) refused++;
  }
  assert.ok(refused > 0, 'writes past the windows report back-pressure');
  await waitFor(() => receiver.rec.received.length === BATCHES, `${BATCHES} batches`, 10_000);
  assert.deepEqual(
    receiver.rec.received.map((r) => r.msg.index),
    Array.from({ length: BATCHES }, (_, i) => i),
  );
  assert.deepEqual(Array.from(receiver.rec.received[4]!.msg.entries[0]!.data), big);
  assert.ok(receiver.rec.received.every((r) => r.groupId === 7 && r.fromNode === 1));
  await waitFor(() => s.drains() > 0, 'a drain after back-pressure');
  assert.equal(s.ended(), undefined);
  s.stream.cancel();
});

test('a refused batch ends the call with the receiver\'s gRPC status', async () => {
  const receiver = await startNode(2);
  const s = open(receiver.address);
  await waitFor(s.ready, 'ready');
  s.stream.write(encodeBatch(1, 3, [encodeGroupMessage(1, msg('heartbeat', { from: 1, to: 3 }))]));
  await waitFor(() => s.ended() !== undefined, 'the end');
  assert.equal(s.ended()!.message, 'call ended with gRPC status 9: batch for node 3 reached node 2');
  assert.equal(s.stream.write(Buffer.from('late')), false);
});

test('a receiver that shuts down ends the call', async () => {
  const receiver = await startNode(2);
  const s = open(receiver.address);
  await waitFor(s.ready, 'ready');
  await receiver.transport.close();
  await waitFor(() => s.ended() !== undefined, 'the end');
});

test('no listener, or a listener that never speaks HTTP/2, fails the connection', async () => {
  const silent = await rawServer(() => undefined);
  const refused = await rawServer(() => undefined);
  const refusedAddress = refused.address;
  refused.close();
  try {
    const down = open(refusedAddress);
    await waitFor(() => down.ended() !== undefined, 'connection refused');
    assert.equal(down.ready(), false);

    const mute = open(silent.address, { ...TIMES, connectTimeoutMs: 150 });
    await waitFor(() => mute.ended() !== undefined, 'the connect deadline');
    assert.match(mute.ended()!.message, /no HTTP\/2 settings from 127\.0\.0\.1:\d+ within 150 ms/);
    assert.equal(mute.ready(), false);
  } finally {
    silent.close();
  }
});

test('keepalive: pings answered keep the call; a server that stops answering ends it', async () => {
  let answerPings = true;
  const pingsSeen: number[] = [];
  const server = await rawServer((socket) => {
    const reader = new FrameReader(1 << 20);
    let prefaceLeft = CLIENT_PREFACE.length;
    socket.write(settingsFrame([]));
    socket.on('data', (chunk: Buffer) => {
      const skip = Math.min(prefaceLeft, chunk.length);
      prefaceLeft -= skip;
      for (const f of reader.push(chunk.subarray(skip))) {
        if (f.type !== FrameType.PING) continue;
        pingsSeen.push(performance.now());
        if (answerPings) {
          const ack = Buffer.concat([Buffer.from([0, 0, 8, FrameType.PING, 1, 0, 0, 0, 0]), f.payload]);
          socket.write(ack);
        }
      }
    });
  });
  try {
    // A generous timeout: a busy test machine must not turn a late answer into a failure.
    const s = open(server.address, { connectTimeoutMs: 1000, keepaliveTimeMs: 30, keepaliveTimeoutMs: 400 });
    await waitFor(s.ready, 'ready');
    await waitFor(() => pingsSeen.length >= 4, 'four pings');
    assert.equal(s.ended(), undefined, 'answered pings keep the call');
    answerPings = false;
    const stoppedAt = performance.now();
    await waitFor(() => s.ended() !== undefined, 'the keepalive timeout');
    assert.equal(s.ended()!.message, 'keepalive ping unanswered for 400 ms');
    // The first unanswered ping may have left just before the answers stopped.
    assert.ok(performance.now() - stoppedAt >= 300);
  } finally {
    server.close();
  }
});

test('cancel reports no end and closes the connection', async () => {
  let closed = false;
  const server = await rawServer((socket) => {
    socket.write(settingsFrame([]));
    socket.resume();
    socket.on('close', () => (closed = true));
  });
  try {
    const s = open(server.address);
    await waitFor(s.ready, 'ready');
    s.stream.cancel();
    await waitFor(() => closed, 'the server sees the connection close');
    assert.equal(s.ended(), undefined);
  } finally {
    server.close();
  }
});

test('isMarkedForOwnServer reads the preface and the first SETTINGS, waiting for more bytes while they are incomplete', () => {
  const marked = Buffer.concat([CLIENT_PREFACE, settingsFrame([[2, 0], [OWN_SERVER_SETTING, 1]])]);
  const plain = Buffer.concat([CLIENT_PREFACE, settingsFrame([[2, 0]])]);
  assert.equal(isMarkedForOwnServer(marked), true);
  assert.equal(isMarkedForOwnServer(plain), false);
  for (const cut of [1, CLIENT_PREFACE.length, CLIENT_PREFACE.length + 9, marked.length - 1]) {
    assert.equal(isMarkedForOwnServer(marked.subarray(0, cut)), undefined, `cut at ${cut}`);
  }
  assert.equal(isMarkedForOwnServer(Buffer.from('GET / HTTP/1.1\r\n')), false, 'not HTTP/2');
  const ping = Buffer.concat([CLIENT_PREFACE, Buffer.from([0, 0, 8, FrameType.PING, 0, 0, 0, 0, 0]), Buffer.alloc(8)]);
  assert.equal(isMarkedForOwnServer(ping), false, 'a first frame other than SETTINGS');
});

test('the peer port serves marked message streams itself and everything else through grpc-js', async () => {
  const received: number[] = [];
  const stats = newTransportStats();
  const server = new RaftServer({
    localNodeId: 2,
    limits: resolveLimits(undefined),
    stats,
    deliver: (_g, m) => received.push(m.index),
  });
  const port = await server.listen('127.0.0.1:0');
  try {
    let markedReady = false;
    const marked = new SendStream(`127.0.0.1:${port}`, { path: SEND_METHOD_PATH, settings: [[OWN_SERVER_SETTING, 1]] }, TIMES, {
      onReady: () => (markedReady = true),
      onDrain: () => undefined,
      onEnd: () => undefined,
    });
    const plain = open(`127.0.0.1:${port}`);
    await waitFor(() => markedReady && plain.ready(), 'both streams ready');
    for (let i = 0; i < 3; i++) marked.write(encodeBatch(1, 2, [encodeGroupMessage(1, msg('app', { index: i }))]));
    plain.stream.write(encodeBatch(1, 2, [encodeGroupMessage(1, msg('app', { index: 10 }))]));
    await waitFor(() => received.length === 4, 'four batches');
    assert.deepEqual([...received].sort((a, b) => a - b), [0, 1, 2, 10]);
    assert.equal(server.ownServerConnections, 1, 'only the marked connection is served by the own server');
    assert.equal(stats.streamsAccepted, 2);
    assert.equal(stats.batchesReceived, 4);

    // A misaddressed batch on the own server ends the call as grpc-js' Send does.
    let ended: Error | undefined;
    let wrongReady = false;
    const wrong = new SendStream(`127.0.0.1:${port}`, { path: SEND_METHOD_PATH, settings: [[OWN_SERVER_SETTING, 1]] }, TIMES, {
      onReady: () => (wrongReady = true),
      onDrain: () => undefined,
      onEnd: (e) => (ended = e),
    });
    await waitFor(() => wrongReady, 'the misaddressed stream ready');
    wrong.write(encodeBatch(1, 3, [encodeGroupMessage(1, msg('heartbeat'))]));
    await waitFor(() => ended !== undefined, 'the refusal');
    assert.equal(ended!.message, 'call ended with gRPC status 9: batch for node 3 reached node 2');
    assert.equal(stats.misaddressed, 1);
    marked.cancel();
    plain.stream.cancel();
  } finally {
    server.close();
  }
});
