/** Watch streams shared by the watch-latency and mixed workloads. */
import type { EtcdMessage } from '../../../src/gateway/proto.js';
import type { BidiStream, Conn } from '../client.js';
import type { Recorder } from '../histogram.js';
import { nowMs, sentTimeOf } from '../keys.js';

/** How long a watch may take to be created before the run gives up. */
const WATCH_CREATE_TIMEOUT_MS = 30_000;

/** An open watch on a key range. */
export interface OpenWatch {
  readonly stream: BidiStream;
  /** Resolves when an event on `until` arrives, the stream ends, or {@link OpenWatch.close} is called. */
  readonly finished: Promise<void>;
  close(): void;
}

/**
 * Opens a Watch stream on [key, rangeEnd) and resolves once the server
 * confirms it. Every event's delivery latency (now minus the send time the
 * value carries) is recorded under `op`; an event on `until` ends the watch.
 */
export function openWatch(opts: {
  conn: Conn;
  key: Buffer;
  rangeEnd: Buffer;
  recorder: Recorder;
  op: string;
  until?: Buffer;
}): Promise<OpenWatch> {
  const stream = opts.conn.bidi('etcdserverpb.Watch', 'Watch');
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  const close = (): void => {
    finish();
    stream.cancel();
  };
  return new Promise((resolve, reject) => {
    let created = false;
    const timer = setTimeout(() => {
      close();
      reject(new Error('watch was not created in time'));
    }, WATCH_CREATE_TIMEOUT_MS);
    stream.on('data', (res: EtcdMessage) => {
      if (res['created'] === true && !created) {
        created = true;
        clearTimeout(timer);
        resolve({ stream, finished, close });
      }
      const now = nowMs();
      for (const ev of res['events'] as EtcdMessage[]) {
        const kv = ev['kv'] as EtcdMessage | undefined;
        if (kv === undefined) continue;
        const key = kv['key'] as Buffer;
        if (opts.until !== undefined && key.equals(opts.until)) {
          close();
          return;
        }
        const sent = sentTimeOf(kv['value'] as Buffer);
        if (sent !== undefined) opts.recorder.record(opts.op, (now - sent) * 1000);
        else opts.recorder.count(`${opts.op}-untimed`);
      }
    });
    stream.on('error', (err: Error & { code?: number }) => {
      // CANCELLED is our own close().
      if (err.code !== 1) opts.recorder.error(opts.op, err);
      finish();
      if (!created) {
        clearTimeout(timer);
        reject(err);
      }
    });
    stream.on('end', finish);
    stream.write({ create_request: { key: opts.key, range_end: opts.rangeEnd } });
  });
}
