/**
 * etcd's space quota (`--quota-backend-bytes`, etcd 3.4 etcdserver/quota.go
 * and v3rpc/quota.go) and the request restrictions of active alarms.
 *
 * Before a Put, a Txn or a LeaseGrant is proposed, its cost is estimated
 * (a put: 256 bytes of overhead + key + value; a txn: the costlier of its
 * two branches; a lease grant: 64 bytes). A request that costs nothing (a
 * txn without puts) always passes; otherwise, if the node's data size +
 * cost is not below the quota, the node raises NOSPACE and the request fails
 * with `etcdserver: mvcc: database space exceeded`. While NOSPACE is active,
 * every request with a cost fails the same way, also once compaction and
 * defragmentation have made room, until the alarm is disarmed (etcd's
 * capped applier). See alarm.ts for CORRUPT.
 */
import { AlarmType, type AlarmStore } from './alarm.js';
import { EtcdError } from './errors.js';
import type { PutRequest, RequestOp, TxnRequest } from './messages.js';
import type { EtcdMessage } from './proto.js';
import { isStreamHandler, type CallInfo, type ServiceHandlers, type UnaryHandler } from './context.js';

/** etcd's default quota (`--quota-backend-bytes` 0 or unset): 2 GiB. */
export const DEFAULT_QUOTA_BACKEND_BYTES = 2 * 1024 * 1024 * 1024;
/** The largest quota etcd suggests (a warning there, accepted here too). */
export const MAX_SUGGESTED_QUOTA_BACKEND_BYTES = 8 * 1024 * 1024 * 1024;
/** Cost of a put beyond its key and value (etcd's kvOverhead). */
export const KV_OVERHEAD_BYTES = 256;
/** Cost of a lease grant (etcd's leaseOverhead). */
export const LEASE_OVERHEAD_BYTES = 64;
/**
 * The node's data size is read at most this often for quota checks (reading
 * it walks the engine directory); a request in between uses the last value.
 */
export const QUOTA_SIZE_REFRESH_MS = 100;
/**
 * A reading up to this old still lets a request that fits pass at once while
 * a fresh one is read in the background (under load the reading is never
 * much older than the refresh interval); an older one is waited for.
 */
export const QUOTA_SIZE_STALE_PASS_MS = 10 * QUOTA_SIZE_REFRESH_MS;

/**
 * The quota in bytes for etcd's `--quota-backend-bytes` value: 0 or unset is
 * the 2 GiB default, a negative value disables the quota (Infinity).
 */
export function resolveQuotaBytes(configured: number | undefined): number {
  if (configured === undefined || configured === 0) return DEFAULT_QUOTA_BACKEND_BYTES;
  if (!Number.isSafeInteger(configured)) throw new RangeError(`quota-backend-bytes must be an integer, got ${configured}`);
  return configured < 0 ? Infinity : configured;
}

/** etcd's cost of a Put. */
export function putCost(r: Pick<PutRequest, 'key' | 'value'>): number {
  return KV_OVERHEAD_BYTES + (r.key?.length ?? 0) + (r.value?.length ?? 0);
}

/**
 * etcd's cost of a Txn: the costlier branch, each branch the sum of its
 * puts. A put inside a nested txn counts here (etcd 3.4 counts only the
 * top-level puts, so a nested put slips past its quota).
 */
export function txnCost(r: Pick<TxnRequest, 'success' | 'failure'>): number {
  return Math.max(branchCost(r.success ?? []), branchCost(r.failure ?? []));
}

function branchCost(ops: readonly RequestOp[]): number {
  let cost = 0;
  for (const op of ops) {
    if (op.request_put !== undefined) cost += putCost(op.request_put);
    else if (op.request_txn !== undefined) cost += txnCost(op.request_txn);
  }
  return cost;
}

/** The node's space quota: `available(cost)` as etcd's backendQuota.Available. */
export class SpaceQuota {
  private sizeBytes = 0;
  private readAtMs = -Infinity;
  private reading: Promise<number> | undefined;

  constructor(
    /** The quota (Infinity: disabled). */
    readonly quotaBytes: number,
    private readonly readSize: () => Promise<number>,
    private readonly refreshMs: number = QUOTA_SIZE_REFRESH_MS,
    private readonly nowMs: () => number = Date.now,
    private readonly stalePassMs: number = QUOTA_SIZE_STALE_PASS_MS,
  ) {}

  /**
   * Whether a request of `cost` bytes fits: free requests always do. A pass
   * may rest on a reading up to the refresh interval old, or up to
   * QUOTA_SIZE_STALE_PASS_MS old while a fresh one is read in the background
   * (no request waits for the directory walk a refresh costs, which used to
   * land on every hundredth put at one client); a refusal always rests on a
   * fresh reading, so space freed by compaction counts at once.
   */
  async available(cost: number): Promise<boolean> {
    return this.fitsNow(cost) ?? (await this.readFresh()) + cost < this.quotaBytes;
  }

  /**
   * {@link available} without waiting: true when the reading at hand lets
   * the request pass, undefined when the answer needs a fresh reading.
   */
  fitsNow(cost: number): true | undefined {
    if (cost === 0 || this.quotaBytes === Infinity) return true;
    if (this.sizeBytes + cost < this.quotaBytes) {
      const age = this.nowMs() - this.readAtMs;
      if (age < this.refreshMs) return true;
      if (age < this.stalePassMs) {
        this.readFresh().catch(() => undefined); // a failure surfaces on the next awaited read
        return true;
      }
    }
    return undefined;
  }

  /** Reads the data size now (concurrent callers share one read). */
  private readFresh(): Promise<number> {
    this.reading ??= this.readSize().then(
      (n) => {
        this.sizeBytes = n;
        this.readAtMs = this.nowMs();
        this.reading = undefined;
        return n;
      },
      (err: unknown) => {
        this.reading = undefined;
        throw err;
      },
    );
    return this.reading;
  }
}

/** What {@link guardServices} needs. */
export interface QuotaGuardContext {
  readonly alarms: AlarmStore;
  readonly spaceQuota: SpaceQuota;
  /** This node's member id: the member a NOSPACE alarm is raised for. */
  readonly memberId: bigint;
}

/** The cost of each quota-checked RPC, keyed `service/method`. */
const QUOTA_COSTS: Readonly<Record<string, (m: EtcdMessage) => number>> = {
  'etcdserverpb.KV/Put': (m) => putCost(m as unknown as PutRequest),
  'etcdserverpb.KV/Txn': (m) => txnCost(m as unknown as TxnRequest),
  'etcdserverpb.Lease/LeaseGrant': () => LEASE_OVERHEAD_BYTES,
};

/** RPCs a CORRUPT alarm refuses (etcd's corrupt applier). */
const CORRUPT_REFUSED = new Set([
  'etcdserverpb.KV/Range',
  'etcdserverpb.KV/Put',
  'etcdserverpb.KV/DeleteRange',
  'etcdserverpb.KV/Txn',
  'etcdserverpb.KV/Compact',
  'etcdserverpb.Lease/LeaseGrant',
  'etcdserverpb.Lease/LeaseRevoke',
]);

/**
 * Wraps the quota-checked and alarm-restricted RPCs among `services` (the
 * map both gRPC and the JSON gateway serve from), leaving every other
 * handler as it is.
 */
export function guardServices<K extends string>(services: ReadonlyMap<K, ServiceHandlers>, ctx: QuotaGuardContext): Map<K, ServiceHandlers> {
  const out = new Map<K, ServiceHandlers>();
  for (const [service, handlers] of services) {
    const wrapped: Record<string, ServiceHandlers[string]> = {};
    for (const [method, handler] of Object.entries(handlers)) {
      const name = `${service}/${method}`;
      const cost = QUOTA_COSTS[name];
      const corrupt = CORRUPT_REFUSED.has(name);
      wrapped[method] = isStreamHandler(handler) || (cost === undefined && !corrupt) ? handler : guard(handler, cost, corrupt, ctx);
    }
    out.set(service, wrapped);
  }
  return out;
}

function guard(handler: UnaryHandler, cost: ((m: EtcdMessage) => number) | undefined, corrupt: boolean, ctx: QuotaGuardContext): UnaryHandler {
  // Not an async function: a request that fits on the quota reading at hand
  // (nearly every one) goes to the handler without an await of its own.
  const admit = (request: EtcdMessage, call: CallInfo, c: number): Promise<EtcdMessage> => {
    if (corrupt && ctx.alarms.has(AlarmType.CORRUPT)) return Promise.reject(EtcdError.of('CORRUPT'));
    if (c > 0 && ctx.alarms.has(AlarmType.NOSPACE)) return Promise.reject(EtcdError.of('NO_SPACE'));
    return handler(request, call);
  };
  return (request, call) => {
    if (cost === undefined) return admit(request, call, 0);
    let c: number;
    try {
      c = cost(request);
    } catch (err) {
      return Promise.reject(err);
    }
    if (ctx.spaceQuota.fitsNow(c) === true) return admit(request, call, c);
    return ctx.spaceQuota.available(c).then((fits) => {
      if (!fits) {
        ctx.alarms.activate(ctx.memberId, AlarmType.NOSPACE);
        throw EtcdError.of('NO_SPACE');
      }
      return admit(request, call, c);
    });
  };
}
