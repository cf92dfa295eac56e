/**
 * Progress: the leader's view of one follower's log, and the flow-control
 * state machine that decides what to send it.
 *
 * - probe: we don't know where the follower's log diverges; send one append
 *   per heartbeat interval and wait for the answer.
 * - replicate: the follower accepted our appends; pipeline up to the
 *   inflights window, optimistically advancing `next`.
 * - snapshot: the entries the follower needs are compacted; a snapshot is on
 *   its way and nothing else is sent until reportSnapshot or an ack.
 */
import { Inflights } from './inflights.js';
import { invariant } from './errors.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  /** Highest index known to be replicated on the follower. */
  match: number;
  /** Next index to send. */
  next: number;
  state: ProgressState = 'probe';
  /** Index of the snapshot in flight (snapshot state). */
  pendingSnapshot = 0;
  /** Heard from recently (reset each check-quorum interval). */
  recentActive: boolean;
  /** In probe: a probe is outstanding; in replicate: the window is full. */
  msgAppFlowPaused = false;
  inflights: Inflights;
  isLearner: boolean;
  /**
   * Lease-based reads: the leader's clock stamp (Raft.clock at send) of the newest heartbeat
   * this follower acknowledged in the current term; 0 = none. Only acknowledged stamps count,
   * so a lost, delayed or duplicated message can only make the lease shorter.
   */
  leaseAckStamp = 0;

  constructor(opts: { match: number; next: number; maxInflight: number; isLearner: boolean; recentActive: boolean }) {
    this.match = opts.match;
    this.next = opts.next;
    this.inflights = new Inflights(opts.maxInflight);
    this.isLearner = opts.isLearner;
    this.recentActive = opts.recentActive;
  }

  /** A shallow copy (shares nothing mutable except the inflights, which the old copy stops using). */
  clone(): Progress {
    const p = new Progress({
      match: this.match, next: this.next, maxInflight: this.inflights.size,
      isLearner: this.isLearner, recentActive: this.recentActive,
    });
    p.state = this.state;
    p.pendingSnapshot = this.pendingSnapshot;
    p.msgAppFlowPaused = this.msgAppFlowPaused;
    p.inflights = this.inflights;
    p.leaseAckStamp = this.leaseAckStamp;
    return p;
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      // The snapshot may have been installed: don't re-send what it covers.
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
    this.next = snapshotIndex + 1;
  }

  /** Records that an append of `entries` entries (`bytes` bytes) starting at `next` was sent. */
  sentEntries(entries: number, bytes: number): void {
    switch (this.state) {
      case 'replicate':
        if (entries > 0) {
          const last = this.next + entries - 1;
          this.next = last + 1; // optimistic: assume it will be accepted
          this.inflights.add(last, bytes);
        }
        this.msgAppFlowPaused = this.inflights.full();
        return;
      case 'probe':
        // One probe at a time: wait for its answer (or a heartbeat response).
        this.msgAppFlowPaused = true;
        return;
      case 'snapshot':
        invariant(false, 'sending entries to a follower in snapshot state');
    }
  }

  /** The follower acknowledged `n`; returns whether that is news. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.msgAppFlowPaused = false;
    }
    if (this.next < n + 1) this.next = n + 1;
    return updated;
  }

  /**
   * The follower rejected an append at `rejected`; `matchHint` is the
   * highest index that may match. Returns false if the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      // Stale if we already know the follower has `rejected`.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // Probe: only the answer to the outstanding probe counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    invariant(this.next >= 1, 'progress.next below 1');
    this.msgAppFlowPaused = false;
    return true;
  }

  /** Must the leader hold back appends to this follower? */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
      case 'replicate':
        return this.msgAppFlowPaused;
      case 'snapshot':
        return true;
    }
  }
}
