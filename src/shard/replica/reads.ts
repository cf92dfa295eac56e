/**
 * Linearizable reads through ReadIndex (DESIGN property 3): ask raft for a
 * read point, wait for raft to confirm it (onReadStates), wait until this
 * replica has applied up to it, then read the local MVCC state. Works on a
 * follower too (the raft core forwards the request to the leader). On a
 * leader with a valid lease the read point comes at once from
 * `GroupHandle.leaseReadIndex()` and only the apply wait is tracked here;
 * forwarded reads are answered from the lease inside the raft core.
 */

/** Default bound on reads waiting for a read index or for apply. */
export const READS_PENDING_MAX = 4096;

interface IndexWaiter {
  resolve(index: number): void;
  reject(err: Error): void;
}

interface ApplyWaiter {
  readonly index: number;
  resolve(): void;
  reject(err: Error): void;
}

/** The reads of one replica that wait for a read index or for apply. */
export class ReadTracker {
  private readonly byCtx = new Map<string, IndexWaiter>();
  /** Ascending by index. */
  private applyWaiters: ApplyWaiter[] = [];

  constructor(readonly pendingMax: number = READS_PENDING_MAX) {}

  /** Reads waiting for a read index or for apply. */
  get pending(): number {
    return this.byCtx.size + this.applyWaiters.length;
  }

  /** Whether another read may wait. */
  hasRoom(): boolean {
    return this.pending < this.pendingMax;
  }

  /** A promise of the read index for `ctx` (answered by onReadStates). */
  waitIndex(ctx: Uint8Array): Promise<number> {
    return new Promise((resolve, reject) => this.byCtx.set(ctxKey(ctx), { resolve, reject }));
  }

  /** Drops the waiter of `ctx` (the request was refused or aborted). */
  cancelIndex(ctx: Uint8Array, err: Error): void {
    const key = ctxKey(ctx);
    this.byCtx.get(key)?.reject(err);
    this.byCtx.delete(key);
  }

  /** Confirmed read points from raft. Unknown contexts (another incarnation's) are ignored. */
  onReadStates(states: readonly { readonly index: number; readonly requestCtx: Uint8Array }[]): void {
    for (const rs of states) {
      const key = ctxKey(rs.requestCtx);
      const w = this.byCtx.get(key);
      if (w === undefined) continue;
      this.byCtx.delete(key);
      w.resolve(rs.index);
    }
  }

  /** Resolves once `applied >= index`. */
  waitApplied(index: number, applied: number): Promise<void> {
    if (applied >= index) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = { index, resolve, reject };
      let i = this.applyWaiters.length;
      while (i > 0 && this.applyWaiters[i - 1]!.index > index) i--;
      this.applyWaiters.splice(i, 0, w);
    });
  }

  /** The replica applied up to `applied`: release the reads that waited for it. */
  notifyApplied(applied: number): void {
    let n = 0;
    while (n < this.applyWaiters.length && this.applyWaiters[n]!.index <= applied) n++;
    if (n === 0) return;
    const ready = this.applyWaiters.slice(0, n);
    this.applyWaiters = this.applyWaiters.slice(n);
    for (const w of ready) w.resolve();
  }

  /**
   * Fails the reads still waiting for a read index (the leader changed: the
   * request may have been dropped). Reads already holding an index stay:
   * the index is valid whoever leads now.
   */
  failIndexWaiters(err: () => Error): void {
    const waiters = [...this.byCtx.values()];
    this.byCtx.clear();
    for (const w of waiters) w.reject(err());
  }

  /** Fails everything (the replica closes). */
  failAll(err: () => Error): void {
    this.failIndexWaiters(err);
    const waiters = this.applyWaiters;
    this.applyWaiters = [];
    for (const w of waiters) w.reject(err());
  }
}

function ctxKey(ctx: Uint8Array): string {
  return Buffer.from(ctx.buffer, ctx.byteOffset, ctx.byteLength).toString('hex');
}
