/**
 * HPACK (RFC 7541) for the gRPC server's HTTP/2 connections: prefixed
 * integers, string literals (raw and Huffman), the static table, a full
 * decoder ({@link HeaderDecoder}, with the peer's dynamic table) and the
 * encoding of literal fields that are never indexed, which is all a server
 * needs to send (its header blocks are few and small). Pure; no I/O.
 */

/** A header block that does not follow RFC 7541 (the caller passes it on unchanged). */
export class HpackError extends Error {
  override readonly name = 'HpackError';
}

/** RFC 7541 Appendix A: the static table, index 1..61 (`[name, value]`). */
const STATIC_TABLE: readonly (readonly [string, string])[] = [
  ['', ''], [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''],
  ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''],
  ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''],
  ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''],
  ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''],
  ['www-authenticate', ''],
];
const STATIC_NAMES: readonly string[] = STATIC_TABLE.map(([name]) => name);
const STATIC_COUNT = STATIC_NAMES.length - 1;
/** The static table's fields as decoded fields, made once (a decoded field is never changed). */
const STATIC_FIELDS: readonly HeaderField[] = STATIC_TABLE.map(([name, value]) => ({ name, value }));

/**
 * RFC 7541 Appendix B: Huffman code length of each symbol 0..255 and EOS
 * (256). The code is canonical (codes of one length are consecutive, in
 * symbol order), so the lengths determine the codes.
 */
const HUFFMAN_LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];
const EOS = 256;
const HUFFMAN_MAX_BITS = 30;

/** Canonical decoding tables: per code length, the first code and the symbols of that length in order. */
interface CanonicalTable {
  readonly firstCode: readonly number[];
  readonly symbols: readonly (readonly number[])[];
}

function canonicalTable(lengths: readonly number[]): CanonicalTable {
  const symbols: number[][] = Array.from({ length: HUFFMAN_MAX_BITS + 1 }, () => []);
  lengths.forEach((len, sym) => symbols[len]?.push(sym));
  const firstCode: number[] = new Array<number>(HUFFMAN_MAX_BITS + 1).fill(0);
  let code = 0;
  for (let len = 1; len <= HUFFMAN_MAX_BITS; len++) {
    code = (code + (symbols[len - 1]?.length ?? 0)) * 2;
    firstCode[len] = code;
  }
  return { firstCode, symbols };
}

const HUFFMAN = canonicalTable(HUFFMAN_LENGTHS);

/** The Huffman code of a symbol (for tests and encoding): `[code, bits]`. */
export function huffmanCode(symbol: number): [number, number] {
  const len = HUFFMAN_LENGTHS[symbol];
  if (len === undefined) throw new RangeError(`no Huffman symbol ${symbol}`);
  const i = (HUFFMAN.symbols[len] as readonly number[]).indexOf(symbol);
  return [(HUFFMAN.firstCode[len] as number) + i, len];
}

/** Decodes a Huffman-coded string (RFC 7541 §5.2: padding is < 8 one bits; EOS is an error). */
export function huffmanDecode(data: Uint8Array): Buffer {
  const out: number[] = [];
  let code = 0;
  let len = 0;
  let ones = true;
  for (const byte of data) {
    for (let bit = 7; bit >= 0; bit--) {
      const b = (byte >> bit) & 1;
      code = code * 2 + b;
      len++;
      ones &&= b === 1;
      const syms = HUFFMAN.symbols[len] as readonly number[];
      const i = code - (HUFFMAN.firstCode[len] as number);
      if (i >= 0 && i < syms.length) {
        const sym = syms[i] as number;
        if (sym === EOS) throw new HpackError('Huffman string contains EOS');
        out.push(sym);
        code = 0;
        len = 0;
        ones = true;
      } else if (len >= HUFFMAN_MAX_BITS) {
        throw new HpackError('invalid Huffman code');
      }
    }
  }
  if (len > 7 || !ones) throw new HpackError('invalid Huffman padding');
  return Buffer.from(out);
}

/** Encodes `s` with the Huffman code (tests compare it with other encoders' output). */
export function huffmanEncode(data: Uint8Array): Buffer {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const byte of data) {
    const [code, len] = huffmanCode(byte);
    for (let bit = len - 1; bit >= 0; bit--) {
      acc = (acc << 1) | (Math.floor(code / 2 ** bit) & 1);
      bits++;
      if (bits === 8) {
        out.push(acc);
        acc = 0;
        bits = 0;
      }
    }
  }
  if (bits > 0) out.push(((acc << (8 - bits)) | ((1 << (8 - bits)) - 1)) & 0xff);
  return Buffer.from(out);
}

/** Most bytes a prefixed integer may take here (values beyond 2^28 are not sensible in a header block). */
const INTEGER_BYTES_MAX = 5;

/** Where the integer read last by {@link integerAt} ended: its second result, without an array per call. */
let integerEnd = 0;

/** Reads an RFC 7541 §5.1 integer with an N-bit prefix at `pos`; its end is left in `integerEnd`. */
function integerAt(buf: Uint8Array, pos: number, prefixBits: number): number {
  const max = (1 << prefixBits) - 1;
  const first = buf[pos];
  if (first === undefined) throw new HpackError('truncated integer');
  let value = first & max;
  let p = pos + 1;
  if (value < max) {
    integerEnd = p;
    return value;
  }
  let shift = 0;
  for (;;) {
    const b = buf[p++];
    if (b === undefined) throw new HpackError('truncated integer');
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if ((b & 0x80) === 0) {
      integerEnd = p;
      return value;
    }
    if (p - pos > INTEGER_BYTES_MAX) throw new HpackError('integer too large');
  }
}

/** Reads an RFC 7541 §5.1 integer with an N-bit prefix at `pos`: `[value, next position]`. */
export function readInteger(buf: Uint8Array, pos: number, prefixBits: number): [number, number] {
  const value = integerAt(buf, pos, prefixBits);
  return [value, integerEnd];
}

/** Writes an RFC 7541 §5.1 integer with an N-bit prefix; `flags` are the first byte's bits above the prefix. */
export function writeInteger(value: number, prefixBits: number, flags: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([flags | value]);
  const out = [flags | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

/** A raw (not Huffman-coded) string literal. */
export function rawString(value: Buffer): Buffer {
  return Buffer.concat([writeInteger(value.length, 7, 0), value]);
}

/** RFC 7541 §4.1: an entry's size is its name and value lengths plus 32. */
const ENTRY_OVERHEAD = 32;

/** One decoded header field; names are lower case on HTTP/2, values are read as latin1. */
export interface HeaderField {
  readonly name: string;
  readonly value: string;
}

/** Default SETTINGS_HEADER_TABLE_SIZE (RFC 9113 §6.5.2). */
export const DEFAULT_HEADER_TABLE_SIZE = 4096;

/** Literal fields with a static-table name remembered per decoder (see {@link HeaderDecoder}). */
const LITERAL_MEMO_MAX = 16;
/** Longest encoded value a remembered literal field may have. */
const LITERAL_MEMO_BYTES_MAX = 128;

/** A literal field decoded earlier: its name's static index, its value as encoded, the field. */
interface LiteralMemo {
  readonly nameIndex: number;
  readonly huffman: boolean;
  readonly encoded: Buffer;
  readonly field: HeaderField;
}

/**
 * Decodes the header blocks of one direction of a connection, keeping the
 * peer encoder's dynamic table (§2.3.2) across blocks. Blocks must be given
 * in the order they arrived; a malformed block throws HpackError and leaves
 * the table unusable (the connection must end: RFC 9113 §4.3 COMPRESSION_ERROR).
 *
 * Clients send some fields as literals on every request (nghttp2 never
 * indexes `:path`; the benchmark's client indexes nothing), so the last
 * few literal fields with a static-table name are remembered by their
 * encoded value and handed out again without decoding.
 */
export class HeaderDecoder {
  /** Newest first. */
  private entries: HeaderField[] = [];
  private size = 0;
  private maxSize: number;
  /** Read position in the block being decoded. */
  private pos = 0;
  private readonly memo: LiteralMemo[] = [];
  private memoNext = 0;

  /** @param sizeLimit our SETTINGS_HEADER_TABLE_SIZE: the most a size update may ask for. */
  constructor(private readonly sizeLimit = DEFAULT_HEADER_TABLE_SIZE) {
    this.maxSize = sizeLimit;
  }

  /** The fields of one complete header block, in order. */
  decode(block: Uint8Array): HeaderField[] {
    const buf = Buffer.isBuffer(block) ? block : Buffer.from(block.buffer, block.byteOffset, block.byteLength);
    const out: HeaderField[] = [];
    this.pos = 0;
    let fieldSeen = false;
    while (this.pos < buf.length) {
      const first = buf[this.pos] as number;
      if ((first & 0x80) !== 0) {
        out.push(this.field(this.integer(buf, 7)));
        fieldSeen = true;
        continue;
      }
      if ((first & 0xe0) === 0x20) {
        // §4.2: size updates come first in a block, and never above our limit.
        if (fieldSeen) throw new HpackError('dynamic table size update after a field');
        const size = this.integer(buf, 5);
        if (size > this.sizeLimit) throw new HpackError(`dynamic table size ${size} above ${this.sizeLimit}`);
        this.maxSize = size;
        this.evictTo(size);
        continue;
      }
      const incremental = (first & 0xc0) === 0x40;
      const index = this.integer(buf, incremental ? 6 : 4);
      let field: HeaderField;
      if (index === 0) {
        const name = this.text(buf);
        field = { name, value: this.text(buf) };
      } else if (index <= STATIC_COUNT) {
        field = this.staticNameLiteral(buf, index);
      } else {
        field = { name: this.field(index).name, value: this.text(buf) };
      }
      if (incremental) this.add(field);
      out.push(field);
      fieldSeen = true;
    }
    return out;
  }

  private integer(buf: Buffer, prefixBits: number): number {
    const value = integerAt(buf, this.pos, prefixBits);
    this.pos = integerEnd;
    return value;
  }

  /** A string literal (§5.2) as latin1 text. */
  private text(buf: Buffer): string {
    const huffman = ((buf[this.pos] ?? 0) & 0x80) !== 0;
    const len = this.integer(buf, 7);
    const start = this.pos;
    const end = start + len;
    if (end > buf.length) throw new HpackError('truncated string');
    this.pos = end;
    return huffman ? decodeText(buf.subarray(start, end), true) : buf.toString('latin1', start, end);
  }

  /** A literal field named by static index `nameIndex`: a remembered one if its value is encoded alike. */
  private staticNameLiteral(buf: Buffer, nameIndex: number): HeaderField {
    const huffman = ((buf[this.pos] ?? 0) & 0x80) !== 0;
    const len = this.integer(buf, 7);
    const start = this.pos;
    if (start + len > buf.length) throw new HpackError('truncated string');
    this.pos = start + len;
    if (len > LITERAL_MEMO_BYTES_MAX) return { name: STATIC_NAMES[nameIndex] as string, value: decodeText(buf.subarray(start, start + len), huffman) };
    for (const m of this.memo) {
      if (m.nameIndex === nameIndex && m.huffman === huffman && m.encoded.length === len && sameBytes(buf, start, m.encoded)) {
        return m.field;
      }
    }
    const encoded = Buffer.from(buf.subarray(start, start + len));
    const field = { name: STATIC_NAMES[nameIndex] as string, value: decodeText(encoded, huffman) };
    this.memo[this.memoNext] = { nameIndex, huffman, encoded, field };
    this.memoNext = (this.memoNext + 1) % LITERAL_MEMO_MAX;
    return field;
  }

  private field(index: number): HeaderField {
    if (index >= 1 && index <= STATIC_COUNT) return STATIC_FIELDS[index] as HeaderField;
    const e = this.entries[index - STATIC_COUNT - 1];
    if (e === undefined) throw new HpackError(`index ${index} out of range`);
    return e;
  }

  private add(field: HeaderField): void {
    const size = field.name.length + field.value.length + ENTRY_OVERHEAD;
    this.evictTo(this.maxSize - size);
    if (size <= this.maxSize) {
      this.entries.unshift(field);
      this.size += size;
    }
  }

  private evictTo(limit: number): void {
    while (this.size > Math.max(limit, 0) && this.entries.length > 0) {
      const e = this.entries.pop() as HeaderField;
      this.size -= e.name.length + e.value.length + ENTRY_OVERHEAD;
    }
  }
}

/** A string literal's bytes as latin1 text. */
function decodeText(encoded: Buffer, huffman: boolean): string {
  return (huffman ? huffmanDecode(encoded) : encoded).toString('latin1');
}

/** Whether `buf[start, start + b.length)` holds the bytes of `b`. */
function sameBytes(buf: Buffer, start: number, b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (buf[start + i] !== b[i]) return false;
  return true;
}

/**
 * A header block of literal fields that are never indexed (§6.2.3), raw
 * strings: the block leaves the peer's decoder table untouched, so the
 * server keeps no encoder state and may send pre-encoded blocks in any order.
 * Names must be lower case; values latin1.
 */
export function encodeLiteralFields(fields: readonly (readonly [name: string, value: string])[]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    const staticIndex = STATIC_NAMES.indexOf(name, 1);
    if (staticIndex > 0) parts.push(writeInteger(staticIndex, 4, 0x10));
    else parts.push(Buffer.of(0x10), rawString(Buffer.from(name, 'latin1')));
    parts.push(rawString(Buffer.from(value, 'latin1')));
  }
  return Buffer.concat(parts);
}
