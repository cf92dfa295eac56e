/**
 * The real etcdctl 3.4 against keyspan's Lease service: grant, put with a
 * lease, timetolive --keys, list, keep-alive --once, revoke, and a short
 * lease that expires on its own. Outputs are etcd 3.4.23's (checked by hand
 * against a real etcd: the formats are etcdctl's, the values the server's).
 * Skipped where etcdctl is not installed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import type { Embedded } from '../../src/gateway/embedded.js';
import { startTestServer } from './server-harness.js';

const ETCDCTL = process.env['ETCDCTL'] ?? 'etcdctl';
const probe = spawnSync(ETCDCTL, ['version'], { encoding: 'utf8' });
const skip = probe.error !== undefined || probe.status !== 0 ? `etcdctl not installed (set ETCDCTL): ${String(probe.error ?? probe.stderr)}` : false;
/** Bound on one etcdctl run. */
const ETCDCTL_TIMEOUT_MS = 20_000;

interface Run {
  readonly code: number;
  readonly stdout: string;
  /** etcdctl's `Error: ...` lines only (its retry warnings carry timestamps). */
  readonly errors: string;
}

/** Runs etcdctl asynchronously (the server shares this process's event loop). */
function etcdctl(endpoint: string, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      ETCDCTL,
      ['--endpoints', endpoint, '--command-timeout=10s', ...args],
      { env: { ...process.env, ETCDCTL_API: '3' }, timeout: ETCDCTL_TIMEOUT_MS, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        const errors = stderr.split('\n').filter((l) => l.startsWith('Error:')).join('\n');
        resolve({ code, stdout, errors });
      },
    );
  });
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
