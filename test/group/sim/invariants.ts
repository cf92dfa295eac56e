/**
 * The safety checker. Hosts report every state change as it happens (a
 * leader elected, a write made durable, an entry applied, a snapshot
 * restored, a read served) and each report is checked at once against the
 * global history, so a violation is caught at the event that caused it.
 *
 * Checked properties:
 * - electionSafety: at most one leader per term, across the whole run;
 * - electionQuorum: a leader received vote grants from a quorum of the
 *   voters of its configuration (both halves when joint); grants from
 *   learners or strangers never count;
 * - logMatching: two durable logs holding an entry with the same index and
 *   term hold identical prefixes (chain hashes agree);
 * - committedDurable: a durable log never truncates an entry known committed
 *   (applied anywhere, or under a durable commit index) unless a leader of an
 *   earlier term than its commit term overwrites it above the node's own
 *   commit index (legal: see onDurable), no durable commit
 *   index points past the durable log, and nothing is applied before it is
 *   durable;
 * - leaderCompleteness: a leader of term T holds every entry committed in an
 *   earlier term (checked when its first own-term entry becomes durable);
 * - stateMachineSafety: every node applies one global sequence (its applied
 *   log chain and state hash agree with the global ones at each index), in
 *   order, without gaps, also across restarts and snapshot installs;
 * - readIndex: a read served at index i includes every write acknowledged —
 *   indeed every entry known committed — before the read was issued.
 */
import type { ConfState, NodeId, Snapshot } from './raft.js';
import type { FlushResult, SimDisk } from './disk.js';

/** Reads tracked at once (older unserved reads are forgotten). */
export const READS_TRACKED_MAX = 10_000;
/** Acknowledged log indexes remembered for reports. */
export const ACKS_TRACKED_MAX = 1_000_000;
/** Steps the leader-completeness check walks down the committed map. */
const COMMITTED_WALK_MAX = 100_000;
/** Terms are packed with indexes into one number: index * 2^22 + term. */
const TERM_LIMIT = 0x400000;

/** A broken safety property: the run stops and reports it with its seed. */
export class InvariantViolation extends Error {
  override readonly name = 'InvariantViolation';
  constructor(
    readonly invariant: string,
    detail: string,
  ) {
    super(`${invariant}: ${detail}`);
  }
}

interface Committed {
  readonly term: number;
  readonly chain: number;
  /**
   * An upper bound on the term in which the entry became committed: the
   * current term of the first node seen treating it as committed. (An entry
   * of term 2 may be committed only in term 4, by that leader's no-op; a
   * leader of term 3 need not hold it.)
   */
  readonly commitTerm: number;
}

interface ReadRecord {
  readonly node: NodeId;
  readonly ackIndexAtIssue: number;
  readonly leaseBased: boolean;
}

interface LeaderCheck {
  readonly term: number;
  readonly index: number;
  readonly chain: number;
}

/** Global history and the checks over it. */
export class InvariantChecker {
  /** term → the leader of that term. */
  private readonly leaders = new Map<number, NodeId>();
  /** (index, term) → chain, over every durable entry ever written. */
  private readonly chains = new Map<number, number>();
  /** index → committed entry (term and chain). */
  private readonly committed = new Map<number, Committed>();
  private committedIndexMax = 0;
  /** index → state-machine hash after applying it (first applier sets it). */
  private readonly smHashes = new Map<number, number>();
  /** Leader-completeness checks waiting for the leader's first own-term durable entry. */
  private readonly leaderChecks = new Map<NodeId, LeaderCheck>();
  private readonly reads = new Map<number, ReadRecord>();
  /** Log indexes of acknowledged writes. */
  private readonly acked = new Set<number>();
  /** Highest log index of an acknowledged write. */
  ackIndexMax = 0;
  /**
   * Lease-based reads that missed an acknowledged write, answered by a leader whose clock had
   * stopped (a process pause): drift beyond any lease margin, so counted, not a violation
   * (docs/simulation.md). Every other stale read, lease-based or not, is a violation.
   */
  leaseStaleReadsClockStopped = 0;
  /** Vote grants sent by a node that believed it was a learner (allowed, counted). */
  learnerGrants = 0;
  readsChecked = 0;
  leadersElected = 0;

  /** A node became leader of `term` having received `grants` (delivered vote grants of that term). */
  onLeader(id: NodeId, term: number, grants: ReadonlySet<NodeId>, conf: ConfState): void {
    const prev = this.leaders.get(term);
    if (prev !== undefined && prev !== id) {
      throw new InvariantViolation('electionSafety', `term ${term} has two leaders: ${prev} and ${id}`);
    }
    if (prev === undefined) this.leadersElected++;
    this.leaders.set(term, id);
    for (const voters of [conf.voters, conf.votersOutgoing]) {
      if (voters.length === 0 && voters === conf.votersOutgoing) continue;
      const got = voters.filter((v) => v === id || grants.has(v)).length;
      if (got * 2 <= voters.length) {
        throw new InvariantViolation(
          'electionQuorum',
          `node ${id} leads term ${term} with grants from [${[...grants].join(',')}] of voters [${voters.join(',')}]`,
        );
      }
    }
    // Leader completeness: the highest entry committed in an earlier term.
    let walked = 0;
    for (let i = this.committedIndexMax; i > 0 && walked < COMMITTED_WALK_MAX; i--, walked++) {
      const c = this.committed.get(i);
      if (c !== undefined && c.commitTerm < term) {
        this.leaderChecks.set(id, { term, index: i, chain: c.chain });
        break;
      }
    }
  }

  /** A node sent a vote grant; `isLearner` is its own view of its role. */
  onGrantSent(isLearner: boolean): void {
    if (isLearner) this.learnerGrants++;
  }

  /** A node's pending write became durable. */
  onDurable(id: NodeId, r: FlushResult, disk: SimDisk): void {
    if (r.snapshot !== undefined) this.checkSnapshot(id, r.snapshot, disk.snapshotChainValue);
    for (const e of r.entries) {
      if (e.term >= TERM_LIMIT) throw new InvariantViolation('bounds', `term ${e.term} too large to track`);
      const key = e.index * TERM_LIMIT + e.term;
      const seen = this.chains.get(key);
      if (seen === undefined) this.chains.set(key, e.chain);
      else if (seen !== e.chain) {
        throw new InvariantViolation('logMatching', `node ${id} entry ${e.index}@${e.term} has a different prefix than another log`);
      }
    }
    // Entries that were durable here and are being replaced: none may be committed.
    // (Writing a different entry where this node never held the committed one is
    // fine: a stale leader or its followers append at indexes the new leader
    // has long committed; those entries are truncated later.)
    // Nor is it a violation when the node held the entry without knowing it was
    // committed (it is above the node's durable commit) and the replacing leader's
    // term is below the term the entry was committed in: raft only promises that
    // leaders of the commit term and later hold it (the quorum that committed it
    // is at that term and refuses older leaders). Seed 80705: 58@5 was appended
    // by term 5's leader, acknowledged only by learner 6, and committed in term 9
    // by the same leader's no-op; node 3, paused mid-election in term 6, then won
    // term 6 with grants sent before its pause and overwrote 58 on node 6, paused
    // since term 5 with commit 57. The node's term bounds the replacing leader's.
    for (const t of r.truncated) {
      const c = this.committed.get(t.index);
      const replacement = r.entries.find((e) => e.index === t.index);
      const mayBeOverwritten = c !== undefined && r.hardState.term < c.commitTerm && r.hardState.commit < t.index;
      if (c !== undefined && c.chain === t.chain && replacement?.chain !== t.chain && !mayBeOverwritten) {
        throw new InvariantViolation(
          'committedDurable',
          `node ${id} truncated committed entry ${t.index}@${t.term}${replacement === undefined ? '' : ` (replaced by ${t.index}@${replacement.term})`}${this.lost(t.index)}`,
        );
      }
    }
    const commit = r.hardState.commit;
    if (commit > disk.lastIndex) {
      throw new InvariantViolation('committedDurable', `node ${id} durable commit ${commit} beyond its durable log ${disk.lastIndex}`);
    }
    const chain = disk.chainAt(commit);
    const term = disk.termAt(commit);
    if (commit > 0 && chain !== undefined && term !== undefined) this.markCommitted(id, commit, term, chain, r.hardState.term);
    const check = this.leaderChecks.get(id);
    if (check !== undefined && r.entries.some((e) => e.term === check.term)) {
      this.leaderChecks.delete(id);
      this.checkLeaderHolds(id, check, disk);
    }
  }

  /** A node in term `nodeTerm` applied the entry at `index` (its durable chain there is `chain`). */
  onApply(id: NodeId, nodeTerm: number, index: number, term: number, chain: number, smHash: number): void {
    this.markCommitted(id, index, term, chain, nodeTerm);
    const h = this.smHashes.get(index);
    if (h === undefined) this.smHashes.set(index, smHash);
    else if (h !== smHash) {
      throw new InvariantViolation('stateMachineSafety', `node ${id} state after index ${index} differs from another node's`);
    }
  }

  /** A node in term `nodeTerm` restored its state machine from a snapshot (restart or install). */
  onRestore(id: NodeId, nodeTerm: number, index: number, term: number, smHash: number, logChain: number): void {
    const h = this.smHashes.get(index);
    if (h !== undefined && h !== smHash) {
      throw new InvariantViolation('stateMachineSafety', `node ${id} restored a snapshot at ${index} that differs from the applied history`);
    }
    if (h === undefined) this.smHashes.set(index, smHash);
    this.markCommitted(id, index, term, logChain, nodeTerm);
  }

  /** A write was acknowledged to its client at log index `index`. */
  onAck(index: number): void {
    if (index > this.ackIndexMax) this.ackIndexMax = index;
    if (this.acked.size < ACKS_TRACKED_MAX) this.acked.add(index);
  }

  /** Names a lost entry as an acknowledged write when it was one (for reports). */
  private lost(index: number): string {
    return this.acked.has(index) ? ' — an acknowledged write was lost' : '';
  }

  /** A client issued a read (ReadIndex) with id `readId` at `node`. */
  onReadIssued(readId: number, node: NodeId, leaseBased: boolean): void {
    if (this.reads.size >= READS_TRACKED_MAX) {
      const oldest = this.reads.keys().next();
      if (oldest.done !== true) this.reads.delete(oldest.value);
    }
    // Everything committed before the read was issued, acknowledged or not:
    // ReadIndex returns the leader's commit index after it has committed in
    // its own term, which covers every earlier commit (and so keeps reads
    // monotonic: a read never misses what an earlier read could have seen).
    this.reads.set(readId, { node, ackIndexAtIssue: Math.max(this.ackIndexMax, this.committedIndexMax), leaseBased });
  }

  /**
   * A read was served: raft returned `readIndex`, and the node answered from
   * its state at `appliedIndex` (which a correct host keeps >= readIndex).
   */
  onReadServed(readId: number, readIndex: number, appliedIndex: number, leaseClockStopped = false): void {
    const r = this.reads.get(readId);
    if (r === undefined) return;
    this.reads.delete(readId);
    this.readsChecked++;
    const seen = Math.min(readIndex, appliedIndex);
    if (seen >= r.ackIndexAtIssue) return;
    if (r.leaseBased && leaseClockStopped) {
      this.leaseStaleReadsClockStopped++;
      return;
    }
    throw new InvariantViolation(
      'readIndex',
      `${r.leaseBased ? 'lease-based ' : ''}read ${readId} on node ${r.node} served at read index ${readIndex} from applied index ${appliedIndex}, ` +
        `but index ${r.ackIndexAtIssue} was committed${r.ackIndexAtIssue <= this.ackIndexMax ? ' (or acknowledged)' : ''} before it was issued`,
    );
  }

  /** A crash ends a leader's pending completeness check (it can no longer commit anything). */
  onCrash(id: NodeId): void {
    this.leaderChecks.delete(id);
  }

  /** The global committed entry at `index`, if known. */
  committedAt(index: number): Committed | undefined {
    return this.committed.get(index);
  }

  private markCommitted(id: NodeId, index: number, term: number, chain: number, observerTerm: number): void {
    const c = this.committed.get(index);
    if (c === undefined) {
      this.committed.set(index, { term, chain, commitTerm: Math.max(term, observerTerm) });
      if (index > this.committedIndexMax) this.committedIndexMax = index;
    } else if (c.chain !== chain) {
      throw new InvariantViolation(
        'stateMachineSafety',
        `node ${id} treats ${index}@${term} as committed, but ${index}@${c.term} with a different prefix was committed${this.lost(index)}`,
      );
    }
  }

  private checkSnapshot(id: NodeId, snap: Snapshot, chain: number): void {
    const c = this.committed.get(snap.meta.index);
    if (c !== undefined && c.chain !== chain) {
      throw new InvariantViolation('stateMachineSafety', `node ${id} installed a snapshot at ${snap.meta.index} off the committed history`);
    }
  }

  private checkLeaderHolds(id: NodeId, check: LeaderCheck, disk: SimDisk): void {
    if (check.index > disk.lastIndex) {
      throw new InvariantViolation(
        'leaderCompleteness',
        `leader ${id} of term ${check.term} lacks committed entry ${check.index} (log ends at ${disk.lastIndex})${this.lost(check.index)}`,
      );
    }
    const chain = disk.chainAt(check.index);
    if (chain !== undefined) {
      if (chain !== check.chain) {
        throw new InvariantViolation(
          'leaderCompleteness',
          `leader ${id} of term ${check.term} holds a different entry at committed index ${check.index}${this.lost(check.index)}`,
        );
      }
      return;
    }
    // The entry is below the leader's log truncation point: compare there instead.
    const base = this.committed.get(disk.offset);
    if (base !== undefined && base.chain !== disk.baseChain) {
      throw new InvariantViolation('leaderCompleteness', `leader ${id} of term ${check.term} was compacted off the committed history`);
    }
  }
}
