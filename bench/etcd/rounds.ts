/**
 * Rounds of `bench:compare`: every system runs the suite once per round, in
 * an order that alternates forward and backward (A B, then B A), and a
 * cell's figures are the median over its rounds. A machine whose speed
 * drifts over the minutes a full run takes then weighs on every system
 * alike instead of on whichever ran its cases in the slow stretch. Pure.
 */

/** The figures of one op in one run of a case (what the suite reads of the generator's JSON). */
export interface OpFigures {
  readonly count: number;
  readonly errors: number;
  readonly throughput: number;
  readonly avgMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
}

/** The order systems run in at round `round` (0-based): as given in even rounds, reversed in odd ones. */
export function roundOrder<T>(systems: readonly T[], round: number): T[] {
  return round % 2 === 0 ? [...systems] : [...systems].reverse();
}

/** The median of `values` (the mean of the middle two for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** One op's figures over several rounds: the median of each rate and latency; requests and errors summed. */
export function medianFigures(rounds: readonly OpFigures[]): OpFigures {
  const of = (f: (o: OpFigures) => number): number => median(rounds.map(f));
  return {
    count: rounds.reduce((n, o) => n + o.count, 0),
    errors: rounds.reduce((n, o) => n + o.errors, 0),
    throughput: of((o) => o.throughput),
    avgMs: of((o) => o.avgMs),
    p50Ms: of((o) => o.p50Ms),
    p99Ms: of((o) => o.p99Ms),
    p999Ms: of((o) => o.p999Ms),
  };
}
