/**
 * The KV and Lease calls the Lock and Election services make, run against
 * this gateway's own handlers in-process — etcd runs its v3lock and
 * v3election servers over an in-process clientv3 the same way. Each call
 * goes through `invoke`, so validation, routing and error mapping are the
 * ones a client request gets.
 */
import { invoke, isStreamHandler, type CallInfo, type GatewayContext, type ServiceHandlers, type UnaryHandler } from '../context.js';
import { EtcdError, GrpcStatus } from '../errors.js';
import type {
  Compare,
  DeleteRangeResponse,
  Out,
  RangeRequest,
  RangeResponse,
  RequestOp,
  TxnResponse,
} from '../messages.js';
import { CompareResult, CompareTarget, SortOrder, SortTarget } from '../messages.js';
import type { EtcdMessage, EtcdServiceName } from '../proto.js';

/** etcd's default session TTL (clientv3/concurrency), used when a Lock or Campaign names lease 0. */
export const SESSION_TTL_SECONDS_DEFAULT = 60;

/** The end of the span of every key with prefix `p` (clientv3.GetPrefixRangeEnd). */
export function prefixEnd(p: Buffer): Buffer {
  const end = Buffer.from(p);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.of(0); // all 0xff: every key from p
}

/** A RangeRequest with every field at its default, then `fields`. */
export function rangeRequest(key: Buffer, fields: Partial<RangeRequest> = {}): RangeRequest {
  return {
    key,
    range_end: Buffer.alloc(0),
    limit: 0,
    revision: 0,
    sort_order: SortOrder.NONE,
    sort_target: SortTarget.KEY,
    serializable: false,
    keys_only: false,
    count_only: false,
    min_mod_revision: 0,
    max_mod_revision: 0,
    min_create_revision: 0,
    max_create_revision: 0,
    ...fields,
  };
}

/** The oldest key under `prefix` by create revision (clientv3.WithFirstCreate). */
export function firstCreated(prefix: Buffer): RangeRequest {
  return rangeRequest(prefix, { range_end: prefixEnd(prefix), limit: 1, sort_order: SortOrder.ASCEND, sort_target: SortTarget.CREATE });
}

/** The newest key under `prefix` created at or before `maxCreateRevision` (WithLastCreate + WithMaxCreateRev). */
export function lastCreatedBefore(prefix: Buffer, maxCreateRevision: number): RangeRequest {
  return rangeRequest(prefix, {
    range_end: prefixEnd(prefix),
    limit: 1,
    sort_order: SortOrder.DESCEND,
    sort_target: SortTarget.CREATE,
    max_create_revision: maxCreateRevision,
  });
}

/** `create_revision(key) == rev`. */
export function createRevisionIs(key: Buffer, rev: number): Compare {
  return { result: CompareResult.EQUAL, target: CompareTarget.CREATE, key, create_revision: rev, range_end: Buffer.alloc(0) };
}

/** A put op. */
export function putOp(key: Buffer, value: Buffer, lease: bigint): RequestOp {
  return { request_put: { key, value, lease, prev_kv: false, ignore_value: false, ignore_lease: false } };
}

/** A get op. */
export function getOp(req: RangeRequest): RequestOp {
  return { request_range: req };
}

/** A delete op of one key. */
export function deleteOp(key: Buffer): RequestOp {
  return { request_delete_range: { key, range_end: Buffer.alloc(0), prev_kv: false } };
}

/** Calls this gateway's own KV and Lease handlers on behalf of one client call. */
export class LocalClient {
  constructor(
    private readonly ctx: GatewayContext,
    private readonly services: ReadonlyMap<EtcdServiceName, ServiceHandlers>,
    private readonly call: CallInfo,
  ) {}

  /** A Txn. */
  async txn(compare: Compare[], success: RequestOp[], failure: RequestOp[]): Promise<Out<TxnResponse>> {
    return (await this.unary('etcdserverpb.KV', 'Txn', { compare, success, failure })) as Out<TxnResponse>;
  }

  /** A linearizable Range. */
  async range(req: RangeRequest): Promise<Out<RangeResponse>> {
    return (await this.unary('etcdserverpb.KV', 'Range', req as unknown as EtcdMessage)) as Out<RangeResponse>;
  }

  /** Deletes one key. */
  async delete(key: Buffer): Promise<Out<DeleteRangeResponse>> {
    return (await this.unary('etcdserverpb.KV', 'DeleteRange', { key, range_end: Buffer.alloc(0), prev_kv: false })) as Out<DeleteRangeResponse>;
  }

  /**
   * The lease a session of clientv3/concurrency would use: `lease` itself,
   * or a new lease of {@link SESSION_TTL_SECONDS_DEFAULT} when it is 0.
   */
  async sessionLease(lease: bigint): Promise<bigint> {
    if (lease !== 0n) return lease;
    const granted = (await this.unary('etcdserverpb.Lease', 'LeaseGrant', { TTL: SESSION_TTL_SECONDS_DEFAULT, ID: 0n })) as { ID?: bigint };
    return granted.ID ?? 0n;
  }

  private async unary(service: EtcdServiceName, method: string, request: EtcdMessage): Promise<EtcdMessage> {
    const handler = this.handler(service, method);
    return invoke(this.ctx, `${service}/${method}`, handler, request, this.call);
  }

  private handler(service: EtcdServiceName, method: string): UnaryHandler {
    const h = this.services.get(service)?.[method];
    if (h === undefined || isStreamHandler(h)) {
      throw new EtcdError('UNKNOWN', `${service}/${method} is not served`, GrpcStatus.UNIMPLEMENTED);
    }
    return h;
  }
}
