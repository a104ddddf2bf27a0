// charts.js — small SVG charts drawn with DOM calls (no library, no inline styles: colours
// are SVG attributes or CSS classes). Labels are text nodes.
import {h, s, num} from './dom.js';

const STATE_COLOURS = {
  installed: '#2e7d32', failed: '#c62828', downloading: '#1565c0', verifying: '#6a1b9a',
  registered: '#9e9e9e', in_progress: '#1565c0', reporting: '#455a64',
  masks: '#1f4e79', dense: '#ef6c00', prototypes: '#00897b', other: '#b0bec5',
};
const PALETTE = ['#1f4e79', '#ef6c00', '#00897b', '#8e24aa', '#c0ca33', '#6d4c41', '#d81b60',
  '#3949ab', '#00acc1', '#7cb342'];

export function colour(key, i) {
  return STATE_COLOURS[key] || PALETTE[i % PALETTE.length];
}

// Horizontal bars: items [{label, value, key?}]. Returns a figure.
export function hbars(items, opts = {}) {
  const rowH = 26, labelW = 150, valueW = 90, W = 560;
  const max = Math.max(1, ...items.map((x) => x.value));
  const total = items.reduce((a, x) => a + x.value, 0);
  const H = Math.max(1, items.length) * rowH + 4;
  const svg = s('svg', {viewBox: `0 0 ${W} ${H}`, width: '100%', role: 'img',
    'aria-label': opts.title || 'bar chart', class: 'chart'});
  if (!items.length) {
    svg.append(s('text', {x: 4, y: 18, class: 'chart-empty'}, 'no data'));
  }
  items.forEach((x, i) => {
    const y = i * rowH + 2, bw = Math.max(x.value ? 2 : 0, (W - labelW - valueW) * x.value / max);
    const label = x.label.length > 22 ? x.label.slice(0, 21) + '…' : x.label;
    const g = s('g', {'data-label': x.label, 'data-value': x.value},
      s('title', null, `${x.label}: ${num(x.value)}`),
      s('text', {x: labelW - 8, y: y + 16, 'text-anchor': 'end', class: 'chart-label'}, label),
      s('rect', {x: labelW, y: y + 3, width: bw.toFixed(1), height: rowH - 8, rx: 3,
        fill: colour(x.key || x.label, i)}),
      s('text', {x: labelW + bw + 6, y: y + 16, class: 'chart-value'},
        num(x.value) + (total && opts.share !== false ? ` (${(100 * x.value / total).toFixed(1)}%)` : '')));
    svg.append(g);
  });
  return h('figure.chart-box', opts.test ? {'data-test': opts.test} : null, svg,
    opts.caption ? h('figcaption', opts.caption) : null);
}

// One stacked bar with a legend: items [{label, value, key}].
export function stacked(items, opts = {}) {
  const W = 560, H = 34;
  const total = items.reduce((a, x) => a + x.value, 0) || 1;
  const svg = s('svg', {viewBox: `0 0 ${W} ${H}`, width: '100%', role: 'img',
    'aria-label': opts.title || 'stacked bar', class: 'chart'});
  let x = 0;
  items.forEach((it, i) => {
    const w = W * it.value / total;
    if (w > 0) {
      svg.append(s('rect', {x: x.toFixed(2), y: 4, width: Math.max(0.5, w).toFixed(2), height: H - 8,
        fill: colour(it.key || it.label, i)}, s('title', null, `${it.label}: ${num(it.value)}`)));
    }
    x += w;
  });
  const legend = h('ul.legend', items.map((it, i) => h('li', {'data-test': opts.test ? opts.test + '-' + (it.key || it.label) : null},
    swatch(colour(it.key || it.label, i)), h('span.legend-label', it.label),
    h('span.legend-value', opts.format ? opts.format(it.value) : num(it.value)),
    h('span.muted', ` ${(100 * it.value / total).toFixed(1)} %`))));
  return h('figure.chart-box', opts.test ? {'data-test': opts.test} : null, svg, legend);
}

function swatch(c) {
  return s('svg', {width: 12, height: 12, class: 'swatch', 'aria-hidden': 'true'},
    s('rect', {width: 12, height: 12, rx: 2, fill: c}));
}

// A line chart over time: samples [{at, ...}], series [{key, label}].
export function timeline(samples, series, opts = {}) {
  const W = 640, H = 220, L = 48, R = 12, T = 12, B = 28;
  const svg = s('svg', {viewBox: `0 0 ${W} ${H}`, width: '100%', role: 'img',
    'aria-label': opts.title || 'timeline', class: 'chart'});
  if (samples.length === 0) {
    svg.append(s('text', {x: L, y: H / 2, class: 'chart-empty'}, 'no samples yet'));
    return h('figure.chart-box', opts.test ? {'data-test': opts.test} : null, svg);
  }
  const t0 = samples[0].at, t1 = Math.max(samples[samples.length - 1].at, t0 + 1);
  let ymax = 1;
  for (const p of samples) for (const se of series) ymax = Math.max(ymax, p[se.key] || 0);
  ymax = niceMax(ymax);
  const X = (t) => L + (W - L - R) * (t - t0) / (t1 - t0);
  const Y = (v) => T + (H - T - B) * (1 - v / ymax);
  for (let k = 0; k <= 4; k++) {
    const v = ymax * k / 4;
    svg.append(s('line', {x1: L, x2: W - R, y1: Y(v), y2: Y(v), class: 'grid'}));
    svg.append(s('text', {x: L - 6, y: Y(v) + 4, 'text-anchor': 'end', class: 'axis'}, num(Math.round(v))));
  }
  for (let k = 0; k <= 3; k++) {
    const t = t0 + (t1 - t0) * k / 3;
    svg.append(s('text', {x: X(t), y: H - 8, 'text-anchor': k === 0 ? 'start' : k === 3 ? 'end' : 'middle',
      class: 'axis'}, new Date(t * 1000).toISOString().slice(11, 19)));
  }
  // paused and aborted stretches as shaded bands
  samples.forEach((p, i) => {
    if (p.state !== 'paused' && p.state !== 'aborted') return;
    const x0 = X(p.at), x1 = i + 1 < samples.length ? X(samples[i + 1].at) : W - R;
    svg.append(s('rect', {x: x0.toFixed(1), y: T, width: Math.max(1, x1 - x0).toFixed(1), height: H - T - B,
      class: 'band-' + p.state}, s('title', null, p.state)));
  });
  series.forEach((se, i) => {
    const pts = samples.map((p) => `${X(p.at).toFixed(1)},${Y(p[se.key] || 0).toFixed(1)}`);
    if (samples.length === 1) pts.push(`${(W - R).toFixed(1)},${Y(samples[0][se.key] || 0).toFixed(1)}`);
    svg.append(s('polyline', {points: pts.join(' '), fill: 'none', stroke: colour(se.key, i),
      'stroke-width': 2.2, 'stroke-linejoin': 'round'}));
  });
  const legend = h('ul.legend', series.map((se, i) => h('li', swatch(colour(se.key, i)),
    h('span.legend-label', se.label),
    h('span.legend-value', num(samples[samples.length - 1][se.key] || 0)))));
  return h('figure.chart-box', opts.test ? {'data-test': opts.test} : null, svg, legend);
}

function niceMax(v) {
  // four gridlines on round numbers
  v = Math.max(4, v);
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 4, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// A percentage bar (rollout progress).
export function meter(value, max, cls) {
  const f = max ? Math.min(1, value / max) : 0;
  const svg = s('svg', {viewBox: '0 0 100 8', preserveAspectRatio: 'none', width: '100%', height: 10,
    class: 'meter ' + (cls || '')},
  s('rect', {x: 0, y: 0, width: 100, height: 8, rx: 2, class: 'meter-bg'}),
  s('rect', {x: 0, y: 0, width: (100 * f).toFixed(2), height: 8, rx: 2, class: 'meter-fg'}));
  return svg;
}
