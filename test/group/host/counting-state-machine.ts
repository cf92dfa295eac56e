/**
 * Shared by the many-groups host tests (at-once.test.ts, burst.test.ts): a
 * state machine that only counts, cheap to poll over thousands of groups,
 * and a bounded poll.
 */
import type { SoftState } from '../../../src/group/raft/index.js';
import type { AppliedEntry, GroupStateMachine, StateMachineSnapshot } from '../../../src/group/host/index.js';

/** Applied index, writes applied and role. */
export class CountingStateMachine implements GroupStateMachine {
  applied = 0;
  writes = 0;
  role: SoftState['role'] = 'follower';
  appliedIndex(): number {
    return this.applied;
  }
  async applyEntries(entries: readonly AppliedEntry[]): Promise<void> {
    for (const { entry } of entries) {
      if (entry.type === 'normal' && entry.data.byteLength > 0) this.writes++;
      this.applied = entry.index;
    }
  }
  async buildSnapshot(): Promise<StateMachineSnapshot> {
    return { index: this.applied, data: new Uint8Array(0) };
  }
  async installSnapshot(): Promise<void> {
    throw new Error('no snapshot is expected here');
  }
  onSoftState(soft: SoftState): void {
    this.role = soft.role;
  }
}

/** Polls `cond` every 100 ms until true; throws after `waitMs` naming `what()`. */
export async function waitUntil(cond: () => boolean, what: () => string, waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${waitMs} ms waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
