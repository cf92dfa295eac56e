/**
 * The automatic compactor in a three-member cluster (one process, memory
 * engines, 10 ms ticks, revision mode checked every 50 ms): only the member
 * whose replica leads the range compacts, every replica applies it, and
 * after leadership moves the new leader takes over.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startEmbedded, type Embedded } from '../../src/gateway/embedded.js';
import { loopbackCluster } from '../node/embedded-cluster.js';
import type { CompactorEvent } from '../../src/gateway/compactor.js';
import { b, client, type EtcdTestClient } from './server-harness.js';
import { freePorts, waitFor } from '../node/helpers.js';

const TICK_MS = 10;
const CHECK_MS = 50;
const RETENTION = 3;

describe('automatic compaction in a cluster', () => {
  const members: Embedded[] = [];
  const events = new Map<string, CompactorEvent[]>();
  const kv = new Map<Embedded, EtcdTestClient>();
  const maint = new Map<Embedded, EtcdTestClient>();

  const leader = (): Embedded => {
    const l = members.find((m) => m.node.status(1).role === 'leader');
    assert.ok(l);
    return l;
  };
  const compactedBy = (m: Embedded): number[] =>
    (events.get(m.member.name) ?? []).flatMap((e) => (e.kind === 'compacted' ? [e.revision] : []));

  before(async () => {
    const ports = await freePorts(3);
    for (const name of ['m1', 'm2', 'm3']) {
      const port = ports[members.length] as number;
      events.set(name, []);
      const m = await startEmbedded({
        name,
        engineKind: 'memory',
        listenClient: [{ url: 'http://127.0.0.1:0', host: '127.0.0.1', port: 0 }],
        listenPeer: { url: `http://127.0.0.1:${port}`, host: '127.0.0.1', port },
        tickMs: TICK_MS,
        cluster: loopbackCluster(ports, name),
        autoCompaction: { mode: 'revision', retentionRevisions: RETENTION },
        revisionCompactionCheckIntervalMs: CHECK_MS,
        onCompaction: (e) => events.get(name)?.push(e),
      });
      members.push(m);
      kv.set(m, client('etcdserverpb.KV', m.server.addresses[0] as string));
      maint.set(m, client('etcdserverpb.Maintenance', m.server.addresses[0] as string));
    }
    await waitFor(() => members.some((m) => m.node.status(1).role === 'leader') && members.every((m) => m.node.status(1).leader !== 0), 'a leader', 15_000);
  });

  after(async () => {
    for (const c of [...kv.values(), ...maint.values()]) c.close();
    for (const m of members) await m.close();
  });

  /** Writes `n` revisions through `m`; returns the last one. */
  async function write(m: Embedded, n: number): Promise<number> {
    let rev = 0;
    for (let i = 0; i < n; i++) {
      const r = await kv.get(m)?.call('Put', { key: b('auto'), value: b(String(i)) });
      rev = (r?.['header'] as { revision: number }).revision;
    }
    return rev;
  }

  it('only the leader compacts, to current - retention, and every replica applies it', async () => {
    const l = leader();
    const last = await write(l, 6);
    await waitFor(() => members.every((m) => m.node.range(1).compactRevision === last - RETENTION), `compaction at ${last - RETENTION} everywhere`, 15_000);
    for (const m of members) {
      if (m === l) assert.ok(compactedBy(m).includes(last - RETENTION));
      else assert.deepEqual(events.get(m.member.name), [], `${m.member.name} is a follower and never compacts`);
    }
  });

  it('after leadership moves, the new leader compacts and the old one stops', async () => {
    const old = leader();
    const next = members.find((m) => m !== old) as Embedded;
    const before = compactedBy(old).length;
    await maint.get(old)?.call('MoveLeader', { targetID: next.member.id });
    await waitFor(() => next.node.status(1).role === 'leader', 'the move', 15_000);
    const last = await write(next, 4);
    await waitFor(() => members.every((m) => m.node.range(1).compactRevision === last - RETENTION), `compaction at ${last - RETENTION} everywhere`, 15_000);
    assert.ok(compactedBy(next).includes(last - RETENTION));
    assert.ok(compactedBy(old).every((r) => r < last - RETENTION), 'the old leader did not compact after the move');
    assert.ok(compactedBy(old).length >= before);
    const third = members.find((m) => m !== old && m !== next) as Embedded;
    assert.deepEqual(events.get(third.member.name), []);
  });
});
