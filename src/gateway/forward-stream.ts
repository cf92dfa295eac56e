/**
 * The sending end of the per-peer forwarding stream (`Forward/CallStream`,
 * proto/keyspan/forwardpb.proto): every call forwarded to one node travels
 * on one long-lived bidi stream, each with a call id, and its answer comes
 * back as part of one stream message. A unary forward's answer is a data
 * frame followed by the status trailers, which grpc-js sends only after the
 * data frame's write has completed (and the trailers need another turn of
 * the receiver's event loop): on a leader whose loop is busy with raft
 * turns, that wait was most of a forwarded write's reply time. Both
 * directions batch (batch-writer.ts): the calls, or answers, that become
 * ready while a message is being written leave together in the next.
 *
 * A stream that breaks fails its calls in flight with UNAVAILABLE (the
 * caller retries; the request id makes that exactly-once) and the next
 * call opens a fresh stream.
 */
import { BatchWriter } from './batch-writer.js';
import { GrpcStatus } from './errors.js';
import type { CallBatch, ForwardRequest, ReplyBatch, StreamReply, StreamRequest } from './forward-proto.js';

/**
 * Most bytes of calls, or of answers, in one stream message (a single
 * larger one still goes, alone): a batch stays far below the peer
 * listener's message limit.
 */
export const FORWARD_BATCH_BYTES_MAX = 1024 * 1024;
/** Bytes counted per call or answer besides its payload (ids, codes, framing). */
const FORWARD_ITEM_OVERHEAD_BYTES = 32;

/** Approximate encoded size of a streamed call, for batching. */
export function streamRequestBytes(m: StreamRequest): number {
  const c = m.call;
  if (c === undefined || c === null) return FORWARD_ITEM_OVERHEAD_BYTES;
  let bytes = FORWARD_ITEM_OVERHEAD_BYTES + c.method.length + c.request.length + c.proposer.length;
  for (const e of c.metadata) bytes += e.key.length + e.value.length + 4;
  return bytes;
}

/** Approximate encoded size of a streamed answer, for batching. */
export function streamReplyBytes(r: StreamReply): number {
  return FORWARD_ITEM_OVERHEAD_BYTES + r.response.length + r.details.length;
}

/** How a streamed call ended when no reply came: the status a unary call would have had. */
export class StreamCallError extends Error {
  override readonly name = 'StreamCallError';
  constructor(
    /** gRPC status code. */
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

interface PendingCall {
  readonly resolve: (reply: StreamReply) => void;
  readonly reject: (err: StreamCallError) => void;
}

/**
 * A forwarding stream: the own HTTP/2 client's bidi call
 * (src/h2/client-bidi.ts) or grpc-js' duplex stream; both have this surface.
 */
export interface CallStream {
  write(batch: CallBatch, callback: () => void): unknown;
  on(event: 'data', listener: (batch: ReplyBatch) => void): unknown;
  on(event: 'error', listener: (err: { code?: number; details?: string; message: string }) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  end(): void;
  cancel(): void;
}

/** Opens the bidi `CallStream` method on a Forward client. */
export type OpenStream = () => CallStream;

/** The stream in use and the writer that batches its calls. */
interface OpenCallStream {
  readonly stream: CallStream;
  readonly writer: BatchWriter<StreamRequest>;
}

/** One peer's forwarding stream, opened on first use and reopened after a break. */
export class ForwardStream {
  private current: OpenCallStream | undefined;
  private readonly pending = new Map<number, PendingCall>();
  private nextCallId = 0;
  private closed = false;

  constructor(private readonly open: OpenStream) {}

  /** Calls in flight (answer not yet received). */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Sends `call` and resolves with its reply. Rejects with StreamCallError:
   * DEADLINE_EXCEEDED at `deadline`, CANCELLED when `signal` aborts (both
   * also cancel the call at the receiver), UNAVAILABLE (or the stream's own
   * status) when the stream breaks first.
   */
  call(call: ForwardRequest, deadline: number, signal: AbortSignal): Promise<StreamReply> {
    if (this.closed) return Promise.reject(new StreamCallError(GrpcStatus.UNAVAILABLE, 'forwarding stream closed'));
    if (signal.aborted) return Promise.reject(new StreamCallError(GrpcStatus.CANCELLED, 'cancelled'));
    const open = this.ensureOpen();
    const id = ++this.nextCallId;
    return new Promise<StreamReply>((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.pending.delete(id);
      };
      const giveUp = (code: number, message: string): void => {
        cleanup();
        if (this.current === open) open.writer.push({ call_id: id, cancel: true });
        reject(new StreamCallError(code, message));
      };
      const onAbort = (): void => giveUp(GrpcStatus.CANCELLED, 'cancelled');
      const timer = setTimeout(() => giveUp(GrpcStatus.DEADLINE_EXCEEDED, 'deadline exceeded'), Math.max(0, deadline - Date.now()));
      signal.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        resolve: (reply) => {
          cleanup();
          resolve(reply);
        },
        reject: (err) => {
          cleanup();
          reject(err);
        },
      });
      open.writer.push({ call_id: id, call, cancel: false });
    });
  }

  /** Ends the stream; calls in flight fail with UNAVAILABLE. */
  close(): void {
    this.closed = true;
    const stream = this.current?.stream;
    this.broken(stream, GrpcStatus.UNAVAILABLE, 'forwarding stream closed');
    stream?.cancel();
  }

  private ensureOpen(): OpenCallStream {
    if (this.current !== undefined) return this.current;
    const stream = this.open();
    const writer = new BatchWriter<StreamRequest>((calls, done) => stream.write({ calls }, () => done()), {
      sizeOf: streamRequestBytes,
      batchBytesMax: FORWARD_BATCH_BYTES_MAX,
    });
    this.current = { stream, writer };
    stream.on('data', (batch: ReplyBatch) => {
      for (const reply of batch.replies) this.pending.get(reply.call_id)?.resolve(reply);
    });
    stream.on('error', (err) => this.broken(stream, err.code ?? GrpcStatus.UNAVAILABLE, err.details ?? err.message));
    stream.on('end', () => this.broken(stream, GrpcStatus.UNAVAILABLE, 'forwarding stream ended'));
    return this.current;
  }

  /** Fails every call in flight on `stream` (if it is the current one) and forgets it. */
  private broken(stream: CallStream | undefined, code: number, details: string): void {
    if (stream === undefined || this.current?.stream !== stream) return;
    this.current = undefined;
    const calls = [...this.pending.values()];
    this.pending.clear();
    for (const c of calls) c.reject(new StreamCallError(code, details));
    stream.end();
  }
}
