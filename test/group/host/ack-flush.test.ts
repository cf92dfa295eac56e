/**
 * A follower's append acknowledgement is on every write's critical path: the
 * turn that made the entries durable writes it to the transport before the
 * turn's apply runs, not on the transport's next scheduled flush.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Message, NodeId } from '../../../src/group/raft/index.js';
import { DelegatingTransport } from '../../../src/group/transport/index.js';
import { addGroup, cmd, connect, startNode, stopNode, waitFor, type TestNode } from './helpers.js';

/** Records, for every appResp sent, whether flush() was called before the sending code yielded. */
class AckFlushProbe extends DelegatingTransport {
  private unflushed = 0;
  readonly acks: boolean[] = [];

  override send(toNode: NodeId, groupId: number, msg: Message): void {
    super.send(toNode, groupId, msg);
    if (msg.type !== 'appResp' || msg.reject) return;
    this.unflushed++;
    // Microtasks run once the host's synchronous turn code yields (at its first await).
    queueMicrotask(() => {
      this.acks.push(this.unflushed === 0);
    });
  }

  override flush(): void {
    this.unflushed = 0;
    super.flush();
  }
}

describe('append acknowledgements', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('leave in the turn that made the entries durable, before it applies', async () => {
    const probes = new Map<number, AckFlushProbe>();
    const nodes: TestNode[] = [];
    for (let id = 1; id <= 3; id++) {
      const node = await startNode(id, {
        wrapTransport: (inner) => {
          const p = new AckFlushProbe(inner);
          probes.set(id, p);
          return p;
        },
      });
      cleanups.push(() => stopNode(node));
      nodes.push(node);
    }
    connect(nodes);
    const handles = [];
    for (const n of nodes) handles.push(await addGroup(n, 1, [1, 2, 3], n.id === 1));
    const leader = handles[0]!;
    await waitFor(() => leader.status().role === 'leader', 'node 1 leads');
    for (let i = 0; i < 20; i++) {
      leader.propose(cmd(`w${i}`));
      await waitFor(() => nodes.every((n) => n.sms.get(1)!.items.includes(`w${i}`)), `w${i} applied everywhere`);
    }
    const acks = [...probes.get(2)!.acks, ...probes.get(3)!.acks];
    assert.ok(acks.length >= 40, `followers acknowledged every write (${acks.length} acks)`);
    assert.equal(
      acks.filter((flushed) => !flushed).length,
      0,
      'every acknowledgement was handed to the connection before the turn yielded',
    );
  });
});
