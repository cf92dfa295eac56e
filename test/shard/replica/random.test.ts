import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, b } from './harness.js';
import { INITIAL_EPOCH, NotLeaderError } from '../../../src/shard/range/index.js';

const epoch = INITIAL_EPOCH;
const SEED = Number(process.env['KEYSPAN_SEED'] ?? 12345);
const REQUESTS = 60;
const ATTEMPTS_MAX = 20;

/** A small seeded LCG (the test replays exactly from KEYSPAN_SEED). */
function rng(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}

test(`writes retried across leader changes apply exactly once, revisions stay dense, replicas agree (seed ${SEED})`, async () => {
  const rand = rng(SEED);
  const h = await Harness.start([1, 2, 3]);
  let retries = 0;
  for (let i = 1; i <= REQUESTS; i++) {
    const requestId = { proposer: b('gateway'), seq: i };
    for (let attempt = 0; ; attempt++) {
      assert.ok(attempt < ATTEMPTS_MAX, `request ${i} never acknowledged`);
      const leader = h.leader();
      // Sometimes move leadership while the write is in flight: either the
      // leader is cut off (the entry is lost), or it never hears the acks
      // (the entry commits under the next leader, outcome unknown to the
      // proposer, so the retry must be answered from the dedupe table).
      const disrupt = rand(4);
      if (disrupt === 0) h.isolate(leader);
      if (disrupt === 1) h.drop = (m) => m.to === leader && m.type === 'appResp';
      const put = h.replica(leader).put({ key: b(`k${String(i).padStart(3, '0')}`), value: b(String(i)) }, { epoch, requestId });
      // Observed at once: it may fail while the test is still driving the cluster.
      const outcome = put.then(() => undefined, (err: unknown) => err);
      if (disrupt <= 1) {
        await h.settle();
        h.drop = undefined;
        const others = [1, 2, 3].filter((id) => id !== leader);
        await h.elect(others[rand(2)]!);
        h.heal();
        await h.tick(1);
      }
      const err = await outcome;
      if (err === undefined) break;
      assert.ok(err instanceof NotLeaderError, `unexpected ${String(err)}`);
      retries++;
    }
  }
  assert.ok(retries > 0, 'the seed exercised retries');
  await h.settle();
  const r = h.replica(h.leader());
  const all = await r.range({ key: b('k'), rangeEnd: b('l') }, { epoch });
  assert.equal(all.result.count, REQUESTS);
  for (const kv of all.result.kvs) assert.equal(kv.version, 1, `${kv.key.toString()} applied more than once`);
  assert.equal(r.currentRevision, REQUESTS + 1, 'one revision per request: dense, no double application');
  const revisions = all.result.kvs.map((kv) => kv.modRevision).sort((x, y) => x - y);
  assert.deepEqual(revisions, Array.from({ length: REQUESTS }, (_, i) => i + 2));
  const hashes = await Promise.all([1, 2, 3].map((id) => h.replica(id).hashKV()));
  assert.deepEqual(hashes[1], hashes[0]);
  assert.deepEqual(hashes[2], hashes[0]);
});
