// CLIP-loss benchmark (bench): clipLoss (seed 003's symmetric InfoNCE, forward + backward: dL/dimages,
// dL/dtexts, dL/dt) with B = 256 and B = 1,024 unit-Gaussian pairs, D = 512, t = ln(1 / 0.07), against
// PyTorch CPU autograd (bench/peers/torch_clip_loss.py, torch.set_num_threads(2)) in the same run on
// the same data; checks the losses and gradients agree.
// `node bench/clip_loss.bench.mjs [--quick] [--repeats n] [--threads n] [--json path]`
// (or `npm run bench -- clip_loss ...`).
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
    console.log('node bench/clip_loss.bench.mjs [--quick] [--repeats n] [--threads n] [--json path]');
    return 0;
  }
  const d = 512;
  const bs = values.quick ? [256] : [256, 1024];
  const t = Math.log(1 / 0.07);
  const repeats = Number(values.repeats);
  const threads = Number(values.threads);
  const vlk = createRequire(import.meta.url)('vlkernels');
  const mi = machineInfo();
  console.log(`# clip_loss: clipLoss forward + backward, B in {${bs.map((b) => fmt(b)).join(', ')}}, D = ${d}, t = ln(1/0.07)`);
  console.log(`machine: ${mi.cpu}, ${mi.cores} cores; vlkernels ${vlk.info().version}, ISA ${vlk.info().isa}, ${threads} threads`);
  console.log('(2 shared cores: other work on the machine makes these numbers noisy)');
  const rows = [];
  const runs = [];
  let allAgree = true;
  for (const b of bs) {
    const im = cachedUnitGaussian(b, d, 9201 + b);
    const tx = cachedUnitGaussian(b, d, 9202 + b);
    const opts = { dim: d, logitScale: t, threads };
    const reps = b <= 256 ? 4 * repeats : repeats;
    let r = await vlk.clipLoss(im.data, tx.data, opts); // warm-up
    const times = [];
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      r = await vlk.clipLoss(im.data, tx.data, opts);
      times.push(performance.now() - t0);
    }
    const tVlk = median(times);
    const py = spawnSync(process.env.PYTHON ?? 'python3', [
      join(here, 'peers', 'torch_clip_loss.py'), '--images', im.path, '--texts', tx.path,
      '--logit-scale', String(t), '--repeats', String(reps), '--threads', String(threads),
    ], { encoding: 'utf8', maxBuffer: 1 << 26 });
    let peer = null;
    try {
      peer = JSON.parse(py.stdout.trim().split('\n').pop());
    } catch {
      console.log(`torch peer failed: ${py.stderr.slice(-500)}`);
    }
    // S = U V^T, dU = dS V, dV = dS^T U: 3 x 2 B^2 D flops.
    const flops = 6 * b * b * d;
    rows.push([`vlkernels clipLoss, B = ${fmt(b)}`, fmt(tVlk, 2), fmt(flops / tVlk / 1e6, 1), '1.00', '']);
    const run = { b, vlkMs: times, loss: r.loss, dLogitScale: r.dLogitScale, peer: null, ratio: null, agree: null };
    if (peer && !peer.skipped) {
      const tPeer = median(peer.timesMs);
      const lossRel = Math.abs(peer.loss - r.loss) / Math.abs(peer.loss);
      const dtRel = Math.abs(peer.dt - r.dLogitScale) / Math.max(Math.abs(peer.dt), 1e-12);
      let gErr = 0;
      let gMax = 0;
      for (const [name, ours] of [['di', r.dImages], ['dtx', r.dTexts]]) {
        peer[name].forEach((x, i) => {
          gErr = Math.max(gErr, Math.abs(x - ours[i]));
          gMax = Math.max(gMax, Math.abs(x));
        });
      }
      // torch accumulates its cross-entropy in fp32, vlkernels in float64: agreement to fp32 level.
      const agree = lossRel < 1e-5 && dtRel < 1e-3 && gErr <= 1e-4 * gMax;
      allAgree &&= agree;
      rows.push([`  ${peer.system} (${peer.threads} threads)`, fmt(tPeer, 2), fmt(flops / tPeer / 1e6, 1), sig(tPeer / tVlk),
        `loss ${r.loss.toFixed(6)} vs ${peer.loss.toFixed(6)}, dt rel ${dtRel.toExponential(1)}, grads max |diff| / max |g| = ${(gErr / gMax).toExponential(1)}`]);
      Object.assign(run, { peer: { system: peer.system, threads: peer.threads, timesMs: peer.timesMs, loss: peer.loss, dt: peer.dt }, ratio: tPeer / tVlk, agree });
    } else {
      rows.push([`  torch: ${peer?.skipped ?? 'failed'}`, '-', '-', '-', '']);
    }
    runs.push(run);
  }
  console.log(`\n${formatTable(['system', 'median ms', 'GFLOP/s', 'torch / vlkernels', 'check'], rows, ['l', 'r', 'r', 'r', 'l'])}`);
  console.log(`\nlosses and gradients agree with torch: ${allAgree}`);
  const out = values.json ?? join(here, 'results', `clip_loss-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), machine: mi, workload: { bs, d, logitScale: t, threads }, runs }, null, 2)}\n`);
  console.log(`\nJSON: ${out}`);
  return allAgree ? 0 : 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await main(process.argv.slice(2));
}
