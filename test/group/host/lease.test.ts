/**
 * Leader leases in the multi-raft host, three hosts over the real gRPC
 * transport: the lease forms through coalesced heartbeats alone (the lease
 * stamp travels in the pack), lease reads take no heartbeat round, a
 * quiesced leader has no lease, and an isolated old leader stops serving
 * lease reads before a new leader can exist, so it never returns a value
 * older than a write the new leader acknowledged.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ProposalDroppedError, type Message, type NodeId, type RaftReadCounters } from '../../../src/group/raft/index.js';
import { LIVENESS_GROUP_ID } from '../../../src/group/host/index.js';
import { DelegatingTransport, NetworkFaults, type Transport } from '../../../src/group/transport/index.js';
import { addGroup, cmd, connect, leaderOf, startNode, stopNode, waitFor, waitLeaders, write, type TestNode } from './helpers.js';

/** 25 ms ticks: a lease lasts 7 ticks (electionTick 10 minus the host's margin of 3). */
const TICK_MS = 25;

/** Once `drop.on`, drops every heartbeat and heartbeat response sent alone, so only coalesced packs carry them. */
class CoalescedHeartbeatsOnly extends DelegatingTransport {
  constructor(
    inner: Transport,
    private readonly drop: { on: boolean },
  ) {
    super(inner);
  }
  override send(toNode: NodeId, groupId: number, msg: Message): void {
    if (this.drop.on && groupId !== LIVENESS_GROUP_ID && (msg.type === 'heartbeat' || msg.type === 'heartbeatResp')) return;
    this.inner.send(toNode, groupId, msg);
  }
}

const ctxOf = (s: string): Uint8Array => new TextEncoder().encode(s);
const answered = (n: TestNode, g: number, ctx: string): number | undefined =>
  n.sms.get(g)!.readStates.find((rs) => new TextDecoder().decode(rs.requestCtx) === ctx)?.index;
const counters = (n: TestNode): RaftReadCounters => n.host.readCounters();

describe('leader leases in the host', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('a lease forms through coalesced heartbeats alone; lease reads take no heartbeat round; quiescing ends the lease', async () => {
    const drop = { on: false };
    const nodes: TestNode[] = [];
    for (let id = 1; id <= 3; id++) {
      nodes.push(await startNode(id, { tickMs: TICK_MS, wrapTransport: (t) => new CoalescedHeartbeatsOnly(t, drop) }));
    }
    cleanups.push(async () => {
      for (const n of nodes) await stopNode(n);
    });
    connect(nodes);
    // Several groups led by node 1, so each tick has several heartbeats per peer to coalesce.
    const groups = [1, 2, 3];
    for (const n of nodes) for (const g of groups) await addGroup(n, g, [1, 2, 3], n.id === 1);
    await waitLeaders(nodes, groups);
    for (const g of groups) await write(nodes, g, `v${g}`);
    for (const g of groups) {
      const l = leaderOf(nodes, g);
      if (l !== undefined && l.id !== 1) l.host.handle(g).transferLeader(1);
    }
    await waitFor(() => groups.every((g) => leaderOf(nodes, g)?.id === 1), 'node 1 leads every group');
    const leader = nodes[0]!;

    // From now on heartbeats travel only in coalesced packs. A lease lasts 7 ticks, so one seen
    // 12 ticks later rests on stamps that came back in packs. Asking keeps the groups awake.
    drop.on = true;
    const dropFrom = performance.now();
    await waitFor(
      () => {
        const leased = groups.map((g) => leader.host.handle(g).leaseReadIndex() !== undefined); // asks every group
        return performance.now() - dropFrom > 12 * TICK_MS && leased.every(Boolean);
      },
      'leases of every group through coalesced heartbeats',
    );
    assert.ok(groups.every((g) => leaderOf(nodes, g)?.id === 1), 'no leader change without lone heartbeats');
    assert.ok(leader.host.stats.coalescedHeartbeats > 0);
    assert.ok(nodes.every((n) => n.host.stats.coalescedMessages > 0), 'responses came back coalesced too');

    // Reads in one synchronous burst see one lease: all answered from it, no heartbeat round.
    // The burst starts just after a tick: a read is refused once two ticks are overdue
    // (lease-clock.ts), and a burst started while one already was could cross into the second.
    const g = 2;
    const h = leader.host.handle(g);
    const ticks = leader.host.stats.ticks;
    await waitFor(() => leader.host.stats.ticks > ticks && h.leaseReadIndex() !== undefined, 'lease of group 2, just after a tick');
    const before = counters(leader);
    const heartbeatsBefore = leader.host.stats.heartbeatsSent;
    const reads = 20;
    for (let i = 0; i < reads; i++) h.readIndex(ctxOf(`l${i}`));
    const lease = counters(leader);
    assert.equal(lease.lease - before.lease, reads, 'every read confirmed by the lease');
    assert.equal(lease.heartbeatQuorum, before.heartbeatQuorum, 'no read waited for a heartbeat quorum');
    await waitFor(() => answered(leader, g, `l${reads - 1}`) !== undefined, 'lease reads answered');
    const commit = h.status().commit;
    for (let i = 0; i < reads; i++) assert.equal(answered(leader, g, `l${i}`), commit);
    // Only tick heartbeats went out meanwhile (a ReadIndex round would add 2 per read).
    const ticksMeanwhile = leader.host.stats.heartbeatsSent - heartbeatsBefore;
    assert.ok(ticksMeanwhile < reads * 2, `heartbeats sent during the reads: ${ticksMeanwhile}`);
    const text = await leader.host.metrics.registry.getSingleMetricAsString('keyspan_linearizable_reads_total');
    assert.match(text, /keyspan_linearizable_reads_total\{via="lease",node="1"\} [1-9]/);
    assert.match(text, /keyspan_linearizable_reads_total\{via="read_index",node="1"\} \d+/);

    // Left alone, the group quiesces, which forfeits the lease: the next read takes a heartbeat
    // round (one group's round may travel alone: stop dropping those).
    drop.on = false;
    await waitFor(() => leader.host.isQuiesced(g) === true, 'group 2 quiesced', 15_000);
    assert.equal(h.leaseReadIndex(), undefined, 'no lease while quiesced');
    const quiet = counters(leader);
    h.readIndex(ctxOf('q'));
    await waitFor(() => answered(leader, g, 'q') !== undefined, 'read after quiescence answered');
    const after = counters(leader);
    assert.equal(after.heartbeatQuorum - quiet.heartbeatQuorum, 1, 'confirmed by a heartbeat quorum');
  });

  it('an isolated old leader stops lease reads before a new leader exists and never serves a value older than its writes', async () => {
    const faults = new NetworkFaults({ intn: (n: number): number => Math.floor(n / 2) });
    const nodes: TestNode[] = [];
    for (let id = 1; id <= 3; id++) nodes.push(await startNode(id, { faults, tickMs: TICK_MS }));
    cleanups.push(async () => {
      for (const n of nodes) await stopNode(n);
    });
    connect(nodes);
    const g = 7;
    for (const n of nodes) await addGroup(n, g, [1, 2, 3], n.id === 1);
    await waitLeaders(nodes, [g]);
    await write(nodes, g, 'before');
    const old = leaderOf(nodes, g)!;
    const oldHandle = old.host.handle(g);
    const oldTerm = oldHandle.status().term;
    const majority = nodes.filter((n) => n !== old);

    // Sample every few ms: when did the old leader last answer from its lease, when did a new
    // leader appear, and what did each lease read return?
    let lastLeaseAt = 0;
    let electedAt = Infinity;
    let ackedAt = Infinity;
    const leaseReadsAfterAck: number[] = [];
    const sample = (): void => {
      const now = performance.now();
      const idx = oldHandle.leaseReadIndex();
      if (idx !== undefined) {
        lastLeaseAt = now;
        if (now >= ackedAt) leaseReadsAfterAck.push(idx);
      }
      if (electedAt === Infinity && majority.some((n) => n.host.handle(g).status().role === 'leader' && n.host.handle(g).status().term > oldTerm)) {
        electedAt = now;
      }
    };
    // Isolate right after a lease read succeeded (no I/O runs between the check and the cut).
    await waitFor(() => {
      sample();
      return lastLeaseAt > 0;
    }, 'lease of the old leader');
    const sampler = setInterval(sample, 2);
    cleanups.push(async () => clearInterval(sampler));

    faults.isolate(old.id, majority.map((n) => n.id));
    await waitLeaders(majority, [g]);
    const newLeader = leaderOf(majority, g)!;
    newLeader.host.handle(g).propose(cmd('after'));
    await waitFor(() => newLeader.sms.get(g)!.items.includes('after'), 'write acknowledged by the new leader');
    ackedAt = performance.now();
    // A read the old leader is asked after the acknowledgement must not be answered while isolated
    // (raft refuses it outright once the old leader has stepped down and knows no leader).
    try {
      oldHandle.readIndex(ctxOf('stale?'));
    } catch (e) {
      assert.ok(e instanceof ProposalDroppedError, String(e));
    }
    await new Promise((r) => setTimeout(r, 20 * TICK_MS));
    sample();
    clearInterval(sampler);

    assert.ok(electedAt < Infinity, 'a new leader was seen');
    assert.ok(lastLeaseAt > 0 && lastLeaseAt < electedAt, `lease reads until ${lastLeaseAt.toFixed(1)} ms, new leader at ${electedAt.toFixed(1)} ms`);
    assert.deepEqual(leaseReadsAfterAck, []);
    assert.equal(answered(old, g, 'stale?'), undefined, 'the isolated node confirmed no read');
    assert.ok(!old.sms.get(g)!.items.includes('after'));

    faults.heal();
    await waitFor(() => old.sms.get(g)!.items.includes('after'), 'old leader caught up after heal');
    await waitLeaders(nodes, [g]);
  });
});
