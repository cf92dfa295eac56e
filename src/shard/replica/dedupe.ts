/**
 * The dedupe table: the result of every recently applied request, by request
 * id, persisted under the range's local keys and written in the same engine
 * batch as the request's effects. A retry of an applied request (same id) is
 * answered with the stored result and not applied again, also after a
 * restart or on a replica that got the table in a snapshot.
 *
 * Bounded by count: each record also has an order entry keyed by its applied
 * index, and when the table is full the oldest record is evicted in the batch
 * that adds a new one. A retry arriving after its record was evicted would be
 * applied again; the bound (10,000 by default) is far beyond any client's
 * retry window (the gateway retries within seconds).
 */
import type { BatchOp, Engine, EngineReader } from '../../storage/index.js';
import type { DedupeRecord, RequestId } from './command-codec.js';
import { decodeDedupeRecord, encodeDedupeRecord } from './command-codec.js';
import { readU64, type RangeKeys } from './keys.js';

/** Default bound on dedupe records per range. */
export const DEDUPE_RECORDS_MAX = 10_000;

/** Ops that add a record, to be written with the request's effects; commit after the write. */
export interface DedupeWrite {
  readonly ops: BatchOp[];
  /** Updates the in-memory order once the batch is durable. */
  commit(): void;
}

interface OrderEntry {
  readonly index: number;
  readonly recordKey: Buffer;
}

/** The dedupe table of one range. */
export class DedupeTable {
  /** Oldest first from `head`; mirrors the order family (live entries at most recordsMax). */
  private order: OrderEntry[] = [];
  private head = 0;
  /**
   * Record keys held (latin1), so the common case — a request never seen —
   * is answered without an engine read.
   */
  private readonly present = new Set<string>();

  private constructor(
    private readonly engine: Engine,
    private readonly keys: RangeKeys,
    private readonly recordsMax: number,
    order: OrderEntry[],
  ) {
    this.reset(order);
  }

  /** Loads the order of the stored records (one bounded scan of the order family). */
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
    const recordKey = this.keys.dedupeRecord(id);
    if (reader === this.engine && !this.present.has(recordKey.toString('latin1'))) return undefined;
    const v = await reader.get(recordKey);
    return v === undefined ? undefined : decodeDedupeRecord(v);
  }

  /** The ops that store `record` for `id` and evict the oldest records beyond the bound. */
  add(id: RequestId, record: DedupeRecord): DedupeWrite {
    const recordKey = this.keys.dedupeRecord(id);
    const ops: BatchOp[] = [
      { type: 'put', key: recordKey, value: encodeDedupeRecord(record) },
      { type: 'put', key: this.keys.dedupeOrder(record.index), value: recordKey },
    ];
    const evictCount = Math.max(0, this.size + 1 - this.recordsMax);
    for (let i = 0; i < evictCount; i++) {
      const old = this.order[this.head + i]!;
      ops.push({ type: 'del', key: old.recordKey }, { type: 'del', key: this.keys.dedupeOrder(old.index) });
    }
    return {
      ops,
      commit: () => {
        for (let i = 0; i < evictCount; i++) this.present.delete(this.order[this.head + i]!.recordKey.toString('latin1'));
        this.head += evictCount;
        // Drop the evicted prefix once it is as long as what is kept (amortized O(1)).
        if (this.head > 0 && this.head >= this.order.length - this.head) {
          this.order = this.order.slice(this.head);
          this.head = 0;
        }
        this.order.push({ index: record.index, recordKey });
        this.present.add(recordKey.toString('latin1'));
      },
    };
  }

  /** Re-reads the order after the range's keys were replaced (snapshot install). */
  async reload(): Promise<void> {
    this.reset(await readOrder(this.engine, this.keys));
  }

  private reset(order: OrderEntry[]): void {
    this.order = order;
    this.head = 0;
    this.present.clear();
    for (const e of order) this.present.add(Buffer.from(e.recordKey).toString('latin1'));
  }
}

async function readOrder(engine: EngineReader, keys: RangeKeys): Promise<OrderEntry[]> {
  const order: OrderEntry[] = [];
  for await (const { key, value } of engine.iterate({ gte: keys.dedupeOrderStart, lt: keys.dedupeOrderEnd })) {
    const index = readU64(key, key.length - 8);
    order.push({ index, recordKey: value });
  }
  return order;
}
