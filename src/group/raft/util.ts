/**
 * Small shared helpers of the raft core: entry sizes, message construction,
 * empty values. Private to src/group/raft.
 */
import type { ConfState, Entry, HardState, Message, MessageType, Snapshot } from './types.js';
import { NONE } from './types.js';

/**
 * Fixed per-entry overhead counted by size limits (maxSizePerMsg,
 * maxCommittedSizePerReady), roughly an encoded entry header, so that a run
 * of empty entries is still bounded.
 */
export const ENTRY_OVERHEAD_BYTES = 16;

/** Size of an entry as counted by the per-message and per-Ready limits. */
export function entrySize(e: Entry): number {
  return e.data.byteLength + ENTRY_OVERHEAD_BYTES;
}

/** Payload bytes of entries, as counted by maxUncommittedEntriesSize. */
export function payloadSize(ents: readonly Entry[]): number {
  let s = 0;
  for (let i = 0; i < ents.length; i++) s += ents[i]!.data.byteLength;
  return s;
}

/** Keeps a prefix of `ents` whose total size is at most `maxBytes` (always at least one entry). */
export function limitSize(ents: Entry[], maxBytes: number): Entry[] {
  if (ents.length === 0 || maxBytes === Infinity) return ents;
  let size = entrySize(ents[0]!);
  let limit = 1;
  for (; limit < ents.length; limit++) {
    size += entrySize(ents[limit]!);
    if (size > maxBytes) break;
  }
  return limit === ents.length ? ents : ents.slice(0, limit);
}

export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);
export const EMPTY_ENTRIES: readonly Entry[] = Object.freeze([]) as readonly Entry[];

/** The ConfState of a group with no members. */
export const EMPTY_CONF_STATE: ConfState = Object.freeze({
  voters: [],
  learners: [],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
});

export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, vote: NONE, commit: 0 });

/** The zero snapshot (index 0, term 0, no members). */
export const EMPTY_SNAPSHOT: Snapshot = Object.freeze({
  meta: Object.freeze({ index: 0, term: 0, confState: EMPTY_CONF_STATE }),
  data: EMPTY_BYTES,
});

export function isEmptySnapshot(s: Snapshot | undefined): boolean {
  return s === undefined || s.meta.index === 0;
}

export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/** Fields of a message other than its type and addressing; all default to zero values. */
export interface MessageFields {
  term?: number;
  logTerm?: number;
  index?: number;
  entries?: readonly Entry[];
  commit?: number;
  snapshot?: Snapshot;
  reject?: boolean;
  rejectHint?: number;
  context?: Uint8Array;
}

/** Builds a message with every unset field at its zero value (one shape for every message: keeps V8 monomorphic). */
export function makeMessage(type: MessageType, from: number, to: number, f: MessageFields, term = f.term ?? 0): Message {
  const m: {
    type: MessageType; to: number; from: number; term: number; logTerm: number; index: number;
    entries: readonly Entry[]; commit: number; reject: boolean; rejectHint: number;
    snapshot?: Snapshot; context?: Uint8Array;
  } = {
    type,
    to,
    from,
    term,
    logTerm: f.logTerm ?? 0,
    index: f.index ?? 0,
    entries: f.entries ?? EMPTY_ENTRIES,
    commit: f.commit ?? 0,
    reject: f.reject ?? false,
    rejectHint: f.rejectHint ?? 0,
  };
  if (f.snapshot !== undefined) m.snapshot = f.snapshot;
  if (f.context !== undefined) m.context = f.context;
  return m;
}

/** An append message (the hot path: built directly, no options object). */
export function makeAppend(from: number, to: number, term: number, index: number, logTerm: number, entries: readonly Entry[], commit: number): Message {
  return { type: 'app', to, from, term, logTerm, index, entries, commit, reject: false, rejectHint: 0 };
}

/** An append response (hot path). */
export function makeAppendResp(from: number, to: number, term: number, index: number): Message {
  return { type: 'appResp', to, from, term, logTerm: 0, index, entries: EMPTY_ENTRIES, commit: 0, reject: false, rejectHint: 0 };
}

/** Message types only the local host/core may generate; `RawNode.step` rejects them. */
export function isLocalMessage(t: MessageType): boolean {
  return t === 'hup' || t === 'beat' || t === 'unreachable' || t === 'snapStatus' || t === 'checkQuorum';
}

/** Responses; dropped when they come from a peer that is not in the configuration. */
export function isResponseMessage(t: MessageType): boolean {
  return (
    t === 'appResp' || t === 'voteResp' || t === 'heartbeatResp' || t === 'unreachable' || t === 'preVoteResp'
  );
}

/** Byte-wise equality (for read contexts). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A string key for a byte string (read contexts are short); not for display. */
export function bytesKey(a: Uint8Array): string {
  let s = '';
  for (let i = 0; i < a.byteLength; i++) s += String.fromCharCode(a[i]!);
  return s;
}

/** A sorted copy of ids (deterministic iteration over sets). */
export function sortedIds(ids: Iterable<number>): number[] {
  return Array.from(ids).sort((a, b) => a - b);
}
