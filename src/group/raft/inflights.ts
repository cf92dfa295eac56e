/**
 * Inflights: the sliding window of append messages sent to one follower in
 * replicate state and not yet acknowledged, bounded by count (maxInflightMsgs)
 * and optionally by bytes. A ring buffer: add and free are O(1) amortized and
 * allocate nothing after the buffer has grown to its final size.
 */
import { invariant } from './errors.js';

export class Inflights {
  /** Capacity in messages. */
  readonly size: number;
  /** Capacity in bytes (Infinity = unbounded). */
  readonly maxBytes: number;
  private start = 0;
  private count_ = 0;
  private bytes_ = 0;
  private indexes: number[] = [];
  private sizes: number[] = [];

  constructor(size: number, maxBytes = Infinity) {
    invariant(size > 0, 'inflights size must be positive');
    this.size = size;
    this.maxBytes = maxBytes;
  }

  /** Number of messages in flight. */
  count(): number {
    return this.count_;
  }

  bytes(): number {
    return this.bytes_;
  }

  full(): boolean {
    return this.count_ === this.size || this.bytes_ >= this.maxBytes;
  }

  /** Records a message whose last entry is `index`; indexes must increase. */
  add(index: number, bytes: number): void {
    invariant(!this.full(), 'cannot add into a full inflights window');
    let next = this.start + this.count_;
    if (next >= this.size) next -= this.size;
    if (next >= this.indexes.length) {
      // Grow lazily: most followers never fill the whole window.
      this.indexes.push(index);
      this.sizes.push(bytes);
    } else {
      this.indexes[next] = index;
      this.sizes[next] = bytes;
    }
    this.count_++;
    this.bytes_ += bytes;
  }

  /** Frees every message whose last index is <= `to` (they were acknowledged). */
  freeLE(to: number): void {
    if (this.count_ === 0 || to < this.indexes[this.start]!) return;
    let idx = this.start;
    let i = 0;
    let freedBytes = 0;
    for (; i < this.count_; i++) {
      if (to < this.indexes[idx]!) break;
      freedBytes += this.sizes[idx]!;
      idx++;
      if (idx >= this.size) idx -= this.size;
    }
    this.count_ -= i;
    this.bytes_ -= freedBytes;
    this.start = idx;
    if (this.count_ === 0) this.start = 0;
  }

  reset(): void {
    this.count_ = 0;
    this.bytes_ = 0;
    this.start = 0;
  }
}
