/**
 * Quorum arithmetic for majority and joint (two-majority) configurations.
 * Pure functions over id sets; no knowledge of progress or messages.
 */
import type { NodeId } from './types.js';

export type VoteResult = 'pending' | 'lost' | 'won';

/** Reused scratch space for committedIndex (the core is single-threaded). */
const scratch: number[] = [];

/**
 * The highest index acknowledged by a majority of `voters`, given each
 * voter's acknowledged index. An empty config returns Infinity so that it
 * never constrains a joint config's other half.
 */
export function majorityCommitted(voters: readonly NodeId[], acked: (id: NodeId) => number): number {
  const n = voters.length;
  if (n === 0) return Infinity;
  if (n === 1) return acked(voters[0]!);
  for (let i = 0; i < n; i++) {
    // Insertion sort, descending: n is tiny (3-7), and this avoids allocating.
    const v = acked(voters[i]!);
    let j = i - 1;
    while (j >= 0 && scratch[j]! < v) {
      scratch[j + 1] = scratch[j]!;
      j--;
    }
    scratch[j + 1] = v;
  }
  // With q = n/2+1 voters needed, the q-th highest ack is committed by a majority.
  return scratch[Math.floor(n / 2)]!;
}

/** Vote outcome in one majority config (votes of non-members are ignored). */
export function majorityVoteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const n = voters.length;
  if (n === 0) return 'won'; // an empty config wins any vote, so joint falls back to the other half
  let yes = 0;
  let missing = 0;
  for (let i = 0; i < n; i++) {
    const v = votes.get(voters[i]!);
    if (v === undefined) missing++;
    else if (v) yes++;
  }
  const q = Math.floor(n / 2) + 1;
  if (yes >= q) return 'won';
  if (yes + missing >= q) return 'pending';
  return 'lost';
}

/** Joint config: both halves must agree. */
export function jointCommitted(
  incoming: readonly NodeId[],
  outgoing: readonly NodeId[],
  acked: (id: NodeId) => number,
): number {
  const a = majorityCommitted(incoming, acked);
  if (outgoing.length === 0) return a;
  return Math.min(a, majorityCommitted(outgoing, acked));
}

export function jointVoteResult(
  incoming: readonly NodeId[],
  outgoing: readonly NodeId[],
  votes: ReadonlyMap<NodeId, boolean>,
): VoteResult {
  const r1 = majorityVoteResult(incoming, votes);
  const r2 = majorityVoteResult(outgoing, votes);
  if (r1 === r2) return r1;
  if (r1 === 'lost' || r2 === 'lost') return 'lost';
  return 'pending'; // one won, the other pending
}
