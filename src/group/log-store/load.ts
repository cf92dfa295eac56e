/**
 * Startup recovery: reads every group's state records, then every retained
 * entry, in two ordered scans of the store's key families. Private to the
 * log store.
 */
import type { Engine } from '../../storage/index.js';
import type { ConfState, Entry, HardState, SnapshotMeta } from '../raft/index.js';
import {
  type TruncatedState,
  decodeConfState,
  decodeEntry,
  decodeHardState,
  decodeSnapshotMeta,
  decodeTruncatedState,
} from './codec.js';
import { LogStoreError } from './errors.js';
import type { GroupState, IndexSpan } from './group-log.js';
import {
  LOG_FAMILY_END,
  LOG_FAMILY_START,
  META_FAMILY_END,
  META_FAMILY_START,
  META_SUFFIX,
  decodeEntryKey,
  decodeMetaKey,
} from './keys.js';

/** What startup found: every group's state, and entry keys that are garbage. */
export interface LoadedStore {
  readonly groups: Map<number, GroupState>;
  /** Per group id: entry keys at or below the truncated index, or of groups with no state (a destroy cut short). */
  readonly garbage: Map<number, IndexSpan>;
  /** Ids of groups with entries but no state records. */
  readonly orphans: Set<number>;
}

interface PartialState {
  hardState?: HardState;
  confState?: ConfState;
  snapshotMeta?: SnapshotMeta;
  truncated?: TruncatedState;
}

async function loadStates(engine: Engine): Promise<Map<number, GroupState>> {
  const partial = new Map<number, PartialState>();
  for await (const { key, value } of engine.iterate({ gte: META_FAMILY_START, lt: META_FAMILY_END })) {
    const { groupId, suffix } = decodeMetaKey(key);
    let p = partial.get(groupId);
    if (p === undefined) {
      p = {};
      partial.set(groupId, p);
    }
    switch (suffix) {
      case META_SUFFIX.confState:
        p.confState = decodeConfState(value);
        break;
      case META_SUFFIX.hardState:
        p.hardState = decodeHardState(value);
        break;
      case META_SUFFIX.snapshotMeta:
        p.snapshotMeta = decodeSnapshotMeta(value);
        break;
      case META_SUFFIX.truncatedState:
        p.truncated = decodeTruncatedState(value);
        break;
    }
  }
  const states = new Map<number, GroupState>();
  for (const [groupId, p] of partial) {
    // All four records are written in one batch at creation and deleted in one at destroy.
    if (p.hardState === undefined || p.confState === undefined || p.snapshotMeta === undefined || p.truncated === undefined) {
      throw new LogStoreError('CORRUPT', `group ${groupId} is missing state records`);
    }
    states.set(groupId, {
      hardState: p.hardState,
      confState: p.confState,
      snapshotMeta: p.snapshotMeta,
      truncated: p.truncated,
      entries: [],
    });
  }
  return states;
}

function extend(garbage: Map<number, IndexSpan>, groupId: number, index: number): void {
  const span = garbage.get(groupId);
  garbage.set(groupId, span === undefined ? { lo: index, hi: index } : { lo: Math.min(span.lo, index), hi: Math.max(span.hi, index) });
}

interface RawEntry {
  readonly groupId: number;
  readonly index: number;
  readonly value: Uint8Array;
}

async function scanEntries(engine: Engine): Promise<RawEntry[]> {
  const out: RawEntry[] = [];
  for await (const { key, value } of engine.iterate({ gte: LOG_FAMILY_START, lt: LOG_FAMILY_END })) {
    const { groupId, index } = decodeEntryKey(key);
    out.push({ groupId, index, value });
  }
  return out;
}

/**
 * Reads the whole store. The two scans run concurrently (the engines iterate
 * off the JS thread). Throws CORRUPT on an undecodable record or a hole in a
 * group's log.
 */
export async function loadStore(engine: Engine): Promise<LoadedStore> {
  const [groups, raw] = await Promise.all([loadStates(engine), scanEntries(engine)]);
  const garbage = new Map<number, IndexSpan>();
  const orphans = new Set<number>();
  for (const { groupId, index, value } of raw) {
    const state = groups.get(groupId);
    if (state === undefined) {
      orphans.add(groupId);
      extend(garbage, groupId, index);
      continue;
    }
    // Truncation writes the truncated state first and deletes entries lazily, so these may remain.
    if (index <= state.truncated.index) {
      extend(garbage, groupId, index);
      continue;
    }
    const expected = state.truncated.index + 1 + state.entries.length;
    if (index !== expected) {
      throw new LogStoreError('CORRUPT', `group ${groupId}: log has a hole (expected entry ${expected}, found ${index})`);
    }
    const entry: Entry = decodeEntry(index, value);
    state.entries.push(entry);
  }
  return { groups, garbage, orphans };
}
