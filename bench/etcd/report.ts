/** Text and JSON renderings of a {@link BenchResult}. */
import type { BenchResult } from './runner.js';

/** One JSON line (the `--json` output), stable field names for scripts. */
export function toJsonLine(r: BenchResult): string {
  return JSON.stringify({
    workload: r.workload,
    endpoints: r.options.endpoints,
    conns: r.options.conns,
    clients: r.options.clients,
    workers: r.options.workers,
    total: r.options.total ?? null,
    durationSec: r.options.durationSec ?? null,
    keySize: r.options.keySize,
    valSize: r.options.valSize,
    keySpaceSize: r.options.keySpaceSize,
    sequentialKeys: r.options.sequentialKeys,
    consistency: r.options.consistency,
    seed: r.options.seed,
    elapsedSec: r.elapsedSec,
    requests: r.requests,
    ops: r.ops,
    counters: r.counters,
    errorSamples: r.errorSamples,
    generator: r.generator,
  });
}

function fmt(n: number, digits = 3): string {
  return n.toFixed(digits);
}

/** A human-readable report, in the spirit of etcd's benchmark summary. */
export function toText(r: BenchResult): string {
  const o = r.options;
  const lines: string[] = [];
  lines.push(
    `${r.workload}: ${o.conns} conns, ${o.clients} clients, ${o.workers} worker(s), ` +
      `${o.total !== undefined ? `total ${o.total}` : `duration ${o.durationSec}s`}, key ${o.keySize} B, value ${o.valSize} B, ` +
      `key space ${o.keySpaceSize}${o.sequentialKeys ? ' (sequential)' : ''}, consistency ${o.consistency}, endpoints ${o.endpoints.join(',')}`,
  );
  lines.push(`elapsed ${fmt(r.elapsedSec)} s, ${r.requests} requests`);
  const header = ['op', 'count', 'errors', 'req/s', 'min ms', 'avg ms', 'p50', 'p90', 'p99', 'p99.9', 'max ms'];
  const rows = Object.entries(r.ops).map(([op, s]) => [
    op,
    String(s.count),
    String(s.errors),
    s.throughput.toFixed(1),
    fmt(s.minMs),
    fmt(s.avgMs),
    fmt(s.p50Ms),
    fmt(s.p90Ms),
    fmt(s.p99Ms),
    fmt(s.p999Ms),
    fmt(s.maxMs),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  lines.push(line(header));
  for (const row of rows) lines.push(line(row));
  for (const [k, v] of Object.entries(r.counters)) lines.push(`${k}: ${v}`);
  for (const e of r.errorSamples) lines.push(`error sample: ${e}`);
  const g = r.generator;
  lines.push(
    `generator CPU: user ${fmt(g.cpuUserSec, 2)} s + system ${fmt(g.cpuSystemSec, 2)} s over ${g.workers} process(es) = ` +
      `${g.cpuPercentOfMachine}% of ${g.cores} cores (load average at start ${g.loadAvg1m})`,
  );
  return lines.join('\n');
}
