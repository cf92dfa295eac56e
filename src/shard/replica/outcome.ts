/**
 * The outcome of applying one raft entry: what the proposer waiting on the
 * entry is told (src/shard/replica/apply.ts builds them).
 */
import type { Entry } from '../../group/raft/index.js';
import type { ReplicaError } from '../range/errors.js';
import type { ApplyResult, RangeCommand } from './command-codec.js';

/**
 * What applying one entry produced, for the proposer waiting on it. Every
 * outcome has every field (built by {@link entryOutcome}), so the code
 * reading outcomes sees one object shape.
 */
export interface EntryOutcome {
  readonly index: number;
  readonly term: number;
  /** The command's request id (absent for no-ops and undecodable entries). */
  readonly command: RangeCommand | undefined;
  /** The result, applied now or found in the dedupe table. */
  readonly result: ApplyResult | undefined;
  /** A routing rejection: state unchanged, nothing recorded, a retry may apply. */
  readonly rejection: ReplicaError | undefined;
  /** Whether the result came from the dedupe table. */
  readonly duplicate: boolean;
  /** Compaction: resolves when history is physically removed. */
  readonly removal: Promise<void> | undefined;
}

/** The outcome of applying `entry`. */
export function entryOutcome(
  entry: Entry,
  command: RangeCommand | undefined,
  result: ApplyResult | undefined,
  rejection?: ReplicaError,
  duplicate = false,
  removal?: Promise<void>,
): EntryOutcome {
  return { index: entry.index, term: entry.term, command, result, rejection, duplicate, removal };
}
