/**
 * Snapshot streaming: one gRPC client stream per snapshot, apart from the
 * batched message stream, so that megabytes of snapshot data never queue in
 * front of other groups' heartbeats.
 *
 * Sender: a header chunk (who, which group, the 'snap' message without its
 * data, the data length), then data chunks of `snapshotChunkBytes`, awaiting
 * the stream's 'drain' whenever gRPC's write buffer is full, so at most a few
 * chunks are ever buffered in this process. The receiver's response (or error
 * status) is the outcome the host reports to raft with `reportSnapshot`.
 *
 * Receiver: allocates the announced length (bounded by `snapshotBytesMax`),
 * copies chunks in, and on a complete stream hands the whole 'snap' message to
 * the host before answering OK.
 */
import * as grpc from '@grpc/grpc-js';
import type { Message, NodeId } from '../raft/types.js';
import type { SnapshotHeader } from './codec.js';
import { decodeSnapshotChunk, encodeSnapshotData, encodeSnapshotHeader } from './codec.js';
import { TransportCodecError } from './errors.js';
import type { TransportLimits } from './limits.js';
import { SEND_SNAPSHOT_METHOD_PATH } from './service.js';
import type { TransportStats } from './stats.js';

/** Streams one snapshot over `client`; resolves when the receiver accepted it, rejects otherwise. */
export async function sendSnapshotStream(
  client: grpc.Client,
  header: SnapshotHeader,
  data: Uint8Array,
  options: { readonly chunkBytes: number; readonly timeoutMs: number; readonly signal?: AbortSignal },
): Promise<void> {
  let call: grpc.ClientWritableStream<Buffer> | undefined;
  const outcome = new Promise<void>((resolve, reject) => {
    call = client.makeClientStreamRequest<Buffer, object>(
      SEND_SNAPSHOT_METHOD_PATH,
      (b) => b,
      (b) => b,
      new grpc.Metadata(),
      { deadline: Date.now() + options.timeoutMs },
      (err) => (err ? reject(err) : resolve()),
    );
  });
  // The outcome is awaited at the end; until then a rejection only stops the writes.
  let finished = false;
  const settled = outcome.then(
    () => {
      finished = true;
    },
    () => {
      finished = true;
    },
  );
  const stream = call;
  if (stream === undefined) throw new Error('grpc-js did not create the snapshot call synchronously');
  // Errors arrive through the callback; this listener keeps a late 'error' event from crashing.
  stream.on('error', () => undefined);
  // Closing the transport cancels the stream; closing the channel alone would let it run on.
  const cancel = (): void => stream.cancel();
  options.signal?.addEventListener('abort', cancel, { once: true });
  void settled.then(() => options.signal?.removeEventListener('abort', cancel));
  if (options.signal?.aborted === true) cancel();

  const writeOrWait = async (chunk: Buffer): Promise<void> => {
    if (stream.write(chunk)) return;
    await Promise.race([new Promise<void>((resolve) => stream.once('drain', () => resolve())), settled]);
  };

  await writeOrWait(encodeSnapshotHeader(header));
  for (let offset = 0; offset < data.length && !finished; offset += options.chunkBytes) {
    await writeOrWait(encodeSnapshotData(data.subarray(offset, offset + options.chunkBytes)));
  }
  if (!finished) stream.end();
  await outcome;
}

/** What the snapshot receiver needs from its transport. */
export interface SnapshotReceiverContext {
  readonly localNodeId: NodeId;
  readonly limits: TransportLimits;
  readonly stats: TransportStats;
  /** Hands a complete snapshot message to the host (known or unknown group). */
  deliver(groupId: number, msg: Message, fromNode: NodeId): void;
}

/** An error status for a snapshot stream's callback. */
function status(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}

/** The server-side handler of `SendSnapshot`. */
export function snapshotStreamHandler(
  ctx: SnapshotReceiverContext,
): grpc.handleClientStreamingCall<Buffer, object> {
  let receiving = 0;
  return (call, callback) => {
    let done = false;
    let header: SnapshotHeader | undefined;
    let buffer: Uint8Array | undefined;
    let received = 0;

    const finish = (err?: grpc.ServiceError): void => {
      if (done) return;
      done = true;
      receiving--;
      if (err !== undefined) {
        ctx.stats.snapshotsReceiveFailed++;
        callback(err);
      } else {
        callback(null, {});
      }
    };

    if (receiving >= ctx.limits.snapshotReceivesMax) {
      ctx.stats.snapshotsReceiveFailed++;
      callback(status(grpc.status.RESOURCE_EXHAUSTED, `${receiving} snapshots already being received`));
      return;
    }
    receiving++;

    const onChunk = (bytes: Buffer): grpc.ServiceError | undefined => {
      const chunk = decodeSnapshotChunk(bytes);
      if (chunk.header !== undefined) {
        if (header !== undefined) return status(grpc.status.INVALID_ARGUMENT, 'second snapshot header');
        if (chunk.header.toNode !== ctx.localNodeId) {
          ctx.stats.misaddressed++;
          return status(
            grpc.status.FAILED_PRECONDITION,
            `snapshot for node ${chunk.header.toNode} reached node ${ctx.localNodeId}`,
          );
        }
        if (chunk.header.dataBytes > ctx.limits.snapshotBytesMax) {
          return status(
            grpc.status.RESOURCE_EXHAUSTED,
            `snapshot of ${chunk.header.dataBytes} bytes exceeds ${ctx.limits.snapshotBytesMax}`,
          );
        }
        header = chunk.header;
        buffer = new Uint8Array(header.dataBytes);
      } else if (header === undefined || buffer === undefined) {
        return status(grpc.status.INVALID_ARGUMENT, 'snapshot data before its header');
      }
      if (received + chunk.data.length > buffer.length) {
        return status(grpc.status.INVALID_ARGUMENT, `snapshot data exceeds announced ${buffer.length} bytes`);
      }
      buffer.set(chunk.data, received);
      received += chunk.data.length;
      ctx.stats.snapshotBytesReceived += chunk.data.length;
      return undefined;
    };

    call.on('data', (bytes: Buffer) => {
      if (done) return;
      let err: grpc.ServiceError | undefined;
      try {
        err = onChunk(bytes);
      } catch (e) {
        if (!(e instanceof TransportCodecError)) throw e;
        ctx.stats.decodeErrors++;
        err = status(grpc.status.INVALID_ARGUMENT, e.message);
      }
      if (err !== undefined) finish(err);
    });
    call.on('end', () => {
      if (done) return;
      if (header === undefined || buffer === undefined || received !== buffer.length) {
        finish(status(grpc.status.INVALID_ARGUMENT, `incomplete snapshot: ${received} bytes received`));
        return;
      }
      const snap = header.message.snapshot;
      if (snap === undefined) throw new Error('decodeSnapshotChunk admitted a header without a snapshot');
      ctx.stats.snapshotsReceived++;
      ctx.deliver(header.groupId, { ...header.message, snapshot: { meta: snap.meta, data: buffer } }, header.fromNode);
      finish();
    });
    call.on('error', () => finish(status(grpc.status.CANCELLED, 'snapshot stream broke off')));
    call.on('cancelled', () => finish(status(grpc.status.CANCELLED, 'snapshot stream cancelled')));
  };
}
