/**
 * Applying a put or compare-and-put without a wait: with the keys in the
 * hot-key cache (or known new), applyNormalEntry's outcome comes at once,
 * lease attachment changes included, and it is the outcome, the state and the engine contents the waited
 * path produces.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryEngine, type Engine } from '../../../src/storage/index.js';
import { WriteBehindEngine } from '../../../src/storage/write-behind.js';
import { MvccStore } from '../../../src/shard/index.js';
import { applyNormalEntry, type EntryOutcome, type RangeState } from '../../../src/shard/replica/apply.js';
import { DedupeTable } from '../../../src/shard/replica/dedupe.js';
import { RangeKeys } from '../../../src/shard/replica/keys.js';
import { encodeCommand, type CommandBody } from '../../../src/shard/replica/command-codec.js';
import { LeaseTable } from '../../../src/shard/lease/index.js';
import { loadAuthState } from '../../../src/shard/auth/index.js';
import type { Entry } from '../../../src/group/raft/index.js';

const b = (s: string): Buffer => Buffer.from(s);

async function rangeState(inner: Engine, keyFilter = true): Promise<RangeState> {
  const engine = new WriteBehindEngine(inner);
  const keys = new RangeKeys(3);
  const mvcc = await MvccStore.open(engine, { prefix: keys.mvccPrefix, keyFilter });
  return {
    engine,
    keys,
    mvcc,
    dedupe: await DedupeTable.load(engine, keys),
    leases: await LeaseTable.load(engine, keys),
    descriptor: { rangeId: 3, start: b(''), end: b(''), replicas: [{ nodeId: 1, replicaId: 1, role: 'voter' }], epoch: { confVersion: 1, spanVersion: 1 } },
    appliedIndex: await mvcc.appliedIndex(),
    auth: await loadAuthState(engine, keys.authState),
  };
}

let seq = 0;
function entry(index: number, body: CommandBody, proposer = 'p'): Entry {
  const data = encodeCommand({ requestId: { proposer: b(proposer), seq: ++seq }, epoch: { confVersion: 1, spanVersion: 1 }, body });
  return { term: 2, index, type: 'normal', data };
}

const putBody = (key: string, value: string, extra: object = {}): CommandBody => ({
  type: 'put',
  request: { key: b(key), value: b(value), ...extra },
});

/** Applies `e`, reporting whether the outcome came without a promise. */
async function apply(state: RangeState, e: Entry): Promise<{ now: boolean; outcome: EntryOutcome }> {
  const r = applyNormalEntry(state, e);
  return r instanceof Promise ? { now: false, outcome: await r } : { now: true, outcome: r };
}

async function contents(engine: Engine): Promise<string[]> {
  const out: string[] = [];
  for await (const { key, value } of engine.iterate({})) out.push(`${key.toString('hex')}=${value.toString('hex')}`);
  return out;
}

/**
 * Applies `bodies` to a range whose plans can come from the cache and to
 * one where every plan waits (no key filter; keys first written elsewhere
 * are never cache hits), asserting equal outcomes entry by entry and equal
 * engine contents at the end; returns which entries applied at once.
 */
async function applyBoth(bodies: readonly CommandBody[]): Promise<{ nowFlags: boolean[]; fast: RangeState; slow: RangeState }> {
  const fastInner = new MemoryEngine();
  const slowInner = new MemoryEngine();
  const fast = await rangeState(fastInner);
  const slow = await rangeState(slowInner, false);
  const nowFlags: boolean[] = [];
  for (let i = 0; i < bodies.length; i++) {
    const e = entry(i + 1, bodies[i]!);
    const f = await apply(fast, e);
    const s = await apply(slow, e);
    nowFlags.push(f.now);
    assert.deepEqual(f.outcome, s.outcome, `entry ${i + 1}`);
  }
  await fast.engine.flush();
  await slow.engine.flush();
  assert.deepEqual(await contents(fastInner), await contents(slowInner));
  return { nowFlags, fast, slow };
}

test('a put of a cached or new key applies at once, with the outcome and engine state of the waited path', async () => {
  const bodies: CommandBody[] = [
    putBody('a', '1'),
    putBody('a', '2', { prevKv: true }),
    putBody('b', 'x'),
    putBody('b', '', { ignoreValue: true, prevKv: true }),
    putBody('nokey', '', { ignoreValue: true }),
    putBody('c', 'v', { lease: 9n }),
    { type: 'deleteRange', request: { key: b('a') } },
    putBody('a', '3'),
    {
      type: 'txn',
      request: {
        compare: [{ key: b('a'), target: 'MOD', result: 'EQUAL', modRevision: 7 }],
        success: [{ type: 'put', request: { key: b('a'), value: b('4') } }],
        failure: [{ type: 'range', request: { key: b('a') } }],
      },
    },
  ];
  const { nowFlags, fast, slow } = await applyBoth(bodies);
  // Puts and a compare-and-put at once (a failed put too: key not found, lease not found); the delete waits.
  assert.deepEqual(nowFlags, [true, true, true, true, true, true, false, true, true]);
  assert.equal(fast.appliedIndex, bodies.length);
  assert.equal(fast.mvcc.currentRevision, slow.mvcc.currentRevision);
});

test('a retried put is answered from the dedupe table, not applied again', async () => {
  const state = await rangeState(new MemoryEngine());
  const e = entry(1, putBody('k', 'v'));
  const first = await apply(state, e);
  assert.equal(first.now, true);
  const again = await apply(state, { ...e, index: 2 });
  assert.equal(again.now, false, 'a known id is read from the table');
  assert.equal(again.outcome.duplicate, true);
  assert.deepEqual(again.outcome.result, first.outcome.result);
  assert.equal(state.mvcc.currentRevision, 2);
  assert.equal(state.appliedIndex, 2);
});

test('with leases in the range a put or compare-and-put applies at once and moves its attachments as the waited path does', async () => {
  const bodies: CommandBody[] = [
    { type: 'leaseGrant', request: { id: 5n, ttlSeconds: 60 } },
    { type: 'leaseGrant', request: { id: 6n, ttlSeconds: 60 } },
    putBody('k', 'v1', { lease: 5n }),
    putBody('k', 'v2', { lease: 6n }),
    putBody('j', 'w', { lease: 6n }),
    putBody('k', 'v3'),
    {
      type: 'txn',
      request: {
        compare: [{ key: b('k'), target: 'LEASE', result: 'EQUAL', lease: 0n }],
        success: [
          { type: 'put', request: { key: b('k'), value: b('v4'), lease: 5n } },
          { type: 'put', request: { key: b('j'), value: b('w2') } },
        ],
      },
    },
    putBody('k', 'v5', { lease: 77n }),
    { type: 'leaseRevoke', request: { id: 5n } },
    putBody('k', 'v6', { lease: 6n }),
  ];
  const { nowFlags, fast } = await applyBoth(bodies);
  // Grants and the revoke wait; every put and the txn at once (the put naming a missing lease fails at once).
  assert.deepEqual(nowFlags, [false, false, true, true, true, true, true, true, false, true]);
  // j left lease 6 in the txn; k was deleted with lease 5 and put again on 6.
  assert.deepEqual(await fast.leases.attachedKeys(fast.engine, 6n), [b('k')]);
  assert.equal(fast.leases.has(5n), false);
});
