/**
 * Quiescence: an idle group stops ticking and heartbeating (CockroachDB's
 * design). The leader decides; followers follow its quiesce heartbeat.
 *
 * The quiesce heartbeat is an ordinary raft 'heartbeat' whose context is
 * QUIESCE_CTX. Stepping it into a follower does what any heartbeat does
 * (records the leader, resets the election timer, advances commit) and the
 * follower's raft echoes the context in its 'heartbeatResp'. The host
 * recognises the context on both sides: a follower that receives it from
 * its current leader at its current term stops ticking, and the leader does
 * not wake up for the echoed responses. Raft ignores the context otherwise
 * (recvAck finds no read with it), so no transport or proto change is needed.
 */
import type { Message, NodeId, RaftStatus } from '../raft/index.js';

/**
 * The context marking quiesce heartbeats and their responses. ReadIndex
 * contexts come from state machines as unique request ids; this one starts
 * with a zero byte and a fixed tag, which such ids are not expected to have.
 */
export const QUIESCE_CTX: Uint8Array = new Uint8Array([0x00, 0x6b, 0x73, 0x2d, 0x71, 0x75, 0x69, 0x65, 0x73, 0x63, 0x65]); // "\0ks-quiesce"

/** Is `ctx` the quiesce marker? */
export function isQuiesceContext(ctx: Uint8Array | undefined): boolean {
  if (ctx === undefined || ctx.byteLength !== QUIESCE_CTX.byteLength) return false;
  for (let i = 0; i < ctx.byteLength; i++) if (ctx[i] !== QUIESCE_CTX[i]) return false;
  return true;
}

/** A quiesce heartbeat or its response (these never wake a quiesced group). */
export function isQuiesceMessage(m: Message): boolean {
  return (m.type === 'heartbeat' || m.type === 'heartbeatResp') && isQuiesceContext(m.context);
}

/** What the host knows beyond raft's status when deciding to quiesce. */
export interface QuiesceInputs {
  /** raft has something to persist, send or apply. */
  readonly hasReady: boolean;
  /** This node's proposals not yet applied. */
  readonly proposalsPending: number;
  /** ReadIndex requests not yet answered. */
  readonly readsPending: number;
  /**
   * A read was asked of this leader within the last election timeout. Quiescing forfeits the
   * leader lease (a quiesced leader is not ticked), so a group that is being read stays awake
   * and keeps serving reads from its lease.
   */
  readonly readRecently: boolean;
}

/**
 * Can the leader quiesce now? Everything replicated, committed and applied,
 * every follower caught up and recently heard from (so a dead follower keeps
 * its groups awake; see docs/host.md), no transfer, no joint config, and
 * nothing queued locally.
 */
export function canQuiesce(st: RaftStatus, inputs: QuiesceInputs): boolean {
  if (st.role !== 'leader' || st.leadTransferee !== 0) return false;
  if (inputs.hasReady || inputs.proposalsPending > 0 || inputs.readsPending > 0 || inputs.readRecently) return false;
  if (st.commit !== st.lastIndex || st.applied !== st.commit) return false;
  if (st.config.votersOutgoing.length > 0 || st.uncommittedSize > 0) return false;
  const progress = st.progress;
  if (progress === undefined) return false;
  for (const [id, pr] of progress) {
    if (id === st.id) continue;
    // Replicate state: a probing leader would answer every heartbeat response with an append.
    if (pr.match !== st.lastIndex || !pr.recentActive || pr.state !== 'replicate' || pr.pendingSnapshot !== 0) return false;
  }
  return true;
}

/** The quiesce heartbeat the leader sends to `to` (commit is safe: every follower's match is lastIndex). */
export function quiesceHeartbeat(st: RaftStatus, to: NodeId): Message {
  return {
    type: 'heartbeat',
    to,
    from: st.id,
    term: st.term,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: st.commit,
    reject: false,
    rejectHint: 0,
    context: QUIESCE_CTX,
  };
}
