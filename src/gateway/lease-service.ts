/**
 * etcdserverpb.Lease: LeaseGrant, LeaseRevoke, LeaseTimeToLive and
 * LeaseLeases (unary) and LeaseKeepAlive (a bidi stream answering each
 * request in order). Leases live in the replicated state of the range that
 * holds the start of the keyspace (today range 1 holds everything; see
 * docs/lease.md for the move to a global lease service). Grants and revokes
 * go through raft; KeepAlive and TimeToLive are answered by the range's
 * leader, whose lessor tracks expiry (a follower answers NotLeader, which
 * the routing layer retries).
 *
 * etcd's wire quirks kept: KeepAlive of an unknown lease answers TTL 0 with
 * its ID; TimeToLive of an unknown lease answers TTL -1 with no error.
 */
import { randomBytes } from 'node:crypto';
import { chooseLeaseId, LeaseError } from '../shard/lease/index.js';
import { type GatewayContext, type CallInfo, responseHeader, type ServiceHandlers, type StreamHandler } from './context.js';
import { EtcdError, registerErrorMapper } from './errors.js';
import { RequestIds } from './kv-service.js';
import type { LeaseGrantRequest } from './messages.js';
import type { EtcdMessage } from './proto.js';
import { routed, type RangeTarget } from './router.js';
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
    routed(ctx.router, LEASE_SPAN.key, LEASE_SPAN.rangeEnd, send, { signal: call.signal });

  const grant = async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
    const req = m as unknown as LeaseGrantRequest;
    effectiveLeaseTtl(req, 0); // too large → etcd's error before anything is proposed
    const requestId = ids.next();
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
    const requestId = ids.next();
    const reply = await onLeaseRange(call, (t) => t.replica.leaseRevoke(id, { epoch: t.epoch, requestId }));
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

  const keepAlive: StreamHandler = {
    streaming: 'bidi',
    async run({ requests, send, call }) {
      for await (const m of requests) {
        const id = m['ID'] as bigint;
        const r = await onLeaseRange(call, (t) => t.replica.leaseKeepAlive(id));
        await send({ header: responseHeader(ctx, r.revision, r.raftTerm), ID: id, TTL: r.ttlSeconds });
      }
    },
  };

  return {
    LeaseGrant: grant,
    LeaseRevoke: revoke,
    LeaseKeepAlive: keepAlive,
    LeaseTimeToLive: timeToLive,
    LeaseLeases: leases,
  };
}
