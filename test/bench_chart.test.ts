// Bench charts (bench/lib/svg_chart.mjs) and the search bench's sweeps: a chart from fixed data parsed back
// with a small XML reader written here (well-formedness, root, viewBox, one polyline per series with its
// point count, legend labels, coordinates finite and on the canvas), then a real `search --quick` run.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// The bench helpers are untyped ES modules; tsx loads them, tsc sees a CommonJS test importing them.
// @ts-expect-error -- ESM .mjs without declarations, run through tsx
import { escapeXml, formatTick, renderLineChart } from '../bench/lib/svg_chart.mjs';
// @ts-expect-error -- ESM .mjs without declarations, run through tsx
import { barePeers } from '../bench/search.bench.mjs';
import { info } from './helpers/lib';
import { repoRoot } from './helpers/paths';

interface XmlNode {
  name: string;
  attrs: Record<string, string>;
  children: XmlNode[];
  text: string;
}

const ENTITY: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decode(raw: string, where: string): string {
  if (/[<]/.test(raw)) throw new Error(`raw '<' in ${where}: ${raw.slice(0, 40)}`);
  return raw.replace(/&([^;&\s]*);?/g, (m, name: string) => {
    if (!m.endsWith(';')) throw new Error(`unterminated entity in ${where}: ${m}`);
    if (name in ENTITY) return ENTITY[name];
    const num = /^#(x[0-9a-fA-F]+|[0-9]+)$/.exec(name);
    if (num) return String.fromCodePoint(num[1][0] === 'x' ? parseInt(num[1].slice(1), 16) : Number(num[1]));
    throw new Error(`unknown entity &${name}; in ${where}`);
  });
}

/**
 * Minimal XML 1.0 reader for generated SVG: prolog, elements, attributes (quoted, no duplicates), text,
 * comments; throws on mismatched or unclosed tags, bad entities, stray '<' or '&', or more than one root.
 */
function parseXml(src: string): XmlNode {
  let i = 0;
  const stack: XmlNode[] = [];
  let root: XmlNode | undefined;
  const doc: XmlNode = { name: '#document', attrs: {}, children: [], text: '' };
  if (src.startsWith('<?xml')) {
    const end = src.indexOf('?>');
    if (end < 0) throw new Error('unterminated XML declaration');
    i = end + 2;
  }
  while (i < src.length) {
    const lt = src.indexOf('<', i);
    const text = src.slice(i, lt < 0 ? src.length : lt);
    const parent = stack[stack.length - 1];
    if (parent) parent.text += decode(text, `<${parent.name}> text`);
    else if (text.trim()) throw new Error(`text outside the root element: ${text.trim().slice(0, 40)}`);
    if (lt < 0) break;
    if (src.startsWith('<!--', lt)) {
      const end = src.indexOf('-->', lt);
      if (end < 0) throw new Error('unterminated comment');
      i = end + 3;
      continue;
    }
    const gt = src.indexOf('>', lt);
    if (gt < 0) throw new Error('unterminated tag');
    const tag = src.slice(lt + 1, gt);
    i = gt + 1;
    if (tag.startsWith('/')) {
      const name = tag.slice(1).trim();
      const open = stack.pop();
      if (!open || open.name !== name) throw new Error(`</${name}> closes <${open?.name ?? 'nothing'}>`);
      continue;
    }
    const selfClosing = tag.endsWith('/');
    const body = selfClosing ? tag.slice(0, -1) : tag;
    const m = /^([A-Za-z_][\w.:-]*)/.exec(body);
    if (!m) throw new Error(`bad tag <${tag.slice(0, 40)}>`);
    const node: XmlNode = { name: m[1], attrs: {}, children: [], text: '' };
    let rest = body.slice(m[1].length);
    const attrRe = /^\s+([A-Za-z_][\w.:-]*)\s*=\s*("([^"]*)"|'([^']*)')/;
    for (let a = attrRe.exec(rest); a; a = attrRe.exec(rest)) {
      if (a[1] in node.attrs) throw new Error(`duplicate attribute ${a[1]} on <${node.name}>`);
      node.attrs[a[1]] = decode(a[3] ?? a[4], `${node.name}@${a[1]}`);
      rest = rest.slice(a[0].length);
    }
    if (rest.trim()) throw new Error(`unparsed attribute text on <${node.name}>: ${rest.trim().slice(0, 40)}`);
    if (parent) parent.children.push(node);
    else if (root) throw new Error('more than one root element');
    else {
      root = node;
      doc.children.push(node);
    }
    if (!selfClosing) stack.push(node);
  }
  if (stack.length) throw new Error(`unclosed <${stack[stack.length - 1].name}>`);
  if (!root) throw new Error('no root element');
  return root;
}

function all(node: XmlNode, name: string, out: XmlNode[] = []): XmlNode[] {
  for (const c of node.children) {
    if (c.name === name) out.push(c);
    all(c, name, out);
  }
  return out;
}

function textOf(node: XmlNode): string {
  return node.text + node.children.map(textOf).join('');
}

function polylinePoints(p: XmlNode): Array<[number, number]> {
  return p.attrs.points.trim().split(/\s+/).map((pair) => {
    const [x, y] = pair.split(',').map(Number);
    return [x, y];
  });
}

/** Checks the document-level contract and returns the parsed root with its canvas size. */
function checkSvg(svg: string): { root: XmlNode; w: number; h: number } {
  assert.ok(svg.startsWith('<?xml version="1.0"'), 'XML declaration first');
  assert.not.match(svg, /NaN|Infinity|undefined/, 'no NaN, Infinity or undefined anywhere');
  const root = parseXml(svg);
  assert.is(root.name, 'svg');
  assert.is(root.attrs.xmlns, 'http://www.w3.org/2000/svg');
  assert.is(root.attrs.version, '1.1');
  const vb = root.attrs.viewBox.split(/\s+/).map(Number);
  assert.equal(vb.slice(0, 2), [0, 0]);
  assert.is(String(vb[2]), root.attrs.width);
  assert.is(String(vb[3]), root.attrs.height);
  for (const p of all(root, 'polyline')) {
    for (const [x, y] of polylinePoints(p)) {
      assert.ok(Number.isFinite(x) && Number.isFinite(y), `finite point ${x},${y}`);
      assert.ok(x >= 0 && x <= vb[2] && y >= 0 && y <= vb[3], `point ${x},${y} on the ${vb[2]} x ${vb[3]} canvas`);
    }
  }
  return { root, w: vb[2], h: vb[3] };
}

const chart = suite('svg chart');

const FIXED = {
  title: 'Search <time> & "size"',
  subtitle: ['CPU X, 2 cores; ISA avx512', 'D = 512'],
  x: { label: 'gallery size N', scale: 'log' as const, ticks: [10, 100, 1000, 10000] },
  y: { label: 'time', unit: 'ms', scale: 'log' as const },
  series: [
    { name: 'vlkernels', emphasis: true, points: [[10, 0.5], [100, 2], [1000, 15], [10000, 140]] },
    // One NaN and one zero (not drawable on a log axis): 3 of 5 points remain.
    { name: "numpy <matmul> & 'argpartition'", points: [[10, 1], [100, NaN], [1000, 40], [10000, 0], [3000, 90]] },
    { name: 'torch', points: [{ x: 10, y: 0.9 }, { x: 1000, y: 30 }] },
  ],
};

chart('fixed data: well-formed SVG, one polyline per series with its drawable points, legend labels', () => {
  const svg = renderLineChart(FIXED);
  const { root } = checkSvg(svg);
  const lines = all(root, 'polyline');
  assert.is(lines.length, 3);
  const byName = new Map(all(root, 'g').filter((g) => g.attrs.class === 'series').map((g) => [g.attrs['data-name'], g]));
  assert.equal([...byName.keys()].sort(), FIXED.series.map((s) => s.name).sort());
  const count = (name: string) => polylinePoints(all(byName.get(name)!, 'polyline')[0]).length;
  assert.is(count('vlkernels'), 4);
  assert.is(count(FIXED.series[1].name), 3);
  assert.is(count('torch'), 2);
  const legend = all(root, 'g').find((g) => g.attrs.class === 'legend')!;
  assert.equal(all(legend, 'text').map(textOf), FIXED.series.map((s) => s.name));
  assert.is(textOf(all(root, 'title')[0]), FIXED.title);
  const texts = all(root, 'text').map(textOf);
  assert.ok(texts.includes('time (ms)'), 'y axis title with its unit');
  assert.ok(texts.includes('gallery size N'));
  for (const tick of ['10', '100', '1000', '10k']) assert.ok(texts.includes(tick), `x tick ${tick}`);
  assert.ok(texts.includes(FIXED.subtitle[0]) && texts.includes(FIXED.subtitle[1]), 'both subtitle lines');
});

chart('fixed data: projection follows the scales (log x evenly spaced by decade, larger y higher up)', () => {
  const { root } = checkSvg(renderLineChart(FIXED));
  const g = all(root, 'g').find((n) => n.attrs['data-name'] === 'vlkernels')!;
  const pts = polylinePoints(all(g, 'polyline')[0]);
  const dx = pts.slice(1).map((p, i) => p[0] - pts[i][0]);
  for (const d of dx) assert.ok(Math.abs(d - dx[0]) < 0.05, `decade steps ${dx.join(', ')} equal`);
  // y = 0.5, 2, 15, 140: log10 steps 0.602, 0.875, 0.970, so pixel steps are in that ratio (SVG y points down).
  const dy = pts.slice(1).map((p, i) => pts[i][1] - p[1]);
  assert.ok(dy.every((d) => d > 0), 'rising values are drawn higher');
  const ratio = (a: number, b: number) => Math.log10(b / a);
  const want = [ratio(0.5, 2), ratio(2, 15), ratio(15, 140)];
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(dy[i] / dy[0] - want[i] / want[0]) < 0.01, `log y spacing ${dy.join(', ')}`);

  const lin = renderLineChart({
    title: 'linear',
    x: { label: 'x' },
    y: { label: 'y', zero: true },
    series: [{ name: 'a', points: [[0, 3], [1, 7], [2, 1], [3, 7], [4, 5]] }],
  });
  const lp = polylinePoints(all(checkSvg(lin).root, 'polyline')[0]);
  const ldx = lp.slice(1).map((p, i) => p[0] - lp[i][0]);
  for (const d of ldx) assert.ok(Math.abs(d - ldx[0]) < 0.05, `linear x steps ${ldx.join(', ')}`);
  assert.is(lp[1][1], lp[3][1], 'equal values, equal heights');
  assert.ok(lp[2][1] > lp[0][1] && lp[0][1] > lp[4][1], 'y order 1 < 3 < 5 drawn bottom to top');
});

chart('the XML reader used here rejects malformed documents', () => {
  assert.throws(() => parseXml('<svg><g></svg>'), /<\/svg> closes <g>/);
  assert.throws(() => parseXml('<svg>a & b</svg>'), /unterminated entity/);
  assert.throws(() => parseXml('<svg/><svg/>'), /more than one root/);
  assert.throws(() => parseXml('<svg a="1" a="2"/>'), /duplicate attribute a/);
  assert.throws(() => parseXml('<svg><g>'), /unclosed <g>/);
  assert.is(textOf(parseXml('<svg><text>a &lt;&amp;&gt; b</text></svg>')), 'a <&> b');
});

chart('deterministic output; bad specs rejected; text escaped', () => {
  assert.is(renderLineChart(FIXED), renderLineChart(structuredClone(FIXED)));
  assert.throws(() => renderLineChart({ ...FIXED, x: { label: 'x', scale: 'ln' as any } }), /scale must be 'linear' or 'log', got ln/);
  assert.throws(() => renderLineChart({ ...FIXED, series: [{ name: 'a' } as any] }), /series 0 \(a\) has no points array/);
  assert.throws(() => renderLineChart({ ...FIXED, width: 100 }), /leaves no room/);
  assert.is(escapeXml(`a<b>&"c'\u0001`), 'a&lt;b&gt;&amp;&quot;c&apos;');
  assert.equal([12500, 2e6, 0.25, 1000, 0].map(formatTick), ['12.5k', '2M', '0.25', '1000', '0']);
  // A series with nothing drawable keeps its legend entry and draws no line.
  const { root } = checkSvg(renderLineChart({ ...FIXED, series: [...FIXED.series, { name: 'empty', points: [[1, NaN]] }] }));
  assert.is(all(root, 'polyline').length, 3);
  assert.ok(all(root, 'text').map(textOf).includes('empty (no data)'));
});

chart.run();

const bench = suite('search bench sweeps');

bench('search --quick --chart writes the JSON and one SVG per sweep (vlkernels only)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vlk-bench-chart-'));
  try {
    const svgPath = join(dir, 'x.svg');
    const jsonPath = join(dir, 'x.json');
    const r = spawnSync(process.execPath, ['bench/run.mjs', 'search', '--quick', '--chart', svgPath, '--json', jsonPath], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.is(r.status, 0, `bench exit status (stderr: ${r.stderr.slice(-400)})`);
    const report = JSON.parse(readFileSync(jsonPath, 'utf8'));
    const inf = info();
    assert.is(report.machine.isa, inf.isa);
    assert.is(report.machine.threads, inf.threads);
    assert.ok(typeof report.machine.cpu === 'string' && report.machine.cpu.length > 0);
    assert.equal(Object.keys(report.peers), [], 'no peers without --peers');
    assert.equal(report.sweeps.map((s: any) => s.axis), ['n', 'q', 'k']);
    const files = { n: svgPath, q: join(dir, 'x-batch.svg'), k: join(dir, 'x-k.svg') } as Record<string, string>;
    for (const sweep of report.sweeps) {
      assert.is(sweep.chart, files[sweep.axis]);
      assert.ok(existsSync(sweep.chart), `${sweep.chart} written`);
      assert.is(sweep.series.length, 1);
      const s = sweep.series[0];
      assert.is(s.id, 'vlkernels');
      assert.equal(s.points.map((p: any) => p.x), sweep.values);
      for (const p of s.points) {
        assert.is(p.timesMs.length, sweep.repeats);
        const sorted = [...p.timesMs].sort((a: number, b: number) => a - b);
        assert.ok(p.medianMs > 0 && p.medianMs === sorted[(sorted.length - 1) / 2], 'median of an odd number of runs');
      }
      const { root } = checkSvg(readFileSync(sweep.chart, 'utf8'));
      const lines = all(root, 'polyline');
      assert.is(lines.length, 1);
      assert.is(polylinePoints(lines[0]).length, sweep.values.length);
      const texts = all(root, 'text').map(textOf);
      assert.ok(texts.includes(s.system), 'legend names the system');
      assert.ok(texts.some((t) => t.includes(report.machine.cpu) && t.includes(`ISA ${inf.isa}, ${inf.threads} threads`)), 'machine in the subtitle');
    }
    // The gallery-size sweep stops at the quick W1 size; time grows with N end to end.
    const n = report.sweeps[0];
    assert.is(n.values[n.values.length - 1], report.workload.n);
    assert.ok(n.series[0].points[n.values.length - 1].medianMs > n.series[0].points[0].medianMs, 'largest N slower than smallest');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

bench('bare --peers means every peer; a list after it is kept', () => {
  assert.equal(barePeers(['--peers']), ['--peers=all']);
  assert.equal(barePeers(['--peers', '--chart', 'x.svg']), ['--peers=all', '--chart', 'x.svg']);
  assert.equal(barePeers(['--quick', '--peers', 'numpy,faiss']), ['--quick', '--peers', 'numpy,faiss']);
  assert.equal(barePeers(['--chart', 'x.svg']), ['--chart', 'x.svg']);
});

bench('bad options exit 2 naming the option', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, ['bench/run.mjs', 'search', ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 30_000 });
  const peers = run('--peers', 'numpy,nope', '--sweep', 'none');
  assert.is(peers.status, 2);
  assert.match(peers.stderr, /--peers: unknown peer\(s\) nope/);
  const sweep = run('--sweep', 'n,x');
  assert.is(sweep.status, 2);
  assert.match(sweep.stderr, /--sweep: unknown sweep\(s\) x/);
  const k = run('--quick', '--sweep-k', '1,50000');
  assert.is(k.status, 2);
  assert.match(k.stderr, /--sweep-k values must be at most N = 20000/);
});

bench.run();
