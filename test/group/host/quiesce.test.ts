/**
 * Quiescence: idle groups stop ticking and heartbeating; a proposal wakes a
 * group, it commits, and it quiesces again; a dead leader's quiesced
 * followers wake up through node liveness and elect a new one.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { addGroup, cmd, connect, leaderOf, startNode, stopNode, waitFor, waitLeaders, write, type TestNode } from './helpers.js';

const GROUPS = 30;
const groupIds = Array.from({ length: GROUPS }, (_, i) => i + 1);

describe('quiescence', () => {
  const nodes: (TestNode | undefined)[] = [];
  const live = (): TestNode[] => nodes.filter((n): n is TestNode => n !== undefined);
  const allQuiesced = (ns: readonly TestNode[], gs: readonly number[]): boolean =>
    ns.every((n) => gs.every((g) => n.host.isQuiesced(g) === true));

  before(async () => {
    for (let id = 1; id <= 3; id++) nodes.push(await startNode(id));
    connect(live());
    for (const n of live()) for (const g of groupIds) await addGroup(n, g, [1, 2, 3], g % 3 === n.id % 3);
    await waitLeaders(live(), groupIds);
    await Promise.all(groupIds.map((g) => write(live(), g, `x${g}`)));
  });

  after(async () => {
    for (const n of live()) await stopNode(n);
  });

  it('quiesces idle groups: ticks and heartbeats drop to zero', async () => {
    await waitFor(() => allQuiesced(live(), groupIds), 'every group quiesced on every node');
    const before = live().map((n) => ({ ticks: n.host.stats.groupTicks, hb: n.host.stats.heartbeatsSent, raftTicks: n.host.stats.ticks }));
    await waitFor(() => live().every((n, i) => n.host.stats.ticks - before[i]!.raftTicks >= 30), '30 host ticks pass');
    for (const [i, n] of live().entries()) {
      assert.equal(n.host.stats.groupTicks - before[i]!.ticks, 0, `node ${n.id} ticked no group`);
      assert.equal(n.host.stats.heartbeatsSent - before[i]!.hb, 0, `node ${n.id} sent no heartbeat`);
    }
    const text = await live()[0]!.host.metrics.registry.metrics();
    assert.match(text, new RegExp(`keyspan_groups\\{state="quiesced",node="1"\\} ${GROUPS}`));
  });

  it('a proposal wakes its group, commits everywhere, and the group quiesces again', async () => {
    const g = 5;
    const leader = leaderOf(live(), g)!;
    leader.host.handle(g).propose(cmd('wake'));
    assert.equal(leader.host.isQuiesced(g), false);
    await waitFor(() => live().every((n) => n.sms.get(g)!.items.includes('wake')), 'woken group committed');
    // Only the woken group ticked: the others stayed asleep.
    assert.ok(live().every((n) => groupIds.filter((x) => x !== g).every((x) => n.host.isQuiesced(x) === true)));
    await waitFor(() => allQuiesced(live(), groupIds), 'quiesced again');
  });

  it('followers of a dead quiesced leader wake through node liveness and elect a new leader', async () => {
    await waitFor(() => allQuiesced(live(), groupIds), 'quiesced');
    const victim = nodes[0]!;
    const led = groupIds.filter((g) => leaderOf(live(), g)?.id === victim.id);
    assert.ok(led.length > 0);
    await stopNode(victim);
    nodes[0] = undefined;
    await waitLeaders(live(), led, 20_000);
    await Promise.all(led.map((g) => write(live(), g, `y${g}`)));
  });
});
