/**
 * The proposal window is released per applied entry, not per Ready. A
 * state machine answers each proposer as its entry applies; a Ready can
 * carry a whole window of committed entries, so if the window waited for
 * the whole batch, the answered proposers (one request in flight each, as
 * etcd benchmark clients) would be refused with TooManyRequestsError while
 * the rest of the batch is still applying.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Snapshot } from '../../../src/group/raft/index.js';
import {
  ManualTicker,
  TooManyRequestsError,
  type AppliedEntry,
  type GroupStateMachine,
  type StateMachineSnapshot,
} from '../../../src/group/host/index.js';
import { cmd, startNode, stopNode, waitFor } from './helpers.js';

const dec = new TextDecoder();

/** Applies one data entry per `step()` call; reports progress through onApplied. */
class GatedStateMachine implements GroupStateMachine {
  applied = 0;
  items: string[] = [];
  private gates: (() => void)[] = [];
  private open = false;

  /** A data entry is waiting for step(). */
  get waiting(): boolean {
    return this.gates.length > 0;
  }

  /** Stops gating (and lets a waiting entry through), so the host can stop. */
  openGates(): void {
    this.open = true;
    for (const g of this.gates.splice(0)) g();
  }

  appliedIndex(): number {
    return this.applied;
  }

  step(): void {
    this.gates.shift()?.();
  }

  async applyEntries(entries: readonly AppliedEntry[], onApplied?: (index: number) => void): Promise<void> {
    for (const { entry } of entries) {
      if (entry.type === 'normal' && entry.data.byteLength > 0) {
        if (!this.open) await new Promise<void>((resolve) => this.gates.push(resolve));
        this.items.push(dec.decode(entry.data));
      }
      this.applied = entry.index;
      onApplied?.(entry.index);
    }
  }

  async buildSnapshot(): Promise<StateMachineSnapshot> {
    return { index: this.applied, data: new Uint8Array() };
  }

  async installSnapshot(snapshot: Snapshot): Promise<void> {
    this.applied = snapshot.meta.index;
  }
}

function tryPropose(propose: () => void): boolean {
  try {
    propose();
    return true;
  } catch (e) {
    assert.ok(e instanceof TooManyRequestsError);
    return false;
  }
}

describe('proposal window release', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('frees a slot as soon as an entry of a long batch is applied', async () => {
    const WINDOW = 4;
    const node = await startNode(1, { ticker: new ManualTicker(), limits: { proposalsPendingMax: WINDOW } });
    cleanups.push(() => stopNode(node));
    const sm = new GatedStateMachine();
    cleanups.push(async () => sm.openGates());
    const h = await node.host.createGroup(1, { peers: [1], stateMachine: sm, campaign: true });
    await waitFor(() => h.status().role === 'leader' && h.status().applied === h.status().commit, 'leader, no-op applied');

    for (let i = 0; i < WINDOW; i++) h.propose(cmd(`p${i}`));
    assert.equal(tryPropose(() => h.propose(cmd('over'))), false, 'window full');
    // All four commit in one Ready; the state machine holds at the first.
    await waitFor(() => sm.waiting && h.status().commit === h.status().lastIndex, 'batch committed, apply started');

    // Apply one entry: its slot is free although three entries of the batch are still unapplied.
    sm.step();
    await waitFor(() => sm.items.length === 1 && sm.waiting, 'first entry applied, second waiting');
    assert.equal(h.status().applied < h.status().commit, true, 'raft has not advanced past the batch');
    assert.equal(tryPropose(() => h.propose(cmd('next'))), true, 'a slot was released by the applied entry');
    assert.equal(tryPropose(() => h.propose(cmd('over'))), false, 'still bounded: one slot only');

    // Drain: everything applies and the window empties.
    for (let i = 0; i < WINDOW; i++) {
      await waitFor(() => sm.waiting, `entry ${i + 2} waiting`);
      sm.step();
    }
    await waitFor(() => sm.items.length === WINDOW + 1, 'all applied');
    assert.deepEqual(sm.items, ['p0', 'p1', 'p2', 'p3', 'next']);
    await waitFor(() => tryPropose(() => h.propose(cmd('after'))), 'window reopens');
    await waitFor(() => sm.waiting, 'last entry waiting');
    sm.step();
    await waitFor(() => sm.items.length === WINDOW + 2, 'last applied');
  });
});
