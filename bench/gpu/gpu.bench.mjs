// GPU benchmark (bench/gpu/run.sh runs it on the device machine): vlkernels search on CUDA, exact and
// bf16, against PyTorch torch.topk(q @ g.T, k) in fp32 (TF32 off) and bf16, in the same run, on W1
// (100,000 x 512, 1,000 queries, k = 10) and on the large case (1,000,000 x 768, 10,000 queries,
// k = 100), with achieved TFLOP/s against the card's bf16 matmul peak measured by PyTorch, id checks
// against the CPU path, the bars as PASS/FAIL lines, and JSON + text under bench/results/.
//
//   node bench/gpu/gpu.bench.mjs [--quick] [--no-large] [--repeats 7] [--deadline-s 420] [--dry-run-cpu]
//
// Exit status: 0 every bar PASS; 4 a bar FAIL or SKIP (everything else ran); 1 an error or an id
// mismatch; 3 "no CUDA device: <reason>" (info().cuda.usable is false; nothing is timed).
// --dry-run-cpu runs the whole harness with the CPU standing in for the GPU (vlkernels' CPU path,
// torch on the CPU, small sizes): a self-test for machines without a GPU, never a result.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cachedUnitGaussian, loadNpy, unitGaussian } from '../lib/data.mjs';
import { machineInfo } from '../lib/machine.mjs';
import { median } from '../lib/peer.mjs';
import { fmt, formatTable, sig } from '../lib/table.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const started = performance.now();

// ---- the API under test: the one place to adjust if the CUDA API's names change ---------------------
const API = {
  /** search(q, g, { k, dim, ...searchOptions(p) }) on the GPU with precision p ('exact' | 'bf16'). */
  searchOptions: (precision) => ({ device: 'cuda', precision }),
  /**
   * new FlatIndex({ dim, metric: 'ip', ...indexOptions }): a gallery resident on the GPU (index.device
   * 'cuda'; the first search after add uploads the live rows once, later searches reuse them).
   */
  indexOptions: { device: 'cuda' },
  /** index.search(q, { k, ...indexSearchOptions(p) }). */
  indexSearchOptions: (precision) => ({ precision }),
  /** Where the index lives, as the index says; the resident rows are timed only when this is 'cuda'. */
  indexDevice: (index) => index.device ?? index.describe?.()?.device,
};
const PRECISIONS = ['exact', 'bf16'];

const CASES = {
  w1: { n: 100_000, d: 512, q: 1_000, k: 10, gallerySeed: 12345, querySeed: 54321, checkQueries: 100 },
  large: { n: 1_000_000, d: 768, q: 10_000, k: 100, seed: 20261125, checkQueries: 32 },
};
const QUICK = { w1: {}, large: { n: 200_000, q: 2_000 } };
const DRY = { w1: { n: 20_000, q: 200, checkQueries: 50 }, large: { n: 20_000, q: 100, checkQueries: 20 } };

const HELP = `usage: node bench/gpu/gpu.bench.mjs [options]
  --quick             large case at 200,000 x 768, 2,000 queries (W1 stays full); bars indicative only
  --no-large          W1 only
  --repeats N         timed runs per row, the median is reported (default 7; at least 3, fewer past the deadline)
  --warmup N          untimed calls before each row (default 2)
  --deadline-s S      wall-clock budget of this process (default 420): rows past it get fewer runs or are skipped
  --work DIR          scratch folder for the .npy inputs (default build-gpu/work)
  --out-dir DIR       where the JSON and text reports go (default bench/results; --dry-run-cpu: the work folder)
  --python CMD        Python with torch (default $PYTHON or python3)
  --no-torch          skip the PyTorch side (bars that need it are SKIP)
  --dry-run-cpu       harness self-test without a GPU: CPU stands in for CUDA, small sizes, not a result
  --ignore-no-device  go on without a usable CUDA device (tests the SKIP paths; every GPU row is SKIP)`;

function log(msg) {
  const t = new Date().toISOString().slice(11, 19);
  console.log(`[gpu.bench ${t} +${((performance.now() - started) / 1e3).toFixed(1).padStart(5)}s] ${msg}`);
}

function parseCli(argv) {
  const { values: o } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      'no-large': { type: 'boolean', default: false },
      repeats: { type: 'string', default: '7' },
      warmup: { type: 'string', default: '2' },
      'deadline-s': { type: 'string', default: '420' },
      work: { type: 'string' },
      'out-dir': { type: 'string' },
      python: { type: 'string', default: process.env.PYTHON || 'python3' },
      'no-torch': { type: 'boolean', default: false },
      'dry-run-cpu': { type: 'boolean', default: false },
      'ignore-no-device': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const num = (name, min) => {
    const v = Number(o[name]);
    if (!Number.isFinite(v) || v < min) throw new Error(`--${name} must be a number >= ${min}, got ${o[name]}`);
    return v;
  };
  const dry = o['dry-run-cpu'];
  const work = resolve(o.work ?? join(root, 'build-gpu', 'work'));
  return {
    help: o.help,
    quick: o.quick,
    large: !o['no-large'],
    repeats: Math.max(1, Math.floor(num('repeats', 1))),
    warmup: Math.floor(num('warmup', 0)),
    deadline: started + num('deadline-s', 10) * 1e3,
    work,
    outDir: resolve(o['out-dir'] ?? (dry ? work : join(root, 'bench', 'results'))),
    python: o.python,
    torch: !o['no-torch'],
    dry,
    ignoreNoDevice: o['ignore-no-device'],
  };
}

const remainingS = (cfg) => (cfg.deadline - performance.now()) / 1e3;

/**
 * Median-of-repeats wall time of `await fn()` after cfg.warmup untimed calls; at least 3 runs (1 once
 * past the deadline). A call slower than 3 s gets one warm-up call and at most 3 runs.
 */
async function timeIt(fn, cfg) {
  let out;
  let repeats = cfg.repeats;
  for (let i = 0; i < cfg.warmup; i++) {
    out = undefined;
    const t0 = performance.now();
    out = await fn();
    if (performance.now() - t0 > 3000) {
      repeats = Math.min(repeats, 3);
      break;
    }
  }
  const times = [];
  for (let i = 0; i < repeats; i++) {
    // Past the deadline one run is enough; before it, stop once 3 runs are in and the next would cross it.
    if (i >= 1 && performance.now() > cfg.deadline) break;
    if (i >= 3 && performance.now() + median(times) > cfg.deadline) break;
    out = undefined;
    const t0 = performance.now();
    out = await fn();
    times.push(performance.now() - t0);
  }
  return { timesMs: times, medianMs: median(times), minMs: Math.min(...times), out };
}

function loadVlk() {
  const require = createRequire(import.meta.url);
  const entry = join(root, 'dist', 'cjs', 'index.js');
  if (!existsSync(entry)) throw new Error(`${relative(root, entry)} is missing: build lib/ first (npm run build:ts) or carry dist/`);
  return require(entry);
}

// ---- capability probe: a CUDA option that is silently ignored must not be timed as CUDA ---------------
async function probeApi(vlk, dry) {
  if (dry) {
    return { search: { ok: true, note: 'dry run: CPU path' }, index: { ok: true, note: 'dry run: CPU FlatIndex' } };
  }
  const dim = 4;
  const g = Float32Array.from({ length: 8 * dim }, (_, i) => Math.sin(i + 1));
  const q = g.slice(0, 2 * dim);
  const res = {};
  const rejects = async (opts) => {
    try {
      await vlk.search(q, g, { k: 2, dim, ...opts });
      return false;
    } catch {
      return true;
    }
  };
  if (!(await rejects({ device: 'no-such-device' }))) {
    res.search = { ok: false, why: "search() accepts options.device = 'no-such-device' (the option is ignored: not implemented?)" };
  } else if (!(await rejects({ ...API.searchOptions('exact'), precision: 'no-such-precision' }))) {
    res.search = { ok: false, why: "search() accepts options.precision = 'no-such-precision' (the option is ignored: not implemented?)" };
  } else {
    try {
      const cpu = await vlk.search(q, g, { k: 2, dim });
      const gpu = await vlk.search(q, g, { k: 2, dim, ...API.searchOptions('exact') });
      const same = cpu.indices.every((v, i) => v === gpu.indices[i]) && cpu.scores.every((v, i) => Object.is(v, gpu.scores[i]));
      res.search = same ? { ok: true } : { ok: true, warning: 'tiny probe: CUDA exact result differs from the CPU' };
    } catch (err) {
      res.search = { ok: false, why: `search(..., ${JSON.stringify(API.searchOptions('exact'))}) failed: ${err.code ?? ''} ${err.message}` };
    }
  }
  try {
    let ignored = false;
    try {
      const bogus = new vlk.FlatIndex({ dim, device: 'no-such-device' });
      bogus.close?.();
      ignored = true;
    } catch {
      // expected: the option is known and checked
    }
    if (ignored) {
      res.index = { ok: false, why: "new FlatIndex({ device: 'no-such-device' }) is accepted (no resident-gallery form yet)" };
    } else {
      const index = new vlk.FlatIndex({ dim, metric: 'ip', ...API.indexOptions });
      index.add(g);
      const where = API.indexDevice(index);
      await index.search(q, { k: 2, ...API.indexSearchOptions('exact') });
      index.close();
      res.index = where === 'cuda' ? { ok: true } : { ok: false, why: `a FlatIndex made with ${JSON.stringify(API.indexOptions)} reports device ${JSON.stringify(where)}, not 'cuda' (expose index.device)` };
    }
  } catch (err) {
    res.index = { ok: false, why: `FlatIndex on the GPU failed: ${err.code ?? ''} ${err.message}` };
  }
  return res;
}

// ---- PyTorch side ---------------------------------------------------------------------------------------
function runTorch(cfg, cases, w1Files) {
  const out = join(cfg.work, 'torch_peer.json');
  const budget = Math.max(30, Math.min(240, remainingS(cfg) * 0.45));
  const args = [
    join(here, 'torch_peer.py'), '--out', out, '--device', cfg.dry ? 'cpu' : 'cuda',
    '--w1-gallery', w1Files.gallery, '--w1-queries', w1Files.queries, '--w1-k', String(cases.w1.k),
    '--repeats', String(cfg.repeats), '--warmup', String(cfg.warmup), '--budget-s', String(Math.round(budget)),
  ];
  if (cases.large) {
    const L = cases.large;
    args.push('--large-dir', cfg.work, '--large-n', String(L.n), '--large-d', String(L.d), '--large-q', String(L.q),
      '--large-k', String(L.k), '--large-seed', String(L.seed));
  } else {
    args.push('--large-n', '0');
  }
  if (cfg.dry) args.push('--peak-sizes', '1024');
  log(`torch: ${cfg.python} ${args.map((a) => (a.startsWith(`${root}/`) ? relative(root, a) : a)).join(' ')} (budget ${Math.round(budget)} s)`);
  const r = spawnSync(cfg.python, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], timeout: Math.round((budget + 120) * 1e3), killSignal: 'SIGKILL' });
  let report;
  try {
    report = JSON.parse(readFileSync(out, 'utf8'));
  } catch {
    report = {};
  }
  if (r.error) report.error = `could not run ${cfg.python}: ${r.error.message}`;
  else if (r.signal) report.error = `torch_peer.py killed by ${r.signal}`;
  else if (r.status !== 0 && !report.skipped) report.error = `torch_peer.py exited with status ${r.status}`;
  if (report.skipped || report.error) log(`torch: ${report.skipped ?? report.error}`);
  return report;
}

// ---- vlkernels side --------------------------------------------------------------------------------------
async function timeVlk(vlk, cfg, name, c, q, g, api, probe) {
  const flop = 2 * c.q * c.n * c.d;
  const rows = [];
  const results = {};
  const add = (row) => {
    row.tflops = flop / (row.medianMs * 1e-3) / 1e12;
    rows.push(row);
    log(`${name}: ${row.label}: median ${sig(row.medianMs)} ms over ${row.timesMs.length} runs (${fmt(row.tflops, 1)} TFLOP/s)`);
  };
  const skip = (id, label, why) => {
    rows.push({ id, label, skipped: why });
    log(`${name}: ${label}: SKIP (${why})`);
  };
  for (const precision of PRECISIONS) {
    const id = `vlk-${precision}-percall`;
    const label = `vlkernels search ${precision}, per call`;
    if (!probe.search.ok) {
      skip(id, label, probe.search.why);
      continue;
    }
    if (remainingS(cfg) < 5) {
      skip(id, label, 'out of time');
      continue;
    }
    try {
      const t = await timeIt(() => vlk.search(q, g, { k: c.k, dim: c.d, ...api.searchOptions(precision) }), cfg);
      results[id] = t.out;
      delete t.out;
      add({ id, label, precision, form: 'per-call', copies: 'H2D gallery + queries, D2H top-k: all timed', ...t });
    } catch (err) {
      skip(id, label, `${err.code ?? 'error'}: ${err.message}`);
    }
  }
  const resLabel = 'resident FlatIndex';
  if (!probe.index.ok) {
    for (const precision of PRECISIONS) skip(`vlk-${precision}-resident`, `vlkernels ${resLabel} ${precision}`, probe.index.why);
  } else if (remainingS(cfg) < 10) {
    for (const precision of PRECISIONS) skip(`vlk-${precision}-resident`, `vlkernels ${resLabel} ${precision}`, 'out of time');
  } else {
    let index;
    try {
      index = new vlk.FlatIndex({ dim: c.d, metric: 'ip', ...api.indexOptions });
      const t0 = performance.now();
      const first = index.add(g);
      // The first search after a change uploads the live rows (once per change): add + that upload
      // are what the resident rows do not time.
      await index.search(q.subarray(0, c.d), { k: 1, ...api.indexSearchOptions('exact') });
      const uploadMs = performance.now() - t0;
      // add() returns { firstId } (automatic ids: rows firstId, firstId + 1, ...).
      const firstId = Number((typeof first === 'object' && first !== null ? first.firstId : first) ?? 0);
      if (!Number.isSafeInteger(firstId)) throw new Error(`FlatIndex add returned ${JSON.stringify(first)}: no first id`);
      log(`${name}: FlatIndex add (host copy + upload): ${sig(uploadMs)} ms`);
      for (const precision of PRECISIONS) {
        const id = `vlk-${precision}-resident`;
        const label = `vlkernels ${resLabel} ${precision}`;
        if (remainingS(cfg) < 5) {
          skip(id, label, 'out of time');
          continue;
        }
        try {
          const t = await timeIt(() => index.search(q, { k: c.k, ...api.indexSearchOptions(precision) }), cfg);
          const ids = t.out.ids;
          const indices = new Int32Array(ids.length);
          for (let i = 0; i < ids.length; i++) indices[i] = Number(ids[i]) < 0 ? -1 : Number(ids[i]) - firstId;
          results[id] = { indices, scores: t.out.scores, counts: t.out.counts, rescored: t.out.rescored };
          delete t.out;
          add({ id, label, precision, form: 'resident', copies: `gallery resident (add + upload ${sig(uploadMs)} ms, not timed); H2D queries, D2H top-k timed`, uploadMs, ...t });
        } catch (err) {
          skip(id, label, `${err.code ?? 'error'}: ${err.message}`);
        }
      }
    } catch (err) {
      for (const precision of PRECISIONS) skip(`vlk-${precision}-resident`, `vlkernels ${resLabel} ${precision}`, `${err.code ?? 'error'}: ${err.message}`);
    } finally {
      index?.close?.();
    }
  }
  return { rows, results };
}

// ---- checks ----------------------------------------------------------------------------------------------
function compareExact(gpu, cpu, m, k) {
  const bad = [];
  let n = 0;
  const gs = new Uint32Array(gpu.scores.buffer, gpu.scores.byteOffset, gpu.scores.length);
  const cs = new Uint32Array(cpu.scores.buffer, cpu.scores.byteOffset, cpu.scores.length);
  for (let i = 0; i < m * k; i++) {
    n++;
    if (gpu.indices[i] !== cpu.indices[i] || gs[i] !== cs[i]) {
      if (bad.length < 5) {
        bad.push({ query: Math.floor(i / k), rank: i % k, gpu: [gpu.indices[i], gpu.scores[i]], cpu: [cpu.indices[i], cpu.scores[i]] });
      }
      bad.count = (bad.count ?? 0) + 1;
    }
  }
  return { compared: n, mismatches: bad.count ?? 0, first: bad };
}

function recall(approx, exact, qn, k) {
  let hit = 0;
  for (let q = 0; q < qn; q++) {
    const ref = new Set(exact.indices.subarray(q * k, q * k + k));
    for (let j = 0; j < k; j++) if (ref.has(approx.indices[q * k + j])) hit++;
  }
  return hit / (qn * k);
}

function overlapRows(rows, result, k) {
  if (!rows || !result) return undefined;
  let hit = 0;
  let total = 0;
  rows.forEach((row, q) => {
    const ref = new Set(result.indices.subarray(q * k, q * k + k));
    total += row.length;
    for (const x of row) if (ref.has(x)) hit++;
  });
  return total ? hit / total : undefined;
}

async function checkCase(vlk, name, c, q, g, vlkRun, torchCase) {
  const m = Math.min(c.checkQueries, c.q);
  const t0 = performance.now();
  const cpu = await vlk.search(q.subarray(0, m * c.d), g, { k: c.k, dim: c.d });
  const cpuMs = performance.now() - t0;
  const checks = { cpuReference: `vlkernels CPU search (fp32, ties to the lower index) on the first ${m} queries`, cpuMs, exact: {} };
  for (const id of ['vlk-exact-percall', 'vlk-exact-resident']) {
    const r = vlkRun.results[id];
    if (!r) continue;
    checks.exact[id] = compareExact(r, cpu, m, c.k);
    const e = checks.exact[id];
    log(`${name}: ${id} vs CPU on ${m} queries: ${e.mismatches === 0 ? 'ids and scores equal' : `${e.mismatches} of ${e.compared} differ, e.g. ${JSON.stringify(e.first[0])}`}`);
  }
  checks.bf16RecallVsExact = {};
  for (const form of ['percall', 'resident']) {
    const a = vlkRun.results[`vlk-bf16-${form}`];
    const e = vlkRun.results[`vlk-exact-${form}`] ?? vlkRun.results['vlk-exact-percall'];
    if (a && e) checks.bf16RecallVsExact[form] = recall(a, e, c.q, c.k);
  }
  const exactAny = vlkRun.results['vlk-exact-resident'] ?? vlkRun.results['vlk-exact-percall'];
  const bf16Any = vlkRun.results['vlk-bf16-resident'] ?? vlkRun.results['vlk-bf16-percall'];
  const torchRow = (id) => torchCase?.runs?.find((r) => r.id === id);
  checks.torchAgreement = {
    fp32VsVlkExact: overlapRows(torchRow('torch-fp32')?.check?.indices, exactAny, c.k),
    bf16VsVlkBf16: overlapRows(torchRow('torch-bf16')?.check?.indices, bf16Any, c.k),
    fp32VsVlkCpu: overlapRows(torchRow('torch-fp32')?.check?.indices?.slice(0, m), cpu, c.k),
  };
  return checks;
}

// ---- report ----------------------------------------------------------------------------------------------
function slugify(s) {
  return String(s).toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'unknown-gpu';
}

function caseTable(c, vlkRows, torchCase, peak) {
  const flop = 2 * c.q * c.n * c.d;
  const tRow = (id) => torchCase?.runs?.find((r) => r.id === id);
  const t32 = tRow('torch-fp32')?.medianMs;
  const t16 = tRow('torch-bf16')?.medianMs;
  const torchCopies = {
    'torch-fp32': 'none: q, g on the GPU',
    'torch-bf16': 'none: q, g on the GPU, already bf16',
    'torch-fp32-host': 'H2D q, g + D2H top-k: all timed',
    'torch-bf16-host': 'H2D q, g (fp32) + cast + D2H top-k: all timed',
    'torch-bf16-matmul-only': 'none; no selection (context)',
  };
  const rows = [];
  for (const r of vlkRows) {
    if (r.skipped) rows.push([r.label, 'SKIP', '-', '-', '-', '-', '-', '-', r.skipped.slice(0, 100)]);
    else rows.push([r.label, sig(r.medianMs), sig(r.minMs), String(r.timesMs.length), fmt(r.tflops, 1), peak ? fmt((100 * r.tflops) / peak, 1) : '-', t32 ? sig(t32 / r.medianMs) : '-', t16 ? sig(t16 / r.medianMs) : '-', r.copies]);
  }
  for (const r of torchCase?.runs ?? []) {
    const tf = flop / (r.medianMs * 1e-3) / 1e12;
    rows.push([r.label, sig(r.medianMs), sig(r.minMs), String(r.timesMs.length), fmt(tf, 1), peak ? fmt((100 * tf) / peak, 1) : '-', t32 ? sig(t32 / r.medianMs) : '-', t16 ? sig(t16 / r.medianMs) : '-', torchCopies[r.id] ?? '']);
  }
  return formatTable(
    ['system', 'median ms', 'min ms', 'runs', 'TFLOP/s', '% bf16 peak', 'torch fp32 / this', 'torch bf16 / this', 'host<->device copies in the time'],
    rows.map((r) => r.map((x) => x ?? '')),
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
  );
}

function pickVlk(rows, precision) {
  const ok = (id) => rows.find((r) => r.id === id && !r.skipped);
  return ok(`vlk-${precision}-resident`) ?? ok(`vlk-${precision}-percall`);
}

function bars(report, cfg) {
  const out = [];
  const bar = (status, text) => out.push({ status, text });
  const w1 = report.cases.w1;
  const tRow = (cs, id) => cs?.torch?.runs?.find((r) => r.id === id);
  const ratioBar = (label, precision, torchId, need) => {
    const v = w1 && pickVlk(w1.vlk.rows, precision);
    const t = tRow(w1, torchId);
    if (!v || !t) {
      bar('SKIP', `${label}: not measured (${!v ? `vlkernels ${precision}: ${w1?.vlk.rows.find((r) => r.precision === precision || r.id.includes(precision))?.skipped ?? 'no row'}` : `torch: ${report.torch.skipped ?? report.torch.error ?? 'no row'}`})`);
      return;
    }
    const x = t.medianMs / v.medianMs;
    bar(x >= need ? 'PASS' : 'FAIL', `${label}: ${sig(x)}x (need >= ${need}x): vlkernels ${v.form} ${sig(v.medianMs)} ms vs ${t.label} ${sig(t.medianMs)} ms`);
  };
  ratioBar('W1 exact >= 3x faster than torch fp32 matmul+topk', 'exact', 'torch-fp32', 3);
  ratioBar('W1 bf16 >= 1.5x faster than torch bf16 matmul+topk', 'bf16', 'torch-bf16', 1.5);
  for (const [precision, torchId] of [['exact', 'torch-fp32-host'], ['bf16', 'torch-bf16-host']]) {
    const v = w1?.vlk.rows.find((r) => r.id === `vlk-${precision}-percall` && !r.skipped);
    const t = tRow(w1, torchId);
    if (v && t) {
      bar('INFO', `W1 ${precision} per call vs ${t.label}: ${sig(t.medianMs / v.medianMs)}x (${sig(v.medianMs)} ms vs ${sig(t.medianMs)} ms; both time the host<->device copies)`);
    }
  }
  const peak = report.peak?.bf16?.tflops;
  const large = report.cases.large;
  for (const [precision, isBar] of [['bf16', true], ['exact', false]]) {
    const label = `large case ${precision} >= 50% of the measured bf16 matmul peak (selection included)${isBar ? '' : ' [info]'}`;
    const v = large && pickVlk(large.vlk.rows, precision);
    if (!large) bar(isBar ? 'SKIP' : 'INFO', `${label}: large case not run`);
    else if (!v || !peak) bar(isBar ? 'SKIP' : 'INFO', `${label}: not measured (${!peak ? 'no bf16 peak from torch' : large.vlk.rows.find((r) => r.id.startsWith(`vlk-${precision}`))?.skipped ?? 'no row'})`);
    else {
      const share = v.tflops / peak;
      bar(isBar ? (share >= 0.5 ? 'PASS' : 'FAIL') : 'INFO', `${label}: ${fmt(100 * share, 1)}% (${fmt(v.tflops, 1)} of ${fmt(peak, 1)} TFLOP/s; vlkernels ${v.form}, ${sig(v.medianMs)} ms)`);
    }
  }
  for (const [name, cs] of Object.entries(report.cases)) {
    const ex = Object.entries(cs.checks?.exact ?? {});
    if (!ex.length) {
      bar('SKIP', `${name}: CUDA exact ids equal the CPU fp32 ids: no exact GPU result to check`);
      continue;
    }
    for (const [id, e] of ex) {
      bar(e.mismatches === 0 ? 'PASS' : 'FAIL', `${name}: ${id} ids and scores equal the CPU fp32 search on the first ${e.compared / cs.k} queries${e.mismatches ? `: ${e.mismatches} of ${e.compared} differ` : ''}`);
    }
  }
  if (cfg.quick || cfg.dry) out.forEach((b) => (b.text += cfg.dry ? ' [DRY RUN: CPU stand-in, not a result]' : ' [--quick: indicative only]'));
  return out;
}

export async function main(argv) {
  const cfg = parseCli(argv);
  if (cfg.help) {
    console.log(HELP);
    return 0;
  }
  const cases = {};
  for (const [name, base] of Object.entries(CASES)) {
    if (name === 'large' && !cfg.large) continue;
    cases[name] = { ...base, ...(cfg.quick ? QUICK[name] : {}), ...(cfg.dry ? DRY[name] : {}) };
  }
  const machine = machineInfo();
  log(`node ${process.version}, ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB${cfg.dry ? '; DRY RUN (CPU stands in for the GPU)' : ''}`);

  let vlk;
  try {
    vlk = loadVlk();
  } catch (err) {
    console.error(`gpu.bench: could not load vlkernels: ${err.message}`);
    return 1;
  }
  const inf = vlk.info();
  log(`vlkernels ${inf.version}: ISA ${inf.isa}, ${inf.threads} threads; cuda ${JSON.stringify(inf.cuda ?? null)}`);
  if (!cfg.dry && !inf.cuda?.usable && !cfg.ignoreNoDevice) {
    const reason = inf.cuda ? inf.cuda.reason || 'info().cuda.usable is false' : 'info() has no cuda field (this build predates the CUDA backend)';
    console.error(`no CUDA device: ${reason}`);
    return 3;
  }
  const api = cfg.dry
    ? { searchOptions: () => ({}), indexOptions: {}, indexSearchOptions: () => ({}), indexDevice: () => 'cpu' }
    : API;
  const probe = await probeApi(vlk, cfg.dry);
  log(`API probe: search ${probe.search.ok ? 'ok' : `NOT USABLE: ${probe.search.why}`}; resident index ${probe.index.ok ? 'ok' : `NOT USABLE: ${probe.index.why}`}`);

  mkdirSync(cfg.work, { recursive: true });
  process.env.TMPDIR = cfg.work; // cachedUnitGaussian caches under os.tmpdir()
  const w1c = cases.w1;
  let t0 = performance.now();
  const w1g = cachedUnitGaussian(w1c.n, w1c.d, w1c.gallerySeed);
  const w1q = cachedUnitGaussian(w1c.q, w1c.d, w1c.querySeed);
  log(`W1 data ${w1g.cached && w1q.cached ? 'cached' : 'generated'} in ${sig((performance.now() - t0) / 1e3)} s: ${w1g.path}`);

  const report = {
    tool: 'bench/gpu/gpu.bench.mjs',
    date: new Date().toISOString(),
    dryRun: cfg.dry,
    quick: cfg.quick,
    settings: { repeats: cfg.repeats, warmup: cfg.warmup, statistic: 'median', timing: 'wall clock (performance.now) around await search(); torch: wall clock around cuda.synchronize()' },
    host: machine,
    vlkernels: { info: inf, api: { searchOptions: API.searchOptions('<precision>'), indexOptions: API.indexOptions, indexSearchOptions: API.indexSearchOptions('<precision>') }, probe },
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => /^(VLK|VLKERNELS|CUDA)_/.test(k))),
    cases: {},
  };

  report.torch = cfg.torch ? runTorch(cfg, cases, { gallery: w1g.path, queries: w1q.path }) : { skipped: '--no-torch' };
  report.peak = report.torch.peak;
  report.gpu = report.torch.gpu ?? { name: inf.cuda?.device?.name ?? 'unknown GPU' };
  if (report.peak?.bf16) log(`bf16 matmul peak (torch, best of ${report.peak.bf16.shapes.map((s) => `${s.m}^3`).join(', ')}): ${fmt(report.peak.bf16.tflops, 1)} TFLOP/s`);

  let exitCode = 0;
  for (const [name, c] of Object.entries(cases)) {
    if (remainingS(cfg) < 15) {
      log(`${name}: skipped, out of time`);
      report.cases[name] = { ...c, skipped: 'out of time', vlk: { rows: [] }, torch: report.torch.cases?.[name] };
      continue;
    }
    let q;
    let g;
    t0 = performance.now();
    if (name === 'w1') {
      g = w1g.data;
      q = w1q.data;
    } else {
      const files = report.torch.largeFiles;
      if (files && existsSync(files.gallery) && existsSync(files.queries)) {
        g = loadNpy(files.gallery).data;
        q = loadNpy(files.queries).data;
        c.data = `torch.randn on the ${cfg.dry ? 'CPU' : 'GPU'}, seed ${c.seed} (queries ${c.seed + 1}), rows scaled to unit length: ${files.gallery}`;
      } else {
        // No torch: the JS generator (about 25 s for 1M x 768).
        g = unitGaussian(c.n, c.d, c.seed);
        q = unitGaussian(c.q, c.d, c.seed + 1);
        c.data = `bench/lib/data.mjs unitGaussian, seeds ${c.seed} / ${c.seed + 1} (torch produced no files)`;
      }
      log(`large data loaded in ${sig((performance.now() - t0) / 1e3)} s (${fmt((g.byteLength + q.byteLength) / 2 ** 30, 2)} GiB)`);
    }
    const vlkRun = await timeVlk(vlk, cfg, name, c, q, g, api, probe);
    const torchCase = report.torch.cases?.[name];
    const checks = await checkCase(vlk, name, c, q, g, vlkRun, torchCase);
    if (Object.values(checks.exact).some((e) => e.mismatches > 0)) exitCode = 1;
    report.cases[name] = { ...c, flop: 2 * c.q * c.n * c.d, vlk: { rows: vlkRun.rows }, torch: torchCase, checks };
    g = undefined;
    q = undefined;
  }

  // ---- text report ----
  const gpuName = report.gpu.name;
  const day = report.date.slice(0, 10);
  const lines = [];
  lines.push(`# vlkernels GPU search vs PyTorch: ${gpuName}${report.gpu.capability ? ` (sm ${report.gpu.capability}, ${fmt(report.gpu.totalMemoryGiB, 1)} GiB)` : ''}, ${day}${cfg.dry ? ' [DRY RUN: CPU stand-in, not a result]' : ''}${cfg.quick ? ' [--quick]' : ''}`);
  lines.push(`vlkernels ${inf.version}, node ${process.version}; torch ${report.torch.versions?.torch ?? '-'} (CUDA ${report.torch.versions?.cuda ?? '-'}); host ${machine.cpu}, ${machine.cores} cores`);
  if (report.peak?.bf16) {
    const p = report.peak;
    lines.push(`matmul peaks measured by torch in this run: bf16 ${fmt(p.bf16.tflops, 1)} TFLOP/s (best of ${p.bf16.shapes.map((s) => `${s.m}^3 ${fmt(s.tflops, 1)}`).join(', ')}), fp32 TF32 off ${fmt(p.fp32?.tflops, 1)}, TF32 ${fmt(p.tf32?.tflops, 1)}`);
  } else {
    lines.push(`bf16 matmul peak: not measured (torch: ${report.torch.skipped ?? report.torch.error ?? 'no peak'})`);
  }
  lines.push(`times: median of up to ${cfg.repeats} runs after ${cfg.warmup} warm-up calls; TFLOP/s = 2QND / median time; inner product, unit-length rows`);
  for (const [name, cs] of Object.entries(report.cases)) {
    lines.push('');
    lines.push(`## ${name}: gallery ${fmt(cs.n)} x ${cs.d}, ${fmt(cs.q)} queries, k = ${cs.k} (2QND = ${sig(2 * cs.q * cs.n * cs.d / 1e12)} TFLOP)${cs.skipped ? `: SKIPPED (${cs.skipped})` : ''}`);
    if (cs.data) lines.push(`data: ${cs.data}`);
    lines.push(caseTable(cs, cs.vlk.rows, cs.torch, report.peak?.bf16?.tflops));
    const ch = cs.checks;
    if (ch) {
      for (const [id, e] of Object.entries(ch.exact)) lines.push(`check: ${id} vs ${ch.cpuReference}: ${e.mismatches === 0 ? `ids and scores equal (${e.compared} entries)` : `${e.mismatches} of ${e.compared} entries differ; first ${JSON.stringify(e.first)}`}`);
      for (const [form, r] of Object.entries(ch.bf16RecallVsExact)) lines.push(`check: vlkernels bf16 (${form}) recall@${cs.k} vs exact, all queries: ${r.toFixed(4)}`);
      const ta = ch.torchAgreement;
      const f = (x) => (x === undefined ? '-' : x.toFixed(3));
      lines.push(`check: top-${cs.k} set overlap on the first ${cs.torch?.runs?.[0]?.check?.indices?.length ?? 0} queries: torch fp32 vs vlkernels exact ${f(ta.fp32VsVlkExact)}, torch fp32 vs vlkernels CPU ${f(ta.fp32VsVlkCpu)}, torch bf16 vs vlkernels bf16 ${f(ta.bf16VsVlkBf16)}`);
    }
  }
  const barList = bars(report, cfg);
  report.bars = barList;
  lines.push('');
  lines.push('## bars');
  for (const b of barList) lines.push(`${b.status} ${b.text}`);
  const text = lines.join('\n');
  console.log(`\n${text}\n`);

  // ---- files ----
  mkdirSync(cfg.outDir, { recursive: true });
  const base = `gpu-search-${slugify(gpuName)}-${day}${cfg.quick ? '-quick' : ''}${cfg.dry ? '-dryrun' : ''}`;
  let stem = join(cfg.outDir, base);
  for (let i = 2; existsSync(`${stem}.json`) || existsSync(`${stem}.txt`); i++) stem = join(cfg.outDir, `${base}-run${i}`);
  report.elapsedS = (performance.now() - started) / 1e3;
  writeFileSync(`${stem}.json`, `${JSON.stringify(report, null, 1)}\n`);
  writeFileSync(`${stem}.txt`, `${text}\n`);
  log(`wrote ${relative(root, stem) || stem}.json and .txt`);

  if (exitCode === 0 && barList.some((b) => b.status === 'FAIL' || b.status === 'SKIP')) exitCode = 4;
  return exitCode;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      console.error(`gpu.bench: ${err.stack ?? err}`);
      process.exitCode = 1;
    },
  );
}
