/**
 * Coalesced heartbeats (CockroachDB's design, host level): every raft
 * heartbeat and heartbeat response that one loop turn sends from this node
 * to the same peer node travels as ONE message of the reserved group 0,
 * whose context packs the per-group parts. The receiver unpacks it into the
 * ordinary per-group raft messages. Because a group's replica id is its
 * node id (docs/host.md), `from` and `to` are the same for every part and
 * only (group, type, term, commit, index, context) needs to travel. No
 * transport or proto change: the pack rides in a raft Message's `context`
 * bytes.
 *
 * `index` is the leader-lease stamp (docs/raft.md, "Lease-based"): the
 * leader's tick clock in a heartbeat, echoed by the follower in its
 * response. Without it a coalesced group's leader never forms a lease.
 *
 * Layout (big-endian): magic "KH" u8 u8, version u8, count u32, then per
 * part: group u64, type u8 (0 heartbeat, 1 heartbeatResp), term u64,
 * commit u64, index u64, context length u16 (NO_CONTEXT: none, which raft
 * tells apart from an empty one), context bytes. Version 1 (from older
 * nodes) lacks `index`; its parts decode with index 0 (no lease stamp).
 */
import type { Message, NodeId } from '../raft/index.js';

/** Heartbeats packed into one coalesced message at most; more go in further messages. */
export const COALESCED_HEARTBEATS_PER_MESSAGE_MAX = 2048;
/** A heartbeat whose context is longer than this (never in practice: read ids are short) is sent alone. */
export const COALESCED_CONTEXT_BYTES_MAX = 1024;

const MAGIC_0 = 0x4b; // 'K'
const MAGIC_1 = 0x48; // 'H'
/** The version this node writes: parts carry the lease stamp (`index`). */
const VERSION = 2;
/** The version without `index`, still read so a mixed-version cluster keeps its heartbeats. */
const VERSION_NO_INDEX = 1;
const HEADER_BYTES = 7;
/** Fixed bytes of a part: group, type, term, commit, index, context length. */
const PART_FIXED_BYTES = 8 + 1 + 8 + 8 + 8 + 2;
const PART_FIXED_BYTES_NO_INDEX = 8 + 1 + 8 + 8 + 2;
/** Context length marking "no context" (lengths are at most COALESCED_CONTEXT_BYTES_MAX). */
const NO_CONTEXT = 0xffff;

/** One group's heartbeat or response inside a coalesced message. */
export interface HeartbeatPart {
  readonly groupId: number;
  readonly msg: Message;
}

/** Can `m` travel coalesced? */
export function isCoalescable(m: Message): boolean {
  return (m.type === 'heartbeat' || m.type === 'heartbeatResp') && (m.context === undefined || m.context.byteLength <= COALESCED_CONTEXT_BYTES_MAX);
}

/** Packs heartbeats (all from `from` to `to`) into one message of the reserved group. */
export function encodeCoalesced(from: NodeId, to: NodeId, parts: readonly HeartbeatPart[]): Message {
  let size = HEADER_BYTES;
  for (const p of parts) size += PART_FIXED_BYTES + (p.msg.context?.byteLength ?? 0);
  const buf = new Uint8Array(size);
  const dv = new DataView(buf.buffer);
  buf[0] = MAGIC_0;
  buf[1] = MAGIC_1;
  buf[2] = VERSION;
  dv.setUint32(3, parts.length);
  let o = HEADER_BYTES;
  for (const { groupId, msg } of parts) {
    dv.setBigUint64(o, BigInt(groupId));
    dv.setUint8(o + 8, msg.type === 'heartbeat' ? 0 : 1);
    dv.setBigUint64(o + 9, BigInt(msg.term));
    dv.setBigUint64(o + 17, BigInt(msg.commit));
    dv.setBigUint64(o + 25, BigInt(msg.index));
    const ctx = msg.context;
    dv.setUint16(o + 33, ctx?.byteLength ?? NO_CONTEXT);
    o += PART_FIXED_BYTES;
    if (ctx !== undefined) {
      buf.set(ctx, o);
      o += ctx.byteLength;
    }
  }
  return { type: 'heartbeat', to, from, term: 0, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, context: buf };
}

/** Is `m` (of the reserved group) a coalesced heartbeat pack? */
export function isCoalesced(m: Message): boolean {
  const c = m.context;
  return m.type === 'heartbeat' && c !== undefined && c.byteLength >= HEADER_BYTES && c[0] === MAGIC_0 && c[1] === MAGIC_1;
}

/**
 * Unpacks a coalesced message into per-group raft messages from `fromNode`
 * to `toNode`. Returns undefined for a malformed pack (the caller drops it:
 * raft tolerates lost heartbeats).
 */
export function decodeCoalesced(m: Message, fromNode: NodeId, toNode: NodeId): HeartbeatPart[] | undefined {
  const c = m.context;
  if (c === undefined || c.byteLength < HEADER_BYTES || (c[2] !== VERSION && c[2] !== VERSION_NO_INDEX)) return undefined;
  const hasIndex = c[2] === VERSION;
  const fixedBytes = hasIndex ? PART_FIXED_BYTES : PART_FIXED_BYTES_NO_INDEX;
  const dv = new DataView(c.buffer, c.byteOffset, c.byteLength);
  const count = dv.getUint32(3);
  if (count > COALESCED_HEARTBEATS_PER_MESSAGE_MAX) return undefined;
  const out: HeartbeatPart[] = [];
  let o = HEADER_BYTES;
  const u64 = (at: number): number | undefined => {
    const v = dv.getBigUint64(at);
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined;
  };
  for (let i = 0; i < count; i++) {
    if (o + fixedBytes > c.byteLength) return undefined;
    const groupId = u64(o);
    const kind = dv.getUint8(o + 8);
    const term = u64(o + 9);
    const commit = u64(o + 17);
    const index = hasIndex ? u64(o + 25) : 0;
    const rawLen = dv.getUint16(o + fixedBytes - 2);
    const hasCtx = rawLen !== NO_CONTEXT;
    const ctxLen = hasCtx ? rawLen : 0;
    o += fixedBytes;
    if (groupId === undefined || term === undefined || commit === undefined || index === undefined || kind > 1 || o + ctxLen > c.byteLength) {
      return undefined;
    }
    const msg: Message = {
      type: kind === 0 ? 'heartbeat' : 'heartbeatResp',
      to: toNode,
      from: fromNode,
      term,
      logTerm: 0,
      index,
      entries: [],
      commit,
      reject: false,
      rejectHint: 0,
      ...(hasCtx ? { context: c.slice(o, o + ctxLen) } : {}),
    };
    o += ctxLen;
    out.push({ groupId, msg });
  }
  return o === c.byteLength ? out : undefined;
}
