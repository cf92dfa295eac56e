/**
 * v3electionpb.Election: Campaign, Proclaim, Leader, Observe (server
 * stream), Resign — etcd's v3election service over KV and leases
 * (recipes/election.ts), run against this gateway's own handlers.
 */
import type { CallInfo, GatewayContext, ServiceHandlers, StreamHandler } from './context.js';
import { rawEtcdError } from './errors.js';
import type { EtcdMessage, EtcdServiceName } from './proto.js';
import { campaign, currentLeader, observe, proclaim, resign, type LeaderKey } from './recipes/election.js';
import { LocalClient } from './recipes/local-client.js';

interface WireLeaderKey {
  name?: Buffer;
  key?: Buffer;
  rev?: number;
  lease?: bigint;
}

/** A request's `leader` field; etcd's error when it is missing. */
function leaderOf(m: EtcdMessage): LeaderKey {
  const l = (m as { leader?: WireLeaderKey }).leader;
  if (l === undefined || l === null) throw rawEtcdError('ELECTION_MISSING_LEADER_KEY');
  return { name: l.name ?? Buffer.alloc(0), key: l.key ?? Buffer.alloc(0), rev: l.rev ?? 0, lease: l.lease ?? 0n };
}

/** The Election service's handlers; `services` must hold the KV (and Lease) handlers. */
export function electionService(ctx: GatewayContext, services: ReadonlyMap<EtcdServiceName, ServiceHandlers>): ServiceHandlers {
  const client = (call: CallInfo): LocalClient => new LocalClient(ctx, services, call);
  const observeStream: StreamHandler = {
    streaming: 'server',
    run: async ({ requests, send, call }) => {
      for await (const req of requests) {
        const name = (req as { name?: Buffer }).name ?? Buffer.alloc(0);
        for await (const { kv, header } of observe(client(call), ctx.router, name, call.signal)) {
          await send({ header, kv });
        }
      }
    },
  };
  return {
    Campaign: async (m, call) => {
      const req = m as { name?: Buffer; lease?: bigint; value?: Buffer };
      const c = client(call);
      const lease = await c.sessionLease(req.lease ?? 0n);
      const { leader, header } = await campaign(c, ctx.router, req.name ?? Buffer.alloc(0), lease, req.value ?? Buffer.alloc(0), call.signal);
      return { header, leader };
    },
    Proclaim: async (m, call) => {
      const header = await proclaim(client(call), leaderOf(m), (m as { value?: Buffer }).value ?? Buffer.alloc(0));
      return { header };
    },
    Leader: async (m, call) => {
      const { kv, header } = await currentLeader(client(call), (m as { name?: Buffer }).name ?? Buffer.alloc(0));
      return { header, kv };
    },
    Observe: observeStream,
    Resign: async (m, call) => {
      const header = await resign(client(call), leaderOf(m));
      return { header };
    },
  };
}
