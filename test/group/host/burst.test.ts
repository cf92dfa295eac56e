/**
 * A burst of writes: one write proposed to every one of many groups in the
 * same event-loop turn, on three hosts in one process (gRPC on loopback),
 * with a small per-peer transport queue standing in for ten thousand groups.
 * Without flow control the host takes up to readysPerTurnMax Readys per turn
 * whatever the transport holds: GROUPS / 3 appends per peer from the leaders
 * alone overflow the 128-message bulk lane in the first turn, and the drops
 * are resent and dropped again. With it (send-budget.ts) a turn takes only
 * the Readys whose peers have room, and waits for the queue to drain: every
 * write applies and no message is dropped.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { MultiRaftHost } from '../../../src/group/host/index.js';
import { startManyGroups, waitUntil, type CountingStateMachine } from './many-groups.js';

const GROUPS = 600;
const PEER_QUEUE_MESSAGES = 128;
const ELECTIONS_IN_FLIGHT = 32;
const TICK_MS = 100;
/** Generous: a 2-core machine shared with other tests. */
const WAIT_MS = 120_000;

const waitFor = (cond: () => boolean, what: () => string): Promise<void> => waitUntil(cond, what, WAIT_MS);

describe(`one write to each of ${GROUPS} groups × 3 replicas in one turn`, () => {
  const hosts: MultiRaftHost[] = [];
  const sms: CountingStateMachine[][] = [[], [], []];
  const groupIds = Array.from({ length: GROUPS }, (_, i) => i + 1);
  const leaderIndex = (g: number): number => sms.findIndex((hs) => hs[g]!.role === 'leader');
  const dropped = (): number => hosts.reduce((n, h) => n + h.transport.stats.messagesDropped, 0);

  before(async () => {
    const started = await startManyGroups({ groups: GROUPS, peerQueueMessages: PEER_QUEUE_MESSAGES, electionsInFlight: ELECTIONS_IN_FLIGHT, tickMs: TICK_MS });
    hosts.push(...started.hosts);
    started.sms.forEach((hs, i) => (sms[i] = hs));
    await waitFor(
      () => groupIds.every((g) => leaderIndex(g) >= 0),
      () => `leaders (${groupIds.filter((g) => leaderIndex(g) >= 0).length} of ${GROUPS}; dropped ${dropped()})`,
    );
  });

  after(async () => {
    for (const h of hosts) await h.stop();
  });

  it('applies every write on every replica with no message dropped', async () => {
    const droppedBefore = dropped();
    const proposed = new Set<number>();
    const propose = (): void => {
      for (const g of groupIds) {
        if (proposed.has(g)) continue;
        const l = leaderIndex(g);
        if (l < 0) continue;
        try {
          hosts[l]!.handle(g).propose(new Uint8Array([1]));
          proposed.add(g);
        } catch {
          // refused during a leader change: proposed on the next poll
        }
      }
    };
    propose(); // every group in this one synchronous pass: one loop turn per host takes them all
    assert.equal(proposed.size, GROUPS, 'every write proposed in the same turn');
    const missing = (): number[] => groupIds.filter((g) => sms.some((hs) => hs[g]!.writes === 0));
    await waitFor(
      () => missing().length === 0,
      () => `the writes applied (${missing().length} groups missing; dropped ${dropped() - droppedBefore})`,
    );
    assert.equal(dropped() - droppedBefore, 0, 'messages dropped during the burst');
    const held = hosts.reduce((n, h) => n + h.stats.turnsHeldForRoom, 0);
    assert.ok(held > 0, `the burst was held back for send room (${held} turns)`);
  });
});
