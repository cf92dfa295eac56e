/**
 * Maintenance over raw gRPC: Snapshot (a consistent, chunked keyspan backup
 * with etcd's remaining_bytes and trailing sha256, not blocking writes),
 * Hash, Alarm, the space quota and its NOSPACE alarm, Status extras, and
 * MoveLeader on three in-process nodes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { etcdServiceDefinition, type EtcdMessage } from '../../src/gateway/proto.js';
import { readBackup, BACKUP_SHA256_BYTES, type BackupItem } from '../../src/gateway/backup-format.js';
import { SNAPSHOT_CHUNK_BYTES } from '../../src/gateway/maintenance-service.js';
import { b, client, failure, revOf, RPC_DEADLINE_MS, type EtcdTestClient } from './server-harness.js';
import { startNodeServer, type NodeServer } from './maintenance-harness.js';
import { freePorts, waitFor } from '../node/helpers.js';

const S = grpc.status;
const NO_SPACE = 'etcdserver: mvcc: database space exceeded';

/** Opens a Snapshot stream; `onFirst` runs once the first message arrived (the backup's view is fixed by then). */
async function snapshotStream(address: string, onFirst?: () => Promise<void>): Promise<EtcdMessage[]> {
  const Ctor = grpc.makeGenericClientConstructor(etcdServiceDefinition('etcdserverpb.Maintenance'), 'Maintenance');
  const c = new Ctor(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    Snapshot: (req: EtcdMessage, md: grpc.Metadata, opts: grpc.CallOptions) => grpc.ClientReadableStream<EtcdMessage>;
  };
  try {
    const stream = c.Snapshot({}, new grpc.Metadata(), { deadline: Date.now() + RPC_DEADLINE_MS * 3 });
    const out: EtcdMessage[] = [];
    for await (const m of stream) {
      out.push(m as EtcdMessage);
      if (out.length === 1 && onFirst !== undefined) {
        stream.pause();
        await onFirst();
        stream.resume();
      }
    }
    return out;
  } finally {
    c.close();
  }
}

/** Parses a backup's content. */
async function parse(content: Buffer): Promise<BackupItem[]> {
  const items: BackupItem[] = [];
  async function* one(): AsyncGenerator<Buffer> {
    // Odd piece sizes exercise the reader's joins.
    for (let o = 0; o < content.length; o += 7777) yield content.subarray(o, o + 7777);
  }
  for await (const item of readBackup(one())) items.push(item);
  return items;
}

describe('Maintenance: Snapshot, Hash, Alarm, Status', () => {
  let srv: NodeServer;
  let kv: EtcdTestClient;
  let mt: EtcdTestClient;

  before(async () => {
    srv = await startNodeServer();
    kv = client('etcdserverpb.KV', srv.address);
    mt = client('etcdserverpb.Maintenance', srv.address);
  });
  after(async () => {
    kv.close();
    mt.close();
    await srv.close();
  });

  it('Snapshot streams a consistent backup in 32 KiB chunks, remaining_bytes and a trailing sha256 as etcd; writes go on meanwhile', async () => {
    const value = Buffer.alloc(2000, 0x61);
    for (let i = 0; i < 150; i++) await kv.call('Put', { key: b(`snap/${String(i).padStart(3, '0')}`), value });
    const before = revOf(await kv.call('Range', { key: b('snap/000') }));
    let during = 0;
    const messages = await snapshotStream(srv.address, async () => {
      // The stream is open and its view fixed: writes are not blocked by it.
      for (let i = 0; i < 5; i++) during = revOf(await kv.call('Put', { key: b(`late/${i}`), value: b('x') }));
    });
    assert.equal(during, before + 5);
    const last = messages[messages.length - 1] as EtcdMessage;
    const data = messages.slice(0, -1);
    assert.ok(data.length > 5, `${data.length} data messages`);
    const content = Buffer.concat(data.map((m) => m['blob'] as Buffer));
    assert.equal(content.length % 512, 0, 'whole 512-byte pages, as etcdctl expects of a bolt file');
    let sent = 0;
    for (const [i, m] of data.entries()) {
      const blob = m['blob'] as Buffer;
      if (i < data.length - 1) assert.equal(blob.length, SNAPSHOT_CHUNK_BYTES);
      sent += blob.length;
      assert.equal(m['remaining_bytes'], content.length - sent);
      assert.equal(m['version'], '3.4.0');
    }
    assert.equal(last['remaining_bytes'], 0);
    assert.equal((last['blob'] as Buffer).length, BACKUP_SHA256_BYTES);
    assert.deepEqual(last['blob'], createHash('sha256').update(content).digest());

    const items = await parse(content);
    const header = items[0];
    assert.ok(header?.type === 'header');
    assert.equal(header.header.revision, before, 'the backup is the state when the stream opened');
    const ranges = items.filter((x) => x.type === 'range');
    assert.equal(ranges.length, 1);
    const records = items.filter((x): x is Extract<BackupItem, { type: 'record' }> => x.type === 'record');
    const text = records.map((r) => r.key.toString('latin1')).join('\n');
    assert.ok(text.includes('snap/149'), 'the last key written before is in');
    assert.ok(!text.includes('late/'), 'keys written during the stream are not');
    assert.equal(items[items.length - 1]?.type, 'end');
  });

  it('the JSON gateway streams the same backup at /v3/maintenance/snapshot', async () => {
    const res = await fetch(`http://${srv.address}/v3/maintenance/snapshot`, { method: 'POST', body: '{}' });
    assert.equal(res.status, 200);
    const lines = (await res.text()).split('\n').filter((l) => l !== '');
    const blobs = lines.map((l) => Buffer.from((JSON.parse(l) as { result: { blob: string } }).result.blob, 'base64'));
    const content = Buffer.concat(blobs.slice(0, -1));
    assert.deepEqual(blobs[blobs.length - 1], createHash('sha256').update(content).digest());
    const items = await parse(content);
    assert.equal(items[items.length - 1]?.type, 'end');
  });

  it('Hash covers the node\'s data: stable, changed by a write, answered with the revision', async () => {
    const h1 = await mt.call('Hash', {});
    const h2 = await mt.call('Hash', {});
    assert.equal(h1['hash'], h2['hash']);
    assert.equal(typeof h1['hash'], 'number');
    const rev = revOf(await kv.call('Put', { key: b('hash/a'), value: b('1') }));
    const h3 = await mt.call('Hash', {});
    assert.notEqual(h3['hash'], h1['hash']);
    assert.equal(revOf(h3), rev);
  });

  it('Alarm ACTIVATE/GET/DEACTIVATE as etcd; Status lists active alarms in errors; CORRUPT stops KV', async () => {
    const NOSPACE = 1;
    const CORRUPT = 2;
    const act = await mt.call('Alarm', { action: 1, memberID: 7n, alarm: NOSPACE });
    assert.deepEqual(act['alarms'], [{ memberID: 7n, alarm: NOSPACE }]);
    assert.deepEqual((await mt.call('Alarm', { action: 0, memberID: 0n, alarm: 0 }))['alarms'], [{ memberID: 7n, alarm: NOSPACE }]);
    assert.deepEqual((await mt.call('Status', {}))['errors'], ['memberID:7 alarm:NOSPACE ']);
    assert.deepEqual(await failure(kv.call('Put', { key: b('a'), value: b('1') })), { code: S.RESOURCE_EXHAUSTED, details: NO_SPACE });
    // Deactivating what is not active answers nothing.
    assert.deepEqual((await mt.call('Alarm', { action: 2, memberID: 8n, alarm: NOSPACE }))['alarms'], []);
    assert.deepEqual((await mt.call('Alarm', { action: 2, memberID: 7n, alarm: NOSPACE }))['alarms'], [{ memberID: 7n, alarm: NOSPACE }]);
    await kv.call('Put', { key: b('a'), value: b('1') });

    await mt.call('Alarm', { action: 1, memberID: 1n, alarm: CORRUPT });
    const corrupt = { code: S.DATA_LOSS, details: 'etcdserver: corrupt cluster' };
    assert.deepEqual(await failure(kv.call('Range', { key: b('a') })), corrupt);
    assert.deepEqual(await failure(kv.call('DeleteRange', { key: b('a') })), corrupt);
    assert.deepEqual((await mt.call('Status', {}))['errors'], ['memberID:1 alarm:CORRUPT ']);
    await mt.call('Alarm', { action: 2, memberID: 1n, alarm: CORRUPT });
    assert.equal(((await kv.call('Range', { key: b('a') }))['kvs'] as unknown[]).length, 1);
    assert.deepEqual((await mt.call('Status', {}))['errors'], []);
  });

  it('Status reports dbSizeInUse within dbSize, raftAppliedIndex and isLearner', async () => {
    const st = await mt.call('Status', {});
    assert.ok((st['dbSizeInUse'] as number) > 0);
    assert.ok((st['dbSizeInUse'] as number) <= (st['dbSize'] as number));
    assert.ok((st['raftAppliedIndex'] as number) > 0);
    assert.equal(st['isLearner'], false);
  });

  it('MoveLeader on a single node: unknown target is a bad leader transferee; itself is a no-op', async () => {
    assert.deepEqual(await failure(mt.call('MoveLeader', { targetID: 99n })), {
      code: S.FAILED_PRECONDITION,
      details: 'etcdserver: bad leader transferee',
    });
    await mt.call('MoveLeader', { targetID: 1n });
  });
});

describe('Maintenance: the space quota and the NOSPACE alarm', () => {
  let srv: NodeServer;
  let kv: EtcdTestClient;
  let mt: EtcdTestClient;
  const QUOTA = 64 * 1024;

  before(async () => {
    srv = await startNodeServer({ quotaBackendBytes: QUOTA });
    kv = client('etcdserverpb.KV', srv.address);
    mt = client('etcdserverpb.Maintenance', srv.address);
  });
  after(async () => {
    kv.close();
    mt.close();
    await srv.close();
  });

  it('a write past the quota fails with NOSPACE and raises the alarm; reads, deletes, read-only txns and compaction go on; compact+defrag+disarm recovers', async () => {
    const value = Buffer.alloc(1024, 0x62);
    let written = 0;
    let err: { code: number; details: string } | undefined;
    for (let i = 0; i < 200 && err === undefined; i++) {
      try {
        await kv.call('Put', { key: b('q/key'), value });
        written++;
      } catch (e) {
        err = { code: (e as grpc.ServiceError).code, details: (e as grpc.ServiceError).details };
      }
    }
    assert.deepEqual(err, { code: S.RESOURCE_EXHAUSTED, details: NO_SPACE }, `after ${written} puts`);
    assert.ok(written > 5, `${written} puts fit`);
    assert.deepEqual((await mt.call('Alarm', { action: 0, memberID: 0n, alarm: 0 }))['alarms'], [{ memberID: 1n, alarm: 1 }]);
    assert.deepEqual((await mt.call('Status', {}))['errors'], ['memberID:1 alarm:NOSPACE ']);

    // Refused while the alarm is active: puts, txns with a put (also nested), lease grants are not served here yet.
    assert.deepEqual(await failure(kv.call('Put', { key: b('small'), value: b('1') })), { code: S.RESOURCE_EXHAUSTED, details: NO_SPACE });
    const nestedPut = { compare: [], success: [{ request_txn: { compare: [], success: [{ request_put: { key: b('n'), value: b('1') } }], failure: [] } }], failure: [] };
    assert.deepEqual(await failure(kv.call('Txn', nestedPut)), { code: S.RESOURCE_EXHAUSTED, details: NO_SPACE });
    // Allowed: reads, read-only txns, deletes, compaction.
    const got = await kv.call('Range', { key: b('q/key') });
    assert.equal((got['kvs'] as unknown[]).length, 1);
    await kv.call('Txn', { compare: [], success: [{ request_range: { key: b('q/key') } }], failure: [] });
    await kv.call('Put', { key: b('q/key'), value }).catch(() => undefined);
    const rev = revOf(await kv.call('DeleteRange', { key: b('nothing') }));
    await kv.call('Compact', { revision: rev, physical: true });
    await mt.call('Defragment', {});
    // Still refused until the alarm is disarmed, even with room again (etcd's capped applier).
    assert.deepEqual(await failure(kv.call('Put', { key: b('small'), value: b('1') })), { code: S.RESOURCE_EXHAUSTED, details: NO_SPACE });
    await mt.call('Alarm', { action: 2, memberID: 1n, alarm: 1 });
    const after = revOf(await kv.call('Put', { key: b('small'), value: b('1') }));
    assert.equal(after, rev + 1);
    assert.deepEqual((await mt.call('Status', {}))['errors'], []);
  });
});

describe('Maintenance: MoveLeader on three nodes', () => {
  const servers: NodeServer[] = [];

  before(async () => {
    const ports = await freePorts(3);
    const peers = new Map([1, 2, 3].map((id) => [id, `127.0.0.1:${ports[id - 1]}`] as const));
    for (const id of [1, 2, 3]) {
      servers.push(await startNodeServer({ nodeId: id, replicas: [1, 2, 3], peers, peerListen: peers.get(id) as string }));
    }
  });
  after(async () => {
    for (const s of servers) await s.close();
  });

  const leaderId = (): number => {
    const ids = servers.map((s) => s.node.status(1).leader);
    return ids.every((x) => x === ids[0]) ? (ids[0] ?? 0) : 0;
  };

  it('moves leadership to the target; a follower answers "not leader"; unknown targets are refused', async () => {
    await waitFor(() => leaderId() !== 0, 'a leader known to all three nodes', 15_000);
    const from = leaderId();
    const to = from === 3 ? 1 : from + 1;
    const follower = [1, 2, 3].find((x) => x !== from && x !== to) as number;
    const onLeader = client('etcdserverpb.Maintenance', servers[from - 1]?.address ?? '');
    const onFollower = client('etcdserverpb.Maintenance', servers[follower - 1]?.address ?? '');
    try {
      assert.deepEqual(await failure(onFollower.call('MoveLeader', { targetID: BigInt(to) })), {
        code: S.FAILED_PRECONDITION,
        details: 'etcdserver: not leader',
      });
      assert.deepEqual(await failure(onLeader.call('MoveLeader', { targetID: 42n })), {
        code: S.FAILED_PRECONDITION,
        details: 'etcdserver: bad leader transferee',
      });
      await onLeader.call('MoveLeader', { targetID: BigInt(to) });
      await waitFor(() => leaderId() === to, `node ${to} leads`, 15_000);
      const st = await onFollower.call('Status', {});
      assert.equal(st['leader'], BigInt(to));
    } finally {
      onLeader.close();
      onFollower.close();
    }
  });
});
