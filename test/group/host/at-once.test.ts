/**
 * Many groups started at once on three hosts (one process, gRPC on
 * loopback): every group is created on every host before any election, with
 * a small per-peer transport queue standing in for the scale of ten thousand
 * groups. Campaigns are admitted a bounded number at a time and votes travel
 * in the transport's urgent lane, so no message is dropped while the groups
 * elect; then one write per group, and everything quiesces.
 * Without bounded admission every first replica campaigns in the first turn:
 * GROUPS / 3 = 400 vote requests per peer queued in one turn overflow the
 * 256-message queue, so the no-drop assertion fails. With it, a turn queues
 * at most about ELECTIONS_IN_FLIGHT requests plus the answers to the other
 * hosts' ones.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { MultiRaftHost } from '../../../src/group/host/index.js';
import { startManyGroups, waitUntil, type CountingStateMachine } from './many-groups.js';

const GROUPS = 1200;
const PEER_QUEUE_MESSAGES = 256;
const ELECTIONS_IN_FLIGHT = 32;
const TICK_MS = 100;
/** Writes proposed together: the small queue stands in for scale while electing, not for a write burst. */
const WRITES_PER_ROUND = 100;
/** Generous: a 2-core machine shared with other tests. */
const WAIT_MS = 180_000;

const waitFor = (cond: () => boolean, what: () => string): Promise<void> => waitUntil(cond, what, WAIT_MS);

describe(`${GROUPS} groups × 3 replicas started at once`, () => {
  const hosts: MultiRaftHost[] = [];
  const sms: CountingStateMachine[][] = [[], [], []];
  const groupIds = Array.from({ length: GROUPS }, (_, i) => i + 1);
  const leaderIndex = (g: number): number => sms.findIndex((hs) => hs[g]!.role === 'leader');
  const dropped = (): number => hosts.reduce((n, h) => n + h.transport.stats.messagesDropped, 0);

  before(async () => {
    const started = await startManyGroups({ groups: GROUPS, peerQueueMessages: PEER_QUEUE_MESSAGES, electionsInFlight: ELECTIONS_IN_FLIGHT, tickMs: TICK_MS });
    hosts.push(...started.hosts);
    started.sms.forEach((hs, i) => (sms[i] = hs));
  });

  after(async () => {
    for (const h of hosts) await h.stop();
  });

  it('every group elects a leader without a message dropped', async () => {
    await waitFor(
      () => groupIds.every((g) => leaderIndex(g) >= 0),
      () => `leaders (${groupIds.filter((g) => leaderIndex(g) >= 0).length} of ${GROUPS}; dropped ${dropped()})`,
    );
    assert.equal(dropped(), 0, 'messages dropped while electing');
    for (const h of hosts) {
      const text = await h.metrics.registry.metrics();
      const count = (state: string): number => Number(new RegExp(`keyspan_groups\\{state="${state}"[^}]*\\} (\\d+)`).exec(text)?.[1]);
      assert.equal(count('active') + count('quiesced') + count('dormant'), count('total'), `node ${h.nodeId}: every group under one state`);
    }
    const admitted = hosts.reduce((n, h) => n + h.stats.electionsAdmitted, 0);
    assert.ok(admitted >= GROUPS, `every first replica was admitted to campaign (${admitted})`);
  });

  it('applies one write in every group on every replica, then every replica quiesces', async () => {
    const proposedAt = new Map<number, number>();
    const missing = (): number[] => groupIds.filter((g) => sms.some((hs) => hs[g]!.writes === 0));
    await waitFor(
      () => {
        for (const g of missing().slice(0, WRITES_PER_ROUND)) {
          const l = leaderIndex(g);
          // Proposed again only if its leader lost it (a leader change): then a group holds two writes.
          if (l < 0 || sms[l]![g]!.writes > 0 || Date.now() - (proposedAt.get(g) ?? 0) < 5_000) continue;
          try {
            hosts[l]!.handle(g).propose(new Uint8Array([1]));
            proposedAt.set(g, Date.now());
          } catch {
            // refused during a leader change: retried on the next poll
          }
        }
        return missing().length === 0;
      },
      () => `the write applied (${missing().length} groups missing)`,
    );
    const quiesced = (): number => hosts.reduce((n, h) => n + groupIds.filter((g) => h.isQuiesced(g) === true).length, 0);
    await waitFor(() => quiesced() === 3 * GROUPS, () => `quiescence (${quiesced()} of ${3 * GROUPS})`);
    const ticks = hosts.map((h) => h.stats.groupTicks);
    const turns = hosts.map((h) => h.stats.ticks);
    await waitFor(() => hosts.every((h, i) => h.stats.ticks - turns[i]! >= 5), () => 'five host ticks');
    assert.deepEqual(
      hosts.map((h, i) => h.stats.groupTicks - ticks[i]!),
      [0, 0, 0],
      'no group ticks at rest',
    );
    // Every group is counted under exactly one state: all quiesced now, none dormant.
    const text = await hosts[0]!.metrics.registry.metrics();
    for (const [state, n] of [['total', GROUPS], ['quiesced', GROUPS], ['active', 0], ['dormant', 0]] as const) {
      assert.match(text, new RegExp(`keyspan_groups\\{state="${state}"[^}]*\\} ${n}\n`));
    }
  });
});
