/**
 * Watch with the real clients: etcdctl 3.4 `watch` (plain, --prefix, --rev,
 * --prev-kv) against keyspan's server, asserting on what it prints; and,
 * where a real etcd 3.4 is installed, the same etcdctl script and a raw
 * gRPC watch scenario (watch-script.ts) run against both, whose outputs
 * must agree.
 *
 * Skipped, with a message, where etcdctl (or etcd, for the comparisons) is
 * not installed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Embedded } from '../../src/gateway/embedded.js';
import { startTestServer } from './server-harness.js';
import { runWatchScript } from './watch-script.js';
import { etcdctl, skipDiff, skipEtcdctl as skip, spawnEtcdctl, startReferenceEtcd, until } from './etcd-diff.js';

/** The watches of the script and what each prints on keyspan's server. */
const WATCHES: ReadonlyArray<{ args: string[]; expect: string }> = [
  { args: ['watch', 'foo'], expect: 'PUT\nfoo\n1\nDELETE\nfoo\n\n' },
  { args: ['watch', '--prefix', 'p/'], expect: 'PUT\np/a\nx\nPUT\np/b\ny\n' },
  { args: ['watch', '--rev=2', 'foo'], expect: 'PUT\nfoo\n0\nPUT\nfoo\n1\nDELETE\nfoo\n\n' },
  { args: ['watch', '--prev-kv', 'foo'], expect: 'PUT\nfoo\n0\nfoo\n1\nDELETE\nfoo\n1\nfoo\n\n' },
];

/** Runs one write of the script; it must succeed. */
async function write(endpoint: string, args: readonly string[]): Promise<void> {
  const r = await etcdctl(endpoint, args);
  assert.equal(r.code, 0, `etcdctl ${args.join(' ')}: ${r.errors}`);
}

/** Watchers a server reports on /metrics (etcd and keyspan export the same gauge). */
async function watcherCount(endpoint: string): Promise<number> {
  const text = await (await fetch(`http://${endpoint}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  const line = text.split('\n').find((l) => /^etcd_debugging_mvcc_watcher_total[ {]/.test(l));
  return line === undefined ? NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** The etcdctl script: starts the watches, writes, returns each watch's output once complete. */
async function runEtcdctlScript(endpoint: string, expectLengths: readonly number[]): Promise<string[]> {
  await write(endpoint, ['put', 'foo', '0']); // revision 2
  const procs = WATCHES.map((w) => spawnEtcdctl(endpoint, w.args));
  try {
    await until(async () => (await watcherCount(endpoint)) >= WATCHES.length, 'etcdctl watches to be registered');
    await write(endpoint, ['put', 'foo', '1']);
    await write(endpoint, ['put', 'p/a', 'x']);
    await write(endpoint, ['del', 'foo']);
    await write(endpoint, ['put', 'p/b', 'y']);
    await until(async () => procs.every((p, i) => p.stdout().length >= (expectLengths[i] ?? 0)), 'watch output');
    return procs.map((p) => p.stdout());
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
  }
}

/**
 * etcd orders one revision's events by the order of the txn's operations,
 * keyspan by key (docs/compatibility.md): events inside a response are
 * compared as sorted sets; responses and revisions exactly.
 */
function sortEventsInLines(steps: string[][]): string[][] {
  return steps.map((lines) =>
    lines.map((l) => {
      const i = l.search(/ (PUT|DELETE) /);
      if (i < 0) return l;
      const events = l.slice(i + 1).split(/ (?=PUT |DELETE )/);
      return `${l.slice(0, i)} ${events.sort().join(' ')}`;
    }),
  );
}

describe('etcdctl watch against keyspan', { skip }, () => {
  let srv: Embedded;
  let ep: string;
  let outputs: string[];

  before(async () => {
    srv = await startTestServer();
    ep = srv.server.addresses[0] ?? '';
  });
  after(async () => {
    await srv.close();
  });

  it('prints the events of watch, --prefix, --rev and --prev-kv', async () => {
    outputs = await runEtcdctlScript(
      ep,
      WATCHES.map((w) => w.expect.length),
    );
    WATCHES.forEach((w, i) => assert.equal(outputs[i], w.expect, `etcdctl ${w.args.join(' ')}`));
  });

  it('prints the same as against a real etcd 3.4, and the raw gRPC scenario answers the same', { skip: skipDiff }, async () => {
    const etcd = await startReferenceEtcd();
    try {
      const reference = await runEtcdctlScript(
        etcd.endpoint,
        WATCHES.map((w) => w.expect.length),
      );
      WATCHES.forEach((w, i) => assert.equal(outputs[i], reference[i], `etcdctl ${w.args.join(' ')}`));
      const refScript = await runWatchScript(etcd.endpoint);
      const fresh = await startTestServer();
      let ours: string[][];
      try {
        ours = await runWatchScript(fresh.server.addresses[0] ?? '');
      } finally {
        await fresh.close();
      }
      assert.deepEqual(sortEventsInLines(ours), sortEventsInLines(refScript));
    } finally {
      await etcd.close();
    }
  });
});
