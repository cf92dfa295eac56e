/**
 * Pure pieces of the host: the coalesced heartbeat codec, the proposal
 * window, node liveness and the quiesce marker.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '../../../src/group/raft/index.js';
import {
  NodeLiveness,
  ProposalWindow,
  QUIESCE_CTX,
  TooManyRequestsError,
  decodeCoalesced,
  encodeCoalesced,
  isCoalesced,
  isQuiesceMessage,
} from '../../../src/group/host/index.js';

function hb(type: 'heartbeat' | 'heartbeatResp', term: number, commit: number, context?: Uint8Array): Message {
  return { type, to: 2, from: 1, term, logTerm: 0, index: 0, entries: [], commit, reject: false, rejectHint: 0, ...(context !== undefined ? { context } : {}) };
}

describe('coalesced heartbeats', () => {
  it('round-trips heartbeats and responses of many groups, keeping absent and empty contexts apart', () => {
    const parts = [
      { groupId: 1, msg: hb('heartbeat', 7, 42) },
      { groupId: 2 ** 40, msg: hb('heartbeatResp', 9, 0, new Uint8Array([1, 2, 3])) },
      { groupId: 3, msg: hb('heartbeat', 1, 5, new Uint8Array(0)) },
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
