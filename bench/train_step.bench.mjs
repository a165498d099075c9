// Combiner training-step benchmark (bench): batch 128, D = 512 (P = 2048, H = 4096), forward with
// dropout + contrastive loss + backward + AdamW; vlkernels CombinerTrainer against PyTorch CPU
// (bench/peers/torch_combiner_step.py) in the same run. `npm run bench -- train_step [--json path]`.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { machineInfo } from './lib/machine.mjs';
import { fmt, formatTable, sig } from './lib/table.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function main(argv) {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'string' }, steps: { type: 'string', default: '7' } } });
  const b = 128;
  const d = 512;
  const steps = Number(values.steps);
  const vlk = createRequire(import.meta.url)('vlkernels');
  const mi = machineInfo();
  console.log(`# combiner train step: batch ${b}, D ${d} (P ${4 * d}, H ${8 * d}), dropout 0.5, AdamW`);
  console.log(`machine: ${mi.cpu}, ${mi.cores} cores; vlkernels ${vlk.info().version}, ISA ${vlk.info().isa}, ${vlk.info().threads} threads`);
  const rnd = (n) => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
  const data = { image: rnd(b * d), text: rnd(b * d), target: rnd(b * d) };
  const trainer = new vlk.CombinerTrainer({ dim: d, batchSize: b });
  const times = [];
  await trainer.fit(data, { epochs: 1 });
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    await trainer.fit(data, { epochs: 1 });
    times.push(performance.now() - t0);
  }
  const py = spawnSync(process.env.PYTHON ?? 'python3', [join(here, 'peers', 'torch_combiner_step.py'), '--steps', String(steps)], { encoding: 'utf8' });
  let peer = null;
  try {
    peer = JSON.parse(py.stdout.trim().split('\n').pop());
  } catch {
    console.log(`torch peer failed: ${py.stderr.slice(-300)}`);
  }
  const tv = median(times);
  const rows = [['vlkernels CombinerTrainer step', fmt(tv, 1), '1.00']];
  let ratio = null;
  if (peer && !peer.skipped) {
    const tp = median(peer.timesMs);
    ratio = tp / tv;
    rows.push([`${peer.system} (${peer.threads} threads)`, fmt(tp, 1), sig(ratio)]);
  }
  console.log(`\n${formatTable(['system', 'median ms', 'time / vlkernels'], rows, ['l', 'r', 'r'])}`);
  console.log(`\n## bars\n${ratio === null ? 'SKIP' : ratio >= 1.5 ? 'PASS' : 'FAIL'}  train step >= 1.5x faster than PyTorch CPU: ${ratio === null ? 'no peer' : `${sig(ratio)}x`}`);
  const out = values.json ?? join(here, 'results', `train_step-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), machine: mi, vlkMs: times, peer, ratio }, null, 2)}\n`);
  console.log(`\nJSON: ${out}`);
  return ratio !== null && ratio >= 1.5 ? 0 : 1;
}
