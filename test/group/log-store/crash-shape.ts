/**
 * What crash-writer.ts writes, as functions of (group, index), shared with
 * crash.test.ts so the checker can verify every entry byte for byte.
 */
import type { Entry } from '../../../src/group/raft/index.js';

/** The term of entry `index` (terms rise every 10 entries). */
export function crashTerm(index: number): number {
  return 1 + Math.floor(index / 10);
}

/** The entry the crash writer puts at `index` of group `g`. */
export function crashEntry(g: number, index: number): Entry {
  const tag = Buffer.from(`g${g}/i${index}/`);
  const data = Buffer.alloc(10 + (index % 50));
  for (let i = 0; i < data.length; i++) data[i] = tag[i % tag.length]!;
  return { index, term: crashTerm(index), type: 'normal', data };
}

/** The WAL engine's options in the crash test: a few flushes fill a segment, a few dozen call for a checkpoint. */
export const CRASH_WAL_OPTIONS = { segmentBytes: 16 * 1024, checkpointBytesMin: 64 * 1024 };
