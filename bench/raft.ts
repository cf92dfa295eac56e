/**
 * Raft core throughput: committed entries per second through 3-node
 * in-memory clusters (MemoryStorage, messages delivered in-process, no I/O),
 * driven as fast as possible. Measures the core, not a transport or a disk.
 *
 *   npm run bench:raft                      # 1 group and 1,000 groups
 *   node dist/bench/raft.js --groups 1 --batch 256 --seconds 5
 *
 * Each loop turn proposes `batch` entries of `size` bytes to every group's
 * leader, then runs Ready/deliver rounds until all three nodes are quiet.
 * Storage is compacted as it goes so memory stays flat.
 */
import {
  MemoryStorage, RawNode, decodeConfChange,
  type Message, type NodeId, type RandomSource,
} from '../src/group/raft/index.js';

interface Options {
  groups: number[];
  batch: number;
  size: number;
  seconds: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { groups: [1, 1000], batch: 128, size: 128, seconds: 5 };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    switch (argv[i]) {
      case '--groups':
        o.groups = (v ?? '1').split(',').map(Number);
        i++;
        break;
      case '--batch':
        o.batch = Number(v);
        i++;
        break;
      case '--size':
        o.size = Number(v);
        i++;
        break;
      case '--seconds':
        o.seconds = Number(v);
        i++;
        break;
      default:
        throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  return o;
}

class Lcg implements RandomSource {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  intn(n: number): number {
    this.s = (Math.imul(this.s, 1664525) + 1013904223) >>> 0;
    return this.s % n;
  }
}

const NODE_IDS: readonly NodeId[] = [1, 2, 3];
/** Keep this many applied entries in storage before compacting (a follower may still need them). */
const COMPACT_EVERY = 16_384;

interface Replica {
  node: RawNode;
  storage: MemoryStorage;
  appliedSinceCompact: number;
}

class Group {
  readonly replicas: Replica[] = [];
  committed = 0;
  constructor(gid: number) {
    for (const id of NODE_IDS) {
      const storage = MemoryStorage.withVoters(NODE_IDS);
      const node = new RawNode(
        { id, electionTick: 10, heartbeatTick: 1, random: new Lcg(gid * 7 + id), maxInflightMsgs: 256, checkQuorum: true, preVote: true },
        storage,
      );
      this.replicas.push({ node, storage, appliedSinceCompact: 0 });
    }
  }

  /** Processes every pending Ready of this group, pushing outgoing messages to `out`. Returns whether anything happened. */
  pump(out: Message[]): boolean {
    let any = false;
    for (let i = 0; i < 3; i++) {
      const r = this.replicas[i]!;
      while (r.node.hasReady()) {
        any = true;
        const rd = r.node.ready();
        if (rd.snapshot !== undefined) r.storage.applySnapshot(rd.snapshot);
        r.storage.append(rd.entries);
        if (rd.hardState !== undefined) r.storage.setHardState(rd.hardState);
        for (const msgs of [rd.earlyMessages, rd.messages]) for (let j = 0; j < msgs.length; j++) out.push(msgs[j]!);
        const ce = rd.committedEntries;
        for (let j = 0; j < ce.length; j++) {
          const e = ce[j]!;
          if (e.type === 'confChange') r.node.applyConfChange(decodeConfChange(e.data));
          else if (i === 0 && e.data.byteLength > 0) this.committed++;
        }
        r.appliedSinceCompact += ce.length;
        r.node.advance(rd);
        if (r.appliedSinceCompact >= COMPACT_EVERY) this.compact(r);
      }
    }
    return any;
  }

  private compact(r: Replica): void {
    const st = r.node.status();
    // Keep a tail so a slightly lagging follower is served from the log, not by a snapshot.
    const upTo = st.applied - 1024;
    if (upTo > r.storage.firstIndex()) {
      r.storage.createSnapshot(upTo, st.config, new Uint8Array(0));
      r.storage.compact(upTo);
    }
    r.appliedSinceCompact = 0;
  }

  deliver(m: Message): void {
    this.replicas[m.to - 1]!.node.step(m);
  }
}

function runOnce(groupCount: number, opts: Options): void {
  const groups: Group[] = [];
  for (let g = 0; g < groupCount; g++) groups.push(new Group(g + 1));
  // Elect node 1 everywhere.
  const msgs: Message[] = [];
  const settle = (): void => {
    for (;;) {
      msgs.length = 0;
      let any = false;
      for (let g = 0; g < groups.length; g++) {
        const start = msgs.length;
        if (groups[g]!.pump(msgs)) any = true;
        for (let k = start; k < msgs.length; k++) groups[g]!.deliver(msgs[k]!);
      }
      if (!any) return;
    }
  };
  for (const g of groups) g.replicas[0]!.node.campaign();
  settle();
  for (const g of groups) {
    if (g.replicas[0]!.node.status().role !== 'leader') throw new Error('election failed');
    g.committed = 0;
  }
  const payload = new Uint8Array(opts.size).fill(7);
  const batch = opts.batch;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + opts.seconds * 1000;
  let turns = 0;
  let ticks = 0;
  while (performance.now() < deadline) {
    for (let g = 0; g < groups.length; g++) {
      const leader = groups[g]!.replicas[0]!.node;
      for (let b = 0; b < batch; b++) leader.propose(payload);
    }
    settle();
    turns++;
    // Keep logical time moving (heartbeats, check-quorum) as a real host would.
    if (turns % 8 === 0) {
      ticks++;
      for (const g of groups) for (const r of g.replicas) r.node.tick();
      settle();
    }
  }
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  let committed = 0;
  for (const g of groups) committed += g.committed;
  const cpuUs = cpu.user + cpu.system;
  const rate = committed / (elapsedMs / 1000);
  console.log(
    JSON.stringify({
      groups: groupCount,
      batchPerGroup: batch,
      entryBytes: opts.size,
      seconds: +(elapsedMs / 1000).toFixed(2),
      turns,
      ticks,
      committedEntries: committed,
      entriesPerSec: Math.round(rate),
      cpuUsPerEntry: +(cpuUs / committed).toFixed(3),
      entriesPerCpuSec: Math.round(committed / (cpuUs / 1e6)),
      cpuSeconds: +(cpuUs / 1e6).toFixed(2),
    }),
  );
  for (const g of groups) {
    if (g.replicas[0]!.node.status().role !== 'leader') throw new Error('leader lost during benchmark');
  }
}

const opts = parseArgs(process.argv.slice(2));
console.log(`raft core throughput: 3 nodes in one process, node ${process.version}`);
for (const n of opts.groups) runOnce(n, opts);
