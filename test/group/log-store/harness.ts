/**
 * One write interface over MemoryStorage (the model) and a LogStore group,
 * so the same scenario can run against both and their answers be compared.
 */
import {
  type ConfState,
  type Entry,
  type HardState,
  MemoryStorage,
  type Snapshot,
  type Storage,
} from '../../../src/group/raft/index.js';
import { type LogStore, LogStore as Store } from '../../../src/group/log-store/index.js';
import { type Engine, MemoryEngine } from '../../../src/storage/index.js';

/** What the scenarios do to a storage; mirrors MemoryStorage's writers. */
export interface Harness {
  readonly storage: Storage;
  append(ents: readonly Entry[]): void;
  setHardState(hs: HardState): void;
  applySnapshot(snap: Snapshot): void;
  createSnapshot(index: number, cs: ConfState | undefined, data: Uint8Array): Snapshot;
  compact(index: number): void;
}

/** MemoryStorage, with the store's one deliberate addition: installing a snapshot raises commit to its index. */
export function modelHarness(cs: ConfState): Harness & { readonly model: MemoryStorage } {
  const model = MemoryStorage.fromConfState(cs);
  return {
    model,
    storage: model,
    append: (ents) => model.append(ents),
    setHardState: (hs) => model.setHardState(hs),
    applySnapshot: (snap) => {
      model.applySnapshot(snap);
      const hs = model.getHardState();
      if (hs.commit < snap.meta.index) model.setHardState({ ...hs, commit: snap.meta.index });
    },
    createSnapshot: (index, c, data) => model.createSnapshot(index, c, data),
    compact: (index) => model.compact(index),
  };
}

/** The group id the single-group harness uses. */
export const HARNESS_GROUP = 7;

/** A LogStore group behind the same interface; the caller flushes as it likes. */
export function storeHarness(store: LogStore, groupId = HARNESS_GROUP): Harness {
  const log = store.group(groupId);
  return {
    storage: log,
    append: (ents) => store.stage(groupId, { entries: ents }),
    setHardState: (hs) => store.stage(groupId, { hardState: hs }),
    applySnapshot: (snap) => store.stage(groupId, { snapshot: snap }),
    createSnapshot: (index, c, data) => store.createSnapshot(groupId, index, c, data),
    compact: (index) => {
      let term = 0;
      try {
        term = log.term(index);
      } catch {
        // truncate() reports the compacted / unavailable index before it looks at the term.
      }
      store.truncate(groupId, index, term);
    },
  };
}

/** A store over a fresh memory engine with one group. */
export async function freshStore(cs: ConfState, engine: Engine = new MemoryEngine()): Promise<LogStore> {
  const store = await Store.open(engine);
  store.createGroup(HARNESS_GROUP, { confState: cs });
  return store;
}
