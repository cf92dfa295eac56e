/**
 * Backpressure: a bounded window of this node's in-flight proposals per
 * group. A proposal enters the window when it is handed to raft and leaves
 * once the group has applied the log position it was given (or could at
 * the earliest have been given, for one forwarded to a remote leader), or
 * when leadership changes (the state machine fails what was pending then).
 * A full window refuses new proposals with TooManyRequestsError instead of
 * letting the raft log, the transport queues and memory grow without bound.
 */
import { TooManyRequestsError } from './errors.js';

/** Default cap on in-flight proposals per group (etcd refuses past ~5000 unapplied entries per member). */
export const PROPOSALS_PENDING_MAX_DEFAULT = 1024;
/** Default cap on payload bytes of in-flight proposals per group. */
export const PROPOSAL_BYTES_PENDING_MAX_DEFAULT = 8 * 1024 * 1024;

/** The bounds of one proposal window. */
export interface ProposalLimits {
  /** Proposals in flight at once. */
  readonly proposalsPendingMax: number;
  /** Payload bytes in flight at once. */
  readonly proposalBytesPendingMax: number;
}

/** One group's window of in-flight proposals, in proposal order. */
export class ProposalWindow {
  /** Parallel FIFOs: the applied index that releases each proposal, and its size. */
  private releaseAt: number[] = [];
  private sizes: number[] = [];
  private head = 0;
  private bytesCount = 0;

  constructor(
    private readonly groupId: number,
    private readonly limits: ProposalLimits,
  ) {}

  /** Proposals in flight. */
  get count(): number {
    return this.releaseAt.length - this.head;
  }

  /** Payload bytes in flight. */
  get bytes(): number {
    return this.bytesCount;
  }

  /** Throws TooManyRequestsError if one more proposal of `size` bytes would pass a bound. */
  check(size: number): void {
    if (this.count >= this.limits.proposalsPendingMax) {
      throw new TooManyRequestsError(this.groupId, `group ${this.groupId}: ${this.count} proposals pending`);
    }
    // A single proposal larger than the byte cap is still admitted into an empty window, so it is never refused forever.
    if (this.count > 0 && this.bytesCount + size > this.limits.proposalBytesPendingMax) {
      throw new TooManyRequestsError(this.groupId, `group ${this.groupId}: ${this.bytesCount} proposal bytes pending`);
    }
  }

  /** Records a proposal raft accepted; it is released once the applied index reaches `releaseAtIndex`. */
  add(size: number, releaseAtIndex: number): void {
    this.releaseAt.push(releaseAtIndex);
    this.sizes.push(size);
    this.bytesCount += size;
  }

  /** Releases every proposal whose position is applied. Positions are non-decreasing, so this pops a prefix. */
  release(applied: number): number {
    let n = 0;
    while (this.head < this.releaseAt.length && this.releaseAt[this.head]! <= applied) {
      this.bytesCount -= this.sizes[this.head]!;
      this.head++;
      n++;
    }
    if (this.head === this.releaseAt.length) this.clear();
    else if (this.head > 1024 && this.head * 2 > this.releaseAt.length) this.compact();
    return n;
  }

  /** Forgets everything (leadership changed: those proposals are failed by the state machine or lost). */
  clear(): number {
    const n = this.count;
    this.releaseAt = [];
    this.sizes = [];
    this.head = 0;
    this.bytesCount = 0;
    return n;
  }

  private compact(): void {
    this.releaseAt = this.releaseAt.slice(this.head);
    this.sizes = this.sizes.slice(this.head);
    this.head = 0;
  }
}
