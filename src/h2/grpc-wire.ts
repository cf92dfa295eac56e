/**
 * gRPC over HTTP/2 as the server speaks it (grpc/doc/PROTOCOL-HTTP2.md):
 * length-prefixed messages, the header blocks of a response and its status
 * trailers, `grpc-timeout`, and request metadata. Pure; no I/O.
 */
import { gunzipSync, inflateSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { encodeLiteralFields, type HeaderField } from './hpack.js';

/** Bytes of a message's prefix: compressed flag, then the length (u32 BE). */
export const MESSAGE_PREFIX_BYTES = 5;

/** A call's failure as gRPC reports it. */
export class GrpcStatusError extends Error {
  override readonly name = 'GrpcStatusError';
  constructor(
    readonly code: number,
    readonly details: string,
  ) {
    super(details);
  }
}

/** A message with its gRPC prefix. */
export function frameMessage(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(MESSAGE_PREFIX_BYTES + body.length);
  out[0] = 0;
  out.writeUInt32BE(body.length, 1);
  out.set(body, MESSAGE_PREFIX_BYTES);
  return out;
}

/**
 * Cuts a stream's DATA into messages. A message declaring more than
 * `maxBytes` fails with RESOURCE_EXHAUSTED and grpc-go's text (what etcd's
 * clients see from etcd) before its body is buffered; a compressed message
 * is inflated with the call's `grpc-encoding` (gzip or deflate, as grpc-go's
 * and grpc-js' servers accept), bounded by the same limit.
 */
export class MessageReader {
  private parts: Buffer[] = [];
  private held = 0;
  /** Length of the message being read (-1: its prefix is not complete yet). */
  private want = -1;
  private compressed = false;

  constructor(
    private readonly maxBytes: number,
    private readonly encoding: string | undefined,
  ) {}

  /** The messages completed by `data`, in order. */
  push(data: Buffer): Buffer[] {
    const out: Buffer[] = [];
    this.parts.push(data);
    this.held += data.length;
    for (;;) {
      if (this.want < 0) {
        if (this.held < MESSAGE_PREFIX_BYTES) return out;
        const prefix = this.take(MESSAGE_PREFIX_BYTES);
        this.compressed = prefix[0] === 1;
        if ((prefix[0] as number) > 1) throw new GrpcStatusError(grpc.status.INTERNAL, `grpc: invalid compressed flag ${prefix[0]}`);
        this.want = prefix.readUInt32BE(1);
        if (this.want > this.maxBytes) {
          throw new GrpcStatusError(grpc.status.RESOURCE_EXHAUSTED, `grpc: received message larger than max (${this.want} vs. ${this.maxBytes})`);
        }
      }
      if (this.held < this.want) return out;
      const body = this.take(this.want);
      this.want = -1;
      out.push(this.compressed ? this.inflate(body) : body);
    }
  }

  /** Whether a message has started and not completed. */
  get partial(): boolean {
    return this.held > 0 || this.want >= 0;
  }

  private take(n: number): Buffer {
    const first = this.parts[0];
    if (first !== undefined && first.length >= n) {
      this.held -= n;
      if (first.length === n) this.parts.shift();
      else this.parts[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const all = Buffer.concat(this.parts);
    this.parts = all.length > n ? [all.subarray(n)] : [];
    this.held -= n;
    return all.subarray(0, n);
  }

  private inflate(body: Buffer): Buffer {
    const opts = { maxOutputLength: Math.max(this.maxBytes, 1) };
    try {
      if (this.encoding === 'gzip') return gunzipSync(body, opts);
      if (this.encoding === 'deflate') return inflateSync(body, opts);
    } catch (err) {
      const tooLarge = (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
      throw tooLarge
        ? new GrpcStatusError(grpc.status.RESOURCE_EXHAUSTED, `grpc: received message after decompression larger than max (${this.maxBytes})`)
        : new GrpcStatusError(grpc.status.INTERNAL, `grpc: failed to decompress the received message: ${(err as Error).message}`);
    }
    throw new GrpcStatusError(
      grpc.status.UNIMPLEMENTED,
      this.encoding === undefined || this.encoding === 'identity'
        ? 'grpc: compressed flag set with identity or empty encoding'
        : `grpc: Decompressor is not installed for grpc-encoding "${this.encoding}"`,
    );
  }
}

/** The fields every answer starts with. */
const RESPONSE_FIELDS: ReadonlyArray<readonly [string, string]> = [
  [':status', '200'],
  ['content-type', 'application/grpc'],
];

/** The response header block every call starts with. */
export const RESPONSE_HEADERS = encodeLiteralFields(RESPONSE_FIELDS);

/** The trailers of a call ending with `code` and `message`; `trailersOnly` adds the response headers (nothing was sent before). */
export function statusBlock(code: number, message: string, trailersOnly: boolean): Buffer {
  const fields: Array<readonly [string, string]> = trailersOnly ? [...RESPONSE_FIELDS] : [];
  fields.push(['grpc-status', String(code)]);
  if (message !== '') fields.push(['grpc-message', percentEncode(message)]);
  return encodeLiteralFields(fields);
}

/** The trailers of a call that ended well. */
export const OK_TRAILERS = statusBlock(grpc.status.OK, '', false);
/** The whole answer of a call that ended well without sending a message. */
export const OK_TRAILERS_ONLY = statusBlock(grpc.status.OK, '', true);

/** grpc-message's encoding: bytes outside printable ASCII, and '%', as %XX of their UTF-8. */
export function percentEncode(message: string): string {
  if (/^[\x20-\x24\x26-\x7e]*$/.test(message)) return message;
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const TIMEOUT_UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 };

/** A `grpc-timeout` value in ms (e.g. `5S`, `100m`); undefined when malformed (the call then has no deadline, as grpc-js). */
export function parseTimeout(value: string): number | undefined {
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (m === null) return undefined;
  return Number(m[1]) * (TIMEOUT_UNIT_MS[m[2] as string] as number);
}

/** Request headers that are HTTP/2 or gRPC transport, not the call's metadata. */
const TRANSPORT_HEADERS = new Set(['content-type', 'te', 'grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding', 'content-length', 'connection', 'host']);

/** The call's metadata: every header but pseudo-headers and transport ones; `-bin` values base64-decoded. */
export function metadataOf(headers: readonly HeaderField[]): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const { name, value } of headers) {
    if (name.charCodeAt(0) === 0x3a || TRANSPORT_HEADERS.has(name)) continue;
    try {
      if (name.endsWith('-bin')) {
        for (const v of value.split(',')) md.add(name, Buffer.from(v.trim(), 'base64'));
      } else {
        md.add(name, value);
      }
    } catch {
      // A key or value gRPC does not allow in metadata: not passed on (grpc-js drops it too).
    }
  }
  return md;
}
