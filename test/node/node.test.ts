/**
 * Three StoreNodes in one process on loopback (LevelDB engines, gRPC
 * transport): put/get through range 1, leader failover by closing the
 * leader, reopening it from its data directory, and the data directory's
 * identity checks.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DataDirError,
  NodeConfigError,
  StoreNode,
  readNodeMeta,
  validateOptions,
  wholeKeyspaceRange,
  type StoreNodeOptions,
} from '../../src/node/index.js';
import { NotLeaderError, INITIAL_EPOCH, RangeNotFoundError } from '../../src/shard/range/index.js';
import { freePorts, tempDir, waitFor } from './helpers.js';

const RANGE = 1;
const IDS = [1, 2, 3] as const;
const TICK_MS = 10;
const RAFT = { electionTick: 10, heartbeatTick: 1 };
const WAIT_MS = 15_000;
const epoch = INITIAL_EPOCH;
const b = (s: string): Buffer => Buffer.from(s);

describe('StoreNode: three nodes in one process', () => {
  const dirs = new Map<number, { path: string; cleanup: () => Promise<void> }>();
  const nodes = new Map<number, StoreNode>();
  let ports: number[] = [];

  const optionsOf = (id: number): StoreNodeOptions => ({
    nodeId: id,
    dataDir: dirs.get(id)!.path,
    peerListen: `127.0.0.1:${ports[id - 1]!}`,
    peers: new Map(IDS.map((p) => [p, `127.0.0.1:${ports[p - 1]!}`])),
    engineKind: 'leveldb',
    ranges: wholeKeyspaceRange(IDS),
    tickMs: TICK_MS,
    raft: RAFT,
  });

  /** The node all live nodes agree leads range 1, if any. */
  const leader = (): StoreNode | undefined => {
    const live = [...nodes.values()];
    const l = live.find((n) => n.status(RANGE).role === 'leader');
    if (l === undefined) return undefined;
    return live.every((n) => n.status(RANGE).leader === l.nodeId) ? l : undefined;
  };
  const waitLeader = async (): Promise<StoreNode> => {
    await waitFor(() => leader() !== undefined, 'a leader of range 1 known to every live node', WAIT_MS);
    return leader()!;
  };

  /** Puts through whichever node leads, following NotLeaderError hints; returns the revision. */
  const put = async (key: string, value: string): Promise<number> => {
    let revision = 0;
    await waitFor(async () => {
      const l = leader();
      if (l === undefined) return false;
      try {
        revision = (await l.range(RANGE).put({ key: b(key), value: b(value) }, { epoch })).header.revision;
        return true;
      } catch (e) {
        if (e instanceof NotLeaderError) return false;
        throw e;
      }
    }, `put ${key}`, WAIT_MS);
    return revision;
  };

  const localValue = async (n: StoreNode, key: string): Promise<string | undefined> => {
    const r = await n.range(RANGE).range({ key: b(key) }, { epoch, consistency: 'serializable' });
    return r.result.kvs[0]?.value.toString();
  };

  before(async () => {
    ports = await freePorts(IDS.length);
    for (const id of IDS) dirs.set(id, await tempDir(`n${id}`));
    for (const id of IDS) nodes.set(id, await StoreNode.open(optionsOf(id)));
  });

  after(async () => {
    for (const n of nodes.values()) await n.close().catch(() => undefined);
    for (const d of dirs.values()) await d.cleanup();
  });

  it('bootstraps range 1 on every node, elects a leader, and writes the data directory layout', async () => {
    await waitLeader();
    for (const n of nodes.values()) {
      assert.deepEqual(n.rangeIds(), [RANGE]);
      assert.deepEqual(n.range(RANGE).descriptor.replicas.map((r) => r.nodeId), [1, 2, 3]);
      assert.throws(() => n.range(99), RangeNotFoundError);
    }
    const meta = await readNodeMeta(dirs.get(1)!.path);
    assert.deepEqual(meta, { format: 1, nodeId: 1, engineKind: 'leveldb', bootstrapped: true, raftLog: 'wal' });
    assert.deepEqual((await readdir(dirs.get(1)!.path)).sort(), ['engine', 'node.json', 'raft-log']);
    const text = await nodes.get(1)!.metrics.metrics();
    assert.match(text, /etcd_server_has_leader\{node="1"\} 1/);
    // The raft log's WAL: the bootstrap flush and the leader's first entries were appended and synced.
    const wal = (name: string): number => Number(new RegExp(`^${name}\\{node="1"\\} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
    assert.ok(wal('keyspan_wal_appends_total') >= 1, text);
    assert.ok(wal('keyspan_wal_syncs_total') >= 1);
    assert.ok(wal('keyspan_wal_segments_started_total') === 1);
    assert.ok(wal('keyspan_wal_log_bytes') > 16);
  });

  it('puts through the leader and reads linearizably and serializably on every node', async () => {
    const l = await waitLeader();
    const follower = [...nodes.values()].find((n) => n !== l)!;
    await assert.rejects(follower.range(RANGE).put({ key: b('x'), value: b('y') }, { epoch }), (e: unknown) => {
      assert.ok(e instanceof NotLeaderError);
      assert.equal(e.leaderHint?.nodeId, l.nodeId);
      return true;
    });
    const r1 = await put('alpha', '1');
    const r2 = await put('beta', '2');
    assert.ok(r2 > r1, `revisions ${r1} < ${r2}`);
    const lin = await follower.range(RANGE).range({ key: b('alpha') }, { epoch });
    assert.equal(lin.result.kvs[0]?.value.toString(), '1');
    assert.equal(lin.result.kvs[0]?.modRevision, r1);
    for (const n of nodes.values()) {
      await waitFor(async () => (await localValue(n, 'beta')) === '2', `node ${n.nodeId} applied beta`, WAIT_MS);
    }
  });

  it('fails over when the leader closes, and the reopened node catches up from its data directory', async () => {
    const old = await waitLeader();
    const oldId = old.nodeId;
    await old.close();
    nodes.delete(oldId);
    const next = await waitLeader();
    assert.notEqual(next.nodeId, oldId);
    const rev = await put('gamma', '3');
    assert.ok(rev > 0);

    const back = await StoreNode.open(optionsOf(oldId));
    nodes.set(oldId, back);
    // Reopened, not re-bootstrapped: the pre-close writes are in its engine at once.
    assert.equal(await localValue(back, 'alpha'), '1');
    await waitFor(async () => (await localValue(back, 'gamma')) === '3', `reopened node ${oldId} caught up`, WAIT_MS);
    await waitLeader();
    await put('delta', '4');
    // Every replica ends with the same history.
    await waitFor(
      async () => {
        const revs = [...nodes.values()].map((n) => n.status(RANGE).revision);
        return revs.every((r) => r === revs[0]);
      },
      'equal revisions',
      WAIT_MS,
    );
    const rev0 = nodes.get(1)!.status(RANGE).revision;
    const hashes = await Promise.all([...nodes.values()].map(async (n) => (await n.range(RANGE).hashKV(rev0)).hash));
    assert.equal(new Set(hashes).size, 1, `hashes ${hashes.join(',')}`);
  });

  it('refuses a data directory of another node and a config naming an unknown peer', async () => {
    await assert.rejects(
      StoreNode.open({ ...optionsOf(1), nodeId: 2, peerListen: '127.0.0.1:0' }),
      (e: unknown) => e instanceof DataDirError && /belongs to node 1/.test(e.message),
    );
    assert.throws(
      () => validateOptions({ ...optionsOf(1), peers: new Map([[2, '127.0.0.1:1']]) }),
      (e: unknown) => e instanceof NodeConfigError && /replica node 3 is not in peers/.test(e.message),
    );
    assert.throws(() => validateOptions({ ...optionsOf(1), dataDir: '' }), NodeConfigError);
  });
});

describe('StoreNode: a directory made before raft-log/', () => {
  it('keeps its raft log in the node\'s engine, across restarts', async () => {
    const dir = await tempDir('n1-old-layout');
    const [port] = await freePorts(1);
    const options: StoreNodeOptions = {
      nodeId: 1,
      dataDir: dir.path,
      peerListen: `127.0.0.1:${port!}`,
      peers: new Map([[1, `127.0.0.1:${port!}`]]),
      engineKind: 'leveldb',
      ranges: wholeKeyspaceRange([1]),
      tickMs: TICK_MS,
      raft: RAFT,
    };
    // node.json as such a directory has it: no raftLog field.
    await writeFile(join(dir.path, 'node.json'), JSON.stringify({ format: 1, nodeId: 1, engineKind: 'leveldb', bootstrapped: false }));
    try {
      let node = await StoreNode.open(options);
      await waitFor(() => node.status(RANGE).role === 'leader', 'single node leads its range', WAIT_MS);
      const put = await node.range(RANGE).put({ key: b('k'), value: b('v') }, { epoch });
      await node.close();
      node = await StoreNode.open(options);
      try {
        await waitFor(() => node.status(RANGE).role === 'leader', 'the reopened node leads its range', WAIT_MS);
        const got = await node.range(RANGE).range({ key: b('k') }, { epoch });
        assert.equal(got.result.kvs[0]?.modRevision, put.header.revision);
        assert.equal((await node.range(RANGE).put({ key: b('k'), value: b('w') }, { epoch })).header.revision, put.header.revision + 1);
      } finally {
        await node.close();
      }
      assert.deepEqual(await readNodeMeta(dir.path), { format: 1, nodeId: 1, engineKind: 'leveldb', bootstrapped: true });
      assert.deepEqual((await readdir(dir.path)).sort(), ['engine', 'node.json']);
    } finally {
      await dir.cleanup();
    }
  });
});

describe('StoreNode: a single node on a memory engine', () => {
  it('bootstraps, elects itself, serves puts and reads, and closes', async () => {
    const node = await StoreNode.open({
      nodeId: 7,
      peerListen: '127.0.0.1:0',
      peers: new Map(),
      engineKind: 'memory',
      ranges: wholeKeyspaceRange([7]),
      tickMs: TICK_MS,
      raft: RAFT,
    });
    try {
      assert.ok(node.port > 0);
      await waitFor(() => node.status(RANGE).role === 'leader', 'single node leads its range', WAIT_MS);
      const put = await node.range(RANGE).put({ key: b('k'), value: b('v') }, { epoch });
      const got = await node.range(RANGE).range({ key: b('k') }, { epoch });
      assert.equal(got.result.kvs[0]?.modRevision, put.header.revision);
      assert.equal(node.status(RANGE).revision, put.header.revision);
    } finally {
      await node.close();
    }
    await node.close(); // idempotent
  });
});
