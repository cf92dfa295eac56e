/**
 * The request-scoped switch between "wait for a local leader" and "hand the
 * call to the leader's node". A gateway that can forward runs each unary
 * handler inside a {@link ForwardScope}; {@link routed} (router.ts) then
 * answers a NotLeaderError whose hint names another node at once with a
 * {@link LeaderElsewhereError} instead of retrying locally, and the
 * forwarding wrapper (forward.ts) sends the call there. Without a scope (a
 * single node, tests of the router) routing behaves as before.
 *
 * AsyncLocalStorage carries the scope through the handler's awaits, so the
 * service handlers need no extra parameter.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
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

/** The scope of the running call, if any. */
export const forwardScope = new AsyncLocalStorage<ForwardScope>();

/** A range's leader is on another node: the call must run there. */
export class LeaderElsewhereError extends Error {
  override readonly name = 'LeaderElsewhereError';
  readonly code = 'LEADER_ELSEWHERE';
  constructor(
    /** Node id of the leader named by the replica's hint. */
    readonly leaderNodeId: number,
    options: { cause: NotLeaderError },
  ) {
    super(`range ${options.cause.rangeId}: the leader is on node ${leaderNodeId}`, options);
  }
}

/**
 * The node a NotLeaderError points the running call to, when the call runs
 * in a forwarding scope and the hint names another node; else undefined.
 */
export function leaderElsewhere(err: NotLeaderError): number | undefined {
  const scope = forwardScope.getStore();
  const node = err.leaderHint?.nodeId ?? 0;
  if (scope === undefined || node === 0 || node === scope.localNodeId) return undefined;
  return node;
}

/** The request id the running call must use for its write, if it runs in a forwarding scope. */
export function scopedRequestId(): RequestId | undefined {
  return forwardScope.getStore()?.requestId;
}
