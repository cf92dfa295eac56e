/**
 * Three hosts over the real gRPC transport on loopback, many groups:
 * replication, group commit, losing and restarting nodes, membership changes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { addGroup, connect, leaderOf, startNode, stopNode, tempDir, waitFor, waitLeaders, write, type TestNode } from './helpers.js';

const GROUPS = 50;
const groupIds = Array.from({ length: GROUPS }, (_, i) => i + 1);

describe('three hosts, many groups', () => {
  const dirs: { path: string; cleanup: () => Promise<void> }[] = [];
  const nodes: (TestNode | undefined)[] = [];
  const live = (): TestNode[] => nodes.filter((n): n is TestNode => n !== undefined);

  before(async () => {
    for (let id = 1; id <= 3; id++) {
      const dir = await tempDir(`cluster${id}`);
      dirs.push(dir);
      nodes.push(await startNode(id, { dir: dir.path }));
    }
    connect(live());
    for (const n of live()) {
      for (const g of groupIds) await addGroup(n, g, [1, 2, 3], g % 3 === n.id % 3);
    }
  });

  after(async () => {
    for (const n of live()) await stopNode(n);
    for (const d of dirs) await d.cleanup();
  });

  it('elects leaders and replicates proposals of every group to every node, many groups per flush', async () => {
    await waitLeaders(live(), groupIds);
    const flushesBefore = live().map((n) => n.host.stats.flushes);
    const readysBefore = live().map((n) => n.host.stats.readys);
    // Propose to every group in the same event-loop turn: one loop turn should persist them together.
    const proposedAt = Date.now();
    for (const g of groupIds) leaderOf(live(), g)!.host.handle(g).propose(new TextEncoder().encode(`a${g}`));
    // A proposal can be lost when leadership moves right after it (a loaded machine
    // still holding elections: the new leader's log replaces the old one's tail), as
    // in etcd's raft; the writer proposes again after a second, as a client would.
    await Promise.all(groupIds.map((g) => write(live(), g, `a${g}`, 15_000, proposedAt)));
    for (const [i, n] of live().entries()) {
      const readys = n.host.stats.readys - readysBefore[i]!;
      const flushes = n.host.stats.flushes - flushesBefore[i]!;
      assert.ok(readys >= GROUPS, `node ${n.id}: ${readys} readys`);
      assert.ok(readys / flushes > 2, `node ${n.id}: ${readys} readys in ${flushes} flushes`);
      assert.ok(n.host.stats.readysPerFlushMax >= 10, `node ${n.id}: at most ${n.host.stats.readysPerFlushMax} readys per flush`);
      // At most one fsync per flush. Whether some turn moved only commit indexes (and so wrote
      // without fsync) depends on how the groups' messages interleave across turns;
      // commit-only.test.ts pins that rule down on its own.
      const { fsyncs, batchesFlushed } = n.host.logStore.counters;
      assert.ok(fsyncs > 0 && fsyncs <= batchesFlushed, `node ${n.id}: ${fsyncs} fsyncs in ${batchesFlushed} flushes`);
      // The heartbeats of a tick's many leaders to one peer travel together (how many share a
      // message overall depends on how elections and writes spread over turns).
      const perMessageMax = n.host.stats.coalescedHeartbeatsPerMessageMax;
      assert.ok(perMessageMax >= 10, `node ${n.id}: at most ${perMessageMax} heartbeats in one coalesced message`);
    }
  });

  it('keeps writing when a node (leader of some groups, follower of others) stops, and the node catches up on restart', async () => {
    const victim = nodes[2]!;
    const victimPort = victim.port;
    await stopNode(victim);
    nodes[2] = undefined;
    await waitLeaders(live(), groupIds);
    await Promise.all(groupIds.map((g) => write(live(), g, `b${g}`)));

    const dir = dirs[2]!;
    const back = await startNode(3, { dir: dir.path, port: victimPort });
    nodes[2] = back;
    connect(live());
    for (const g of groupIds) await addGroup(back, g, [1, 2, 3]);
    await waitFor(
      () => groupIds.every((g) => back.sms.get(g)!.items.includes(`b${g}`)),
      'restarted node caught up on every group',
      20_000,
    );
    await waitLeaders(live(), groupIds);
    await Promise.all(groupIds.map((g) => write(live(), g, `c${g}`)));
    for (const n of live()) for (const g of groupIds) assert.equal(n.sms.get(g)!.reapplied, 0);
  });

  it('adds a fourth replica as a learner, promotes it, then removes one', async () => {
    const dir = await tempDir('cluster4');
    dirs.push(dir);
    const fourth = await startNode(4, { dir: dir.path });
    nodes.push(fourth);
    connect(live());
    const g = 1;
    // A new replica starts with no membership and learns it from the leader.
    await addGroup(fourth, g, []);
    const leader = (): TestNode => {
      const l = leaderOf(live().filter((n) => n.id !== 4), g);
      assert.ok(l !== undefined);
      return l;
    };
    await waitLeaders(live().filter((n) => n.id !== 4), [g]);
    leader().host.handle(g).proposeConfChange({ changes: [{ type: 'addLearner', nodeId: 4 }], transition: 'auto' });
    await waitFor(() => fourth.sms.get(g)!.items.includes(`c${g}`), 'learner caught up');
    await waitFor(() => fourth.host.handle(g).status().config.learners.includes(4), 'learner knows its membership');

    await waitFor(() => leader().host.handle(g).status().config.learners.includes(4), 'learner applied on leader');
    leader().host.handle(g).proposeConfChange({ changes: [{ type: 'addNode', nodeId: 4 }], transition: 'auto' });
    await waitFor(() => live().every((n) => n.host.handle(g).status().config.voters.includes(4)), 'promoted everywhere');

    await waitFor(() => {
      try {
        const l = leaderOf(live(), g);
        if (l === undefined) return false;
        l.host.handle(g).proposeConfChange({ changes: [{ type: 'removeNode', nodeId: 3 }], transition: 'auto' });
        return true;
      } catch {
        return false; // a previous change is still being applied
      }
    }, 'remove proposed');
    const members = live().filter((n) => n.id !== 3);
    await waitFor(() => members.every((n) => !n.host.handle(g).status().config.voters.includes(3)), 'node 3 removed');
    await waitLeaders(members, [g]);
    await write(members, g, 'after-membership');
    assert.deepEqual([...leaderOf(members, g)!.host.handle(g).status().config.voters].sort(), [1, 2, 4]);
    // The new replica was initialized by a snapshot, then saw the later conf changes with their membership.
    assert.equal(fourth.sms.get(g)!.installs, 1);
    assert.ok(fourth.sms.get(g)!.confStates.length >= 2);
  });
});
