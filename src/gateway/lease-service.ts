/**
 * etcdserverpb.Lease: LeaseGrant, LeaseRevoke, LeaseTimeToLive and
 * LeaseLeases (unary) and LeaseKeepAlive (a bidi stream answering each
 * request in order). Leases live in the replicated state of the range that
 * holds the start of the keyspace (today range 1 holds everything; see
 * docs/lease.md for the move to a global lease service). Grants and revokes
 * go through raft; KeepAlive and TimeToLive are answered by the range's
 * leader, whose lessor tracks expiry. On a cluster member whose replica is
 * not the leader, the unary calls are forwarded to the leader's node
 * (forward.ts), and so is each request of a KeepAlive stream, through the
 * internal unary method {@link LEASE_KEEPALIVE_ONCE}.
 *
 * etcd's wire quirks kept: KeepAlive of an unknown lease answers TTL 0 with
 * its ID; TimeToLive of an unknown lease answers TTL -1 with no error.
 */
import { randomBytes } from 'node:crypto';
import { chooseLeaseId, LeaseError } from '../shard/lease/index.js';
import { type GatewayContext, type CallInfo, isStreamHandler, responseHeader, type ServiceHandlers, type StreamHandler, type UnaryHandler } from './context.js';
import { EtcdError, registerErrorMapper } from './errors.js';
import { RequestIds } from './kv-service.js';
import type { LeaseGrantRequest } from './messages.js';
import type { EtcdMessage } from './proto.js';
import { routed, routeOptionsOf, type RangeTarget } from './router.js';
import { effectiveLeaseTtl } from './validate.js';

/** The span lease requests route with: the range holding the start of the keyspace (and every key a revoke may delete). */
const LEASE_SPAN = { key: Buffer.alloc(0), rangeEnd: Buffer.of(0) } as const;

/** A uniformly random 63-bit id candidate. */
function random63(): bigint {
  return BigInt.asUintN(63, randomBytes(8).readBigUInt64BE());
}

let mapperRegistered = false;

/** Lease errors of the replica → etcd's table rows (registered once per process). */
function registerLeaseErrors(): void {
  if (mapperRegistered) return;
  mapperRegistered = true;
  registerErrorMapper((err) => {
    if (!(err instanceof LeaseError)) return undefined;
    return EtcdError.of(err.code === 'LEASE_EXISTS' ? 'LEASE_EXIST' : 'LEASE_TTL_TOO_LARGE', { cause: err });
  });
}

/** The Lease service's handlers. */
export function leaseService(ctx: GatewayContext): ServiceHandlers {
  registerLeaseErrors();
  const ids = new RequestIds();
  const onLeaseRange = <T>(call: CallInfo, send: (t: RangeTarget) => Promise<T>): Promise<T> =>
    routed(ctx.router, LEASE_SPAN.key, LEASE_SPAN.rangeEnd, send, routeOptionsOf(call));

  const grant = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
    const req = m as unknown as LeaseGrantRequest;
    // etcd checks no permission for a grant, but refuses any raft request carrying an invalid token, before the TTL.
    ctx.auth.checkToken(call.metadata);
    effectiveLeaseTtl(req, 0); // too large → etcd's error before anything is proposed
    const requestId = ids.next(call);
    let id = req.ID;
    const reply = await onLeaseRange(call, (t) => {
      // Chosen once, on the first attempt: a retry keeps the id (and request id).
      if (id === 0n) id = chooseLeaseId((x) => t.replica.leaseExists(x), random63);
      return t.replica.leaseGrant(id, effectiveLeaseTtl(req, t.replica.minLeaseTtlSeconds), { epoch: t.epoch, requestId });
    });
    return {
      header: responseHeader(ctx, reply.header.revision, reply.header.raftTerm),
      ID: reply.result.id,
      TTL: reply.result.ttlSeconds,
      error: '',
    };
  };

  const revoke = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
    const id = m['ID'] as bigint;
    const requestId = ids.next(call);
    // An invalid token fails before anything is routed. With auth on, the
    // caller needs WRITE on every attached key: checked at apply, on the keys
    // attached then, for the caller and auth revision the command carries.
    const stamp = ctx.auth.stampLeaseRevoke(call.metadata);
    const reply = await onLeaseRange(call, (t) => t.replica.leaseRevoke(id, { epoch: t.epoch, requestId, ...stamp }));
    return { header: responseHeader(ctx, reply.header.revision, reply.header.raftTerm) };
  };

  const timeToLive = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
    const id = m['ID'] as bigint;
    const r = await onLeaseRange(call, (t) => t.replica.leaseTimeToLive(id, m['keys'] === true));
    return {
      header: responseHeader(ctx, r.revision, r.raftTerm),
      ID: id,
      TTL: r.ttlSeconds,
      grantedTTL: r.grantedTtlSeconds,
      keys: r.keys,
    };
  };

  const leases = async (_m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
    const r = await onLeaseRange(call, async (t) => ({
      list: t.replica.leaseList(),
      revision: t.replica.currentRevision,
      term: t.raftStatus().term,
    }));
    return { header: responseHeader(ctx, r.revision, r.term), leases: r.list.map((l) => ({ ID: l.id })) };
  };

  const keepAliveOnce = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
    const id = m['ID'] as bigint;
    const r = await onLeaseRange(call, (t) => t.replica.leaseKeepAlive(id));
    return { header: responseHeader(ctx, r.revision, r.raftTerm), ID: id, TTL: r.ttlSeconds };
  };

  return {
    LeaseGrant: grant,
    LeaseRevoke: revoke,
    LeaseKeepAlive: keepAliveStream(keepAliveOnce),
    LeaseTimeToLive: timeToLive,
    LeaseLeases: leases,
    [LEASE_KEEPALIVE_ONCE]: keepAliveOnce,
  };
}

/**
 * Name of the internal unary method answering one LeaseKeepAliveRequest
 * (`etcdserverpb.Lease/LeaseKeepAliveOnce`). It is no etcd RPC and has no
 * client path (gRPC serves only the proto's methods, the JSON gateway only
 * its routes); it exists so that KeepAlive on a follower's node can hand each
 * request to the leader's node like any unary call (forward.ts).
 */
export const LEASE_KEEPALIVE_ONCE = 'LeaseKeepAliveOnce';
/** `service/method` of {@link LEASE_KEEPALIVE_ONCE}. */
export const LEASE_KEEPALIVE_ONCE_METHOD = `etcdserverpb.Lease/${LEASE_KEEPALIVE_ONCE}`;

/**
 * LeaseKeepAlive over a unary keepalive-once handler: each request answered
 * in order, one at a time, as etcd does. The server passes the handler as
 * clients reach it (wrapped for forwarding), so each request on a follower's
 * node is answered by the leader's.
 */
export function keepAliveStream(once: UnaryHandler): StreamHandler {
  return {
    streaming: 'bidi',
    async run({ requests, send, call }) {
      for await (const m of requests) await send(await once(m, call));
    },
  };
}

/**
 * Rebinds the Lease service's KeepAlive to the keepalive-once handler found
 * in `services` (the wrapped one, after the server wrapped unary handlers).
 */
export function bindKeepAlive(services: Map<string, ServiceHandlers>): void {
  const lease = services.get('etcdserverpb.Lease');
  const once = lease?.[LEASE_KEEPALIVE_ONCE];
  if (lease === undefined || once === undefined || isStreamHandler(once)) return;
  services.set('etcdserverpb.Lease', { ...lease, LeaseKeepAlive: keepAliveStream(once) });
}
