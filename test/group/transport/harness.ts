/**
 * Shared helpers of the transport tests: message builders, a seeded random
 * source, transports on 127.0.0.1 ephemeral ports that record what they
 * receive, and a bounded wait.
 */
import type { Entry, Message, MessageType, NodeId, RandomSource, Snapshot } from '../../../src/group/raft/types.js';
import {
  FaultyTransport,
  GrpcTransport,
  type NetworkFaults,
  type Transport,
  type TransportHandlers,
  type TransportLimits,
} from '../../../src/group/transport/index.js';

/** A raft message with zero values except `overrides`. */
export function msg(type: MessageType, overrides: Partial<Message> = {}): Message {
  return {
    type,
    to: 2,
    from: 1,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    ...overrides,
  };
}

/** A normal entry carrying `data`. */
export function entry(term: number, index: number, data: number[] = []): Entry {
  return { term, index, type: 'normal', data: new Uint8Array(data) };
}

/** A snapshot of `dataBytes` pseudo-random bytes. */
export function snapshot(index: number, dataBytes: number): Snapshot {
  const data = new Uint8Array(dataBytes);
  let x = 0x9e3779b9;
  for (let i = 0; i < dataBytes; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data[i] = x & 0xff;
  }
  return {
    meta: {
      index,
      term: 3,
      confState: { voters: [1, 2, 3], learners: [4], votersOutgoing: [], learnersNext: [], autoLeave: false },
    },
    data,
  };
}

/** mulberry32: a small seeded generator; the seed comes from KEYSPAN_SEED when set. */
export class SeededRandom implements RandomSource {
  private state: number;
  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  float(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  }
  intn(n: number): number {
    return Math.floor(this.float() * n);
  }
}

/** The seed of a randomized test: KEYSPAN_SEED or a fixed default (printed by the caller). */
export function testSeed(fallback: number): number {
  const env = process.env['KEYSPAN_SEED'];
  return env === undefined ? fallback : Number(env);
}

/** One received message. */
export interface Received {
  readonly groupId: number;
  readonly msg: Message;
  readonly fromNode: NodeId;
  readonly atMs: number;
}

/** What a test node saw. */
export interface Recorder {
  readonly received: Received[];
  readonly unknown: Received[];
  readonly unreachable: NodeId[];
  readonly snapshotStatus: Array<{ toNode: NodeId; groupId: number; ok: boolean; atMs: number }>;
  /** Peers reported by onBulkRoom (connected, or drained after a full stream). */
  readonly bulkRoom: NodeId[];
}

/** A transport under test plus its recorder. */
export interface TestNode {
  readonly transport: Transport;
  readonly rec: Recorder;
  readonly address: string;
}

/** Options of `startNode`. */
export interface StartOptions {
  readonly port?: number;
  readonly limits?: Partial<TransportLimits>;
  readonly knownGroups?: (groupId: number) => boolean;
  readonly faults?: NetworkFaults;
}

/** Transports started by the test file, closed by `closeAll()` in `after()`. */
const started: Transport[] = [];

/** Starts a transport for `nodeId` on 127.0.0.1 (an ephemeral port unless `port`). */
export async function startNode(nodeId: NodeId, options: StartOptions = {}): Promise<TestNode> {
  const rec: Recorder = { received: [], unknown: [], unreachable: [], snapshotStatus: [], bulkRoom: [] };
  const handlers: TransportHandlers = {
    onMessage: (groupId, m, fromNode) => rec.received.push({ groupId, msg: m, fromNode, atMs: performance.now() }),
    onUnknownGroup: (groupId, m, fromNode) => rec.unknown.push({ groupId, msg: m, fromNode, atMs: performance.now() }),
    onUnreachable: (id) => rec.unreachable.push(id),
    onSnapshotStatus: (toNode, groupId, _m, ok) => rec.snapshotStatus.push({ toNode, groupId, ok, atMs: performance.now() }),
    onBulkRoom: (id) => rec.bulkRoom.push(id),
    ...(options.knownGroups === undefined ? {} : { isKnownGroup: options.knownGroups }),
  };
  const transportOptions = {
    nodeId,
    listenAddress: `127.0.0.1:${options.port ?? 0}`,
    handlers,
    // Short back-off keeps the reconnect tests quick.
    limits: { backoffBaseMs: 20, backoffMaxMs: 200, connectTimeoutMs: 1000, ...options.limits },
  };
  const transport =
    options.faults === undefined
      ? new GrpcTransport(transportOptions)
      : new FaultyTransport(transportOptions, options.faults);
  started.push(transport);
  const port = await transport.start();
  return { transport, rec, address: `127.0.0.1:${port}` };
}

/** Makes every node know every other node's address. */
export function connectAll(nodes: readonly TestNode[]): void {
  for (const a of nodes) {
    for (const b of nodes) {
      if (a !== b) a.transport.setPeer(b.transport.nodeId, b.address);
    }
  }
}

/** Closes every transport this file started. */
export async function closeAll(): Promise<void> {
  await Promise.all(started.splice(0).map((t) => t.close()));
}

/** Polls `cond` every few ms until it holds; fails after `timeoutMs`. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const POLL_MS = 5;
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(POLL_MS);
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
