/**
 * An abort signal made on first use. Creating an AbortController and its
 * signal costs several microseconds in Node (an EventTarget each), and most
 * calls finish without anyone reading their signal: the gateway reads it
 * only when a retry or a forwarded hop needs it. Aborting before the signal
 * exists is remembered, so a signal made later starts aborted.
 */
export class LazyAbort {
  private controller: AbortController | undefined;
  private abortedEarly = false;

  /** The signal (made now if nobody asked before). */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.abortedEarly) this.controller.abort();
    }
    return this.controller.signal;
  }

  /** Whether {@link abort} was called. */
  get aborted(): boolean {
    return this.abortedEarly || this.controller?.signal.aborted === true;
  }

  /** Aborts the signal, now or when it is made. */
  abort(): void {
    if (this.controller === undefined) this.abortedEarly = true;
    else this.controller.abort();
  }
}
