/**
 * The per-call switch between "wait for a local leader" and "hand the call
 * to the leader's node". A gateway that can forward gives each unary call a
 * {@link ForwardScope} (`CallInfo.forward`, set by the forwarding wrapper in
 * forward.ts); the handlers pass it on to {@link routed} (router.ts), which
 * then answers a NotLeaderError whose hint names another node at once with a
 * {@link LeaderElsewhereError} instead of retrying locally, and the wrapper
 * sends the call there. Without a scope (a single node, a call no wrapper
 * ran, tests of the router) routing behaves as before.
 *
 * The scope travels explicitly with the call, not in Node's implicit async
 * context storage: once used, that storage turns on promise hooks for every
 * promise of the process (Node 20), a cost every request would pay.
 */
import type { NotLeaderError, RequestId } from '../shard/replica/index.js';

/** The forwarding context of one call. */
export interface ForwardScope {
  /** This node's id: a hint naming it is no reason to forward. */
  readonly localNodeId: number;
  /** True on the node that received a forwarded call: it never forwards again (one hop). */
  readonly forwarded: boolean;
  /**
   * The request id of the call's write, fixed by the node the client called
   * and carried along every forward, so each attempt on any node proposes
   * the same id (the dedupe table makes retries exactly-once).
   */
  readonly requestId: RequestId;
}

/** A range's leader is on another node: the call must run there. */
export class LeaderElsewhereError extends Error {
  override readonly name = 'LeaderElsewhereError';
  readonly code = 'LEADER_ELSEWHERE';
  constructor(
    /** Node id of the leader named by the replica's hint. */
    readonly leaderNodeId: number,
    options: { cause: NotLeaderError },
  ) {
    // No stack trace: it redirects every call a follower forwards (see NotLeaderError).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super(`range ${options.cause.rangeId}: the leader is on node ${leaderNodeId}`, options);
    } finally {
      Error.stackTraceLimit = limit;
    }
  }
}

/**
 * The node a NotLeaderError points a call to, when the call runs in a
 * forwarding `scope` and the hint names another node; else undefined.
 */
export function leaderElsewhere(err: NotLeaderError, scope: ForwardScope | undefined): number | undefined {
  const node = err.leaderHint?.nodeId ?? 0;
  if (scope === undefined || node === 0 || node === scope.localNodeId) return undefined;
  return node;
}
