import { test } from 'node:test';
import assert from 'node:assert/strict';
import { barChartSvg } from '../../bench/etcd/chart.js';

test('barChartSvg() draws one bar per measured value, scaled per group, and marks missing ones', () => {
  const svg = barChartSvg({
    title: 'Throughput <req/s>',
    unit: 'req/s',
    series: ['etcd', 'keyspan'],
    groups: [
      { label: 'put 1×1', values: [500, 250] },
      { label: 'lease 1×1', values: [2000, undefined] },
    ],
  });
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.match(svg, /Throughput &lt;req\/s&gt;/, 'text is escaped');
  const bars = [...svg.matchAll(/<rect x="260" y="\d+" width="([\d.]+)"/g)].map((m) => Number(m[1]));
  assert.deepEqual(bars, [420, 210, 420]);
  assert.match(svg, /not measured/);
  assert.match(svg, /2,000 req\/s/);
  assert.ok(svg.trimEnd().endsWith('</svg>'));
});
