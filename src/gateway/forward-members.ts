/**
 * A member as --initial-cluster names it: the members a cluster is
 * bootstrapped with (recorded in range 1's descriptor, replicated-members.ts),
 * and the fallback for names and peer URLs of data directories made before
 * the descriptor recorded them.
 */

/** A member as --initial-cluster names it. */
export interface StaticMember {
  readonly nodeId: number;
  readonly name: string;
  readonly peerUrls: readonly string[];
}
