/**
 * Request and result shapes of the MVCC keyspace. They mirror etcd's
 * `etcdserverpb` messages field for field (camelCase), so the gateway maps
 * protobuf to these without thought. Revisions and versions are safe-integer
 * numbers, lease ids bigint (docs/integers.md). Absent optional fields mean
 * etcd's proto default (0, empty, false).
 */
import type { LatestEntry } from './scan.js';
import type { BatchOp } from '../../storage/engine.js';

/** One version of a key, as etcd's `mvccpb.KeyValue`. */
export interface KeyValue {
  readonly key: Buffer;
  /** Revision of the put that last created the key (reset by delete + put). */
  readonly createRevision: number;
  /** Revision of the last modification. */
  readonly modRevision: number;
  /** Number of puts since the key was (re)created; 0 for a tombstone. */
  readonly version: number;
  readonly value: Buffer;
  /** Lease attached to the key, 0n for none. */
  readonly lease: bigint;
}

/** etcd's RangeRequest.SortOrder. */
export type SortOrder = 'NONE' | 'ASCEND' | 'DESCEND';
/** etcd's RangeRequest.SortTarget. */
export type SortTarget = 'KEY' | 'VERSION' | 'CREATE' | 'MOD' | 'VALUE';

/**
 * A read of one key or of `[key, rangeEnd)`; `rangeEnd` = "\0" means every
 * key >= `key`. `revision` 0/absent means the current revision.
 */
export interface RangeRequest {
  readonly key: Uint8Array;
  readonly rangeEnd?: Uint8Array;
  /** 0/absent: no limit. */
  readonly limit?: number;
  readonly revision?: number;
  readonly sortOrder?: SortOrder;
  readonly sortTarget?: SortTarget;
  readonly keysOnly?: boolean;
  readonly countOnly?: boolean;
  readonly minModRevision?: number;
  readonly maxModRevision?: number;
  readonly minCreateRevision?: number;
  readonly maxCreateRevision?: number;
}

/** etcd's RangeResponse without the header; `revision` is the header's. */
export interface RangeResult {
  readonly kvs: KeyValue[];
  readonly more: boolean;
  /** Keys in the range at the read revision, ignoring limit and filters. */
  readonly count: number;
  /** The store's current revision (etcd: even for historical reads). */
  readonly revision: number;
}

/** etcd's PutRequest. */
export interface PutRequest {
  readonly key: Uint8Array;
  readonly value?: Uint8Array;
  /** 0n/absent: no lease. */
  readonly lease?: bigint;
  readonly prevKv?: boolean;
  readonly ignoreValue?: boolean;
  readonly ignoreLease?: boolean;
}

/** etcd's PutResponse without the header. */
export interface PutResult {
  readonly prevKv?: KeyValue;
  readonly revision: number;
}

/** etcd's DeleteRangeRequest. */
export interface DeleteRangeRequest {
  readonly key: Uint8Array;
  readonly rangeEnd?: Uint8Array;
  readonly prevKv?: boolean;
}

/** etcd's DeleteRangeResponse without the header. */
export interface DeleteRangeResult {
  readonly deleted: number;
  /** Filled only when `prevKv` was asked. */
  readonly prevKvs: KeyValue[];
  readonly revision: number;
}

/** etcd's Compare.CompareResult. */
export type CompareOp = 'EQUAL' | 'GREATER' | 'LESS' | 'NOT_EQUAL';

/** etcd's Compare: `target` picks which of the oneof fields is compared. */
export type Compare = {
  readonly key: Uint8Array;
  /** etcd 3.3+: every key in `[key, rangeEnd)` must satisfy the compare. */
  readonly rangeEnd?: Uint8Array;
  readonly result: CompareOp;
} & (
  | { readonly target: 'VALUE'; readonly value: Uint8Array }
  | { readonly target: 'VERSION'; readonly version: number }
  | { readonly target: 'CREATE'; readonly createRevision: number }
  | { readonly target: 'MOD'; readonly modRevision: number }
  | { readonly target: 'LEASE'; readonly lease: bigint }
);

/** etcd's RequestOp (a oneof). */
export type RequestOp =
  | { readonly type: 'range'; readonly request: RangeRequest }
  | { readonly type: 'put'; readonly request: PutRequest }
  | { readonly type: 'deleteRange'; readonly request: DeleteRangeRequest }
  | { readonly type: 'txn'; readonly request: TxnRequest };

/** etcd's ResponseOp (a oneof); inner `revision` fields equal the txn's. */
export type ResponseOp =
  | { readonly type: 'range'; readonly response: RangeResult }
  | { readonly type: 'put'; readonly response: PutResult }
  | { readonly type: 'deleteRange'; readonly response: DeleteRangeResult }
  | { readonly type: 'txn'; readonly response: TxnResult };

/** etcd's TxnRequest. */
export interface TxnRequest {
  readonly compare?: readonly Compare[];
  readonly success?: readonly RequestOp[];
  readonly failure?: readonly RequestOp[];
}

/** etcd's TxnResponse without the header. */
export interface TxnResult {
  readonly succeeded: boolean;
  readonly responses: ResponseOp[];
  /** The revision after the txn: the write revision if consumed, else current. */
  readonly revision: number;
}

/**
 * A planned write: the engine ops that make it durable (data, revision index
 * and metadata), to be written in one engine batch, possibly together with
 * the caller's own ops (e.g. the raft applied index), then committed with
 * `MvccStore.commit`.
 */
export interface WritePlan<T> {
  readonly ops: BatchOp[];
  readonly result: T;
  /** Whether the candidate revision was used (false: nothing was written). */
  readonly consumed: boolean;
  /** The candidate revision handed in. */
  readonly revision: number;
  /** Live keys created minus live keys deleted by the write. */
  readonly keysDelta: number;
  /** Every key the write created (+1) or deleted (-1). */
  readonly liveChanges: readonly LiveChange[];
  /** The newest version of every key written (the store's cache takes them on commit). */
  readonly written: readonly LatestEntry[];
}

/** A key that became live (+1) or stopped being live (-1) in a write. */
export interface LiveChange {
  readonly key: Buffer;
  readonly delta: 1 | -1;
}

/** One change event, as etcd's `mvccpb.Event`. */
export interface MvccEvent {
  readonly type: 'PUT' | 'DELETE';
  /** For DELETE only `key` and `modRevision` are set (others zero), as etcd. */
  readonly kv: KeyValue;
  /** The previous live version, when asked and not compacted away. */
  readonly prevKv?: KeyValue;
}

/** A request for change events with revisions in `[startRevision, endRevision]`. */
export interface ChangesRequest {
  readonly key: Uint8Array;
  readonly rangeEnd?: Uint8Array;
  /** Inclusive; must be >= the compacted revision (as an etcd watch). */
  readonly startRevision: number;
  /** Inclusive; absent means the current revision. */
  readonly endRevision?: number;
  readonly prevKv?: boolean;
  /** Page bound on events (a revision is never split, so a page may exceed it). */
  readonly maxEvents?: number;
  /** Page bound on key+value bytes, with the same rule. */
  readonly maxBytes?: number;
}

/** One page of change events. */
export interface ChangesPage {
  readonly events: MvccEvent[];
  /** Where the next page starts; > endRevision when the request is exhausted. */
  readonly nextRevision: number;
  /** True when every revision up to endRevision has been returned. */
  readonly done: boolean;
}

/** etcd's HashKVResponse without the header. */
export interface HashKVResult {
  /** crc32c of the history up to `hashRevision` (docs/mvcc.md). */
  readonly hash: number;
  readonly compactRevision: number;
  readonly hashRevision: number;
}
