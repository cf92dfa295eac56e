/**
 * Argument checks of the log store's public methods. Each throws
 * INVALID_ARGUMENT before anything is changed. Private to the log store.
 */
import type { Entry, HardState } from '../raft/index.js';
import { LogStoreError } from './errors.js';

/** Throws INVALID_ARGUMENT unless `value` is a non-negative safe integer. */
export function checkIndex(what: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new LogStoreError('INVALID_ARGUMENT', `${what} must be a non-negative safe integer, got ${String(value)}`);
  }
}

/** Throws INVALID_ARGUMENT unless `id` is a valid group id (a positive safe integer). */
export function checkGroupId(id: number): void {
  if (!Number.isSafeInteger(id) || id <= 0) {
    throw new LogStoreError('INVALID_ARGUMENT', `group id must be a positive safe integer, got ${String(id)}`);
  }
}

/** Throws INVALID_ARGUMENT unless every field of the hard state is a non-negative safe integer. */
export function checkHardState(hs: HardState): void {
  checkIndex('hardState.term', hs.term);
  checkIndex('hardState.vote', hs.vote);
  checkIndex('hardState.commit', hs.commit);
}

/** Throws INVALID_ARGUMENT unless the entries are well-formed and have contiguous indexes. */
export function checkEntries(entries: readonly Entry[]): void {
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    checkIndex('entry index', e.index);
    checkIndex('entry term', e.term);
    if (e.index === 0) throw new LogStoreError('INVALID_ARGUMENT', 'entry index 0 is reserved');
    if (e.type !== 'normal' && e.type !== 'confChange') throw new LogStoreError('INVALID_ARGUMENT', `unknown entry type ${String(e.type)}`);
    if (!(e.data instanceof Uint8Array)) throw new LogStoreError('INVALID_ARGUMENT', `entry ${e.index} data is not a Uint8Array`);
    if (i > 0 && e.index !== entries[i - 1]!.index + 1) {
      throw new LogStoreError('INVALID_ARGUMENT', `entries are not contiguous (${entries[i - 1]!.index} then ${e.index})`);
    }
  }
}
