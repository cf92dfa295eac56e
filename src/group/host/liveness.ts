/**
 * Node liveness for quiesced groups. A quiesced follower hears nothing from
 * its leader, so it cannot time the leader out by itself (CockroachDB
 * solves this with node liveness records). Here each host that has
 * quiesced groups sends one small ping per peer node every
 * `pingIntervalTicks` ticks — per node, not per group, so the cost does not
 * grow with the number of groups — and any message from a node counts as
 * hearing from it. A node not heard from for `timeoutTicks` becomes silent:
 * the host wakes every quiesced group that has it as a member, and those
 * groups fall back to raft's own timeouts (a follower campaigns, a leader
 * with check-quorum steps down).
 *
 * Pings travel as raft 'heartbeat' messages of the reserved group 0, which
 * no real group can use (group ids are positive), so no proto change is needed.
 */
import type { Message, NodeId } from '../raft/index.js';

/** The reserved group id of node-level messages (liveness pings). */
export const LIVENESS_GROUP_ID = 0;

/** Tracks when each peer node was last heard from, in host ticks. */
export class NodeLiveness {
  private readonly lastHeard = new Map<NodeId, number>();
  private readonly silent = new Set<NodeId>();

  constructor(
    readonly pingIntervalTicks: number,
    readonly timeoutTicks: number,
  ) {
    if (pingIntervalTicks < 1 || timeoutTicks <= pingIntervalTicks) {
      throw new RangeError(`liveness: need 1 <= pingIntervalTicks (${pingIntervalTicks}) < timeoutTicks (${timeoutTicks})`);
    }
  }

  /** Something arrived from `node` at `tick`. */
  heard(node: NodeId, tick: number): void {
    this.lastHeard.set(node, tick);
    this.silent.delete(node);
  }

  /** Is it time to ping peers? */
  shouldPing(tick: number): boolean {
    return tick % this.pingIntervalTicks === 0;
  }

  /**
   * The nodes among `nodes` that have just become silent at `tick` (each
   * reported once per silence). A node never heard from gets a grace period
   * starting now.
   */
  newlySilent(nodes: Iterable<NodeId>, tick: number): NodeId[] {
    const out: NodeId[] = [];
    for (const n of nodes) {
      const last = this.lastHeard.get(n);
      if (last === undefined) {
        this.lastHeard.set(n, tick);
        continue;
      }
      if (tick - last > this.timeoutTicks && !this.silent.has(n)) {
        this.silent.add(n);
        out.push(n);
      }
    }
    return out;
  }

  /** Is `node` currently silent? */
  isSilent(node: NodeId): boolean {
    return this.silent.has(node);
  }
}

/** A liveness ping from `from` to `to`. */
export function livenessPing(from: NodeId, to: NodeId): Message {
  return { type: 'heartbeat', to, from, term: 0, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 };
}
