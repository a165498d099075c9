// Training in Node (test/trainer.test.ts): on a planted composed-retrieval task (test/helpers/
// planted_cir.ts, fixed seed), a CombinerTrainer-fitted combiner lifts Recall@1 on held-out
// reference combinations at least 20 points above the training-free sum baseline; its weights
// round-trip through safetensors (and load in PyTorch when it is installed); with few triplets the
// two-hop heads (reverse modifications) beat the plain contrastive combiner on each of three task
// seeds (by >= 3 points on average); bad options throw.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CombinerTrainer, compose, composeSync, readSafetensorsSync, searchSync, VlkError, writeSafetensorsSync } from './helpers/lib';
import { plantedTask } from './helpers/planted_cir';

const dir = mkdtempSync(join(tmpdir(), 'vlk-trainer-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

function recallAt1(queries: Float32Array, task: ReturnType<typeof plantedTask>): number {
  const r = searchSync(queries, task.gallery, { k: 1, dim: task.dim, metric: 'cosine', exclude: task.test.reference });
  let hit = 0;
  for (let i = 0; i < task.test.n; i++) if (r.indices[i] === task.test.target[i]) hit++;
  return hit / task.test.n;
}

const Train = suite('CombinerTrainer on a planted composed-retrieval task');

Train('training lifts Recall@1 by at least 20 points over the sum baseline', async () => {
  const task = plantedTask();
  const d = task.dim;
  const sum = recallAt1(composeSync(task.test.image, task.test.text, { mode: 'sum', dim: d }), task);
  const trainer = new CombinerTrainer({ dim: d, seed: 7, lr: 1e-3, dropout: 0.1, temperature: 0.05, batchSize: 128, weightDecay: 0 });
  const t0 = performance.now();
  let seen = 0;
  const losses = await trainer.fit(task.train, { epochs: 40, onProgress: () => seen++ });
  const secs = (performance.now() - t0) / 1000;
  const trained = recallAt1(await compose(task.test.image, task.test.text, { weights: trainer.weights(), dim: d }), task);
  console.log(
    `  R@1 held-out: sum ${(100 * sum).toFixed(1)}, trained combiner ${(100 * trained).toFixed(1)}; loss ${losses[0].toFixed(3)} -> ${losses[losses.length - 1].toFixed(3)}; ${secs.toFixed(1)} s`,
  );
  assert.is(seen, 40 * Math.floor(task.train.n / 128));
  assert.ok(losses[losses.length - 1] < losses[0], 'the loss falls');
  assert.ok(trained >= sum + 0.2, `trained ${trained} vs sum ${sum}`);
  // Weights round-trip through safetensors with their PyTorch names and shapes.
  const file = join(dir, 'combiner.safetensors');
  await trainer.save(file);
  const back = readSafetensorsSync(file);
  const w = trainer.weights();
  assert.equal(back.tensors['combiner_layer.weight'].shape, [8 * d, 8 * d]);
  for (const [k, v] of Object.entries(w)) assert.equal(Array.from(back.tensors[k].data as Float32Array), Array.from(v), k);
  // PyTorch (the CLIP4Cir combiner, re-implemented in bench/peers/torch_combiner.py) loads them
  // and gives the same outputs as compose on the held-out pairs, when torch is installed.
  const ours = await compose(task.test.image, task.test.text, { weights: w, dim: d });
  const io = join(dir, 'io.safetensors');
  writeSafetensorsSync(io, {
    image: { shape: [task.test.n, d], data: task.test.image },
    text: { shape: [task.test.n, d], data: task.test.text },
    ours: { shape: [task.test.n, d], data: ours },
  });
  const py = spawnSync(process.env.PYTHON ?? 'python3', [join(__dirname, '..', 'bench', 'peers', 'torch_combiner.py'), file, io], {
    encoding: 'utf8',
  });
  const line = (py.stdout || '').trim().split('\n').pop() ?? '';
  if (line.startsWith('{')) {
    const r = JSON.parse(line);
    if (r.skipped) console.log(`  PyTorch parity: skipped (${r.skipped})`);
    else {
      console.log(`  PyTorch parity: max |torch - vlkernels| = ${r.maxAbsDiff.toExponential(2)} over ${r.rows} rows`);
      assert.ok(r.maxAbsDiff < 1e-5, `PyTorch differs by ${r.maxAbsDiff}`);
    }
  } else {
    console.log(`  PyTorch parity: skipped (${py.stderr?.trim().slice(-200) || 'python3 missing'})`);
  }
});

Train('two hops beat the plain contrastive combiner when triplets are few', async () => {
  // Harder variant: 8 values per slot, more noise, 150 training triplets (with reverse texts), on
  // three task seeds. Hop 1 also sees the targets through the reverse texts, so it learns from
  // combinations the plain combiner never gets as input (some held-out references among them).
  const margins: number[] = [];
  let twoHop: InstanceType<typeof CombinerTrainer> | undefined;
  let plain: InstanceType<typeof CombinerTrainer> | undefined;
  let task = plantedTask();
  let losses: number[] = [];
  for (const seed of [1001, 1002, 1003]) {
    task = plantedTask({ train: 150, values: 8, noise: 0.3, seed });
    const d = task.dim;
    const common = { dim: d, seed: 7, lr: 1e-3, dropout: 0.1, temperature: 0.05, batchSize: 64, weightDecay: 0 };
    const sum = recallAt1(composeSync(task.test.image, task.test.text, { mode: 'sum', dim: d }), task);
    plain = new CombinerTrainer(common);
    await plain.fit(task.train, { epochs: 60 });
    const rPlain = recallAt1(await plain.compose(task.test.image, task.test.text), task);
    twoHop = new CombinerTrainer({ ...common, twoHop: true });
    losses = await twoHop.fit(task.train, { epochs: 60 });
    const rTwo = recallAt1(await twoHop.compose(task.test.image, task.test.text), task);
    console.log(
      `  R@1 held-out (150 triplets, seed ${seed}): sum ${(100 * sum).toFixed(1)}, plain combiner ${(100 * rPlain).toFixed(1)}, two-hop ${(100 * rTwo).toFixed(1)}`,
    );
    assert.ok(losses[losses.length - 1] < losses[0]);
    assert.ok(rTwo >= sum + 0.2, `two-hop ${rTwo} vs sum ${sum}`);
    assert.ok(rTwo > rPlain, `two-hop ${rTwo} vs plain ${rPlain}`);
    margins.push(rTwo - rPlain);
  }
  const mean = margins.reduce((a, b) => a + b, 0) / margins.length;
  assert.ok(mean >= 0.03, `two-hop beats plain by ${(100 * mean).toFixed(1)} points on average (want >= 3)`);
  twoHop = twoHop!;
  plain = plain!;
  assert.is(twoHop.heads().length, 2);
  const file = join(dir, 'two-hop.safetensors');
  await twoHop.save(file);
  const back = readSafetensorsSync(file);
  assert.ok('hop1.combiner_layer.weight' in back.tensors && 'hop2.output_layer.bias' in back.tensors);
  const err = await plain.fit({ image: task.train.image, text: task.train.text, target: task.train.target }, { epochs: 1 }).then(() => null, (e) => e);
  assert.is(err, null);
  const missing = await twoHop.fit({ image: task.train.image, text: task.train.text, target: task.train.target }).then(() => null, (e) => e);
  assert.is((missing as VlkError).code, 'ERR_VLK_INVALID_ARG');
});

Train('bad options and data: typed errors', async () => {
  const code = async (fn: () => unknown): Promise<string> => {
    try {
      await fn();
    } catch (e) {
      assert.instance(e, VlkError);
      return (e as VlkError).code;
    }
    return 'none';
  };
  assert.is(await code(() => new CombinerTrainer({ dim: 0 })), 'ERR_VLK_INVALID_ARG');
  assert.is(await code(() => new CombinerTrainer({ dim: 4, dropout: 1 })), 'ERR_VLK_INVALID_ARG');
  assert.is(await code(() => new CombinerTrainer({ dim: 4, batchSize: 1 })), 'ERR_VLK_INVALID_ARG');
  const t = new CombinerTrainer({ dim: 4, projection: 8, hidden: 8 });
  assert.is(await code(() => t.fit({ image: new Float32Array(8), text: new Float32Array(8), target: new Float32Array(12) })), 'ERR_VLK_SHAPE');
  const ac = new AbortController();
  ac.abort();
  assert.is(
    await code(() => t.fit({ image: new Float32Array(8), text: new Float32Array(8), target: new Float32Array(8) }, { signal: ac.signal })),
    'ABORT_ERR',
  );
});

Train.run();
