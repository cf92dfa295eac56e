/**
 * Idle groups at rest: N groups replicated on 3 hosts in one process
 * (memory engines, gRPC on loopback). Elects every group, writes one entry
 * to each, waits until every group is quiesced on every host, then reports
 * CPU use at rest and heap per group.
 *
 *   node --expose-gc --import tsx bench/idle-groups.ts [--at-once] [--burst] [--elections-in-flight=N] [groups=1000] [tickMs=100] [restSeconds=5]
 *
 * Default: groups come up in waves of WAVE_GROUPS with a raised per-peer
 * transport queue. `--at-once`: every group is created on every host at
 * once, with the transport's default limits, and the host's own scheduling
 * (bounded election admission, urgent lane for votes and heartbeats) must
 * converge. `--burst`: no cap on writes in flight — once every group of a wave
 * is led, its writes are all proposed in one synchronous pass (one loop turn
 * per host), and the host's flow control must keep the transport's queues
 * from overflowing. `--elections-in-flight` overrides the host's electionsInFlightMax;
 * IDLE_GROUPS_WAIT_MS (environment) bounds each wait (default 300 s).
 */
import { LogStore } from '../src/group/log-store/index.js';
import { DelegatingTransport, GrpcTransport } from '../src/group/transport/index.js';
import { IntervalTicker, MultiRaftHost, type AppliedEntry, type GroupStateMachine } from '../src/group/host/index.js';
import type { Message, NodeId, Snapshot, SoftState } from '../src/group/raft/index.js';
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
/** A write not applied by its leader this long after it was proposed is proposed again (its leader changed). */
const REPROPOSE_MS = 5_000;
/**
 * Writes proposed and not yet applied by their leader, at most: the clients of
 * this benchmark, unless `--burst` (ten thousand writes in one turn: "Starting
 * many groups" in docs/host.md).
 */
const WRITES_IN_FLIGHT = 1000;
/** Give up waiting for elections or quiescence after this long. */
const WAIT_MS_MAX = Number(process.env.IDLE_GROUPS_WAIT_MS ?? 300_000);

/**
 * The smallest state machine: its applied index, the writes it applied, and
 * its replica's role as raft last reported it (cheap for the benchmark to
 * poll over thousands of groups, unlike a raft status).
 */
class CounterStateMachine implements GroupStateMachine {
  private applied = 0;
  writes = 0;
  role: SoftState['role'] = 'follower';
  appliedIndex(): number {
    return this.applied;
  }
  async applyEntries(entries: readonly AppliedEntry[]): Promise<void> {
    for (const { entry } of entries) if (entry.type === 'normal' && entry.data.byteLength > 0) this.writes++;
    const last = entries[entries.length - 1];
    if (last !== undefined) this.applied = last.entry.index;
  }
  onSoftState(soft: SoftState): void {
    this.role = soft.role;
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
      const drops = hostsForLog.map((h) => `${h.transport.stats.messagesDropped} (queue full ${h.transport.stats.drops.queueFull}, peer down ${h.transport.stats.drops.peerDown})`).join('/');
      const held = hostsForLog.map((h) => h.stats.turnsHeldForRoom).join('/');
      const queues = hostsForLog.map((h) => [1, 2, 3].filter((id) => id !== h.nodeId).map((id) => {
        const st = h.transport.peerStatus(id);
        const room = h.transport.bulkRoom(id);
        return `${id}:${st?.state}/${st?.queuedMessages}/${room === undefined ? '-' : room.messages}`;
      }).join(',')).join(' ');
      const turns = hostsForLog.map((h) => h.stats.turns).join('/');
      const unreachable = hostsForLog.map((h) => h.transport.stats.unreachableReports).join('/');
      const readys = hostsForLog.map((h) => h.stats.readys).join('/');
      const turnMs = hostsForLog.map((h) => Math.round(h.stats.turnMsMax)).join('/');
      for (const h of hostsForLog) h.stats.turnMsMax = 0;
      const byType = hostsForLog.map((h) => {
        const t = h.transport as TypeCountingTransport;
        return [...t.sentByType].map(([k, v]) => `${k}=${v}`).join(',');
      }).join(' | ');
      console.error(
        `... still waiting for ${what()} (${Math.round((lastLog - start) / 1000)} s; drops ${drops}; unreachable reports ${unreachable}; turns ${turns}; readys ${readys}; longest turn ms ${turnMs}; turns held for send room ${held}; peer state/queued/room ${queues}; sent by type ${byType})`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Messages handed to the transport, by type (a coalesced heartbeat pack counts once): what fills a queue. */
class TypeCountingTransport extends DelegatingTransport {
  readonly sentByType = new Map<string, number>();
  override send(toNode: NodeId, groupId: number, msg: Message): void {
    this.sentByType.set(msg.type, (this.sentByType.get(msg.type) ?? 0) + 1);
    super.send(toNode, groupId, msg);
  }
}

/** Hosts whose counters the progress lines print. */
const hostsForLog: MultiRaftHost[] = [];

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

async function main(): Promise<void> {
  const atOnce = process.argv.includes('--at-once');
  const burst = process.argv.includes('--burst');
  const writesInFlightMax = burst ? Infinity : WRITES_IN_FLIGHT;
  const inFlightArg = process.argv.find((a) => a.startsWith('--elections-in-flight='));
  const electionsInFlight = inFlightArg === undefined ? undefined : Number(inFlightArg.split('=')[1]);
  const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const groups = Math.min(GROUPS_MAX, Number(args[0] ?? 1000));
  const tickMs = Number(args[1] ?? 100);
  const restSeconds = Number(args[2] ?? 5);
  const hosts: MultiRaftHost[] = [];
  const ports: number[] = [];
  for (let id = 1; id <= 3; id++) {
    const logStore = await LogStore.open(new MemoryEngine());
    const host = new MultiRaftHost({
      nodeId: id,
      logStore,
      transport: (handlers) =>
        new TypeCountingTransport(new GrpcTransport({
          nodeId: id,
          listenAddress: '127.0.0.1:0',
          handlers,
          ...(atOnce ? {} : { limits: { peerQueueMessagesMax: PEER_QUEUE_MESSAGES } }),
        })),
      ticker: new IntervalTicker(tickMs),
      ...(electionsInFlight !== undefined ? { limits: { electionsInFlightMax: electionsInFlight } } : {}),
    });
    ports.push(await host.start());
    hosts.push(host);
    hostsForLog.push(host);
  }
  for (const h of hosts) for (let id = 1; id <= 3; id++) if (id !== h.nodeId) h.transport.setPeer(id, `127.0.0.1:${ports[id - 1]}`);
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const t0 = Date.now();
  // sms[h][g]: host h's replica of group g.
  const sms: CounterStateMachine[][] = hosts.map(() => []);
  const leaderOf = (g: number): number | undefined => {
    for (let h = 0; h < hosts.length; h++) if (sms[h]![g]?.role === 'leader') return h;
    return undefined;
  };
  const quiesced = (): number => hosts.reduce((n, h) => n + h.groupIds().filter((g) => h.isQuiesced(g) === true).length, 0);
  // One write per group, to its leader; one whose leader has not applied it REPROPOSE_MS later
  // (a leader change lost it) is proposed again, so a group may end up with more than one.
  let writes = 0;
  const proposedAt: number[] = [];
  let inFlight = new Set<number>();
  const proposeWrite = (g: number): void => {
    const h = leaderOf(g);
    if (h === undefined || sms[h]![g]!.writes > 0) return;
    if (proposedAt[g] !== undefined && Date.now() - proposedAt[g]! < REPROPOSE_MS) return;
    if (inFlight.size >= writesInFlightMax) {
      inFlight = new Set([...inFlight].filter((x) => !sms.some((hs) => hs[x]!.writes > 0)));
      if (inFlight.size >= writesInFlightMax) return;
    }
    try {
      hosts[h]!.handle(g).propose(new Uint8Array([1]));
      proposedAt[g] = Date.now();
      inFlight.add(g);
      writes++;
    } catch {
      // refused (a leader change under way): proposed again on a later poll
    }
  };
  /** Replicas that have applied a write; proposes the missing ones again when due. */
  const applied = (): number => {
    let n = 0;
    for (let g = 1; g <= groups; g++) {
      let here = 0;
      for (const hs of sms) if (hs[g]!.writes > 0) here++;
      if (here === 0) proposeWrite(g);
      n += here;
    }
    return n;
  };
  // Waves (default) bring WAVE_GROUPS up at a time; --at-once creates every group before waiting for any.
  const wave = atOnce ? groups : WAVE_GROUPS;
  for (let first = 1; first <= groups; first += wave) {
    const last = Math.min(groups, first + wave - 1);
    for (let g = first; g <= last; g++) {
      for (let h = 0; h < hosts.length; h++) {
        const sm = new CounterStateMachine();
        sms[h]![g] = sm;
        await hosts[h]!.createGroup(g, { peers: [1, 2, 3], stateMachine: sm, campaign: g % 3 === hosts[h]!.nodeId % 3 });
      }
    }
    let next = first;
    await waitFor(() => {
      while (next <= last && leaderOf(next) !== undefined) next++;
      return next > last;
    }, () => `leaders of groups ${first}..${last} (group ${next} next)`);
    for (let g = first; g <= last; g++) proposeWrite(g);
    console.error(`groups ${first}..${last} up after ${Date.now() - t0} ms`);
  }
  const tElected = Date.now();
  const dropsElected = hosts.reduce((n, h) => n + h.transport.stats.messagesDropped, 0);
  await waitFor(() => applied() === 3 * groups, () => `the write applied (${applied()} of ${3 * groups} replicas)`);
  const tApplied = Date.now();
  const dropsApplied = hosts.reduce((n, h) => n + h.transport.stats.messagesDropped, 0);
  await waitFor(() => quiesced() === 3 * groups, () => `quiescence (${quiesced()} of ${3 * groups} replicas)`);
  const tQuiesced = Date.now();
  const drops = hosts.reduce((n, h) => n + h.transport.stats.messagesDropped, 0);
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
    mode: atOnce ? 'at-once' : `waves of ${WAVE_GROUPS}`,
    writes: burst ? 'one burst per wave' : `at most ${WRITES_IN_FLIGHT} unapplied`,
    tickMs,
    createAndElectMs: tElected - t0,
    writeAndQuiesceMs: tQuiesced - tElected,
    convergeMs: tQuiesced - t0,
    messagesDropped: drops,
    /** From the last wave's leaders (its writes proposed then) to every replica's write applied. */
    lastWritesAppliedMs: tApplied - tElected,
    messagesDroppedAfterLastLeaders: dropsApplied - dropsElected,
    turnsHeldForSendRoom: hosts.reduce((n, h) => n + h.stats.turnsHeldForRoom, 0),
    writesProposed: writes,
    electionsAdmitted: hosts.reduce((n, h) => n + h.stats.electionsAdmitted, 0),
    dormantWokenByLeaderOrRequest: hosts.reduce((n, h) => n + h.stats.dormantWoken, 0),
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
