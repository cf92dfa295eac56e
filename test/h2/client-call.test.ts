/**
 * The pure client end of a long-lived gRPC client-streaming call
 * (src/h2/client-call.ts), frame by frame: what it sends at start, how
 * messages are framed and held to the server's flow-control windows, and
 * which server frames end the call, answer or break it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type CallEnd, H2ClientCall } from '../../src/h2/client-call.js';
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
import { HeaderDecoder, encodeLiteralFields } from '../../src/h2/hpack.js';

/** A call wired to recorders: frames it sent (after the preface) and events. */
function harness(): {
  call: H2ClientCall;
  sent: () => Frame[];
  events: string[];
  ends: CallEnd[];
} {
  const chunks: Buffer[] = [];
  const events: string[] = [];
  const ends: CallEnd[] = [];
  const call = new H2ClientCall({ path: '/raftpb.RaftTransport/Send', authority: '127.0.0.1:1' }, (b) => chunks.push(b), {
    onSettled: () => events.push('settled'),
    onWindowOpen: () => events.push('windowOpen'),
    onPingAck: () => events.push('pingAck'),
    onEnd: (end) => {
      events.push('end');
      ends.push(end);
    },
  });
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
  return { call, sent, events, ends };
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
  h.call.start();
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
  h.call.start();
  h.sent();
  h.call.receive(settingsFrame([[Setting.MAX_CONCURRENT_STREAMS, 100]]));
  h.call.receive(settingsFrame([]));
  const payload = Buffer.from('12345678');
  h.call.receive(encodeFrame(FrameType.PING, 0, 0, payload));
  h.call.receive(encodeFrame(FrameType.PING, Flag.ACK, 0, payload));
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
  h.call.start();
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
  h.call.start();
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
  h.call.receive(windowUpdateFrame(1, 50_000));
  assert.equal(dataBytes(h.sent()), 0);
  h.call.receive(windowUpdateFrame(0, 50_000));
  frames = h.sent();
  assert.equal(dataBytes(frames), 100_005 - 65_535 + 9);
  assert.deepEqual(h.events, ['windowOpen']);
  assert.equal(h.call.queuedBytes, 0);
});

test('a smaller initial window from the server narrows the stream window, below zero if need be', () => {
  const h = harness();
  h.call.start();
  h.sent();
  assert.equal(h.call.write(Buffer.alloc(30_000)), true);
  h.sent();
  // 65,535 - 30,005 sent; a new initial window of 10,000 leaves 10,000 - 30,005 < 0.
  h.call.receive(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 10_000]]));
  assert.equal(h.call.write(Buffer.from('x')), false);
  assert.equal(dataBytes(h.sent()), 0);
  h.call.receive(windowUpdateFrame(1, 20_005));
  assert.equal(dataBytes(h.sent()), 0, 'back to 0: still nothing');
  h.call.receive(windowUpdateFrame(1, 6));
  assert.equal(dataBytes(h.sent()), 6);
});

test('trailers end the call with their gRPC status and decoded message', () => {
  const h = harness();
  h.call.start();
  h.call.receive(settingsFrame([]));
  const headers = encodeLiteralFields([
    [':status', '200'],
    ['content-type', 'application/grpc+proto'],
  ]);
  h.call.receive(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 1, headers));
  assert.deepEqual(h.ends, []);
  const trailers = encodeLiteralFields([
    ['grpc-status', '9'],
    ['grpc-message', 'batch for node 3 reached node 2%21'],
  ]);
  // Split over HEADERS and CONTINUATION.
  h.call.receive(encodeFrame(FrameType.HEADERS, Flag.END_STREAM, 1, trailers.subarray(0, 10)));
  h.call.receive(encodeFrame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, trailers.subarray(10)));
  assert.deepEqual(h.ends, [{ grpcStatus: 9, reason: 'call ended with gRPC status 9: batch for node 3 reached node 2!' }]);
  assert.equal(h.call.isEnded, true);
  assert.equal(h.call.write(Buffer.from('late')), false);
  h.call.receive(settingsFrame([]));
  assert.deepEqual(h.events, ['settled', 'end'], 'nothing after the end');
});

test('a trailers-only response, RST_STREAM and GOAWAY each end the call once', () => {
  const only = harness();
  only.call.start();
  only.call.receive(
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
  assert.deepEqual(only.ends, [{ grpcStatus: 12, reason: 'call ended with gRPC status 12' }]);

  const reset = harness();
  reset.call.start();
  reset.call.receive(rstStreamFrame(1, H2Error.CANCEL));
  reset.call.receive(rstStreamFrame(1, H2Error.CANCEL));
  assert.deepEqual(reset.ends, [{ grpcStatus: undefined, reason: 'server reset the stream (HTTP/2 error 8)' }]);

  const away = harness();
  away.call.start();
  away.call.receive(goAwayFrame(1, H2Error.NO_ERROR, 'shutting down'));
  assert.deepEqual(away.ends, [{ grpcStatus: undefined, reason: 'server went away (HTTP/2 error 0: shutting down)' }]);
});

test('protocol violations by the server answer GOAWAY and end the call', () => {
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
    h.call.start();
    h.sent();
    h.call.receive(frame);
    const frames = h.sent();
    assert.equal(frames.length, 1, what);
    assert.equal((frames[0] as Frame).type, FrameType.GOAWAY, what);
    assert.equal((frames[0] as Frame).payload.readUInt32BE(4), code, what);
    assert.equal(h.ends.length, 1, what);
    assert.match((h.ends[0] as CallEnd).reason, /^HTTP\/2 protocol error from the server/, what);
  }
});

test('cancel resets the stream, drops what waits and reports no end', () => {
  const h = harness();
  h.call.start();
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
  h.call.receive(windowUpdateFrame(0, 100_000));
  h.call.receive(rstStreamFrame(1, H2Error.CANCEL));
  assert.deepEqual(h.sent(), []);
  assert.deepEqual(h.events, []);
});
