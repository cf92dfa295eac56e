/**
 * Evaluates etcd's Range options over a stream of newest-version entries,
 * following etcd's apply.go exactly (reference §2.3):
 * - with any sort order or min/max filter set, every key is fetched, then
 *   filtered, sorted and cut to `limit`; otherwise `limit + 1` keys are
 *   fetched (in key order) and, if a non-key sort target was given with
 *   sort order NONE, those are sorted ascending before the cut;
 * - `count` is the number of live keys in the range, ignoring filters and
 *   limit; `more` is set when the cut dropped keys; count_only returns no kvs.
 * Sorting is stable over key order, so ties on the target (etcd leaves them
 * unspecified) come back in ascending key order in both directions.
 */
import type { KeyCodec } from './keys.js';
import type { LatestEntry } from './scan.js';
import type { KeyValue, RangeRequest, SortOrder, SortTarget } from './types.js';
import { isTombstoneRecord, toKeyValue } from './value.js';

/** RangeResult minus the revision, which the store fills in. */
export interface RangeOutcome {
  readonly kvs: KeyValue[];
  readonly more: boolean;
  readonly count: number;
}

/**
 * Runs `req`'s options over `entries` (all in the request's span, key order).
 * With `knownCount` (the span's live keys, known from elsewhere) a read that
 * needs only the first keys stops after them instead of counting the rest.
 */
export async function evaluateRange(
  entries: AsyncIterable<LatestEntry>,
  codec: KeyCodec,
  req: RangeRequest,
  knownCount?: number,
): Promise<RangeOutcome> {
  const limit = req.limit !== undefined && req.limit > 0 ? req.limit : 0;
  const order: SortOrder = req.sortOrder ?? 'NONE';
  const target: SortTarget = req.sortTarget ?? 'KEY';
  const filtered = isFiltered(req);
  const fetchMax = keysFetchedMax(req);
  const keysOnly = req.keysOnly === true;

  // Count while reading unless the count is known and the read needs only a prefix (or nothing).
  const counted = knownCount === undefined || (req.countOnly !== true && fetchMax === Infinity);
  let count = 0;
  let kvs: KeyValue[] = [];
  if (counted || req.countOnly !== true) {
    for await (const e of entries) {
      if (isTombstoneRecord(e.record)) continue;
      count++;
      if (req.countOnly === true || kvs.length >= fetchMax) continue;
      const kv = toKeyValue(codec.userKeyOfSegment(e.keySegment), e.revision, e.record);
      if (kv === null) continue;
      kvs.push(kv);
      if (!counted && kvs.length >= fetchMax) break;
    }
  }
  if (!counted && knownCount !== undefined) count = knownCount;

  if (filtered) kvs = kvs.filter((kv) => passesFilters(kv, req));
  const effectiveOrder: SortOrder = target !== 'KEY' && order === 'NONE' ? 'ASCEND' : order;
  if (effectiveOrder !== 'NONE') sortKvs(kvs, target, effectiveOrder);
  let more = false;
  if (limit > 0 && kvs.length > limit) {
    kvs = kvs.slice(0, limit);
    more = true;
  }
  // Values are stripped last: a keys_only read may still sort on VALUE.
  if (keysOnly) kvs = kvs.map((kv) => ({ ...kv, value: Buffer.alloc(0) }));
  return { kvs, more, count };
}

function isFiltered(req: RangeRequest): boolean {
  return (
    (req.minModRevision ?? 0) !== 0 ||
    (req.maxModRevision ?? 0) !== 0 ||
    (req.minCreateRevision ?? 0) !== 0 ||
    (req.maxCreateRevision ?? 0) !== 0
  );
}

/** Keys {@link evaluateRange} reads at most before it may stop: all (Infinity) with a sort, a filter or no limit. */
export function keysFetchedMax(req: RangeRequest): number {
  const limit = req.limit !== undefined && req.limit > 0 ? req.limit : 0;
  return (req.sortOrder ?? 'NONE') !== 'NONE' || isFiltered(req) || limit === 0 ? Infinity : limit + 1;
}

/** Whether knowing the span's count spares `req` reading the whole span (a page, or a count alone). */
export function knownCountSparesScan(req: RangeRequest): boolean {
  return req.countOnly === true || keysFetchedMax(req) !== Infinity;
}

function passesFilters(kv: KeyValue, req: RangeRequest): boolean {
  if ((req.maxModRevision ?? 0) !== 0 && kv.modRevision > (req.maxModRevision as number)) return false;
  if ((req.minModRevision ?? 0) !== 0 && kv.modRevision < (req.minModRevision as number)) return false;
  if ((req.maxCreateRevision ?? 0) !== 0 && kv.createRevision > (req.maxCreateRevision as number)) return false;
  if ((req.minCreateRevision ?? 0) !== 0 && kv.createRevision < (req.minCreateRevision as number)) return false;
  return true;
}

/** Stable sort in place on `target`; input is in key order. */
export function sortKvs(kvs: KeyValue[], target: SortTarget, order: 'ASCEND' | 'DESCEND'): void {
  const sign = order === 'ASCEND' ? 1 : -1;
  const cmp = compareOn(target);
  kvs.sort((a, b) => sign * cmp(a, b));
}

function compareOn(target: SortTarget): (a: KeyValue, b: KeyValue) => number {
  switch (target) {
    case 'KEY':
      return (a, b) => Buffer.compare(a.key, b.key);
    case 'VERSION':
      return (a, b) => a.version - b.version;
    case 'CREATE':
      return (a, b) => a.createRevision - b.createRevision;
    case 'MOD':
      return (a, b) => a.modRevision - b.modRevision;
    case 'VALUE':
      return (a, b) => Buffer.compare(a.value, b.value);
  }
}
