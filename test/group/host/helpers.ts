/**
 * Shared helpers of the host tests: a tiny list state machine persisted in
 * the node's engine, nodes (engine + log store + host + transport) on
 * 127.0.0.1 ephemeral ports, and bounded waits.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfState, Snapshot, SoftState, ReadState } from '../../../src/group/raft/index.js';
import { LogStore } from '../../../src/group/log-store/index.js';
import { FaultyTransport, GrpcTransport, type NetworkFaults, type Transport } from '../../../src/group/transport/index.js';
import {
  IntervalTicker,
  MultiRaftHost,
  type AppliedEntry,
  type GroupHandle,
  type GroupStateMachine,
  type HostLimits,
  type HostRaftConfig,
  type StateMachineSnapshot,
  type Ticker,
} from '../../../src/group/host/index.js';
import { type Engine, MemoryEngine, openEngine } from '../../../src/storage/index.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Encodes a test command. */
export function cmd(s: string): Uint8Array {
  return enc.encode(s);
}

function smKey(groupId: number): Uint8Array {
  return enc.encode(`sm/${groupId}`);
}

/**
 * An append-only list of strings. Its whole state (items and applied index)
 * is one engine key written per applyEntries, so effects and applied index
 * land in one write.
 */
export class ListStateMachine implements GroupStateMachine {
  items: string[] = [];
  applied = 0;
  confStates: ConfState[] = [];
  softStates: SoftState[] = [];
  readStates: ReadState[] = [];
  /** Entries handed out at or below the applied index: must stay 0. */
  reapplied = 0;
  applyCalls = 0;
  installs = 0;
  /** Full images built (for a follower, or by a host that cannot truncate without one). */
  buildCalls = 0;
  /** Applied indexes made durable for truncation alone. */
  persistCalls = 0;

  private constructor(
    private readonly engine: Engine,
    readonly groupId: number,
  ) {}

  /** Loads the machine's state from `engine`. */
  static async open(engine: Engine, groupId: number): Promise<ListStateMachine> {
    const sm = new ListStateMachine(engine, groupId);
    const v = await engine.get(smKey(groupId));
    if (v !== undefined) {
      const s = JSON.parse(dec.decode(v)) as { applied: number; items: string[] };
      sm.applied = s.applied;
      sm.items = s.items;
    }
    return sm;
  }

  appliedIndex(): number {
    return this.applied;
  }

  async applyEntries(entries: readonly AppliedEntry[]): Promise<void> {
    this.applyCalls++;
    for (const { entry, confState } of entries) {
      if (entry.index <= this.applied) this.reapplied++;
      if (confState !== undefined) this.confStates.push(confState);
      else if (entry.type === 'normal' && entry.data.byteLength > 0) this.items.push(dec.decode(entry.data));
      this.applied = entry.index;
    }
    await this.persist();
  }

  async buildSnapshot(): Promise<StateMachineSnapshot> {
    this.buildCalls++;
    return { index: this.applied, data: enc.encode(JSON.stringify(this.items)) };
  }

  async persistApplied(): Promise<number> {
    this.persistCalls++;
    const index = this.applied;
    // applyEntries writes unsynced: an empty synced write makes those durable.
    await this.engine.write([], { sync: true });
    return index;
  }

  async installSnapshot(snapshot: Snapshot): Promise<void> {
    this.installs++;
    this.items = JSON.parse(dec.decode(snapshot.data)) as string[];
    this.applied = snapshot.meta.index;
    await this.persist();
  }

  onReadStates(rs: readonly ReadState[]): void {
    this.readStates.push(...rs);
  }

  onSoftState(s: SoftState): void {
    this.softStates.push(s);
  }

  private async persist(): Promise<void> {
    const value = enc.encode(JSON.stringify({ applied: this.applied, items: this.items }));
    await this.engine.write([{ type: 'put', key: smKey(this.groupId), value }]);
  }
}

/** Test timing: 10 ms ticks, elections after 100-200 ms. */
export const TEST_TICK_MS = 10;
export const TEST_RAFT: Partial<HostRaftConfig> = { electionTick: 10, heartbeatTick: 1 };

/** One node of a test cluster. */
export interface TestNode {
  readonly id: number;
  readonly engine: Engine;
  readonly host: MultiRaftHost;
  readonly port: number;
  readonly sms: Map<number, ListStateMachine>;
  readonly dir: string | undefined;
}

/** Options of {@link startNode}. */
export interface StartNodeOptions {
  /** A LevelDB directory (else a memory engine). */
  readonly dir?: string;
  /** Port to listen on (0: ephemeral). */
  readonly port?: number;
  readonly faults?: NetworkFaults;
  readonly limits?: Partial<HostLimits>;
  readonly raft?: Partial<HostRaftConfig>;
  readonly ticker?: Ticker;
  readonly tickMs?: number;
  /** Wraps the node's transport (to filter what it sends). */
  readonly wrapTransport?: (inner: Transport) => Transport;
}

/** Opens an engine and a log store and starts a host on 127.0.0.1. */
export async function startNode(id: number, options: StartNodeOptions = {}): Promise<TestNode> {
  const engine = options.dir !== undefined ? await openEngine({ kind: 'leveldb', path: options.dir }) : new MemoryEngine();
  const logStore = await LogStore.open(engine);
  const listenAddress = `127.0.0.1:${options.port ?? 0}`;
  const faults = options.faults;
  const host = new MultiRaftHost({
    nodeId: id,
    logStore,
    transport: (handlers) => {
      const t: Transport =
        faults !== undefined
          ? new FaultyTransport({ nodeId: id, listenAddress, handlers }, faults)
          : new GrpcTransport({ nodeId: id, listenAddress, handlers });
      return options.wrapTransport?.(t) ?? t;
    },
    ticker: options.ticker ?? new IntervalTicker(options.tickMs ?? TEST_TICK_MS),
    raft: { ...TEST_RAFT, ...options.raft },
    ...(options.limits !== undefined ? { limits: options.limits } : {}),
    metricsLabels: { node: String(id) },
    onFatal: (e) => {
      console.error(`host ${id} stopped on`, e);
    },
  });
  const port = await host.start();
  return { id, engine, host, port, sms: new Map(), dir: options.dir };
}

/** Stops the host and closes the engine. */
export async function stopNode(n: TestNode): Promise<void> {
  await n.host.stop();
  await n.engine.close();
}

/** Tells every node where every other node listens. */
export function connect(nodes: readonly TestNode[]): void {
  for (const a of nodes) for (const b of nodes) if (a.id !== b.id) a.host.transport.setPeer(b.id, `127.0.0.1:${b.port}`);
}

/** Hosts group `groupId` on `node` with a list state machine loaded from the node's engine. */
export async function addGroup(node: TestNode, groupId: number, peers: readonly number[], campaign = false): Promise<GroupHandle> {
  const sm = await ListStateMachine.open(node.engine, groupId);
  node.sms.set(groupId, sm);
  return await node.host.createGroup(groupId, { peers, stateMachine: sm, campaign });
}

/** A temporary directory, removed by the returned cleanup. */
export async function tempDir(prefix: string): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `keyspan-host-${prefix}-`));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

/** Polls `cond` every few ms until it holds; throws `what` after `timeoutMs`. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The node leading `groupId` with every other given node agreeing, if any. */
export function leaderOf(nodes: readonly TestNode[], groupId: number): TestNode | undefined {
  const live = nodes.filter((n) => n.host.groupIds().includes(groupId));
  const leader = live.find((n) => n.host.handle(groupId).status().role === 'leader');
  if (leader === undefined) return undefined;
  const term = leader.host.handle(groupId).status().term;
  for (const n of live) {
    const st = n.host.handle(groupId).status();
    if (st.lead !== leader.id || st.term !== term) return undefined;
  }
  return leader;
}

/** Waits until every group in `groupIds` has a leader all `nodes` agree on. */
export async function waitLeaders(nodes: readonly TestNode[], groupIds: readonly number[], timeoutMs = 15_000): Promise<void> {
  await waitFor(() => groupIds.every((g) => leaderOf(nodes, g) !== undefined), `leaders of ${groupIds.length} groups`, timeoutMs);
}

/**
 * Proposes `value` in `groupId` through its current leader, retrying on
 * dropped proposals (leader changes) until every node in `nodes` applied it.
 * `proposedAt` (ms since the epoch) says the caller already proposed it then:
 * the first re-proposal waits a second from there.
 */
export async function write(nodes: readonly TestNode[], groupId: number, value: string, timeoutMs = 15_000, proposedAt = 0): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const applied = nodes.every((n) => n.sms.get(groupId)?.items.includes(value) === true);
    if (applied) return;
    if (Date.now() > deadline) {
      // Each node's raft view of the group, to tell a lost proposal from a stuck group.
      const views = nodes.map((n) => {
        try {
          const st = n.host.handle(groupId).status();
          return `node ${n.id}: ${st.role} term ${st.term} lead ${st.lead} commit ${st.commit} applied ${st.applied} last ${st.lastIndex}`;
        } catch (err) {
          return `node ${n.id}: ${String(err)}`;
        }
      });
      throw new Error(`timed out writing ${value} to group ${groupId} (${views.join('; ')})`);
    }
    // Re-propose after a while: the first attempt may have been lost with a leader change.
    if (Date.now() - proposedAt > 1_000) {
      const leader = leaderOf(nodes, groupId);
      if (leader !== undefined) {
        try {
          leader.host.handle(groupId).propose(cmd(value));
          proposedAt = Date.now();
        } catch {
          // no leader right now: retry
        }
      }
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}
