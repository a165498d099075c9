// composedSearch benchmark (bench): W1 gallery (100,000 x 512, FlatIndex, cosine), 1,000
// (reference, modification) pairs, k = 10, each query excluding its reference; composedSearch with
// the 'sum' baseline and with a paper-sized combiner (P = 4D = 2048, H = 8D = 4096; random
// weights) against plain search of already-composed queries, in the same run.
// `npm run bench -- compose [--quick] [--repeats n] [--json path]`.
import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cachedUnitGaussian } from './lib/data.mjs';
import { machineInfo } from './lib/machine.mjs';
import { fmt, formatTable, sig } from './lib/table.mjs';
import { upperMedian } from './lib/peer.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const median = upperMedian;

function randomWeights(d, p, h, seed) {
  let s = seed >>> 0;
  const t = (n, scale) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      a[i] = ((s / 4294967296) * 2 - 1) * scale;
    }
    return a;
  };
  return {
    'text_projection_layer.weight': t(p * d, 1 / Math.sqrt(d)),
    'text_projection_layer.bias': t(p, 0.01),
    'image_projection_layer.weight': t(p * d, 1 / Math.sqrt(d)),
    'image_projection_layer.bias': t(p, 0.01),
    'combiner_layer.weight': t(h * 2 * p, 1 / Math.sqrt(2 * p)),
    'combiner_layer.bias': t(h, 0.01),
    'dynamic_scalar.0.weight': t(h * 2 * p, 1 / Math.sqrt(2 * p)),
    'dynamic_scalar.0.bias': t(h, 0.01),
    'dynamic_scalar.3.weight': t(h, 1 / Math.sqrt(h)),
    'dynamic_scalar.3.bias': t(1, 0.01),
    'output_layer.weight': t(d * h, 1 / Math.sqrt(h)),
    'output_layer.bias': t(d, 0.01),
  };
}

export async function main(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      repeats: { type: 'string', default: '5' },
      json: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log('npm run bench -- compose [--quick] [--repeats n] [--json path]');
    return 0;
  }
  const n = values.quick ? 20_000 : 100_000;
  const q = values.quick ? 200 : 1000;
  const d = 512;
  const k = 10;
  const repeats = Number(values.repeats);
  const vlk = createRequire(import.meta.url)('vlkernels');
  const mi = machineInfo();
  console.log(`# composedSearch: ${fmt(n)} x ${d} gallery (cosine), ${fmt(q)} pairs, k = ${k}, reference excluded`);
  console.log(`machine: ${mi.cpu}, ${mi.cores} cores; vlkernels ${vlk.info().version}, ISA ${vlk.info().isa}, ${vlk.info().threads} threads`);
  const g = cachedUnitGaussian(n, d, 12345);
  const index = new vlk.FlatIndex({ dim: d, metric: 'cosine' });
  index.add({ data: g.data, rows: n, cols: d });
  const refIds = Float64Array.from({ length: q }, (_, i) => (i * 97) % n);
  const im = new Float32Array(q * d);
  refIds.forEach((r, i) => im.set(g.data.subarray(r * d, r * d + d), i * d));
  const tx = cachedUnitGaussian(q, d, 999).data;
  const weights = randomWeights(d, 4 * d, 8 * d, 7);
  const pre = await vlk.compose(im, tx, { mode: 'sum', dim: d });
  const variants = [
    ['plain FlatIndex search (queries composed beforehand)', () => index.search({ data: pre, rows: q, cols: d }, { k, filter: { exclude: refIds } })],
    ["composedSearch, mode 'sum'", () => vlk.composedSearch(index, { data: im, rows: q, cols: d }, { data: tx, rows: q, cols: d }, { k, mode: 'sum', excludeIds: refIds })],
    ['composedSearch, combiner (P = 2048, H = 4096)', () => vlk.composedSearch(index, { data: im, rows: q, cols: d }, { data: tx, rows: q, cols: d }, { k, weights, excludeIds: refIds })],
    ['compose alone, combiner', () => vlk.compose({ data: im, rows: q, cols: d }, { data: tx, rows: q, cols: d }, { weights })],
  ];
  const times = variants.map(() => []);
  for (const [, fn] of variants) await fn();
  for (let r = 0; r < repeats; r++) {
    for (let v = 0; v < variants.length; v++) {
      const t0 = performance.now();
      await variants[v][1]();
      times[v].push(performance.now() - t0);
    }
  }
  const base = median(times[0]);
  const rows = variants.map(([name], v) => [name, fmt(median(times[v]), 1), sig(median(times[v]) / base)]);
  console.log(`\n${formatTable(['system', 'median ms', 'time / plain search'], rows, ['l', 'r', 'r'])}`);
  const sumRatio = median(times[1]) / base;
  const combRatio = median(times[2]) / base;
  console.log(`\n## bars\n${sumRatio <= 1.2 ? 'PASS' : 'FAIL'}  composedSearch ('sum') <= 1.2 x plain search: ${sig(sumRatio)}`);
  console.log(`${combRatio <= 1.2 ? 'PASS' : 'FAIL'}  composedSearch (combiner, paper size) <= 1.2 x plain search: ${sig(combRatio)}`);
  const out = values.json ?? join(here, 'results', `compose-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), machine: mi, workload: { n, q, d, k }, variants: variants.map(([name], v) => ({ name, timesMs: times[v] })) }, null, 2)}\n`);
  console.log(`\nJSON: ${out}`);
  index.close();
  return sumRatio <= 1.2 ? 0 : 1;
}
