import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message, NodeId } from '../../../src/group/raft/index.js';
import { MESSAGE_OVERHEAD_BYTES, READY_ROOM_MESSAGES, SendBudget, messageCost } from '../../../src/group/host/send-budget.js';
import type { SendRoom } from '../../../src/group/transport/index.js';

function message(type: Message['type'], to: NodeId, dataBytes = 0): Message {
  return {
    type, to, from: 1, term: 1, logTerm: 0, index: 0, commit: 0, reject: false, rejectHint: 0,
    entries: dataBytes > 0 ? [{ type: 'normal', term: 1, index: 1, data: new Uint8Array(dataBytes) }] : [],
  } as unknown as Message;
}

test('SendBudget: a peer without room holds a Ready back; charged messages use up the room', () => {
  const rooms = new Map<NodeId, SendRoom | undefined>([
    [2, { messages: READY_ROOM_MESSAGES + 1, bytes: 1 << 20, queued: 3 }],
    [3, undefined], // not connected or stalled: never holds back
  ]);
  const reads: NodeId[] = [];
  const budget = new SendBudget((n) => {
    reads.push(n);
    return rooms.get(n);
  }, 1024);
  assert.equal(budget.admits([2, 3]), true);
  budget.charge([message('app', 2, 100), message('heartbeat', 2), message('app', 3)]);
  assert.equal(budget.admits([2, 3]), true, `${READY_ROOM_MESSAGES} messages left`);
  budget.charge([message('appResp', 2)]);
  assert.equal(budget.admits([3]), true, 'a group not sending to 2 still goes');
  assert.equal(budget.admits([2, 3]), false);
  assert.deepEqual([...budget.blocked], [2]);
  assert.equal(budget.exhausted([2, 3]), false);
  assert.equal(budget.exhausted([2]), true);
  assert.deepEqual(reads, [2, 3], 'the transport is read once per peer per turn');
  // Room comes back once the transport reports it.
  assert.equal(budget.roomReturned(), true, 'the transport still reports the room it had');
  rooms.set(2, { messages: 0, bytes: 0, queued: 10 });
  assert.equal(budget.roomReturned(), false);
  rooms.set(2, { messages: 0, bytes: 0, queued: 0 });
  assert.equal(budget.roomReturned(), true, 'an empty lane always takes the next Ready');
});

test('SendBudget: snapshots and urgent messages are not charged; bytes bound too', () => {
  const budget = new SendBudget(() => ({ messages: 100, bytes: 2000, queued: 1 }), 1000);
  budget.charge([message('snap', 2), message('vote', 2), message('heartbeatResp', 2)]);
  assert.equal(budget.admits([2]), true);
  budget.charge([message('prop', 2, 1000)]);
  assert.equal(budget.admits([2]), false, 'under 1000 bytes left');
  assert.equal(messageCost(message('app', 2, 10)), 10 + 2 * MESSAGE_OVERHEAD_BYTES);
});
