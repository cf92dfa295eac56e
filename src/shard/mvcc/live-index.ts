/**
 * The Live family (keys.ts): one entry per user key that is live at the
 * store's current revision, holding the revision and record of its newest
 * version. etcd answers both of a list's questions from its in-memory key
 * index: which version of each key to read, and `count`, the live keys of
 * the whole span whatever the limit. Without one, the Data family has every
 * version of every key next to each other, so a list walked (and copied out
 * of the engine) every version of each key until compaction, and a count
 * walked the rest of the span the same way; a Kubernetes list that pages
 * with `limit` from a continue key counts the rest of the prefix on every
 * page, each from a new start key, so the span-count cache rarely holds it.
 * With the Live family a count is a keys-only scan of one entry per key, and
 * a read of the newest versions reads one entry per key (scan.ts; a read at
 * an older revision looks up the keys changed since, and walks versions when
 * a key of its span was deleted since: recent-deletes.ts). The price is one
 * more op per write of an existing key, and each value stored twice until
 * it is overwritten.
 *
 * It holds current state only, so a count read from it is exact at one
 * revision: the one recorded in the same engine view (the CurrentRevision
 * meta record, written in the batch of every write that consumes a
 * revision). The store brings such a count forward to its current revision
 * with the creates and deletes committed since (span-count-cache.ts).
 */
import type { BatchOp, Engine } from '../../storage/engine.js';
import { Family, type KeyCodec, MetaName, readU64 } from './keys.js';
import { type LatestEntry, scanLatest } from './scan.js';
import { resolveSpan, type KeySpan } from './span.js';
import { encodeLiveValue, isTombstoneRecord } from './value.js';

const EMPTY = Buffer.alloc(0);
/** Ops per engine write while the family is rebuilt. */
const BUILD_OPS_PER_WRITE = 4096;

/** The ops that keep the Live family exact after a write: each written key's newest version, or its removal for a delete. */
export function liveIndexOps(codec: KeyCodec, written: readonly LatestEntry[], ops: BatchOp[]): void {
  for (const e of written) {
    const key = codec.liveKeyOfSegment(e.keySegment);
    ops.push(isTombstoneRecord(e.record) ? { type: 'del', key } : { type: 'put', key, value: encodeLiveValue(e.revision, e.record) });
  }
}

/** A span's live keys, and the revision at which the engine view they were read from stood. */
export interface LiveCount {
  readonly count: number;
  readonly revision: number;
}

/**
 * Counts the live keys of `span` in one engine snapshot, with that
 * snapshot's current revision; undefined when the store has written no
 * revision yet (nothing to count against).
 */
export async function measureLiveCount(engine: Engine, codec: KeyCodec, span: Extract<KeySpan, { kind: 'span' }>): Promise<LiveCount | undefined> {
  const snap = engine.snapshot();
  try {
    const raw = await snap.get(codec.metaKey(MetaName.CurrentRevision));
    if (raw === undefined) return undefined;
    const revision = readU64(raw, 0);
    const lt = span.end === null ? codec.familyEnd(Family.Live) : codec.liveKey(span.end);
    return { count: await snap.count({ gte: codec.liveKey(span.start), lt }), revision };
  } finally {
    await snap.release();
  }
}

/**
 * Rewrites the Live family from the Data family at `revision` (the store's
 * current one) and then records that it is complete; resolves with the
 * number of live keys. For stores written before the family existed or
 * before it held versions, and for images installed from them. Run before
 * the store takes writes.
 */
export async function buildLiveIndex(engine: Engine, codec: KeyCodec, revision: number): Promise<number> {
  await engine.deleteSpan(codec.familyStart(Family.Live), codec.familyEnd(Family.Live));
  const every = resolveSpan(Uint8Array.of(0), Uint8Array.of(0));
  let ops: BatchOp[] = [];
  let live = 0;
  for await (const e of scanLatest(engine, codec, every, revision)) {
    if (isTombstoneRecord(e.record)) continue;
    live++;
    ops.push({ type: 'put', key: codec.liveKeyOfSegment(e.keySegment), value: encodeLiveValue(e.revision, e.record) });
    if (ops.length >= BUILD_OPS_PER_WRITE) {
      await engine.write(ops);
      ops = [];
    }
  }
  ops.push({ type: 'del', key: codec.metaKey(MetaName.LiveKeysOnly) });
  ops.push({ type: 'put', key: codec.metaKey(MetaName.LiveIndex), value: EMPTY });
  await engine.write(ops);
  return live;
}
