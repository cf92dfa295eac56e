/**
 * Private helpers shared by the engines of this folder: argument checks,
 * scan-bound normalisation, error wrapping and a tiny async mutex. Nothing
 * here is re-exported from index.ts; other folders must not import it.
 */
import { rm } from 'node:fs/promises';
import { type BatchOp, EngineError, type Entry, type IterateOptions, compareKeys } from './engine.js';

/** Entries fetched by the first native read of a scan; small so `limit: 1` stays cheap. */
export const scanBatchEntriesMin = 16;
/** Upper bound on entries fetched by one native read, so one read never starves the event loop. */
export const scanBatchEntriesMax = 1024;
/**
 * Bytes after which one native read stops (classic-level's
 * `highWaterMarkBytes`): its default of 16 KiB cut a read of 500 entries with
 * 1 KiB values into 32 reads, each a round trip to libuv's pool.
 */
export const scanBatchBytesMax = 1024 * 1024;

/** A batch op whose key and value are checked and viewed as Buffers. */
export type CheckedOp =
  | { readonly type: 'put'; readonly key: Buffer; readonly value: Buffer }
  | { readonly type: 'del'; readonly key: Buffer };

/**
 * An op applied to an in-memory tree: a checked op, or the deletion of every
 * key in [start, end) (an empty start: from the first key), as deleteSpan.
 */
export type TreeOp = CheckedOp | { readonly type: 'span'; readonly start: Buffer; readonly end: Buffer };

/**
 * A scan with its bounds resolved: at most one lower and one upper bound,
 * empty-key bounds folded away, and `limit` as a count (Infinity = none).
 */
export interface Scan {
  readonly lower: Buffer | undefined;
  readonly lowerInclusive: boolean;
  readonly upper: Buffer | undefined;
  readonly upperInclusive: boolean;
  readonly reverse: boolean;
  readonly limit: number;
  /** Entries carry an empty value (IterateOptions.keysOnly). */
  readonly keysOnly: boolean;
  /** Entries the first native read fetches (IterateOptions.sizeHint, bounded). */
  readonly firstBatch: number;
  /** True when no key can match, so the engine need not touch storage. */
  readonly empty: boolean;
}

/** The value of every entry of a keys-only scan. */
export const EMPTY_VALUE: Buffer = Buffer.alloc(0);

/** Counts what a scan yields: for readers with no cheaper way to count (keys only). */
export async function countByIterating(reader: { iterate(options?: IterateOptions): AsyncIterableIterator<Entry> }, options: IterateOptions): Promise<number> {
  let n = 0;
  for await (const _ of reader.iterate({ ...options, keysOnly: true })) n++;
  return n;
}

/** Views `bytes` as a Buffer without copying. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Throws INVALID_ARGUMENT unless `key` is a non-empty Uint8Array. */
export function checkKey(key: unknown, what = 'key'): Buffer {
  if (!(key instanceof Uint8Array)) throw invalid(`${what} must be a Uint8Array`);
  if (key.byteLength === 0) throw invalid(`${what} must not be empty`);
  return asBuffer(key);
}

/** Throws INVALID_ARGUMENT unless `bound` is a Uint8Array (empty allowed: span bounds, not keys). */
export function checkBound(bound: unknown, what: string): Buffer {
  if (!(bound instanceof Uint8Array)) throw invalid(`${what} must be a Uint8Array`);
  return asBuffer(bound);
}

/**
 * Checks every op of a batch before any is applied, so an invalid op can
 * never leave a batch half-written, whatever the engine does natively.
 */
export function checkBatch(ops: readonly BatchOp[]): CheckedOp[] {
  if (!Array.isArray(ops)) throw invalid('batch must be an array of ops');
  const checked: CheckedOp[] = new Array(ops.length);
  for (let i = 0; i < ops.length; i++) checked[i] = checkOp(ops[i] as unknown, i);
  return checked;
}

/**
 * One op of a batch, checked. An op whose key and value are already Buffers
 * is its own checked form (no copy); the messages are built only on failure.
 */
function checkOp(op: unknown, i: number): CheckedOp {
  if (typeof op !== 'object' || op === null) throw invalid(`batch op ${i} must be an object`);
  const { type, key, value } = op as { type?: unknown; key?: unknown; value?: unknown };
  if (type !== 'put' && type !== 'del') throw invalid(`batch op ${i}: type must be 'put' or 'del'`);
  if (!(key instanceof Uint8Array)) throw invalid(`batch op ${i}: key must be a Uint8Array`);
  if (key.byteLength === 0) throw invalid(`batch op ${i}: key must not be empty`);
  if (type === 'del') return Buffer.isBuffer(key) ? (op as CheckedOp) : { type, key: asBuffer(key) };
  if (!(value instanceof Uint8Array)) throw invalid(`batch op ${i}: value must be a Uint8Array`);
  return Buffer.isBuffer(key) && Buffer.isBuffer(value) ? (op as CheckedOp) : { type, key: asBuffer(key), value: asBuffer(value) };
}

/** Resolves the bounds and limit of `options`; throws INVALID_ARGUMENT on malformed ones. */
export function resolveScan(options: IterateOptions): Scan {
  if (typeof options !== 'object' || options === null) throw invalid('iterate options must be an object');
  const gte = optionalBound(options.gte, 'gte');
  const gt = optionalBound(options.gt, 'gt');
  const lte = optionalBound(options.lte, 'lte');
  const lt = optionalBound(options.lt, 'lt');
  // Keys are non-empty, so an empty lower bound excludes nothing.
  let lower = gte ?? gt;
  const lowerInclusive = gte !== undefined;
  if (lower !== undefined && lower.length === 0) lower = undefined;
  const upper = lte ?? lt;
  const upperInclusive = lte !== undefined;
  const limit = resolveLimit(options.limit);
  let empty = limit === 0 || (upper !== undefined && upper.length === 0);
  if (!empty && lower !== undefined && upper !== undefined) {
    const order = compareKeys(lower, upper);
    empty = order > 0 || (order === 0 && !(lowerInclusive && upperInclusive));
  }
  const firstBatch = resolveSizeHint(options.sizeHint);
  return { lower, lowerInclusive, upper, upperInclusive, reverse: options.reverse === true, limit, keysOnly: options.keysOnly === true, firstBatch, empty };
}

/** True if `key` is not below the scan's lower bound. */
export function aboveLower(scan: Scan, key: Uint8Array): boolean {
  if (scan.lower === undefined) return true;
  const order = compareKeys(key, scan.lower);
  return scan.lowerInclusive ? order >= 0 : order > 0;
}

/** True if `key` is not above the scan's upper bound. */
export function belowUpper(scan: Scan, key: Uint8Array): boolean {
  if (scan.upper === undefined) return true;
  const order = compareKeys(key, scan.upper);
  return scan.upperInclusive ? order <= 0 : order < 0;
}

/** The scan's bounds in abstract-level option form, one lower and one upper at most. */
export function levelRange(scan: Scan): { gte?: Buffer; gt?: Buffer; lte?: Buffer; lt?: Buffer } {
  const range: { gte?: Buffer; gt?: Buffer; lte?: Buffer; lt?: Buffer } = {};
  if (scan.lower !== undefined) range[scan.lowerInclusive ? 'gte' : 'gt'] = scan.lower;
  if (scan.upper !== undefined) range[scan.upperInclusive ? 'lte' : 'lt'] = scan.upper;
  return range;
}

/**
 * Turns whatever a native call threw into an EngineError. The engine's own
 * state decides the code (a native "not open" error after our close() is
 * ENGINE_CLOSED), so the mapping does not depend on each library's codes.
 */
export function wrapError(err: unknown, stateError: EngineError | undefined): EngineError {
  if (err instanceof EngineError) return err;
  if (stateError !== undefined) return stateError;
  return new EngineError('ENGINE_IO', `storage engine failed: ${describeError(err)}`, { cause: err });
}

/** Removes an engine's directory and everything in it; missing is fine. */
export async function removeDir(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true, maxRetries: 3 });
}

/**
 * Serialises async critical sections (FIFO). Used where one native iterator
 * is shared by several readers, since a native iterator cannot seek while a
 * read is in flight.
 */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  /** Runs `section` after every section queued before it has settled. */
  run<T>(section: () => Promise<T>): Promise<T> {
    const result = this.tail.then(section);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/** The message of `err` and of its causes (abstract-level nests the native error as `cause`). */
function describeError(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; depth < 4 && current !== undefined && current !== null; depth++) {
    parts.push(current instanceof Error ? current.message : String(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join(': ');
}

function optionalBound(bound: unknown, what: string): Buffer | undefined {
  return bound === undefined ? undefined : checkBound(bound, what);
}

function resolveLimit(limit: unknown): number {
  if (limit === undefined) return Infinity;
  if (typeof limit !== 'number' || Number.isNaN(limit)) throw invalid('limit must be a number');
  return limit < 0 ? Infinity : Math.floor(limit);
}

function resolveSizeHint(hint: unknown): number {
  if (hint === undefined) return scanBatchEntriesMin;
  if (typeof hint !== 'number' || Number.isNaN(hint)) throw invalid('sizeHint must be a number');
  return Math.min(scanBatchEntriesMax, Math.max(scanBatchEntriesMin, Math.floor(hint)));
}

function invalid(message: string): EngineError {
  return new EngineError('INVALID_ARGUMENT', message);
}
