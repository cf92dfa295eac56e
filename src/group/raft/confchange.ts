/**
 * Membership changes: the Changer that computes a new (possibly joint)
 * configuration from the current one, and the byte encoding that carries a
 * ConfChange in a confChange log entry.
 *
 * Rules (as in raft §4.3 / etcd's confchange):
 * - a "simple" change alters at most one voter and applies directly;
 * - anything else enters a joint config (C_old,new) first; leaving it is a
 *   second, empty conf change (proposed by the leader itself when autoLeave);
 * - a voter demoted to learner while it is still an outgoing voter is parked
 *   in learnersNext until the joint config is left.
 */
import type { ConfChange, ConfChangeSingle, ConfChangeType, ConfState, NodeId } from './types.js';
import { ConfChangeInvalidError, invariant } from './errors.js';
import { Progress } from './progress.js';
import { cloneTrackerConfig, isJoint, type TrackerConfig } from './tracker.js';

/** Result of a change: the new config and progress map (the inputs are not modified). */
export interface ChangeResult {
  config: TrackerConfig;
  progress: Map<NodeId, Progress>;
}

/** Does `cc` ask to leave a joint config? */
export function isLeaveJoint(cc: ConfChange): boolean {
  return cc.changes.length === 0;
}

/** Does `cc` enter a joint config, and with autoLeave? */
export function enterJointOf(cc: ConfChange): { enter: boolean; autoLeave: boolean } {
  if (cc.transition !== 'auto' || cc.changes.length > 1) {
    switch (cc.transition) {
      case 'auto':
      case 'joint':
        return { enter: true, autoLeave: true };
      case 'jointExplicit':
        return { enter: true, autoLeave: false };
    }
  }
  return { enter: false, autoLeave: false };
}

/** Computes configuration transitions on copies of the tracker's state. */
export class Changer {
  private readonly config: TrackerConfig;
  private readonly progress: Map<NodeId, Progress>;
  private readonly lastIndex: number;
  private readonly maxInflight: number;

  constructor(config: TrackerConfig, progress: ReadonlyMap<NodeId, Progress>, lastIndex: number, maxInflight: number) {
    this.config = cloneTrackerConfig(config);
    this.progress = new Map();
    for (const [id, pr] of progress) this.progress.set(id, pr.clone());
    this.lastIndex = lastIndex;
    this.maxInflight = maxInflight;
  }

  /** Applies `cc` as the state machine would: leave joint, enter joint, or simple. */
  apply(cc: ConfChange): ChangeResult {
    if (isLeaveJoint(cc) && isJoint(this.config)) return this.leaveJoint();
    const { enter, autoLeave } = enterJointOf(cc);
    if (enter) return this.enterJoint(autoLeave, cc.changes);
    return this.simple(cc.changes);
  }

  enterJoint(autoLeave: boolean, ccs: readonly ConfChangeSingle[]): ChangeResult {
    if (isJoint(this.config)) throw new ConfChangeInvalidError('config is already joint');
    if (this.config.voters.size === 0) throw new ConfChangeInvalidError("can't make a zero-voter config joint");
    for (const id of this.config.voters) this.config.outgoing.add(id);
    this.applyChanges(ccs);
    this.config.autoLeave = autoLeave;
    return this.finish();
  }

  leaveJoint(): ChangeResult {
    if (!isJoint(this.config)) throw new ConfChangeInvalidError("can't leave a non-joint config");
    for (const id of this.config.learnersNext) {
      this.config.learners.add(id);
      this.progress.get(id)!.isLearner = true;
    }
    this.config.learnersNext.clear();
    for (const id of this.config.outgoing) {
      if (!this.config.voters.has(id) && !this.config.learners.has(id)) this.progress.delete(id);
    }
    this.config.outgoing.clear();
    this.config.autoLeave = false;
    return this.finish();
  }

  simple(ccs: readonly ConfChangeSingle[]): ChangeResult {
    if (isJoint(this.config)) throw new ConfChangeInvalidError("can't apply a simple config change in a joint config");
    const before = new Set(this.config.voters);
    this.applyChanges(ccs);
    let diff = 0;
    for (const id of before) if (!this.config.voters.has(id)) diff++;
    for (const id of this.config.voters) if (!before.has(id)) diff++;
    if (diff > 1) throw new ConfChangeInvalidError('more than one voter changed without entering joint config');
    return this.finish();
  }

  private applyChanges(ccs: readonly ConfChangeSingle[]): void {
    for (const cc of ccs) {
      if (cc.nodeId === 0) continue; // etcd convention: a zeroed id cancels the change
      switch (cc.type) {
        case 'addNode':
          this.makeVoter(cc.nodeId);
          break;
        case 'addLearner':
          this.makeLearner(cc.nodeId);
          break;
        case 'removeNode':
          this.remove(cc.nodeId);
          break;
      }
    }
    if (this.config.voters.size === 0) throw new ConfChangeInvalidError('removed all voters');
  }

  private makeVoter(id: NodeId): void {
    const pr = this.progress.get(id);
    if (pr === undefined) {
      this.initProgress(id, false);
      return;
    }
    pr.isLearner = false;
    this.config.learners.delete(id);
    this.config.learnersNext.delete(id);
    this.config.voters.add(id);
  }

  private makeLearner(id: NodeId): void {
    const pr = this.progress.get(id);
    if (pr === undefined) {
      this.initProgress(id, true);
      return;
    }
    if (pr.isLearner) return;
    this.remove(id);
    this.progress.set(id, pr); // remove() may have dropped it; we keep tracking the node
    if (this.config.outgoing.has(id)) {
      // Still a voter of the outgoing half: it becomes a learner only when joint is left.
      this.config.learnersNext.add(id);
    } else {
      pr.isLearner = true;
      this.config.learners.add(id);
    }
  }

  private remove(id: NodeId): void {
    if (!this.progress.has(id)) return;
    this.config.voters.delete(id);
    this.config.learners.delete(id);
    this.config.learnersNext.delete(id);
    if (!this.config.outgoing.has(id)) this.progress.delete(id);
  }

  private initProgress(id: NodeId, isLearner: boolean): void {
    if (isLearner) this.config.learners.add(id);
    else this.config.voters.add(id);
    // next = lastIndex: the first probe reveals where the new node's log stands.
    // recentActive: a new node must not make check-quorum fail immediately.
    this.progress.set(
      id,
      new Progress({ match: 0, next: Math.max(this.lastIndex, 1), maxInflight: this.maxInflight, isLearner, recentActive: true }),
    );
  }

  /** Checks the invariants of the (unchanged) config; used by restoreConfig. */
  check(): ChangeResult {
    return this.finish();
  }

  private finish(): ChangeResult {
    const c = this.config;
    for (const id of c.voters) invariant(this.progress.has(id), () => `no progress for voter ${id}`);
    for (const id of c.outgoing) invariant(this.progress.has(id), () => `no progress for outgoing voter ${id}`);
    for (const id of c.learners) {
      invariant(!c.voters.has(id) && !c.outgoing.has(id), () => `${id} is both learner and voter`);
      invariant(this.progress.get(id)?.isLearner === true, () => `learner ${id} not marked as learner`);
    }
    for (const id of c.learnersNext) {
      invariant(c.outgoing.has(id), () => `learnerNext ${id} is not an outgoing voter`);
    }
    if (!isJoint(c)) invariant(c.learnersNext.size === 0 && !c.autoLeave, 'non-joint config with joint leftovers');
    return { config: c, progress: this.progress };
  }
}

/**
 * Builds the config a ConfState describes (startup, snapshot restore). This
 * is not a change, so the one-voter-at-a-time rule does not apply; the
 * result is checked against the same invariants.
 */
export function restoreConfig(cs: ConfState, lastIndex: number, maxInflight: number): ChangeResult {
  const config: TrackerConfig = {
    voters: new Set(cs.voters),
    outgoing: new Set(cs.votersOutgoing),
    learners: new Set(cs.learners),
    learnersNext: new Set(cs.learnersNext),
    autoLeave: cs.autoLeave,
  };
  const progress = new Map<NodeId, Progress>();
  const all = [...cs.voters, ...cs.votersOutgoing, ...cs.learners, ...cs.learnersNext].sort((a, b) => a - b);
  for (const id of all) {
    if (progress.has(id)) continue;
    progress.set(
      id,
      new Progress({
        match: 0, next: Math.max(lastIndex, 1), maxInflight, isLearner: config.learners.has(id), recentActive: true,
      }),
    );
  }
  const ch = new Changer(config, progress, lastIndex, maxInflight);
  return ch.check();
}

/** Encoding of ConfChange in entry data, version 1 (all integers big-endian). */
const CC_VERSION = 1;
const TRANSITIONS = ['auto', 'joint', 'jointExplicit'] as const;
const CHANGE_TYPES: readonly ConfChangeType[] = ['addNode', 'addLearner', 'removeNode'];
const NO_CONTEXT = 0xffffffff;

/**
 * Encodes a ConfChange for a confChange entry:
 * u8 version, u8 transition, u32 count, count * (u8 type, u64 nodeId),
 * u32 context length (0xffffffff = none), context bytes.
 */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  const ctxLen = cc.context === undefined ? 0 : cc.context.byteLength;
  const out = new Uint8Array(1 + 1 + 4 + cc.changes.length * 9 + 4 + ctxLen);
  const dv = new DataView(out.buffer);
  let o = 0;
  dv.setUint8(o++, CC_VERSION);
  dv.setUint8(o++, TRANSITIONS.indexOf(cc.transition));
  dv.setUint32(o, cc.changes.length);
  o += 4;
  for (const ch of cc.changes) {
    if (!Number.isSafeInteger(ch.nodeId) || ch.nodeId < 0) throw new ConfChangeInvalidError(`bad node id ${ch.nodeId}`);
    dv.setUint8(o++, CHANGE_TYPES.indexOf(ch.type));
    dv.setBigUint64(o, BigInt(ch.nodeId));
    o += 8;
  }
  dv.setUint32(o, cc.context === undefined ? NO_CONTEXT : ctxLen);
  o += 4;
  if (cc.context !== undefined) out.set(cc.context, o);
  return out;
}

/** Decodes what encodeConfChange produced; an empty byte string is the empty (leave-joint) change. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  if (data.byteLength === 0) return { changes: [], transition: 'auto' };
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const fail = (why: string): never => {
    throw new ConfChangeInvalidError(`cannot decode conf change: ${why}`);
  };
  if (data.byteLength < 10) fail('too short');
  let o = 0;
  if (dv.getUint8(o++) !== CC_VERSION) fail('unknown version');
  const transition = TRANSITIONS[dv.getUint8(o++)] ?? fail('unknown transition');
  const n = dv.getUint32(o);
  o += 4;
  if (data.byteLength < 6 + n * 9 + 4) fail('truncated changes');
  const changes: ConfChangeSingle[] = [];
  for (let i = 0; i < n; i++) {
    const type = CHANGE_TYPES[dv.getUint8(o++)] ?? fail('unknown change type');
    const big = dv.getBigUint64(o);
    o += 8;
    if (big > BigInt(Number.MAX_SAFE_INTEGER)) fail('node id is not a safe integer');
    changes.push({ type, nodeId: Number(big) });
  }
  const ctxLen = dv.getUint32(o);
  o += 4;
  if (ctxLen === NO_CONTEXT) {
    if (o !== data.byteLength) fail('trailing bytes');
    return { changes, transition };
  }
  if (o + ctxLen !== data.byteLength) fail('bad context length');
  return { changes, transition, context: data.slice(o, o + ctxLen) };
}
