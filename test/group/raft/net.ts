/**
 * A tiny in-test network for raft unit tests: N RawNodes over MemoryStorage,
 * messages delivered synchronously until the cluster is quiet. Not the
 * simulator (test/group/sim/): no delays, no crashes; just enough to put the
 * core through scripted scenarios.
 */
import {
  RawNode, MemoryStorage, decodeConfChange,
  type ConfState, type Entry, type Message, type NodeId, type RaftConfig, type RandomSource, type ReadState,
} from '../../../src/group/raft/index.js';

/** A deterministic RandomSource (LCG), so tests replay exactly. */
export class SeqRandom implements RandomSource {
  private s: number;
  constructor(seed = 1) {
    this.s = seed >>> 0;
  }
  intn(n: number): number {
    this.s = (Math.imul(this.s, 1664525) + 1013904223) >>> 0;
    return this.s % n;
  }
}

/** A RandomSource that always returns 0 (election timeout == electionTick exactly). */
export const ZERO_RANDOM: RandomSource = { intn: () => 0 };

export interface Peer {
  id: NodeId;
  node: RawNode;
  storage: MemoryStorage;
  /** Normal entries applied, in order. */
  applied: Entry[];
  readStates: ReadState[];
  confState: ConfState | undefined;
  /** Every ConfState returned by applyConfChange, in order. */
  confStates: ConfState[];
}

export type ConfigOverrides = Partial<Omit<RaftConfig, 'id'>>;

export class Net {
  readonly peers = new Map<NodeId, Peer>();
  private readonly overrides = new Map<NodeId, ConfigOverrides>();
  /** Pairs "a->b" whose messages are dropped. */
  private readonly cut = new Set<string>();
  /** Extra filter: return false to drop a message. */
  filter: ((m: Message) => boolean) | undefined = undefined;
  /** Rewrites a message before delivery (after filter). */
  transform: ((m: Message) => Message) | undefined = undefined;
  /** Every message delivered, for assertions. */
  readonly log: Message[] = [];
  /** Messages held back by `hold` instead of delivered. */
  held: Message[] = [];
  hold: ((m: Message) => boolean) | undefined = undefined;

  constructor(voters: readonly NodeId[], overrides: ConfigOverrides = {}, learners: readonly NodeId[] = []) {
    for (const id of [...voters, ...learners]) this.add(id, MemoryStorage.withVoters(voters, learners), overrides);
  }

  /** Adds a node with the given storage (e.g. an empty one for a node joining later). */
  add(id: NodeId, storage: MemoryStorage, overrides: ConfigOverrides = {}): Peer {
    this.overrides.set(id, overrides);
    const cfg: RaftConfig = { id, electionTick: 10, heartbeatTick: 1, random: new SeqRandom(id), ...overrides };
    const p: Peer = { id, node: new RawNode(cfg, storage), storage, applied: [], readStates: [], confState: undefined, confStates: [] };
    this.peers.set(id, p);
    return p;
  }

  /** Crash and restart: a new RawNode over the same (persisted) storage; the state machine is rebuilt. */
  restart(id: NodeId): Peer {
    const old = this.peer(id);
    return this.add(id, old.storage, this.overrides.get(id) ?? {});
  }

  peer(id: NodeId): Peer {
    const p = this.peers.get(id);
    if (p === undefined) throw new Error(`no peer ${id}`);
    return p;
  }

  node(id: NodeId): RawNode {
    return this.peer(id).node;
  }

  /** Drops messages in both directions between a and b. */
  cutLink(a: NodeId, b: NodeId): void {
    this.cut.add(`${a}->${b}`);
    this.cut.add(`${b}->${a}`);
  }

  /** Isolates a node from every other node. */
  isolate(id: NodeId): void {
    for (const other of this.peers.keys()) if (other !== id) this.cutLink(id, other);
  }

  heal(): void {
    this.cut.clear();
  }

  /** Processes one Ready of one peer (persist, apply), returning its messages. */
  private handleReady(p: Peer): Message[] {
    const rd = p.node.ready();
    if (rd.snapshot !== undefined) {
      p.storage.applySnapshot(rd.snapshot);
      p.confState = rd.snapshot.meta.confState;
    }
    p.storage.append(rd.entries);
    if (rd.hardState !== undefined) p.storage.setHardState(rd.hardState);
    for (const e of rd.committedEntries) {
      if (e.type === 'confChange') {
        p.confState = p.node.applyConfChange(decodeConfChange(e.data));
        p.confStates.push(p.confState);
      }
      else if (e.data.byteLength > 0) p.applied.push(e);
    }
    p.readStates.push(...rd.readStates);
    p.node.advance(rd);
    return [...rd.earlyMessages, ...rd.messages];
  }

  /** Delivers one message (unless cut or filtered). */
  deliver(m: Message): void {
    if (this.cut.has(`${m.from}->${m.to}`)) return;
    if (this.filter !== undefined && !this.filter(m)) return;
    if (this.transform !== undefined) m = this.transform(m);
    const target = this.peers.get(m.to);
    if (target === undefined) return;
    this.log.push(m);
    target.node.step(m);
    if (m.type === 'snap') this.peers.get(m.from)?.node.reportSnapshot(m.to, true);
  }

  /** Runs Readys and delivers messages until nothing happens. Returns the number of messages delivered. */
  stabilize(maxRounds = 10_000): number {
    let delivered = 0;
    for (let round = 0; round < maxRounds; round++) {
      const msgs: Message[] = [];
      for (const p of this.peers.values()) {
        while (p.node.hasReady()) msgs.push(...this.handleReady(p));
      }
      if (msgs.length === 0) return delivered;
      for (const m of msgs) {
        if (this.hold !== undefined && this.hold(m)) {
          this.held.push(m);
          continue;
        }
        this.deliver(m);
        delivered++;
      }
    }
    throw new Error('network did not stabilize');
  }

  /** Collects the pending Readys' messages without delivering them. */
  drain(id: NodeId): Message[] {
    const p = this.peer(id);
    const out: Message[] = [];
    while (p.node.hasReady()) out.push(...this.handleReady(p));
    return out;
  }

  /** Ticks every node (or the given ones) n times, stabilizing after each tick. */
  tick(n: number, ids?: readonly NodeId[]): void {
    for (let i = 0; i < n; i++) {
      for (const id of ids ?? [...this.peers.keys()]) this.node(id).tick();
      this.stabilize();
    }
  }

  /** Elects `id` by campaigning and stabilizing. */
  elect(id: NodeId): void {
    this.node(id).campaign();
    this.stabilize();
  }

  leaderIds(): NodeId[] {
    return [...this.peers.values()].filter((p) => p.node.status().role === 'leader').map((p) => p.id);
  }

  /** Proposes a string from `id` and stabilizes. */
  propose(id: NodeId, s: string): void {
    this.node(id).propose(new TextEncoder().encode(s));
    this.stabilize();
  }
}

/** The data of applied entries as strings. */
export function appliedStrings(p: Peer): string[] {
  return p.applied.map((e) => new TextDecoder().decode(e.data));
}

export function bytes(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}
