// Line charts as standalone SVG 1.1 text, rendered in Node with no dependencies (no browser, no canvas).
// Bench support layer: series of (x, y) points -> axes with ticks, log or linear scales, one polyline plus
// markers per series, legend, title and subtitle. The output is a pure function of the spec (same bytes).

const PALETTE = ['#0b6e4f', '#d62728', '#1f77b4', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const MARKERS = ['circle', 'square', 'triangle', 'diamond', 'down', 'cross'];
const FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif';
// Average glyph width of the sans-serif font above as a share of its size, to size the legend without
// measuring text (a long label then overflows into the margin rather than off the picture).
const CHAR_W = 0.6;

/**
 * @typedef {object} AxisSpec
 * @property {string} label           axis title, e.g. 'gallery size N'
 * @property {string} [unit]          appended in parentheses: 'ms' -> 'time (ms)'
 * @property {'linear'|'log'} [scale] default 'linear'
 * @property {number[]} [ticks]       explicit tick positions (e.g. the sweep's values); default: nice ticks
 * @property {boolean} [zero]         linear scale only: include 0 in the domain
 *
 * @typedef {object} SeriesSpec
 * @property {string} name                                  legend label
 * @property {Array<[number, number] | {x: number, y: number}>} points
 * @property {boolean} [emphasis]                          drawn thicker (the system under test)
 *
 * @typedef {object} ChartSpec
 * @property {string} title
 * @property {string | string[]} [subtitle]  one string per line
 * @property {AxisSpec} x
 * @property {AxisSpec} y
 * @property {SeriesSpec[]} series
 * @property {number} [width]   default 900
 * @property {number} [height]  default 540
 */

/** XML-escapes text for element content and attribute values; drops characters XML 1.0 forbids. */
export function escapeXml(text) {
  return String(text)
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** Short tick label: 12500 -> '12.5k', 2000000 -> '2M', 0.25 -> '0.25', 1e-5 -> '1e-5'. */
export function formatTick(v) {
  if (v === 0) return '0';
  const a = Math.abs(v);
  const trim = (x) => String(Number(x.toPrecision(3)));
  if (a >= 1e9) return `${trim(v / 1e9)}G`;
  if (a >= 1e6) return `${trim(v / 1e6)}M`;
  if (a >= 1e4) return `${trim(v / 1e3)}k`;
  return trim(v);
}

/** Coordinates with two decimals and no '-0', so equal inputs print equal text on every platform. */
function num(v) {
  const r = Math.round(v * 100) / 100;
  return String(Object.is(r, -0) ? 0 : r);
}

function normalisePoints(points) {
  return points.map((p) => (Array.isArray(p) ? { x: p[0], y: p[1] } : { x: p.x, y: p.y }));
}

/** A point is drawable when both coordinates are finite and, on a log axis, positive. */
function drawable(p, xs, ys) {
  const ok = (v, s) => typeof v === 'number' && Number.isFinite(v) && (s !== 'log' || v > 0);
  return ok(p.x, xs) && ok(p.y, ys);
}

/** Step of 1, 2, 2.5 or 5 times a power of ten giving about `target` intervals over `span`. */
function niceStep(span, target) {
  const raw = span / target;
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10) * p;
}

/** Domain [lo, hi] and tick positions for one axis over the values it must show. */
function axisLayout(axis, values) {
  const scale = axis.scale ?? 'linear';
  if (scale !== 'linear' && scale !== 'log') throw new Error(`svg chart: axis scale must be 'linear' or 'log', got ${scale}`);
  const explicit = (axis.ticks ?? []).filter((t) => Number.isFinite(t) && (scale !== 'log' || t > 0));
  const all = [...values, ...explicit];
  if (scale === 'log') {
    let lo = all.length ? Math.min(...all) : 1;
    let hi = all.length ? Math.max(...all) : 10;
    if (explicit.length) {
      // Explicit ticks (sweep values): a small pad on each side, in log units, keeps end markers off the axes.
      const pad = Math.max((Math.log10(hi) - Math.log10(lo)) * 0.04, 0.05);
      return { scale, lo: lo / 10 ** pad, hi: hi * 10 ** pad, ticks: [...new Set(explicit)].sort((a, b) => a - b) };
    }
    let e0 = Math.floor(Math.log10(lo));
    let e1 = Math.ceil(Math.log10(hi));
    if (e1 === e0) e1 = e0 + 1;
    lo = 10 ** e0;
    hi = 10 ** e1;
    const ticks = [];
    // Few decades: 1-2-5 ticks read better than bare powers of ten; many decades: every other power.
    const decades = e1 - e0;
    const every = decades > 8 ? 2 : 1;
    for (let e = e0; e <= e1; e += every) {
      ticks.push(10 ** e);
      if (decades <= 2 && e < e1) ticks.push(2 * 10 ** e, 5 * 10 ** e);
    }
    return { scale, lo, hi, ticks: ticks.map((t) => Number(t.toPrecision(12))) };
  }
  let lo = all.length ? Math.min(...all) : 0;
  let hi = all.length ? Math.max(...all) : 1;
  if (axis.zero) {
    lo = Math.min(lo, 0);
    hi = Math.max(hi, 0);
  }
  if (hi === lo) {
    const d = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= d;
    hi += d;
  }
  if (explicit.length) {
    const pad = (hi - lo) * 0.04;
    return { scale, lo: axis.zero && lo === 0 ? 0 : lo - pad, hi: hi + pad, ticks: [...new Set(explicit)].sort((a, b) => a - b) };
  }
  const step = niceStep(hi - lo, 5);
  lo = Math.floor(lo / step) * step;
  hi = Math.ceil(hi / step) * step;
  const ticks = [];
  for (let i = 0, t = lo; t <= hi + step * 1e-9; i++, t = lo + i * step) ticks.push(Number(t.toPrecision(12)));
  return { scale, lo, hi, ticks };
}

function projector(layout, from, to) {
  if (layout.scale === 'log') {
    const a = Math.log10(layout.lo);
    const b = Math.log10(layout.hi);
    return (v) => from + ((Math.log10(v) - a) / (b - a)) * (to - from);
  }
  return (v) => from + ((v - layout.lo) / (layout.hi - layout.lo)) * (to - from);
}

function marker(shape, x, y, color) {
  const r = 4.5;
  const common = `fill="${color}" stroke="#ffffff" stroke-width="1"`;
  switch (shape) {
    case 'square':
      return `<rect x="${num(x - r)}" y="${num(y - r)}" width="${num(2 * r)}" height="${num(2 * r)}" ${common}/>`;
    case 'triangle':
      return `<polygon points="${num(x)},${num(y - r * 1.2)} ${num(x + r * 1.1)},${num(y + r * 0.9)} ${num(x - r * 1.1)},${num(y + r * 0.9)}" ${common}/>`;
    case 'down':
      return `<polygon points="${num(x)},${num(y + r * 1.2)} ${num(x + r * 1.1)},${num(y - r * 0.9)} ${num(x - r * 1.1)},${num(y - r * 0.9)}" ${common}/>`;
    case 'diamond':
      return `<polygon points="${num(x)},${num(y - r * 1.3)} ${num(x + r * 1.3)},${num(y)} ${num(x)},${num(y + r * 1.3)} ${num(x - r * 1.3)},${num(y)}" ${common}/>`;
    case 'cross':
      return `<path d="M${num(x - r)},${num(y - r)}L${num(x + r)},${num(y + r)}M${num(x - r)},${num(y + r)}L${num(x + r)},${num(y - r)}" stroke="${color}" stroke-width="2.5" fill="none"/>`;
    default:
      return `<circle cx="${num(x)}" cy="${num(y)}" r="${num(r)}" ${common}/>`;
  }
}

function axisTitle(axis) {
  return axis.unit ? `${axis.label} (${axis.unit})` : axis.label;
}

/**
 * Renders a line chart as a standalone SVG 1.1 document (string). Points that cannot be drawn (non-finite,
 * or <= 0 on a log axis) are left out of their series' polyline; a series with none still gets its legend
 * entry, marked "(no data)".
 * @param {ChartSpec} spec
 * @returns {string}
 */
export function renderLineChart(spec) {
  if (!spec || typeof spec !== 'object') throw new Error('svg chart: spec must be an object');
  if (!spec.x || !spec.y) throw new Error('svg chart: spec.x and spec.y are required');
  if (!Array.isArray(spec.series)) throw new Error('svg chart: spec.series must be an array');
  const width = spec.width ?? 900;
  const height = spec.height ?? 540;
  const xs = spec.x.scale ?? 'linear';
  const ys = spec.y.scale ?? 'linear';
  const series = spec.series.map((s, i) => {
    if (!Array.isArray(s.points)) throw new Error(`svg chart: series ${i} (${s.name}) has no points array`);
    const pts = normalisePoints(s.points).filter((p) => drawable(p, xs, ys));
    return { name: String(s.name ?? `series ${i + 1}`), pts, emphasis: !!s.emphasis, color: PALETTE[i % PALETTE.length], shape: MARKERS[i % MARKERS.length] };
  });
  const subtitle = spec.subtitle == null ? [] : Array.isArray(spec.subtitle) ? spec.subtitle : [spec.subtitle];

  const legendFont = 12;
  const longest = Math.max(0, ...series.map((s) => s.name.length + (s.pts.length ? 0 : 10)));
  const legendW = Math.min(320, Math.max(120, Math.ceil(longest * legendFont * CHAR_W) + 40));
  const top = 44 + subtitle.length * 17 + 12;
  const left = 78;
  const right = legendW + 24;
  const bottom = 62;
  const plot = { x0: left, x1: width - right, y0: top, y1: height - bottom };
  if (plot.x1 - plot.x0 < 80 || plot.y1 - plot.y0 < 60) throw new Error(`svg chart: ${width} x ${height} leaves no room for the plot`);

  const xl = axisLayout(spec.x, series.flatMap((s) => s.pts.map((p) => p.x)));
  const yl = axisLayout(spec.y, series.flatMap((s) => s.pts.map((p) => p.y)));
  const px = projector(xl, plot.x0, plot.x1);
  const py = projector(yl, plot.y1, plot.y0);

  const out = [];
  out.push('<?xml version="1.0" encoding="UTF-8" standalone="no"?>');
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}" font-size="12">`);
  out.push(`<title>${escapeXml(spec.title ?? '')}</title>`);
  if (subtitle.length) out.push(`<desc>${escapeXml(subtitle.join('; '))}</desc>`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${num(width / 2)}" y="28" text-anchor="middle" font-size="17" font-weight="bold" fill="#222222">${escapeXml(spec.title ?? '')}</text>`);
  subtitle.forEach((line, i) => {
    out.push(`<text x="${num(width / 2)}" y="${48 + i * 17}" text-anchor="middle" font-size="12" fill="#555555">${escapeXml(line)}</text>`);
  });

  // Grid and ticks.
  out.push('<g class="grid" stroke="#e3e3e3" stroke-width="1">');
  for (const t of xl.ticks) out.push(`<line x1="${num(px(t))}" y1="${num(plot.y0)}" x2="${num(px(t))}" y2="${num(plot.y1)}"/>`);
  for (const t of yl.ticks) out.push(`<line x1="${num(plot.x0)}" y1="${num(py(t))}" x2="${num(plot.x1)}" y2="${num(py(t))}"/>`);
  out.push('</g>');
  out.push(`<rect class="frame" x="${num(plot.x0)}" y="${num(plot.y0)}" width="${num(plot.x1 - plot.x0)}" height="${num(plot.y1 - plot.y0)}" fill="none" stroke="#444444" stroke-width="1"/>`);
  out.push('<g class="x-axis" fill="#333333" text-anchor="middle">');
  for (const t of xl.ticks) {
    out.push(`<line x1="${num(px(t))}" y1="${num(plot.y1)}" x2="${num(px(t))}" y2="${num(plot.y1 + 5)}" stroke="#444444"/>`);
    out.push(`<text x="${num(px(t))}" y="${num(plot.y1 + 19)}">${escapeXml(formatTick(t))}</text>`);
  }
  out.push(`<text x="${num((plot.x0 + plot.x1) / 2)}" y="${num(height - 16)}" font-size="13">${escapeXml(axisTitle(spec.x))}</text>`);
  out.push('</g>');
  out.push('<g class="y-axis" fill="#333333" text-anchor="end">');
  for (const t of yl.ticks) {
    out.push(`<line x1="${num(plot.x0 - 5)}" y1="${num(py(t))}" x2="${num(plot.x0)}" y2="${num(py(t))}" stroke="#444444"/>`);
    out.push(`<text x="${num(plot.x0 - 8)}" y="${num(py(t) + 4)}">${escapeXml(formatTick(t))}</text>`);
  }
  const yMid = (plot.y0 + plot.y1) / 2;
  out.push(`<text x="20" y="${num(yMid)}" font-size="13" text-anchor="middle" transform="rotate(-90 20 ${num(yMid)})">${escapeXml(axisTitle(spec.y))}</text>`);
  out.push('</g>');

  // Series: the emphasised one last, so it is drawn on top of the peers it is compared with.
  const order = series.map((s, i) => i).sort((a, b) => Number(series[a].emphasis) - Number(series[b].emphasis) || a - b);
  for (const i of order) {
    const s = series[i];
    if (!s.pts.length) continue;
    const pts = [...s.pts].sort((a, b) => a.x - b.x);
    out.push(`<g class="series" data-name="${escapeXml(s.name)}">`);
    out.push(`<polyline points="${pts.map((p) => `${num(px(p.x))},${num(py(p.y))}`).join(' ')}" fill="none" stroke="${s.color}" stroke-width="${s.emphasis ? 3 : 1.8}" stroke-linejoin="round"/>`);
    for (const p of pts) out.push(marker(s.shape, px(p.x), py(p.y), s.color));
    out.push('</g>');
  }

  // Legend, right of the plot, in series order.
  const lx = plot.x1 + 16;
  out.push('<g class="legend">');
  series.forEach((s, i) => {
    const y = plot.y0 + 8 + i * 20;
    out.push(`<line x1="${num(lx)}" y1="${num(y)}" x2="${num(lx + 24)}" y2="${num(y)}" stroke="${s.color}" stroke-width="${s.emphasis ? 3 : 1.8}"/>`);
    out.push(marker(s.shape, lx + 12, y, s.color));
    out.push(`<text x="${num(lx + 30)}" y="${num(y + 4)}" fill="#222222">${escapeXml(s.pts.length ? s.name : `${s.name} (no data)`)}</text>`);
  });
  out.push('</g>');
  out.push('</svg>');
  return out.join('\n') + '\n';
}
