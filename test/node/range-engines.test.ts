/**
 * Per-range engines (docs/node.md "Range engines"): three StoreNodes in one
 * process host range 1 (keys below 'm') on their shared LevelDB engine and
 * range 2 (keys from 'm') on a memory engine each. Both ranges' logs are
 * truncated under load; then one node restarts: its memory range comes back
 * empty, is rebuilt from a peer's image before its raft group runs, and
 * agrees with the others (hashKV) while the shared range reopens from disk.
 * The choice is recorded in the data directory; a restart naming another
 * engine for a range, and an unknown engine name, are refused. Last, the
 * crash window of a snapshot install on a shared range: raft recorded a
 * received snapshot (and truncated its log) but the range's state is still
 * the older one; the node rebuilds it from a peer's image on restart.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LogStore } from '../../src/group/log-store/index.js';
import { Replica } from '../../src/shard/replica/index.js';
import { RangeKeys } from '../../src/shard/replica/keys.js';
import { openEngine, type Engine } from '../../src/storage/index.js';
import {
  DataDirError,
  NodeConfigError,
  enginePath,
  raftLogPath,
  fetchRangeImage,
  RANGE_OPTIONS_FILE,
  StoreNode,
  validateOptions,
  type BootstrapRange,
  type StoreNodeOptions,
} from '../../src/node/index.js';
import { INITIAL_EPOCH, NotLeaderError, RangeNotInitializedError } from '../../src/shard/range/index.js';
import { freePorts, tempDir, waitFor } from './helpers.js';

const IDS = [1, 2, 3] as const;
const SHARED = 1;
const MEMORY = 2;
const TICK_MS = 10;
const RAFT = { electionTick: 10, heartbeatTick: 1 };
/** Small log bounds so that both ranges' logs are truncated (and a restarted replica cannot replay from the start). */
const LIMITS = { logTruncateEntries: 20, logKeepEntries: 5 };
const WAIT_MS = 20_000;
const epoch = INITIAL_EPOCH;
const b = (s: string): Buffer => Buffer.from(s);

/** Keys `engine` holds under range `rangeId`'s prefix. */
async function keysUnder(engine: Engine, rangeId: number): Promise<number> {
  const keys = new RangeKeys(rangeId);
  let n = 0;
  for await (const _ of engine.iterate({ gte: keys.start, lt: keys.end })) n++;
  return n;
}

const RANGES: BootstrapRange[] = [
  { rangeId: SHARED, end: b('m'), replicas: [...IDS] },
  { rangeId: MEMORY, start: b('m'), replicas: [...IDS], engine: 'memory' },
];

describe('StoreNode: a memory-engine range beside a shared-engine range', () => {
  const dirs = new Map<number, { path: string; cleanup: () => Promise<void> }>();
  const nodes = new Map<number, StoreNode>();
  let ports: number[] = [];

  const optionsOf = (id: number, ranges: BootstrapRange[] = RANGES): StoreNodeOptions => ({
    nodeId: id,
    dataDir: dirs.get(id)!.path,
    peerListen: `127.0.0.1:${ports[id - 1]!}`,
    peers: new Map(IDS.map((p) => [p, `127.0.0.1:${ports[p - 1]!}`])),
    engineKind: 'leveldb',
    ranges,
    tickMs: TICK_MS,
    raft: RAFT,
    limits: LIMITS,
  });

  const hosted = (n: StoreNode, range: number): boolean => n.rangeIds().includes(range);
  /** The node every live node hosting `range` agrees leads it, if any. */
  const leader = (range: number): StoreNode | undefined => {
    const live = [...nodes.values()].filter((n) => hosted(n, range));
    const l = live.find((n) => n.status(range).role === 'leader');
    if (l === undefined) return undefined;
    return live.every((n) => n.status(range).leader === l.nodeId) ? l : undefined;
  };

  const put = async (range: number, key: string, value: string): Promise<number> => {
    let revision = 0;
    await waitFor(async () => {
      const l = leader(range);
      if (l === undefined) return false;
      try {
        revision = (await l.range(range).put({ key: b(key), value: b(value) }, { epoch })).header.revision;
        return true;
      } catch (e) {
        if (e instanceof NotLeaderError) return false;
        throw e;
      }
    }, `put ${key}`, WAIT_MS);
    return revision;
  };

  const putMany = async (prefix: string, from: number, count: number): Promise<void> => {
    for (let i = from; i < from + count; i++) {
      await put(SHARED, `a${prefix}${i}`, `v${i}`);
      await put(MEMORY, `m${prefix}${i}`, `v${i}`);
    }
  };

  /** Waits until every node applied `range` up to its leader's commit, then compares hashKV at one revision. */
  const assertAgree = async (range: number): Promise<void> => {
    await waitFor(() => {
      const l = leader(range);
      if (l === undefined) return false;
      const commit = l.status(range).commit;
      return [...nodes.values()].every((n) => hosted(n, range) && n.status(range).applied >= commit);
    }, `range ${range} applied everywhere`, WAIT_MS);
    const rev = leader(range)!.status(range).revision;
    const hashes = await Promise.all([...nodes.values()].map(async (n) => (await n.range(range).hashKV(rev)).hash));
    assert.equal(new Set(hashes).size, 1, `range ${range} hashes at ${rev}: ${hashes.join(',')}`);
  };

  before(async () => {
    ports = await freePorts(IDS.length);
    for (const id of IDS) dirs.set(id, await tempDir(`re${id}`));
    for (const id of IDS) nodes.set(id, await StoreNode.open(optionsOf(id)));
  });

  after(async () => {
    for (const n of nodes.values()) await n.close().catch(() => undefined);
    for (const d of dirs.values()) await d.cleanup();
  });

  it('keeps each range on its configured engine and records the choice', async () => {
    await putMany('x', 0, 40);
    for (const n of nodes.values()) {
      assert.equal(n.rangeEngineOf(SHARED), 'shared');
      assert.equal(n.rangeEngineOf(MEMORY), 'memory');
      // The memory range's keys are not in the node's engine; the shared range's are.
      assert.equal(await keysUnder(n.engine, MEMORY), 0);
      assert.ok((await keysUnder(n.engine, SHARED)) > 0);
      assert.ok((await keysUnder(n.range(MEMORY).engine, MEMORY)) > 0);
      const record = JSON.parse(await readFile(join(dirs.get(n.nodeId)!.path, RANGE_OPTIONS_FILE), 'utf8')) as unknown;
      assert.deepEqual(record, { format: 1, ranges: { [String(MEMORY)]: { engine: 'memory' } } });
    }
    await assertAgree(SHARED);
    await assertAgree(MEMORY);
    // A member serves an image only of an initialized replica at the index asked for.
    const address = `127.0.0.1:${ports[0]!}`;
    await assert.rejects(fetchRangeImage(address, 99, 0), /range 99: no initialized replica, index 0 needed/);
    await assert.rejects(fetchRangeImage(address, MEMORY, 1e12), /index 1000000000000 needed/);
    assert.ok((await fetchRangeImage(address, MEMORY, 0)).length > 0);
  });

  it('rebuilds a restarted node\'s memory range from a peer image; the shared range reopens from disk', async () => {
    const l = leader(MEMORY)!;
    const restarted = IDS.find((id) => id !== l.nodeId)!;
    const before = nodes.get(restarted)!;
    // The memory replica's log was truncated: its state cannot be replayed from index 5.
    assert.ok(before.status(MEMORY).applied > LIMITS.logTruncateEntries);
    await before.close();
    nodes.delete(restarted);
    await putMany('y', 0, 10); // the two others go on

    const node = await StoreNode.open(optionsOf(restarted));
    nodes.set(restarted, node);
    // The shared range is there at once, with its pre-restart data.
    const got = await node.range(SHARED).range({ key: b('ax0') }, { epoch, consistency: 'serializable' });
    assert.equal(got.result.kvs[0]?.value.toString(), 'v0');
    // The memory range is hosted only once rebuilt from a peer's image.
    if (node.recoveringRangeIds().includes(MEMORY)) assert.throws(() => node.range(MEMORY), RangeNotInitializedError);
    await waitFor(() => hosted(node, MEMORY), 'memory range rebuilt and hosted', WAIT_MS);
    assert.equal(node.rangeImagesInstalled, 1);
    assert.deepEqual(node.recoveringRangeIds(), []);
    const mem = await node.range(MEMORY).range({ key: b('mx0') }, { epoch, consistency: 'serializable' });
    assert.equal(mem.result.kvs[0]?.value.toString(), 'v0');

    await putMany('z', 0, 10); // and it keeps up afterwards
    await assertAgree(SHARED);
    await assertAgree(MEMORY);
    const last = await node.range(MEMORY).range({ key: b('mz9') }, { epoch });
    assert.equal(last.result.kvs[0]?.value.toString(), 'v9');
  });

  it('refuses a restart that names another engine for a range, and an unknown engine', async () => {
    const id = IDS.find((x) => leader(MEMORY)?.nodeId !== x && leader(SHARED)?.nodeId !== x) ?? 3;
    await nodes.get(id)!.close();
    nodes.delete(id);
    const swapped = RANGES.map((r) => (r.rangeId === MEMORY ? { ...r, engine: 'shared' as const } : r));
    await assert.rejects(
      StoreNode.open(optionsOf(id, swapped)),
      (e: unknown) => e instanceof DataDirError && /range 2 keeps its data in the 'memory' engine/.test(e.message),
    );
    const toMemory = RANGES.map((r) => (r.rangeId === SHARED ? { ...r, engine: 'memory' as const } : r));
    await assert.rejects(
      StoreNode.open(optionsOf(id, toMemory)),
      (e: unknown) => e instanceof DataDirError && /range 1 keeps its data in the 'shared' engine/.test(e.message),
    );
    const bad = RANGES.map((r) => (r.rangeId === MEMORY ? { ...r, engine: 'rocksdb' as unknown as 'memory' } : r));
    assert.throws(
      () => validateOptions(optionsOf(id, bad)),
      (e: unknown) => e instanceof NodeConfigError && /range 2: engine 'rocksdb' is not a range engine \(one of 'shared', 'memory'\)/.test(e.message),
    );
    const alone = [{ rangeId: 5, start: b('x'), replicas: [id], engine: 'memory' as const }];
    assert.throws(
      () => validateOptions(optionsOf(id, alone)),
      (e: unknown) => e instanceof NodeConfigError && /range 5: a memory range needs at least 2 replicas/.test(e.message),
    );
    // Options that leave the engine out reopen as recorded.
    const node = await StoreNode.open(optionsOf(id, RANGES.map(({ engine: _e, ...r }) => r)));
    nodes.set(id, node);
    assert.equal(node.rangeEngineOf(MEMORY), 'memory');
    await waitFor(() => hosted(node, MEMORY), 'memory range rebuilt again', WAIT_MS);
    await assertAgree(MEMORY);
  });

  it('rebuilds a shared range whose state is older than the snapshot its raft log recorded', async () => {
    const id = IDS.find((x) => leader(SHARED)?.nodeId !== x && leader(MEMORY)?.nodeId !== x) ?? 3;
    const dir = enginePath(dirs.get(id)!.path);
    await nodes.get(id)!.close();
    nodes.delete(id);
    // The range's state as it is now, kept aside.
    let engine = await openEngine({ kind: 'leveldb', path: dir });
    let replica = await Replica.open(engine, { rangeId: SHARED });
    const old = await replica.buildSnapshot();
    await replica.close();
    await engine.close();
    // The others truncate their logs past it: the node is caught up by a raft snapshot.
    await putMany('w', 0, 40);
    let node = await StoreNode.open(optionsOf(id));
    nodes.set(id, node);
    await waitFor(() => node.host.stats.snapshotsReceived >= 1, 'a raft snapshot received', WAIT_MS);
    await assertAgree(SHARED);
    await node.close();
    nodes.delete(id);
    // Put the old state back: what a crash between raft's record of the snapshot and the install left before installs were atomic.
    engine = await openEngine({ kind: 'leveldb', path: dir });
    replica = await Replica.open(engine, { rangeId: SHARED });
    assert.equal(await replica.installImage(old.data, 0), old.index);
    await replica.close();
    await engine.close();
    const logEngine = await openEngine({ kind: 'wal', path: raftLogPath(dirs.get(id)!.path) });
    const logStore = await LogStore.open(logEngine);
    const recorded = logStore.group(SHARED).snapshotMeta.index;
    await logStore.close();
    await logEngine.close();
    assert.ok(recorded > old.index, `raft's snapshot ${recorded} is above the state's applied index ${old.index}`);

    node = await StoreNode.open(optionsOf(id));
    nodes.set(id, node);
    await waitFor(() => hosted(node, SHARED) && hosted(node, MEMORY), 'both ranges hosted again', WAIT_MS);
    assert.equal(node.rangeImagesInstalled, 2); // the memory range and the shared one
    assert.ok(node.status(SHARED).applied >= recorded);
    await putMany('v', 0, 5);
    await assertAgree(SHARED);
    await assertAgree(MEMORY);
  });
});
