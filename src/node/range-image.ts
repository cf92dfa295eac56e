/**
 * Fetching a range's state image from a peer, outside raft (docs/node.md
 * "Range engines"): a replica whose state is gone — a memory-engine range
 * after a restart, or a range whose snapshot install was cut short after raft
 * recorded the snapshot — rebuilds from a peer replica's image before its
 * raft group is hosted again.
 *
 * `RangeImage/Fetch` on the peer port is a server-streaming call: the
 * request is `rangeId u64 | minIndex u64`; the answer streams the replica's
 * snapshot image (shard/replica/snapshot.ts, checksummed, range id inside)
 * in chunks of RANGE_IMAGE_CHUNK_BYTES. A peer whose replica is missing,
 * uninitialized or has applied less than `minIndex` answers
 * FAILED_PRECONDITION; the fetcher then tries another peer.
 */
import * as grpc from '@grpc/grpc-js';
import { SNAPSHOT_BYTES_MAX } from '../shard/replica/snapshot.js';
import { encodeU64, readU64 } from '../shard/replica/keys.js';
import type { Replica } from '../shard/replica/index.js';

/** gRPC path of the fetch call. */
export const RANGE_IMAGE_FETCH_PATH = '/keyspan.node.RangeImage/Fetch';
/** Bytes per streamed chunk. */
export const RANGE_IMAGE_CHUNK_BYTES = 1024 * 1024;
/** A fetch that has not completed within this time is abandoned (the next peer is tried). */
export const RANGE_IMAGE_FETCH_TIMEOUT_MS = 60_000;
const REQUEST_BYTES = 16;

function identity(b: Buffer): Buffer {
  return b;
}

/** The grpc-js definition of the RangeImage service (raw bytes both ways). */
export const RANGE_IMAGE_SERVICE_DEFINITION: grpc.ServiceDefinition = {
  Fetch: {
    path: RANGE_IMAGE_FETCH_PATH,
    requestStream: false,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

/**
 * The service's implementation over this node's replicas: `lookup` gives
 * the hosted, serving replica of a range (undefined otherwise).
 */
export function rangeImageService(lookup: (rangeId: number) => Replica | undefined): grpc.UntypedServiceImplementation {
  const fetch = (call: grpc.ServerWritableStream<Buffer, Buffer>): void => {
    void (async () => {
      const req = call.request;
      if (req.length !== REQUEST_BYTES) throw Object.assign(new Error('malformed RangeImage request'), { code: grpc.status.INVALID_ARGUMENT });
      const rangeId = readU64(req, 0);
      const minIndex = readU64(req, 8);
      const replica = lookup(rangeId);
      if (replica === undefined || !replica.isInitialized || replica.appliedIndex() < minIndex) {
        const have = replica?.isInitialized === true ? `applied ${replica.appliedIndex()}` : 'no initialized replica';
        throw Object.assign(new Error(`range ${rangeId}: ${have}, index ${minIndex} needed`), { code: grpc.status.FAILED_PRECONDITION });
      }
      const { data } = await replica.buildSnapshot();
      for (let o = 0; o < data.length; o += RANGE_IMAGE_CHUNK_BYTES) {
        const chunk = Buffer.from(data.buffer, data.byteOffset + o, Math.min(RANGE_IMAGE_CHUNK_BYTES, data.length - o));
        if (!call.write(chunk)) await new Promise<void>((resolve) => call.once('drain', resolve));
      }
      call.end();
    })().catch((e: unknown) => {
      const code = (e as { code?: unknown }).code;
      // grpc-js turns an 'error' event on a server stream into the call's status.
      const status: Partial<grpc.StatusObject> = {
        code: typeof code === 'number' ? code : grpc.status.INTERNAL,
        details: e instanceof Error ? e.message : String(e),
      };
      call.emit('error', status);
    });
  };
  return { Fetch: fetch };
}

/**
 * Fetches range `rangeId`'s image at `minIndex` or later from the peer at
 * `address` (host:port). Rejects on any failure (the caller tries another
 * peer); the image itself is validated by whoever installs it.
 */
export async function fetchRangeImage(address: string, rangeId: number, minIndex: number, signal?: AbortSignal): Promise<Uint8Array> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': RANGE_IMAGE_CHUNK_BYTES + 1024,
    'grpc.use_local_subchannel_pool': 1,
    'grpc.enable_retries': 0,
  });
  try {
    const request = Buffer.concat([encodeU64(rangeId), encodeU64(minIndex)]);
    const call = client.makeServerStreamRequest<Buffer, Buffer>(RANGE_IMAGE_FETCH_PATH, identity, identity, request, new grpc.Metadata(), {
      deadline: Date.now() + RANGE_IMAGE_FETCH_TIMEOUT_MS,
    });
    const cancel = (): void => call.cancel();
    signal?.addEventListener('abort', cancel, { once: true });
    try {
      const chunks: Buffer[] = [];
      let bytes = 0;
      for await (const chunk of call as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        if (bytes > SNAPSHOT_BYTES_MAX) {
          call.cancel();
          throw new Error(`range ${rangeId}: image from ${address} exceeds ${SNAPSHOT_BYTES_MAX} bytes`);
        }
        chunks.push(chunk);
      }
      return Buffer.concat(chunks);
    } finally {
      signal?.removeEventListener('abort', cancel);
    }
  } finally {
    client.close();
  }
}
