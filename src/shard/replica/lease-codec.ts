/**
 * The lease commands of a range's raft log and their results, and their
 * protobuf wire form (`LeaseGrantCommand`, `LeaseRevokeCommand`,
 * `LeaseGrantResponse`, `LeaseRevokeResponse` in rangepb.proto). Lease ids
 * are int64 → bigint; TTLs and counts checked safe integers.
 */
import { CommandInvalidError } from '../range/errors.js';

/** Grant lease `id` (never 0) with a TTL in seconds. */
export interface LeaseGrantCommand {
  readonly id: bigint;
  readonly ttlSeconds: number;
}

/** Revoke lease `id`, deleting its keys. */
export interface LeaseRevokeCommand {
  readonly id: bigint;
}

/** A granted lease; `revision` is the range's current one (a grant consumes none). */
export interface LeaseGrantResult {
  readonly revision: number;
  readonly id: bigint;
  readonly ttlSeconds: number;
}

/** A revoked lease; `revision` is the delete's revision (or the current one if no key was attached). */
export interface LeaseRevokeResult {
  readonly revision: number;
  readonly deleted: number;
}

/** The lease members of the command oneof. */
export type LeaseCommandBody =
  | { readonly type: 'leaseGrant'; readonly request: LeaseGrantCommand }
  | { readonly type: 'leaseRevoke'; readonly request: LeaseRevokeCommand };

/** The lease members of the result oneof. */
export type LeaseCommandResult =
  | { readonly type: 'leaseGrant'; readonly response: LeaseGrantResult }
  | { readonly type: 'leaseRevoke'; readonly response: LeaseRevokeResult };

type Wire = Record<string, unknown>;

/** Wire fields of a lease command body (merged into RangeCommand). */
export function leaseBodyToWire(body: LeaseCommandBody): Wire {
  switch (body.type) {
    case 'leaseGrant':
      return { lease_grant: { id: body.request.id.toString(), ttl: body.request.ttlSeconds } };
    case 'leaseRevoke':
      return { lease_revoke: { id: body.request.id.toString() } };
  }
}

/** The lease command body of a decoded RangeCommand whose oneof is `name`, or undefined. */
export function leaseBodyFromWire(name: unknown, w: Wire): LeaseCommandBody | undefined {
  switch (name) {
    case 'lease_grant': {
      const g = sub(w, 'lease_grant');
      return { type: 'leaseGrant', request: { id: big(g['id']), ttlSeconds: safe(g['ttl'], 'ttl') } };
    }
    case 'lease_revoke':
      return { type: 'leaseRevoke', request: { id: big(sub(w, 'lease_revoke')['id']) } };
    default:
      return undefined;
  }
}

/** Wire fields of a lease result (merged into ApplyResult). */
export function leaseResultToWire(r: LeaseCommandResult): Wire {
  switch (r.type) {
    case 'leaseGrant':
      return { lease_grant: { revision: r.response.revision, id: r.response.id.toString(), ttl: r.response.ttlSeconds } };
    case 'leaseRevoke':
      return { lease_revoke: { revision: r.response.revision, deleted: r.response.deleted } };
  }
}

/** The lease result of a decoded ApplyResult whose oneof is `name`, or undefined. */
export function leaseResultFromWire(name: unknown, w: Wire): LeaseCommandResult | undefined {
  switch (name) {
    case 'lease_grant': {
      const g = sub(w, 'lease_grant');
      return { type: 'leaseGrant', response: { revision: safe(g['revision'], 'revision'), id: big(g['id']), ttlSeconds: safe(g['ttl'], 'ttl') } };
    }
    case 'lease_revoke': {
      const r = sub(w, 'lease_revoke');
      return { type: 'leaseRevoke', response: { revision: safe(r['revision'], 'revision'), deleted: safe(r['deleted'], 'deleted') } };
    }
    default:
      return undefined;
  }
}

function sub(w: Wire, field: string): Wire {
  const v = w[field];
  if (typeof v !== 'object' || v === null) throw new CommandInvalidError(`${field} is missing`);
  return v as Wire;
}

function big(v: unknown): bigint {
  if (v === undefined || v === null) return 0n;
  return BigInt(v as string | number);
}

function safe(v: unknown, field: string): number {
  if (v === undefined || v === null) return 0;
  const n = Number(v as string | number);
  if (!Number.isSafeInteger(n) || n < 0) throw new CommandInvalidError(`${field}=${String(v)} is not a non-negative safe integer`);
  return n;
}
