/**
 * ReadOnly: the leader's queue of ReadIndex requests waiting for a quorum of
 * heartbeat acknowledgements (ReadOnlySafe). Each request remembers the
 * commit index at the time it arrived; once a quorum acks a heartbeat that
 * carried its context (or a later one), that index is safe to read at.
 */
import type { Message, NodeId } from './types.js';
import { bytesKey } from './util.js';
import { invariant } from './errors.js';

/** Named bound: a leader holds at most this many unconfirmed read requests. */
export const READ_INDEX_QUEUE_MAX = 65_536;

interface ReadIndexStatus {
  readonly req: Message;
  readonly index: number;
  readonly acks: Map<NodeId, boolean>;
}

export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  size(): number {
    return this.queue.length;
  }

  /** Queues a request taken at commit index `index`; a duplicate context is ignored. */
  addRequest(index: number, m: Message): boolean {
    invariant(m.context !== undefined, 'read index request without context');
    const key = bytesKey(m.context);
    if (this.pending.has(key)) return false;
    this.pending.set(key, { req: m, index, acks: new Map() });
    this.queue.push(key);
    return true;
  }

  /** Records an ack for `ctx` from `id`; returns the acks so far (undefined if unknown ctx). */
  recvAck(id: NodeId, ctx: Uint8Array): ReadonlyMap<NodeId, boolean> | undefined {
    const rs = this.pending.get(bytesKey(ctx));
    if (rs === undefined) return undefined;
    rs.acks.set(id, true);
    return rs.acks;
  }

  /**
   * Dequeues every request up to and including the one with `ctx`: a quorum
   * that acked a later heartbeat also confirms leadership for earlier ones.
   */
  advance(ctx: Uint8Array): Array<{ req: Message; index: number }> {
    const key = bytesKey(ctx);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const done = this.queue.slice(0, at + 1);
    this.queue = this.queue.slice(at + 1);
    const out: Array<{ req: Message; index: number }> = [];
    for (const k of done) {
      const rs = this.pending.get(k);
      invariant(rs !== undefined, 'read index queue and map out of sync');
      this.pending.delete(k);
      out.push({ req: rs.req, index: rs.index });
    }
    return out;
  }

  /** Context of the newest pending request (piggybacked on regular heartbeats). */
  lastPendingRequestCtx(): Uint8Array | undefined {
    const k = this.queue[this.queue.length - 1];
    return k === undefined ? undefined : this.pending.get(k)!.req.context;
  }
}
