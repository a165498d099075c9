// rerank benchmark (bench): per-query galleries as a vector engine hands them back. 100,000 queries,
// 15 candidate rows each, over a 1,000,000 x 512 unit-Gaussian gallery, k = 10, inner product.
// Peer in the same run: a plain gather-copy of the same rows (TypedArray.set per candidate), the
// floor of any method that reads the candidates. `npm run bench -- rerank [--quick] [--json path]`.
import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cachedUnitGaussian } from './lib/data.mjs';
import { machineInfo } from './lib/machine.mjs';
import { fmt, formatTable, sig } from './lib/table.mjs';

const here = dirname(fileURLToPath(import.meta.url));

function candidates(q, n, m, seed) {
  // Deterministic LCG: the same rows in every run.
  const rows = new Int32Array(q * m);
  let s = seed >>> 0;
  for (let i = 0; i < rows.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    rows[i] = s % n;
  }
  const offsets = new Int32Array(q + 1);
  for (let i = 0; i <= q; i++) offsets[i] = i * m;
  return { offsets, rows };
}

function best(fn, repeats) {
  let t = Infinity;
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    fn();
    t = Math.min(t, performance.now() - t0);
  }
  return t;
}

export async function main(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'string' },
      repeats: { type: 'string', default: '3' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log('npm run bench -- rerank [--quick] [--json path] [--repeats n]');
    return 0;
  }
  const n = values.quick ? 100_000 : 1_000_000;
  const q = values.quick ? 10_000 : 100_000;
  const d = 512;
  const m = 15;
  const k = 10;
  const repeats = Number(values.repeats);
  const vlk = createRequire(import.meta.url)('vlkernels');

  console.log(`# rerank: ${fmt(q)} queries x ${m} candidates over ${fmt(n)} x ${d}, k = ${k}, inner product`);
  const mi = machineInfo();
  console.log(`machine: ${mi.cpu}, ${mi.cores} cores; vlkernels ${vlk.info().version}, ISA ${vlk.info().isa}, ${vlk.info().threads} threads`);
  let t0 = performance.now();
  const g = cachedUnitGaussian(n, d, 12345);
  const qs = cachedUnitGaussian(q, d, 54321);
  console.log(`data: ${((performance.now() - t0) / 1000).toFixed(1)} s (${g.cached ? 'cached' : 'generated'})`);
  const cands = candidates(q, n, m, 777);

  // The floor: copy every candidate row once into a scratch block (one thread, like a plain loop).
  const scratch = new Float32Array(m * d);
  let sink = 0;
  const copy = () => {
    const rows = cands.rows;
    const gd = g.data;
    for (let i = 0; i < q; i++) {
      for (let j = 0; j < m; j++) {
        const r = rows[i * m + j];
        scratch.set(gd.subarray(r * d, r * d + d), j * d);
      }
      sink += scratch[i % (m * d)];
    }
  };
  const gallery = { data: g.data, rows: n, cols: d };
  const queries = { data: qs.data, rows: q, cols: d };
  let result;
  const rr = (threads) => () => {
    result = vlk.rerankSync(queries, gallery, cands, { k, threads });
  };
  copy();
  rr(vlk.info().threads)();
  const tCopy = best(copy, repeats);
  const tOne = best(rr(1), repeats);
  const tAll = best(rr(vlk.info().threads), repeats);
  t0 = performance.now();
  const asyncResult = await vlk.rerank(queries, gallery, cands, { k });
  const tAsync = performance.now() - t0;
  const same = asyncResult.indices.every((v, i) => v === result.indices[i]);

  const gb = (q * m * d * 4) / 1e9;
  const rows = [
    ['gather-copy of the same rows (TypedArray.set, 1 thread)', fmt(tCopy, 1), fmt(gb / (tCopy / 1000), 1), '1.00'],
    ['vlkernels rerankSync, threads: 1', fmt(tOne, 1), fmt(gb / (tOne / 1000), 1), sig(tOne / tCopy)],
    [`vlkernels rerankSync, threads: ${vlk.info().threads}`, fmt(tAll, 1), fmt(gb / (tAll / 1000), 1), sig(tAll / tCopy)],
    [`vlkernels rerank (async, one call)`, fmt(tAsync, 1), fmt(gb / (tAsync / 1000), 1), sig(tAsync / tCopy)],
  ];
  console.log(`\n${formatTable(['system', 'time ms', 'GB/s of rows', 'time / gather-copy'], rows, ['l', 'r', 'r', 'r'])}`);
  const pass1 = tOne <= 2 * tCopy;
  console.log(`\n## bars\n${pass1 ? 'PASS' : 'FAIL'}  rerank (same thread count as the copy) <= 2 x gather-copy: ${sig(tOne / tCopy)} (limit 2)`);
  console.log(`      with every thread: ${sig(tAll / tCopy)}; async equals sync: ${same}`);
  if (sink === 0.123) console.log('');

  const report = {
    date: new Date().toISOString(),
    machine: mi,
    workload: { n, q, d, candidates: m, k, metric: 'ip', quick: values.quick },
    ms: { gatherCopy: tCopy, rerankOneThread: tOne, rerankAllThreads: tAll, rerankAsync: tAsync },
    ratios: { oneThread: tOne / tCopy, allThreads: tAll / tCopy },
    asyncEqualsSync: same,
  };
  const out = values.json ?? join(here, 'results', `rerank-${report.date.replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nJSON: ${out}`);
  return pass1 && same ? 0 : 1;
}
