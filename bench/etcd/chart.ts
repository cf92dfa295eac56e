/**
 * A grouped horizontal bar chart as a standalone SVG string (no external
 * service, no dependency): one group per benchmark case, one bar per system.
 * Pure: data in, text out.
 */

/** One group of bars: a case label and one value per series (undefined = not measured). */
export interface ChartGroup {
  readonly label: string;
  readonly values: ReadonlyArray<number | undefined>;
}

/** What to draw. */
export interface ChartSpec {
  readonly title: string;
  /** Unit shown after values, e.g. "req/s" or "ms". */
  readonly unit: string;
  /** Names of the series (systems), in the order of {@link ChartGroup.values}. */
  readonly series: readonly string[];
  readonly groups: readonly ChartGroup[];
}

const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948'];
const BAR_H = 14;
const BAR_GAP = 2;
const GROUP_GAP = 10;
const LABEL_W = 260;
const PLOT_W = 420;
const VALUE_W = 90;
const TOP = 48;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmt(v: number): string {
  if (v >= 100) return Math.round(v).toLocaleString('en-US');
  if (v >= 1) return v.toFixed(1);
  return v.toFixed(3);
}

/**
 * Renders the chart. Bars of a group scale to the largest value of that
 * group, so cases of very different magnitude stay readable; the numbers
 * are printed beside each bar.
 */
export function barChartSvg(spec: ChartSpec): string {
  const n = spec.series.length;
  const groupH = n * (BAR_H + BAR_GAP) + GROUP_GAP;
  const height = TOP + spec.groups.length * groupH + 10;
  const width = LABEL_W + PLOT_W + VALUE_W + 20;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  out.push(`<text x="10" y="18" font-size="14" font-weight="bold">${esc(spec.title)}</text>`);
  spec.series.forEach((s, i) => {
    const x = 10 + i * 140;
    out.push(`<rect x="${x}" y="28" width="10" height="10" fill="${COLORS[i % COLORS.length]}"/>`);
    out.push(`<text x="${x + 14}" y="37">${esc(s)}</text>`);
  });
  spec.groups.forEach((g, gi) => {
    const y0 = TOP + gi * groupH;
    const max = Math.max(0, ...g.values.map((v) => v ?? 0));
    out.push(`<text x="${LABEL_W - 6}" y="${y0 + (n * (BAR_H + BAR_GAP)) / 2 + 4}" text-anchor="end">${esc(g.label)}</text>`);
    g.values.forEach((v, si) => {
      const y = y0 + si * (BAR_H + BAR_GAP);
      if (v === undefined) {
        out.push(`<text x="${LABEL_W + 4}" y="${y + BAR_H - 3}" fill="#888">not measured</text>`);
        return;
      }
      const w = max > 0 ? Math.max(1, (v / max) * PLOT_W) : 1;
      out.push(`<rect x="${LABEL_W}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${COLORS[si % COLORS.length]}"/>`);
      out.push(`<text x="${LABEL_W + w + 4}" y="${y + BAR_H - 3}">${esc(`${fmt(v)} ${spec.unit}`)}</text>`);
    });
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
