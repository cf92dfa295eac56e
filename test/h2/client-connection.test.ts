/**
 * The pure client end of an HTTP/2 connection carrying gRPC calls
 * (src/h2/client-connection.ts), frame by frame: what it sends at start, how
 * messages are framed and held to the server's flow-control windows, how
 * responses are read and our windows returned, how calls share the
 * connection, and which server frames end a call, the connection, or break it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type CallEnd, type ClientCall, H2ClientConnection } from '../../src/h2/client-connection.js';
import {
  CLIENT_PREFACE,
  DEFAULT_MAX_FRAME_SIZE,
  Flag,
  FrameReader,
  FrameType,
  H2Error,
  Setting,
  type Frame,
  encodeFrame,
  goAwayFrame,
  rstStreamFrame,
  settingsFrame,
  windowUpdateFrame,
} from '../../src/h2/frames.js';
import { frameMessage } from '../../src/h2/grpc-wire.js';
import { HeaderDecoder, encodeLiteralFields } from '../../src/h2/hpack.js';

const SEND_PATH = '/raftpb.RaftTransport/Send';

interface Harness {
  conn: H2ClientConnection;
  /** The first call, opened right after start (as the raft transport's Send). */
  call: ClientCall;
  sent: () => Frame[];
  events: string[];
  ends: CallEnd[];
  /** Opens another call whose events are recorded under `name`. */
  open: (name: string, message?: Uint8Array) => { call: ClientCall; messages: Buffer[] };
}

/** A connection wired to recorders: frames it sent (after the preface) and events. */
function harness(options: { receiveWindowBytes?: number; maxMessageBytes?: number } = {}, openFirst = true): Harness {
  const chunks: Buffer[] = [];
  const events: string[] = [];
  const ends: CallEnd[] = [];
  const conn = new H2ClientConnection({ authority: '127.0.0.1:1', ...options }, (b) => chunks.push(b), {
    onSettled: () => events.push('settled'),
    onPingAck: () => events.push('pingAck'),
    onClose: () => events.push('close'),
  });
  const open = (name: string, message?: Uint8Array): { call: ClientCall; messages: Buffer[] } => {
    const messages: Buffer[] = [];
    const call = conn.openCall(
      { path: SEND_PATH },
      {
        onMessage: (m) => messages.push(m),
        onWindowOpen: () => events.push(`${name}:windowOpen`),
        onEnd: (end) => {
          events.push(`${name}:end`);
          ends.push(end);
        },
      },
      message,
    );
    return { call, messages };
  };
  conn.start();
  const call = openFirst ? open('call').call : (undefined as unknown as ClientCall);
  const reader = new FrameReader(1 << 24);
  let prefaceSkipped = false;
  const sent = (): Frame[] => {
    let all = Buffer.concat(chunks.splice(0));
    if (!prefaceSkipped && all.length >= CLIENT_PREFACE.length) {
      assert.deepEqual(all.subarray(0, CLIENT_PREFACE.length), CLIENT_PREFACE);
      all = all.subarray(CLIENT_PREFACE.length);
      prefaceSkipped = true;
    }
    return reader.push(all);
  };
  return { conn, call, sent, events, ends, open };
}

/** The response headers a gRPC server sends first. */
const RESPONSE_HEADERS = encodeLiteralFields([
  [':status', '200'],
  ['content-type', 'application/grpc+proto'],
]);

function trailers(status: number, message = ''): Buffer {
  return encodeLiteralFields([['grpc-status', String(status)], ...(message === '' ? [] : [['grpc-message', message] as const])]);
}

/** The gRPC messages (prefix stripped) carried by DATA frames, joined in order. */
function messagesOf(frames: Frame[]): Buffer[] {
  let bytes = Buffer.concat(frames.filter((f) => f.type === FrameType.DATA).map((f) => f.payload));
  const out: Buffer[] = [];
  while (bytes.length > 0) {
    assert.equal(bytes[0], 0, 'uncompressed');
    const length = bytes.readUInt32BE(1);
    out.push(bytes.subarray(5, 5 + length));
    bytes = bytes.subarray(5 + length);
  }
  return out;
}

function dataBytes(frames: Frame[]): number {
  return frames.filter((f) => f.type === FrameType.DATA).reduce((n, f) => n + f.payload.length, 0);
}

test('start sends the preface, settings without push, and the request headers on stream 1', () => {
  const h = harness();
    const frames = h.sent();
  assert.deepEqual(
    frames.map((f) => [f.type, f.streamId]),
    [
      [FrameType.SETTINGS, 0],
      [FrameType.HEADERS, 1],
    ],
  );
  const settings = frames[0] as Frame;
  assert.equal(settings.payload.readUInt16BE(0), Setting.ENABLE_PUSH);
  assert.equal(settings.payload.readUInt32BE(2), 0);
  const headers = frames[1] as Frame;
  assert.equal(headers.flags & Flag.END_STREAM, 0, 'the request stays open');
  const fields = new HeaderDecoder().decode(headers.payload);
  assert.deepEqual(
    fields.map((f) => [f.name, f.value]),
    [
      [':method', 'POST'],
      [':scheme', 'http'],
      [':path', '/raftpb.RaftTransport/Send'],
      [':authority', '127.0.0.1:1'],
      ['content-type', 'application/grpc'],
      ['te', 'trailers'],
    ],
  );
});

test('the server settings are acknowledged and reported once; a PING is answered with its payload', () => {
  const h = harness();
  h.sent();
  h.conn.receive(settingsFrame([[Setting.MAX_CONCURRENT_STREAMS, 100]]));
  h.conn.receive(settingsFrame([]));
  const payload = Buffer.from('12345678');
  h.conn.receive(encodeFrame(FrameType.PING, 0, 0, payload));
  h.conn.receive(encodeFrame(FrameType.PING, Flag.ACK, 0, payload));
  const frames = h.sent();
  assert.deepEqual(
    frames.map((f) => [f.type, f.flags]),
    [
      [FrameType.SETTINGS, Flag.ACK],
      [FrameType.SETTINGS, Flag.ACK],
      [FrameType.PING, Flag.ACK],
    ],
  );
  assert.deepEqual((frames[2] as Frame).payload, payload);
  assert.deepEqual(h.events, ['settled', 'pingAck']);
});

test('messages go out whole and in order while the windows admit them', () => {
  const h = harness();
  h.sent();
  const bodies = [Buffer.from('a'), Buffer.alloc(0), Buffer.alloc(1000, 7)];
  for (const b of bodies) assert.equal(h.call.write(b), true);
  const frames = h.sent();
  assert.equal(frames.length, 3, 'one DATA frame per small message');
  assert.ok(frames.every((f) => f.type === FrameType.DATA && f.streamId === 1 && f.flags === 0));
  assert.deepEqual(messagesOf(frames), bodies);
});

test('a message above the frame size spans several frames; past the windows it waits for WINDOW_UPDATE', () => {
  const h = harness();
  h.sent();
  const big = Buffer.alloc(100_000);
  for (let i = 0; i < big.length; i++) big[i] = i % 251;
  assert.equal(h.call.write(big), false, 'the default windows hold 65,535 bytes');
  let frames = h.sent();
  assert.ok(frames.every((f) => f.payload.length <= DEFAULT_MAX_FRAME_SIZE));
  assert.equal(dataBytes(frames), 65_535);
  assert.equal(h.call.queuedBytes, 100_005 - 65_535);
  assert.equal(h.call.write(Buffer.from('next')), false, 'later messages queue behind');

  // The stream's window alone does not free anything: the connection's is empty too.
  h.conn.receive(windowUpdateFrame(1, 50_000));
  assert.equal(dataBytes(h.sent()), 0);
  h.conn.receive(windowUpdateFrame(0, 50_000));
  frames = h.sent();
  assert.equal(dataBytes(frames), 100_005 - 65_535 + 9);
  assert.deepEqual(h.events, ['call:windowOpen']);
  assert.equal(h.call.queuedBytes, 0);
});

test('a smaller initial window from the server narrows the stream window, below zero if need be', () => {
  const h = harness();
  h.sent();
  assert.equal(h.call.write(Buffer.alloc(30_000)), true);
  h.sent();
  // 65,535 - 30,005 sent; a new initial window of 10,000 leaves 10,000 - 30,005 < 0.
  h.conn.receive(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 10_000]]));
  assert.equal(h.call.write(Buffer.from('x')), false);
  assert.equal(dataBytes(h.sent()), 0);
  h.conn.receive(windowUpdateFrame(1, 20_005));
  assert.equal(dataBytes(h.sent()), 0, 'back to 0: still nothing');
  h.conn.receive(windowUpdateFrame(1, 6));
  assert.equal(dataBytes(h.sent()), 6);
});

test('trailers end the call with their gRPC status and decoded message', () => {
  const h = harness();
    h.conn.receive(settingsFrame([]));
  const headers = encodeLiteralFields([
    [':status', '200'],
    ['content-type', 'application/grpc+proto'],
  ]);
  h.conn.receive(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 1, headers));
  assert.deepEqual(h.ends, []);
  const trailers = encodeLiteralFields([
    ['grpc-status', '9'],
    ['grpc-message', 'batch for node 3 reached node 2%21'],
  ]);
  // Split over HEADERS and CONTINUATION.
  h.conn.receive(encodeFrame(FrameType.HEADERS, Flag.END_STREAM, 1, trailers.subarray(0, 10)));
  h.conn.receive(encodeFrame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, trailers.subarray(10)));
  assert.deepEqual(h.ends, [{ grpcStatus: 9, details: 'batch for node 3 reached node 2!', reason: 'call ended with gRPC status 9: batch for node 3 reached node 2!' }]);
  assert.equal(h.call.ended, true);
  assert.equal(h.call.write(Buffer.from('late')), false);
  h.conn.receive(settingsFrame([]));
  assert.deepEqual(h.events, ['settled', 'call:end'], 'nothing after the end');
});

test('a trailers-only response, RST_STREAM and a GOAWAY below the call each end the call once', () => {
  const only = harness();
    only.conn.receive(
    encodeFrame(
      FrameType.HEADERS,
      Flag.END_HEADERS | Flag.END_STREAM,
      1,
      encodeLiteralFields([
        [':status', '200'],
        ['grpc-status', '12'],
      ]),
    ),
  );
  assert.deepEqual(only.ends, [{ grpcStatus: 12, details: '', reason: 'call ended with gRPC status 12' }]);

  const reset = harness();
    reset.conn.receive(rstStreamFrame(1, H2Error.CANCEL));
  reset.conn.receive(rstStreamFrame(1, H2Error.CANCEL));
  assert.deepEqual(reset.ends, [{ grpcStatus: undefined, details: '', reason: 'server reset the stream (HTTP/2 error 8)' }]);

  const away = harness();
    away.conn.receive(goAwayFrame(0, H2Error.NO_ERROR, 'shutting down'));
  assert.deepEqual(away.ends, [{ grpcStatus: undefined, details: '', reason: 'server went away (HTTP/2 error 0: shutting down)' }]);
  assert.deepEqual(away.events, ['call:end', 'close'], 'a connection with no call left closes');
});

test('protocol violations by the server answer GOAWAY and end the call and the connection', () => {
  const cases: Array<[string, Buffer, number]> = [
    ['WINDOW_UPDATE of 0', windowUpdateFrame(0, 0), H2Error.PROTOCOL_ERROR],
    ['window overflow', windowUpdateFrame(0, 0x7fff_ffff), H2Error.FLOW_CONTROL_ERROR],
    ['PUSH_PROMISE', encodeFrame(FrameType.PUSH_PROMISE, Flag.END_HEADERS, 1, Buffer.alloc(4)), H2Error.PROTOCOL_ERROR],
    ['stray CONTINUATION', encodeFrame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, Buffer.alloc(0)), H2Error.PROTOCOL_ERROR],
    ['max frame size too small', settingsFrame([[Setting.MAX_FRAME_SIZE, 100]]), H2Error.PROTOCOL_ERROR],
    ['bad HPACK', encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 1, Buffer.of(0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)), H2Error.COMPRESSION_ERROR],
    ['short PING', encodeFrame(FrameType.PING, 0, 0, Buffer.alloc(4)), H2Error.PROTOCOL_ERROR],
  ];
  for (const [what, frame, code] of cases) {
    const h = harness();
    h.sent();
    h.conn.receive(frame);
    const frames = h.sent();
    assert.equal(frames.length, 1, what);
    assert.equal((frames[0] as Frame).type, FrameType.GOAWAY, what);
    assert.equal((frames[0] as Frame).payload.readUInt32BE(4), code, what);
    assert.equal(h.ends.length, 1, what);
    assert.match((h.ends[0] as CallEnd).reason, /^HTTP\/2 protocol error from the server/, what);
    assert.deepEqual(h.events.slice(-2), ['call:end', 'close'], what);
    assert.equal(h.conn.isClosed, true, what);
  }
});

test('cancel resets the stream, drops what waits and reports no end', () => {
  const h = harness();
  h.sent();
  h.call.write(Buffer.alloc(70_000));
  h.sent();
  h.call.cancel();
  const frames = h.sent();
  assert.deepEqual(
    frames.map((f) => [f.type, f.streamId, f.payload.readUInt32BE(0)]),
    [[FrameType.RST_STREAM, 1, H2Error.CANCEL]],
  );
  assert.equal(h.call.queuedBytes, 0);
  h.conn.receive(windowUpdateFrame(0, 100_000));
  h.conn.receive(rstStreamFrame(1, H2Error.CANCEL));
  assert.deepEqual(h.sent(), []);
  assert.deepEqual(h.events, []);
});

test('a unary call sends its headers and its one message in one write, half-closed; response messages split over frames come out whole', () => {
  const h = harness({}, false);
  h.sent();
  const chunksBefore = h.sent().length;
  assert.equal(chunksBefore, 0);
  const { call, messages } = h.open('unary', Buffer.from('request'));
  const frames = h.sent();
  assert.deepEqual(
    frames.map((f) => [f.type, f.streamId, f.flags]),
    [
      [FrameType.HEADERS, 1, Flag.END_HEADERS],
      [FrameType.DATA, 1, Flag.END_STREAM],
    ],
  );
  assert.deepEqual(messagesOf(frames), [Buffer.from('request')]);
  assert.equal(call.write(Buffer.from('more')), false, 'a half-closed call takes no more messages');

  h.conn.receive(settingsFrame([]));
  h.conn.receive(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 1, RESPONSE_HEADERS));
  const wire = Buffer.concat([frameMessage(Buffer.from('first answer')), frameMessage(Buffer.alloc(0)), frameMessage(Buffer.from('third'))]);
  h.conn.receive(encodeFrame(FrameType.DATA, 0, 1, wire.subarray(0, 3)));
  assert.deepEqual(messages, [], 'a prefix alone is not a message');
  h.conn.receive(encodeFrame(FrameType.DATA, 0, 1, wire.subarray(3, 20)));
  h.conn.receive(encodeFrame(FrameType.DATA, 0, 1, wire.subarray(20)));
  assert.deepEqual(messages, [Buffer.from('first answer'), Buffer.alloc(0), Buffer.from('third')]);
  h.conn.receive(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, trailers(0)));
  assert.deepEqual(h.ends, [{ grpcStatus: 0, details: '', reason: 'call ended with gRPC status 0' }]);
  assert.equal(h.conn.isClosed, false, 'the connection outlives its calls');
});

test('end half-closes a streaming call with an empty DATA frame; responses still arrive', () => {
  const h = harness();
  h.sent();
  assert.equal(h.call.write(Buffer.from('a')), true);
  h.call.end();
  const frames = h.sent();
  assert.deepEqual(
    frames.map((f) => [f.type, f.flags, f.payload.length]),
    [
      [FrameType.DATA, 0, 6],
      [FrameType.DATA, Flag.END_STREAM, 0],
    ],
  );
  h.conn.receive(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 1, RESPONSE_HEADERS));
  h.conn.receive(encodeFrame(FrameType.DATA, 0, 1, frameMessage(Buffer.from('answer'))));
  assert.deepEqual(h.ends, []);
});

test('our receive window is advertised at start and returned as response bytes are read', () => {
  const h = harness({ receiveWindowBytes: 1 << 20 }, false);
  const start = h.sent();
  assert.deepEqual(
    start.map((f) => f.type),
    [FrameType.SETTINGS, FrameType.WINDOW_UPDATE],
  );
  const settings = start[0] as Frame;
  const values = new Map<number, number>();
  for (let i = 0; i < settings.payload.length; i += 6) values.set(settings.payload.readUInt16BE(i), settings.payload.readUInt32BE(i + 2));
  assert.equal(values.get(Setting.INITIAL_WINDOW_SIZE), 1 << 20);
  assert.equal((start[1] as Frame).streamId, 0);
  assert.equal((start[1] as Frame).payload.readUInt32BE(0), (1 << 20) - 65_535);

  const { messages } = h.open('stream');
  h.sent();
  h.conn.receive(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 1, RESPONSE_HEADERS));
  // 40 frames of 16,384 bytes: 655,360 bytes, one message of 655,355.
  const wire = frameMessage(Buffer.alloc(655_355, 3));
  for (let i = 0; i < 40; i++) h.conn.receive(encodeFrame(FrameType.DATA, 0, 1, wire.subarray(i * 16_384, (i + 1) * 16_384)));
  assert.equal(messages.length, 1);
  assert.equal((messages[0] as Buffer).length, 655_355);
  const updates = h.sent().filter((f) => f.type === FrameType.WINDOW_UPDATE);
  assert.deepEqual(
    updates.map((f) => [f.streamId, f.payload.readUInt32BE(0)]),
    [
      [0, 524_288],
      [1, 524_288],
    ],
    'each window is returned once half of it has been read',
  );
});

test('calls beyond the server\'s MAX_CONCURRENT_STREAMS wait, in order, for streams to close', () => {
  const h = harness({}, false);
  h.conn.receive(settingsFrame([[Setting.MAX_CONCURRENT_STREAMS, 1]]));
  h.sent();
  const a = h.open('a', Buffer.from('A'));
  const b = h.open('b', Buffer.from('B'));
  const c = h.open('c', Buffer.from('C'));
  let frames = h.sent();
  assert.deepEqual(
    frames.map((f) => [f.type, f.streamId]),
    [
      [FrameType.HEADERS, 1],
      [FrameType.DATA, 1],
    ],
  );
  assert.equal(h.conn.callCount, 3);
  h.conn.receive(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, encodeLiteralFields([[':status', '200'], ['grpc-status', '0']])));
  frames = h.sent();
  assert.deepEqual(
    frames.map((f) => [f.type, f.streamId]),
    [
      [FrameType.HEADERS, 3],
      [FrameType.DATA, 3],
    ],
  );
  assert.deepEqual(messagesOf(frames), [Buffer.from('B')]);
  // A cancelled call frees its slot too.
  b.call.cancel();
  frames = h.sent();
  assert.deepEqual(
    frames.map((f) => [f.type, f.streamId]),
    [
      [FrameType.RST_STREAM, 3],
      [FrameType.HEADERS, 5],
      [FrameType.DATA, 5],
    ],
  );
  assert.equal(a.call.ended, true);
  assert.equal(c.call.id, 5);
  assert.deepEqual(h.events, ['settled', 'a:end']);
});

test('a GOAWAY lets calls at or below its last stream finish; later and new calls end at once', () => {
  const h = harness();
  const second = h.open('second');
  h.sent();
  assert.equal(second.call.id, 3);
  h.conn.receive(goAwayFrame(1, H2Error.NO_ERROR, 'draining'));
  assert.deepEqual(h.events, ['second:end']);
  assert.equal(h.conn.isDraining, true);
  h.open('late');
  assert.deepEqual(h.events, ['second:end', 'late:end'], 'no stream opens on a draining connection');
  assert.equal(h.sent().length, 0);
  h.conn.receive(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, encodeLiteralFields([[':status', '200'], ['grpc-status', '0']])));
  assert.deepEqual(h.events, ['second:end', 'late:end', 'call:end', 'close'], 'the connection closes with its last call');
  assert.equal((h.ends[2] as CallEnd).grpcStatus, 0);
});

test('a response message above the limit ends its call with RESOURCE_EXHAUSTED and resets its stream; other calls go on', () => {
  const h = harness({ maxMessageBytes: 100 });
  const other = h.open('other');
  h.sent();
  h.conn.receive(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 1, RESPONSE_HEADERS));
  h.conn.receive(encodeFrame(FrameType.DATA, 0, 1, frameMessage(Buffer.alloc(1000))));
  assert.deepEqual(h.ends, [
    { grpcStatus: 8, details: 'grpc: received message larger than max (1000 vs. 100)', reason: 'grpc: received message larger than max (1000 vs. 100)' },
  ]);
  assert.deepEqual(
    h.sent().map((f) => [f.type, f.streamId, f.payload.readUInt32BE(0)]),
    [[FrameType.RST_STREAM, 1, H2Error.CANCEL]],
  );
  // Frames still in flight on the reset stream are dropped; the other call reads its answer.
  h.conn.receive(encodeFrame(FrameType.DATA, 0, 1, Buffer.alloc(10)));
  h.conn.receive(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 3, RESPONSE_HEADERS));
  h.conn.receive(encodeFrame(FrameType.DATA, 0, 3, frameMessage(Buffer.from('fits'))));
  assert.deepEqual(other.messages, [Buffer.from('fits')]);
  assert.equal(h.conn.isClosed, false);
});

test('DATA or HEADERS on a stream the client never opened break the connection', () => {
  for (const frame of [encodeFrame(FrameType.DATA, 0, 7, Buffer.alloc(1)), encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 2, RESPONSE_HEADERS)]) {
    const h = harness();
    h.sent();
    h.conn.receive(frame);
    assert.equal(h.conn.isClosed, true);
    assert.equal((h.sent()[0] as Frame).type, FrameType.GOAWAY);
  }
});

test('a write to a call waiting for its stream is refused, and onWindowOpen follows once the stream opens and takes it', () => {
  const h = harness({}, false);
  h.conn.receive(settingsFrame([[Setting.MAX_CONCURRENT_STREAMS, 1]]));
  h.open('a');
  const b = h.open('b');
  h.sent();
  assert.equal(b.call.id, 0, 'b waits for a slot');
  assert.equal(b.call.write(Buffer.from('queued')), false);
  assert.deepEqual(h.events, ['settled']);
  h.conn.receive(rstStreamFrame(1, H2Error.REFUSED_STREAM));
  const frames = h.sent();
  assert.deepEqual(
    frames.map((f) => [f.type, f.streamId]),
    [
      [FrameType.HEADERS, 3],
      [FrameType.DATA, 3],
    ],
  );
  assert.deepEqual(messagesOf(frames), [Buffer.from('queued')]);
  assert.deepEqual(h.events, ['settled', 'a:end', 'b:windowOpen']);
});
