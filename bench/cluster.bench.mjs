// Clustering benchmark (bench), seed 004:
//  1. AAHR's prototype step at Flickr30K size: B = 256 samples, P = 384 prototypes, scores
//     O = V C^T of unit-Gaussian V (B x 128) and C (P x 128): sinkhorn (eps 0.1, 3 iterations),
//     swavLoss forward + backward (tau 0.1), and the whole step (2 x sinkhorn + loss), vlkernels
//     (Sync forms) against PyTorch CPU (bench/peers/torch_cluster.py), same scores.
//  2. kmeans on 100,000 x 128 unit-Gaussian rows, k = 256, 10 iterations, against faiss.Kmeans
//     (niter 10, all rows). Inits differ (k-means++ vs faiss's random rows): compared are the time
//     per iteration, the total, and the final inertia (objective of the returned centroids).
// `node bench/cluster.bench.mjs [--quick] [--repeats n] [--json path]` or `npm run bench -- cluster`.
import { spawnSync } from 'node:child_process';
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

function peer(args) {
  const py = spawnSync(process.env.PYTHON ?? 'python3', [join(here, 'peers', 'torch_cluster.py'), ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  try {
    return JSON.parse(py.stdout.trim().split('\n').pop());
  } catch {
    console.log(`peer failed: ${py.stderr.slice(-800)}`);
    return null;
  }
}

// O = V C^T in float64, rounded to fp32 (the peer computes it the same way from the same files).
function scores(v, c, b, p, d) {
  const o = new Float32Array(b * p);
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < p; j++) {
      let s = 0;
      for (let e = 0; e < d; e++) s += v[i * d + e] * c[j * d + e];
      o[i * p + j] = s;
    }
  }
  return o;
}

function timeInner(fn, repeats, inner) {
  fn();
  const times = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    for (let i = 0; i < inner; i++) fn();
    times.push((performance.now() - t0) / inner);
  }
  return times;
}

function maxRelDiff(a, b, floor) {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(Math.abs(b[i]), floor));
  return worst;
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
    console.log('node bench/cluster.bench.mjs [--quick] [--repeats n] [--json path]');
    return 0;
  }
  const repeats = Number(values.repeats);
  const vlk = createRequire(import.meta.url)('vlkernels');
  const mi = machineInfo();
  const info = vlk.info();
  console.log(`machine: ${mi.cpu}, ${mi.cores} cores; vlkernels ${info.version}, ISA ${info.isa}, ${info.threads} threads`);
  console.log('(a shared machine: other processes take CPU meanwhile, so times are noisy)');

  // --- 1. Sinkhorn + SwAV loss ---
  const [b, p, d, eps, iters, tau] = [256, 384, 128, 0.1, 3, 0.1];
  const inner = values.quick ? 10 : 50;
  const V = cachedUnitGaussian(b, d, 5101);
  const T = cachedUnitGaussian(b, d, 5102);
  const C = cachedUnitGaussian(p, d, 5103);
  const ov = { data: scores(V.data, C.data, b, p, d), rows: b, cols: p };
  const ot = { data: scores(T.data, C.data, b, p, d), rows: b, cols: p };
  console.log(`\n# sinkhorn / swavLoss: B = ${b}, P = ${p}, eps = ${eps}, ${iters} iterations, tau = ${tau}`);
  const skOpts = { epsilon: eps, iterations: iters };
  const qv = vlk.sinkhornSync(ov, skOpts);
  const qt = vlk.sinkhornSync(ot, skOpts);
  const tSk = timeInner(() => vlk.sinkhornSync(ov, skOpts), repeats, inner);
  const tLoss = timeInner(() => vlk.swavLossSync(ov, ot, qv, qt, { temperature: tau }), repeats, inner);
  const tStep = timeInner(() => {
    const cv = vlk.sinkhornSync(ov, skOpts);
    const ct = vlk.sinkhornSync(ot, skOpts);
    vlk.swavLossSync(ov, ot, cv, ct, { temperature: tau });
  }, repeats, inner);
  const loss = vlk.swavLossSync(ov, ot, qv, qt, { temperature: tau });
  const sw = peer(['swav', '--v', V.path, '--t', T.path, '--c', C.path, '--b', String(b), '--eps', String(eps), '--iters', String(iters),
    '--tau', String(tau), '--inner', String(inner), '--repeats', String(repeats)]);
  const rows1 = [];
  const ratios = {};
  const add = (name, mine, theirs) => {
    const a = median(mine);
    const t = theirs ? median(theirs) : null;
    ratios[name] = t === null ? null : t / a;
    rows1.push([name, fmt(a, 3), t === null ? '-' : fmt(t, 3), t === null ? '-' : sig(t / a)]);
  };
  const ok = sw && !sw.skipped;
  add('sinkhorn (one B x P matrix)', tSk, ok ? sw.sinkhornMs : null);
  add('swavLoss forward + backward', tLoss, ok ? sw.lossMs : null);
  add('step: 2 x sinkhorn + swavLoss', tStep, ok ? sw.stepMs : null);
  console.log(`\n${formatTable(['operation', 'vlkernels ms', `torch ms (${ok ? sw.threads : '-'} thr)`, 'torch / vlkernels'], rows1, ['l', 'r', 'r', 'r'])}`);
  let agreeSwav = null;
  if (ok) {
    const dCodes = maxRelDiff(qv, sw.codesV, 1e-6);
    const dLoss = Math.abs(loss.loss - sw.loss) / Math.abs(sw.loss);
    const dGrad = maxRelDiff(loss.grads.scoresV, sw.gradV, 1e-6);
    agreeSwav = { codes: dCodes, loss: dLoss, gradV: dGrad };
    console.log(`agreement with torch (fp32): codes max rel diff ${dCodes.toExponential(2)}, loss ${dLoss.toExponential(2)}, dOv ${dGrad.toExponential(2)}`);
  } else if (sw?.skipped) {
    console.log(`torch: skipped (${sw.skipped})`);
  }

  // --- 2. k-means ---
  const [n, kd, k, niter] = values.quick ? [20000, 128, 64, 10] : [100000, 128, 256, 10];
  console.log(`\n# kmeans: ${fmt(n)} x ${kd} unit-Gaussian rows, k = ${k}, ${niter} iterations, l2`);
  const X = cachedUnitGaussian(n, kd, 5200);
  const xs = { data: X.data, rows: n, cols: kd };
  const kmRepeats = Math.max(1, Math.min(repeats, 3));
  const seedTimes = [];
  const totalTimes = [];
  let km = null;
  for (let r = 0; r < kmRepeats; r++) {
    let t0 = performance.now();
    await vlk.kmeans(xs, k, { iterations: 0, seed: r });
    seedTimes.push(performance.now() - t0);
    t0 = performance.now();
    km = await vlk.kmeans(xs, k, { iterations: niter, seed: r });
    totalTimes.push(performance.now() - t0);
  }
  const fk = peer(['kmeans', '--data', X.path, '--k', String(k), '--niter', String(niter), '--repeats', String(kmRepeats)]);
  const tSeed = median(seedTimes);
  const tTotal = median(totalTimes);
  const tIter = (tTotal - tSeed) / km.iterations;
  const rows2 = [[`vlkernels kmeans (k-means++, ${info.threads} threads)`, fmt(tTotal, 0), fmt(tSeed, 0), fmt(tIter, 1), fmt(km.inertia, 1), km.iterations]];
  let kmRatio = null;
  if (fk && !fk.skipped) {
    const fTotal = median(fk.runs.map((x) => x.totalMs));
    const fIter = median(fk.runs.map((x) => x.iterMs));
    const fInertia = median(fk.runs.map((x) => x.inertia));
    kmRatio = { total: fTotal / tTotal, perIteration: fIter / tIter, inertia: km.inertia / fInertia };
    rows2.push([fk.system, fmt(fTotal, 0), '-', fmt(fIter, 1), fmt(fInertia, 1), niter]);
    console.log(`\n${formatTable(['system', 'total ms', 'seeding ms', 'ms / iteration', 'final inertia', 'iterations'], rows2, ['l', 'r', 'r', 'r', 'r', 'r'])}`);
    console.log(`faiss / vlkernels: total ${sig(kmRatio.total)}x, per iteration ${sig(kmRatio.perIteration)}x; inertia vlkernels / faiss = ${kmRatio.inertia.toFixed(4)}`);
  } else {
    console.log(`\n${formatTable(['system', 'total ms', 'seeding ms', 'ms / iteration', 'final inertia', 'iterations'], rows2, ['l', 'r', 'r', 'r', 'r', 'r'])}`);
    if (fk?.skipped) console.log(`faiss: skipped (${fk.skipped})`);
  }
  console.log(`vlkernels inertia history: ${Array.from(km.inertiaHistory, (v) => fmt(v, 0)).join(', ')}`);

  const out = values.json ?? join(here, 'results', `cluster-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({
    date: new Date().toISOString(),
    machine: mi,
    swav: { b, p, eps, iters, tau, vlkMs: { sinkhorn: tSk, loss: tLoss, step: tStep }, peer: ok ? { ...sw, codesV: undefined, gradV: undefined } : sw, ratios, agree: agreeSwav },
    kmeans: { n, d: kd, k, niter, vlkMs: { seed: seedTimes, total: totalTimes }, inertia: km.inertia, history: Array.from(km.inertiaHistory), peer: fk, ratio: kmRatio },
  }, null, 2)}\n`);
  console.log(`\nJSON: ${out}`);
  return 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
