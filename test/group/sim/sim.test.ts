/**
 * The deterministic simulator as a test suite: 1,000 seeds of mixed fault
 * scenarios must hold every invariant; a seed must replay identically; and
 * deliberately broken hosts must be caught within a bounded number of seeds.
 *
 * Replay one seed: KEYSPAN_SEED=123 node --import tsx --test test/group/sim/sim.test.ts
 * (or `npm run sim -- --seed 123 --trace` for the full trace).
 */
import { randomInt } from 'node:crypto';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runSeed } from './cluster.js';
import type { SimOptions, SimResult } from './cluster.js';
import { formatFailure } from './report.js';

/** Seeds of the main sweep, split into blocks so progress shows and blocks stay short. */
const SWEEP_SEEDS = 1000;
const SWEEP_BLOCKS = 4;

const envSeed = process.env['KEYSPAN_SEED'];

/** Runs seeds [from, to] and fails with every failing seed's report. */
function sweep(from: number, to: number, extra: Partial<SimOptions> = {}): void {
  const failures: string[] = [];
  for (let seed = from; seed <= to; seed++) {
    const r = runSeed({ ...extra, seed });
    if (!r.ok) failures.push(formatFailure(r));
  }
  assert.equal(failures.length, 0, `${failures.length} seed(s) failed:\n${failures.join('\n\n')}`);
}

/** The first seed in [1, maxSeeds] whose run violates one of `kinds` (any invariant if omitted). */
function firstViolation(opts: Omit<SimOptions, 'seed'>, maxSeeds: number, kinds?: ReadonlySet<string>): SimResult | undefined {
  for (let seed = 1; seed <= maxSeeds; seed++) {
    const r = runSeed({ ...opts, seed });
    if (!r.ok && (kinds === undefined || kinds.has(r.violation?.invariant ?? ''))) return r;
  }
  return undefined;
}

const SAFETY = new Set(['electionSafety', 'electionQuorum', 'logMatching', 'committedDurable', 'leaderCompleteness', 'stateMachineSafety']);

if (envSeed !== undefined) {
  test(`replays KEYSPAN_SEED=${envSeed}`, () => {
    const seed = Number(envSeed);
    assert.ok(Number.isSafeInteger(seed), 'KEYSPAN_SEED must be an integer');
    const r = runSeed({ seed });
    assert.ok(r.ok, formatFailure(r));
  });
} else {
  describe('simulator sweep: every invariant holds on mixed fault scenarios', () => {
    const per = SWEEP_SEEDS / SWEEP_BLOCKS;
    for (let b = 0; b < SWEEP_BLOCKS; b++) {
      const from = b * per + 1;
      const to = (b + 1) * per;
      test(`seeds ${from}..${to}`, () => sweep(from, to));
    }
    test('20 random seeds (printed, replay with KEYSPAN_SEED)', (t) => {
      const start = randomInt(1_000_000, 2 ** 40);
      t.diagnostic(`random seeds ${start}..${start + 19}`);
      console.log(`sim: random seeds ${start}..${start + 19} (replay one with KEYSPAN_SEED=<seed>)`);
      sweep(start, start + 19);
    });
  });

  describe('regression seeds', () => {
    test('seed 80705: a stale term-6 leader overwrites, on a node paused since term 5, an entry committed only in term 9 (legal)', () => {
      const r = runSeed({ seed: 80705 });
      assert.ok(r.ok, formatFailure(r));
    });
    test('seed 50993: a new empty voter at a higher term (it granted a vote to a retired node) deposes the leader and catches up', () => {
      const r = runSeed({ seed: 50993 });
      assert.ok(r.ok, formatFailure(r));
    });
  });

  describe('determinism', () => {
    test('a seed replays the identical event sequence', () => {
      for (const seed of [7, 4242]) {
        const a = runSeed({ seed });
        const b = runSeed({ seed });
        assert.equal(a.digest, b.digest, `seed ${seed}: digests differ`);
        assert.equal(a.events, b.events);
        assert.equal(a.virtualMs, b.virtualMs);
        assert.deepEqual(a.traceTail, b.traceTail);
        assert.deepEqual(a.faults, b.faults);
      }
    });

    test('tracing a run does not change it', () => {
      const lines: string[] = [];
      const traced = runSeed({ seed: 7, trace: (l) => lines.push(l) });
      assert.equal(traced.digest, runSeed({ seed: 7 }).digest);
      assert.ok(lines.length > 100);
    });

    test('different seeds give different runs', () => {
      assert.notEqual(runSeed({ seed: 1 }).digest, runSeed({ seed: 2 }).digest);
    });

    test('a failing seed replays to the same violation', () => {
      const opts = { bugs: { grantAllVotes: true } } as const;
      const found = firstViolation(opts, 20);
      assert.ok(found !== undefined);
      const a = runSeed({ ...opts, seed: found.seed });
      const b = runSeed({ ...opts, seed: found.seed });
      assert.equal(a.ok, false);
      assert.deepEqual(a.violation, b.violation);
      assert.equal(a.digest, b.digest);
    });
  });

  describe('bug injection: the checker catches broken hosts', () => {
    test('a host that forgets its vote on restart → two leaders in one term', () => {
      // Crashing right after a vote is durable is where a forgotten vote becomes a double vote.
      const r = firstViolation({ bugs: { forgetVote: true }, scenario: { crashAfterVoteRate: 1 } }, 300, SAFETY);
      assert.ok(r !== undefined, 'no safety violation within 300 seeds');
      // The same seed and schedule with a correct host hold every invariant.
      const control = runSeed({ seed: r.seed, scenario: { crashAfterVoteRate: 1 } });
      assert.ok(control.ok, formatFailure(control, ' --set crashAfterVoteRate=1'));
    });

    test('a host that sends before its writes are durable → lost committed writes after a crash', () => {
      // (Some seeds of this bug end in a message storm, `eventBudget`; the search wants a safety violation.)
      const r = firstViolation({ bugs: { sendBeforeDurable: true }, scenario: { crashMidWriteRate: 0.02 } }, 100, SAFETY);
      assert.ok(r !== undefined, 'no safety violation within 100 seeds');
      const control = runSeed({ seed: r.seed, scenario: { crashMidWriteRate: 0.02 } });
      assert.ok(control.ok, formatFailure(control, ' --set crashMidWriteRate=0.02'));
    });

    test('a host that sends append responses early, with the leader\'s appends → lost committed writes after a crash', () => {
      // The early set is a leader's appends and heartbeats only: a follower's ack must wait for its disk.
      const r = firstViolation({ bugs: { earlyAppendResponses: true }, scenario: { crashMidWriteRate: 0.02 } }, 100, SAFETY);
      assert.ok(r !== undefined, 'no safety violation within 100 seeds');
      const control = runSeed({ seed: r.seed, scenario: { crashMidWriteRate: 0.02 } });
      assert.ok(control.ok, formatFailure(control, ' --set crashMidWriteRate=0.02'));
    });

    test('a leader counting its own entries before they are durable stays safe while Readys are handled one at a time', () => {
      // Not a catchable bug with this host (docs/simulation.md): a follower can ack an entry only
      // after the Ready carrying it was handed out, so any commit counting that ack leaves in a
      // later Ready, which the host hands out only after this one is durable. The core still
      // counts itself only once durable, so that its safety does not rest on that host property.
      sweep(1, 30, { bugs: { countSelfEarly: true }, scenario: { crashMidWriteRate: 0.02 } });
    });

    test('a core wrapped to read every vote rejection as a grant → leader without a quorum', () => {
      const r = firstViolation({ bugs: { grantAllVotes: true } }, 20);
      assert.ok(r !== undefined, 'no violation within 20 seeds');
      assert.ok(['electionQuorum', 'electionSafety'].includes(r.violation?.invariant ?? ''), formatFailure(r, ' --bug grantAllVotes'));
    });

    test('a core wrapped to return read indexes 5 too low to followers → stale read', () => {
      const r = firstViolation({ bugs: { staleReadIndex: true } }, 50);
      assert.ok(r !== undefined, 'no violation within 50 seeds');
      assert.equal(r.violation?.invariant, 'readIndex', formatFailure(r, ' --bug staleReadIndex'));
    });

    test('a host that answers reads before applying up to the read index → stale read', () => {
      const r = firstViolation({ bugs: { serveReadsEarly: true } }, 50);
      assert.ok(r !== undefined, 'no violation within 50 seeds');
      assert.equal(r.violation?.invariant, 'readIndex', formatFailure(r, ' --bug serveReadsEarly'));
    });
  });
}
