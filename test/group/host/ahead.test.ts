/**
 * A state machine ahead of raft: a replica rebuilt from a peer's image
 * before its group is hosted (docs/node.md, "Range engines") has applied
 * more than its raft log's commit, so raft hands the entries up to the
 * image out again (the machine skips them) over several turns. Meanwhile
 * the host must not record a snapshot above raft's applied index or
 * truncate to it: raft still has to hand out entries below it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AppliedEntry, GroupStateMachine, StateMachineSnapshot } from '../../../src/group/host/index.js';
import type { Snapshot } from '../../../src/group/raft/index.js';
import {
  ListStateMachine,
  addGroup,
  connect,
  leaderOf,
  startNode,
  stopNode,
  tempDir,
  waitFor,
  waitLeaders,
  write,
  type TestNode,
} from './helpers.js';

const GROUP = 1;

/** A list machine that skips entries at or below its applied index, as a range replica does. */
class SkippingMachine implements GroupStateMachine {
  skipped = 0;
  constructor(readonly list: ListStateMachine) {}
  appliedIndex(): number {
    return this.list.appliedIndex();
  }
  async applyEntries(entries: readonly AppliedEntry[]): Promise<void> {
    const fresh = entries.filter((e) => e.entry.index > this.list.applied);
    this.skipped += entries.length - fresh.length;
    if (fresh.length > 0) await this.list.applyEntries(fresh);
  }
  buildSnapshot(): Promise<StateMachineSnapshot> {
    return this.list.buildSnapshot();
  }
  installSnapshot(snapshot: Snapshot): Promise<void> {
    return this.list.installSnapshot(snapshot);
  }
}

test('a state machine ahead of raft is caught up without a snapshot or truncation above raft\'s applied index', { timeout: 60_000 }, async () => {
  const dirs = [await tempDir('ahead1'), await tempDir('ahead2'), await tempDir('ahead3')];
  const nodes: TestNode[] = [];
  try {
    for (const [i, d] of dirs.entries()) nodes.push(await startNode(i + 1, { dir: d.path }));
    connect(nodes);
    for (const n of nodes) await addGroup(n, GROUP, [1, 2, 3], n.id === 1);
    await waitLeaders(nodes, [GROUP]);
    for (let i = 0; i < 5; i++) await write(nodes, GROUP, `a${i}`);
    const leader = leaderOf(nodes, GROUP)!;
    const victim = nodes.find((n) => n !== leader)!;
    const others = nodes.filter((n) => n !== victim);
    await stopNode(victim);
    for (let i = 0; i < 30; i++) await write(others, GROUP, `b${i}`);

    // The victim comes back with small log bounds and one committed entry per Ready,
    // and a state machine set to the leader's state (what a peer's image gives it).
    const back = await startNode(victim.id, {
      dir: victim.dir!,
      port: victim.port,
      limits: { logTruncateEntries: 5, logKeepEntries: 1 },
      raft: { maxCommittedSizePerReady: 1 },
    });
    nodes[nodes.indexOf(victim)] = back;
    const list = await ListStateMachine.open(back.engine, GROUP);
    const source = leader.sms.get(GROUP)!;
    list.items = [...source.items];
    list.applied = source.applied;
    const sm = new SkippingMachine(list);
    back.sms.set(GROUP, list);
    const handle = await back.host.createGroup(GROUP, { peers: [], stateMachine: sm });
    const commitAtRestart = handle.status().commit;
    const imageIndex = list.applied;
    assert.ok(commitAtRestart < imageIndex, `raft's commit ${commitAtRestart} is below the image's ${imageIndex}`);
    connect(nodes);

    for (let i = 0; i < 3; i++) await write(nodes, GROUP, `c${i}`);
    await waitFor(() => list.applied === leader.sms.get(GROUP)!.applied, 'the victim applied everything');
    assert.equal(back.host.fatalError, undefined);
    // Every entry up to the image was handed out again (and skipped): none was lost
    // to a snapshot or truncation above raft's applied index (raft would then never
    // apply a conf change among them).
    assert.equal(sm.skipped, imageIndex - commitAtRestart);
    assert.deepEqual(list.items, leader.sms.get(GROUP)!.items);
    assert.ok(back.host.stats.truncations > 0, 'the log was truncated once raft caught up');
  } finally {
    for (const n of nodes) await stopNode(n).catch(() => undefined);
    for (const d of dirs) await d.cleanup();
  }
});
