/**
 * The real etcdctl 3.4 against keyspan's Maintenance service: `snapshot
 * save` (then `keyspan snapshot restore` of that file and a server on the
 * restored directory), `endpoint hashkv`, `endpoint status -w json`,
 * `defrag`, `alarm list`/`alarm disarm` with a tiny space quota (NOSPACE,
 * etcd's exact error text, recovery by compact + defrag + disarm), and
 * `move-leader` across three in-process nodes.
 *
 * Skipped, with a message, where etcdctl is not installed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backupStatus, restoreBackup } from '../../src/cli/snapshot.js';
import { b, client, revOf } from './server-harness.js';
import { startNodeServer, type NodeServer } from './maintenance-harness.js';
import { freePorts, waitFor } from '../node/helpers.js';
import { etcdctl, skipEtcdctl as skip } from './etcd-diff.js';

describe('etcdctl maintenance commands', { skip }, () => {
  let dir: string;
  let srv: NodeServer;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyspan-etcdctl-mt-'));
    srv = await startNodeServer({ engineKind: 'leveldb', dataDir: join(dir, 'node'), quotaBackendBytes: 256 * 1024 });
  });
  after(async () => {
    await srv.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('snapshot save writes a backup that restores into a data dir serving the same keys', async () => {
    for (let i = 0; i < 20; i++) assert.equal((await etcdctl(srv.address, ['put', `k${i}`, `v${i}`])).code, 0);
    const file = join(dir, 'snap.db');
    const saved = await etcdctl(srv.address, ['snapshot', 'save', file]);
    assert.equal(saved.code, 0, saved.errors);
    assert.equal(saved.stdout.trim(), `Snapshot saved at ${file}`);
    const status = await backupStatus(file);
    assert.equal(status.revision, 21);
    const target = join(dir, 'restored');
    await restoreBackup({ file, dataDir: target, engineKind: 'leveldb' });
    const restored = await startNodeServer({ engineKind: 'leveldb', dataDir: target });
    try {
      const got = await etcdctl(restored.address, ['get', 'k', '--prefix', '-w', 'json']);
      const res = JSON.parse(got.stdout) as { header: { revision: number }; kvs: Array<{ key: string; mod_revision: number }>; count: number };
      assert.equal(res.header.revision, 21);
      assert.equal(res.count, 20);
      assert.equal(res.kvs.find((kv) => Buffer.from(kv.key, 'base64').toString() === 'k7')?.mod_revision, 9);
      const put = await etcdctl(restored.address, ['put', 'after', 'x', '-w', 'json']);
      assert.equal((JSON.parse(put.stdout) as { header: { revision: number } }).header.revision, 22);
    } finally {
      await restored.close();
    }
  });

  it('endpoint hashkv, defrag and endpoint status -w json answer as etcd', async () => {
    const hk = await etcdctl(srv.address, ['endpoint', 'hashkv']);
    assert.equal(hk.code, 0, hk.errors);
    assert.match(hk.stdout, new RegExp(`^${srv.address}, \\d+\\n$`));
    // Defragment compacts LevelDB, which writes its memtable to table files:
    // only those count in the engine's estimate behind dbSizeInUse.
    const defrag = await etcdctl(srv.address, ['defrag']);
    assert.equal(defrag.code, 0, defrag.errors);
    assert.equal(defrag.stdout.trim(), `Finished defragmenting etcd member[${srv.address}]`);
    const st = await etcdctl(srv.address, ['endpoint', 'status', '-w', 'json']);
    const [entry] = JSON.parse(st.stdout) as Array<{ Endpoint: string; Status: Record<string, unknown> }>;
    assert.equal(entry?.Endpoint, srv.address);
    const s = entry?.Status ?? {};
    assert.equal(s['version'], '3.4.0');
    assert.equal(s['leader'], 1);
    assert.ok((s['raftAppliedIndex'] as number) > 0);
    assert.ok((s['dbSize'] as number) > 0);
    assert.ok((s['dbSizeInUse'] as number) > 0 && (s['dbSizeInUse'] as number) <= (s['dbSize'] as number), JSON.stringify(s));
    assert.equal(s['errors'], undefined, 'no errors while healthy');
  });

  it('a tiny quota raises NOSPACE with etcd\'s error; alarm list shows it; compact, defrag and alarm disarm recover', async () => {
    const kv = client('etcdserverpb.KV', srv.address);
    try {
      const value = Buffer.alloc(4096, 0x71);
      // Fill past the 256 KiB quota (LevelDB's directory: table files plus logs).
      await waitFor(async () => {
        try {
          await kv.call('Put', { key: b('fill'), value });
          return false;
        } catch {
          return true;
        }
      }, 'the quota to refuse a put', 30_000);
      const put = await etcdctl(srv.address, ['put', 'more', 'x']);
      assert.equal(put.code, 1);
      assert.equal(put.errors, 'Error: etcdserver: mvcc: database space exceeded');
      const list = await etcdctl(srv.address, ['alarm', 'list']);
      assert.equal(list.stdout, 'memberID:1 alarm:NOSPACE \n');
      const st = await etcdctl(srv.address, ['endpoint', 'status', '-w', 'json']);
      assert.deepEqual((JSON.parse(st.stdout) as Array<{ Status: { errors: string[] } }>)[0]?.Status.errors, ['memberID:1 alarm:NOSPACE ']);
      assert.match((await etcdctl(srv.address, ['endpoint', 'status'])).stdout, /memberID:1 alarm:NOSPACE \n$/);
      // Reads and deletes still work.
      assert.equal((await etcdctl(srv.address, ['get', 'k1', '--print-value-only'])).stdout, 'v1\n');
      assert.equal((await etcdctl(srv.address, ['del', 'k1'])).stdout, '1\n');
      // Recovery: compact the history away, defragment, disarm.
      const rev = revOf(await kv.call('Range', { key: b('fill') }));
      assert.equal((await etcdctl(srv.address, ['compaction', '--physical', String(rev)])).stdout, `compacted revision ${rev}\n`);
      assert.equal((await etcdctl(srv.address, ['defrag'])).code, 0);
      const disarm = await etcdctl(srv.address, ['alarm', 'disarm']);
      assert.equal(disarm.stdout, 'memberID:1 alarm:NOSPACE \n');
      assert.equal((await etcdctl(srv.address, ['alarm', 'list'])).stdout, '');
      const again = await etcdctl(srv.address, ['put', 'more', 'x']);
      assert.equal(again.code, 0, again.errors);
      assert.equal(again.stdout, 'OK\n');
    } finally {
      kv.close();
    }
  });
});

describe('etcdctl move-leader on three nodes', { skip }, () => {
  const servers: NodeServer[] = [];

  before(async () => {
    const ports = await freePorts(3);
    const peers = new Map([1, 2, 3].map((id) => [id, `127.0.0.1:${ports[id - 1]}`] as const));
    for (const id of [1, 2, 3]) servers.push(await startNodeServer({ nodeId: id, replicas: [1, 2, 3], peers, peerListen: peers.get(id) as string }));
  });
  after(async () => {
    for (const s of servers) await s.close();
  });

  it('transfers leadership to the named member', async () => {
    const leaderId = (): number => {
      const ids = servers.map((s) => s.node.status(1).leader);
      return ids.every((x) => x === ids[0]) ? (ids[0] ?? 0) : 0;
    };
    await waitFor(() => leaderId() !== 0, 'a leader known to all three nodes', 15_000);
    const from = leaderId();
    const to = from === 3 ? 1 : from + 1;
    const endpoints = servers.map((s) => s.address).join(',');
    const moved = await etcdctl(endpoints, ['move-leader', to.toString(16)]);
    assert.equal(moved.code, 0, moved.errors);
    assert.equal(moved.stdout, `Leadership transferred from ${from.toString(16)} to ${to.toString(16)}\n`);
    await waitFor(() => leaderId() === to, `node ${to} leads`, 15_000);
    const bad = await etcdctl(endpoints, ['move-leader', 'ff']);
    assert.equal(bad.errors, 'Error: etcdserver: bad leader transferee');
  });
});
