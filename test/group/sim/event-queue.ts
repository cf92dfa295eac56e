/**
 * The discrete-event queue: events ordered by (virtual time, sequence
 * number). The sequence number breaks ties in insertion order, so two events
 * at the same virtual time always run in the same order for the same seed.
 */

/** Upper bound on queued events; a run that exceeds it has a runaway loop. */
export const EVENT_QUEUE_LENGTH_MAX = 200_000;

interface Slot<T> {
  readonly timeMs: number;
  readonly seq: number;
  readonly item: T;
}

/** A binary min-heap on (timeMs, seq). */
export class EventQueue<T> {
  private readonly heap: Slot<T>[] = [];
  private seqNext = 0;

  get length(): number {
    return this.heap.length;
  }

  /** Schedules `item` at virtual time `timeMs` (never in the past: the caller checks). */
  push(timeMs: number, item: T): void {
    if (this.heap.length >= EVENT_QUEUE_LENGTH_MAX) {
      throw new Error(`event queue over ${EVENT_QUEUE_LENGTH_MAX} events`);
    }
    const slot: Slot<T> = { timeMs, seq: this.seqNext++, item };
    const heap = this.heap;
    let i = heap.length;
    heap.push(slot);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent] as Slot<T>;
      if (!less(slot, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = slot;
  }

  /** Removes and returns the earliest event, or undefined when empty. */
  pop(): { timeMs: number; item: T } | undefined {
    const heap = this.heap;
    const top = heap[0];
    if (top === undefined) return undefined;
    const last = heap.pop() as Slot<T>;
    if (heap.length > 0) {
      let i = 0;
      const n = heap.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        let c = l;
        if (r < n && less(heap[r] as Slot<T>, heap[l] as Slot<T>)) c = r;
        const child = heap[c] as Slot<T>;
        if (!less(child, last)) break;
        heap[i] = child;
        i = c;
      }
      heap[i] = last;
    }
    return { timeMs: top.timeMs, item: top.item };
  }

  /** The earliest event's time, or undefined when empty. */
  peekTimeMs(): number | undefined {
    return this.heap[0]?.timeMs;
  }
}

function less<T>(a: Slot<T>, b: Slot<T>): boolean {
  return a.timeMs < b.timeMs || (a.timeMs === b.timeMs && a.seq < b.seq);
}
