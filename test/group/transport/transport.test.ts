import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { BATCH_MESSAGES_MAX, GrpcTransport, TransportUsageError } from '../../../src/group/transport/index.js';
import { closeAll, connectAll, entry, msg, startNode, waitFor } from './harness.js';

after(closeAll);

test('messages of many groups queued in one turn travel in few batches, in order', async () => {
  const [a, b] = [await startNode(1), await startNode(2)];
  connectAll([a, b]);
  const GROUPS = 100;
  const PER_GROUP = 10;
  for (let i = 0; i < PER_GROUP; i++) {
    for (let g = 1; g <= GROUPS; g++) {
      a.transport.send(2, g, msg('app', { from: 1, to: 2, index: i, entries: [entry(1, i, [g, i])] }));
    }
  }
  const total = GROUPS * PER_GROUP;
  await waitFor(() => b.rec.received.length === total, 'all messages');
  // Per (peer, stream) order is the send order, hence also per group.
  b.rec.received.forEach((r, n) => {
    assert.equal(r.groupId, (n % GROUPS) + 1);
    assert.equal(r.msg.index, Math.floor(n / GROUPS));
    assert.equal(r.fromNode, 1);
  });
  assert.equal(a.transport.stats.messagesSent, total);
  assert.equal(a.transport.stats.batchesSent, Math.ceil(total / BATCH_MESSAGES_MAX));
  assert.equal(b.transport.stats.batchesReceived, a.transport.stats.batchesSent);
  assert.equal(b.transport.stats.messagesReceived, total);
  assert.equal(b.transport.stats.bytesReceived, a.transport.stats.bytesSent);
  assert.equal(a.transport.stats.messagesDropped, 0);
});

test('three nodes exchange messages in every direction over one stream per peer', async () => {
  const nodes = [await startNode(11), await startNode(12), await startNode(13)];
  connectAll(nodes);
  const ROUNDS = 20;
  for (let round = 0; round < ROUNDS; round++) {
    for (const from of nodes) {
      for (const to of nodes) {
        if (from === to) continue;
        for (let g = 1; g <= 5; g++) {
          from.transport.send(to.transport.nodeId, g, msg('heartbeat', { from: from.transport.nodeId, to: to.transport.nodeId, commit: round }));
        }
      }
    }
    // One flush per round: each round is one batch per peer.
    for (const n of nodes) n.transport.flush();
  }
  await waitFor(() => nodes.every((n) => n.rec.received.length === ROUNDS * 5 * 2), 'all heartbeats');
  for (const n of nodes) {
    for (const from of nodes) {
      if (from === n) continue;
      const commits = n.rec.received.filter((r) => r.fromNode === from.transport.nodeId && r.groupId === 3).map((r) => r.msg.commit);
      assert.deepEqual(commits, Array.from({ length: ROUNDS }, (_, i) => i), `${from.transport.nodeId}→${n.transport.nodeId}`);
    }
    // Rounds written while the stream was still connecting leave together, so
    // batches ≤ rounds; every batch carried all five groups.
    assert.ok(n.transport.stats.batchesSent <= ROUNDS * 2, `batches ${n.transport.stats.batchesSent}`);
    assert.ok(n.transport.stats.batchesSent >= 2);
    // One long-lived stream per peer carried all of it.
    assert.equal(n.transport.stats.streamsOpened, 2);
    assert.equal(n.transport.stats.streamsAccepted, 2);
  }
});

test('messages for unknown groups go to onUnknownGroup', async () => {
  const a = await startNode(21);
  const b = await startNode(22, { knownGroups: (g) => g < 100 });
  connectAll([a, b]);
  a.transport.send(22, 5, msg('heartbeat'));
  a.transport.send(22, 100, msg('vote', { term: 9 }));
  a.transport.send(22, 6, msg('heartbeat'));
  await waitFor(() => b.rec.received.length === 2 && b.rec.unknown.length === 1, 'delivery');
  assert.equal(b.rec.unknown[0]?.groupId, 100);
  assert.equal(b.rec.unknown[0]?.msg.term, 9);
  assert.equal(b.rec.unknown[0]?.fromNode, 21);
  assert.equal(b.transport.stats.unknownGroupMessages, 1);
  assert.deepEqual(b.rec.received.map((r) => r.groupId), [5, 6]);
});

test('a message to a node without an address is dropped and reported unreachable', async () => {
  const a = await startNode(31);
  a.transport.send(99, 1, msg('heartbeat'));
  assert.equal(a.transport.stats.drops.noPeer, 1);
  // Reported on the next turn, never inside send().
  assert.deepEqual(a.rec.unreachable, []);
  await waitFor(() => a.rec.unreachable.length === 1, 'unreachable');
  assert.deepEqual(a.rec.unreachable, [99]);
});

test('an oversized message is dropped; the rest still go', async () => {
  const [a, b] = [await startNode(41, { limits: { messageBytesMax: 1000 } }), await startNode(42)];
  connectAll([a, b]);
  a.transport.send(42, 1, msg('app', { entries: [entry(1, 1, new Array(2000).fill(7))] }));
  a.transport.send(42, 1, msg('heartbeat'));
  await waitFor(() => b.rec.received.length === 1, 'the small message');
  assert.equal(a.transport.stats.drops.oversized, 1);
  assert.equal(b.rec.received[0]?.msg.type, 'heartbeat');
});

test('a receiver refuses a stream meant for another node id', async () => {
  const [a, b] = [await startNode(51), await startNode(52)];
  // A stale address book: node 53 is believed to live at node 52's address.
  a.transport.setPeer(53, b.address);
  a.transport.send(53, 1, msg('heartbeat'));
  await waitFor(() => a.rec.unreachable.includes(53), 'unreachable 53');
  assert.equal(b.rec.received.length, 0);
  assert.ok(b.transport.stats.misaddressed >= 1);
});

test('bad addresses and node ids are refused', () => {
  const handlers = { onMessage: () => undefined };
  assert.throws(() => new GrpcTransport({ nodeId: 0, listenAddress: '127.0.0.1:0', handlers }), TransportUsageError);
  assert.throws(() => new GrpcTransport({ nodeId: 1, listenAddress: 'nope', handlers }), TransportUsageError);
  const t = new GrpcTransport({ nodeId: 1, listenAddress: '127.0.0.1:0', handlers });
  assert.throws(() => t.setPeer(2, '127.0.0.1:99999'), TransportUsageError);
  void t.close();
});

test('throughput over loopback (figure for the report)', async () => {
  const [a, b] = [await startNode(61), await startNode(62)];
  connectAll([a, b]);
  // Warm up the connection first.
  a.transport.send(62, 1, msg('heartbeat'));
  await waitFor(() => b.rec.received.length === 1, 'warm-up');
  const TOTAL = 50_000;
  const PER_TURN = 1000;
  const t0 = performance.now();
  for (let sent = 0; sent < TOTAL; sent += PER_TURN) {
    for (let i = 0; i < PER_TURN; i++) a.transport.send(62, (i % 500) + 1, msg('heartbeat', { commit: sent + i, term: 5 }));
    a.transport.flush();
    // A host is paced by raft's inflight limits; here: wait until the queue has drained.
    await waitFor(() => (a.transport.peerStatus(62)?.queuedMessages ?? 0) === 0, 'queue drained', 30_000);
  }
  await waitFor(() => b.rec.received.length === TOTAL + 1, 'all', 30_000);
  const ms = performance.now() - t0;
  const rate = Math.round(TOTAL / (ms / 1000));
  console.log(`# loopback, sender and receiver in one process: ${TOTAL} heartbeats in ${ms.toFixed(0)} ms = ${rate} msg/s, ${a.transport.stats.batchesSent} batches`);
  assert.equal(a.transport.stats.messagesDropped, 0);
});

test('votes and heartbeats are neither dropped nor delayed behind a flood of appends', async () => {
  const QUEUE_MAX = 50;
  const APPENDS = 4 * QUEUE_MAX;
  const a = await startNode(31, { limits: { peerQueueMessagesMax: QUEUE_MAX } });
  const b = await startNode(32);
  connectAll([a, b]);
  // All in one event-loop turn: nothing leaves before the vote and the heartbeat are queued.
  for (let i = 0; i < APPENDS; i++) a.transport.send(32, 1 + i, msg('app', { from: 31, to: 32, index: i, entries: [entry(1, i, [i])] }));
  a.transport.send(32, 7, msg('vote', { from: 31, to: 32, term: 3 }));
  a.transport.send(32, 8, msg('heartbeat', { from: 31, to: 32, commit: 5 }));
  a.transport.send(32, 9, msg('appResp', { from: 31, to: 32, index: 4 }));
  await waitFor(() => b.rec.received.length === QUEUE_MAX + 2, 'delivery');
  // The urgent lane goes first; the bulk lane keeps its order and its bound.
  assert.deepEqual(b.rec.received.slice(0, 2).map((r) => [r.groupId, r.msg.type]), [[7, 'vote'], [8, 'heartbeat']]);
  assert.deepEqual(b.rec.received.slice(2).map((r) => r.msg.index), Array.from({ length: QUEUE_MAX }, (_, i) => i));
  assert.equal(a.transport.stats.drops.queueFull, APPENDS - QUEUE_MAX + 1);
  await waitFor(() => a.rec.unreachable.includes(32), 'the overflow reported');
});

test('bulkRoom reports what the bulk lane of a connected peer takes now, and onBulkRoom its connection', async () => {
  const LANE = 64;
  const [a, b] = [await startNode(41, { limits: { peerQueueMessagesMax: LANE } }), await startNode(42)];
  assert.equal(a.transport.bulkRoom(42), undefined, 'unknown peer: not held back');
  connectAll([a, b]);
  assert.equal(a.transport.bulkRoom(42), undefined, 'not connected yet: not held back');
  a.transport.send(42, 1, msg('app', { from: 41, to: 42, entries: [entry(1, 1, [1])] }));
  await waitFor(() => b.rec.received.length === 1, 'the first append');
  assert.ok(a.rec.bulkRoom.includes(42), 'onBulkRoom on connection');
  const empty = a.transport.bulkRoom(42);
  assert.equal(empty?.messages, LANE);
  assert.equal(empty?.queued, 0);
  // Queued in this turn (the flush runs on the next one): appends count, heartbeats (urgent lane) do not.
  for (let i = 0; i < 10; i++) a.transport.send(42, 2, msg('app', { from: 41, to: 42, index: i, entries: [entry(1, i, [i])] }));
  a.transport.send(42, 2, msg('heartbeat', { from: 41, to: 42 }));
  const queued = a.transport.bulkRoom(42);
  assert.equal(queued?.messages, LANE - 10);
  assert.equal(queued?.queued, 10);
  assert.ok(queued !== undefined && empty !== undefined && queued.bytes < empty.bytes);
  await waitFor(() => b.rec.received.length === 12, 'the rest');
  assert.equal(a.transport.bulkRoom(42)?.queued, 0);
});
