// Global-local scoring and query-time re-ranking benchmark (bench, issue 7 / seed 004), vlkernels
// against PyTorch CPU (bench/peers/torch_global_local.py, torch.set_num_threads(2)) in the same run,
// on the same data (unit-Gaussian .npy files shared with the peer):
//   expand: expandQueries on queries and gallery 4096 x 512, m = 16 (top-m search + softmax-weighted
//           expansion + re-search top-10 in one native job) vs matmul + topk + softmax + matmul + topk;
//   scan:   scanSimilarity 't2i-lse' of 1000 queries x 100 candidates from a bank of 1000 region
//           sets (36 regions x 12 words, D = 512), top-10 per query, vs chunked batched einsum.
// Prints median ms, the ratio, and whether both computed the same numbers.
// `node bench/global_local.bench.mjs [--quick] [--repeats n] [--json path]` or `npm run bench -- global_local`.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { cachedUnitGaussian } from './lib/data.mjs';
import { machineInfo } from './lib/machine.mjs';
import { fmt, formatTable, sig } from './lib/table.mjs';
import { timeWarm, upperMedian } from './lib/peer.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const median = upperMedian;

function peer(args) {
  const py = spawnSync(process.env.PYTHON ?? 'python3', [join(here, 'peers', 'torch_global_local.py'), ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  try {
    return JSON.parse(py.stdout.trim().split('\n').pop());
  } catch {
    console.log(`torch peer failed: ${py.stderr.slice(-800)}`);
    return null;
  }
}

export async function main(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      repeats: { type: 'string', default: '5' },
      threads: { type: 'string', default: '2' },
      json: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log('node bench/global_local.bench.mjs [--quick] [--repeats n] [--threads n] [--json path]');
    return 0;
  }
  const repeats = Number(values.repeats);
  const threads = Number(values.threads);
  const peerRepeats = String(Math.max(3, Math.min(repeats, 5)));
  const vlk = createRequire(import.meta.url)('vlkernels');
  const mi = machineInfo();
  console.log(`machine: ${mi.cpu}, ${mi.cores} cores; vlkernels ${vlk.info().version}, ISA ${vlk.info().isa}; ${threads} threads on both sides`);
  console.log('(2 shared cores: timings are noisy; medians of the repeats)');
  const results = {};
  const rows = [];

  // --- query expansion -------------------------------------------------------------------------
  {
    const n = values.quick ? 1024 : 4096, d = 512, m = 16, k = 10, T = 0.1;
    const qs = cachedUnitGaussian(n, d, 7101);
    const gs = cachedUnitGaussian(n, d, 7102);
    const Q = { data: qs.data, rows: n, cols: d };
    const G = { data: gs.data, rows: n, cols: d };
    const { out, times } = await timeWarm(() => vlk.expandQueries(Q, G, { m, k, temperature: T, metric: 'cosine', threads }), repeats, vlk);
    const p = peer(['expand', '--queries', qs.path, '--gallery', gs.path, '--m', String(m), '--k', String(k), '--temperature', String(T), '--threads', String(threads), '--repeats', peerRepeats]);
    const tV = median(times);
    let tP = null, agree = null, maxDiff = null;
    if (p && !p.skipped) {
      tP = median(p.timesMs);
      let same = 0, total = 0;
      p.check.indices.forEach((ids, i) => ids.forEach((id, j) => { total++; if (id === out.indices[i * k + j]) same++; }));
      maxDiff = 0;
      p.check.expanded.forEach((v, i) => v.forEach((x, j) => { maxDiff = Math.max(maxDiff, Math.abs(x - out.expanded[i * d + j])); }));
      agree = same / total;
    }
    results.expand = { n, d, m, k, vlkMs: times, peer: p, ratio: tP ? tP / tV : null, agree, maxDiff };
    rows.push([`expandQueries ${n} x ${d}, m ${m}, re-search k ${k}`, fmt(tV, 1), tP === null ? '-' : fmt(tP, 1), tP === null ? '-' : sig(tP / tV),
      agree === null ? '-' : `ids ${(100 * agree).toFixed(1)}%, |dq'| ${maxDiff.toExponential(1)}`]);
  }

  // --- SCAN scoring ----------------------------------------------------------------------------
  {
    const q = values.quick ? 200 : 1000, c = 100, l = 12, r = 36, d = 512, nBank = 1000, k = 10;
    const ws = cachedUnitGaussian(q * l, d, 7201);
    const rs = cachedUnitGaussian(nBank * r, d, 7202);
    const offsets = new Int32Array(q + 1);
    const rowsC = new Int32Array(q * c);
    for (let i = 0; i < q; i++) {
      offsets[i + 1] = (i + 1) * c;
      for (let j = 0; j < c; j++) rowsC[i * c + j] = (i * 7919 + j * 13) % nBank;
    }
    const inputs = { words: { data: ws.data, dims: [q, l, d] }, regions: { data: rs.data, dims: [nBank, r, d] }, candidates: { offsets, rows: rowsC } };
    const { out, times } = await timeWarm(() => vlk.scanSimilarity(inputs, { mode: 't2i-lse', k, threads }), repeats, vlk);
    const p = peer(['scan', '--words', ws.path, '--regions', rs.path, '--q', String(q), '--l', String(l), '--r', String(r), '--c', String(c), '--k', String(k), '--threads', String(threads), '--repeats', peerRepeats]);
    const tV = median(times);
    let tP = null, agree = null, maxDiff = null;
    if (p && !p.skipped) {
      tP = median(p.timesMs);
      maxDiff = 0;
      p.check.scores.forEach((x, i) => { maxDiff = Math.max(maxDiff, Math.abs(x - out.scores[i])); });
      let same = 0, total = 0;
      p.check.positions.forEach((ids, i) => ids.forEach((id, j) => { total++; if (id === out.positions[i * k + j]) same++; }));
      agree = same / total;
    }
    results.scan = { q, c, l, r, d, nBank, k, vlkMs: times, peer: p, ratio: tP ? tP / tV : null, agree, maxDiff };
    rows.push([`scanSimilarity t2i-lse ${q} q x ${c} cand (${r} x ${l}, D ${d})`, fmt(tV, 1), tP === null ? '-' : fmt(tP, 1), tP === null ? '-' : sig(tP / tV),
      agree === null ? '-' : `top-${k} ${(100 * agree).toFixed(1)}%, |ds| ${maxDiff.toExponential(1)}`]);
  }

  console.log(`\n${formatTable(['workload', 'vlkernels ms', 'PyTorch ms', 'PyTorch / vlkernels', 'agreement'], rows, ['l', 'r', 'r', 'r', 'l'])}`);
  let pass = true;
  console.log('\n## bars');
  for (const [name, rr] of Object.entries(results)) {
    const ok = rr.ratio !== null && rr.ratio >= 1.5 && rr.agree !== null && rr.agree >= 0.99;
    pass = pass && ok;
    console.log(`${rr.ratio === null ? 'SKIP' : ok ? 'PASS' : 'FAIL'}  ${name}: >= 1.5x faster than PyTorch CPU and the same results: ${rr.ratio === null ? 'no peer' : `${sig(rr.ratio)}x`}`);
  }
  const out = values.json ?? join(here, 'results', `global_local-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), machine: mi, threads, results }, null, 2)}\n`);
  console.log(`\nJSON: ${out}`);
  return pass ? 0 : 1;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
