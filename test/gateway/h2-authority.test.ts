/**
 * HPACK pieces (h2-hpack.ts) against RFC 7541's examples, and the
 * `:authority` rewriter (h2-authority.ts) on hand-built frames: rewriting,
 * re-framing (padding, priority, CONTINUATION), byte-by-byte input, the
 * dropped SETTINGS acknowledgement, and passing malformed input unchanged.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AuthorityRewriter, bareAuthority, HTTP2_PREFACE } from '../../src/gateway/h2-authority.js';
import {
  DynamicTable,
  HpackError,
  huffmanCode,
  huffmanDecode,
  huffmanEncode,
  rawString,
  readInteger,
  rewriteHeaderBlock,
  writeInteger,
} from '../../src/gateway/h2-hpack.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** A literal field with incremental indexing and a static name index (RFC 7541 §6.2.1). */
function literalIndexed(nameIndex: number, value: Buffer, huffman: boolean): Buffer {
  const v = huffman ? huffmanEncode(value) : value;
  return Buffer.concat([writeInteger(nameIndex, 6, 0x40), writeInteger(v.length, 7, huffman ? 0x80 : 0), v]);
}

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId, 5);
  return Buffer.concat([h, payload]);
}

/** The header blocks of a frame sequence (HEADERS payload minus padding/priority, plus CONTINUATIONs). */
function headerBlocks(bytes: Buffer): Buffer[] {
  const blocks: Buffer[] = [];
  let pos = HTTP2_PREFACE.length;
  let current: Buffer[] = [];
  while (pos < bytes.length) {
    const len = bytes.readUIntBE(pos, 3);
    const type = bytes[pos + 3] as number;
    const flags = bytes[pos + 4] as number;
    let p = bytes.subarray(pos + 9, pos + 9 + len);
    if (type === 1) {
      let pad = 0;
      if (flags & 0x8) {
        pad = p[0] as number;
        p = p.subarray(1);
      }
      if (flags & 0x20) p = p.subarray(5);
      current = [p.subarray(0, p.length - pad)];
    } else if (type === 9) current.push(p);
    if ((type === 1 || type === 9) && flags & 0x4) blocks.push(Buffer.concat(current));
    pos += 9 + len;
  }
  return blocks;
}

/** Decoded (name, value) pairs of literal fields in a block; indexed fields as `#index`. */
function literals(block: Buffer): string[] {
  const out: string[] = [];
  let pos = 0;
  while (pos < block.length) {
    const first = block[pos] as number;
    if (first & 0x80) {
      const [i, next] = readInteger(block, pos, 7);
      out.push(`#${i}`);
      pos = next;
      continue;
    }
    const inc = (first & 0xc0) === 0x40;
    const [index, after] = readInteger(block, pos, inc ? 6 : 4);
    assert.notEqual(index, 0);
    const [v, end] = (() => {
      const huff = ((block[after] as number) & 0x80) !== 0;
      const [len, start] = readInteger(block, after, 7);
      const raw = block.subarray(start, start + len);
      return [huff ? huffmanDecode(raw) : raw, start + len] as const;
    })();
    out.push(`${index}=${v.toString('latin1')}`);
    pos = end;
  }
  return out;
}

function runAll(r: AuthorityRewriter, input: Buffer, step: number): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < input.length; i += step) out.push(...r.push(input.subarray(i, i + step)));
  return Buffer.concat(out);
}

describe('HPACK pieces', () => {
  it('derives RFC 7541 Appendix B codes from the lengths', () => {
    assert.deepEqual(huffmanCode(0), [0x1ff8, 13]);
    assert.deepEqual(huffmanCode(10), [0x3ffffffc, 30]);
    assert.deepEqual(huffmanCode('0'.charCodeAt(0)), [0x0, 5]);
    assert.deepEqual(huffmanCode('/'.charCodeAt(0)), [0x18, 6]);
    assert.deepEqual(huffmanCode(255), [0x3ffffee, 26]);
    assert.deepEqual(huffmanCode(256), [0x3fffffff, 30]);
  });

  it('encodes and decodes RFC 7541 C.4 examples', () => {
    const cases: [string, string][] = [
      ['www.example.com', 'f1e3 c2e5 f23a 6ba0 ab90 f4ff'],
      ['no-cache', 'a8eb 1064 9cbf'],
      ['custom-key', '25a8 49e9 5ba9 7d7f'],
      ['custom-value', '25a8 49e9 5bb8 e8b4 bf'],
    ];
    for (const [text, code] of cases) {
      assert.deepEqual(huffmanEncode(Buffer.from(text)), hex(code), text);
      assert.equal(huffmanDecode(hex(code)).toString(), text);
    }
  });

  it('round-trips every byte value and refuses bad padding and EOS', () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    assert.deepEqual(huffmanDecode(huffmanEncode(all)), all);
    assert.throws(() => huffmanDecode(hex('f1e3 c2e5 f23a 6ba0 ab90 f4fe')), HpackError); // padding not all ones
    assert.throws(() => huffmanDecode(hex('ffffffff')), HpackError); // EOS
  });

  it('reads and writes prefixed integers (RFC 7541 C.1)', () => {
    assert.deepEqual(writeInteger(10, 5, 0), hex('0a'));
    assert.deepEqual(writeInteger(1337, 5, 0), hex('1f9a0a'));
    assert.deepEqual(readInteger(hex('1f9a0a'), 0, 5), [1337, 3]);
    assert.deepEqual(readInteger(hex('2a'), 0, 8), [42, 1]);
    assert.throws(() => readInteger(hex('1f9a'), 0, 5), HpackError);
  });

  it('tracks the dynamic table: names by index, eviction by size', () => {
    const t = new DynamicTable(100);
    t.add('a', 10); // 43 bytes
    t.add('b', 10); // 86
    assert.equal(t.name(62), 'b');
    assert.equal(t.name(63), 'a');
    t.add('c', 10); // evicts a
    assert.equal(t.name(63), 'b');
    assert.throws(() => t.name(64), HpackError);
    t.resize(0);
    assert.throws(() => t.name(62), HpackError);
    assert.equal(t.name(1), ':authority');
  });
});

describe('bareAuthority', () => {
  it('drops a scheme and a path, leaves a plain authority alone', () => {
    assert.equal(bareAuthority('http://127.0.0.1:2379'), '127.0.0.1:2379');
    assert.equal(bareAuthority('https://[::1]:2379/x'), '[::1]:2379');
    assert.equal(bareAuthority('127.0.0.1:2379'), undefined);
    assert.equal(bareAuthority('http://'), undefined);
  });
});

describe('AuthorityRewriter', () => {
  const settings = frame(4, 0, 0, Buffer.alloc(0));
  const ack = frame(4, 1, 0, Buffer.alloc(0));
  const ping = frame(6, 0, 0, Buffer.alloc(8, 7));

  it('rewrites a Huffman-coded :authority with a scheme and passes other frames unchanged', () => {
    const block = Buffer.concat([hex('8386'), literalIndexed(1, Buffer.from('http://127.0.0.1:2379'), true), hex('44'), rawString(Buffer.from('/p'))]);
    const data = frame(0, 1, 1, Buffer.from('body'));
    const input = Buffer.concat([HTTP2_PREFACE, settings, frame(1, 4, 1, block), data, ping]);
    for (const step of [1, 7, input.length]) {
      const r = new AuthorityRewriter();
      const out = runAll(r, input, step);
      assert.equal(r.rewritten, 1);
      assert.deepEqual(literals(headerBlocks(out)[0] as Buffer), ['#3', '#6', '1=127.0.0.1:2379', '4=/p']);
      assert.ok(out.subarray(out.length - data.length - ping.length).equals(Buffer.concat([data, ping])));
    }
  });

  it('leaves a block without a scheme byte for byte as it was', () => {
    const block = Buffer.concat([hex('83'), literalIndexed(1, Buffer.from('127.0.0.1:2379'), true)]);
    const input = Buffer.concat([HTTP2_PREFACE, settings, frame(1, 5, 1, block)]);
    const r = new AuthorityRewriter();
    assert.deepEqual(runAll(r, input, 3), input);
    assert.equal(r.rewritten, 0);
    assert.equal(r.headerBlocks, 1);
  });

  it('re-frames padded, prioritised blocks split over CONTINUATION frames', () => {
    const block = Buffer.concat([hex('83'), literalIndexed(1, Buffer.from('https://example.test:443'), false), literalIndexed(58, Buffer.alloc(40, 'u'), true)]);
    const head = Buffer.concat([Buffer.from([3]), Buffer.from([0x80, 0, 0, 3, 15]), block.subarray(0, 10), Buffer.alloc(3)]);
    const input = Buffer.concat([HTTP2_PREFACE, frame(1, 0x8 | 0x20 | 0x1, 5, head), frame(9, 0, 5, block.subarray(10, 20)), frame(9, 4, 5, block.subarray(20))]);
    const r = new AuthorityRewriter();
    const out = runAll(r, input, 5);
    const flags = out[HTTP2_PREFACE.length + 4] as number;
    assert.equal(flags, 0x20 | 0x4 | 0x1, 'priority and END_STREAM kept, padding dropped, one frame');
    assert.deepEqual(out.subarray(HTTP2_PREFACE.length + 9, HTTP2_PREFACE.length + 14), Buffer.from([0x80, 0, 0, 3, 15]));
    assert.deepEqual(literals(headerBlocks(out)[0] as Buffer), ['#3', '1=example.test:443', `58=${'u'.repeat(40)}`]);
  });

  it('rewrites a later literal after the first entry was evicted, reading indexed names from its own table', () => {
    // The first block indexes the authority and a big header; the second adds one that evicts the authority, then re-sends it.
    const big = (c: string): Buffer => literalIndexed(58, Buffer.alloc(2000, c), false);
    const b1 = Buffer.concat([literalIndexed(1, Buffer.from('http://h:1'), true), big('a')]);
    const b2 = Buffer.concat([hex('bf'), big('b'), big('c'), literalIndexed(1, Buffer.from('http://h:1'), true)]);
    const input = Buffer.concat([HTTP2_PREFACE, frame(1, 4, 1, b1), frame(1, 4, 3, b2)]);
    const r = new AuthorityRewriter();
    const blocks = headerBlocks(runAll(r, input, 1000));
    assert.equal(r.rewritten, 2);
    assert.deepEqual(literals(blocks[1] as Buffer).at(-1), '1=h:1');
  });

  it('drops exactly the first SETTINGS acknowledgement when asked', () => {
    const input = Buffer.concat([HTTP2_PREFACE, settings, ack, ping, ack]);
    const r = new AuthorityRewriter({ dropFirstSettingsAck: true });
    assert.equal(r.settingsAckDropped, false);
    assert.deepEqual(runAll(r, input, 4), Buffer.concat([HTTP2_PREFACE, settings, ping, ack]));
    assert.equal(r.settingsAckDropped, true);
  });

  it('passes malformed input on unchanged and stops rewriting', () => {
    const bad = Buffer.concat([literalIndexed(1, Buffer.from('http://h:1'), false), hex('ff')]); // truncated integer
    const next = frame(1, 4, 3, literalIndexed(1, Buffer.from('http://h:1'), false));
    const input = Buffer.concat([HTTP2_PREFACE, frame(1, 4, 1, bad), next]);
    const r = new AuthorityRewriter();
    assert.deepEqual(runAll(r, input, 2), input);
    assert.equal(r.passthrough, true);
    // A non-CONTINUATION frame inside a header block: passed on as received.
    const interleaved = Buffer.concat([HTTP2_PREFACE, frame(1, 0, 1, hex('83')), ping, frame(9, 4, 1, hex('84'))]);
    assert.deepEqual(runAll(new AuthorityRewriter(), interleaved, 3), interleaved);
  });

  it('hands back held bytes unchanged', () => {
    const r = new AuthorityRewriter();
    const partial = frame(1, 0, 1, hex('83'));
    const out = r.push(Buffer.concat([HTTP2_PREFACE, partial, ping.subarray(0, 4)]));
    assert.deepEqual(Buffer.concat([...out, r.takeHeld()]), Buffer.concat([HTTP2_PREFACE, partial, ping.subarray(0, 4)]));
  });
});
