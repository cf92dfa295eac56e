/**
 * Splits a byte stream of concatenated JSON values (what grpc-gateway's
 * streaming routes read with Go's json.Decoder: objects back to back,
 * separated by optional whitespace) into the values, as they complete.
 */

/** Most bytes one value may take before the stream is refused. */
export class JsonValueTooLargeError extends Error {
  override readonly name = 'JsonValueTooLargeError';
  constructor(readonly limit: number) {
    super(`a streamed JSON value exceeds ${limit} bytes`);
  }
}

/**
 * Incremental splitter: feed chunks, take complete top-level values.
 * Only objects and arrays are framed (every etcd request is an object);
 * a stray scalar between values is a syntax error reported by JSON.parse.
 */
export class JsonValueSplitter {
  private buf: Buffer = Buffer.alloc(0);
  /** Scan position in buf; everything before `start` is consumed. */
  private pos = 0;
  private start = -1;
  private depth = 0;
  private inString = false;
  private escaped = false;

  constructor(private readonly maxValueBytes: number) {}

  /** Adds bytes; returns the values completed by them, parsed. Throws on a syntax error or an oversized value. */
  push(chunk: Buffer): unknown[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: unknown[] = [];
    for (; this.pos < this.buf.length; this.pos++) {
      const c = this.buf[this.pos]!;
      if (this.start < 0) {
        if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
        if (c !== 0x7b && c !== 0x5b) throw new SyntaxError(`unexpected byte 0x${c.toString(16)} between JSON values`);
        this.start = this.pos;
        this.depth = 1;
        continue;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c) this.escaped = true;
        else if (c === 0x22) this.inString = false;
        continue;
      }
      if (c === 0x22) this.inString = true;
      else if (c === 0x7b || c === 0x5b) this.depth++;
      else if (c === 0x7d || c === 0x5d) {
        this.depth--;
        if (this.depth === 0) {
          out.push(JSON.parse(this.buf.subarray(this.start, this.pos + 1).toString('utf8')));
          this.start = -1;
        }
      }
    }
    // Keep only the unfinished value.
    const keepFrom = this.start < 0 ? this.buf.length : this.start;
    this.buf = this.buf.subarray(keepFrom);
    this.pos -= keepFrom;
    if (this.start >= 0) this.start = 0;
    if (this.buf.length > this.maxValueBytes) throw new JsonValueTooLargeError(this.maxValueBytes);
    return out;
  }

  /** Whether a value was left unfinished (end of stream mid-value). */
  get pending(): boolean {
    return this.start >= 0;
  }
}
