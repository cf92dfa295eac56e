/**
 * etcd's key-range conventions (reference §2.2): an empty range end means
 * one key, "\0" means every key >= key, anything else the half-open span
 * [key, rangeEnd), which is empty when rangeEnd <= key.
 */
import { KeyNotProvidedError } from './errors.js';

/** A resolved key span. `end` null means unbounded above. */
export type KeySpan =
  | { readonly kind: 'single'; readonly key: Buffer }
  | { readonly kind: 'span'; readonly start: Buffer; readonly end: Buffer | null }
  | { readonly kind: 'empty' };

/** Resolves etcd's key/rangeEnd pair; throws KeyNotProvidedError for an empty key. */
export function resolveSpan(key: Uint8Array, rangeEnd: Uint8Array | undefined): KeySpan {
  if (key.length === 0) throw new KeyNotProvidedError();
  if (rangeEnd === undefined || rangeEnd.length === 0) return { kind: 'single', key: Buffer.from(key) };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { kind: 'span', start: Buffer.from(key), end: null };
  if (Buffer.compare(rangeEnd, key) <= 0) return { kind: 'empty' };
  return { kind: 'span', start: Buffer.from(key), end: Buffer.from(rangeEnd) };
}

/** Whether `key` lies in `span`. */
export function spanContains(span: KeySpan, key: Uint8Array): boolean {
  switch (span.kind) {
    case 'single':
      return Buffer.compare(span.key, key) === 0;
    case 'span':
      return Buffer.compare(key, span.start) >= 0 && (span.end === null || Buffer.compare(key, span.end) < 0);
    case 'empty':
      return false;
  }
}

/** The range end that selects every key starting with `prefix` (etcd's prefix rule). */
export function prefixEnd(prefix: Uint8Array): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] as number) < 0xff) {
      end[i] = (end[i] as number) + 1;
      return end.subarray(0, i + 1);
    }
  }
  // All 0xff: no upper bound, which etcd spells "\0".
  return Buffer.from([0]);
}
