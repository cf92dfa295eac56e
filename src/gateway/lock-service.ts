/**
 * v3lockpb.Lock: Lock and Unlock, etcd's v3lock service — a mutex over KV
 * and leases (recipes/mutex.ts), run against this gateway's own handlers.
 */
import type { CallInfo, GatewayContext, ServiceHandlers } from './context.js';
import { responseHeader } from './context.js';
import type { EtcdMessage, EtcdServiceName } from './proto.js';
import { LocalClient } from './recipes/local-client.js';
import { lock } from './recipes/mutex.js';

/** The Lock service's handlers; `services` must hold the KV (and Lease) handlers. */
export function lockService(ctx: GatewayContext, services: ReadonlyMap<EtcdServiceName, ServiceHandlers>): ServiceHandlers {
  return {
    Lock: async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
      const req = m as { name?: Buffer; lease?: bigint };
      const client = new LocalClient(ctx, services, call);
      const lease = await client.sessionLease(req.lease ?? 0n);
      const acquired = await lock(client, ctx.router, req.name ?? Buffer.alloc(0), lease, call.signal);
      return { header: acquired.header ?? responseHeader(ctx, 0, 0), key: acquired.key };
    },
    Unlock: async (m: EtcdMessage, call: CallInfo): Promise<EtcdMessage> => {
      const req = m as { key?: Buffer };
      const resp = await new LocalClient(ctx, services, call).delete(req.key ?? Buffer.alloc(0));
      return { header: resp.header };
    },
  };
}
