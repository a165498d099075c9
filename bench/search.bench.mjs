// Search benchmark W1: exact inner-product top-k, gallery N x D unit Gaussian vectors, Q queries, against
// numpy, FAISS, PyTorch, usearch and hnswlib-node in the same run (--peers), and against the sgemm-alone roof.
// Effective work is 2*Q*N*D flops per batched search; W1 is timed best-of-`repeats`, search only. Sweeps of
// gallery size, batch size and k (medians of repeats) are written to the JSON and drawn as SVG charts.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { createRequire } from 'node:module';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cachedUnitGaussian } from './lib/data.mjs';
import { cpuSnapshot, foreignCpu, machineInfo } from './lib/machine.mjs';
import { median } from './lib/peer.mjs';
import { renderLineChart } from './lib/svg_chart.mjs';
import { fmt, formatTable, sig } from './lib/table.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = dirname(here);

const GALLERY_SEED = 12345;
const QUERY_SEED = 54321;
const CHECK_QUERIES = 8;
// Share of the machine taken by other processes during a system's runs above which its timing is flagged.
const NOISY = 0.05;

/**
 * Peers, in table order. `kind` picks the runner; `env` is added to the inherited environment (only the roof
 * overrides anything: the others run as shipped). `subset` marks peers timed on a query subset.
 */
const PEERS = [
  { id: 'roof', label: 'sgemm roof (numpy q @ g.T alone, OPENBLAS_CORETYPE=SkylakeX)', kind: 'py', file: 'sgemm_roof.py', env: { OPENBLAS_CORETYPE: 'SkylakeX' } },
  { id: 'numpy', label: 'numpy matmul + argpartition', kind: 'py', file: 'numpy_search.py' },
  { id: 'faiss', label: 'FAISS IndexFlatIP', kind: 'py', file: 'faiss_search.py' },
  { id: 'torch', label: 'PyTorch CPU topk(q @ g.T)', kind: 'py', file: 'torch_search.py' },
  { id: 'usearch', label: 'usearch exactSearch', kind: 'js', file: 'usearch_search.mjs' },
  { id: 'hnswlib', label: 'hnswlib-node BruteforceSearch', kind: 'js', file: 'hnswlib_search.mjs', subset: true },
];

// Sweeps: one axis varies, the others stay at W1's N and Q and at k = SWEEP_K. Values per mode.
const SWEEP_K = 10;
const SWEEPS = {
  n: { full: [12_500, 25_000, 50_000, 100_000], quick: [2_500, 5_000, 10_000, 20_000] },
  q: { full: [1, 10, 100, 1000], quick: [1, 10, 100, 1000] },
  k: { full: [1, 10, 100, 1000], quick: [1, 10, 100, 1000] },
};
// Chart file per axis, from the --chart path's stem: out.svg, out-batch.svg, out-k.svg.
const CHART_SUFFIX = { n: '', q: '-batch', k: '-k' };

const HELP = `usage: npm run bench -- search [options]
  --quick              smoke run: N = 20,000 instead of 100,000 (sweeps on smaller galleries too)
  --json PATH          where to write the JSON report (default bench/results/search-<date>.json)
  --peers [LIST]       run the peers too: all of them, or a comma-separated subset of
                       ${PEERS.map((p) => p.id).join(', ')} (default: vlkernels only)
  --chart PATH         SVG of time vs gallery size; PATH's stem + -batch.svg and -k.svg get the batch-size
                       and k sweeps (default: the JSON path with .svg)
  --sweep LIST         sweeps to run and chart: n (gallery size), q (batch size), k; "none" skips them
                       (default n,q,k)
  --sweep-n LIST, --sweep-q LIST, --sweep-k LIST   override a sweep's values
  --sweep-repeats N    timed runs per sweep point, median reported (default 5, --quick 3)
  --ks LIST            k values for the batched runs (default 10,100,1000)
  --repeats N          timed runs per system and k, best reported (default 3)
  --latency-runs N     Q = 1 runs, median reported (default 30)
  --n N, --q N         override gallery size and query count
  --hnsw-subset N      queries timed for hnswlib-node, extrapolated to Q (default 100)
Python peers run through $PYTHON (default python3); a missing module skips that peer.`;

export async function main(argv) {
  const { values: o } = parseArgs({
    args: barePeers(argv),
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'string' },
      peers: { type: 'string', default: 'none' },
      chart: { type: 'string' },
      sweep: { type: 'string', default: 'n,q,k' },
      'sweep-n': { type: 'string' },
      'sweep-q': { type: 'string' },
      'sweep-k': { type: 'string' },
      'sweep-repeats': { type: 'string' },
      ks: { type: 'string', default: '10,100,1000' },
      repeats: { type: 'string', default: '3' },
      'latency-runs': { type: 'string', default: '30' },
      n: { type: 'string' },
      q: { type: 'string' },
      'hnsw-subset': { type: 'string', default: '100' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (o.help) {
    console.log(HELP);
    return 0;
  }
  const cfg = {
    n: Number(o.n ?? (o.quick ? 20_000 : 100_000)),
    d: 512,
    q: Number(o.q ?? 1000),
    ks: o.ks.split(',').filter(Boolean).map(Number),
    repeats: Number(o.repeats),
    latencyRuns: Number(o['latency-runs']),
    hnswSubset: Number(o['hnsw-subset']),
    quick: o.quick,
  };
  const mode = o.quick ? 'quick' : 'full';
  const list = (text) => text.split(',').filter(Boolean).map(Number);
  const axes = o.sweep === 'none' ? [] : o.sweep.split(',').filter(Boolean);
  const badAxis = axes.filter((a) => !(a in SWEEPS));
  if (badAxis.length) throw new Error(`--sweep: unknown sweep(s) ${badAxis.join(', ')}; known: n, q, k, or none`);
  cfg.sweep = {
    axes: [...new Set(axes)],
    n: o['sweep-n'] ? list(o['sweep-n']) : SWEEPS.n[mode].filter((v) => v <= cfg.n),
    q: o['sweep-q'] ? list(o['sweep-q']) : SWEEPS.q[mode],
    k: o['sweep-k'] ? list(o['sweep-k']) : SWEEPS.k[mode].filter((v) => v <= cfg.n),
    repeats: Number(o['sweep-repeats'] ?? (o.quick ? 3 : 5)),
  };
  for (const axis of ['n', 'q', 'k']) {
    const vals = cfg.sweep[axis];
    if (!vals.length || vals.some((v) => !Number.isInteger(v) || v < 1)) throw new Error(`--sweep-${axis} must be positive integers, got ${vals.join(',')}`);
  }
  if (cfg.sweep.n.some((v) => v < SWEEP_K)) throw new Error(`--sweep-n values must be at least k = ${SWEEP_K}`);
  if (cfg.sweep.k.some((v) => v > cfg.n)) throw new Error(`--sweep-k values must be at most N = ${cfg.n}`);
  if (!Number.isInteger(cfg.sweep.repeats) || cfg.sweep.repeats < 1) throw new Error(`--sweep-repeats must be a positive integer, got ${o['sweep-repeats']}`);
  const wanted = o.peers === 'none' ? [] : o.peers === 'all' ? PEERS.map((p) => p.id) : o.peers.split(',').filter(Boolean);
  const unknown = wanted.filter((id) => !PEERS.some((p) => p.id === id));
  if (unknown.length) throw new Error(`--peers: unknown peer(s) ${unknown.join(', ')}; known: ${PEERS.map((p) => p.id).join(', ')}`);
  for (const [name, v] of Object.entries({ n: cfg.n, q: cfg.q, repeats: cfg.repeats, 'latency-runs': cfg.latencyRuns })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer, got ${v}`);
  }
  if (cfg.ks.some((k) => !Number.isInteger(k) || k < 1 || k > cfg.n)) throw new Error(`--ks must be integers in 1..${cfg.n}`);
  const k0 = cfg.ks[0];

  const machine = machineInfo();
  const t0 = performance.now();
  const gallery = cachedUnitGaussian(cfg.n, cfg.d, GALLERY_SEED);
  const queries = cachedUnitGaussian(cfg.q, cfg.d, QUERY_SEED);
  const dataNote = gallery.cached && queries.cached ? 'cached' : 'generated';
  const flops = 2 * cfg.q * cfg.n * cfg.d;

  console.log(`# search W1${cfg.quick ? ' (quick)' : ''}: gallery ${fmt(cfg.n)} x ${cfg.d} unit Gaussian (seed ${GALLERY_SEED}), ` +
    `${fmt(cfg.q)} queries (seed ${QUERY_SEED}), inner product, k = ${cfg.ks.join(', ')}; ${fmt(flops / 1e9, 1)} GFLOP per batch`);
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}, Node ${machine.node}`);
  if (machine.simdFlags.length) console.log(`cpu simd flags: ${machine.simdFlags.join(' ')}`);
  const loadStart = os.loadavg()[0];
  console.log(`data: ${dataNote} in ${fmt((performance.now() - t0) / 1e3, 1)} s: ${gallery.path}, ${queries.path}`);

  const vlk = loadVlk();
  let vlkReport;
  if (vlk.error) {
    console.log(`vlkernels: NOT LOADED (${vlk.error}); run \`npm run build:all\` first. Peers only.`);
  } else {
    const inf = vlk.mod.info();
    machine.isa = inf.isa;
    machine.threads = inf.threads;
    console.log(`vlkernels ${inf.version}: ISA ${inf.isa} (available ${inf.isas.join(', ')}; detected ${inf.detectedIsa}), ` +
      `${inf.threads} threads, Node-API ${inf.napiVersion}`);
    const started = performance.now();
    process.stdout.write('running vlkernels ... ');
    const before = cpuSnapshot();
    vlkReport = await runVlk(vlk.mod, gallery.data, queries.data, cfg);
    vlkReport.info = inf;
    vlkReport.otherCpu = foreignCpu(before, cpuSnapshot());
    console.log(`(${fmt((performance.now() - started) / 1e3, 1)} s${noise(vlkReport.otherCpu)})`);
  }

  const peerReports = {};
  for (const peer of PEERS.filter((p) => wanted.includes(p.id))) {
    const started = performance.now();
    process.stdout.write(`running ${peer.id} ... `);
    const before = cpuSnapshot();
    const rep = runPeer(peer, gallery.path, queries.path, cfg);
    rep.otherCpu = foreignCpu(before, cpuSnapshot());
    peerReports[peer.id] = rep;
    console.log(rep.skipped ? `skipped: ${rep.skipped}` : `${rep.system} (${fmt((performance.now() - started) / 1e3, 1)} s${noise(rep.otherCpu)})`);
  }

  const versions = Object.assign({}, ...Object.values(peerReports).map((r) => r.versions ?? {}));
  if (Object.keys(versions).length) console.log(`peer versions: ${Object.entries(versions).map(([k, v]) => `${k} ${v}`).join(', ')}`);

  // ---- tables -------------------------------------------------------------------------------------------
  const vlkBest = (k, mode = 'sync') => vlkReport?.runs.find((r) => r.k === k)?.[mode].bestMs;
  const peerBest = (id, k) => {
    const rep = peerReports[id];
    if (!rep || rep.skipped) return undefined;
    return (rep.runs.find((r) => r.k === k) ?? (id === 'roof' ? rep.runs[0] : undefined))?.bestMs;
  };
  const vlkCheck = vlkReport?.check;
  const agreement = (rep) => {
    if (!vlkCheck || !rep?.check || rep.check.k !== vlkCheck.k) return '-';
    let hit = 0;
    let total = 0;
    rep.check.indices.forEach((row, i) => {
      const ref = new Set(vlkCheck.indices[i]);
      total += ref.size;
      for (const x of row) if (ref.has(x)) hit++;
    });
    return total ? (hit / total).toFixed(3) : '-';
  };

  const tables = [];
  for (const k of cfg.ks) {
    const rows = [];
    const ref = vlkBest(k);
    const add = (system, ms, rep, note = '') => {
      rows.push({
        system: system + note,
        ms,
        qps: ms ? (cfg.q / ms) * 1e3 : undefined,
        gflops: ms ? flops / (ms * 1e6) : undefined,
        vlkRatio: ref && ms ? ref / ms : undefined,
        agree: k === k0 ? agreement(rep) : '-',
      });
    };
    if (vlkReport) {
      add('vlkernels searchSync', vlkBest(k), vlkReport);
      add('vlkernels search (async)', vlkBest(k, 'async'), vlkReport);
    }
    for (const peer of PEERS) {
      const rep = peerReports[peer.id];
      if (!rep) continue;
      const version = rep.versions ? ` ${Object.values(rep.versions)[0]}` : '';
      if (rep.skipped) {
        rows.push({ system: `${peer.label}: skipped`, ms: undefined, qps: undefined, gflops: undefined, vlkRatio: undefined, agree: '-' });
        continue;
      }
      const label = peer.id === 'roof' ? `sgemm roof: numpy${version} q @ g.T alone, SkylakeX` : `${rep.system}`;
      const run = rep.runs.find((r) => r.k === k);
      const note = run?.extrapolated ? ` [${fmt(run.timedQueries)} queries timed, x${fmt(cfg.q / run.timedQueries)}]` : '';
      add(label, peerBest(peer.id, k), rep, note);
    }
    tables.push({ k, rows });
    console.log(`\n## W1 batched, k = ${k}: N = ${fmt(cfg.n)}, D = ${cfg.d}, Q = ${fmt(cfg.q)}, inner product (best of ${cfg.repeats})`);
    console.log(formatTable(
      ['system', 'time ms', 'queries/s', 'GFLOP/s', 'vlk time / this', k === k0 ? `top-${k} agree` : 'agree'],
      rows.map((r) => [r.system, sig(r.ms), fmt(r.qps), fmt(r.gflops, 1), sig(r.vlkRatio), r.agree]),
      ['l', 'r', 'r', 'r', 'r', 'r'],
    ));
  }

  const latRows = [];
  if (vlkReport) {
    latRows.push({ system: 'vlkernels searchSync', ...vlkReport.latency.sync });
    latRows.push({ system: 'vlkernels search (async)', ...vlkReport.latency.async });
  }
  for (const peer of PEERS) {
    const rep = peerReports[peer.id];
    if (rep?.latency) latRows.push({ system: rep.system, ...rep.latency });
  }
  const vlkLat = vlkReport?.latency.sync.medianMs;
  console.log(`\n## Q = 1 latency, k = 10: median of ${cfg.latencyRuns} (gallery read ${fmt(cfg.n * cfg.d * 4 / 1e6, 1)} MB per query)`);
  console.log(formatTable(
    ['system', 'median ms', 'min ms', 'GB/s streamed', 'vlk median / this'],
    latRows.map((r) => [r.system, sig(r.medianMs), sig(r.minMs), fmt((cfg.n * cfg.d * 4) / (r.medianMs * 1e6), 1), sig(vlkLat && vlkLat / r.medianMs)]),
    ['l', 'r', 'r', 'r', 'r'],
  ));

  // k scaling: the cost of a larger k relative to the first k, per system.
  const scaleRows = [];
  if (cfg.ks.length > 1) {
    if (vlkReport) scaleRows.push(['vlkernels searchSync', ...cfg.ks.slice(1).map((k) => sig(vlkBest(k) / vlkBest(k0)))]);
    for (const peer of PEERS) {
      const rep = peerReports[peer.id];
      if (!rep || rep.skipped || peer.id === 'roof') continue;
      scaleRows.push([rep.system, ...cfg.ks.slice(1).map((k) => sig(peerBest(peer.id, k) / peerBest(peer.id, k0)))]);
    }
    console.log(`\n## k scaling: time(k) / time(k = ${k0})`);
    console.log(formatTable(['system', ...cfg.ks.slice(1).map((k) => `k = ${k}`)], scaleRows, ['l', ...cfg.ks.slice(1).map(() => 'r')]));
  }

  // ---- bars (issue acceptance criteria, on the full W1 at k = 10) ------------------------------------------
  const bars = [];
  const bar = (name, value, limit, missing) => {
    const status = value == null || !Number.isFinite(value) ? 'SKIP' : value <= limit ? 'PASS' : 'FAIL';
    bars.push({ name, value: value ?? null, limit, status, note: status === 'SKIP' ? missing : undefined });
  };
  const vs = (id) => (vlkBest(10) && peerBest(id, 10) ? vlkBest(10) / peerBest(id, 10) : undefined);
  const why = (id) => {
    if (!vlkReport) return 'vlkernels not loaded';
    if (!cfg.ks.includes(10)) return 'needs k = 10 in --ks';
    const rep = peerReports[id];
    if (!rep) return `peer ${id} not run (--peers)`;
    return rep.skipped ? `peer ${id} skipped` : 'no result';
  };
  bar('vlkernels time <= 0.5 x numpy (k = 10)', vs('numpy'), 0.5, why('numpy'));
  bar('vlkernels time <= 0.6 x FAISS (k = 10)', vs('faiss'), 0.6, why('faiss'));
  bar('vlkernels time <= 0.1 x usearch (k = 10)', vs('usearch'), 0.1, why('usearch'));
  bar('vlkernels time <= 1.2 x sgemm roof (k = 10)', vs('roof'), 1.2, why('roof'));
  const npLat = peerReports.numpy?.latency?.medianMs;
  bar('Q = 1 median latency <= numpy', vlkLat && npLat ? vlkLat / npLat : undefined, 1.0, why('numpy'));
  bar('k = 1000 time <= 1.5 x k = 10', vlkBest(1000) && vlkBest(10) ? vlkBest(1000) / vlkBest(10) : undefined, 1.5,
    vlkReport ? 'needs k = 10 and k = 1000 in --ks' : 'vlkernels not loaded');
  console.log(`\n## bars${cfg.quick || cfg.n !== 100_000 || cfg.q !== 1000 ? ' (NOT the W1 sizes: indicative only)' : ''}`);
  for (const b of bars) {
    console.log(`${b.status}  ${b.name}: ${b.value == null ? b.note : `${sig(b.value)} (limit ${b.limit})`}`);
  }

  const loadEnd = os.loadavg();
  const noisy = [['vlkernels', vlkReport?.otherCpu], ...Object.entries(peerReports).map(([id, r]) => [id, r.otherCpu])]
    .filter(([, x]) => x != null && x > NOISY);
  if (noisy.length) {
    console.log(`WARNING: other processes took CPU while these ran: ${noisy.map(([id, x]) => `${id} ${(100 * x).toFixed(0)}%`).join(', ')}; ` +
      're-run on a quiet machine before quoting those numbers');
  }

  // ---- sweeps and charts ------------------------------------------------------------------------------
  const stamp = new Date().toISOString().slice(0, 19).replace(/:/g, '-');
  const out = o.json ?? join(here, 'results', `search-${cfg.quick ? 'quick-' : ''}${stamp}.json`);
  const chartStem = (o.chart ?? out).replace(/\.(svg|json)$/i, '');
  const sweepPeers = PEERS.filter((p) => p.id !== 'roof' && peerReports[p.id] && !peerReports[p.id].skipped);
  const sweeps = [];
  for (const axis of cfg.sweep.axes) {
    const sweep = await runSweep(axis, cfg, vlkReport ? vlk.mod : undefined, sweepPeers, gallery, queries);
    sweep.chart = `${chartStem}${CHART_SUFFIX[axis]}.svg`;
    mkdirSync(dirname(sweep.chart), { recursive: true });
    writeFileSync(sweep.chart, sweepChart(sweep, machine, cfg));
    console.log(`chart: ${relative(process.cwd(), sweep.chart) || sweep.chart}`);
    sweeps.push(sweep);
  }

  // ---- JSON ----------------------------------------------------------------------------------------------
  mkdirSync(dirname(out), { recursive: true });
  const report = {
    operation: 'search',
    workload: { name: 'W1', n: cfg.n, d: cfg.d, q: cfg.q, ks: cfg.ks, metric: 'ip', gallerySeed: GALLERY_SEED, querySeed: QUERY_SEED, quick: cfg.quick, gflopPerBatch: flops / 1e9 },
    protocol: { repeats: cfg.repeats, latencyRuns: cfg.latencyRuns, hnswSubset: cfg.hnswSubset, timing: 'best of repeats, search only (index build and data loading excluded)' },
    date: new Date().toISOString(),
    machine,
    loadAverage: { start: loadStart, end: loadEnd },
    env: pickEnv(),
    vlkernels: vlkReport ?? { error: vlk.error },
    peers: peerReports,
    versions,
    tables,
    latency: latRows,
    bars,
    sweeps,
  };
  writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
  console.log(`\nJSON: ${relative(process.cwd(), out) || out}`);
  return vlkReport ? 0 : 1;
}

function loadVlk() {
  // require, not import(): on Node 20 a CommonJS module that throws while an ES module imports it is also
  // reported as uncaught, so a missing addon would end the run instead of leaving the peers to run.
  try {
    return { mod: createRequire(import.meta.url)('vlkernels') };
  } catch (e) {
    return { error: e.message.split('\n')[0] };
  }
}

/** Times searchSync and search (async) per k, best of cfg.repeats, plus Q = 1 latency. */
async function runVlk(vlk, g, q, cfg) {
  const gallery = { data: g, rows: cfg.n, cols: cfg.d };
  const queries = { data: q, rows: cfg.q, cols: cfg.d };
  const runs = [];
  let check;
  for (const k of cfg.ks) {
    const sync = await best(() => vlk.searchSync(queries, gallery, { k }), cfg.repeats);
    const async_ = await best(() => vlk.search(queries, gallery, { k }), cfg.repeats);
    runs.push({ k, q: cfg.q, sync: sync.stats, async: async_.stats });
    check ??= {
      k,
      indices: Array.from({ length: Math.min(CHECK_QUERIES, cfg.q) }, (_, i) => Array.from(sync.out.indices.subarray(i * k, (i + 1) * k))),
    };
  }
  const one = { data: q.subarray(0, cfg.d), rows: 1, cols: cfg.d };
  const latency = {
    sync: await lat(() => vlk.searchSync(one, gallery, { k: 10 }), cfg.latencyRuns),
    async: await lat(() => vlk.search(one, gallery, { k: 10 }), cfg.latencyRuns),
  };
  return { runs, latency, check };
}

async function best(fn, repeats) {
  const times = [];
  let out;
  for (let i = 0; i < repeats; i++) {
    out = undefined;
    const t = performance.now();
    out = await fn();
    times.push(performance.now() - t);
  }
  return { stats: { timesMs: times, bestMs: Math.min(...times) }, out };
}

async function lat(fn, runs) {
  for (let i = 0; i < 3; i++) await fn();
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return { k: 10, runs, medianMs: median(times), minMs: Math.min(...times) };
}

/**
 * Runs one peer in its own process; its last stdout line is its JSON report. `cfg` gives ks, repeats,
 * latencyRuns, hnswSubset and optionally check (queries echoed for agreement, default CHECK_QUERIES).
 */
function runPeer(peer, galleryPath, queryPath, cfg) {
  const script = join(here, 'peers', peer.file);
  const args = ['--gallery', galleryPath, '--queries', queryPath, '--ks', cfg.ks.join(','), '--repeats', String(cfg.repeats),
    '--latency-runs', String(cfg.latencyRuns), '--check', String(cfg.check ?? CHECK_QUERIES)];
  if (peer.subset) args.push('--subset', String(cfg.hnswSubset));
  const cmd = peer.kind === 'py' ? (process.env.PYTHON ?? 'python3') : process.execPath;
  const res = spawnSync(cmd, [script, ...args], {
    cwd: root,
    env: { ...process.env, ...peer.env },
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    timeout: 30 * 60 * 1000,
  });
  if (res.error) {
    return { name: peer.id, skipped: res.error.code === 'ENOENT' ? `${cmd} not found` : res.error.message };
  }
  const last = res.stdout.trim().split('\n').pop() ?? '';
  try {
    if (res.status !== 0) throw new Error(`exit ${res.status ?? res.signal}`);
    return JSON.parse(last);
  } catch (e) {
    const tail = (res.stderr || res.stdout).trim().split('\n').slice(-5).join(' / ');
    return { name: peer.id, skipped: `failed (${e.message}): ${tail}` };
  }
}

function noise(share) {
  return share == null ? '' : `, other processes ${(100 * share).toFixed(0)}% CPU${share > NOISY ? ' (NOISY)' : ''}`;
}

function pickEnv() {
  const keys = Object.keys(process.env).filter((k) => /^(OPENBLAS_|OMP_|MKL_|VLK_|UV_THREADPOOL)/.test(k)).sort();
  return Object.fromEntries(keys.map((k) => [k, process.env[k]]));
}

/**
 * Bare `--peers` (no list after it) means every peer: parseArgs needs a value for a string option, so a bare
 * flag becomes `--peers=all` before parsing; `--peers numpy,faiss` and `--peers=faiss` pass through.
 */
export function barePeers(argv) {
  return argv.map((a, i) => (a === '--peers' && (i + 1 >= argv.length || argv[i + 1].startsWith('-')) ? '--peers=all' : a));
}

const AXIS = {
  n: { title: 'time vs gallery size', label: 'gallery size N', varies: 'N' },
  q: { title: 'time vs batch size', label: 'queries per batch Q', varies: 'Q' },
  k: { title: 'time vs k', label: 'k (results per query)', varies: 'k' },
};

/**
 * One sweep: `axis` varies over cfg.sweep[axis] while the other sizes stay at W1's N and Q and k = SWEEP_K.
 * vlkernels' searchSync is timed in this process (one untimed call first); each peer runs in its own process
 * per point (one per sweep for k), and its per-call times give the median. Returns the JSON record.
 */
async function runSweep(axis, cfg, vlk, peers, gallery, queries) {
  const d = cfg.d;
  const values = [...cfg.sweep[axis]].sort((a, b) => a - b);
  const repeats = cfg.sweep.repeats;
  const fixed = { n: axis === 'n' ? undefined : cfg.n, q: axis === 'q' ? undefined : cfg.q, k: axis === 'k' ? undefined : SWEEP_K, d };
  const series = [];
  const started = performance.now();
  console.log(`\n## sweep ${AXIS[axis].varies} = ${values.map((v) => fmt(v)).join(', ')} ` +
    `(${Object.entries(fixed).filter(([, v]) => v != null).map(([k, v]) => `${k === 'k' ? 'k' : k.toUpperCase()} = ${fmt(v)}`).join(', ')}; median of ${repeats})`);

  // The inputs of one point: galleries and query sets come from the same seeded generator as W1's, so a
  // smaller N or Q is the first rows of W1's matrix, cached as its own .npy for the peers.
  const inputs = (v) => ({
    g: axis === 'n' && v !== cfg.n ? cachedUnitGaussian(v, d, GALLERY_SEED) : gallery,
    qs: axis === 'q' && v !== cfg.q ? cachedUnitGaussian(v, d, QUERY_SEED) : queries,
    n: axis === 'n' ? v : cfg.n,
    q: axis === 'q' ? v : cfg.q,
  });

  if (vlk) {
    const points = [];
    const before = cpuSnapshot();
    for (const v of values) {
      const { g, qs, n, q } = inputs(v);
      const k = axis === 'k' ? v : SWEEP_K;
      const args = [{ data: qs.data, rows: q, cols: d }, { data: g.data, rows: n, cols: d }, { k }];
      vlk.searchSync(...args);
      const times = [];
      for (let r = 0; r < repeats; r++) {
        const t = performance.now();
        vlk.searchSync(...args);
        times.push(performance.now() - t);
      }
      points.push({ x: v, medianMs: median(times), timesMs: times });
    }
    series.push({ id: 'vlkernels', system: `vlkernels ${vlk.info().version} searchSync`, points, otherCpu: foreignCpu(before, cpuSnapshot()) });
  }

  const skipped = {};
  for (const peer of peers) {
    const points = [];
    let system;
    const before = cpuSnapshot();
    const peerCfg = (ks, q) => ({ ks, repeats, latencyRuns: 1, hnswSubset: Math.min(cfg.hnswSubset, q), check: 0 });
    const take = (rep, v, k) => {
      const run = rep.runs?.find((r) => r.k === k);
      if (!run) return;
      system ??= rep.system;
      points.push({ x: v, medianMs: median(run.timesMs), timesMs: run.timesMs, ...(run.extrapolated ? { extrapolated: true, timedQueries: run.timedQueries } : {}) });
    };
    if (axis === 'k') {
      const rep = runPeer(peer, gallery.path, queries.path, peerCfg(values, cfg.q));
      if (rep.skipped) skipped[peer.id] = rep.skipped;
      else for (const v of values) take(rep, v, v);
    } else {
      for (const v of values) {
        const { g, qs, q } = inputs(v);
        const rep = runPeer(peer, g.path, qs.path, peerCfg([SWEEP_K], q));
        if (rep.skipped) skipped[peer.id] = `${AXIS[axis].varies} = ${v}: ${rep.skipped}`;
        else take(rep, v, SWEEP_K);
      }
    }
    if (points.length) series.push({ id: peer.id, system, points, otherCpu: foreignCpu(before, cpuSnapshot()) });
  }

  const headers = ['system', ...values.map((v) => `${AXIS[axis].varies} = ${fmt(v)}`), 'other CPU'];
  const rows = series.map((s) => [s.system, ...values.map((v) => {
    const p = s.points.find((x) => x.x === v);
    return p ? `${sig(p.medianMs)}${p.extrapolated ? '*' : ''}` : '-';
  }), s.otherCpu == null ? '-' : `${(100 * s.otherCpu).toFixed(0)}%${s.otherCpu > NOISY ? ' NOISY' : ''}`]);
  console.log(formatTable(headers, rows, ['l', ...values.map(() => 'r'), 'r']));
  if (series.some((s) => s.points.some((p) => p.extrapolated))) console.log('* hnswlib-node: a query subset timed, scaled to Q');
  for (const [id, why] of Object.entries(skipped)) console.log(`${id}: ${why}`);
  console.log(`(median ms per batched search; sweep took ${fmt((performance.now() - started) / 1e3, 1)} s)`);
  return { axis, varies: AXIS[axis].varies, fixed, values, repeats, timing: 'median of repeats, ms per batched search', series, skipped };
}

/** The SVG of one sweep: time (log) vs the swept size (log), one line per system, the machine in the subtitle. */
function sweepChart(sweep, machine, cfg) {
  const f = sweep.fixed;
  const sizes = [f.n != null && `N = ${fmt(f.n)}`, `D = ${f.d}`, f.q != null && `Q = ${fmt(f.q)}`, f.k != null && `k = ${f.k}`].filter(Boolean);
  const vlkLine = machine.isa ? `vlkernels ISA ${machine.isa}, ${machine.threads} threads` : 'vlkernels not loaded';
  const scaled = sweep.series.some((s) => s.points.some((p) => p.extrapolated));
  return renderLineChart({
    title: `Exact top-k search: ${AXIS[sweep.axis].title}${cfg.quick ? ' (quick)' : ''}`,
    subtitle: [
      `${machine.cpu}, ${machine.cores} cores; ${vlkLine}; ${new Date().toISOString().slice(0, 10)}`,
      `${sizes.join(', ')}, inner product, unit Gaussian rows; median of ${sweep.repeats} runs per point`,
      ...(scaled ? [`hnswlib-node (one thread, one query a call) timed on at most ${cfg.hnswSubset} queries, scaled to Q`] : []),
    ],
    x: { label: AXIS[sweep.axis].label, scale: 'log', ticks: sweep.values },
    y: { label: 'time per batched search', unit: 'ms', scale: 'log' },
    series: sweep.series.map((s) => ({
      name: s.system,
      emphasis: s.id === 'vlkernels',
      points: s.points.map((p) => [p.x, p.medianMs]),
    })),
  });
}
