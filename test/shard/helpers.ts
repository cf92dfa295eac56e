/** Shared helpers of the MVCC tests. */
import { MemoryEngine } from '../../src/storage/memory.js';
import type { Engine } from '../../src/storage/engine.js';
import { MvccStore } from '../../src/shard/index.js';
import type { KeyValue } from '../../src/shard/index.js';

/** Bytes of a string. */
export const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** A store on a fresh memory engine plus a revision source with step 1 (etcd-like). */
export async function freshStore(
  engine: Engine = new MemoryEngine(),
  prefix: Uint8Array = b('r1'),
): Promise<{ store: MvccStore; engine: Engine; next: () => number }> {
  const store = await MvccStore.open(engine, { prefix, compactionChunkOpsMax: 7 });
  return { store, engine, next: () => store.currentRevision + 1 };
}

/** A compact view of a KeyValue for assertions. */
export function kvView(kv: KeyValue): { key: string; value: string; create: number; mod: number; version: number; lease: bigint } {
  return {
    key: kv.key.toString('latin1'),
    value: kv.value.toString('latin1'),
    create: kv.createRevision,
    mod: kv.modRevision,
    version: kv.version,
    lease: kv.lease,
  };
}

/** Keys of a list of kvs, as strings. */
export const keysOf = (kvs: readonly KeyValue[]): string[] => kvs.map((kv) => kv.key.toString('latin1'));
