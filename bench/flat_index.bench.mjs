// FlatIndex storage benchmark (bench): W1 (100,000 x 512 unit-Gaussian gallery, 1,000 queries,
// k = 10, inner product) on a FlatIndex with storage f32, bf16 and i8, exact (re-scored: must
// return the f32 ids) and approximate (codes only: recall@10 against f32), in the same run, runs
// interleaved so drift hits every variant alike. Reports the median time (and the best), the ratio
// to f32, rows re-scored per query, and memory per vector.
// `npm run bench -- flat_index [--quick] [--repeats n] [--metric ip|cosine|l2] [--json path]`.
import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cachedUnitGaussian } from './lib/data.mjs';
import { machineInfo } from './lib/machine.mjs';
import { fmt, formatTable, sig } from './lib/table.mjs';

const here = dirname(fileURLToPath(import.meta.url));

const VARIANTS = [
  { name: 'f32', storage: 'f32', approximate: false },
  { name: 'bf16 exact', storage: 'bf16', approximate: false, bar: 0.6 },
  { name: 'i8 exact', storage: 'i8', approximate: false, bar: 0.45 },
  { name: 'bf16 approximate', storage: 'bf16', approximate: true },
  { name: 'i8 approximate', storage: 'i8', approximate: true },
];

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export async function main(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      repeats: { type: 'string', default: '7' },
      metric: { type: 'string', default: 'ip' },
      json: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log('npm run bench -- flat_index [--quick] [--repeats n] [--metric ip|cosine|l2] [--json path]');
    return 0;
  }
  const n = values.quick ? 20_000 : 100_000;
  const q = values.quick ? 200 : 1000;
  const d = 512;
  const k = 10;
  const repeats = Number(values.repeats);
  const metric = values.metric;
  const vlk = createRequire(import.meta.url)('vlkernels');
  const mi = machineInfo();
  console.log(`# flat_index storage: ${fmt(n)} x ${d} gallery, ${fmt(q)} queries, k = ${k}, ${metric}`);
  console.log(`machine: ${mi.cpu}, ${mi.cores} cores; vlkernels ${vlk.info().version}, ISA ${vlk.info().isa}, ${vlk.info().threads} threads`);
  const g = cachedUnitGaussian(n, d, 12345);
  const qs = cachedUnitGaussian(q, d, 777);
  const queries = { data: qs.data, rows: q, cols: d };

  const indexes = VARIANTS.map((v) => {
    const index = new vlk.FlatIndex({ dim: d, metric, storage: v.storage, approximate: v.approximate });
    const t0 = performance.now();
    index.add({ data: g.data, rows: n, cols: d });
    return { ...v, index, addMs: performance.now() - t0, times: [], result: null };
  });
  for (const x of indexes) x.result = await x.index.search(queries, { k }); // warm-up
  for (let r = 0; r < repeats; r++) {
    for (const x of indexes) {
      const t0 = performance.now();
      x.result = await x.index.search(queries, { k });
      x.times.push(performance.now() - t0);
    }
  }
  const ref = indexes[0];
  const rows = [];
  const report = [];
  let pass = true;
  const barLines = [];
  for (const x of indexes) {
    const t = median(x.times);
    const ratio = t / median(ref.times);
    const same = x.result.ids.every((v, i) => v === ref.result.ids[i]);
    const scoresSame = x.result.scores.every((v, i) => Object.is(v, ref.result.scores[i]));
    let hit = 0;
    for (let i = 0; i < q; i++) {
      const truth = new Set(ref.result.ids.subarray(i * k, i * k + k));
      for (let j = 0; j < k; j++) if (truth.has(x.result.ids[i * k + j])) hit++;
    }
    const recall = hit / (q * k);
    const rescored = x.result.rescored.reduce((s, v) => s + v, 0) / q;
    const mem = x.index.memoryUsage();
    rows.push([
      x.name,
      fmt(t, 1),
      fmt(Math.min(...x.times), 1),
      x === ref ? '1.00' : sig(ratio),
      x.approximate ? '-' : same && scoresSame ? 'yes' : 'NO',
      fmt(recall, 4),
      fmt(rescored, 1),
      fmt(mem.bytesPerVector, 0),
      fmt(x.addMs, 0),
    ]);
    report.push({
      variant: x.name,
      storage: x.storage,
      approximate: x.approximate,
      medianMs: t,
      bestMs: Math.min(...x.times),
      timesMs: x.times,
      ratioToF32: ratio,
      identicalToF32: same && scoresSame,
      recallAt10: recall,
      rescoredPerQuery: rescored,
      bytesPerVector: mem.bytesPerVector,
      addMs: x.addMs,
    });
    if (x.bar !== undefined) {
      const ok = ratio <= x.bar && same && scoresSame;
      pass = pass && ok;
      barLines.push(`${ok ? 'PASS' : 'FAIL'}  ${x.name} <= ${x.bar} x f32 time with identical ids and scores: ${sig(ratio)}${same && scoresSame ? '' : ' (results differ)'}`);
    }
    x.index.close();
  }
  console.log(
    `\n${formatTable(
      ['storage', 'median ms', 'best ms', 'time / f32', 'equals f32', 'recall@10', 're-scored / query', 'bytes / vector', 'add ms'],
      rows,
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    )}`,
  );
  console.log(`\n## bars (median of ${repeats}, same run)\n${barLines.join('\n')}`);
  const out =
    values.json ?? join(here, 'results', `flat_index-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(
    out,
    `${JSON.stringify({ date: new Date().toISOString(), machine: mi, isa: vlk.info().isa, workload: { n, q, d, k, metric, repeats, quick: values.quick }, results: report }, null, 2)}\n`,
  );
  console.log(`\nJSON: ${out}`);
  return pass ? 0 : 1;
}
