/**
 * An in-test driver for range replicas (not the real multi-raft host): 1..N
 * RawNodes over MemoryStorage, one MemoryEngine and Replica per node,
 * messages delivered in-process. It follows the Ready contract — persist,
 * send, apply (conf changes through RawNode.applyConfChange, then
 * Replica.applyEntries), hand soft state and read states to the replica,
 * advance — and pumps by itself whenever a replica proposes, so tests just
 * `await replica.put(...)`. `settle()` waits until nothing is left to do; no
 * timers or sleeps are involved.
 */
import {
  MemoryStorage,
  RawNode,
  decodeConfChange,
  type Message,
  type BasicRaftStatus,
  type RaftStatus,
  type ConfChange,
  type RandomSource,
} from '../../../src/group/raft/index.js';
import type { AppliedEntry, GroupHandle } from '../../../src/group/host/state-machine.js';
import { MemoryEngine } from '../../../src/storage/index.js';
import { Replica, type ReplicaOptions } from '../../../src/shard/replica/index.js';
import type { RangeDescriptor } from '../../../src/shard/range/index.js';

/** The range id every test uses. */
export const RANGE_ID = 7;
/** Node id hosting replica `id` (distinct numbers, so tests can tell them apart). */
export const nodeOf = (replicaId: number): number => replicaId * 100;
/** Bound on pump rounds before the harness declares a livelock. */
const PUMP_ROUNDS_MAX = 10_000;
const ELECTION_TICK = 10;
const HEARTBEAT_TICK = 1;

/** A seeded LCG so elections replay exactly. */
class SeqRandom implements RandomSource {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  intn(n: number): number {
    this.s = (Math.imul(this.s, 1664525) + 1013904223) >>> 0;
    return this.s % n;
  }
}

/** The GroupHandle the harness gives each replica. */
class TestHandle implements GroupHandle {
  readonly groupId = RANGE_ID;
  constructor(
    readonly replicaId: number,
    private readonly node: () => RawNode,
    private readonly kick: () => void,
  ) {}
  propose(data: Uint8Array): void {
    this.node().propose(data);
    this.kick();
  }
  proposeConfChange(cc: ConfChange): void {
    this.node().proposeConfChange(cc);
    this.kick();
  }
  readIndex(ctx: Uint8Array): void {
    this.node().readIndex(ctx);
    this.kick();
  }
  leaseReadIndex(): number | undefined {
    return this.node().leaseReadIndex();
  }
  transferLeader(to: number): void {
    this.node().transferLeader(to);
    this.kick();
  }
  status(): RaftStatus {
    return this.node().status();
  }

  basicStatus(): BasicRaftStatus {
    return this.node().basicStatus();
  }
}

/** One node of the harness: raft, its log, its engine and the replica. */
export interface TestNode {
  readonly id: number;
  raw: RawNode;
  readonly storage: MemoryStorage;
  readonly engine: MemoryEngine;
  replica: Replica;
  readonly handle: TestHandle;
}

/** The descriptor of a new range whose first voters are `ids`. */
export function bootstrapDescriptor(ids: readonly number[]): RangeDescriptor {
  return {
    rangeId: RANGE_ID,
    start: Buffer.from('a'),
    end: Buffer.from('m'),
    replicas: ids.map((id) => ({ nodeId: nodeOf(id), replicaId: id, role: 'voter' as const })),
    epoch: { confVersion: 1, spanVersion: 1 },
  };
}

/** Extra replica options per test. */
export type HarnessReplicaOptions = Omit<ReplicaOptions, 'rangeId' | 'bootstrap' | 'handle'>;

/** A group of replicas of one range, driven in-process. */
export class Harness {
  readonly nodes = new Map<number, TestNode>();
  private readonly cut = new Set<number>();
  /** Drops the messages for which it returns true (in addition to isolation). */
  drop: ((m: Message) => boolean) | undefined = undefined;
  private queue: Message[] = [];
  private pumping: Promise<void> | undefined;
  private again = false;
  /** Errors thrown inside the pump (surfaced by settle()). */
  private failure: unknown;

  private constructor(private readonly replicaOptions: HarnessReplicaOptions) {}

  /** A range bootstrapped on voters `ids`, with `ids[0]` elected leader. */
  static async start(ids: readonly number[], replicaOptions: HarnessReplicaOptions = {}): Promise<Harness> {
    const h = new Harness(replicaOptions);
    const desc = bootstrapDescriptor(ids);
    for (const id of ids) {
      await h.addNode(id, MemoryStorage.withVoters(ids), new MemoryEngine(), desc);
    }
    await h.elect(ids[0]!);
    return h;
  }

  /** Adds a node with an empty log and engine (an uninitialized replica awaiting a snapshot). */
  async addEmptyNode(id: number): Promise<TestNode> {
    return this.addNode(id, new MemoryStorage(), new MemoryEngine(), undefined);
  }

  private async addNode(
    id: number,
    storage: MemoryStorage,
    engine: MemoryEngine,
    bootstrap: RangeDescriptor | undefined,
  ): Promise<TestNode> {
    const replica = await Replica.open(engine, {
      rangeId: RANGE_ID,
      ...(bootstrap === undefined ? {} : { bootstrap }),
      ...this.replicaOptions,
    });
    const node: TestNode = {
      id,
      raw: this.newRawNode(id, storage, replica.appliedIndex()),
      storage,
      engine,
      replica,
      handle: new TestHandle(id, () => node.raw, () => this.kick()),
    };
    replica.attach(node.handle);
    this.nodes.set(id, node);
    return node;
  }

  private newRawNode(id: number, storage: MemoryStorage, applied: number): RawNode {
    return new RawNode(
      { id, electionTick: ELECTION_TICK, heartbeatTick: HEARTBEAT_TICK, random: new SeqRandom(id), applied },
      storage,
    );
  }

  /** The node `id`. */
  node(id: number): TestNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** The replica on node `id`. */
  replica(id: number): Replica {
    return this.node(id).replica;
  }

  /** Makes `id` campaign and waits until the cluster is quiet. */
  async elect(id: number): Promise<void> {
    this.node(id).raw.campaign();
    await this.settle();
  }

  /** Ticks every node (or `ids`) `n` times, settling after each tick. */
  async tick(n: number, ids?: readonly number[]): Promise<void> {
    for (let i = 0; i < n; i++) {
      for (const id of ids ?? [...this.nodes.keys()]) this.node(id).raw.tick();
      await this.settle();
    }
  }

  /** Drops every message to and from `id` until heal(). */
  isolate(id: number): void {
    this.cut.add(id);
  }

  /** Reconnects every node. */
  heal(): void {
    this.cut.clear();
  }

  /**
   * Simulates a crash and restart of node `id`: new RawNode and Replica over
   * the same log and engine.
   */
  async restart(id: number, options: { readonly raftApplied?: number } = {}): Promise<TestNode> {
    const old = this.node(id);
    await this.settle();
    await old.replica.close();
    const replica = await Replica.open(old.engine, { rangeId: RANGE_ID, ...this.replicaOptions });
    old.replica = replica;
    // raftApplied below the replica's applied index makes raft hand out applied entries again.
    old.raw = this.newRawNode(id, old.storage, options.raftApplied ?? replica.appliedIndex());
    replica.attach(old.handle);
    return old;
  }

  /**
   * Takes a snapshot of node `id`'s replica and truncates its raft log up to
   * it, so a replica that is behind (or new) must be sent the snapshot.
   */
  async compactLog(id: number): Promise<number> {
    await this.settle();
    const node = this.node(id);
    const snap = await node.replica.buildSnapshot();
    node.storage.createSnapshot(snap.index, node.raw.status().config, snap.data);
    node.storage.compact(snap.index);
    return snap.index;
  }

  /** The current leader's id (asserting exactly one leader among non-isolated nodes is not needed here). */
  leader(): number {
    for (const n of this.nodes.values()) if (n.raw.status().role === 'leader' && !this.cut.has(n.id)) return n.id;
    throw new Error('no leader');
  }

  /** Runs the pump until nothing is left to persist, send or apply. */
  async settle(): Promise<void> {
    this.kick();
    while (this.pumping !== undefined) await this.pumping;
    if (this.failure !== undefined) {
      const f = this.failure;
      this.failure = undefined;
      throw f;
    }
  }

  /** Starts the pump if it is idle (called by every handle method). */
  kick(): void {
    if (this.pumping !== undefined) {
      this.again = true;
      return;
    }
    this.pumping = (async () => {
      try {
        do {
          this.again = false;
          // Let the caller finish its synchronous work (e.g. several proposals) first.
          await new Promise<void>((resolve) => setImmediate(resolve));
          await this.pumpUntilQuiet();
        } while (this.again);
      } catch (err) {
        this.failure = err;
      } finally {
        this.pumping = undefined;
      }
    })();
  }

  private async pumpUntilQuiet(): Promise<void> {
    for (let round = 0; round < PUMP_ROUNDS_MAX; round++) {
      let progressed = false;
      for (const node of [...this.nodes.values()]) {
        if (!node.raw.hasReady()) continue;
        progressed = true;
        await this.handleReady(node);
      }
      if (this.queue.length > 0) {
        progressed = true;
        this.deliver();
      }
      if (!progressed) return;
    }
    throw new Error(`harness: not quiet after ${PUMP_ROUNDS_MAX} rounds`);
  }

  /** The Ready contract: persist → send → apply → advance. */
  private async handleReady(node: TestNode): Promise<void> {
    const rd = node.raw.ready();
    if (rd.snapshot !== undefined) node.storage.applySnapshot(rd.snapshot);
    node.storage.append(rd.entries);
    if (rd.hardState !== undefined) node.storage.setHardState(rd.hardState);
    this.queue.push(...rd.earlyMessages, ...rd.messages);
    if (rd.snapshot !== undefined) await node.replica.installSnapshot(rd.snapshot);
    const applied: AppliedEntry[] = rd.committedEntries.map((entry) => {
      if (entry.type !== 'confChange') return { entry };
      return { entry, confState: node.raw.applyConfChange(decodeConfChange(entry.data)) };
    });
    if (applied.length > 0) await node.replica.applyEntries(applied);
    if (rd.softState !== undefined) node.replica.onSoftState(rd.softState);
    if (rd.readStates.length > 0) node.replica.onReadStates(rd.readStates);
    node.raw.advance(rd);
  }

  private deliver(): void {
    const msgs = this.queue;
    this.queue = [];
    for (const m of msgs) {
      const from = this.nodes.get(m.from);
      const to = this.nodes.get(m.to);
      const dropped = to === undefined || this.cut.has(m.from) || this.cut.has(m.to) || this.drop?.(m) === true;
      if (!dropped) to.raw.step(m);
      if (m.type === 'snap') from?.raw.reportSnapshot(m.to, !dropped);
    }
  }
}

/** Bytes of a string. */
export const b = (s: string): Buffer => Buffer.from(s);
/** A string of bytes. */
export const s = (u: Uint8Array): string => Buffer.from(u).toString();
