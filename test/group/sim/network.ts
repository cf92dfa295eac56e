/**
 * The simulated network: per-message random delay (hence reordering), loss,
 * duplication, and partitions (a set of cut directed links). It decides the
 * fate of each message; the cluster schedules the deliveries.
 */
import type { NodeId } from './raft.js';
import type { SimRandom } from './random.js';

/** Messages in flight on one directed link before the sender's queue is full and drops. */
export const LINK_INFLIGHT_MAX = 256;
/** Copies of one message the network may deliver (1 + duplicates). */
export const MESSAGE_COPIES_MAX = 2;

/** The network's current fault levels (changed by the fault schedule). */
export interface NetworkConditions {
  /** Probability that a message is lost. */
  lossRate: number;
  /** Probability that a message is delivered twice. */
  duplicateRate: number;
  delayMsMin: number;
  delayMsMax: number;
  /** Probability that a message takes the slow path (delayMsSlow more). */
  slowRate: number;
  delayMsSlow: number;
}

/** A well-behaved network: what the liveness phase runs on. */
export const NETWORK_CALM: NetworkConditions = {
  lossRate: 0,
  duplicateRate: 0,
  delayMsMin: 1,
  delayMsMax: 5,
  slowRate: 0,
  delayMsSlow: 0,
};

/** Why a message was not delivered (for statistics and the trace). */
export type DropReason = 'partition' | 'loss' | 'queueFull' | 'down';

/** Decides delivery delays and keeps per-link in-flight counts bounded. */
export class Network {
  conditions: NetworkConditions = { ...NETWORK_CALM };
  private readonly cut = new Set<string>();
  private readonly inflight = new Map<string, number>();
  /** Counters by drop reason, for the run summary. */
  readonly drops: Record<DropReason, number> = { partition: 0, loss: 0, queueFull: 0, down: 0 };
  duplicates = 0;

  constructor(private readonly random: SimRandom) {}

  /** Cuts the directed link from → to (a one-way partition). */
  cutLink(from: NodeId, to: NodeId): void {
    if (from !== to) this.cut.add(linkKey(from, to));
  }

  /** Cuts both directions between every node of `a` and every node of `b`. */
  partition(a: readonly NodeId[], b: readonly NodeId[]): void {
    for (const x of a) {
      for (const y of b) {
        this.cutLink(x, y);
        this.cutLink(y, x);
      }
    }
  }

  /** Cuts every link into and out of `id`. */
  isolate(id: NodeId, all: readonly NodeId[]): void {
    this.partition([id], all);
  }

  /** Restores every link. */
  heal(): void {
    this.cut.clear();
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.cut.has(linkKey(from, to));
  }

  /** Number of cut directed links (for the trace). */
  get cutLinkCount(): number {
    return this.cut.size;
  }

  /**
   * Decides the fate of a message sent now: the delays (ms from now) of each
   * copy to deliver, or a drop reason. The caller must call `delivered` once
   * per returned copy when it arrives (or is discarded).
   */
  send(from: NodeId, to: NodeId): number[] | DropReason {
    const key = linkKey(from, to);
    if (this.cut.has(key)) return this.drop('partition');
    const c = this.conditions;
    if (this.random.chance(c.lossRate)) return this.drop('loss');
    const copies = this.random.chance(c.duplicateRate) ? MESSAGE_COPIES_MAX : 1;
    const count = this.inflight.get(key) ?? 0;
    if (count + copies > LINK_INFLIGHT_MAX) return this.drop('queueFull');
    this.inflight.set(key, count + copies);
    if (copies > 1) this.duplicates++;
    const delays: number[] = [];
    for (let i = 0; i < copies; i++) {
      let delay = this.random.range(c.delayMsMin, c.delayMsMax);
      if (this.random.chance(c.slowRate)) delay += this.random.range(1, c.delayMsSlow);
      delays.push(delay);
    }
    return delays;
  }

  /**
   * Called when a copy reaches its destination. Returns false if the link
   * was cut while the message was in flight (then it is lost).
   */
  delivered(from: NodeId, to: NodeId): boolean {
    const key = linkKey(from, to);
    const count = this.inflight.get(key) ?? 0;
    if (count <= 1) this.inflight.delete(key);
    else this.inflight.set(key, count - 1);
    if (this.cut.has(key)) {
      this.drops.partition++;
      return false;
    }
    return true;
  }

  private drop(reason: DropReason): DropReason {
    this.drops[reason]++;
    return reason;
  }
}

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}>${to}`;
}
