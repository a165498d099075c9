// Token-max search benchmark (bench): 20,000 targets x 32 tokens x 256 (unit-Gaussian tokens),
// 1,000 queries, k = 10, inner product; vlkernels tokenMaxSearch (precision 'exact', and 'bf16': a
// bf16 scan of the tokens converted for the call, then an exact fp32 re-score, whose results must
// equal the fp32 run's bit for bit) against PyTorch CPU (chunked einsum + amax + topk,
// bench/peers/torch_token_max.py) in the same run, same data.
// `npm run bench -- token_max_search [--quick] [--repeats n] [--json path]`.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cachedUnitGaussian } from './lib/data.mjs';
import { machineInfo } from './lib/machine.mjs';
import { fmt, formatTable, sig } from './lib/table.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

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
    console.log('npm run bench -- token_max_search [--quick] [--repeats n] [--json path]');
    return 0;
  }
  const targets = values.quick ? 2000 : 20000;
  const tokens = 32;
  const d = 256;
  const q = values.quick ? 200 : 1000;
  const k = 10;
  const repeats = Number(values.repeats);
  const vlk = createRequire(import.meta.url)('vlkernels');
  const mi = machineInfo();
  console.log(`# token_max_search: ${fmt(targets)} targets x ${tokens} tokens x ${d}, ${fmt(q)} queries, k = ${k}, ip`);
  console.log(`machine: ${mi.cpu}, ${mi.cores} cores; vlkernels ${vlk.info().version}, ISA ${vlk.info().isa}, ${vlk.info().threads} threads`);
  const g = cachedUnitGaussian(targets * tokens, d, 4242);
  const qs = cachedUnitGaussian(q, d, 2424);
  const gallery = { data: g.data, dims: [targets, tokens, d] };
  const queries = { data: qs.data, rows: q, cols: d };
  let result = await vlk.tokenMaxSearch(queries, gallery, { k }); // warm-up
  let resultBf16 = await vlk.tokenMaxSearch(queries, gallery, { k, precision: 'bf16' });
  const times = [];
  const timesBf16 = [];
  // Interleaved, so both precisions see the same machine conditions.
  for (let r = 0; r < repeats; r++) {
    let t0 = performance.now();
    result = await vlk.tokenMaxSearch(queries, gallery, { k });
    times.push(performance.now() - t0);
    t0 = performance.now();
    resultBf16 = await vlk.tokenMaxSearch(queries, gallery, { k, precision: 'bf16' });
    timesBf16.push(performance.now() - t0);
  }
  const tVlk = median(times);
  const tBf16 = median(timesBf16);
  const bytes = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  const identical =
    bytes(result.indices).equals(bytes(resultBf16.indices)) &&
    bytes(result.scores).equals(bytes(resultBf16.scores)) &&
    bytes(result.counts).equals(bytes(resultBf16.counts));
  const py = spawnSync(process.env.PYTHON ?? 'python3', [
    join(here, 'peers', 'torch_token_max.py'), '--gallery', g.path, '--queries', qs.path, '--tokens', String(tokens),
    '--k', String(k), '--repeats', String(Math.max(3, Math.min(repeats, 5))),
  ], { encoding: 'utf8', maxBuffer: 1 << 26 });
  let peer = null;
  try {
    peer = JSON.parse(py.stdout.trim().split('\n').pop());
  } catch {
    console.log(`torch peer failed: ${py.stderr.slice(-500)}`);
  }
  const flops = 2 * q * targets * tokens * d;
  const rows = [
    [`vlkernels tokenMaxSearch (${vlk.info().threads} threads)`, fmt(tVlk, 1), fmt(flops / tVlk / 1e6, 1), '1.00'],
    [`vlkernels tokenMaxSearch, precision 'bf16' (${vlk.info().threads} threads)`, fmt(tBf16, 1), fmt(flops / tBf16 / 1e6, 1), sig(tBf16 / tVlk)],
  ];
  let ratio = null;
  let agree = null;
  if (peer && !peer.skipped) {
    const tPeer = median(peer.timesMs);
    ratio = tPeer / tVlk;
    rows.push([`${peer.system} (${peer.threads} threads)`, fmt(tPeer, 1), fmt(flops / tPeer / 1e6, 1), sig(tPeer / tVlk)]);
    agree = peer.check.every((ids, i) => ids.every((id, j) => id === result.indices[i * k + j]));
  } else if (peer?.skipped) {
    rows.push([`torch: skipped (${peer.skipped})`, '-', '-', '-']);
  }
  console.log(`\n${formatTable(['system', 'median ms', 'GFLOP/s', 'time / vlkernels'], rows, ['l', 'r', 'r', 'r'])}`);
  console.log(`\nprecision 'bf16' vs fp32: ${sig(tVlk / tBf16)}x as fast; identical: ${identical}`);
  if (peer && !peer.skipped) console.log(`PyTorch time / bf16 time: ${sig(median(peer.timesMs) / tBf16)}`);
  if (agree !== null) console.log(`top-${k} of the first 8 queries agree with torch: ${agree}`);
  const pass = ratio !== null && ratio >= 3 && identical;
  console.log(`\n## bars\n${ratio === null ? 'SKIP' : ratio >= 3 ? 'PASS' : 'FAIL'}  tokenMaxSearch >= 3x faster than PyTorch CPU: ${ratio === null ? 'no peer' : `${sig(ratio)}x`}`);
  console.log(`${identical ? 'PASS' : 'FAIL'}  precision 'bf16' returns the fp32 results bit for bit (indices, scores, counts): ${identical}`);
  const out = values.json ?? join(here, 'results', `token_max_search-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), machine: mi, workload: { targets, tokens, d, q, k }, vlkMs: times, vlkBf16Ms: timesBf16, bf16Identical: identical, peer, ratio, agree }, null, 2)}\n`);
  console.log(`\nJSON: ${out}`);
  return pass ? 0 : 1;
}
