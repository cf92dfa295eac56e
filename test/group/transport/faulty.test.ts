import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { NetworkFaults } from '../../../src/group/transport/index.js';
import { SeededRandom, closeAll, connectAll, msg, snapshot, startNode, testSeed, waitFor, type TestNode } from './harness.js';

after(closeAll);

const SEED = testSeed(20261121);
console.log(`# faulty transport tests: KEYSPAN_SEED=${SEED}`);

/** Sends one tagged heartbeat on every ordered pair of nodes, then a marker, and waits for the markers. */
async function exchange(nodes: readonly TestNode[], tag: number, expectLinks: ReadonlySet<string>): Promise<Set<string>> {
  for (const from of nodes) {
    for (const to of nodes) {
      if (from !== to) from.transport.send(to.transport.nodeId, 1, msg('heartbeat', { commit: tag }));
    }
  }
  const seen = (): Set<string> => {
    const links = new Set<string>();
    for (const n of nodes) {
      for (const r of n.rec.received) if (r.msg.commit === tag) links.add(`${r.fromNode}>${n.transport.nodeId}`);
    }
    return links;
  };
  await waitFor(() => [...expectLinks].every((l) => seen().has(l)), `links ${[...expectLinks].join(',')}`);
  // Give messages on cut links time to show up, if the fault plan were broken.
  await new Promise((r) => setTimeout(r, 100));
  return seen();
}

function links(...pairs: Array<[number, number]>): Set<string> {
  return new Set(pairs.map(([a, b]) => `${a}>${b}`));
}

test('partitions both ways and one way, then heal', async () => {
  const faults = new NetworkFaults(new SeededRandom(SEED));
  const nodes = [await startNode(1, { faults }), await startNode(2, { faults }), await startNode(3, { faults })];
  connectAll(nodes);
  const all = links([1, 2], [1, 3], [2, 1], [2, 3], [3, 1], [3, 2]);
  assert.deepEqual(await exchange(nodes, 1, all), all);

  faults.partition(1, [2, 3]);
  const isolated = links([2, 3], [3, 2]);
  assert.deepEqual(await exchange(nodes, 2, isolated), isolated);
  assert.equal(faults.stats.droppedPartition, 4);

  faults.heal();
  faults.partition(1, 2, { oneWay: true });
  const oneWay = links([1, 3], [2, 1], [2, 3], [3, 1], [3, 2]);
  assert.deepEqual(await exchange(nodes, 3, oneWay), oneWay);

  faults.heal();
  assert.deepEqual(await exchange(nodes, 4, all), all);
});

test('a drop rate loses about that share of messages, reproducibly from the seed', async () => {
  const faults = new NetworkFaults(new SeededRandom(SEED));
  const a = await startNode(11, { faults });
  const b = await startNode(12, { faults });
  connectAll([a, b]);
  faults.dropRate = 0.3;
  const N = 2000;
  for (let i = 0; i < N; i++) a.transport.send(12, 1, msg('heartbeat', { commit: i }));
  const expected = N - faults.stats.droppedLoss;
  await waitFor(() => b.rec.received.length === expected, `${expected} deliveries`);
  assert.ok(faults.stats.droppedLoss > N * 0.25 && faults.stats.droppedLoss < N * 0.35, `lost ${faults.stats.droppedLoss}`);

  // The same seed decides the same fates.
  const replay = new NetworkFaults(new SeededRandom(SEED));
  replay.dropRate = 0.3;
  const lostIdx: number[] = [];
  for (let i = 0; i < N; i++) if (replay.decide(11, 12).fate === 'drop') lostIdx.push(i);
  const delivered = new Set(b.rec.received.map((r) => r.msg.commit));
  assert.deepEqual(lostIdx, [...Array(N).keys()].filter((i) => !delivered.has(i)));
});

test('delay holds messages back by the configured range', async () => {
  const faults = new NetworkFaults(new SeededRandom(SEED));
  const a = await startNode(21, { faults });
  const b = await startNode(22, { faults });
  connectAll([a, b]);
  a.transport.send(22, 1, msg('heartbeat'));
  await waitFor(() => b.rec.received.length === 1, 'warm-up');
  faults.delayMsMin = 80;
  faults.delayMsMax = 120;
  const t0 = performance.now();
  for (let i = 0; i < 20; i++) a.transport.send(22, 1, msg('heartbeat', { commit: i + 1 }));
  await waitFor(() => b.rec.received.length === 21, 'delayed deliveries');
  const first = Math.min(...b.rec.received.slice(1).map((r) => r.atMs)) - t0;
  assert.ok(first >= 75, `first delayed message after ${first.toFixed(1)} ms`);
  assert.equal(faults.stats.delayed, 20);
});

test('a receive-side plan isolates a node from peers that run none', async () => {
  const faults = new NetworkFaults(new SeededRandom(SEED));
  const plain = await startNode(31);
  const guarded = await startNode(32, { faults });
  connectAll([plain, guarded]);
  faults.partition(31, 32, { oneWay: true });
  plain.transport.send(32, 1, msg('heartbeat', { commit: 1 }));
  await waitFor(() => faults.stats.droppedOnReceive === 1, 'receive-side drop');
  assert.equal(guarded.rec.received.length, 0);
  faults.heal();
  plain.transport.send(32, 1, msg('heartbeat', { commit: 2 }));
  await waitFor(() => guarded.rec.received.length === 1, 'delivery after heal');
});

test('a snapshot dropped by the plan is reported as failed', async () => {
  const faults = new NetworkFaults(new SeededRandom(SEED));
  const a = await startNode(41, { faults });
  const b = await startNode(42, { faults });
  connectAll([a, b]);
  faults.partition(41, 42);
  a.transport.send(42, 9, msg('snap', { snapshot: snapshot(4, 1000) }));
  await waitFor(() => a.rec.snapshotStatus.length === 1, 'status');
  assert.deepEqual(
    a.rec.snapshotStatus.map((s) => [s.toNode, s.groupId, s.ok]),
    [[42, 9, false]],
  );
  faults.heal();
  a.transport.send(42, 9, msg('snap', { snapshot: snapshot(4, 1000) }));
  await waitFor(() => a.rec.snapshotStatus.length === 2, 'second status');
  assert.equal(a.rec.snapshotStatus[1]?.ok, true);
});
