/**
 * The store under the real raft core: three nodes, each with its own
 * LogStore hosting the same two groups, process Readys the multi-raft way
 * (stage every group's Ready, one flush, then send and apply). Covers
 * replication, restart of every node from its engine, and a lagging
 * follower caught up by a snapshot that the leader's snapshot source builds
 * after its log was truncated.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Entry, type HardState, type Message, RawNode, type Ready, type Snapshot } from '../../../src/group/raft/index.js';
import { LogStore } from '../../../src/group/log-store/index.js';
import { type Engine, MemoryEngine } from '../../../src/storage/index.js';
import { voters } from './helpers.js';

const NODES = [1, 2, 3];
const GROUPS = [10, 20];
/** Bound on delivery rounds before a test gives up. */
const ROUNDS_MAX = 200;

class Rng {
  private s = 7;
  intn(n: number): number {
    this.s = (Math.imul(this.s, 1664525) + 1013904223) >>> 0;
    return this.s % n;
  }
}

/** One replica's state machine: the applied payloads, in order. */
interface Replica {
  raw: RawNode;
  applied: string[];
  appliedIndex: number;
}

interface Node {
  readonly id: number;
  readonly engine: Engine;
  store: LogStore;
  readonly replicas: Map<number, Replica>;
}

function snapshotOf(rep: Replica, group: number, node: Node): Snapshot {
  const log = node.store.group(group);
  return { meta: { index: rep.appliedIndex, term: log.term(rep.appliedIndex), confState: log.confState }, data: Buffer.from(JSON.stringify(rep.applied)) };
}

function startReplicas(node: Node): void {
  for (const g of GROUPS) {
    const log = node.store.group(g);
    // These state machines live in memory, so a restart replays the log from the start (applied 0);
    // the test restarts only before any snapshot was taken.
    const applied = 0;
    const rep: Replica = {
      raw: new RawNode({ id: node.id, electionTick: 10, heartbeatTick: 1, random: new Rng(), applied }, log),
      applied: [],
      appliedIndex: applied,
    };
    log.setSnapshotSource((meta) => (meta.index === rep.appliedIndex ? snapshotOf(rep, g, node) : undefined));
    node.replicas.set(g, rep);
  }
}

async function makeNode(id: number): Promise<Node> {
  const engine = new MemoryEngine();
  const store = await LogStore.open(engine);
  for (const g of GROUPS) store.createGroup(g, { confState: voters(...NODES) });
  await store.flush();
  const node: Node = { id, engine, store, replicas: new Map() };
  startReplicas(node);
  return node;
}

/** One Ready round of a node: stage all groups, ONE flush, then send and apply. Returns the messages. */
async function handleReadys(node: Node): Promise<{ group: number; msg: Message }[]> {
  const readys: [number, Replica, Ready][] = [];
  for (const [g, rep] of node.replicas) {
    if (!rep.raw.hasReady()) continue;
    const rd = rep.raw.ready();
    const ops: { hardState?: HardState; entries: readonly Entry[]; snapshot?: Snapshot } = { entries: rd.entries };
    if (rd.hardState !== undefined) ops.hardState = rd.hardState;
    if (rd.snapshot !== undefined) ops.snapshot = rd.snapshot;
    node.store.stage(g, ops);
    readys.push([g, rep, rd]);
  }
  if (readys.length === 0) return [];
  await node.store.flush({ sync: true });
  const out: { group: number; msg: Message }[] = [];
  for (const [g, rep, rd] of readys) {
    for (const msg of [...rd.earlyMessages, ...rd.messages]) out.push({ group: g, msg });
    if (rd.snapshot !== undefined) {
      rep.applied = JSON.parse(Buffer.from(rd.snapshot.data).toString()) as string[];
      rep.appliedIndex = rd.snapshot.meta.index;
    }
    for (const e of rd.committedEntries) {
      if (e.type === 'normal' && e.data.byteLength > 0) rep.applied.push(Buffer.from(e.data).toString());
      rep.appliedIndex = e.index;
    }
    rep.raw.advance(rd);
  }
  return out;
}

/** Runs Ready rounds and delivers messages until quiet; `drop` filters messages (partitions). */
async function settle(nodes: Map<number, Node>, drop: (m: Message) => boolean = () => false): Promise<void> {
  for (let round = 0; round < ROUNDS_MAX; round++) {
    let moved = false;
    for (const node of nodes.values()) {
      for (const { group, msg } of await handleReadys(node)) {
        moved = true;
        if (drop(msg)) continue;
        const to = nodes.get(msg.to);
        to?.replicas.get(group)?.raw.step(msg);
      }
    }
    if (!moved) return;
  }
  assert.fail('cluster did not settle');
}

function leaderOf(nodes: Map<number, Node>, g: number): Replica {
  const leaders = [...nodes.values()].map((n) => n.replicas.get(g)!).filter((r) => r.raw.status().role === 'leader');
  assert.equal(leaders.length, 1, `group ${g} has one leader`);
  return leaders[0]!;
}

describe('LogStore under the raft core', () => {
  test('replicates, restarts every node, and catches a lagging follower up by snapshot', async () => {
    const nodes = new Map<number, Node>();
    for (const id of NODES) nodes.set(id, await makeNode(id));
    nodes.get(1)!.replicas.get(10)!.raw.campaign();
    nodes.get(2)!.replicas.get(20)!.raw.campaign();
    await settle(nodes);
    for (let i = 0; i < 5; i++) for (const g of GROUPS) leaderOf(nodes, g).raw.propose(Buffer.from(`g${g}-${i}`));
    await settle(nodes);
    for (const node of nodes.values()) {
      for (const g of GROUPS) assert.deepEqual(node.replicas.get(g)!.applied, [0, 1, 2, 3, 4].map((i) => `g${g}-${i}`));
    }
    const flushesBefore = nodes.get(1)!.store.counters.batchesFlushed;

    // Restart every node from its engine: same logs, terms, commits; the cluster keeps working.
    for (const node of nodes.values()) {
      const before = GROUPS.map((g) => ({ hs: node.store.group(g).hardState, last: node.store.group(g).lastIndex() }));
      await node.store.close();
      node.store = await LogStore.open(node.engine);
      startReplicas(node);
      assert.deepEqual(GROUPS.map((g) => ({ hs: node.store.group(g).hardState, last: node.store.group(g).lastIndex() })), before);
    }
    nodes.get(3)!.replicas.get(10)!.raw.campaign();
    await settle(nodes);
    const leader10 = leaderOf(nodes, 10);
    leader10.raw.propose(Buffer.from('after-restart'));
    await settle(nodes);
    for (const node of nodes.values()) assert.equal(node.replicas.get(10)!.applied.at(-1), 'after-restart');

    // Node 2 is cut off from group 10 while the leader commits more, snapshots and truncates.
    const cut = (m: Message): boolean => m.to === 2 || m.from === 2;
    for (let i = 0; i < 10; i++) leader10.raw.propose(Buffer.from(`cut-${i}`));
    await settle(nodes, cut);
    const leaderNode = [...nodes.values()].find((n) => n.replicas.get(10) === leader10)!;
    const log = leaderNode.store.group(10);
    const at = leader10.appliedIndex;
    leaderNode.store.createSnapshot(10, at, undefined); // metadata only: the source builds the data
    leaderNode.store.truncate(10, at, log.term(at));
    await leaderNode.store.flush();
    assert.equal(log.firstIndex(), at + 1);
    for (let i = 0; i < 3; i++) {
      leader10.raw.tick();
      await settle(nodes);
    }
    leader10.raw.propose(Buffer.from('healed'));
    await settle(nodes);
    const follower = nodes.get(2)!;
    assert.equal(follower.replicas.get(10)!.applied.at(-1), 'healed');
    assert.ok(follower.replicas.get(10)!.applied.includes('cut-9'), 'the snapshot carried the entries the follower missed');
    assert.equal(follower.store.group(10).truncatedState.index, at, 'the follower installed the snapshot');
    assert.ok(nodes.get(1)!.store.counters.batchesFlushed > flushesBefore);

    // And the installed snapshot survives the follower's restart.
    await follower.store.close();
    const reopened = await LogStore.open(follower.engine);
    assert.equal(reopened.group(10).snapshotMeta.index, at);
    assert.equal(reopened.group(10).lastIndex(), follower.store.group(10).lastIndex());
  });
});
