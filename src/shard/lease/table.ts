/**
 * The lease table: the leases of one lease keyspace (today a range's) and
 * which keys each one is attached to, persisted in the engine and written in
 * the same batch as the MVCC change that causes it. The records are also
 * held in memory (etcd keeps every lease in memory too); attachments stay in
 * the engine only, so memory does not grow with the number of leased keys.
 *
 * Persisted form (the key layout is the owner's, see LeaseKeyLayout):
 *
 *   leaseRecord(id)          → version u8 (1) | grantedTtlSeconds u64 BE
 *   attachment(id, userKey)  → empty
 *
 * Everything here is deterministic: the same applied entries give the same
 * table on every replica.
 */
import type { BatchOp, EngineReader } from '../../storage/index.js';

/** Where a lease table keeps its records (implemented by the range's RangeKeys). */
export interface LeaseKeyLayout {
  /** Key of lease `id`'s record. */
  leaseRecord(id: bigint): Buffer;
  /** Bounds of every lease record. */
  readonly leaseRecordsStart: Buffer;
  readonly leaseRecordsEnd: Buffer;
  /** The lease id of a record key. */
  leaseIdOfRecordKey(key: Buffer): bigint;
  /** Key recording that `userKey` is attached to lease `id`. */
  attachment(id: bigint, userKey: Uint8Array): Buffer;
  /** Bounds of lease `id`'s attachments (in user-key order). */
  attachmentsStart(id: bigint): Buffer;
  attachmentsEnd(id: bigint): Buffer;
  /** The user key of an attachment key. */
  userKeyOfAttachment(key: Buffer): Buffer;
}

/** A granted lease. */
export interface LeaseRecord {
  readonly id: bigint;
  /** The TTL granted, in seconds. */
  readonly ttlSeconds: number;
}

const RECORD_VERSION = 1;
const RECORD_BYTES = 1 + 8;

/** Encodes a lease record's value. */
export function encodeLeaseRecord(r: LeaseRecord): Buffer {
  const b = Buffer.alloc(RECORD_BYTES);
  b[0] = RECORD_VERSION;
  b.writeBigUInt64BE(BigInt(r.ttlSeconds), 1);
  return b;
}

/** Decodes a lease record's value (the id comes from its key). */
export function decodeLeaseRecord(id: bigint, value: Uint8Array): LeaseRecord {
  const b = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (b.length !== RECORD_BYTES || b[0] !== RECORD_VERSION) throw new RangeError(`malformed lease record of ${id}`);
  const ttl = b.readBigUInt64BE(1);
  if (ttl > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`lease ${id}: TTL is not a safe integer`);
  return { id, ttlSeconds: Number(ttl) };
}

/** Id order (signed int64 order). */
function byId(a: LeaseRecord, b: LeaseRecord): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** The leases of one lease keyspace. */
export class LeaseTable {
  private constructor(
    private readonly layout: LeaseKeyLayout,
    private records: Map<bigint, LeaseRecord>,
  ) {}

  /** Loads every lease record (one scan of the record family). */
  static async load(reader: EngineReader, layout: LeaseKeyLayout): Promise<LeaseTable> {
    return new LeaseTable(layout, await readRecords(reader, layout));
  }

  /** Re-reads the records (after a snapshot replaced the state). */
  async reload(reader: EngineReader): Promise<void> {
    this.records = await readRecords(reader, this.layout);
  }

  /** Number of leases. */
  get size(): number {
    return this.records.size;
  }

  /** Whether lease `id` exists. */
  has(id: bigint): boolean {
    return this.records.has(id);
  }

  /** Lease `id`, if it exists. */
  get(id: bigint): LeaseRecord | undefined {
    return this.records.get(id);
  }

  /** Every lease, by id. */
  list(): LeaseRecord[] {
    return [...this.records.values()].sort(byId);
  }

  /** The ops that persist a new lease. */
  grantOps(r: LeaseRecord): BatchOp[] {
    return [{ type: 'put', key: this.layout.leaseRecord(r.id), value: encodeLeaseRecord(r) }];
  }

  /** The ops that drop lease `id` and its attachments to `keys`. */
  revokeOps(id: bigint, keys: readonly Uint8Array[]): BatchOp[] {
    const ops: BatchOp[] = keys.map((k) => ({ type: 'del', key: this.layout.attachment(id, k) }));
    ops.push({ type: 'del', key: this.layout.leaseRecord(id) });
    return ops;
  }

  /** The op that attaches `userKey` to lease `id`. */
  attachOp(id: bigint, userKey: Uint8Array): BatchOp {
    return { type: 'put', key: this.layout.attachment(id, userKey), value: EMPTY };
  }

  /** The op that detaches `userKey` from lease `id`. */
  detachOp(id: bigint, userKey: Uint8Array): BatchOp {
    return { type: 'del', key: this.layout.attachment(id, userKey) };
  }

  /** Records a grant once its batch is written. */
  commitGrant(r: LeaseRecord): void {
    this.records.set(r.id, r);
  }

  /** Records a revoke once its batch is written. */
  commitRevoke(id: bigint): void {
    this.records.delete(id);
  }

  /** The keys attached to lease `id`, in key order, at most `limit`. */
  async attachedKeys(reader: EngineReader, id: bigint, limit?: number): Promise<Buffer[]> {
    const keys: Buffer[] = [];
    const opts = { gte: this.layout.attachmentsStart(id), lt: this.layout.attachmentsEnd(id), ...(limit === undefined ? {} : { limit }) };
    for await (const e of reader.iterate(opts)) keys.push(this.layout.userKeyOfAttachment(e.key));
    return keys;
  }
}

const EMPTY = Buffer.alloc(0);

async function readRecords(reader: EngineReader, layout: LeaseKeyLayout): Promise<Map<bigint, LeaseRecord>> {
  const records = new Map<bigint, LeaseRecord>();
  for await (const e of reader.iterate({ gte: layout.leaseRecordsStart, lt: layout.leaseRecordsEnd })) {
    const id = layout.leaseIdOfRecordKey(e.key);
    records.set(id, decodeLeaseRecord(id, e.value));
  }
  return records;
}
