/**
 * What a member serves in its current role (reference/etcd-api.md §2.9).
 * A learner (etcd 3.4 v3rpc isRPCSupportedForLearner) serves
 * Maintenance/Status and serializable KV/Range; every other unary call fails
 * with "etcdserver: rpc not supported for learner" (Unavailable), so a
 * client's balancer tries another endpoint. A member removed from the
 * cluster answers every call with "etcdserver: server stopped"
 * (Unavailable), as an etcd member that has stopped after its removal.
 */
import type { UnaryHandler } from './context.js';
import { EtcdError } from './errors.js';
import type { EtcdMessage } from './proto.js';

/** A member's role as range 1's applied descriptor on its own node has it. */
export type MemberRole = 'voter' | 'learner' | 'removed';

/** Whether a learner may serve `method` (`service/method`) with this request. */
export function servedByLearner(method: string, request: EtcdMessage): boolean {
  if (method === 'etcdserverpb.Maintenance/Status') return true;
  return method === 'etcdserverpb.KV/Range' && request['serializable'] === true;
}

/** Wraps `handler` so that it refuses what the member's current role (`role()`) does not serve. */
export function memberGuard(method: string, handler: UnaryHandler, role: () => MemberRole): UnaryHandler {
  return async (request, call) => {
    const r = role();
    if (r === 'removed') throw EtcdError.of('STOPPED');
    if (r === 'learner' && !servedByLearner(method, request)) throw EtcdError.of('NOT_SUPPORTED_FOR_LEARNER');
    return handler(request, call);
  };
}
