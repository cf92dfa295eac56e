/**
 * Physical compaction at revision C: for each key, every version newer than C
 * stays, the newest version at or before C stays if it is a put or a
 * tombstone at exactly C, and everything older goes. Keeping a tombstone at
 * exactly C follows etcd's fix for etcd-io/etcd#18089 (a watch from C must
 * still see that DELETE); it goes at the next compaction. Revision-index
 * entries below C go too.
 *
 * Work is cut into chunks of at most `chunkOpsMax` deletions, each written in
 * its own engine batch with a yield to the event loop in between, so a large
 * compaction never stalls other work. A chunk boundary may fall inside one
 * key's history; a removed tombstone is then deleted only after the older
 * versions under it, so a reader never sees an old version resurface.
 * Concurrent writes only add revisions above C, which compaction never
 * touches, so no snapshot is needed.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { BatchOp, Engine } from '../../storage/engine.js';
import { Family, type KeyCodec, MetaName, encodeU64 } from './keys.js';
import { isTombstoneRecord } from './value.js';

/** Default bound on deletions per engine batch. */
export const COMPACTION_CHUNK_OPS_MAX = 1000;

/** Options of one physical compaction run. */
export interface CompactionOptions {
  readonly chunkOpsMax?: number;
  /** Polled between chunks; true stops the run (it resumes on the next open). */
  readonly stopped?: () => boolean;
}

/** Removes history below `revision`; returns false if stopped early. */
export async function compactPhysically(
  engine: Engine,
  codec: KeyCodec,
  revision: number,
  options: CompactionOptions = {},
): Promise<boolean> {
  const chunkOpsMax = options.chunkOpsMax ?? COMPACTION_CHUNK_OPS_MAX;
  const stopped = options.stopped ?? (() => false);
  if (!(await compactData(engine, codec, revision, chunkOpsMax, stopped))) return false;
  if (!(await compactRevIndex(engine, codec, revision, chunkOpsMax, stopped))) return false;
  await engine.write([{ type: 'put', key: codec.metaKey(MetaName.CompactFinished), value: encodeU64(revision) }]);
  return true;
}

async function compactData(
  engine: Engine,
  codec: KeyCodec,
  revision: number,
  chunkOpsMax: number,
  stopped: () => boolean,
): Promise<boolean> {
  const end = codec.familyEnd(Family.Data);
  let lower: { gte: Buffer } | { gt: Buffer } = { gte: codec.familyStart(Family.Data) };
  let current: Buffer | null = null;
  let keptOrDecided = false;
  /** A tombstone to delete once every older version of its key is gone. */
  let deferred: Buffer | null = null;
  const batch: BatchOp[] = [];
  for (;;) {
    let last: Buffer | null = null;
    let scanned = 0;
    for await (const e of engine.iterate({ ...lower, lt: end, limit: chunkOpsMax })) {
      last = e.key;
      scanned++;
      const parts = codec.parseDataKey(e.key);
      if (current === null || !parts.keySegment.equals(current)) {
        if (deferred !== null) batch.push({ type: 'del', key: deferred });
        deferred = null;
        current = Buffer.from(parts.keySegment);
        keptOrDecided = false;
      }
      if (parts.revision > revision) continue;
      if (!keptOrDecided) {
        // The newest version at or before the compaction revision.
        keptOrDecided = true;
        if (isTombstoneRecord(e.value) && parts.revision < revision) deferred = Buffer.from(e.key);
        continue;
      }
      batch.push({ type: 'del', key: Buffer.from(e.key) });
    }
    if (last === null || scanned < chunkOpsMax) break;
    if (batch.length >= chunkOpsMax) {
      await engine.write(batch.splice(0));
      await yieldToEventLoop();
      if (stopped()) return false;
    }
    lower = { gt: last };
  }
  if (deferred !== null) batch.push({ type: 'del', key: deferred });
  if (batch.length > 0) await engine.write(batch.splice(0));
  return true;
}

async function compactRevIndex(
  engine: Engine,
  codec: KeyCodec,
  revision: number,
  chunkOpsMax: number,
  stopped: () => boolean,
): Promise<boolean> {
  const lt = codec.revIndexStart(revision);
  for (;;) {
    const batch: BatchOp[] = [];
    for await (const e of engine.iterate({ gte: codec.familyStart(Family.RevIndex), lt, limit: chunkOpsMax })) {
      batch.push({ type: 'del', key: e.key });
    }
    if (batch.length === 0) return true;
    await engine.write(batch);
    if (batch.length < chunkOpsMax) return true;
    await yieldToEventLoop();
    if (stopped()) return false;
  }
}
