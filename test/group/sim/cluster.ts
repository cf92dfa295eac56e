/**
 * The simulation driver: runs one seed. It owns the virtual clock, the
 * event queue, the network, the hosts, the workload, the fault schedule and
 * the final liveness phase, and reports the first invariant violation with
 * the seed and the tail of the event trace.
 *
 * Phases: (1) faults + workload for `durationMs` of virtual time; (2) calm:
 * heal the network, restart crashed members, stop faults and workload, then
 * within `livenessBoundMs` a leader must commit a fresh probe command that
 * every member applies; (3) quiet: once membership has settled, for 8
 * maximal election timeouts no new leader may be elected.
 */
import { EventQueue } from './event-queue.js';
import { Hasher } from './hash.js';
import { InvariantChecker, InvariantViolation } from './invariants.js';
import { NETWORK_CALM, Network } from './network.js';
import { NodeHost } from './node-host.js';
import type { HostBugs, HostEnv } from './node-host.js';
import type { ConfChange, ConfState, Message, MessageType, NodeId } from './raft.js';
import { SimRandom } from './random.js';
import { FAULT_KINDS, describeScenario, drawFault, drawScenario, withLeaseMargin } from './scenario.js';
import type { FaultKind, Scenario } from './scenario.js';

/** Node ids one run may create (initial members plus replacements). */
export const NODES_MAX = 9;
/** Events one run may process before it is declared runaway. */
export const EVENTS_MAX_DEFAULT = 500_000;
/** Lines of trace kept for failure reports. */
export const TRACE_TAIL_MAX = 40;
/** Members a configuration may grow to through `addLearner`. */
const MEMBERS_MAX = 7;

/** Options for one run. */
export interface SimOptions {
  readonly seed: number;
  /** Virtual ms of the fault phase (default 3000). */
  readonly durationMs?: number;
  /** Virtual ms the calm phase may take to show liveness (default 20000). */
  readonly livenessBoundMs?: number;
  /** Deliberate host bugs (bug-injection tests). */
  readonly bugs?: HostBugs;
  /** Overrides of the seed's scenario (e.g. a fault mix aimed at one bug). */
  readonly scenario?: Partial<Scenario>;
  /** Inject faults (default true). */
  readonly faults?: boolean;
  /** Receives every trace line as it happens (verbose replay). */
  readonly trace?: (line: string) => void;
  readonly eventsMax?: number;
}

/** The outcome of one run. */
export interface SimResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly violation?: { readonly invariant: string; readonly message: string };
  readonly scenario: string;
  readonly events: number;
  readonly virtualMs: number;
  /** Hash of the whole event sequence: equal for equal runs. */
  readonly digest: number;
  readonly faults: Readonly<Record<FaultKind, number>>;
  readonly traceTail: readonly string[];
  readonly stats: Readonly<Record<string, number>>;
}

type SimEvent =
  | { readonly k: 'tick'; readonly id: NodeId; readonly inc: number }
  | { readonly k: 'msg'; readonly m: Message }
  | { readonly k: 'flush'; readonly id: NodeId; readonly inc: number }
  | { readonly k: 'propose' }
  | { readonly k: 'read' }
  | { readonly k: 'fault' }
  | { readonly k: 'restart'; readonly id: NodeId }
  | { readonly k: 'heal' }
  | { readonly k: 'calmNetwork' }
  | { readonly k: 'snapStatus'; readonly from: NodeId; readonly to: NodeId; readonly ok: boolean; readonly inc: number }
  | { readonly k: 'unreachable'; readonly from: NodeId; readonly to: NodeId; readonly inc: number }
  | { readonly k: 'retire'; readonly id: NodeId }
  | { readonly k: 'crash'; readonly id: NodeId; readonly inc: number; readonly restartAfterMs: number; readonly kind: 'crashAfterVote' | 'crashMidWrite' }
  | { readonly k: 'final' }
  | { readonly k: 'probe' }
  | { readonly k: 'stable' };

const EVENT_CODES: Readonly<Record<SimEvent['k'], number>> = {
  tick: 1, msg: 2, flush: 3, propose: 4, read: 5, fault: 6, restart: 7, heal: 8,
  calmNetwork: 9, snapStatus: 10, unreachable: 11, retire: 12, final: 13, probe: 14, crash: 15, stable: 16,
};

const MESSAGE_TYPES: readonly MessageType[] = [
  'hup', 'beat', 'prop', 'app', 'appResp', 'vote', 'voteResp', 'preVote', 'preVoteResp', 'snap',
  'heartbeat', 'heartbeatResp', 'unreachable', 'snapStatus', 'checkQuorum', 'transferLeader',
  'timeoutNow', 'readIndex', 'readIndexResp',
];

function members(cs: ConfState): NodeId[] {
  const out = new Set<NodeId>([...cs.voters, ...cs.votersOutgoing, ...cs.learners, ...cs.learnersNext]);
  return [...out].sort((a, b) => a - b);
}

function formatMessage(m: Message): string {
  return (
    `${m.from}→${m.to} ${m.type} term=${m.term} idx=${m.index} logTerm=${m.logTerm} commit=${m.commit}` +
    (m.entries.length > 0 ? ` ents=${m.entries.length}` : '') +
    (m.reject ? ' REJECT' : '') +
    (m.snapshot !== undefined ? ` snap@${m.snapshot.meta.index}` : '')
  );
}

/** Runs one seed to completion (or to its first violation). */
export function runSeed(opts: SimOptions): SimResult {
  return new Cluster(opts).run();
}

/** One simulated cluster (use `runSeed`). */
class Cluster implements HostEnv {
  readonly checker = new InvariantChecker();
  readonly bugs: HostBugs;
  private readonly queue = new EventQueue<SimEvent>();
  private readonly hosts = new Map<NodeId, NodeHost>();
  private readonly scenario: Scenario;
  private readonly network: Network;
  private readonly faultR: SimRandom;
  private readonly diskR: SimRandom;
  private readonly workR: SimRandom;
  private readonly nodeR: SimRandom;
  private readonly digest = new Hasher(0x51e);
  /** Recent trace lines; message deliveries are kept unformatted until a report needs them. */
  private readonly tail: (string | { readonly t: number; readonly m: Message })[] = [];
  private readonly faultCounts = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
  private readonly durationMs: number;
  private readonly livenessBoundMs: number;
  private readonly eventsMax: number;
  private nowMs = 0;
  private events = 0;
  private nextId = 1;
  private nextCmd = 1;
  private nextRead = 1;
  private latestConf: { index: number; cs: ConfState } = { index: 0, cs: { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } };
  private finalPhase = false;
  private finalStartMs = 0;
  private done = false;
  private readonly probes = new Map<number, Set<NodeId>>();
  private probing = true;
  /** Nodes that were ever in a committed configuration. */
  private readonly everMember = new Set<NodeId>();
  private stableFromLeaders = 0;
  private lastProbeMs = -Infinity;
  private readonly counters = { proposals: 0, proposalsDropped: 0, acks: 0, reads: 0, confChanges: 0, retired: 0, livenessMs: 0 };

  constructor(private readonly opts: SimOptions) {
    const root = new SimRandom(opts.seed);
    this.scenario = withLeaseMargin({ ...drawScenario(root.fork()), ...opts.scenario });
    this.faultR = root.fork();
    this.network = new Network(root.fork());
    this.diskR = root.fork();
    this.workR = root.fork();
    this.nodeR = root.fork();
    this.bugs = opts.bugs ?? {};
    this.durationMs = opts.durationMs ?? 3000;
    this.livenessBoundMs = opts.livenessBoundMs ?? 20_000;
    this.eventsMax = opts.eventsMax ?? EVENTS_MAX_DEFAULT;
    this.network.conditions = { ...this.scenario.baseNetwork };
  }

  run(): SimResult {
    let violation: { invariant: string; message: string } | undefined;
    try {
      this.setup();
      while (!this.done) {
        const ev = this.queue.pop();
        if (ev === undefined) throw new InvariantViolation('liveness', 'no events left');
        this.nowMs = ev.timeMs;
        this.events++;
        if (this.events > this.eventsMax) throw new InvariantViolation('eventBudget', `over ${this.eventsMax} events`);
        this.record(ev.item);
        this.dispatch(ev.item);
      }
    } catch (err) {
      if (err instanceof InvariantViolation) violation = { invariant: err.invariant, message: err.message };
      else if (err instanceof Error) {
        const where = (err.stack ?? '').split('\n').slice(1, 4).map((s) => s.trim()).join(' | ');
        violation = { invariant: `exception:${err.name}`, message: `${err.message} at ${where}` };
      } else violation = { invariant: 'exception', message: String(err) };
      this.line(`VIOLATION ${violation.invariant}: ${violation.message}`);
    }
    const stats: Record<string, number> = { ...this.counters };
    stats['leaders'] = this.checker.leadersElected;
    stats['readsChecked'] = this.checker.readsChecked;
    stats['leaseStaleReadsClockStopped'] = this.checker.leaseStaleReadsClockStopped;
    stats['learnerGrants'] = this.checker.learnerGrants;
    stats['duplicates'] = this.network.duplicates;
    for (const [k, v] of Object.entries(this.network.drops)) stats[`drop.${k}`] = v;
    let snapshotsTaken = 0;
    let snapshotsInstalled = 0;
    for (const h of this.hosts.values()) {
      snapshotsTaken += h.stats.snapshotsTaken;
      snapshotsInstalled += h.stats.snapshotsInstalled;
    }
    stats['snapshotsTaken'] = snapshotsTaken;
    stats['snapshotsInstalled'] = snapshotsInstalled;
    stats['nodes'] = this.hosts.size;
    const base = {
      seed: this.opts.seed,
      ok: violation === undefined,
      scenario: describeScenario(this.scenario),
      events: this.events,
      virtualMs: this.nowMs,
      digest: this.digest.value(),
      faults: { ...this.faultCounts },
      traceTail: this.tail.map((x) => (typeof x === 'string' ? x : `${x.t}ms ${formatMessage(x.m)}`)),
      stats,
    };
    return violation === undefined ? base : { ...base, violation };
  }

  // ---- HostEnv -------------------------------------------------------------

  send(m: Message): void {
    const dest = this.hosts.get(m.to);
    if (dest === undefined) return;
    const fate = this.network.send(m.from, m.to);
    if (typeof fate === 'string') {
      const from = this.hosts.get(m.from);
      const inc = from?.incarnation ?? 0;
      if (m.type === 'snap') this.at(1, { k: 'snapStatus', from: m.from, to: m.to, ok: false, inc });
      else if (fate === 'partition' && this.workR.chance(0.3)) this.at(1, { k: 'unreachable', from: m.from, to: m.to, inc });
      return;
    }
    for (const d of fate) this.at(d, { k: 'msg', m });
  }

  scheduleFlush(host: NodeHost): void {
    const s = this.scenario;
    let delay = this.diskR.range(s.diskMsMin, s.diskMsMax);
    // The calm phase has no slow-disk tail: a leader whose write takes longer than an
    // election timeout holds back its heartbeats (messages wait for durability), and the
    // stability check would count the election that follows (seed 201171).
    if (this.diskR.chance(s.diskSlowRate) && !this.finalPhase) delay += this.diskR.range(1, s.diskMsSlow);
    if (host.slowDiskUntilMs > this.nowMs) delay += this.diskR.range(20, 200);
    if (!this.finalPhase && this.opts.faults !== false && this.diskR.chance(s.crashMidWriteRate)) {
      // Crash before the write lands: scheduled first (and a ms early when
      // possible), so it runs before the flush even when both fall on one ms.
      const restartAfterMs = this.diskR.range(1, 50);
      this.at(Math.max(0, delay - 1), { k: 'crash', id: host.id, inc: host.incarnation, restartAfterMs, kind: 'crashMidWrite' });
    }
    this.at(delay, { k: 'flush', id: host.id, inc: host.incarnation });
  }

  onCommandApplied(host: NodeHost, cmdId: number, index: number, acked: boolean): void {
    if (acked) {
      this.counters.acks++;
      this.checker.onAck(index);
    }
    this.probes.get(cmdId)?.add(host.id);
  }

  onConfApplied(host: NodeHost, index: number, cs: ConfState): void {
    this.counters.confChanges++;
    if (index <= this.latestConf.index) return;
    const before = members(this.latestConf.cs);
    this.latestConf = { index, cs };
    this.note(host, `applied conf at ${index}: voters=[${cs.voters.join(',')}] learners=[${cs.learners.join(',')}] outgoing=[${cs.votersOutgoing.join(',')}]`);
    const now = new Set(members(cs));
    for (const id of now) this.everMember.add(id);
    for (const id of before) {
      // Removed nodes are shut down by the operator a little later (at once when calm).
      if (!now.has(id)) this.at(this.finalPhase ? 0 : this.workR.range(50, 500), { k: 'retire', id });
    }
  }

  note(host: NodeHost, what: string): void {
    this.line(`${this.nowMs}ms n${host.id}: ${what}`);
  }

  // ---- setup and dispatch ----------------------------------------------------

  private setup(): void {
    const ids: NodeId[] = [];
    for (let i = 0; i < this.scenario.clusterSize; i++) ids.push(this.nextId++);
    this.line(`seed ${this.opts.seed}: ${describeScenario(this.scenario)}`);
    for (const id of ids) {
      const h = this.newHost(id);
      h.bootstrap(ids);
    }
    this.latestConf = { index: 1, cs: { voters: ids, learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } };
    for (const id of ids) this.everMember.add(id);
    for (const id of ids) this.startHost(id);
    this.at(this.workR.range(1, this.scenario.proposeGapMs), { k: 'propose' });
    this.at(this.workR.range(1, this.scenario.readGapMs), { k: 'read' });
    if (this.opts.faults !== false) this.at(this.faultGap(), { k: 'fault' });
    this.at(this.durationMs, { k: 'final' });
  }

  /**
   * A paused process (GC pause, VM freeze) does nothing until it resumes:
   * its timers, disk completions and incoming messages wait, then arrive in
   * a burst. True if the event was deferred.
   */
  private deferIfPaused(id: NodeId, ev: SimEvent): boolean {
    const h = this.hosts.get(id);
    if (h === undefined || h.pausedUntilMs <= this.nowMs) return false;
    this.queue.push(h.pausedUntilMs, ev);
    return true;
  }

  private dispatch(ev: SimEvent): void {
    switch (ev.k) {
      case 'tick':
      case 'flush':
        if (this.deferIfPaused(ev.id, ev)) return;
        break;
      case 'msg':
        if (this.deferIfPaused(ev.m.to, ev)) return;
        break;
      case 'snapStatus':
      case 'unreachable':
        if (this.deferIfPaused(ev.from, ev)) return;
        break;
      default:
        break;
    }
    switch (ev.k) {
      case 'tick': {
        const h = this.hosts.get(ev.id);
        if (h === undefined || !h.alive || h.incarnation !== ev.inc) return;
        h.tick();
        this.at(h.tickMs, ev);
        return;
      }
      case 'msg':
        return this.deliver(ev.m);
      case 'flush':
        return this.flush(ev.id, ev.inc);
      case 'crash': {
        const h = this.hosts.get(ev.id);
        if (h === undefined || !h.alive || h.incarnation !== ev.inc || this.finalPhase) return;
        this.faultCounts[ev.kind]++;
        this.crashHost(h, ev.restartAfterMs);
        return;
      }
      case 'propose':
        return this.clientPropose();
      case 'read':
        return this.clientRead();
      case 'fault':
        return this.fault();
      case 'restart': {
        const h = this.hosts.get(ev.id);
        if (h !== undefined && !h.alive && !h.retired) this.startHost(ev.id);
        return;
      }
      case 'heal':
        this.network.heal();
        return;
      case 'calmNetwork':
        if (!this.finalPhase) this.network.conditions = { ...this.scenario.baseNetwork };
        return;
      case 'snapStatus': {
        const h = this.hosts.get(ev.from);
        if (h !== undefined && h.alive && h.incarnation === ev.inc) h.reportSnapshot(ev.to, ev.ok);
        return;
      }
      case 'unreachable': {
        const h = this.hosts.get(ev.from);
        if (h !== undefined && h.alive && h.incarnation === ev.inc) h.reportUnreachable(ev.to);
        return;
      }
      case 'retire':
        return this.retire(ev.id);
      case 'final':
        return this.startFinalPhase();
      case 'probe':
        return this.probe();
      case 'stable':
        return this.checkStable();
    }
  }

  private flush(id: NodeId, inc: number): void {
    const h = this.hosts.get(id);
    if (h === undefined) return;
    const voteBefore = h.disk.hardState.vote;
    const termBefore = h.disk.hardState.term;
    h.flushDone(inc);
    const hs = h.disk.hardState;
    const votedNow = hs.vote !== 0 && hs.vote !== h.id && (hs.vote !== voteBefore || hs.term !== termBefore);
    if (votedNow && h.alive && !this.finalPhase && this.opts.faults !== false && this.diskR.chance(this.scenario.crashAfterVoteRate)) {
      // The grant has just left; come back fast enough to see the rival candidate's request.
      this.at(0, { k: 'crash', id, inc: h.incarnation, restartAfterMs: this.diskR.range(0, 3), kind: 'crashAfterVote' });
    }
  }

  private deliver(m: Message): void {
    const ok = this.network.delivered(m.from, m.to);
    const dest = this.hosts.get(m.to);
    const sender = this.hosts.get(m.from);
    const senderInc = sender?.incarnation ?? 0;
    if (!ok || dest === undefined || !dest.alive) {
      if (ok) this.network.drops.down++;
      if (m.type === 'snap') this.at(1, { k: 'snapStatus', from: m.from, to: m.to, ok: false, inc: senderInc });
      return;
    }
    dest.deliver(m);
    if (m.type === 'snap') this.at(1, { k: 'snapStatus', from: m.from, to: m.to, ok: true, inc: senderInc });
  }

  // ---- hosts ---------------------------------------------------------------

  private newHost(id: NodeId): NodeHost {
    if (this.hosts.size >= NODES_MAX) throw new Error(`over ${NODES_MAX} nodes`);
    const h = new NodeHost(id, this.scenario.knobs, this.scenario.snapshots, this.nodeR.fork(), this);
    const drift = this.scenario.tickDriftMs;
    h.tickMs = this.scenario.tickMs + (drift === 0 ? 0 : this.faultR.range(-drift, drift));
    this.hosts.set(id, h);
    return h;
  }

  private startHost(id: NodeId): void {
    const h = this.hosts.get(id);
    if (h === undefined) return;
    this.note(h, `start (incarnation ${h.incarnation}, durable last index ${h.disk.lastIndex}, term ${h.disk.hardState.term}, vote ${h.disk.hardState.vote})`);
    h.start();
    this.at(this.workR.range(1, this.scenario.tickMs), { k: 'tick', id, inc: h.incarnation });
  }

  private crashHost(h: NodeHost, restartAfterMs: number | undefined): void {
    if (!h.alive) return;
    this.note(h, `crash${h.disk.pending !== undefined ? ' (pending write lost)' : ''}`);
    h.crash();
    if (restartAfterMs !== undefined) this.at(restartAfterMs, { k: 'restart', id: h.id });
  }

  private retire(id: NodeId): void {
    const h = this.hosts.get(id);
    if (h === undefined || h.retired || members(this.latestConf.cs).includes(id)) return;
    this.note(h, 'retired (removed from the group)');
    h.crash();
    h.retired = true;
    this.counters.retired++;
  }

  leaseClockStopped(leader: NodeId): boolean {
    const h = this.hosts.get(leader);
    if (h === undefined || h.pausedUntilMs === 0) return false;
    // A lease stamped before the pause lasts at most electionTick of the leader's ticks after it
    // resumes; twice that, at the slowest tick rate, is a generous bound.
    const windowMs = 2 * this.scenario.knobs.electionTick * (this.scenario.tickMs + this.scenario.tickDriftMs);
    return this.nowMs >= h.pausedUntilMs && this.nowMs - h.pausedUntilMs <= windowMs;
  }

  /** Running, non-retired, non-paused hosts (the ones clients and the operator can reach). */
  private liveHosts(): NodeHost[] {
    const out: NodeHost[] = [];
    for (const h of this.hosts.values()) if (this.reachable(h)) out.push(h);
    return out;
  }

  private reachable(h: NodeHost): boolean {
    return h.alive && !h.retired && h.pausedUntilMs <= this.nowMs;
  }

  private activeIds(): NodeId[] {
    const out: NodeId[] = [];
    for (const h of this.hosts.values()) if (!h.retired) out.push(h.id);
    return out;
  }

  /** The running node that believes it leads the highest term. */
  private leader(): NodeHost | undefined {
    let best: NodeHost | undefined;
    for (const h of this.hosts.values()) {
      if (this.reachable(h) && h.role === 'leader' && (best === undefined || h.term > best.term)) best = h;
    }
    return best;
  }

  // ---- workload ------------------------------------------------------------

  private clientPropose(): void {
    if (this.finalPhase) return;
    this.at(this.workR.range(1, 2 * this.scenario.proposeGapMs), { k: 'propose' });
    const target = this.pickClientTarget();
    if (target === undefined) return;
    this.counters.proposals++;
    const cmd = this.nextCmd++;
    const ok = target.propose(cmd);
    if (!ok) this.counters.proposalsDropped++;
    if (this.opts.trace !== undefined) this.opts.trace(`${this.nowMs}ms n${target.id}: client proposes ${cmd}${ok ? '' : ' (dropped)'}`);
  }

  private clientRead(): void {
    if (this.finalPhase) return;
    this.at(this.workR.range(1, 2 * this.scenario.readGapMs), { k: 'read' });
    const target = this.pickClientTarget();
    if (target === undefined) return;
    const readId = this.nextRead++;
    this.counters.reads++;
    this.checker.onReadIssued(readId, target.id, this.scenario.knobs.readOnlyOption === 'leaseBased');
    const ok = target.readIndex(readId);
    if (this.opts.trace !== undefined) this.opts.trace(`${this.nowMs}ms n${target.id}: client reads (id ${readId})${ok ? '' : ' (dropped)'}`);
  }

  /** Clients mostly find the leader, but also hit followers (forwarding). */
  private pickClientTarget(): NodeHost | undefined {
    const leader = this.leader();
    if (leader !== undefined && this.workR.chance(0.6)) return leader;
    const live = this.liveHosts();
    return live.length === 0 ? undefined : this.workR.pick(live);
  }

  // ---- faults --------------------------------------------------------------

  private faultGap(): number {
    return this.faultR.range(this.scenario.faultGapMsMin, this.scenario.faultGapMsMax);
  }

  private fault(): void {
    if (this.finalPhase) return;
    this.at(this.faultGap(), { k: 'fault' });
    const kind = drawFault(this.faultR);
    if (this.inject(kind)) {
      this.faultCounts[kind]++;
      this.line(`${this.nowMs}ms FAULT ${kind}`);
    }
  }

  /** Injects one fault; false if it did not apply right now (e.g. no leader). */
  private inject(kind: FaultKind): boolean {
    const r = this.faultR;
    switch (kind) {
      case 'crash': {
        const live = this.liveHosts();
        if (live.length === 0) return false;
        this.crashHost(r.pick(live), r.chance(0.2) ? r.range(1000, 3000) : r.range(20, 800));
        return true;
      }
      case 'crashAll': {
        const live = this.liveHosts();
        for (const h of live) this.crashHost(h, r.range(20, 1000));
        return live.length > 0;
      }
      case 'partition': {
        const ids = r.shuffled(this.activeIds());
        if (ids.length < 2) return false;
        const k = r.range(1, ids.length - 1);
        this.network.partition(ids.slice(0, k), ids.slice(k));
        this.line(`${this.nowMs}ms partition [${ids.slice(0, k).join(',')}] | [${ids.slice(k).join(',')}]`);
        this.at(r.range(100, 1500), { k: 'heal' });
        return true;
      }
      case 'oneWay': {
        const ids = this.activeIds();
        if (ids.length < 2) return false;
        const n = r.range(1, 3);
        for (let i = 0; i < n; i++) {
          const from = r.pick(ids);
          const to = r.pick(ids);
          this.network.cutLink(from, to);
          this.line(`${this.nowMs}ms cut ${from}→${to}`);
        }
        this.at(r.range(100, 1500), { k: 'heal' });
        return true;
      }
      case 'isolateLeader': {
        const l = this.leader();
        if (l === undefined) return false;
        this.network.isolate(l.id, this.activeIds());
        this.line(`${this.nowMs}ms isolate leader ${l.id}`);
        this.at(r.range(100, 1500), { k: 'heal' });
        return true;
      }
      case 'heal':
        this.network.heal();
        return true;
      case 'lossyNetwork':
        this.network.conditions = {
          lossRate: r.pick([0.05, 0.1, 0.2, 0.3]),
          duplicateRate: r.pick([0.05, 0.1, 0.2]),
          delayMsMin: 1,
          delayMsMax: r.range(10, 50),
          slowRate: 0.1,
          delayMsSlow: r.range(50, 300),
        };
        this.at(r.range(200, 1500), { k: 'calmNetwork' });
        return true;
      case 'slowDisk': {
        const live = this.liveHosts();
        if (live.length === 0) return false;
        r.pick(live).slowDiskUntilMs = this.nowMs + r.range(200, 2000);
        return true;
      }
      case 'transferLeader': {
        const l = this.leader();
        if (l === undefined) return false;
        const others = l.confState.voters.filter((v) => v !== l.id);
        if (others.length === 0) return false;
        const to = r.pick(others);
        this.note(l, `transfer leadership to ${to}`);
        l.transferLeader(to);
        return true;
      }
      case 'pause': {
        const live = this.liveHosts();
        if (live.length === 0) return false;
        const h = r.chance(0.5) ? (this.leader() ?? r.pick(live)) : r.pick(live);
        h.pausedUntilMs = this.nowMs + r.range(50, 1000);
        this.note(h, `paused until ${h.pausedUntilMs}ms`);
        return true;
      }
      case 'truncateLog': {
        const live = this.liveHosts();
        if (live.length === 0) return false;
        r.pick(live).forceLogTruncation = true;
        return true;
      }
      case 'addLearner':
      case 'promoteLearner':
      case 'removeVoter':
      case 'replaceNode':
        return this.membershipChange(kind);
      case 'crashAfterVote':
      case 'crashMidWrite':
        return false; // injected per write (see flush and scheduleFlush), never by the schedule

    }
  }

  /** Proposes a membership change at the leader, keeping 3..MEMBERS_MAX members and ids unique. */
  private membershipChange(kind: 'addLearner' | 'promoteLearner' | 'removeVoter' | 'replaceNode'): boolean {
    const l = this.leader();
    if (l === undefined) return false;
    const cs = l.confState;
    const r = this.faultR;
    if (cs.votersOutgoing.length > 0) {
      // A joint config is in effect; an explicit one must be left by hand.
      return !cs.autoLeave && this.proposeCC(l, { changes: [], transition: 'auto' }, 'leave joint');
    }
    const canAdd = this.hosts.size < NODES_MAX && members(cs).length < MEMBERS_MAX;
    switch (kind) {
      case 'addLearner': {
        if (!canAdd) return false;
        const id = this.spawn();
        return this.proposeCC(l, { changes: [{ type: 'addLearner', nodeId: id }], transition: 'auto' }, `add learner ${id}`);
      }
      case 'promoteLearner': {
        if (cs.learners.length === 0) return false;
        const id = r.pick(cs.learners);
        return this.proposeCC(l, { changes: [{ type: 'addNode', nodeId: id }], transition: 'auto' }, `promote ${id}`);
      }
      case 'removeVoter': {
        if (cs.voters.length <= 3) return false;
        const id = r.pick(cs.voters);
        return this.proposeCC(l, { changes: [{ type: 'removeNode', nodeId: id }], transition: 'auto' }, `remove ${id}`);
      }
      case 'replaceNode': {
        if (!canAdd || cs.voters.length < 3) return false;
        const old = r.pick(cs.voters);
        const id = this.spawn();
        const transition = r.chance(this.scenario.jointRate) ? 'jointExplicit' : 'auto';
        const cc: ConfChange = {
          changes: [
            { type: 'addNode', nodeId: id },
            { type: 'removeNode', nodeId: old },
          ],
          transition,
        };
        return this.proposeCC(l, cc, `replace ${old} by ${id} (${transition})`);
      }
    }
  }

  /** Starts a brand-new node with an empty disk (it learns everything from a snapshot). */
  private spawn(): NodeId {
    const id = this.nextId++;
    this.newHost(id);
    this.startHost(id);
    return id;
  }

  private proposeCC(l: NodeHost, cc: ConfChange, what: string): boolean {
    const ok = l.proposeConfChange(cc);
    this.note(l, `propose conf change: ${what}${ok ? '' : ' (refused)'}`);
    return ok;
  }

  // ---- final phase: liveness ---------------------------------------------------

  private startFinalPhase(): void {
    this.finalPhase = true;
    this.finalStartMs = this.nowMs;
    this.line(`${this.nowMs}ms FINAL PHASE: heal, restart, calm`);
    this.network.heal();
    this.network.conditions = { ...NETWORK_CALM };
    // Pauses are left to end on their own: their deferred events are queued for then.
    const current = new Set(members(this.latestConf.cs));
    for (const h of this.hosts.values()) {
      h.slowDiskUntilMs = 0;
      if (this.everMember.has(h.id) && !current.has(h.id)) this.retire(h.id);
      else if (!h.alive && !h.retired) this.startHost(h.id);
    }
    this.at(0, { k: 'probe' });
  }

  /** Quiet period after liveness: 8 election timeouts of the slowest possible timer (stableMs / 4 = 2 of them). */
  private stableMs(): number {
    return 4 * 2 * this.scenario.knobs.electionTick * (this.scenario.tickMs + this.scenario.tickDriftMs);
  }

  private checkStable(): void {
    const extra = this.checker.leadersElected - this.stableFromLeaders;
    if (extra > 0) {
      throw new InvariantViolation(
        'stability',
        `${extra} new leader(s) elected within ${this.stableMs()}ms of a healthy, calm cluster; ` +
          [...this.hosts.values()].map((h) => h.describe()).join('; '),
      );
    }
    this.line(`${this.nowMs}ms STABLE`);
    this.done = true;
  }

  private probe(): void {
    if (!this.probing) return;
    const elapsed = this.nowMs - this.finalStartMs;
    const need = members(this.latestConf.cs);
    const l0 = this.leader();
    const cs = this.latestConf.cs;
    // Quiet is only expected once membership has settled: no joint config,
    // and a leader that is a voter of the latest config.
    // A leadership transfer asked for during the fault phase may still fire
    // (it aborts after an election timeout), so wait that out too.
    const settled =
      cs.votersOutgoing.length === 0 && l0 !== undefined && cs.voters.includes(l0.id) && elapsed >= this.stableMs() / 4;
    for (const [cmd, appliedBy] of this.probes) {
      if (settled && need.every((id) => appliedBy.has(id))) {
        this.counters.livenessMs = elapsed;
        this.line(`${this.nowMs}ms LIVE: probe ${cmd} applied on [${need.join(',')}] after ${elapsed}ms`);
        // Then the calm cluster must stay quiet: no further election (an
        // election storm on a healthy network is a liveness bug too).
        this.stableFromLeaders = this.checker.leadersElected;
        this.at(this.stableMs(), { k: 'stable' });
        this.probes.clear();
        this.probing = false;
        return;
      }
    }
    if (elapsed > this.livenessBoundMs) {
      const l = this.leader();
      throw new InvariantViolation(
        'liveness',
        `no probe applied on all members [${need.join(',')}] within ${this.livenessBoundMs}ms of calm ` +
          `(leader ${l === undefined ? 'none' : `${l.id}@${l.term}`}, probes ${this.probes.size}); ` +
          [...this.hosts.values()].map((h) => h.describe()).join('; '),
      );
    }
    this.at(50, { k: 'probe' });
    const l = this.leader();
    if (l === undefined) return;
    if (l.confState.votersOutgoing.length > 0 && !l.confState.autoLeave) {
      this.proposeCC(l, { changes: [], transition: 'auto' }, 'leave joint');
    }
    if (this.nowMs - this.lastProbeMs < 1000) return;
    this.lastProbeMs = this.nowMs;
    const cmd = this.nextCmd++;
    if (this.probes.size >= 64) return; // bounded: a healthy cluster needs one or two
    this.probes.set(cmd, new Set());
    const ok = l.propose(cmd);
    this.note(l, `probe ${cmd} proposed${ok ? '' : ' (dropped)'}`);
  }

  // ---- plumbing ------------------------------------------------------------

  private at(delayMs: number, ev: SimEvent): void {
    this.queue.push(this.nowMs + delayMs, ev);
  }

  private line(s: string): void {
    this.pushTail(s);
    this.opts.trace?.(s);
  }

  private pushTail(x: string | { readonly t: number; readonly m: Message }): void {
    if (this.tail.length >= TRACE_TAIL_MAX) this.tail.shift();
    this.tail.push(x);
  }

  /** Folds an event into the digest; records message deliveries in the trace. */
  private record(ev: SimEvent): void {
    const d = this.digest;
    d.add(this.nowMs).add(EVENT_CODES[ev.k]);
    switch (ev.k) {
      case 'msg': {
        const m = ev.m;
        d.add(m.from).add(m.to).add(MESSAGE_TYPES.indexOf(m.type)).add(m.term).add(m.index).add(m.logTerm).add(m.commit).add(m.entries.length).add(m.reject ? 1 : 0);
        if (this.opts.trace !== undefined) this.line(`${this.nowMs}ms ${formatMessage(m)}`);
        else if (this.tailWanted(m)) this.pushTail({ t: this.nowMs, m });
        return;
      }
      case 'tick':
        d.add(ev.id).add(ev.inc);
        return;
      case 'flush':
        d.add(ev.id).add(ev.inc);
        if (this.opts.trace !== undefined) this.opts.trace(`${this.nowMs}ms n${ev.id}: write durable (incarnation ${ev.inc})`);
        return;
      case 'restart':
      case 'retire':
        d.add(ev.id);
        return;
      case 'crash':
        d.add(ev.id).add(ev.inc);
        return;
      case 'snapStatus':
      case 'unreachable':
        d.add(ev.from).add(ev.to);
        return;
      default:
        return;
    }
  }

  /** Heartbeats are too frequent to keep in the failure tail; everything else is. */
  private tailWanted(m: Message): boolean {
    return m.type !== 'heartbeat' && m.type !== 'heartbeatResp';
  }
}
