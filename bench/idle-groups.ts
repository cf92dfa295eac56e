/**
 * Idle groups at rest: N groups replicated on 3 hosts in one process
 * (memory engines, gRPC on loopback). Elects every group, writes one entry
 * to each, waits until every group is quiesced on every host, then reports
 * CPU use at rest and heap per group.
 *
 *   node --expose-gc --import tsx bench/idle-groups.ts [groups=1000] [tickMs=100] [restSeconds=5]
 */
import { LogStore } from '../src/group/log-store/index.js';
import { GrpcTransport } from '../src/group/transport/index.js';
import { IntervalTicker, MultiRaftHost, type AppliedEntry, type GroupStateMachine } from '../src/group/host/index.js';
import type { Snapshot } from '../src/group/raft/index.js';
import { MemoryEngine } from '../src/storage/index.js';

/** Upper bound on the group count this script accepts (keeps a typo from eating the machine). */
const GROUPS_MAX = 20_000;
/**
 * Per-peer transport queue for this benchmark: every group's votes and appends
 * of one loop turn are queued at once, and the default (8192 messages) is sized
 * for hundreds of groups, not ten thousand; overflowing it drops messages and
 * reports peers unreachable, which slows elections to a crawl.
 */
const PEER_QUEUE_MESSAGES = 200_000;
/** Groups created and elected together before the next wave starts. */
const WAVE_GROUPS = 1000;
/** Give up waiting for elections or quiescence after this long. */
const WAIT_MS_MAX = 300_000;

/** The smallest state machine: it only remembers its applied index. */
class CounterStateMachine implements GroupStateMachine {
  private applied = 0;
  appliedIndex(): number {
    return this.applied;
  }
  async applyEntries(entries: readonly AppliedEntry[]): Promise<void> {
    const last = entries[entries.length - 1];
    if (last !== undefined) this.applied = last.entry.index;
  }
  async buildSnapshot(): Promise<{ index: number; data: Uint8Array }> {
    return { index: this.applied, data: new Uint8Array(0) };
  }
  async installSnapshot(s: Snapshot): Promise<void> {
    this.applied = s.meta.index;
  }
}

/** Polls `cond` (it may be costly over thousands of groups, so every 250 ms), logging progress to stderr. */
async function waitFor(cond: () => boolean, what: () => string): Promise<void> {
  const start = Date.now();
  const deadline = start + WAIT_MS_MAX;
  let lastLog = start;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    if (Date.now() - lastLog > 5_000) {
      lastLog = Date.now();
      const drops = hostsForLog.map((h) => h.transport.stats.messagesDropped).join('/');
      const turns = hostsForLog.map((h) => h.stats.turns).join('/');
      console.error(`... still waiting for ${what()} (${Math.round((lastLog - start) / 1000)} s; drops ${drops}; turns ${turns})`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Hosts whose counters the progress lines print. */
const hostsForLog: MultiRaftHost[] = [];

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

async function main(): Promise<void> {
  const groups = Math.min(GROUPS_MAX, Number(process.argv[2] ?? 1000));
  const tickMs = Number(process.argv[3] ?? 100);
  const restSeconds = Number(process.argv[4] ?? 5);
  const hosts: MultiRaftHost[] = [];
  const ports: number[] = [];
  for (let id = 1; id <= 3; id++) {
    const logStore = await LogStore.open(new MemoryEngine());
    const host = new MultiRaftHost({
      nodeId: id,
      logStore,
      transport: (handlers) =>
        new GrpcTransport({ nodeId: id, listenAddress: '127.0.0.1:0', handlers, limits: { peerQueueMessagesMax: PEER_QUEUE_MESSAGES } }),
      ticker: new IntervalTicker(tickMs),
    });
    ports.push(await host.start());
    hosts.push(host);
    hostsForLog.push(host);
  }
  for (const h of hosts) for (let id = 1; id <= 3; id++) if (id !== h.nodeId) h.transport.setPeer(id, `127.0.0.1:${ports[id - 1]}`);
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const t0 = Date.now();
  const leaderOf = (g: number): MultiRaftHost | undefined => hosts.find((h) => h.handle(g).status().role === 'leader');
  const quiesced = (): number => hosts.reduce((n, h) => n + h.groupIds().filter((g) => h.isQuiesced(g) === true).length, 0);
  // Groups are brought up in waves of WAVE_GROUPS: all three hosts share one thread here, and ten
  // thousand simultaneous elections queue more messages than one turn can move (see docs/host.md).
  for (let first = 1; first <= groups; first += WAVE_GROUPS) {
    const last = Math.min(groups, first + WAVE_GROUPS - 1);
    for (let g = first; g <= last; g++) {
      for (const h of hosts) {
        await h.createGroup(g, { peers: [1, 2, 3], stateMachine: new CounterStateMachine(), campaign: g % 3 === h.nodeId % 3 });
      }
    }
    let next = first;
    await waitFor(() => {
      while (next <= last && leaderOf(next) !== undefined) next++;
      return next > last;
    }, () => `leaders of groups ${first}..${last} (group ${next} next)`);
    for (let g = first; g <= last; g++) leaderOf(g)!.handle(g).propose(new Uint8Array([1]));
    console.error(`groups ${first}..${last} up after ${Date.now() - t0} ms`);
  }
  const tElected = Date.now();
  await waitFor(() => quiesced() === 3 * groups, () => `quiescence (${quiesced()} of ${3 * groups} replicas)`);
  const tQuiesced = Date.now();
  gc();
  const heapAfter = process.memoryUsage().heapUsed;

  const ticks0 = hosts.map((h) => h.stats.groupTicks);
  const hb0 = hosts.map((h) => h.stats.heartbeatsSent);
  const msgs0 = hosts.map((h) => h.transport.stats.messagesSent);
  const cpu0 = process.cpuUsage();
  const wall0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, restSeconds * 1000));
  const cpu = process.cpuUsage(cpu0);
  const wallMs = Number(process.hrtime.bigint() - wall0) / 1e6;
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const report = {
    groups,
    hosts: 3,
    tickMs,
    createAndElectMs: tElected - t0,
    quiesceMs: tQuiesced - tElected,
    restSeconds,
    cpuPercentAtRest: Number(((cpuMs / wallMs) * 100).toFixed(2)),
    groupTicksAtRest: hosts.reduce((n, h, i) => n + h.stats.groupTicks - ticks0[i]!, 0),
    heartbeatsAtRest: hosts.reduce((n, h, i) => n + h.stats.heartbeatsSent - hb0[i]!, 0),
    messagesAtRest: hosts.reduce((n, h, i) => n + h.transport.stats.messagesSent - msgs0[i]!, 0),
    heapBytesPerGroupReplica: Math.round((heapAfter - heapBefore) / (3 * groups)),
    heapBytesPerGroup3Replicas: Math.round((heapAfter - heapBefore) / groups),
    gcExposed: typeof (globalThis as { gc?: unknown }).gc === 'function',
  };
  console.log(JSON.stringify(report, null, 2));
  for (const h of hosts) await h.stop();
}

await main();
