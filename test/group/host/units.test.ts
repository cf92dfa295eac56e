/**
 * Pure pieces of the host: the coalesced heartbeat codec, the proposal
 * window, node liveness and the quiesce marker.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '../../../src/group/raft/index.js';
import {
  IntervalTicker,
  LeaseClock,
  NodeLiveness,
  hostLeaseDriftMarginTicks,
  ProposalWindow,
  QUIESCE_CTX,
  TooManyRequestsError,
  decodeCoalesced,
  encodeCoalesced,
  isCoalesced,
  isQuiesceMessage,
} from '../../../src/group/host/index.js';

function hb(type: 'heartbeat' | 'heartbeatResp', term: number, commit: number, context?: Uint8Array, index = 0): Message {
  return { type, to: 2, from: 1, term, logTerm: 0, index, entries: [], commit, reject: false, rejectHint: 0, ...(context !== undefined ? { context } : {}) };
}

/** A version-1 pack (written by nodes before parts carried the lease stamp): no index field. */
function encodeVersion1(parts: readonly { groupId: number; msg: Message }[]): Message {
  const bytes: number[] = [0x4b, 0x48, 1, 0, 0, 0, parts.length];
  const u64 = (v: number): void => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v));
    bytes.push(...b);
  };
  for (const { groupId, msg } of parts) {
    u64(groupId);
    bytes.push(msg.type === 'heartbeat' ? 0 : 1);
    u64(msg.term);
    u64(msg.commit);
    const ctx = msg.context;
    const len = ctx?.byteLength ?? 0xffff;
    bytes.push(len >> 8, len & 0xff);
    if (ctx !== undefined) bytes.push(...ctx);
  }
  return { ...hb('heartbeat', 0, 0), context: new Uint8Array(bytes) };
}

describe('coalesced heartbeats', () => {
  it('round-trips heartbeats and responses of many groups, keeping absent and empty contexts apart', () => {
    const parts = [
      { groupId: 1, msg: hb('heartbeat', 7, 42, undefined, 1234) },
      { groupId: 2 ** 40, msg: hb('heartbeatResp', 9, 0, new Uint8Array([1, 2, 3]), 1233) },
      { groupId: 3, msg: hb('heartbeat', 1, 5, new Uint8Array(0), Number.MAX_SAFE_INTEGER) },
      { groupId: 4, msg: hb('heartbeat', 2, 6, QUIESCE_CTX) },
    ];
    const packed = encodeCoalesced(1, 2, parts);
    assert.ok(isCoalesced(packed));
    const back = decodeCoalesced(packed, 1, 2);
    assert.ok(back !== undefined);
    assert.deepEqual(back, parts);
    assert.ok(isQuiesceMessage(back[3]!.msg));
    assert.equal(back[0]!.msg.context, undefined);
    assert.deepEqual(back[2]!.msg.context, new Uint8Array(0));
  });

  it('carries the lease stamp (index) of heartbeats and of the responses that echo it', () => {
    const parts = [
      { groupId: 5, msg: hb('heartbeat', 3, 10, undefined, 77) },
      { groupId: 6, msg: hb('heartbeatResp', 3, 0, new Uint8Array([9]), 76) },
    ];
    const back = decodeCoalesced(encodeCoalesced(1, 2, parts), 1, 2);
    assert.deepEqual(
      back?.map((p) => [p.groupId, p.msg.type, p.msg.index]),
      [
        [5, 'heartbeat', 77],
        [6, 'heartbeatResp', 76],
      ],
    );
  });

  it('reads version-1 packs (no stamp) as stamp 0, which never forms a lease', () => {
    const parts = [
      { groupId: 1, msg: hb('heartbeat', 7, 42) },
      { groupId: 2, msg: hb('heartbeatResp', 9, 0, new Uint8Array([1, 2, 3])) },
    ];
    const v1 = encodeVersion1(parts);
    assert.ok(isCoalesced(v1));
    assert.deepEqual(decodeCoalesced(v1, 1, 2), parts);
  });

  it('rejects an unknown version and a stamp beyond the safe integers', () => {
    const packed = encodeCoalesced(1, 2, [{ groupId: 1, msg: hb('heartbeat', 1, 1, undefined, 5) }]);
    const ctx = packed.context!.slice();
    ctx[2] = 3;
    assert.equal(decodeCoalesced({ ...packed, context: ctx }, 1, 2), undefined);
    const big = packed.context!.slice();
    new DataView(big.buffer).setBigUint64(7 + 25, 2n ** 60n); // the first part's index
    assert.equal(decodeCoalesced({ ...packed, context: big }, 1, 2), undefined);
  });

  it('rejects truncated or trailing bytes', () => {
    const packed = encodeCoalesced(1, 2, [{ groupId: 1, msg: hb('heartbeat', 1, 1) }]);
    const ctx = packed.context!;
    assert.equal(decodeCoalesced({ ...packed, context: ctx.slice(0, ctx.length - 1) }, 1, 2), undefined);
    const longer = new Uint8Array(ctx.length + 1);
    longer.set(ctx);
    assert.equal(decodeCoalesced({ ...packed, context: longer }, 1, 2), undefined);
  });
});

describe('ProposalWindow', () => {
  it('bounds count and bytes and releases by applied index', () => {
    const w = new ProposalWindow(1, { proposalsPendingMax: 3, proposalBytesPendingMax: 100 });
    w.add(10, 5);
    w.add(10, 6);
    w.add(10, 7);
    assert.throws(() => w.check(1), TooManyRequestsError);
    assert.equal(w.release(6), 2);
    assert.equal(w.count, 1);
    assert.throws(() => w.check(95), TooManyRequestsError);
    w.check(90);
    w.release(7);
    w.check(1000); // an empty window admits one oversized proposal
  });
});

describe('NodeLiveness', () => {
  it('reports a node silent once after the timeout, and not after hearing it again', () => {
    const l = new NodeLiveness(2, 10);
    assert.deepEqual(l.newlySilent([2, 3], 0), []);
    l.heard(2, 5);
    assert.deepEqual(l.newlySilent([2, 3], 11), [3]);
    assert.deepEqual(l.newlySilent([2, 3], 12), []);
    assert.deepEqual(l.newlySilent([2, 3], 16), [2]);
    l.heard(2, 17);
    assert.equal(l.isSilent(2), false);
  });
});

describe('LeaseClock', () => {
  it('allows lease reads while at most one tick is due and not applied', () => {
    const c = new LeaseClock(100, 1_000);
    assert.equal(c.leaseUsable(1_150), true, 'one tick due');
    assert.equal(c.leaseUsable(1_200), false, 'two ticks due, none applied');
    assert.equal(c.onTick(1_201), false, 'one applied, one due: keeps going');
    assert.equal(c.leaseUsable(1_250), true);
    assert.equal(c.onTick(1_260), false);
    assert.equal(c.behind(1_260), 0);
  });

  it('asks for every lease to be forfeited when ticks fell behind, then starts over from that tick', () => {
    const c = new LeaseClock(100, 0);
    assert.equal(c.onTick(100), false);
    // The loop stalled: ticks 2..5 were due, one is applied.
    assert.equal(c.onTick(530), true);
    assert.equal(c.behind(530), 0);
    assert.equal(c.onTick(630), false);
    assert.equal(c.leaseUsable(729), true);
  });

  it('a tick applied early moves the base down, so later lateness counts in full', () => {
    const c = new LeaseClock(100, 0);
    assert.equal(c.onTick(60), false); // 40 ms early
    assert.equal(c.behind(259), 1);
    assert.equal(c.leaseUsable(260), false, 'two periods after the early tick, two ticks are due');
  });

  it('the host margin adds one tick to raft default and leaves some lease', () => {
    assert.equal(hostLeaseDriftMarginTicks(10), 3);
    assert.equal(hostLeaseDriftMarginTicks(2), 1);
    assert.equal(hostLeaseDriftMarginTicks(100), 12);
  });
});

describe('IntervalTicker', () => {
  it('skips ticks missed while the event loop was blocked instead of firing them in a burst', async () => {
    const ticker = new IntervalTicker(10);
    const at: number[] = [];
    ticker.start(() => at.push(performance.now()));
    let blockEnd = 0;
    try {
      await new Promise((r) => setTimeout(r, 25));
      blockEnd = performance.now() + 100;
      while (performance.now() < blockEnd) {
        // the event loop is blocked for ten periods
      }
      await new Promise((r) => setTimeout(r, 40));
    } finally {
      ticker.stop();
    }
    const first = at.find((t) => t >= blockEnd);
    assert.ok(first !== undefined, 'ticks resumed after the block');
    // On time: at most 4 ticks in two periods — the late tick may land just before a period
    // boundary, and a timer may fire up to a millisecond early by the event loop's millisecond
    // clock, so the window can hold the late tick and three due ones. A missed-tick replay
    // fires ~10 in a row.
    const burst = at.filter((t) => t >= first && t < first + 20).length;
    assert.ok(burst <= 4, `${burst} ticks within 20 ms after the block`);
  });
});
