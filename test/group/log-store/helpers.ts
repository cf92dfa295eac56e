/**
 * Shared helpers of the log-store tests: an engine wrapper that counts
 * writes, temp dirs, entry builders, and a normalized view of a Storage so
 * two implementations can be compared with deepEqual.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {
  BatchOp,
  Engine,
  EngineSnapshot,
  Entry as KvEntry,
  IterateOptions,
  WriteOptions,
} from '../../../src/storage/index.js';
import type { ConfState, Entry, Storage } from '../../../src/group/raft/index.js';

/** Delegates to an engine and records every write call and its sync flag. */
export class CountingEngine implements Engine {
  readonly writes: { ops: number; sync: boolean }[] = [];
  /** When set, the next write rejects with this error (once). */
  failNextWrite: Error | undefined;

  constructor(readonly inner: Engine) {}

  get kind(): Engine['kind'] {
    return this.inner.kind;
  }
  get(key: Uint8Array): Promise<Buffer | undefined> {
    return this.inner.get(key);
  }
  iterate(options?: IterateOptions): AsyncIterableIterator<KvEntry> {
    return this.inner.iterate(options);
  }
  count(options?: IterateOptions): Promise<number> {
    return this.inner.count(options);
  }
  async write(ops: readonly BatchOp[], options?: WriteOptions): Promise<void> {
    const fail = this.failNextWrite;
    if (fail !== undefined) {
      this.failNextWrite = undefined;
      throw fail;
    }
    this.writes.push({ ops: ops.length, sync: options?.sync === true });
    return this.inner.write(ops, options);
  }
  snapshot(): EngineSnapshot {
    return this.inner.snapshot();
  }
  approximateSize(start: Uint8Array, end: Uint8Array): Promise<number> {
    return this.inner.approximateSize(start, end);
  }
  deleteSpan(start: Uint8Array, end: Uint8Array, options?: WriteOptions): Promise<void> {
    return this.inner.deleteSpan(start, end, options);
  }
  compactRange(start: Uint8Array, end: Uint8Array): Promise<void> {
    return this.inner.compactRange(start, end);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  destroy(): Promise<void> {
    return this.inner.destroy();
  }
}

/** A fresh temp dir; remove it with `rm(dir, { recursive: true, force: true })`. */
export function tempDir(tag: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `keyspan-logstore-${tag}-`));
}

/** Removes a temp dir. */
export function removeDir(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true });
}

/** An entry whose data is `size` bytes derived from its index and term. */
export function ent(index: number, term: number, size = 4): Entry {
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = (index * 31 + term * 7 + i) & 0xff;
  return { index, term, type: 'normal', data };
}

/** Voters 1..n. */
export function voters(...ids: number[]): ConfState {
  return { voters: ids, learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
}

/** An entry as plain data (Buffer and Uint8Array compare equal this way). */
export function plainEntry(e: Entry): { index: number; term: number; type: string; data: string } {
  return { index: e.index, term: e.term, type: e.type, data: Buffer.from(e.data).toString('hex') };
}

/** The outcome of a call: its value, or the name of the error it threw. */
export function outcome<T>(f: () => T): { ok: T } | { error: string } {
  try {
    return { ok: f() };
  } catch (e) {
    return { error: e instanceof Error ? e.name : String(e) };
  }
}

/** Everything raft can observe of a Storage (snapshot data left out unless asked), as plain data. */
export function observe(s: Storage, withSnapshotData = true): unknown {
  const first = s.firstIndex();
  const last = s.lastIndex();
  const all = outcome(() => s.entries(first, last + 1, Infinity).map(plainEntry));
  const snap = outcome(() => s.snapshot());
  return {
    first,
    last,
    all,
    dummyTerm: outcome(() => s.term(first - 1)),
    init: s.initialState(),
    snapshot:
      'ok' in snap
        ? { meta: snap.ok.meta, data: withSnapshotData ? Buffer.from(snap.ok.data).toString('hex') : '-' }
        : snap,
  };
}
