/**
 * Latency recording: one HDR histogram (hdr-histogram-js) per operation kind,
 * in microseconds with 3 significant digits, plus error and extra counters.
 * Workers ship their histograms to the parent as compressed base64 (the HDR
 * interchange format), where they are added up before the summary is computed,
 * so percentiles are exact over the whole run rather than averaged.
 */
import * as hdr from 'hdr-histogram-js';

/** Latencies above this (µs) are clamped; a minute is beyond any sane request. */
export const LATENCY_US_MAX = 60_000_000;

/** A fresh latency histogram. */
export function newHistogram(): hdr.Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: LATENCY_US_MAX,
    numberOfSignificantValueDigits: 3,
    autoResize: false,
  });
}

/** Records per operation kind: latencies, errors, and named counters (conflicts, events, ...). */
export class Recorder {
  readonly histograms = new Map<string, hdr.Histogram>();
  readonly errors = new Map<string, number>();
  readonly counters = new Map<string, number>();
  /** First few distinct error messages, to tell the user what went wrong. */
  readonly errorSamples: string[] = [];
  private static readonly ERROR_SAMPLES_MAX = 5;
  /** Operations completed (ok or not), read by the progress reporter. */
  done = 0;

  /** Records one successful operation of kind `op` that took `us` microseconds. */
  record(op: string, us: number): void {
    let h = this.histograms.get(op);
    if (h === undefined) {
      h = newHistogram();
      this.histograms.set(op, h);
    }
    h.recordValue(Math.min(LATENCY_US_MAX, Math.max(1, Math.round(us))));
    this.done++;
  }

  /** Records one failed operation of kind `op`. */
  error(op: string, err: unknown): void {
    this.errors.set(op, (this.errors.get(op) ?? 0) + 1);
    this.done++;
    const msg = `${op}: ${err instanceof Error ? err.message : String(err)}`;
    if (this.errorSamples.length < Recorder.ERROR_SAMPLES_MAX && !this.errorSamples.includes(msg)) this.errorSamples.push(msg);
  }

  /** Adds `n` to the counter `name`. */
  count(name: string, n = 1): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + n);
  }

  /** The recorder in a form that crosses process boundaries. */
  toWire(): RecorderWire {
    const histograms: Record<string, string> = {};
    for (const [op, h] of this.histograms) histograms[op] = hdr.encodeIntoCompressedBase64(h);
    return {
      histograms,
      errors: Object.fromEntries(this.errors),
      counters: Object.fromEntries(this.counters),
      errorSamples: [...this.errorSamples],
    };
  }

  /** Adds a worker's records into this one. */
  merge(w: RecorderWire): void {
    for (const [op, b64] of Object.entries(w.histograms)) {
      const other = hdr.decodeFromCompressedBase64(b64);
      let h = this.histograms.get(op);
      if (h === undefined) {
        h = newHistogram();
        this.histograms.set(op, h);
      }
      h.add(other);
      other.destroy();
    }
    for (const [op, n] of Object.entries(w.errors)) this.errors.set(op, (this.errors.get(op) ?? 0) + n);
    for (const [k, n] of Object.entries(w.counters)) this.counters.set(k, (this.counters.get(k) ?? 0) + n);
    for (const s of w.errorSamples) {
      if (this.errorSamples.length < Recorder.ERROR_SAMPLES_MAX && !this.errorSamples.includes(s)) this.errorSamples.push(s);
    }
  }
}

/** {@link Recorder} as plain JSON. */
export interface RecorderWire {
  readonly histograms: Record<string, string>;
  readonly errors: Record<string, number>;
  readonly counters: Record<string, number>;
  readonly errorSamples: string[];
}

/** What a report shows of one operation kind; latencies in milliseconds. */
export interface LatencySummary {
  readonly count: number;
  readonly errors: number;
  /** Successful operations per second of wall-clock time. */
  readonly throughput: number;
  readonly minMs: number;
  readonly avgMs: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
}

/** The percentiles a summary shows, in order. */
export const PERCENTILES = [50, 90, 99, 99.9] as const;

/** Summary of one histogram over a run of `elapsedSec` seconds. */
export function summarize(h: hdr.Histogram | undefined, errors: number, elapsedSec: number): LatencySummary {
  const us = (v: number): number => Math.round(v) / 1000;
  if (h === undefined || h.totalCount === 0) {
    return { count: 0, errors, throughput: 0, minMs: 0, avgMs: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0 };
  }
  return {
    count: h.totalCount,
    errors,
    throughput: elapsedSec > 0 ? Math.round((h.totalCount / elapsedSec) * 10) / 10 : 0,
    minMs: us(h.minNonZeroValue),
    avgMs: Math.round(h.mean) / 1000,
    p50Ms: us(h.getValueAtPercentile(50)),
    p90Ms: us(h.getValueAtPercentile(90)),
    p99Ms: us(h.getValueAtPercentile(99)),
    p999Ms: us(h.getValueAtPercentile(99.9)),
    maxMs: us(h.maxValue),
  };
}
