/**
 * The real etcdctl 3.4 against keyspan's Lease service: grant, put with a
 * lease, timetolive --keys, list, keep-alive --once, revoke, and a short
 * lease that expires on its own. Where the real etcd server is installed,
 * the same lease script runs against a real etcd 3.4 (started here on
 * loopback ports) and the outputs must be identical modulo the lease ids
 * and the order of a lease's attached keys (Go map order in etcd).
 * Skipped where etcdctl is not installed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Embedded } from '../../src/gateway/embedded.js';
import { startTestServer } from './server-harness.js';
import { etcdctl as run, skipDiff, skipEtcdctl as skip, startReferenceEtcd, type EtcdctlRun } from './etcd-diff.js';

/** Runs etcdctl with its arguments spread (async: the server shares this event loop). */
function etcdctl(endpoint: string, ...args: string[]): Promise<EtcdctlRun> {
  return run(endpoint, args);
}

/**
 * The lease script of the differential check: each step's stdout and
 * `Error:` lines, with the granted lease id replaced by LEASE, the
 * remaining seconds of `timetolive` (timing) by N and the member identity
 * and raft term by N. Revisions stay: both stores start at 1 and count alike.
 */
async function leaseScript(ep: string): Promise<string[]> {
  const out: string[] = [];
  const g = await etcdctl(ep, 'lease', 'grant', '60');
  const id = /^lease ([0-9a-f]{16})/.exec(g.stdout)?.[1] ?? 'none';
  const steps: string[][] = [
    ['put', `--lease=${id}`, 'lk1', 'v1'],
    ['put', `--lease=${id}`, 'lk2', 'v2'],
    ['put', '--lease=1234', 'lk3', 'v3'],
    ['lease', 'timetolive', '--keys', id],
    ['lease', 'timetolive', '1234'],
    ['lease', 'list'],
    ['lease', 'keep-alive', '--once', id],
    ['lease', 'keep-alive', '--once', '1234'],
    ['get', 'lk', '--prefix', '-w', 'fields'],
    ['lease', 'revoke', id],
    ['get', 'lk', '--prefix'],
    ['lease', 'timetolive', '--keys', id],
    ['lease', 'revoke', id],
    ['lease', 'list'],
  ];
  const norm = (t: string): string =>
    t
      .replaceAll(id, 'LEASE')
      .replaceAll(BigInt(`0x${id === 'none' ? '0' : id}`).toString(), 'LEASE')
      .replace(/remaining\(\d+s\)/g, 'remaining(Ns)')
      // etcd lists a lease's keys in Go map order (random); keyspan in key order.
      .replace(/attached keys\(\[([^\]]*)\]\)/g, (_m, keys: string) => `attached keys([${keys.split(' ').sort().join(' ')}])`)
      .replace(/"(RaftTerm|ClusterID|MemberID)" : \d+/g, '"$1" : N');
  out.push(norm(g.stdout));
  for (const args of steps) {
    const r = await etcdctl(ep, ...args);
    out.push(`$ ${norm(args.join(' '))}\n[exit ${r.code}]\n${norm(r.stdout)}${norm(r.errors)}`);
  }
  return out;
}

describe('etcdctl lease commands against keyspan', { skip }, () => {
  let server: Embedded;
  let ep: string;

  before(async () => {
    server = await startTestServer();
    ep = `127.0.0.1:${server.server.port}`;
  });
  after(async () => {
    await server?.close();
  });

  it('grant, put --lease, timetolive --keys, list, keep-alive --once, revoke', async () => {
    const g = await etcdctl(ep, 'lease', 'grant', '60');
    const m = /^lease ([0-9a-f]{16}) granted with TTL\(60s\)\n$/.exec(g.stdout);
    assert.ok(m !== null, g.stdout + g.errors);
    const id = m[1]!;
    assert.equal((await etcdctl(ep, 'put', `--lease=${id}`, 'foo', 'bar')).stdout, 'OK\n');
    assert.equal((await etcdctl(ep, 'put', `--lease=${id}`, 'foo2', 'baz')).stdout, 'OK\n');
    const ttl = await etcdctl(ep, 'lease', 'timetolive', '--keys', id);
    assert.match(ttl.stdout, new RegExp(`^lease ${id} granted with TTL\\(60s\\), remaining\\((59|60)s\\), attached keys\\(\\[foo foo2\\]\\)\\n$`));
    const list = await etcdctl(ep, 'lease', 'list');
    assert.equal(list.stdout, `found 1 leases\n${id}\n`);
    const ka = await etcdctl(ep, 'lease', 'keep-alive', '--once', id);
    assert.equal(ka.stdout, `lease ${id} keepalived with TTL(60)\n`);
    const json = await etcdctl(ep, 'get', 'foo', '-w', 'json');
    assert.ok(json.stdout.includes(`"lease":${BigInt(`0x${id}`).toString()}`), json.stdout);
    assert.equal((await etcdctl(ep, 'lease', 'revoke', id)).stdout, `lease ${id} revoked\n`);
    assert.equal((await etcdctl(ep, 'get', 'foo', '--prefix')).stdout, '');
    assert.equal((await etcdctl(ep, 'lease', 'timetolive', id)).stdout, `lease ${id} already expired\n`);
    const gone = await etcdctl(ep, 'lease', 'keep-alive', '--once', id);
    assert.equal(gone.errors, 'Error: etcdserver: requested lease not found');
    const again = await etcdctl(ep, 'lease', 'revoke', id);
    assert.equal(again.code, 1);
    assert.equal(again.errors, 'Error: failed to revoke lease (etcdserver: requested lease not found)');
    assert.equal((await etcdctl(ep, 'lease', 'list')).stdout, 'found 0 leases\n');
  });

  it('gives the same outputs as a real etcd 3.4 for the same lease script', { skip: skipDiff }, async () => {
    // A fresh store, so revisions compare with the fresh etcd's.
    const fresh = await startTestServer();
    let ours: string[];
    try {
      ours = await leaseScript(`127.0.0.1:${fresh.server.port}`);
    } finally {
      await fresh.close();
    }
    const ref = await startReferenceEtcd();
    try {
      const reference = await leaseScript(ref.endpoint);
      assert.equal(ours.length, reference.length);
      for (let i = 0; i < ours.length; i++) assert.equal(ours[i], reference[i], `step ${i}`);
    } finally {
      await ref.close();
    }
  });

  it('a 2-second lease expires and its key disappears within a bounded wait', async () => {
    const g = await etcdctl(ep, 'lease', 'grant', '2');
    const id = /^lease ([0-9a-f]{16}) granted with TTL\(2s\)/.exec(g.stdout)?.[1];
    assert.ok(id !== undefined, g.stdout + g.errors);
    assert.equal((await etcdctl(ep, 'put', `--lease=${id}`, 'short', 'lived')).stdout, 'OK\n');
    assert.equal((await etcdctl(ep, 'get', 'short', '--print-value-only')).stdout, 'lived\n');
    const deadline = Date.now() + 15_000;
    for (;;) {
      if ((await etcdctl(ep, 'get', 'short')).stdout === '') break;
      assert.ok(Date.now() < deadline, 'the key of a 2 s lease is still there after 15 s');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.equal((await etcdctl(ep, 'lease', 'timetolive', id)).stdout, `lease ${id} already expired\n`);
  });
});
