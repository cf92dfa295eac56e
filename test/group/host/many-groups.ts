/**
 * Shared by the many-groups host tests (at-once.test.ts, burst.test.ts):
 * three hosts in this process over gRPC on loopback with every group created
 * at once, a state machine that only counts (cheap to poll over thousands of
 * groups), and a bounded poll.
 */
import type { SoftState } from '../../../src/group/raft/index.js';
import { LogStore } from '../../../src/group/log-store/index.js';
import { GrpcTransport } from '../../../src/group/transport/index.js';
import { IntervalTicker, MultiRaftHost, type AppliedEntry, type GroupStateMachine, type StateMachineSnapshot } from '../../../src/group/host/index.js';
import { MemoryEngine } from '../../../src/storage/index.js';

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

/** How the three hosts are bounded. */
export interface ManyGroupsOptions {
  readonly groups: number;
  readonly peerQueueMessages: number;
  readonly electionsInFlight: number;
  readonly tickMs: number;
}

/**
 * Starts hosts 1..3 (memory log stores), connects them, and creates groups
 * 1..`groups` on every host at once (replica `g % 3 === id % 3` campaigns).
 * `sms[host index][group]` is each replica's state machine.
 */
export async function startManyGroups(o: ManyGroupsOptions): Promise<{ hosts: MultiRaftHost[]; sms: CountingStateMachine[][] }> {
  const hosts: MultiRaftHost[] = [];
  const sms: CountingStateMachine[][] = [[], [], []];
  const ports: number[] = [];
  for (let id = 1; id <= 3; id++) {
    const host = new MultiRaftHost({
      nodeId: id,
      logStore: await LogStore.open(new MemoryEngine()),
      transport: (handlers) =>
        new GrpcTransport({ nodeId: id, listenAddress: '127.0.0.1:0', handlers, limits: { peerQueueMessagesMax: o.peerQueueMessages } }),
      ticker: new IntervalTicker(o.tickMs),
      limits: { electionsInFlightMax: o.electionsInFlight },
    });
    ports.push(await host.start());
    hosts.push(host);
  }
  for (const h of hosts) for (let id = 1; id <= 3; id++) if (id !== h.nodeId) h.transport.setPeer(id, `127.0.0.1:${ports[id - 1]}`);
  for (let g = 1; g <= o.groups; g++) {
    for (const [i, h] of hosts.entries()) {
      const sm = new CountingStateMachine();
      sms[i]![g] = sm;
      await h.createGroup(g, { peers: [1, 2, 3], stateMachine: sm, campaign: g % 3 === h.nodeId % 3 });
    }
  }
  return { hosts, sms };
}
