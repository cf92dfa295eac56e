/**
 * routed(): routing errors are retried with a fresh route, bounded; other
 * errors pass through at once; a retried write keeps its request id. With
 * the call's forwarding scope, a leader on another node ends the retries at
 * once; RequestIds takes a scoped call's request id.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { CallInfo } from '../../src/gateway/context.js';
import { LeaderElsewhereError, type ForwardScope } from '../../src/gateway/forward-scope.js';
import { RequestIds } from '../../src/gateway/kv-service.js';
import { routed, routeOptionsOf, LocalRangeRouter, type RangeRouter, type RangeTarget } from '../../src/gateway/router.js';
import {
  EpochMismatchError,
  INITIAL_EPOCH,
  KeyNotInRangeError,
  RangeNotFoundError,
  NotLeaderError,
  type RangeDescriptor,
  type Replica,
} from '../../src/shard/replica/index.js';
import { KeyNotFoundError } from '../../src/shard/mvcc/index.js';

const DESC: RangeDescriptor = {
  rangeId: 1,
  start: new Uint8Array(),
  end: new Uint8Array(),
  replicas: [{ nodeId: 1, replicaId: 1, role: 'voter' }],
  epoch: INITIAL_EPOCH,
};

function countingRouter(): RangeRouter & { routes: number; invalidations: number } {
  const target: RangeTarget = {
    rangeId: 1,
    replica: {} as Replica,
    epoch: INITIAL_EPOCH,
    raftStatus: () => ({ leader: 1, term: 1, commit: 0, applied: 0, role: 'leader' }),
  };
  const r = {
    routes: 0,
    invalidations: 0,
    route: () => {
      r.routes++;
      return target;
    },
    ranges: () => [target],
    invalidate: () => {
      r.invalidations++;
    },
  };
  return r;
}

describe('routed()', () => {
  it('retries an epoch mismatch and a missing leader invisibly, re-routing each time', async () => {
    const router = countingRouter();
    const errors = [new EpochMismatchError(DESC), new NotLeaderError(1, undefined), new NotLeaderError(1, { replicaId: 1, nodeId: 1 })];
    const seen: number[] = [];
    const out = await routed(router, Buffer.from('k'), undefined, async () => {
      seen.push(router.routes);
      const e = errors.shift();
      if (e !== undefined) throw e;
      return 'done';
    });
    assert.equal(out, 'done');
    assert.deepEqual(seen, [1, 2, 3, 4], 'a fresh route per attempt');
    assert.equal(router.invalidations, 3);
  });

  it('passes non-routing errors through at once', async () => {
    const router = countingRouter();
    await assert.rejects(
      routed(router, Buffer.from('k'), undefined, async () => {
        throw new KeyNotFoundError();
      }),
      KeyNotFoundError,
    );
    assert.equal(router.routes, 1);
  });

  it('gives up after the attempt bound with the last routing error', async () => {
    const router = countingRouter();
    await assert.rejects(
      routed(
        router,
        Buffer.from('k'),
        undefined,
        async () => {
          throw new KeyNotInRangeError(Buffer.from('k'), 1, new Uint8Array(), new Uint8Array());
        },
        { attemptsMax: 4 },
      ),
      KeyNotInRangeError,
    );
    assert.equal(router.routes, 4);
  });

  it('stops waiting for a leader when the deadline passes', async () => {
    const router = countingRouter();
    const t0 = Date.now();
    await assert.rejects(
      routed(
        router,
        Buffer.from('k'),
        undefined,
        async () => {
          throw new NotLeaderError(1, undefined);
        },
        { deadlineMs: 150 },
      ),
      NotLeaderError,
    );
    assert.ok(Date.now() - t0 < 2_000);
  });
});

describe('routed() with a forwarding scope', () => {
  const scope = (localNodeId: number, forwarded = false): ForwardScope => ({
    localNodeId,
    forwarded,
    requestId: { proposer: Buffer.from('origin01'), seq: 7 },
  });
  const call = (forward?: ForwardScope): CallInfo => ({
    signal: new AbortController().signal,
    metadata: new grpc.Metadata(),
    ...(forward !== undefined ? { forward } : {}),
  });

  it("ends at once with LeaderElsewhereError when the hint names another node, on the origin and on a forwarded call's receiver", async () => {
    for (const s of [scope(1), scope(1, true)]) {
      const router = countingRouter();
      await assert.rejects(
        routed(router, Buffer.from('k'), undefined, async () => {
          throw new NotLeaderError(1, { replicaId: 3, nodeId: 3 });
        }, routeOptionsOf(call(s))),
        (err: unknown) => err instanceof LeaderElsewhereError && err.leaderNodeId === 3 && err.cause instanceof NotLeaderError,
      );
      assert.equal(router.routes, 1, 'no local retry');
    }
  });

  it('retries locally when the hint names this node or no node, or when the call has no scope', async () => {
    const cases: Array<[ForwardScope | undefined, NotLeaderError]> = [
      [scope(3), new NotLeaderError(1, { replicaId: 3, nodeId: 3 })],
      [scope(1), new NotLeaderError(1, undefined)],
      [undefined, new NotLeaderError(1, { replicaId: 3, nodeId: 3 })],
    ];
    for (const [s, e] of cases) {
      const router = countingRouter();
      let thrown = false;
      const out = await routed(router, Buffer.from('k'), undefined, async () => {
        if (!thrown) {
          thrown = true;
          throw e;
        }
        return 'done';
      }, routeOptionsOf(call(s)));
      assert.equal(out, 'done');
      assert.equal(router.routes, 2);
    }
  });

  it("RequestIds: a scoped call's writes use the scope's request id; an unscoped call's get fresh ones", () => {
    const ids = new RequestIds();
    const s = scope(1, true);
    assert.equal(ids.next(call(s)), s.requestId);
    assert.equal(ids.next(call(s)), s.requestId, 'every attempt of the call shares it');
    const a = ids.next(call());
    const b = ids.next(call());
    assert.equal(b.seq, a.seq + 1);
    assert.deepEqual(b.proposer, a.proposer);
    assert.notDeepEqual(a.proposer, s.requestId.proposer);
  });
});

describe('LocalRangeRouter', () => {
  it('routes to the range whose span holds the key, with its current epoch', () => {
    const replica = { descriptor: { ...DESC, start: Buffer.from('a'), end: Buffer.from('m') } } as unknown as Replica;
    const router = new LocalRangeRouter({
      range: () => replica,
      rangeIds: () => [1],
      status: () => ({ leader: 1, term: 2, commit: 3, applied: 3, role: 'leader' }),
    });
    const t = router.route(Buffer.from('b'), Buffer.from('c'));
    assert.equal(t.rangeId, 1);
    assert.deepEqual(t.epoch, INITIAL_EPOCH);
    assert.equal(t.raftStatus().term, 2);
    assert.throws(() => router.route(Buffer.from('z')), KeyNotInRangeError);
    assert.throws(() => router.route(Buffer.from('b'), Buffer.of(0)), KeyNotInRangeError, 'a from-key span leaves the range');
  });

  it('routes among many ranges through its index, listing them again only when the range set changes', () => {
    // Ranges 1..40, range i holding [k{i}, k{i+1}) (two-digit keys), the last one open-ended.
    const key = (i: number): Buffer => Buffer.from(`k${String(i).padStart(2, '0')}`);
    const descriptors = new Map<number, { descriptor: unknown }>();
    const put = (id: number, start: Buffer, end: Buffer): void => {
      descriptors.set(id, { descriptor: { ...DESC, rangeId: id, start, end } });
    };
    for (let i = 1; i <= 40; i++) put(i, key(i), i === 40 ? Buffer.alloc(0) : key(i + 1));
    let version = 1;
    let listings = 0;
    const router = new LocalRangeRouter({
      range: (id) => {
        const r = descriptors.get(id);
        if (r === undefined) throw new RangeNotFoundError(id);
        return r as unknown as Replica;
      },
      rangeIds: () => {
        listings++;
        return [...descriptors.keys()].sort((a, b) => a - b);
      },
      status: () => ({ leader: 1, term: 2, commit: 3, applied: 3, role: 'leader' }),
      get rangesVersion() {
        return version;
      },
    });
    for (let round = 0; round < 3; round++) {
      for (let i = 1; i <= 40; i++) assert.equal(router.route(Buffer.concat([key(i), Buffer.from('/x')])).rangeId, i);
    }
    assert.equal(router.route(Buffer.from('zzz')).rangeId, 40);
    assert.equal(listings, 1, 'indexed once');
    assert.throws(() => router.route(Buffer.from('a')), KeyNotInRangeError, 'before the first range');
    assert.equal(router.rangeTarget(7)?.rangeId, 7);
    assert.equal(router.rangeTarget(99), undefined);

    // A split of range 40 at k60: a new range, a new version.
    put(40, key(40), key(60));
    put(41, key(60), Buffer.alloc(0));
    version++;
    assert.equal(router.route(key(70)).rangeId, 41);
    assert.equal(router.route(key(45)).rangeId, 40);
    // Spans that move without a new version (a range's first snapshot): still routed right, then indexed again.
    put(41, key(50), Buffer.alloc(0));
    put(40, key(40), key(50));
    const before = listings;
    assert.equal(router.route(key(55)).rangeId, 41);
    assert.equal(router.route(key(56)).rangeId, 41);
    assert.equal(listings, before + 2, 'one full listing to route, one to index again');
  });
});
