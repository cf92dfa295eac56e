/**
 * The dedupe table: the result of every recently applied request, by request
 * id, persisted under the range's local keys and written in the same engine
 * batch as the request's effects. A retry of an applied request (same id) is
 * answered with the stored result and not applied again, also after a
 * restart or on a replica that got the table in a snapshot.
 *
 * Bounded by count: when the table is full, the record applied earliest is
 * evicted in the batch that adds a new one. Each record holds the index it
 * was applied at, so the eviction order is read back from the records
 * themselves at load (one bounded scan); a put costs the table one write
 * and, once full, one delete. A retry arriving after its record was evicted
 * would be applied again; the bound (10,000 by default) is far beyond any
 * client's retry window (the gateway retries within seconds).
 */
import type { BatchOp, Engine, EngineReader } from '../../storage/index.js';
import type { DedupeRecord, RequestId } from './command-codec.js';
import { decodeDedupeRecord, dedupeRecordIndex, encodeDedupeRecord } from './command-codec.js';
import type { RangeKeys } from './keys.js';

/** Default bound on dedupe records per range. */
export const DEDUPE_RECORDS_MAX = 10_000;

/** Ops that add a record, to be written with the request's effects; commit after the write. */
export interface DedupeWrite {
  readonly ops: BatchOp[];
  /** Updates the in-memory order once the batch is durable. */
  commit(): void;
}

/** The dedupe table of one range. */
export class DedupeTable {
  /**
   * Oldest first from `head`: the record keys (latin1) by applied index, at
   * most recordsMax live. Only the name is kept per record: it is the key
   * set's member already, and an eviction rebuilds the key's bytes from it
   * (one small object less per applied request to outlive the young
   * generation).
   */
  private order: string[] = [];
  private head = 0;
  /**
   * Record keys held (latin1), so the common case — a request never seen —
   * is answered without an engine read.
   */
  private readonly present = new Set<string>();
  /** The last id asked about and its record key (apply asks mayHold, then add, for the same id object). */
  private lastId: RequestId | undefined;
  private lastKey: { readonly recordKey: Buffer; readonly name: string } | undefined;

  private constructor(
    private readonly engine: Engine,
    private readonly keys: RangeKeys,
    private readonly recordsMax: number,
    order: string[],
  ) {
    this.reset(order);
  }

  /** Loads the order of the stored records (one bounded scan of the record family). */
  static async load(engine: Engine, keys: RangeKeys, recordsMax: number = DEDUPE_RECORDS_MAX): Promise<DedupeTable> {
    if (!Number.isSafeInteger(recordsMax) || recordsMax < 1) throw new RangeError(`dedupe recordsMax must be >= 1, got ${recordsMax}`);
    return new DedupeTable(engine, keys, recordsMax, await readOrder(engine, keys));
  }

  /** Number of records held. */
  get size(): number {
    return this.order.length - this.head;
  }

  /**
   * The stored record of `id`, if it was applied and not yet evicted. With
   * the table's own engine the in-memory key set answers misses; another
   * reader (a snapshot) is always asked.
   */
  async get(id: RequestId, reader: EngineReader = this.engine): Promise<DedupeRecord | undefined> {
    const { recordKey, name } = this.recordKeyOf(id);
    if (reader === this.engine && !this.present.has(name)) return undefined;
    const v = await reader.get(recordKey);
    return v === undefined ? undefined : decodeDedupeRecord(v);
  }

  /**
   * False when the table holds no record of `id` (the common case, a request
   * never seen), known without a read; true when `get` must look.
   */
  mayHold(id: RequestId): boolean {
    return this.present.has(this.recordKeyOf(id).name);
  }

  /** The ops that store `record` for `id` and evict the oldest records beyond the bound. */
  add(id: RequestId, record: DedupeRecord): DedupeWrite {
    const { recordKey, name } = this.recordKeyOf(id);
    const ops: BatchOp[] = [{ type: 'put', key: recordKey, value: encodeDedupeRecord(record) }];
    const evictCount = Math.max(0, this.size + 1 - this.recordsMax);
    for (let i = 0; i < evictCount; i++) ops.push({ type: 'del', key: Buffer.from(this.order[this.head + i]!, 'latin1') });
    return {
      ops,
      commit: () => {
        for (let i = 0; i < evictCount; i++) this.present.delete(this.order[this.head + i]!);
        this.head += evictCount;
        // Drop the evicted prefix once it is as long as what is kept (amortized O(1)).
        if (this.head > 0 && this.head >= this.order.length - this.head) {
          this.order = this.order.slice(this.head);
          this.head = 0;
        }
        this.order.push(name);
        this.present.add(name);
      },
    };
  }

  /** The record key of `id` and its latin1 name, made once for consecutive calls with one id object. */
  private recordKeyOf(id: RequestId): { readonly recordKey: Buffer; readonly name: string } {
    if (id !== this.lastId || this.lastKey === undefined) {
      const recordKey = this.keys.dedupeRecord(id);
      this.lastKey = { recordKey, name: recordKey.toString('latin1') };
      this.lastId = id;
    }
    return this.lastKey;
  }

  /** Re-reads the order after the range's keys were replaced (snapshot install). */
  async reload(): Promise<void> {
    this.reset(await readOrder(this.engine, this.keys));
  }

  private reset(order: string[]): void {
    this.order = order;
    this.head = 0;
    this.present.clear();
    for (const name of order) this.present.add(name);
  }
}

/**
 * The stored records, oldest first. A family of order entries left by an
 * earlier version (which kept one per record) is deleted: the records carry
 * the same order, and nothing maintains those entries any more.
 */
async function readOrder(engine: Engine, keys: RangeKeys): Promise<string[]> {
  const order: { readonly index: number; readonly name: string }[] = [];
  for await (const { key, value } of engine.iterate({ gte: keys.dedupeRecordsStart, lt: keys.dedupeRecordsEnd })) {
    order.push({ index: dedupeRecordIndex(value), name: Buffer.from(key).toString('latin1') });
  }
  order.sort((a, b) => a.index - b.index);
  if ((await engine.count({ gte: keys.legacyDedupeOrderStart, lt: keys.legacyDedupeOrderEnd, limit: 1 })) > 0) {
    await engine.deleteSpan(keys.legacyDedupeOrderStart, keys.legacyDedupeOrderEnd);
  }
  return order.map((e) => e.name);
}
