/**
 * HPACK pieces (src/h2/hpack.ts) against RFC 7541's examples: the Huffman code,
 * prefixed integers; the decoder's remembered literal fields. (The rest of
 * the decoder and the connection using it are tested in connection.test.ts.)
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HeaderDecoder, HpackError, huffmanCode, huffmanDecode, huffmanEncode, rawString, readInteger, writeInteger } from '../../src/h2/hpack.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

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

  it('decodes literal fields with a static name alike whether remembered or not', () => {
    // Never-indexed literals named by static index 4 (:path) and 31 (content-type), raw or Huffman-coded.
    const path = (v: string, huffman = false): Buffer => {
      const bytes = Buffer.from(v, 'latin1');
      const str = huffman ? Buffer.concat([writeInteger(huffmanEncode(bytes).length, 7, 0x80), huffmanEncode(bytes)]) : rawString(bytes);
      return Buffer.concat([writeInteger(4, 4, 0x10), str]);
    };
    const contentType = Buffer.concat([writeInteger(31, 4, 0x10), rawString(Buffer.from('application/grpc'))]);
    const d = new HeaderDecoder();
    const seq = ['/a', '/b', '/a', '/ab', '/a'];
    for (const v of seq) {
      for (const huffman of [false, true]) {
        assert.deepEqual(d.decode(Buffer.concat([path(v, huffman), contentType])), [
          { name: ':path', value: v },
          { name: 'content-type', value: 'application/grpc' },
        ]);
      }
    }
    // More distinct values than are remembered, then the first ones again.
    const many = Array.from({ length: 40 }, (_, i) => `/etcdserverpb.KV/${'x'.repeat(i)}`);
    for (const v of [...many, ...many.slice(0, 5)]) assert.deepEqual(d.decode(path(v)), [{ name: ':path', value: v }]);
    // A long value (not remembered) and a truncated one.
    const long = '/'.padEnd(300, 'y');
    assert.deepEqual(d.decode(path(long)), [{ name: ':path', value: long }]);
    assert.deepEqual(d.decode(path(long)), [{ name: ':path', value: long }]);
    assert.throws(() => d.decode(path('/abc').subarray(0, 3)), HpackError);
    assert.deepEqual(d.decode(path('/abc')), [{ name: ':path', value: '/abc' }]);
  });
});
