/**
 * TypeScript shapes of the etcd messages the gateway handles most (KV, Watch,
 * Lease), in the in-memory form that `proto.ts` decodes to and encodes from:
 * .proto field names, `Buffer` bytes, enums as numbers, lease and member IDs
 * as `bigint`, other 64-bit integers as safe numbers.
 *
 * Decoded requests have every scalar and repeated field filled in, so these
 * interfaces mark them required; message fields and oneof members are
 * optional. When building a response, scalars may be left out (they encode
 * as their default), hence the `Out` helper for handlers.
 */

/** `T` with every field optional: what a handler may hand to the encoder. */
export type Out<T> = { [K in keyof T]?: T[K] };

/** etcdserverpb.ResponseHeader. */
export interface ResponseHeader {
  cluster_id: bigint;
  member_id: bigint;
  revision: number;
  raft_term: number;
}

/** mvccpb.KeyValue. */
export interface KeyValue {
  key: Buffer;
  create_revision: number;
  mod_revision: number;
  version: number;
  value: Buffer;
  lease: bigint;
}

/** mvccpb.Event.EventType values. */
export const EventType = { PUT: 0, DELETE: 1 } as const;

/** mvccpb.Event. */
export interface Event {
  type: number;
  kv?: KeyValue;
  prev_kv?: KeyValue;
}

/** etcdserverpb.RangeRequest.SortOrder values. */
export const SortOrder = { NONE: 0, ASCEND: 1, DESCEND: 2 } as const;
/** etcdserverpb.RangeRequest.SortTarget values. */
export const SortTarget = { KEY: 0, VERSION: 1, CREATE: 2, MOD: 3, VALUE: 4 } as const;

/** etcdserverpb.RangeRequest. */
export interface RangeRequest {
  key: Buffer;
  range_end: Buffer;
  limit: number;
  revision: number;
  sort_order: number;
  sort_target: number;
  serializable: boolean;
  keys_only: boolean;
  count_only: boolean;
  min_mod_revision: number;
  max_mod_revision: number;
  min_create_revision: number;
  max_create_revision: number;
}

/** etcdserverpb.RangeResponse. */
export interface RangeResponse {
  header?: ResponseHeader;
  kvs: KeyValue[];
  more: boolean;
  count: number;
}

/** etcdserverpb.PutRequest. */
export interface PutRequest {
  key: Buffer;
  value: Buffer;
  lease: bigint;
  prev_kv: boolean;
  ignore_value: boolean;
  ignore_lease: boolean;
}

/** etcdserverpb.PutResponse. */
export interface PutResponse {
  header?: ResponseHeader;
  prev_kv?: KeyValue;
}

/** etcdserverpb.DeleteRangeRequest. */
export interface DeleteRangeRequest {
  key: Buffer;
  range_end: Buffer;
  prev_kv: boolean;
}

/** etcdserverpb.DeleteRangeResponse. */
export interface DeleteRangeResponse {
  header?: ResponseHeader;
  deleted: number;
  prev_kvs: KeyValue[];
}

/** etcdserverpb.RequestOp: at most one member set (none is rejected as "key not found"). */
export interface RequestOp {
  request_range?: RangeRequest;
  request_put?: PutRequest;
  request_delete_range?: DeleteRangeRequest;
  request_txn?: TxnRequest;
}

/** etcdserverpb.ResponseOp. */
export interface ResponseOp {
  response_range?: RangeResponse;
  response_put?: PutResponse;
  response_delete_range?: DeleteRangeResponse;
  response_txn?: TxnResponse;
}

/** etcdserverpb.Compare.CompareResult values. */
export const CompareResult = { EQUAL: 0, GREATER: 1, LESS: 2, NOT_EQUAL: 3 } as const;
/** etcdserverpb.Compare.CompareTarget values. */
export const CompareTarget = { VERSION: 0, CREATE: 1, MOD: 2, VALUE: 3, LEASE: 4 } as const;

/** etcdserverpb.Compare; one of the target_union members is set. */
export interface Compare {
  result: number;
  target: number;
  key: Buffer;
  version?: number;
  create_revision?: number;
  mod_revision?: number;
  value?: Buffer;
  lease?: bigint;
  range_end: Buffer;
}

/** etcdserverpb.TxnRequest. */
export interface TxnRequest {
  compare: Compare[];
  success: RequestOp[];
  failure: RequestOp[];
}

/** etcdserverpb.TxnResponse. */
export interface TxnResponse {
  header?: ResponseHeader;
  succeeded: boolean;
  responses: ResponseOp[];
}

/** etcdserverpb.CompactionRequest. */
export interface CompactionRequest {
  revision: number;
  physical: boolean;
}

/** etcdserverpb.WatchCreateRequest.FilterType values. */
export const WatchFilterType = { NOPUT: 0, NODELETE: 1 } as const;

/** etcdserverpb.WatchCreateRequest. */
export interface WatchCreateRequest {
  key: Buffer;
  range_end: Buffer;
  start_revision: number;
  progress_notify: boolean;
  filters: number[];
  prev_kv: boolean;
  watch_id: number;
  fragment: boolean;
}

/** etcdserverpb.WatchRequest: one of create, cancel or progress. */
export interface WatchRequest {
  create_request?: WatchCreateRequest;
  cancel_request?: { watch_id: number };
  progress_request?: Record<string, never>;
}

/** etcdserverpb.WatchResponse; watch_id -1 for progress replies and failed creates. */
export interface WatchResponse {
  header?: ResponseHeader;
  watch_id: number;
  created: boolean;
  canceled: boolean;
  compact_revision: number;
  cancel_reason: string;
  fragment: boolean;
  events: Event[];
}

/** etcdserverpb.LeaseGrantRequest (TTL in seconds; ID 0: the server picks). */
export interface LeaseGrantRequest {
  TTL: number;
  ID: bigint;
}

/** etcdserverpb.LeaseGrantResponse. */
export interface LeaseGrantResponse {
  header?: ResponseHeader;
  ID: bigint;
  TTL: number;
  error: string;
}

/** etcdserverpb.LeaseKeepAliveResponse (TTL 0: the lease is gone). */
export interface LeaseKeepAliveResponse {
  header?: ResponseHeader;
  ID: bigint;
  TTL: number;
}

/** etcdserverpb.LeaseTimeToLiveResponse (TTL -1: the lease is gone). */
export interface LeaseTimeToLiveResponse {
  header?: ResponseHeader;
  ID: bigint;
  TTL: number;
  grantedTTL: number;
  keys: Buffer[];
}
