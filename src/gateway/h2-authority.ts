/**
 * Accepting etcdctl's `:authority` with a scheme.
 *
 * etcdctl 3.4 dials some endpoints (`endpoint status`, `endpoint health`,
 * `--cluster`) by their URL as given, so with `--endpoints=http://host:port`
 * its HTTP/2 requests carry `:authority: http://host:port`. etcd's Go server
 * takes that; Node's HTTP/2 (nghttp2) validates the authority's characters,
 * refuses the `/` and resets the stream with PROTOCOL_ERROR, and Node offers
 * no option to relax the check. So the client-to-server bytes of an HTTP/2
 * connection pass through {@link AuthorityRewriter} on their way to the
 * server: it forwards every frame unchanged except header blocks whose
 * `:authority` (or `host`) has a scheme, which it re-encodes with the bare
 * `host:port`. Pure; no I/O.
 */
import { DynamicTable, HpackError, rewriteHeaderBlock } from './h2-hpack.js';

/** The HTTP/2 client connection preface (RFC 9113 §3.4). */
export const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** HPACK dynamic table size until the server's SETTINGS say otherwise: RFC 9113's default, Node's too. */
const HEADER_TABLE_SIZE_DEFAULT = 4096;
/** Largest frame payload every HTTP/2 peer accepts (SETTINGS_MAX_FRAME_SIZE's initial value). */
const FRAME_PAYLOAD_MAX = 16_384;
/** Largest header block collected for rewriting; a larger one is passed on unchanged and rewriting stops. */
export const HEADER_BLOCK_BYTES_MAX = 256 * 1024;

const FRAME_HEADER_BYTES = 9;
const TYPE_HEADERS = 0x1;
const TYPE_SETTINGS = 0x4;
const TYPE_CONTINUATION = 0x9;
const FLAG_ACK = 0x1;
const FLAG_END_STREAM = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;
const PRIORITY_BYTES = 5;

const AUTHORITY_NAMES: ReadonlySet<string> = new Set([':authority', 'host']);
/** `scheme://` at the start of an authority (RFC 3986 §3.1 scheme syntax). */
const SCHEME_PREFIX = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;

/**
 * The authority etcd's server would use for `value`: a URL's `host[:port]`
 * (scheme and any path dropped); undefined when `value` has no scheme.
 */
export function bareAuthority(value: string): string | undefined {
  const m = SCHEME_PREFIX.exec(value);
  if (m === null) return undefined;
  const rest = value.slice(m[0].length);
  const slash = rest.indexOf('/');
  const host = slash < 0 ? rest : rest.slice(0, slash);
  return host === '' ? undefined : host;
}

/** One frame's 9-byte header. */
function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const h = Buffer.alloc(FRAME_HEADER_BYTES);
  h.writeUIntBE(length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId, 5);
  return h;
}

/**
 * Rewrites the `:authority` of the header blocks of one HTTP/2 connection's
 * client-to-server byte stream (see the module comment). Feed it the bytes
 * in order with {@link push}; it returns what to pass on. On anything it
 * cannot parse it stops rewriting and passes the rest on unchanged, so the
 * server reports the error as it would have.
 */
export class AuthorityRewriter {
  private readonly table = new DynamicTable(HEADER_TABLE_SIZE_DEFAULT);
  private pending: Buffer = Buffer.alloc(0);
  private prefaceLeft = HTTP2_PREFACE.length;
  /** Payload bytes of the current non-header frame still to pass through. */
  private passLeft = 0;
  /** Frames of a header block being collected (HEADERS then CONTINUATIONs), as received. */
  private blockFrames: Buffer[] = [];
  private blockBytes = 0;
  private passthroughMode = false;
  private ackToDrop: boolean;
  /** Complete header blocks seen so far. */
  headerBlocks = 0;
  /** Header blocks rewritten so far. */
  rewritten = 0;

  /**
   * With `dropFirstSettingsAck`, the client's first SETTINGS acknowledgement
   * is removed: it answers a SETTINGS frame the connection layer sent
   * itself (see h2-relay.ts), which the HTTP/2 server never sent.
   */
  constructor(options: { dropFirstSettingsAck?: boolean } = {}) {
    this.ackToDrop = options.dropFirstSettingsAck ?? false;
  }

  /** True once the first SETTINGS acknowledgement was removed (or none was to be removed). */
  get settingsAckDropped(): boolean {
    return !this.ackToDrop;
  }

  /** True when rewriting stopped on bytes it could not parse (everything now passes unchanged). */
  get passthrough(): boolean {
    return this.passthroughMode;
  }

  /**
   * The bytes received and not yet returned (an incomplete frame or header
   * block), unchanged; the rewriter must not be used afterwards.
   */
  takeHeld(): Buffer {
    const held = Buffer.concat([...this.blockFrames, this.pending]);
    this.blockFrames = [];
    this.pending = Buffer.alloc(0);
    this.passthroughMode = true;
    return held;
  }

  /** The bytes to pass on for `chunk` (possibly none yet: a frame is still incomplete). */
  push(chunk: Buffer): Buffer[] {
    if (this.passthroughMode) return [chunk];
    const out: Buffer[] = [];
    let data = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = Buffer.alloc(0);
    if (this.prefaceLeft > 0) {
      const n = Math.min(this.prefaceLeft, data.length);
      out.push(data.subarray(0, n));
      this.prefaceLeft -= n;
      data = data.subarray(n);
    }
    while (data.length > 0) {
      if (this.passLeft > 0) {
        const n = Math.min(this.passLeft, data.length);
        out.push(data.subarray(0, n));
        this.passLeft -= n;
        data = data.subarray(n);
        continue;
      }
      if (data.length < FRAME_HEADER_BYTES) break;
      const length = data.readUIntBE(0, 3);
      const type = data[3] as number;
      const collecting = this.blockFrames.length > 0;
      if (type !== TYPE_HEADERS && !(collecting && type === TYPE_CONTINUATION)) {
        if (collecting) return this.giveUp(out, data);
        if (this.ackToDrop && type === TYPE_SETTINGS && length === 0 && ((data[4] as number) & FLAG_ACK) !== 0) {
          this.ackToDrop = false;
          data = data.subarray(FRAME_HEADER_BYTES);
          continue;
        }
        out.push(data.subarray(0, FRAME_HEADER_BYTES));
        this.passLeft = length;
        data = data.subarray(FRAME_HEADER_BYTES);
        continue;
      }
      if (this.blockBytes + length > HEADER_BLOCK_BYTES_MAX) return this.giveUp(out, data);
      if (data.length < FRAME_HEADER_BYTES + length) break;
      const frame = data.subarray(0, FRAME_HEADER_BYTES + length);
      data = data.subarray(frame.length);
      this.blockFrames.push(frame);
      this.blockBytes += length;
      if (((frame[4] as number) & FLAG_END_HEADERS) === 0) continue;
      const frames = this.blockFrames;
      this.blockFrames = [];
      this.blockBytes = 0;
      this.headerBlocks++;
      try {
        out.push(...this.rewriteBlock(frames));
      } catch (err) {
        if (!(err instanceof HpackError)) throw err;
        return this.giveUp(out, data, frames);
      }
    }
    if (data.length > 0 || this.blockFrames.length > 0) this.pending = Buffer.from(data);
    return out;
  }

  /** Passes on everything held and all later bytes unchanged. */
  private giveUp(out: Buffer[], rest: Buffer, frames: Buffer[] = []): Buffer[] {
    this.passthroughMode = true;
    out.push(...frames, ...this.blockFrames, rest);
    this.blockFrames = [];
    return out;
  }

  /** A complete header block's frames, rewritten if its authority has a scheme. */
  private rewriteBlock(frames: Buffer[]): Buffer[] {
    const head = frames[0] as Buffer;
    const flags = head[4] as number;
    const streamId = head.readUInt32BE(5) & 0x7fffffff;
    let payload = head.subarray(FRAME_HEADER_BYTES);
    let padding = 0;
    if ((flags & FLAG_PADDED) !== 0) {
      padding = payload[0] ?? 0;
      payload = payload.subarray(1);
    }
    const priority = (flags & FLAG_PRIORITY) !== 0 ? payload.subarray(0, PRIORITY_BYTES) : Buffer.alloc(0);
    if (priority.length + padding > payload.length) throw new HpackError('HEADERS padding exceeds the payload');
    const fragments = [payload.subarray(priority.length, payload.length - padding), ...frames.slice(1).map((f) => f.subarray(FRAME_HEADER_BYTES))];
    const block = fragments.length === 1 ? (fragments[0] as Buffer) : Buffer.concat(fragments);
    const fixed = rewriteHeaderBlock(block, this.table, AUTHORITY_NAMES, bareAuthority);
    if (fixed === block) return frames;
    this.rewritten++;
    // Re-framed without padding: HEADERS (priority kept) and CONTINUATIONs within the minimum frame size.
    const out: Buffer[] = [];
    const firstRoom = FRAME_PAYLOAD_MAX - priority.length;
    const first = fixed.subarray(0, firstRoom);
    const last = fixed.length <= firstRoom;
    out.push(
      frameHeader(priority.length + first.length, TYPE_HEADERS, (flags & (FLAG_END_STREAM | FLAG_PRIORITY)) | (last ? FLAG_END_HEADERS : 0), streamId),
      priority,
      first,
    );
    for (let pos = firstRoom; pos < fixed.length; pos += FRAME_PAYLOAD_MAX) {
      const part = fixed.subarray(pos, pos + FRAME_PAYLOAD_MAX);
      const end = pos + FRAME_PAYLOAD_MAX >= fixed.length;
      out.push(frameHeader(part.length, TYPE_CONTINUATION, end ? FLAG_END_HEADERS : 0, streamId), part);
    }
    return out;
  }
}
