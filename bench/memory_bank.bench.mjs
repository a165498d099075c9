// Memory-bank InfoNCE benchmark (bench): memoryInfoNce (MoCo's loss against a queue, forward +
// backward: dL/dqueries and dL/dkeys) with B = 128 queries, D = 1024, a MemoryBank of K = 2,048
// (AAHR's queue) and of K = 65,536 unit-Gaussian entries, against PyTorch CPU
// (bench/peers/torch_memory_info_nce.py: matmul + cat + cross_entropy + backward,
// torch.set_num_threads(2)) in the same run on the same data; checks the losses and gradients agree.
// `node bench/memory_bank.bench.mjs [--quick] [--repeats n] [--threads n] [--json path]`
// (or `npm run bench -- memory_bank ...`).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { cachedUnitGaussian } from './lib/data.mjs';
import { machineInfo } from './lib/machine.mjs';
import { fmt, formatTable, sig } from './lib/table.mjs';
import { upperMedian } from './lib/peer.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const median = upperMedian;

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
    console.log('node bench/memory_bank.bench.mjs [--quick] [--repeats n] [--threads n] [--json path]');
    return 0;
  }
  const b = 128;
  const d = 1024;
  const ks = values.quick ? [2048] : [2048, 65536];
  const tau = 0.07;
  const repeats = Number(values.repeats);
  const threads = Number(values.threads);
  const vlk = createRequire(import.meta.url)('vlkernels');
  const mi = machineInfo();
  console.log(`# memory_bank: memoryInfoNce forward + backward, B = ${b}, D = ${d}, K in {${ks.map((k) => fmt(k)).join(', ')}}, tau = ${tau}`);
  console.log(`machine: ${mi.cpu}, ${mi.cores} cores; vlkernels ${vlk.info().version}, ISA ${vlk.info().isa}, ${threads} threads`);
  console.log('(2 shared cores: other work on the machine makes these numbers noisy)');
  const qs = cachedUnitGaussian(b, d, 9101);
  const kk = cachedUnitGaussian(b, d, 9102);
  const rows = [];
  const runs = [];
  let allAgree = true;
  for (const k of ks) {
    const queue = cachedUnitGaussian(k, d, 9103 + k);
    const bank = new vlk.MemoryBank({ size: k, dim: d });
    bank.enqueue({ data: queue.data, rows: k, cols: d });
    const opts = { dim: d, temperature: tau, threads };
    // Small K runs in milliseconds: 4x the repeats, so the medians resist the shared machine's noise.
    const reps = k <= 4096 ? 4 * repeats : repeats;
    let r = await vlk.memoryInfoNce(qs.data, kk.data, bank, opts); // warm-up
    const times = [];
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      r = await vlk.memoryInfoNce(qs.data, kk.data, bank, opts);
      times.push(performance.now() - t0);
    }
    bank.close();
    const tVlk = median(times);
    const py = spawnSync(process.env.PYTHON ?? 'python3', [
      join(here, 'peers', 'torch_memory_info_nce.py'), '--queries', qs.path, '--keys', kk.path, '--queue', queue.path,
      '--tau', String(tau), '--repeats', String(reps), '--threads', String(threads),
    ], { encoding: 'utf8', maxBuffer: 1 << 26 });
    let peer = null;
    try {
      peer = JSON.parse(py.stdout.trim().split('\n').pop());
    } catch {
      console.log(`torch peer failed: ${py.stderr.slice(-500)}`);
    }
    // fwd: B x (K + 1) x D; bwd: dQ (B x K x D) + dK: ~ 2 x 2 B K D flops.
    const flops = 4 * b * (k + 1) * d;
    rows.push([`vlkernels memoryInfoNce, K = ${fmt(k)}`, fmt(tVlk, 1), fmt(flops / tVlk / 1e6, 1), '1.00', '']);
    const run = { k, vlkMs: times, loss: r.loss, peer: null, ratio: null, agree: null };
    if (peer && !peer.skipped) {
      const tPeer = median(peer.timesMs);
      const lossRel = Math.abs(peer.loss - r.loss) / Math.abs(peer.loss);
      let gErr = 0;
      let gMax = 0;
      for (const [name, ours] of [['dq', r.grads.queries], ['dk', r.grads.keys]]) {
        peer[name].forEach((x, i) => {
          gErr = Math.max(gErr, Math.abs(x - ours[i]));
          gMax = Math.max(gMax, Math.abs(x));
        });
      }
      const agree = lossRel < 1e-5 && gErr <= 1e-4 * gMax;
      allAgree &&= agree;
      rows.push([`  ${peer.system} (${peer.threads} threads)`, fmt(tPeer, 1), fmt(flops / tPeer / 1e6, 1), sig(tPeer / tVlk),
        `loss ${r.loss.toFixed(6)} vs ${peer.loss.toFixed(6)}, grads max |diff| / max |g| = ${(gErr / gMax).toExponential(1)}`]);
      Object.assign(run, { peer: { system: peer.system, threads: peer.threads, timesMs: peer.timesMs, loss: peer.loss }, ratio: tPeer / tVlk, agree });
    } else {
      rows.push([`  torch: ${peer?.skipped ?? 'failed'}`, '-', '-', '-', '']);
    }
    runs.push(run);
  }
  console.log(`\n${formatTable(['system', 'median ms', 'GFLOP/s', 'torch / vlkernels', 'check'], rows, ['l', 'r', 'r', 'r', 'l'])}`);
  console.log(`\nlosses and gradients agree with torch: ${allAgree}`);
  const out = values.json ?? join(here, 'results', `memory_bank-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), machine: mi, workload: { b, d, ks, tau, threads }, runs }, null, 2)}\n`);
  console.log(`\nJSON: ${out}`);
  return allAgree ? 0 : 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await main(process.argv.slice(2));
}
