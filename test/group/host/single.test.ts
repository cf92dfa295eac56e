/**
 * One host, one group: the Ready loop end to end, restart from LevelDB,
 * backpressure and metrics.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  HostError,
  TOO_MANY_REQUESTS_MESSAGE,
  TooManyRequestsError,
  ManualTicker,
} from '../../../src/group/host/index.js';
import { addGroup, cmd, startNode, stopNode, tempDir, waitFor, type TestNode } from './helpers.js';

/** Reads one sample of `name` (with optional label filter) from a Prometheus text exposition. */
function sample(text: string, name: string, labels = ''): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (!(rest.startsWith(' ') || rest.startsWith('{'))) continue;
    if (labels !== '' && !rest.includes(labels)) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return NaN;
}

describe('single node host', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('proposes, commits and applies; a restart keeps hard state and log and re-applies nothing', async () => {
    const dir = await tempDir('single');
    cleanups.push(dir.cleanup);
    let node: TestNode = await startNode(1, { dir: dir.path });
    let stopped = false;
    cleanups.push(async () => {
      if (!stopped) await stopNode(node);
    });
    const h = await addGroup(node, 7, [1], true);
    await waitFor(() => h.status().role === 'leader', 'single-node leader');
    for (let i = 0; i < 20; i++) h.propose(cmd(`v${i}`));
    const sm = node.sms.get(7)!;
    await waitFor(() => sm.items.length === 20, '20 entries applied');
    assert.deepEqual(sm.items, Array.from({ length: 20 }, (_, i) => `v${i}`));
    await waitFor(() => h.status().applied === sm.applied, 'raft applied caught up with the state machine');
    await node.host.idle();
    const before = h.status();
    await stopNode(node);
    stopped = true;

    node = await startNode(1, { dir: dir.path });
    stopped = false;
    const h2 = await addGroup(node, 7, [1]);
    const sm2 = node.sms.get(7)!;
    assert.deepEqual(sm2.items, sm.items, 'state machine state reloaded');
    const st = h2.status();
    assert.ok(st.term >= before.term, 'term kept');
    assert.equal(st.lastIndex, before.lastIndex, 'log kept');
    assert.ok(st.commit >= before.commit, 'commit kept');
    await waitFor(() => h2.status().role === 'leader', 'leader after restart');
    h2.propose(cmd('after'));
    await waitFor(() => sm2.items.includes('after'), 'write after restart');
    assert.equal(sm2.reapplied, 0, 'no entry applied twice');
    assert.equal(sm2.items.length, 21);
  });

  it('truncates a long log from a durable applied index without building an image, and restarts from it', async () => {
    const dir = await tempDir('truncate');
    cleanups.push(dir.cleanup);
    const limits = { logTruncateEntries: 20, logKeepEntries: 5 };
    let node: TestNode = await startNode(1, { dir: dir.path, limits });
    let stopped = false;
    cleanups.push(async () => {
      if (!stopped) await stopNode(node);
    });
    const h = await addGroup(node, 3, [1], true);
    await waitFor(() => h.status().role === 'leader', 'single-node leader');
    for (let i = 0; i < 60; i++) h.propose(cmd(`t${i}`));
    const sm = node.sms.get(3)!;
    await waitFor(() => sm.items.length === 60, '60 entries applied');
    await waitFor(() => node.host.stats.truncations > 0, 'log truncated');
    await node.host.idle();
    assert.ok(sm.persistCalls > 0, 'truncation asked for the durable applied index');
    assert.equal(sm.buildCalls, 0, 'no image was built: no follower wanted one');
    const first = h.status().firstIndex;
    assert.ok(first > 20, `log compacted (first index ${first})`);
    await stopNode(node);
    stopped = true;

    node = await startNode(1, { dir: dir.path, limits });
    stopped = false;
    const h2 = await addGroup(node, 3, [1]);
    const sm2 = node.sms.get(3)!;
    assert.deepEqual(sm2.items, sm.items, 'state reloaded');
    assert.equal(h2.status().firstIndex, first, 'the truncation survived the restart');
    assert.equal(sm2.reapplied, 0);
  });

  it('refuses a flood of proposals with TooManyRequestsError and bounded pending state', async () => {
    const ticker = new ManualTicker();
    const node = await startNode(2, { ticker, limits: { proposalsPendingMax: 100 } });
    cleanups.push(() => stopNode(node));
    const h = await addGroup(node, 1, [2], true);
    await waitFor(() => h.status().role === 'leader', 'leader');
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 1000; i++) {
      try {
        h.propose(cmd(`f${i}`));
        accepted++;
      } catch (e) {
        assert.ok(e instanceof TooManyRequestsError);
        assert.equal(e.code, 'TOO_MANY_REQUESTS');
        assert.equal(e.message, TOO_MANY_REQUESTS_MESSAGE);
        refused++;
      }
    }
    assert.equal(accepted, 100);
    assert.equal(refused, 900);
    const sm = node.sms.get(1)!;
    await waitFor(() => sm.items.length === 100, 'accepted proposals applied');
    // Once applied, the window is open again.
    await waitFor(() => {
      try {
        h.propose(cmd('again'));
        return true;
      } catch {
        return false;
      }
    }, 'window reopens');
    await waitFor(() => sm.items.includes('again'), 'applied after the flood');
    const text = await node.host.metrics.registry.metrics();
    assert.equal(sample(text, 'etcd_server_proposals_failed_total'), 900);
  });

  it('exports metrics that move', async () => {
    const node = await startNode(3);
    cleanups.push(() => stopNode(node));
    const reg = node.host.metrics.registry;
    const h = await addGroup(node, 1, [3], true);
    await waitFor(() => h.status().role === 'leader', 'leader');
    const t0 = await reg.metrics();
    for (let i = 0; i < 10; i++) h.propose(cmd(`m${i}`));
    const sm = node.sms.get(1)!;
    await waitFor(() => sm.items.length === 10, 'applied');
    await node.host.idle();
    const t1 = await reg.metrics();
    assert.equal(sample(t1, 'etcd_server_proposals_committed_total') - sample(t0, 'etcd_server_proposals_committed_total'), 10);
    assert.equal(sample(t1, 'etcd_server_proposals_applied_total') - sample(t0, 'etcd_server_proposals_applied_total'), 10);
    assert.equal(sample(t1, 'etcd_server_has_leader'), 1);
    assert.ok(sample(t1, 'etcd_server_leader_changes_seen_total') >= 1);
    assert.ok(sample(t1, 'etcd_disk_wal_fsync_duration_seconds_count') > sample(t0, 'etcd_disk_wal_fsync_duration_seconds_count'));
    assert.ok(sample(t1, 'keyspan_apply_duration_seconds_count') > sample(t0, 'keyspan_apply_duration_seconds_count'));
    assert.ok(sample(t1, 'keyspan_logstore_fsyncs_total') > sample(t0, 'keyspan_logstore_fsyncs_total'));
    assert.ok(sample(t1, 'keyspan_logstore_entries_written_total') >= 10);
    assert.equal(sample(t1, 'keyspan_groups', 'state="total"'), 1);
    assert.equal(sample(t1, 'etcd_server_proposals_pending'), 0);
    // Two nodes in one process keep separate registries.
    assert.ok(t1.includes('node="3"'));
  });

  it('answers ReadIndex through onReadStates and removes a group with its raft state', async () => {
    const node = await startNode(4);
    cleanups.push(() => stopNode(node));
    const h = await addGroup(node, 3, [4], true);
    await waitFor(() => h.status().role === 'leader', 'leader');
    h.propose(cmd('r'));
    const sm = node.sms.get(3)!;
    await waitFor(() => sm.items.includes('r'), 'applied');
    h.readIndex(cmd('read-1'));
    await waitFor(() => sm.readStates.length === 1, 'read state delivered');
    assert.deepEqual(sm.readStates[0]!.requestCtx, cmd('read-1'));
    assert.ok(sm.readStates[0]!.index >= sm.applied - 1);

    await node.host.removeGroup(3);
    assert.equal(node.host.logStore.has(3), false);
    assert.throws(() => h.propose(cmd('x')), (e: unknown) => e instanceof HostError && e.code === 'GROUP_NOT_FOUND');
    assert.deepEqual(node.host.groupIds(), []);
  });
});
