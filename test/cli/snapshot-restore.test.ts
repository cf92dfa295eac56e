/**
 * Backup and restore end to end: keys with history, deletes and a
 * compaction on a LevelDB node → Maintenance.Snapshot to a file →
 * `keyspan snapshot restore` into a new data directory → the embedded
 * server on it answers every key at its revisions, the same HashKV, the same
 * compaction bound, and new writes continue after the backed-up revision.
 * Also: restore refuses a corrupt file and a non-empty directory;
 * `keyspan snapshot status` summarizes a backup.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { backupStatus, restoreBackup, snapshotCommand } from '../../src/cli/snapshot.js';
import type { Embedded } from '../../src/gateway/embedded.js';
import { etcdServiceDefinition, type EtcdMessage } from '../../src/gateway/proto.js';
import { b, client, failure, revOf, RPC_DEADLINE_MS, startTestServer } from '../gateway/server-harness.js';

/** Saves the server's Snapshot stream to `file` (what `etcdctl snapshot save` does). */
async function saveSnapshot(address: string, file: string): Promise<void> {
  const Ctor = grpc.makeGenericClientConstructor(etcdServiceDefinition('etcdserverpb.Maintenance'), 'Maintenance');
  const c = new Ctor(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    Snapshot: (req: EtcdMessage, md: grpc.Metadata, opts: grpc.CallOptions) => grpc.ClientReadableStream<EtcdMessage>;
  };
  const blobs: Buffer[] = [];
  try {
    for await (const m of c.Snapshot({}, new grpc.Metadata(), { deadline: Date.now() + RPC_DEADLINE_MS })) blobs.push((m as EtcdMessage)['blob'] as Buffer);
  } finally {
    c.close();
  }
  await writeFile(file, Buffer.concat(blobs));
}

/** Everything a client can see of the store: all keys with their metadata, and the header revision. */
async function dump(address: string): Promise<{ revision: number; kvs: unknown[]; atRev: unknown[]; hash: unknown }> {
  const kv = client('etcdserverpb.KV', address);
  const mt = client('etcdserverpb.Maintenance', address);
  try {
    const all = await kv.call('Range', { key: b('\0'), range_end: b('\0') });
    const atRev = await kv.call('Range', { key: b('\0'), range_end: b('\0'), revision: 5 });
    const hash = await mt.call('HashKV', { revision: 0 });
    return { revision: revOf(all), kvs: all['kvs'] as unknown[], atRev: atRev['kvs'] as unknown[], hash: [hash['hash'], hash['compact_revision']] };
  } finally {
    kv.close();
    mt.close();
  }
}

describe('keyspan snapshot restore', () => {
  let dir: string;
  let source: Embedded;
  let backupFile: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyspan-restore-'));
    source = await startTestServer({ dataDir: join(dir, 'source') });
    const address = source.server.addresses[0] ?? '';
    const kv = client('etcdserverpb.KV', address);
    try {
      await kv.call('Put', { key: b('a'), value: b('1') }); // 2
      await kv.call('Put', { key: b('b'), value: b('1') }); // 3
      await kv.call('Put', { key: b('a'), value: b('2') }); // 4
      await kv.call('DeleteRange', { key: b('b') }); // 5
      await kv.call('Put', { key: b('c'), value: b('x') }); // 6
      await kv.call('Compact', { revision: 3, physical: true });
      // Enough bytes for many 32 KiB chunks.
      for (let i = 0; i < 60; i++) await kv.call('Put', { key: b(`bulk/${i}`), value: Buffer.alloc(3000, i) });
    } finally {
      kv.close();
    }
    backupFile = join(dir, 'backup.db');
    await saveSnapshot(address, backupFile);
  });
  after(async () => {
    await source.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('restores a data dir that serves every key at its revisions, then continues after the backed-up revision', async () => {
    const expected = await dump(source.server.addresses[0] ?? '');
    assert.equal(expected.revision, 66);
    const target = join(dir, 'restored');
    const result = await restoreBackup({ file: backupFile, dataDir: target, engineKind: 'leveldb' });
    assert.equal(result.header.revision, 66);
    assert.equal(result.ranges.length, 1);
    const restored = await startTestServer({ dataDir: target });
    try {
      const address = restored.server.addresses[0] ?? '';
      assert.deepEqual(await dump(address), expected);
      const kv = client('etcdserverpb.KV', address);
      try {
        assert.deepEqual(await failure(kv.call('Range', { key: b('a'), revision: 2 })), {
          code: grpc.status.OUT_OF_RANGE,
          details: 'etcdserver: mvcc: required revision has been compacted',
        });
        assert.equal(revOf(await kv.call('Put', { key: b('new'), value: b('1') })), 67);
        const a = await kv.call('Range', { key: b('a') });
        const kvA = (a['kvs'] as Array<Record<string, unknown>>)[0];
        assert.equal(kvA?.['create_revision'], 2);
        assert.equal(kvA?.['mod_revision'], 4);
        assert.equal(kvA?.['version'], 2);
      } finally {
        kv.close();
      }
    } finally {
      await restored.close();
    }
  });

  it('refuses a corrupt backup and a non-empty target, leaving the target untouched', async () => {
    const data = await readFile(backupFile);
    const corrupt = Buffer.from(data);
    corrupt[100] = (corrupt[100] as number) ^ 0xff;
    const corruptFile = join(dir, 'corrupt.db');
    await writeFile(corruptFile, corrupt);
    const target = join(dir, 'never');
    await assert.rejects(restoreBackup({ file: corruptFile, dataDir: target, engineKind: 'leveldb' }), /sha256 mismatch/);
    await assert.rejects(readdir(target), /ENOENT/);
    const truncatedFile = join(dir, 'truncated.db');
    await writeFile(truncatedFile, data.subarray(0, data.length - 1000));
    await assert.rejects(restoreBackup({ file: truncatedFile, dataDir: target, engineKind: 'leveldb' }), /sha256 mismatch/);

    const busy = join(dir, 'busy');
    await mkdir(busy);
    await writeFile(join(busy, 'keep'), 'x');
    await assert.rejects(restoreBackup({ file: backupFile, dataDir: busy, engineKind: 'leveldb' }), /exists and is not empty/);
    assert.deepEqual(await readdir(busy), ['keep']);
    assert.equal(await snapshotCommand(['restore', backupFile, '--data-dir', busy]), 1);
    assert.equal(await snapshotCommand(['restore', backupFile, '--data-dir', join(dir, 'x'), '--initial-cluster', 'a=http://127.0.0.1:1,b=http://127.0.0.1:2']), 1);
    assert.equal(await snapshotCommand(['restore', backupFile, '--data-dir', join(dir, 'x'), '--name', 'n1', '--initial-cluster', 'other=http://127.0.0.1:2380']), 1);
    await assert.rejects(readdir(join(dir, 'x')), /ENOENT/);
    // An empty existing directory is fine, and the CLI path with matching membership flags works.
    const empty = join(dir, 'empty');
    await mkdir(empty);
    assert.equal(
      await snapshotCommand([
        'restore',
        backupFile,
        '--data-dir',
        empty,
        '--name',
        'n1',
        '--initial-cluster',
        'n1=http://127.0.0.1:2380',
        '--initial-advertise-peer-urls',
        'http://127.0.0.1:2380',
      ]),
      0,
    );
    assert.deepEqual((await readdir(empty)).sort(), ['engine', 'node.json', 'raft-log']);
    assert.equal((await readdir(dir)).filter((n) => n.includes('.restore-')).length, 0, 'no temporary directory is left');
  });

  it('status summarizes a backup: revision, records, size, and a hash', async () => {
    const s = await backupStatus(backupFile);
    const size = (await readFile(backupFile)).length;
    assert.equal(s.revision, 66);
    assert.equal(s.totalBytes, size);
    assert.ok(s.records > 60);
    assert.equal(s.ranges.length, 1);
    assert.equal((await backupStatus(backupFile)).hash, s.hash);
  });
});
