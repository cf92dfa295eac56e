/**
 * Automatic compaction decisions (etcd 3.4's v3compactor semantics), driven
 * by a fake clock and revision samples: periodic mode samples every tenth
 * of the period (capped at one hour), waits one retention period, then
 * compacts the revision of one retention ago every min(period, 1h);
 * revision mode compacts `current - N` on each check; followers never
 * compact; failed compactions are retried.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  compactionSchedule,
  PeriodicSchedule,
  REVISION_COMPACTION_CHECK_INTERVAL_MS,
  RevisionSchedule,
} from '../../src/gateway/compactor-schedule.js';

const MIN = 60_000;
const HOUR = 60 * MIN;

/** Runs `schedule` for `checks` checks with the revision `rev(t)` at each check time; returns [time, revision] of each compaction. */
function run(
  s: PeriodicSchedule | RevisionSchedule,
  checks: number,
  rev: (tMs: number) => number,
  opts: { leader?: (tMs: number) => boolean; fails?: (tMs: number) => boolean } = {},
): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 1; i <= checks; i++) {
    const t = i * s.checkIntervalMs;
    const target = s.check(t, rev(t), opts.leader?.(t) ?? true);
    if (target === undefined) continue;
    const ok = !(opts.fails?.(t) ?? false);
    s.done(t, target, ok);
    if (ok) out.push([t, target]);
  }
  return out;
}

describe('periodic compaction schedule', () => {
  it('for 1h: samples every 6 minutes, first compacts after an hour, then hourly with the revision of an hour ago', () => {
    const s = new PeriodicSchedule(HOUR, 0, 0);
    assert.equal(s.checkIntervalMs, 6 * MIN);
    assert.equal(s.compactIntervalMs, HOUR);
    // One write per minute: revision = minutes since start.
    const got = run(s, 30, (t) => t / MIN);
    assert.deepEqual(got, [
      [60 * MIN, 0],
      [120 * MIN, 54],
      [180 * MIN, 114],
    ]);
  });

  it('for 24h: samples every 6 minutes, waits 24h, then compacts hourly keeping ~24h of history', () => {
    const s = new PeriodicSchedule(24 * HOUR, 0, 0);
    assert.equal(s.checkIntervalMs, 6 * MIN);
    assert.equal(s.compactIntervalMs, HOUR);
    assert.equal(s.samplesKept, 241);
    const got = run(s, 10 * 27, (t) => t / MIN);
    assert.deepEqual(
      got.map(([t]) => t / HOUR),
      [24, 25, 26, 27],
    );
    // The compacted revision is about a day (plus one sampling step) old.
    for (const [t, r] of got.slice(1)) assert.equal(t / MIN - r, 24 * 60 + 6);
  });

  it('for 10m: compacts every 10 minutes, sampling every minute', () => {
    const s = new PeriodicSchedule(10 * MIN, 0, 5);
    assert.equal(s.checkIntervalMs, MIN);
    const got = run(s, 30, (t) => 5 + t / MIN);
    assert.deepEqual(got, [
      [10 * MIN, 5],
      [20 * MIN, 14],
      [30 * MIN, 24],
    ]);
  });

  it('a follower samples but never compacts; a new leader compacts on the same timeline', () => {
    const s = new PeriodicSchedule(10 * MIN, 0, 0);
    const got = run(s, 30, (t) => t / MIN, { leader: (t) => t > 15 * MIN });
    assert.deepEqual(got, [
      [16 * MIN, 5],
      [26 * MIN, 15],
    ]);
    const f = new PeriodicSchedule(10 * MIN, 0, 0);
    assert.deepEqual(run(f, 50, (t) => t / MIN, { leader: () => false }), []);
  });

  it('retries a failed compaction at the next check', () => {
    const s = new PeriodicSchedule(10 * MIN, 0, 0);
    const got = run(s, 12, (t) => t / MIN, { fails: (t) => t === 10 * MIN });
    assert.deepEqual(got, [[11 * MIN, 0]]);
  });

  it('refuses a retention below 10 ms', () => {
    assert.throws(() => new PeriodicSchedule(9, 0, 0), /periodic retention must be an integer >= 10 ms/);
  });
});

describe('revision compaction schedule', () => {
  it("checks every 5 minutes by default and compacts current - N once per new target", () => {
    const s = compactionSchedule({ mode: 'revision', retentionRevisions: 100 }, 0, 0);
    assert.equal(s.checkIntervalMs, REVISION_COMPACTION_CHECK_INTERVAL_MS);
    const revs = [50, 100, 150, 150, 400];
    const got: number[] = [];
    for (const [i, r] of revs.entries()) {
      const target = s.check((i + 1) * s.checkIntervalMs, r, true);
      if (target === undefined) continue;
      s.done(0, target, true);
      got.push(target);
    }
    assert.deepEqual(got, [50, 300]);
  });

  it('a follower never compacts; a failure is retried with the same target', () => {
    const s = new RevisionSchedule(10, 1000);
    assert.equal(s.check(1000, 50, false), undefined);
    assert.equal(s.check(2000, 50, true), 40);
    s.done(2000, 40, false);
    assert.equal(s.check(3000, 50, true), 40);
    s.done(3000, 40, true);
    assert.equal(s.check(4000, 50, true), undefined);
    assert.throws(() => new RevisionSchedule(0, 1000), /revision retention must be a positive integer/);
  });
});
