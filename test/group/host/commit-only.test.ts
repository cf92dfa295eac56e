/**
 * Readys that only move commit indexes write nothing of their own: a write
 * costs each of three members one log flush (its entry, synced), and the
 * commit indexes it moved reach the log store with the next flush (here a
 * tick's). A restart from what is on disk then applies nothing twice.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type GroupHandle, ManualTicker } from '../../../src/group/host/index.js';
import { addGroup, cmd, connect, startNode, stopNode, tempDir, waitFor, type TestNode } from './helpers.js';

describe('commit-only Readys', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('a write costs each member one log flush; the moved commit indexes go with the next flush', async () => {
    // Manual tickers: no tick turn flushes in between, and node 1 campaigns at once.
    const tickers = [new ManualTicker(), new ManualTicker(), new ManualTicker()];
    const nodes: TestNode[] = [];
    for (let id = 1; id <= 3; id++) {
      const dir = await tempDir(`commit-only${id}`);
      cleanups.push(dir.cleanup);
      const node = await startNode(id, { dir: dir.path, ticker: tickers[id - 1]! });
      cleanups.push(() => stopNode(node));
      nodes.push(node);
    }
    connect(nodes);
    const handles: GroupHandle[] = [];
    for (const n of nodes) handles.push(await addGroup(n, 1, [1, 2, 3], n.id === 1));
    const leader = handles[0]!;
    await waitFor(() => leader.status().role === 'leader', 'node 1 leads');
    // The leader's first entry (its term's no-op) committed and applied everywhere.
    await waitFor(() => handles.every((h) => h.status().applied === leader.status().lastIndex), 'the no-op applied everywhere');
    await Promise.all(nodes.map((n) => n.host.idle()));

    const flushed = (): number[] => nodes.map((n) => n.host.logStore.counters.batchesFlushed);
    const fsyncs = (): number[] => nodes.map((n) => n.host.logStore.counters.fsyncs);
    const before = flushed();
    const fsyncsBefore = fsyncs();
    leader.propose(cmd('one'));
    await waitFor(() => nodes.every((n) => n.sms.get(1)!.items.includes('one')), 'the write applied on every member');
    await Promise.all(nodes.map((n) => n.host.idle()));
    const index = leader.status().commit;
    assert.deepEqual(
      flushed().map((n, i) => n - before[i]!),
      [1, 1, 1],
      'one flush per member: the entry; the turns that moved commit indexes wrote nothing',
    );
    assert.deepEqual(fsyncs().map((n, i) => n - fsyncsBefore[i]!), [1, 1, 1]);
    for (const n of nodes) {
      assert.equal(n.host.logStore.group(1).hardState.commit, index, `node ${n.id}: commit ${index} known`);
      assert.ok(n.host.logStore.pendingOps > 0, `node ${n.id}: the new commit index is staged, not written`);
    }

    // A tick writes what the commit-only turns left staged, without fsync.
    for (const t of tickers) t.tick();
    await Promise.all(nodes.map((n) => n.host.idle()));
    await waitFor(() => nodes.every((n) => n.host.logStore.pendingOps === 0), 'staged hard states written');
    assert.deepEqual(fsyncs().map((n, i) => n - fsyncsBefore[i]!), [1, 1, 1], 'the tick wrote without fsync');
  });
});
