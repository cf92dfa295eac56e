/** Public entry of the MVCC keyspace: one store per range over a shared engine. */
export { MvccStore } from './store.js';
export type { ApplyOptions, CompactPlan, MvccStoreOptions, PlanOptions, PrefetchKey } from './store.js';
export * from './errors.js';
export type * from './types.js';
export { KeyCodec, Family, MetaName } from './keys.js';
export { prefixEnd } from './span.js';
export { crc32c } from './hash.js';
export { CHANGES_PAGE_BYTES_MAX, CHANGES_PAGE_EVENTS_MAX } from './changes.js';
export { COMPACTION_CHUNK_OPS_MAX } from './compact.js';
