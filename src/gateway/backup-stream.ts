/**
 * A backup of the node's ranges read from engine snapshots (what
 * Maintenance.Snapshot streams; format in backup-format.ts).
 *
 * One snapshot per engine is taken in one synchronous turn, so every range
 * sharing an engine (today: all of them) is read at one point in time, and
 * each range's image is exactly its state at its applied index (an apply
 * writes its data and applied index in one batch). Writes go on meanwhile:
 * an engine snapshot blocks nobody. Memory stays bounded: the image is
 * produced record by record from the snapshots' iterators, never built
 * whole; its exact size is known up front from a first pass over the same
 * snapshots (Snapshot's `remaining_bytes` needs it, as etcd's bolt file size).
 */
import { decodeDescriptor, RangeKeys, type Replica } from '../shard/replica/index.js';
import { KeyCodec, MetaName, prefixEnd } from '../shard/mvcc/index.js';
import type { Engine, EngineSnapshot } from '../storage/index.js';
import {
  BACKUP_END_BYTES,
  BACKUP_HEADER_BYTES,
  BACKUP_RANGE_END_BYTES,
  type BackupRange,
  Chunker,
  encodeEnd,
  encodeHeader,
  encodeLength,
  encodeRangeEnd,
  encodeRangeStart,
  paddingBytes,
  rangeStartBytes,
  recordBytes,
} from './backup-format.js';

/** One range of a backup and where its records are read from. */
interface RangeSource {
  readonly range: BackupRange;
  readonly snapshot: EngineSnapshot;
  readonly keys: RangeKeys;
  /** Bytes of the range's records. */
  readonly recordBytes: number;
}

/** Options of {@link openBackup}. */
export interface OpenBackupOptions {
  /** Stamped into the header; default Date.now(). */
  readonly nowMs?: number;
}

/** An open, consistent backup of some ranges: read it with {@link content}, then {@link release}. */
export class Backup {
  private released = false;

  private constructor(
    private readonly snapshots: readonly EngineSnapshot[],
    private readonly sources: readonly RangeSource[],
    /** Largest revision of the ranges. */
    readonly revision: number,
    /** Largest compacted revision of the ranges (0: none). */
    readonly compactRevision: number,
    private readonly createdUnixMs: number,
    /** Exact bytes of {@link content} (without the trailing sha256). */
    readonly contentBytes: number,
  ) {}

  /**
   * Takes the snapshots of the initialized replicas among `replicas` and
   * sizes the image. The caller must release() the result.
   */
  static async open(replicas: readonly Replica[], options: OpenBackupOptions = {}): Promise<Backup> {
    const live = replicas.filter((r) => r.isInitialized);
    // Snapshots first, all in this synchronous turn: one point in time for
    // every range of an engine.
    const byEngine = new Map<Engine, EngineSnapshot>();
    for (const r of live) if (!byEngine.has(r.engine)) byEngine.set(r.engine, r.engine.snapshot());
    const snapshots = [...byEngine.values()];
    try {
      const sources: RangeSource[] = [];
      for (const r of live) {
        const snapshot = byEngine.get(r.engine) as EngineSnapshot;
        const keys = new RangeKeys(r.rangeId);
        sources.push(await describeRange(snapshot, keys));
      }
      sources.sort((a, b) => a.range.rangeId - b.range.rangeId);
      let bytes = BACKUP_HEADER_BYTES + BACKUP_END_BYTES;
      for (const s of sources) bytes += rangeStartBytes(s.range.start.length, s.range.end.length) + s.recordBytes + BACKUP_RANGE_END_BYTES;
      bytes += paddingBytes(bytes);
      return new Backup(
        snapshots,
        sources,
        Math.max(0, ...sources.map((s) => s.range.revision)),
        Math.max(0, ...sources.map((s) => s.range.compactRevision)),
        options.nowMs ?? Date.now(),
        bytes,
      );
    } catch (err) {
      await Promise.all(snapshots.map((s) => s.release()));
      throw err;
    }
  }

  /** The ranges in the backup, by range id. */
  get ranges(): readonly BackupRange[] {
    return this.sources.map((s) => s.range);
  }

  /** The image as blobs of `chunkBytes` (the last shorter), {@link contentBytes} in all. */
  async *content(chunkBytes: number): AsyncGenerator<Buffer> {
    const chunker = new Chunker(chunkBytes);
    let written = 0;
    const push = (piece: Uint8Array): Buffer[] => {
      written += piece.length;
      return chunker.push(piece);
    };
    yield* push(
      encodeHeader({ revision: this.revision, compactRevision: this.compactRevision, createdUnixMs: this.createdUnixMs, rangeCount: this.sources.length }),
    );
    let total = 0;
    for (const s of this.sources) {
      yield* push(encodeRangeStart(s.range));
      let count = 0;
      for await (const { key, value } of s.snapshot.iterate(mvccSpan(s.keys))) {
        const suffix = key.subarray(s.keys.mvccPrefix.length);
        yield* push(encodeLength(suffix.length));
        yield* push(suffix);
        yield* push(encodeLength(value.length));
        yield* push(value);
        count++;
      }
      total += count;
      yield* push(encodeRangeEnd(count));
    }
    yield* push(encodeEnd(total));
    yield* push(Buffer.alloc(paddingBytes(written)));
    const last = chunker.flush();
    if (last !== undefined) yield last;
  }

  /** Releases the engine snapshots. Idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await Promise.all(this.snapshots.map((s) => s.release()));
  }
}

/** The engine span of a range's MVCC store. */
function mvccSpan(keys: RangeKeys): { gte: Buffer; lt: Buffer } {
  return { gte: keys.mvccPrefix, lt: Buffer.from(prefixEnd(keys.mvccPrefix)) };
}

/** Reads a range's descriptor and MVCC meta from `snapshot` and sizes its records (first pass). */
async function describeRange(snapshot: EngineSnapshot, keys: RangeKeys): Promise<RangeSource> {
  const raw = await snapshot.get(keys.descriptor);
  if (raw === undefined) throw new Error(`range ${keys.rangeId} has no descriptor in the snapshot`);
  const descriptor = decodeDescriptor(raw);
  const codec = new KeyCodec(keys.mvccPrefix);
  const meta = async (name: MetaName): Promise<number> => {
    const v = await snapshot.get(codec.metaKey(name));
    return v === undefined ? 0 : v.readUInt32BE(0) * 2 ** 32 + v.readUInt32BE(4);
  };
  let bytes = 0;
  for await (const { key, value } of snapshot.iterate(mvccSpan(keys))) bytes += recordBytes(key.length - keys.mvccPrefix.length, value.length);
  return {
    range: {
      rangeId: keys.rangeId,
      appliedIndex: await meta(MetaName.AppliedIndex),
      // A store that never wrote has no revision record: MvccStore starts at 1.
      revision: Math.max(1, await meta(MetaName.CurrentRevision)),
      compactRevision: await meta(MetaName.CompactRevision),
      start: Buffer.from(descriptor.start),
      end: Buffer.from(descriptor.end),
    },
    snapshot,
    keys,
    recordBytes: bytes,
  };
}
