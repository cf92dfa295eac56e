import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff } from '../../../src/group/transport/index.js';
import { closeAll, msg, startNode, waitFor } from './harness.js';

after(closeAll);

test('peer down then up: drops are bounded, unreachable is reported, delivery resumes', async () => {
  const QUEUE_MAX = 50;
  const a = await startNode(1, { limits: { peerQueueMessagesMax: QUEUE_MAX } });
  let b = await startNode(2);
  const port = Number(b.address.split(':')[1]);
  a.transport.setPeer(2, b.address);

  a.transport.send(2, 1, msg('heartbeat', { commit: 1 }));
  await waitFor(() => b.rec.received.length === 1, 'first delivery');
  assert.equal(a.transport.peerStatus(2)?.state, 'ready');

  await b.transport.close();
  // Sending into the outage: the stream breaks, the peer is reported unreachable.
  for (let i = 0; i < 5 && a.rec.unreachable.length === 0; i++) {
    a.transport.send(2, 1, msg('heartbeat', { commit: 2 }));
    await new Promise((r) => setTimeout(r, 50));
  }
  await waitFor(() => a.rec.unreachable.includes(2), 'unreachable');
  assert.ok(a.transport.stats.connectFailures >= 1);

  // A burst larger than the queue: the queue holds at most QUEUE_MAX, the newest are dropped.
  const droppedBefore = a.transport.stats.messagesDropped;
  for (let i = 0; i < 10 * QUEUE_MAX; i++) a.transport.send(2, 1 + (i % 10), msg('heartbeat', { commit: 100 + i }));
  const status = a.transport.peerStatus(2);
  assert.ok(status !== undefined && status.queuedMessages <= QUEUE_MAX, `queued ${status?.queuedMessages}`);
  assert.ok(a.transport.stats.messagesDropped - droppedBefore >= 9 * QUEUE_MAX);
  assert.ok(a.transport.stats.drops.queueFull >= 9 * QUEUE_MAX - QUEUE_MAX);

  // The peer restarts on the same port; heartbeats keep coming until it hears them.
  b = await startNode(2, { port });
  let commit = 1000;
  const resumed = (): boolean => b.rec.received.some((r) => r.msg.commit >= 1000);
  for (let i = 0; i < 400 && !resumed(); i++) {
    a.transport.send(2, 1, msg('heartbeat', { commit: commit++ }));
    await new Promise((r) => setTimeout(r, 10));
  }
  await waitFor(resumed, 'delivery after restart');
  assert.ok(a.transport.stats.reconnects >= 1, `reconnects ${a.transport.stats.reconnects}`);
  assert.equal(a.transport.peerStatus(2)?.state, 'ready');
  assert.equal(a.transport.peerStatus(2)?.failures, 0);
  // Whatever arrives after the restart arrives in send order.
  const commits = b.rec.received.map((r) => r.msg.commit);
  assert.deepEqual(commits, [...commits].sort((x, y) => x - y));
});

test('a peer that never comes up is retried with growing back-off and its queue stays bounded', async () => {
  const a = await startNode(11, { limits: { peerQueueMessagesMax: 20, peerQueueBytesMax: 64 * 1024 } });
  const gone = await startNode(12);
  a.transport.setPeer(12, gone.address);
  await gone.transport.close();
  const t0 = performance.now();
  while (performance.now() - t0 < 600) {
    for (let i = 0; i < 30; i++) a.transport.send(12, i, msg('heartbeat'));
    const s = a.transport.peerStatus(12);
    assert.ok(s !== undefined && s.queuedMessages <= 20 && s.queuedBytes <= 64 * 1024);
    await new Promise((r) => setTimeout(r, 10));
  }
  // Back-off 20, 40, 80, 160, 200 ms (±jitter): a handful of attempts in 600 ms, not hundreds.
  const failures = a.transport.stats.connectFailures;
  assert.ok(failures >= 2 && failures <= 15, `connect failures ${failures}`);
  assert.equal(a.transport.stats.messagesSent, 0);
  assert.ok(a.rec.unreachable.length >= 2);
});

test('removePeer drops the queue and closes the connection', async () => {
  const a = await startNode(21);
  const b = await startNode(22);
  a.transport.setPeer(22, b.address);
  a.transport.send(22, 1, msg('heartbeat'));
  await waitFor(() => b.rec.received.length === 1, 'delivery');
  a.transport.removePeer(22);
  assert.equal(a.transport.peerStatus(22), undefined);
  a.transport.send(22, 1, msg('heartbeat'));
  assert.equal(a.transport.stats.drops.noPeer, 1);
  // Re-adding (a new address, say) starts afresh.
  a.transport.setPeer(22, b.address);
  a.transport.send(22, 1, msg('heartbeat', { commit: 5 }));
  await waitFor(() => b.rec.received.length === 2, 'delivery after re-adding');
});

test('back-off grows exponentially up to its cap, with jitter in [d/2, d)', () => {
  let r = 0;
  const backoff = new Backoff(100, 1000, () => r);
  assert.deepEqual([0, 1, 2, 3, 4, 5].map(() => backoff.next()), [50, 100, 200, 400, 500, 500]);
  r = 0.999;
  backoff.reset();
  const top = backoff.next();
  assert.ok(top >= 99 && top < 100, String(top));
  assert.equal(backoff.attempts, 1);
  for (let i = 0; i < 100; i++) backoff.next();
  assert.ok(backoff.next() < 1000);
});

test('close() with a peer in back-off returns promptly and sends nothing more', async () => {
  const a = await startNode(31);
  const gone = await startNode(32);
  a.transport.setPeer(32, gone.address);
  await gone.transport.close();
  a.transport.send(32, 1, msg('heartbeat'));
  await waitFor(() => a.transport.stats.connectFailures >= 1, 'first failure');
  const t0 = performance.now();
  await a.transport.close();
  assert.ok(performance.now() - t0 < 500);
  a.transport.send(32, 1, msg('heartbeat'));
  assert.equal(a.transport.stats.drops.closed, 1);
  assert.equal(a.transport.peerStatus(32), undefined);
});
