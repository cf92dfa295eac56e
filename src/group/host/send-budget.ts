/**
 * Flow control from the transport back to the loop: how much raft work a
 * turn may take so that its messages fit the peers' bulk send queues. A
 * burst of appends past a queue's bound is dropped, resent at the next
 * heartbeat response and dropped again (congestion collapse); TiKV likewise
 * bounds what is in flight per peer. Pure: the room figures come from the
 * transport through `roomOf`.
 */
import type { Message, NodeId } from '../raft/index.js';
import { laneOf, type SendRoom } from '../transport/index.js';

/**
 * Room a group's Ready is assumed to need per peer before it is taken: one
 * Ready usually sends one append (or one response) per peer, a few while a
 * follower catches up. Its real messages are then charged.
 */
export const READY_ROOM_MESSAGES = 4;
/** Bytes a message costs beyond its entries' data (header, hard state, framing). */
export const MESSAGE_OVERHEAD_BYTES = 64;

/** Bytes a message is charged: its entries' data and context plus a fixed overhead. */
export function messageCost(m: Message): number {
  let bytes = MESSAGE_OVERHEAD_BYTES + (m.context?.byteLength ?? 0);
  for (const e of m.entries) bytes += e.data.byteLength + MESSAGE_OVERHEAD_BYTES;
  return bytes;
}

/** One turn's budget of bulk-lane room per peer node. */
export class SendBudget {
  private readonly room = new Map<NodeId, { messages: number; bytes: number; queued: number } | undefined>();
  /** Peers found without room this turn. */
  readonly blocked = new Set<NodeId>();

  constructor(
    private readonly roomOf: (node: NodeId) => SendRoom | undefined,
    private readonly readyRoomBytes: number,
  ) {}

  private left(node: NodeId): { messages: number; bytes: number; queued: number } | undefined {
    if (!this.room.has(node)) {
      const r = this.roomOf(node);
      this.room.set(node, r === undefined ? undefined : { messages: r.messages, bytes: r.bytes, queued: r.queued });
    }
    return this.room.get(node);
  }

  /** Room for one more Ready: an empty lane always has it (so tiny queue bounds never stall a peer). */
  private fits(r: { messages: number; bytes: number; queued: number }): boolean {
    return r.queued === 0 || (r.messages >= READY_ROOM_MESSAGES && r.bytes >= this.readyRoomBytes);
  }

  /** Does every one of `peers` have room for a Ready's messages? (Peers without a room figure are not held back.) */
  admits(peers: Iterable<NodeId>): boolean {
    let ok = true;
    for (const p of peers) {
      const r = this.left(p);
      if (r === undefined) continue;
      if (!this.fits(r)) {
        this.blocked.add(p);
        ok = false;
      }
    }
    return ok;
  }

  /** Charges a Ready's bulk messages (snapshots travel on their own streams). */
  charge(msgs: readonly Message[]): void {
    for (const m of msgs) {
      if (m.type === 'snap' || laneOf(m) !== 'bulk') continue;
      const r = this.left(m.to);
      if (r === undefined) continue;
      r.messages -= 1;
      r.bytes -= messageCost(m);
      r.queued += 1;
    }
  }

  /** Is every one of `nodes` out of room (so no further group can be admitted this turn)? */
  exhausted(nodes: readonly NodeId[]): boolean {
    if (nodes.length === 0) return false;
    for (const n of nodes) if (!this.blocked.has(n)) return false;
    return true;
  }

  /** Has some blocked peer room again now (re-reading the transport)? */
  roomReturned(): boolean {
    for (const p of this.blocked) {
      const r = this.roomOf(p);
      if (r === undefined || this.fits(r)) return true;
    }
    return false;
  }
}
