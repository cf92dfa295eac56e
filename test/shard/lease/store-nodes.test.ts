/**
 * Leases on three real StoreNodes in one process (memory engines, loopback
 * raft transport, real clocks): the lessor follows raft leadership as the
 * multi-raft host reports it, and the leader's expiry timer revokes through
 * raft. Timing assertions only go one way — an event must not happen
 * *before* a bound — so a slow machine can delay the test, never fail it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { StoreNode, wholeKeyspaceRange, type StoreNodeOptions } from '../../../src/node/index.js';
import { INITIAL_EPOCH, NotLeaderError } from '../../../src/shard/range/index.js';
import { freePorts, waitFor } from '../../node/helpers.js';

const IDS = [1, 2, 3];
const RANGE = 1;
const TICK_MS = 10;
const WAIT_MS = 20_000;
const epoch = INITIAL_EPOCH;
const b = (s: string): Buffer => Buffer.from(s);

describe('leases on three StoreNodes', () => {
  const nodes = new Map<number, StoreNode>();

  const leader = (): StoreNode | undefined => {
    const live = [...nodes.values()];
    const l = live.find((n) => n.status(RANGE).role === 'leader');
    return l !== undefined && live.every((n) => n.status(RANGE).leader === l.nodeId) ? l : undefined;
  };
  /** Runs `f` on the leader, retrying while leadership is moving. */
  const onLeader = async <T>(what: string, f: (n: StoreNode) => Promise<T>): Promise<T> => {
    let out: T | undefined;
    let done = false;
    await waitFor(async () => {
      const l = leader();
      if (l === undefined) return false;
      try {
        out = await f(l);
        done = true;
        return true;
      } catch (e) {
        if (e instanceof NotLeaderError) return false;
        throw e;
      }
    }, what, WAIT_MS);
    if (!done) throw new Error(`unreachable: ${what}`);
    return out as T;
  };
  const present = async (n: StoreNode, key: string): Promise<boolean> =>
    (await n.range(RANGE).range({ key: b(key) }, { epoch, consistency: 'serializable' })).result.kvs.length > 0;

  before(async () => {
    const ports = await freePorts(IDS.length);
    const optionsOf = (id: number): StoreNodeOptions => ({
      nodeId: id,
      peerListen: `127.0.0.1:${ports[id - 1]!}`,
      peers: new Map(IDS.map((p) => [p, `127.0.0.1:${ports[p - 1]!}`])),
      engineKind: 'memory',
      ranges: wholeKeyspaceRange(IDS),
      tickMs: TICK_MS,
      raft: { electionTick: 10, heartbeatTick: 1 },
    });
    for (const id of IDS) nodes.set(id, await StoreNode.open(optionsOf(id)));
  });

  after(async () => {
    for (const n of nodes.values()) await n.close().catch(() => undefined);
  });

  it('a lease kept alive through a leadership transfer survives; an unrenewed one expires no earlier than a full TTL after the transfer', async () => {
    await onLeader('grant', (l) => l.range(RANGE).leaseGrant(1n, 4, { epoch }));
    await onLeader('grant', (l) => l.range(RANGE).leaseGrant(2n, 3, { epoch }));
    await onLeader('put kept', (l) => l.range(RANGE).put({ key: b('kept'), value: b('1'), lease: 1n }, { epoch }));
    await onLeader('put dropped', (l) => l.range(RANGE).put({ key: b('dropped'), value: b('1'), lease: 2n }, { epoch }));
    // The minimum TTL follows the node's raft timing: ceil(15 ticks * 10 ms) = 1 s.
    assert.equal(nodes.get(1)!.range(RANGE).minLeaseTtlSeconds, 1);

    let keepAlive = true;
    const renewals = (async () => {
      while (keepAlive) {
        const l = leader();
        if (l !== undefined) await l.range(RANGE).leaseKeepAlive(1n).catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    })();
    try {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const old = leader() ?? (await onLeader('leader', async (l) => l));
      const target = IDS.find((id) => id !== old.nodeId)!;
      const transferAt = performance.now();
      await old.range(RANGE).transferLeader(target, { epoch: old.range(RANGE).descriptor.epoch });
      await waitFor(() => leader()?.nodeId === target, `node ${target} leads`, WAIT_MS);
      // Lease 2 would have expired on the old leader ~2 s after the transfer;
      // the new leader restarted its deadline at promotion + 3 s + extension.
      await waitFor(async () => !(await present(leader() ?? old, 'dropped')), 'the unrenewed lease expires', WAIT_MS);
      const goneAfterMs = performance.now() - transferAt;
      assert.ok(goneAfterMs >= 3000, `lease 2 expired ${Math.round(goneAfterMs)} ms after the transfer, before its full TTL`);
      for (const n of nodes.values()) {
        await waitFor(async () => !(await present(n, 'dropped')), `node ${n.nodeId} applied the revoke`, WAIT_MS);
        assert.equal(await present(n, 'kept'), true, `node ${n.nodeId} lost the kept-alive key`);
      }
      const ttl = await onLeader('ttl', (l) => l.range(RANGE).leaseTimeToLive(1n, true));
      assert.ok(ttl.ttlSeconds >= 0 && ttl.grantedTtlSeconds === 4);
      assert.deepEqual(ttl.keys.map(String), ['kept']);
    } finally {
      keepAlive = false;
      await renewals;
    }
    // Without renewals lease 1 expires too, on every node.
    for (const n of nodes.values()) await waitFor(async () => !(await present(n, 'kept')), `node ${n.nodeId} revoked lease 1`, WAIT_MS);
    for (const n of nodes.values()) assert.deepEqual(n.range(RANGE).leaseList(), []);
  });
});
