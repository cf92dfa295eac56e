/**
 * Startup of the WAL engine (wal.ts): rebuilds the state from the newest
 * checkpoint and the segments written after it, then tidies the directory.
 *
 * - Temporary files (a spare segment being preallocated, a checkpoint being
 *   written) are removed: neither was ever part of the log.
 * - The newest checkpoint must be whole (it was renamed into place only
 *   after it was synced); older ones are removed.
 * - Segments whose records are all covered by the checkpoint are removed.
 *   The others are replayed in order; their records must continue the
 *   sequence without a gap.
 * - Only the last segment may end in a torn record (a write a crash cut
 *   short, never acknowledged as durable): the log ends before it and the
 *   file is truncated there, so a later start never reads it. (The last
 *   segment is cut to its records in any case: appends go to a new one.) A damaged
 *   record in any earlier segment, which was synced before the next one was
 *   started, is corruption and fails the start.
 * - A last segment whose header was never written (a crash right after it
 *   was put in place), or that holds no whole record, is removed.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TreeOp } from './internal.js';
import { removeFile, syncDir, truncateSynced } from './wal-files.js';
import {
  CHECKPOINT_MAGIC,
  FILE_HEADER_BYTES,
  RECORD_BATCH,
  RECORD_CHECKPOINT_END,
  SEGMENT_MAGIC,
  allZero,
  decodeFileHeader,
  decodeRecord,
  parseFileName,
} from './wal-format.js';

/** A file of the log that survived recovery. */
export interface WalFile {
  readonly name: string;
  /** A segment's first sequence number; a checkpoint's last covered one. */
  readonly seq: number;
  /** Bytes in use (a segment's records end here). */
  readonly bytes: number;
}

/** What recovery found. */
export interface RecoveredWal {
  /** The last record applied; the next write gets lastSeq + 1. */
  readonly lastSeq: number;
  readonly checkpoint: WalFile | undefined;
  /** Segments with records after the checkpoint, oldest first. */
  readonly segments: readonly WalFile[];
  /** Bytes of a torn record (and anything after it) cut from the last segment; 0 if none. */
  readonly tornBytes: number;
}

/** The log's files are damaged in a way a crash cannot explain. */
export class WalCorruptError extends Error {
  override readonly name = 'WalCorruptError';
}

/**
 * Replays the log in `dir`: `apply` receives every batch in order (ops view
 * the read buffers: copy what is kept).
 */
export async function recoverWal(dir: string, apply: (ops: readonly TreeOp[]) => void): Promise<RecoveredWal> {
  const checkpoints: { name: string; seq: number }[] = [];
  const segments: { name: string; seq: number }[] = [];
  let changed = false;
  for (const name of await readdir(dir)) {
    if (name.endsWith('.tmp')) {
      await removeFile(join(dir, name));
      changed = true;
      continue;
    }
    const parsed = parseFileName(name);
    if (parsed === undefined) continue;
    (parsed.kind === 'segment' ? segments : checkpoints).push({ name, seq: parsed.seq });
  }
  checkpoints.sort((a, b) => b.seq - a.seq);
  segments.sort((a, b) => a.seq - b.seq);

  let checkpoint: WalFile | undefined;
  const newest = checkpoints[0];
  if (newest !== undefined) {
    checkpoint = { ...newest, bytes: await loadCheckpoint(join(dir, newest.name), newest.seq, apply) };
    for (const old of checkpoints.slice(1)) await removeFile(join(dir, old.name));
    changed ||= checkpoints.length > 1;
  }
  const covered = checkpoint?.seq ?? 0;

  // A segment is wholly covered when the next one starts at or below covered + 1.
  let first = 0;
  while (first + 1 < segments.length && segments[first + 1]!.seq <= covered + 1) first++;
  for (const seg of segments.slice(0, first)) await removeFile(join(dir, seg.name));
  changed ||= first > 0;

  const kept: WalFile[] = [];
  let next = covered + 1;
  let tornBytes = 0;
  for (let i = first; i < segments.length; i++) {
    const seg = segments[i]!;
    const last = i === segments.length - 1;
    const path = join(dir, seg.name);
    const buf = await readFile(path);
    const headerSeq = decodeFileHeader(buf, SEGMENT_MAGIC);
    if (headerSeq === undefined) {
      if (last && allZero(buf, 0, Math.min(buf.length, FILE_HEADER_BYTES))) {
        await removeFile(path);
        changed = true;
        break;
      }
      throw new WalCorruptError(`${path}: not a segment (bad header)`);
    }
    if (headerSeq !== seg.seq) throw new WalCorruptError(`${path}: header says first record ${headerSeq}`);
    if (i === first ? seg.seq > next : seg.seq !== next) {
      throw new WalCorruptError(`${path}: starts at record ${seg.seq}, expected ${next} (records missing)`);
    }
    let at = FILE_HEADER_BYTES;
    let expect = seg.seq;
    for (;;) {
      const r = decodeRecord(buf, at);
      if (r === 'end') break;
      const intact = r !== 'torn' && r.seq === expect && r.kind === RECORD_BATCH;
      if (!intact) {
        if (!last) throw new WalCorruptError(`${path}: damaged record at offset ${at} (record ${expect})`);
        tornBytes = buf.length - at;
        break;
      }
      if (r.seq > covered) apply(r.ops);
      expect++;
      at = r.end;
    }
    next = Math.max(next, expect);
    if (last && expect === seg.seq) {
      // No whole record in it (its first append was cut short): the engine's next segment
      // starts at this one's first record and takes its name, so it must not stay listed.
      await removeFile(path);
      changed = true;
      break;
    }
    // Appends never resume in a recovered segment (the engine starts a new one), so the
    // last one is cut to its records: a torn tail goes, and so do its unused zeros.
    if (last && at < buf.length) {
      await truncateSynced(path, at);
      changed = true;
    }
    kept.push({ name: seg.name, seq: seg.seq, bytes: at });
  }
  if (changed) await syncDir(dir);
  return { lastSeq: next - 1, checkpoint, segments: kept, tornBytes };
}

/** Applies a checkpoint's puts; returns its size. Any damage throws: a checkpoint is renamed into place only once whole and synced. */
async function loadCheckpoint(path: string, seq: number, apply: (ops: readonly TreeOp[]) => void): Promise<number> {
  const buf = await readFile(path);
  const headerSeq = decodeFileHeader(buf, CHECKPOINT_MAGIC);
  if (headerSeq !== seq) throw new WalCorruptError(`${path}: not a checkpoint of record ${seq} (bad header)`);
  let at = FILE_HEADER_BYTES;
  let puts = 0;
  for (let expect = 1; ; expect++) {
    const r = decodeRecord(buf, at);
    if (r === 'end' || r === 'torn' || r.seq !== expect) throw new WalCorruptError(`${path}: damaged or incomplete at offset ${at}`);
    at = r.end;
    if (r.kind === RECORD_CHECKPOINT_END) {
      if (r.count !== puts) throw new WalCorruptError(`${path}: ends after ${r.count} puts, holds ${puts}`);
      return at;
    }
    if (r.ops.some((op) => op.type !== 'put')) throw new WalCorruptError(`${path}: a delete in a checkpoint`);
    apply(r.ops);
    puts += r.ops.length;
  }
}
