/**
 * Fault injection for transport tests and the multi-process fault suite:
 * drop, delay or partition traffic between chosen node ids, one-way or both.
 *
 * `NetworkFaults` is the plan (cut links, loss rate, delay range) and makes
 * every decision from an injected `RandomSource`, so a run is reproducible
 * from its seed given the same sequence of sends. Several `FaultyTransport`s
 * in one process may share one plan; in separate processes each has its own.
 *
 * `FaultyTransport` wraps a `GrpcTransport`:
 * - send path: a message on a cut link or picked for loss is dropped; one
 *   picked for delay is handed to the real transport later (so delayed
 *   messages may overtake each other, as on a real network); a dropped 'snap'
 *   message is reported to the host as a failed snapshot, as the real
 *   transport would, so raft never waits for it;
 * - receive path: messages arriving over a cut link are discarded, so a
 *   process can isolate itself even from peers that run no fault plan.
 */
import type { Message, NodeId, RandomSource } from '../raft/types.js';
import type { Transport, TransportHandlers, TransportOptions } from './transport.js';
import { GrpcTransport } from './transport.js';
import { DelegatingTransport } from './delegating.js';

/** Resolution of `dropRate` (probabilities are drawn as integers out of this). */
const PROBABILITY_SCALE = 1_000_000;
/** Largest injectable delay: keeps a mistyped value from stalling a test for hours. */
export const FAULT_DELAY_MS_MAX = 60_000;
/** Messages held back by delay at once; more are dropped (the delay queue is bounded too). */
export const FAULT_DELAYED_MESSAGES_MAX = 100_000;

/** What happens to one message. */
export type FaultDecision =
  | { readonly fate: 'deliver'; readonly delayMs: number }
  | { readonly fate: 'drop'; readonly reason: 'partition' | 'loss' };

/** Counters of what the fault plan did. */
export interface FaultStats {
  droppedPartition: number;
  droppedLoss: number;
  delayed: number;
  /** Incoming messages discarded on a cut link (receive path). */
  droppedOnReceive: number;
}

/** Options of `NetworkFaults.partition`. */
export interface PartitionOptions {
  /** Cut only the direction from `a` to `b`. */
  readonly oneWay?: boolean;
}

/** A fault plan: which directed links are cut, and the loss and delay of the others. */
export class NetworkFaults {
  /** Probability in [0, 1] that a message on an uncut link is lost. */
  dropRate = 0;
  /** Delay range of a delivered message, in ms (both 0: no delay). */
  delayMsMin = 0;
  delayMsMax = 0;
  readonly stats: FaultStats = { droppedPartition: 0, droppedLoss: 0, delayed: 0, droppedOnReceive: 0 };
  private readonly cut = new Set<string>();

  constructor(private readonly random: RandomSource) {}

  /** Cuts every link from a node of `a` to a node of `b`, and back unless `oneWay`. */
  partition(a: NodeId | readonly NodeId[], b: NodeId | readonly NodeId[], options: PartitionOptions = {}): void {
    const as = typeof a === 'number' ? [a] : a;
    const bs = typeof b === 'number' ? [b] : b;
    for (const x of as) {
      for (const y of bs) {
        if (x === y) continue;
        this.cut.add(linkKey(x, y));
        if (options.oneWay !== true) this.cut.add(linkKey(y, x));
      }
    }
  }

  /** Cuts `node` off from everyone, both ways. */
  isolate(node: NodeId, others: readonly NodeId[]): void {
    this.partition(node, others);
  }

  /** Restores every link and clears loss and delay: a calm network again. */
  heal(): void {
    this.cut.clear();
    this.dropRate = 0;
    this.delayMsMin = 0;
    this.delayMsMax = 0;
  }

  /** Is the directed link from → to cut? */
  isCut(from: NodeId, to: NodeId): boolean {
    return this.cut.has(linkKey(from, to));
  }

  /** Decides the fate of one message from → to (consumes randomness only when loss or delay is on). */
  decide(from: NodeId, to: NodeId): FaultDecision {
    if (this.isCut(from, to)) {
      this.stats.droppedPartition++;
      return { fate: 'drop', reason: 'partition' };
    }
    if (this.dropRate > 0 && this.random.intn(PROBABILITY_SCALE) < this.dropRate * PROBABILITY_SCALE) {
      this.stats.droppedLoss++;
      return { fate: 'drop', reason: 'loss' };
    }
    const lo = clampDelay(this.delayMsMin);
    const hi = Math.max(lo, clampDelay(this.delayMsMax));
    if (hi === 0) return { fate: 'deliver', delayMs: 0 };
    const delayMs = lo + this.random.intn(hi - lo + 1);
    if (delayMs > 0) this.stats.delayed++;
    return { fate: 'deliver', delayMs };
  }
}

function clampDelay(ms: number): number {
  return Math.min(FAULT_DELAY_MS_MAX, Math.max(0, Math.floor(ms)));
}

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}>${to}`;
}

/** A `GrpcTransport` whose traffic goes through a `NetworkFaults` plan. */
export class FaultyTransport extends DelegatingTransport {
  private readonly handlers: TransportHandlers;
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(
    options: TransportOptions,
    readonly faults: NetworkFaults,
  ) {
    super(new GrpcTransport({ ...options, handlers: admittedHandlers(options.nodeId, options.handlers, faults) }));
    this.handlers = options.handlers;
  }

  override send(toNode: NodeId, groupId: number, msg: Message): void {
    if (this.closed) {
      this.inner.send(toNode, groupId, msg); // counted there as dropped after close
      return;
    }
    const decision = this.faults.decide(this.nodeId, toNode);
    if (decision.fate === 'drop') {
      if (msg.type === 'snap') {
        setImmediate(() => {
          if (!this.closed) this.handlers.onSnapshotStatus?.(toNode, groupId, msg, false);
        });
      }
      return;
    }
    if (decision.delayMs === 0) {
      this.inner.send(toNode, groupId, msg);
      return;
    }
    if (this.timers.size >= FAULT_DELAYED_MESSAGES_MAX) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.inner.send(toNode, groupId, msg);
    }, decision.delayMs);
    this.timers.add(timer);
  }

  override async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await this.inner.close();
  }
}

/** `handlers` with traffic from a node cut off from `local` dropped on receipt. */
function admittedHandlers(local: NodeId, h: TransportHandlers, faults: NetworkFaults): TransportHandlers {
  const admit = (fromNode: NodeId): boolean => {
    if (!faults.isCut(fromNode, local)) return true;
    faults.stats.droppedOnReceive++;
    return false;
  };
  return {
    ...h,
    onMessage: (groupId, msg, fromNode) => {
      if (admit(fromNode)) h.onMessage(groupId, msg, fromNode);
    },
    onUnknownGroup: (groupId, msg, fromNode) => {
      if (admit(fromNode)) h.onUnknownGroup?.(groupId, msg, fromNode);
    },
  };
}
