/**
 * Formatting of run results, shared by the CLI and the tests, so a failing
 * seed always prints the same self-contained report: the seed, its
 * scenario, the violated invariant, the trace tail and the replay command.
 */
import type { SimResult } from './cluster.js';
import { FAULT_KINDS } from './scenario.js';
import type { FaultKind } from './scenario.js';

/** A failing seed's report. */
export function formatFailure(r: SimResult, bugFlag = ''): string {
  const v = r.violation;
  const lines = [
    `seed ${r.seed} FAILED: ${v === undefined ? 'ok?' : `${v.invariant}: ${v.message}`}`,
    `  scenario: ${r.scenario}`,
    `  events: ${r.events}, virtual time: ${r.virtualMs}ms, digest: ${r.digest}`,
    `  replay: npm run sim -- --seed ${r.seed}${bugFlag} --trace`,
    `  trace tail:`,
    ...r.traceTail.map((l) => `    ${l}`),
  ];
  return lines.join('\n');
}

/** Totals over many runs. */
export interface Summary {
  seeds: number;
  failed: number[];
  events: number;
  virtualMsMax: number;
  faults: Record<FaultKind, number>;
  stats: Record<string, number>;
}

/** An empty summary. */
export function newSummary(): Summary {
  return {
    seeds: 0,
    failed: [],
    events: 0,
    virtualMsMax: 0,
    faults: Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>,
    stats: {},
  };
}

/** Adds one run to a summary. */
export function addToSummary(s: Summary, r: SimResult): void {
  s.seeds++;
  if (!r.ok) s.failed.push(r.seed);
  s.events += r.events;
  s.virtualMsMax = Math.max(s.virtualMsMax, r.virtualMs);
  for (const k of FAULT_KINDS) s.faults[k] += r.faults[k];
  for (const [k, v] of Object.entries(r.stats)) s.stats[k] = (s.stats[k] ?? 0) + v;
}

/** The summary as text; `wallMs` is real elapsed time. */
export function formatSummary(s: Summary, wallMs: number): string {
  const faults = FAULT_KINDS.map((k) => `${k}=${s.faults[k]}`).join(' ');
  const stats = Object.entries(s.stats)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const perSec = wallMs > 0 ? (s.seeds * 1000) / wallMs : 0;
  return [
    `seeds: ${s.seeds} (${s.seeds - s.failed.length} ok, ${s.failed.length} failed${s.failed.length > 0 ? `: ${s.failed.slice(0, 20).join(', ')}` : ''})`,
    `events: ${s.events} (${s.seeds > 0 ? Math.round(s.events / s.seeds) : 0}/seed), max virtual time: ${s.virtualMsMax}ms`,
    `wall: ${(wallMs / 1000).toFixed(1)}s (${perSec.toFixed(1)} seeds/s)`,
    `faults: ${faults}`,
    `totals: ${stats}`,
  ].join('\n');
}
