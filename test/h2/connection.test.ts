/**
 * The HTTP/2 server connection (src/h2/connection.ts) driven frame by frame:
 * the preface exchange, streams and their header blocks (CONTINUATION,
 * padding, priority), flow control both ways (the client's windows and
 * frame size bound what is sent; our windows bound what the client may
 * send and are credited back), SETTINGS, PING, RST_STREAM, GOAWAY, the
 * connection errors answered with GOAWAY, and input cut at random points.
 * Also HPACK's full decoder against RFC 7541's examples.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { H2Connection, type H2ConnectionOptions, type H2Output, H2Stream, STREAM_QUEUED_BYTES_HIGH } from '../../src/h2/connection.js';
import {
  CLIENT_PREFACE,
  encodeFrame,
  Flag,
  type Frame,
  FrameReader,
  FrameType,
  H2Error,
  Setting,
  settingsFrame,
  windowUpdateFrame,
} from '../../src/h2/frames.js';
import { encodeLiteralFields, HeaderDecoder, HpackError, huffmanEncode, writeInteger } from '../../src/h2/hpack.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Collects what the connection sends, as frames. */
class Captured implements H2Output {
  congested = false;
  ended = false;
  private readonly reader = new FrameReader(1 << 24);
  readonly frames: Frame[] = [];
  write(bytes: Buffer): void {
    this.frames.push(...this.reader.push(Buffer.from(bytes)));
  }
  end(): void {
    this.ended = true;
  }
  /** Frames sent since the last call. */
  private seen = 0;
  take(): Frame[] {
    const out = this.frames.slice(this.seen);
    this.seen = this.frames.length;
    return out;
  }
}

interface Events {
  streams: H2Stream[];
  log: string[];
}

function connect(options: Partial<H2ConnectionOptions> = {}): { c: H2Connection; out: Captured; ev: Events } {
  const out = new Captured();
  const ev: Events = { streams: [], log: [] };
  const c = new H2Connection(out, {
    streamWindowBytes: 1000,
    connectionWindowBytes: 100_000,
    headerBlockBytesMax: 4096,
    onStream: (s) => {
      ev.streams.push(s);
      ev.log.push(`open ${s.id}`);
      s.onData = (d) => ev.log.push(`data ${s.id} ${d.toString()}`);
      s.onEnd = () => ev.log.push(`end ${s.id}`);
      s.onClose = (reset) => ev.log.push(`close ${s.id}${reset ? ' reset' : ''}`);
    },
    onClose: (err) => ev.log.push(`connection closed${err === undefined ? '' : ` ${err.code}`}`),
    ...options,
  });
  return { c, out, ev };
}

const requestBlock = (path = '/svc/M'): Buffer =>
  encodeLiteralFields([
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', path],
    [':authority', 'localhost'],
    ['content-type', 'application/grpc'],
  ]);

/** A connected client: preface and (optionally adjusted) SETTINGS sent, our preface taken. */
function started(settings: Array<[number, number]> = [], options: Partial<H2ConnectionOptions> = {}): ReturnType<typeof connect> {
  const t = connect(options);
  t.c.receive(Buffer.concat([CLIENT_PREFACE, settingsFrame(settings)]));
  t.out.take();
  return t;
}

const headers = (id: number, endStream = false, block = requestBlock()): Buffer =>
  encodeFrame(FrameType.HEADERS, Flag.END_HEADERS | (endStream ? Flag.END_STREAM : 0), id, block);
const data = (id: number, text: string, endStream = false): Buffer => encodeFrame(FrameType.DATA, endStream ? Flag.END_STREAM : 0, id, Buffer.from(text));
const goAwayCode = (f: Frame | undefined): number | undefined => (f?.type === FrameType.GOAWAY ? f.payload.readUInt32BE(4) : undefined);

describe('HPACK decoder', () => {
  it('decodes RFC 7541 C.3 (raw strings) and C.4 (Huffman), keeping the dynamic table across blocks', () => {
    for (const blocks of [
      ['828684410f7777772e6578616d706c652e636f6d', '828684be58086e6f2d6361636865', '828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565'],
      ['828684418cf1e3c2e5f23a6ba0ab90f4ff', '828684be5886a8eb10649cbf', '828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf'],
    ]) {
      const d = new HeaderDecoder();
      const decoded = blocks.map((b) => d.decode(hex(b)).map((f) => `${f.name}: ${f.value}`));
      assert.deepEqual(decoded, [
        [':method: GET', ':scheme: http', ':path: /', ':authority: www.example.com'],
        [':method: GET', ':scheme: http', ':path: /', ':authority: www.example.com', 'cache-control: no-cache'],
        [':method: GET', ':scheme: https', ':path: /index.html', ':authority: www.example.com', 'custom-key: custom-value'],
      ]);
    }
  });

  it('evicts by size, honours size updates up to its limit and refuses bad indexes', () => {
    const d = new HeaderDecoder(100);
    // Two literals with incremental indexing, 32 + 1 + 10 = 43 bytes each: both fit; a third evicts the first.
    const lit = (name: string, value: string): Buffer =>
      Buffer.concat([Buffer.of(0x40), writeInteger(name.length, 7, 0), Buffer.from(name), writeInteger(value.length, 7, 0), Buffer.from(value)]);
    d.decode(Buffer.concat([lit('a', '0123456789'), lit('b', '0123456789')]));
    assert.deepEqual(d.decode(Buffer.of(0xbe, 0xbf)), [
      { name: 'b', value: '0123456789' },
      { name: 'a', value: '0123456789' },
    ]);
    d.decode(lit('c', '0123456789'));
    assert.throws(() => d.decode(Buffer.of(0xc0)), HpackError); // index 64: 'a' was evicted
    assert.throws(() => d.decode(writeInteger(200, 5, 0x20)), HpackError); // size update above the limit
    assert.throws(() => d.decode(Buffer.concat([Buffer.of(0x82), writeInteger(0, 5, 0x20)])), HpackError); // update after a field
    d.decode(writeInteger(0, 5, 0x20)); // empties the table
    assert.throws(() => d.decode(Buffer.of(0xbe)), HpackError);
    assert.throws(() => d.decode(Buffer.of(0x80)), HpackError); // index 0
  });

  it('reads its own never-indexed literals, Huffman-coded values from other encoders too', () => {
    const block = encodeLiteralFields([
      [':status', '200'],
      ['grpc-status', '0'],
      ['x-custom', 'value'],
    ]);
    const huff = huffmanEncode(Buffer.from('gzip'));
    const withHuffman = Buffer.concat([block, Buffer.of(0x10, 0x0d), Buffer.from('grpc-encoding'), writeInteger(huff.length, 7, 0x80), huff]);
    assert.deepEqual(
      new HeaderDecoder().decode(withHuffman).map((f) => [f.name, f.value]),
      [
        [':status', '200'],
        ['grpc-status', '0'],
        ['x-custom', 'value'],
        ['grpc-encoding', 'gzip'],
      ],
    );
  });
});

describe('HTTP/2 server connection', () => {
  it('sends its SETTINGS and connection window first, acknowledges the client SETTINGS, and refuses a bad preface', () => {
    const { c, out } = connect();
    const first = out.take();
    assert.equal(first[0]?.type, FrameType.SETTINGS);
    assert.equal(first[1]?.type, FrameType.WINDOW_UPDATE);
    assert.equal(first[1]?.payload.readUInt32BE(0), 100_000 - 65_535);
    c.receive(Buffer.concat([CLIENT_PREFACE, settingsFrame([])]));
    const ack = out.take();
    assert.equal(ack.length, 1);
    assert.equal(ack[0]?.type, FrameType.SETTINGS);
    assert.equal(ack[0]?.flags, Flag.ACK);

    const bad = connect();
    bad.c.receive(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    assert.equal(goAwayCode(bad.out.take().at(-1)), H2Error.PROTOCOL_ERROR);
    assert.ok(bad.out.ended);
    assert.ok(bad.c.closed);
  });

  it('opens streams from HEADERS (CONTINUATION, padding, priority) and passes data, trailers and END_STREAM on', () => {
    const { c, ev } = started();
    const block = requestBlock('/a/B');
    const padded = Buffer.concat([Buffer.of(3), Buffer.alloc(5), block.subarray(0, 10), Buffer.alloc(3)]); // pad length, priority, fragment, padding
    c.receive(encodeFrame(FrameType.HEADERS, Flag.PADDED | Flag.PRIORITY, 1, padded));
    assert.deepEqual(ev.log, []);
    c.receive(encodeFrame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, block.subarray(10)));
    assert.equal(ev.streams[0]?.header(':path'), '/a/B');
    c.receive(Buffer.concat([data(1, 'hello'), encodeFrame(FrameType.DATA, Flag.PADDED, 1, Buffer.concat([Buffer.of(2), Buffer.from('x'), Buffer.alloc(2)]))]));
    c.receive(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, encodeLiteralFields([['x-trailer', '1']])));
    c.receive(headers(3, true));
    // A block on a lower id is for a stream already closed (late trailers of a call we ended): decoded, then dropped.
    c.receive(Buffer.concat([headers(7, true), headers(5, true)]));
    assert.deepEqual(ev.log, ['open 1', 'data 1 hello', 'data 1 x', 'end 1', 'open 3', 'end 3', 'open 7', 'end 7']);
    assert.equal(c.closed, false);
  });

  it('cuts what it sends to the client windows and frame size, then sends trailers and closes the stream', () => {
    const { c, out, ev } = started([[Setting.INITIAL_WINDOW_SIZE, 10]]);
    c.receive(headers(1, true));
    const s = ev.streams[0] as H2Stream;
    s.respond(encodeLiteralFields([[':status', '200']]));
    s.write(Buffer.from('0123456789abcdefghijklmno'));
    s.end(encodeLiteralFields([['grpc-status', '0']]));
    const sent = out.take();
    assert.deepEqual(sent.map((f) => [f.type, f.payload.length]), [[FrameType.HEADERS, 5], [FrameType.DATA, 10]]);
    c.receive(windowUpdateFrame(1, 5));
    assert.deepEqual(out.take().map((f) => f.payload.toString()), ['abcde']);
    // SETTINGS raising the initial window moves open streams' windows by the difference.
    c.receive(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 100]]));
    const rest = out.take();
    assert.deepEqual(rest.map((f) => f.type), [FrameType.SETTINGS, FrameType.DATA, FrameType.HEADERS]);
    assert.equal(rest[1]?.payload.toString(), 'fghijklmno');
    assert.equal(rest[2]?.flags, Flag.END_STREAM | Flag.END_HEADERS);
    assert.deepEqual(ev.log, ['open 1', 'end 1', 'close 1']);
    assert.equal(c.streamCount, 0);
  });

  it('holds data beyond the connection window until the client credits it, and splits frames at SETTINGS_MAX_FRAME_SIZE', () => {
    const { c, out, ev } = started([[Setting.INITIAL_WINDOW_SIZE, 1 << 20]]);
    c.receive(Buffer.concat([headers(1, true), headers(3, true)]));
    const [a, b] = ev.streams as [H2Stream, H2Stream];
    a.write(Buffer.alloc(50_000, 1));
    b.write(Buffer.alloc(50_000, 2));
    const sizes = (fs: Frame[]): number[] => fs.filter((f) => f.type === FrameType.DATA).map((f) => f.payload.length);
    // The connection's window is 65,535 until the client raises it.
    assert.deepEqual(sizes(out.take()), [16_384, 16_384, 16_384, 848, 15_535]);
    assert.equal(b.pendingBytes, 34_465);
    c.receive(windowUpdateFrame(0, 40_000));
    assert.deepEqual(sizes(out.take()), [16_384, 16_384, 1_697]);
    assert.equal(b.pendingBytes, 0);
    c.receive(settingsFrame([[Setting.MAX_FRAME_SIZE, 20_000]]));
    a.write(Buffer.alloc(30_000));
    assert.deepEqual(sizes(out.take()), [5_535]);
    c.receive(windowUpdateFrame(0, 100_000));
    assert.deepEqual(sizes(out.take()), [20_000, 4_465]);
  });

  it('tells a writer that waited when the stream can take more, whatever frees it', () => {
    const { c, out, ev } = started([[Setting.INITIAL_WINDOW_SIZE, 10_000]]);
    c.receive(Buffer.concat([headers(1, true), windowUpdateFrame(0, 1 << 20)]));
    const s = ev.streams[0] as H2Stream;
    let wakes = 0;
    s.onWritable = () => wakes++;
    s.write(Buffer.alloc(STREAM_QUEUED_BYTES_HIGH + 20_000));
    assert.equal(s.writable, false);
    wakes = 0;
    // Its own window: 10,000 more leaves it above the mark, 20,000 more below it, window exhausted again.
    c.receive(windowUpdateFrame(1, 10_000));
    assert.equal(wakes, 0);
    c.receive(windowUpdateFrame(1, 20_000));
    assert.ok(s.writable);
    assert.ok(wakes >= 1, 'woken when its window brought it under the mark');
    // The transport: data queued while it is congested waits, and the writer is told once it drains.
    s.write(Buffer.alloc(STREAM_QUEUED_BYTES_HIGH));
    c.receive(windowUpdateFrame(1, 1 << 24));
    out.congested = true;
    s.write(Buffer.alloc(10));
    assert.equal(s.writable, false);
    wakes = 0;
    out.congested = false;
    c.drained();
    assert.equal(s.pendingBytes, 0);
    assert.ok(wakes >= 1, 'woken when the transport drained');
  });

  it('answers PING, ignores unknown frames and PRIORITY, and closes a stream the client resets', () => {
    const { c, out, ev } = started();
    c.receive(encodeFrame(FrameType.PING, 0, 0, Buffer.from('12345678')));
    const pong = out.take();
    assert.equal(pong[0]?.type, FrameType.PING);
    assert.equal(pong[0]?.flags, Flag.ACK);
    assert.equal(pong[0]?.payload.toString(), '12345678');
    c.receive(Buffer.concat([encodeFrame(0xfa, 0, 0, Buffer.from('x')), headers(1), encodeFrame(FrameType.PRIORITY, 0, 1, Buffer.alloc(5))]));
    const rst = Buffer.alloc(4);
    rst.writeUInt32BE(H2Error.CANCEL);
    c.receive(encodeFrame(FrameType.RST_STREAM, 0, 1, rst));
    assert.deepEqual(ev.log, ['open 1', 'close 1 reset']);
    (ev.streams[0] as H2Stream).write(Buffer.from('late'));
    assert.deepEqual(out.take(), []);
  });

  it('bounds what the client may send by our windows and credits consumed bytes back', () => {
    const { c, out, ev } = started();
    c.receive(headers(1));
    const s = ev.streams[0] as H2Stream;
    c.receive(data(1, 'x'.repeat(400)));
    s.credit(400);
    assert.deepEqual(out.take(), []); // less than half the window consumed
    c.receive(data(1, 'y'.repeat(200)));
    s.credit(200);
    const wu = out.take();
    assert.equal(wu[0]?.type, FrameType.WINDOW_UPDATE);
    assert.equal(wu[0]?.streamId, 1);
    assert.equal(wu[0]?.payload.readUInt32BE(0), 600);
    // 1,000 credited in all now; 1,001 bytes unconsumed overflow the window.
    c.receive(data(1, 'z'.repeat(1001)));
    const reset = out.take();
    assert.equal(reset[0]?.type, FrameType.RST_STREAM);
    assert.equal(reset[0]?.payload.readUInt32BE(0), H2Error.FLOW_CONTROL_ERROR);
    assert.equal(ev.log.at(-1), 'close 1 reset');
  });

  it('credits the connection window as data arrives, half a window at a time', () => {
    const { c, out } = started([], { connectionWindowBytes: 65_535, streamWindowBytes: 1 << 20 });
    c.receive(headers(1));
    for (let i = 0; i < 4; i++) c.receive(encodeFrame(FrameType.DATA, 0, 1, Buffer.alloc(16_000)));
    const updates = out.take().filter((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 0);
    assert.deepEqual(updates.map((f) => f.payload.readUInt32BE(0)), [48_000]);
  });

  it('answers protocol violations with GOAWAY and the matching error code', () => {
    const cases: Array<[string, Buffer, number]> = [
      ['DATA on stream 0', encodeFrame(FrameType.DATA, 0, 0, Buffer.from('x')), H2Error.PROTOCOL_ERROR],
      ['an even stream id', headers(2), H2Error.PROTOCOL_ERROR],
      ['DATA on an idle stream', data(7, 'x'), H2Error.PROTOCOL_ERROR],
      ['a frame above our frame size', encodeFrame(FrameType.DATA, 0, 1, Buffer.alloc(16_385)), H2Error.FRAME_SIZE_ERROR],
      ['a header block interrupted', Buffer.concat([encodeFrame(FrameType.HEADERS, 0, 1, requestBlock()), data(1, 'x')]), H2Error.PROTOCOL_ERROR],
      ['a malformed header block', encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 1, Buffer.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)), H2Error.COMPRESSION_ERROR],
      ['a header block above the limit', encodeFrame(FrameType.HEADERS, 0, 1, Buffer.alloc(4097)), H2Error.ENHANCE_YOUR_CALM],
      ['a connection window overflow', windowUpdateFrame(0, 0x7fff_ffff), H2Error.FLOW_CONTROL_ERROR],
      ['a window update of 0', windowUpdateFrame(0, 0), H2Error.PROTOCOL_ERROR],
      ['a PING of 7 bytes', encodeFrame(FrameType.PING, 0, 0, Buffer.alloc(7)), H2Error.FRAME_SIZE_ERROR],
      ['a SETTINGS of 5 bytes', encodeFrame(FrameType.SETTINGS, 0, 0, Buffer.alloc(5)), H2Error.FRAME_SIZE_ERROR],
      ['MAX_FRAME_SIZE below 16,384', settingsFrame([[Setting.MAX_FRAME_SIZE, 100]]), H2Error.PROTOCOL_ERROR],
      ['INITIAL_WINDOW_SIZE above 2^31-1', settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 0x8000_0000]]), H2Error.FLOW_CONTROL_ERROR],
      ['PUSH_PROMISE', encodeFrame(FrameType.PUSH_PROMISE, 0, 1, Buffer.alloc(4)), H2Error.PROTOCOL_ERROR],
    ];
    for (const [name, bytes, code] of cases) {
      const { c, out, ev } = started();
      c.receive(bytes);
      assert.equal(goAwayCode(out.take().at(-1)), code, name);
      assert.ok(out.ended && c.closed, name);
      assert.equal(ev.log.at(-1), `connection closed ${code}`, name);
    }
    const first = connect();
    first.c.receive(Buffer.concat([CLIENT_PREFACE, encodeFrame(FrameType.PING, 0, 0, Buffer.alloc(8))]));
    assert.equal(goAwayCode(first.out.take().at(-1)), H2Error.PROTOCOL_ERROR, 'first frame not SETTINGS');
  });

  it('ends the connection, not the process, when a stream callback throws', () => {
    const { c, out, ev } = started([], {
      onStream: () => {
        throw new Error('handler bug');
      },
      onClose: (err) => ev.log.push(`connection closed ${err?.code} ${err?.message}`),
    });
    c.receive(headers(1, true));
    assert.equal(goAwayCode(out.take().at(-1)), H2Error.INTERNAL_ERROR);
    assert.deepEqual(ev.log, [`connection closed ${H2Error.INTERNAL_ERROR} server failure: handler bug`]);
  });

  it('on goAway refuses new streams, lets open ones finish, then ends', () => {
    const { c, out, ev } = started();
    c.receive(headers(1, true));
    c.goAway();
    const ga = out.take().at(-1);
    assert.equal(goAwayCode(ga), H2Error.NO_ERROR);
    assert.equal(ga?.payload.readUInt32BE(0), 1);
    c.receive(headers(3, true));
    const refused = out.take();
    assert.equal(refused[0]?.type, FrameType.RST_STREAM);
    assert.equal(refused[0]?.payload.readUInt32BE(0), H2Error.REFUSED_STREAM);
    assert.equal(out.ended, false);
    (ev.streams[0] as H2Stream).end(encodeLiteralFields([['grpc-status', '0']]));
    assert.ok(out.ended);
    assert.deepEqual(ev.log, ['open 1', 'end 1', 'close 1', 'connection closed']);
  });

  it('resets a stream it finished while the client still sends (RST_STREAM NO_ERROR), and drops the late data', () => {
    const { c, out, ev } = started();
    c.receive(headers(1));
    (ev.streams[0] as H2Stream).respond(encodeLiteralFields([['grpc-status', '8']]), true);
    const sent = out.take();
    assert.deepEqual(sent.map((f) => f.type), [FrameType.HEADERS, FrameType.RST_STREAM]);
    assert.equal(sent[1]?.payload.readUInt32BE(0), H2Error.NO_ERROR);
    c.receive(data(1, 'late'));
    assert.deepEqual(ev.log, ['open 1', 'close 1']);
    assert.equal(c.closed, false);
  });

  it('reads the same frames whatever the input is cut into', () => {
    let seed = 7;
    const random = (): number => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const bytes = Buffer.concat([
      CLIENT_PREFACE,
      settingsFrame([[Setting.MAX_FRAME_SIZE, 20_000]]),
      headers(1),
      data(1, 'abc'),
      encodeFrame(FrameType.PING, 0, 0, Buffer.from('pingpong')),
      headers(3, true),
      data(1, 'def', true),
      ...Array.from({ length: 50 }, (_, i) => Buffer.concat([headers(5 + 2 * i), data(5 + 2 * i, `m${i}`, true)])),
    ]);
    const whole = connect();
    whole.c.receive(bytes);
    for (let run = 0; run < 200; run++) {
      const cut = connect();
      let pos = 0;
      while (pos < bytes.length) {
        const n = 1 + Math.floor(random() * (random() < 0.5 ? 4 : 200));
        cut.c.receive(bytes.subarray(pos, pos + n));
        pos += n;
      }
      assert.deepEqual(cut.ev.log, whole.ev.log, `run ${run}`);
      assert.deepEqual(
        cut.out.frames.map((f) => [f.type, f.flags, f.streamId, f.payload.toString('hex')]),
        whole.out.frames.map((f) => [f.type, f.flags, f.streamId, f.payload.toString('hex')]),
      );
    }
    assert.equal(whole.ev.log.filter((l) => l.startsWith('open')).length, 52);
  });
});
