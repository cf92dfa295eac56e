/**
 * Where a write's revision comes from (DESIGN property 1).
 *
 * Today (one range per cluster) the range's own counter assigns the revision
 * at apply time: current + 1, the same on every replica because they apply
 * the same log in the same order. Later the placement driver's TSO hands a
 * revision to the proposer, which puts it in the command's `revision` field;
 * the apply then uses it as is (rejecting one not above the current
 * revision). The proposer asks a `RevisionSource` which of the two it is.
 */
import type { RangeCommand } from './command-codec.js';
import { RevisionRejectedError } from '../range/errors.js';

/** Asked by the proposer for each write command. */
export interface RevisionSource {
  /**
   * A revision to carry in the command, or undefined to let the range's
   * counter assign current + 1 at apply. May be asynchronous (a TSO call).
   */
  allocate(): number | undefined | Promise<number | undefined>;
}

/** The range's own counter: no revision in the command. */
export const RANGE_COUNTER_REVISION_SOURCE: RevisionSource = Object.freeze({ allocate: () => undefined });

/**
 * The revision a write command consumes when applied on a range whose
 * current revision is `current`. Deterministic: depends only on the entry
 * and the replicated state. Throws RevisionRejectedError for a handed-in
 * revision at or below the current one.
 */
export function writeRevision(cmd: Pick<RangeCommand, 'revision'>, current: number): number {
  if (cmd.revision === undefined) return current + 1;
  if (cmd.revision <= current) throw new RevisionRejectedError(cmd.revision, current);
  return cmd.revision;
}
