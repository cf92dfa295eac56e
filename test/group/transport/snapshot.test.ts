import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeAll, connectAll, msg, snapshot, startNode, waitFor } from './harness.js';

after(closeAll);

const MiB = 1024 * 1024;

test('a multi-MiB snapshot streams in chunks while heartbeats keep flowing', async () => {
  const CHUNK = 256 * 1024;
  const a = await startNode(1, { limits: { snapshotChunkBytes: CHUNK } });
  const b = await startNode(2);
  connectAll([a, b]);
  // Open the message stream first so both paths are warm.
  a.transport.send(2, 1, msg('heartbeat'));
  await waitFor(() => b.rec.received.length === 1, 'warm-up');

  const snap = snapshot(500, 8 * MiB);
  a.transport.send(2, 7, msg('snap', { from: 1, to: 2, term: 3, snapshot: snap }));
  // Keep sending heartbeats of other groups, one per loop turn, until the snapshot lands.
  let beats = 0;
  const snapArrived = (): boolean => b.rec.received.some((r) => r.msg.type === 'snap');
  while (!snapArrived() && beats < 100_000) {
    a.transport.send(2, 100 + (beats % 50), msg('heartbeat', { commit: beats }));
    beats++;
    await new Promise((r) => setTimeout(r, 1));
  }
  await waitFor(() => a.rec.snapshotStatus.length === 1, 'snapshot status');
  assert.deepEqual(
    a.rec.snapshotStatus.map((s) => ({ toNode: s.toNode, groupId: s.groupId, ok: s.ok })),
    [{ toNode: 2, groupId: 7, ok: true }],
  );
  const got = b.rec.received.find((r) => r.msg.type === 'snap');
  assert.ok(got !== undefined);
  assert.equal(got.groupId, 7);
  assert.deepEqual(got.msg.snapshot?.meta, snap.meta);
  assert.equal(got.msg.snapshot?.data.length, snap.data.length);
  assert.ok(Buffer.from(got.msg.snapshot?.data ?? []).equals(Buffer.from(snap.data)), 'snapshot data intact');
  // Heartbeats sent after the snapshot started arrived before it completed.
  const beatsBefore = b.rec.received.filter((r) => r.msg.type === 'heartbeat' && r.groupId >= 100 && r.atMs < got.atMs);
  assert.ok(beatsBefore.length >= 1, `heartbeats before the snapshot: ${beatsBefore.length} of ${beats}`);
  assert.equal(a.transport.stats.snapshotsSent, 1);
  assert.equal(a.transport.stats.snapshotBytesSent, 8 * MiB);
  assert.equal(b.transport.stats.snapshotsReceived, 1);
  assert.equal(b.transport.stats.snapshotBytesReceived, 8 * MiB);
  console.log(`# ${beatsBefore.length} of ${beats} heartbeats arrived while the 8 MiB snapshot streamed`);
});

test('a snapshot to an unknown group reaches onUnknownGroup whole', async () => {
  const a = await startNode(11);
  const b = await startNode(12, { knownGroups: () => false });
  connectAll([a, b]);
  const snap = snapshot(9, 3 * MiB + 17);
  a.transport.send(12, 42, msg('snap', { snapshot: snap }));
  await waitFor(() => a.rec.snapshotStatus.length === 1, 'status');
  assert.equal(a.rec.snapshotStatus[0]?.ok, true);
  assert.equal(b.rec.unknown.length, 1);
  assert.equal(b.rec.unknown[0]?.groupId, 42);
  assert.ok(Buffer.from(b.rec.unknown[0]?.msg.snapshot?.data ?? []).equals(Buffer.from(snap.data)));
});

test('a snapshot to a down peer is reported as failed', async () => {
  const a = await startNode(21);
  const gone = await startNode(22);
  a.transport.setPeer(22, gone.address);
  await gone.transport.close();
  a.transport.send(22, 1, msg('snap', { snapshot: snapshot(3, 1000) }));
  await waitFor(() => a.rec.snapshotStatus.length === 1, 'status');
  assert.equal(a.rec.snapshotStatus[0]?.ok, false);
  assert.equal(a.transport.stats.snapshotsFailed, 1);
});

test('a snapshot larger than the receiver accepts is refused and reported as failed', async () => {
  const a = await startNode(31);
  const b = await startNode(32, { limits: { snapshotBytesMax: MiB } });
  connectAll([a, b]);
  a.transport.send(32, 1, msg('snap', { snapshot: snapshot(3, 2 * MiB) }));
  await waitFor(() => a.rec.snapshotStatus.length === 1, 'status');
  assert.equal(a.rec.snapshotStatus[0]?.ok, false);
  assert.equal(b.rec.received.length, 0);
  assert.equal(b.transport.stats.snapshotsReceiveFailed, 1);
});

test('snapshots beyond the per-peer limit fail at once, the others succeed', async () => {
  const a = await startNode(41, { limits: { snapshotSendsPerPeerMax: 1 } });
  const b = await startNode(42);
  connectAll([a, b]);
  a.transport.send(42, 1, msg('snap', { snapshot: snapshot(3, MiB) }));
  a.transport.send(42, 2, msg('snap', { snapshot: snapshot(3, 1000) }));
  await waitFor(() => a.rec.snapshotStatus.length === 2, 'statuses');
  const byGroup = new Map(a.rec.snapshotStatus.map((s) => [s.groupId, s.ok]));
  assert.equal(byGroup.get(1), true);
  assert.equal(byGroup.get(2), false);
  // The refusal came first, without waiting for the transfer.
  assert.equal(a.rec.snapshotStatus[0]?.groupId, 2);
});

test('a receiver refuses snapshots beyond its concurrent-receive limit', async () => {
  const a = await startNode(51);
  const b = await startNode(52, { limits: { snapshotReceivesMax: 1 } });
  connectAll([a, b]);
  for (let g = 1; g <= 3; g++) a.transport.send(52, g, msg('snap', { snapshot: snapshot(3, 4 * MiB) }));
  await waitFor(() => a.rec.snapshotStatus.length === 3, 'statuses', 20_000);
  const ok = a.rec.snapshotStatus.filter((s) => s.ok).length;
  assert.ok(ok >= 1 && ok < 3, `succeeded: ${ok}`);
  assert.equal(b.transport.stats.snapshotsReceived, ok);
  assert.equal(b.transport.stats.snapshotsReceiveFailed, 3 - ok);
});

test('closing the sender mid-snapshot cancels the stream; the receiver discards it', async () => {
  const a = await startNode(61, { limits: { snapshotChunkBytes: 64 * 1024 } });
  const b = await startNode(62);
  connectAll([a, b]);
  a.transport.send(62, 1, msg('snap', { snapshot: snapshot(3, 16 * MiB) }));
  await waitFor(() => b.transport.stats.snapshotBytesReceived > 0, 'first chunks');
  const t0 = performance.now();
  await a.transport.close();
  assert.ok(performance.now() - t0 < 500);
  await waitFor(() => b.transport.stats.snapshotsReceiveFailed === 1, 'receiver saw the break');
  assert.equal(b.transport.stats.snapshotsReceived, 0);
  assert.equal(b.rec.received.length, 0);
  // A closed transport reports nothing more to its host.
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(a.rec.snapshotStatus, []);
});
