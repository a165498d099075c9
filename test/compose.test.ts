// compose and composedSearch (test/compose.test.ts): every baseline against float64 formulas, the
// combiner head against a float64 re-implementation (weights named like the PyTorch combiner),
// sync and async; composedSearch equals compose + FlatIndex search and never returns the
// reference; bad weights name the tensor and the lengths.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CombinerTrainer, compose, composedSearch, composeSync, FlatIndex, rerank, VlkError } from './helpers/lib';
import { plantedTask } from './helpers/planted_cir';
import { gaussianMatrix, rng } from './helpers/random';

function norm(v: number[]): number[] {
  const n = Math.max(Math.hypot(...v), 1e-12);
  return v.map((x) => x / n);
}

function baseline(mode: string, xi: number[], xt: number[], a: number): number[] {
  const ni = norm(xi);
  const nt = norm(xt);
  switch (mode) {
    case 'image':
      return ni;
    case 'text':
      return nt;
    case 'sum':
      return norm(xi.map((x, j) => (1 - a) * x + a * xt[j]));
    case 'sum_normalized':
      return norm(ni.map((x, j) => (1 - a) * x + a * nt[j]));
    default: {
      const c = Math.min(1, Math.max(-1, ni.reduce((s, x, j) => s + x * nt[j], 0)));
      const om = Math.acos(c);
      const so = Math.sin(om);
      return norm(ni.map((x, j) => (Math.sin((1 - a) * om) / so) * x + (Math.sin(a * om) / so) * nt[j]));
    }
  }
}

function close(got: Float32Array, want: number[][], d: number, what: string, tol = 2e-6): void {
  for (let i = 0; i < want.length; i++) {
    for (let j = 0; j < d; j++) {
      assert.ok(Math.abs(got[i * d + j] - want[i][j]) <= tol, `${what}: row ${i} col ${j}: ${got[i * d + j]} vs ${want[i][j]}`);
    }
  }
}

// Random combiner weights (nn.Linear layout) for dims d, p, h.
function weights(d: number, p: number, h: number, seed: number): Record<string, Float32Array> {
  const r = rng(seed);
  const t = (n: number) => Float32Array.from({ length: n }, () => 0.6 * (2 * r() - 1));
  return {
    'text_projection_layer.weight': t(p * d),
    'text_projection_layer.bias': t(p),
    'image_projection_layer.weight': t(p * d),
    'image_projection_layer.bias': t(p),
    'combiner_layer.weight': t(h * 2 * p),
    'combiner_layer.bias': t(h),
    'dynamic_scalar.0.weight': t(h * 2 * p),
    'dynamic_scalar.0.bias': t(h),
    'dynamic_scalar.3.weight': t(h),
    'dynamic_scalar.3.bias': t(1),
    'output_layer.weight': t(d * h),
    'output_layer.bias': t(d),
    logit_scale: Float32Array.of(100), // ignored, as in a saved PyTorch state dict
  };
}

function combinerRef(w: Record<string, Float32Array>, xi: number[], xt: number[], d: number, p: number, h: number): number[] {
  const lin = (x: number[], name: string, nout: number) =>
    Array.from({ length: nout }, (_, o) => {
      let s = w[`${name}.bias`][o];
      for (let c = 0; c < x.length; c++) s += x[c] * w[`${name}.weight`][o * x.length + c];
      return s;
    });
  const relu = (v: number[]) => v.map((x) => Math.max(0, x));
  const c = [...relu(lin(xt, 'text_projection_layer', p)), ...relu(lin(xi, 'image_projection_layer', p))];
  const hh = relu(lin(c, 'combiner_layer', h));
  const g = relu(lin(c, 'dynamic_scalar.0', h));
  const lam = 1 / (1 + Math.exp(-lin(g, 'dynamic_scalar.3', 1)[0]));
  const y = lin(hh, 'output_layer', d).map((v, j) => v + lam * xt[j] + (1 - lam) * xi[j]);
  return norm(y);
}

const Compose = suite('compose: baselines and the combiner');

Compose('baselines against float64, sync and async', async () => {
  for (const [b, d] of [[1, 1], [3, 7], [17, 64]]) {
    const im = gaussianMatrix(b, d, b + d);
    const tx = gaussianMatrix(b, d, b * d + 1);
    const rows = (m: Float32Array) => Array.from({ length: b }, (_, i) => Array.from(m.subarray(i * d, i * d + d)));
    for (const mode of ['image', 'text', 'sum', 'sum_normalized', 'slerp'] as const) {
      for (const alpha of [0, 0.3, 1]) {
        if (d === 1 && mode === 'slerp') continue; // parallel vectors: covered by the linear fallback
        const want = rows(im).map((xi, i) => baseline(mode, xi, rows(tx)[i], alpha));
        close(composeSync(im, tx, { mode, alpha, dim: d }), want, d, `${mode} ${alpha} ${b}x${d}`);
        close(await compose({ data: im, rows: b, cols: d }, { data: tx, rows: b, cols: d }, { mode, alpha }), want, d, `${mode} async`);
      }
    }
  }
});

Compose('the combiner against a float64 re-implementation', async () => {
  const d = 6;
  const p = 9;
  const h = 11;
  const w = weights(d, p, h, 42);
  const b = 5;
  const im = gaussianMatrix(b, d, 1);
  const tx = gaussianMatrix(b, d, 2);
  const want = Array.from({ length: b }, (_, i) =>
    combinerRef(w, Array.from(im.subarray(i * d, i * d + d)), Array.from(tx.subarray(i * d, i * d + d)), d, p, h),
  );
  close(composeSync(im, tx, { weights: w, dim: d }), want, d, 'combiner sync', 1e-5);
  close(await compose(im, tx, { weights: w, dim: d, threads: 1 }), want, d, 'combiner async', 1e-5);
});

Compose('bad weights and options: typed errors naming the tensor', () => {
  const d = 4;
  const w = weights(d, 3, 5, 7);
  const im = new Float32Array(2 * d).fill(0.5);
  const code = (fn: () => unknown, re?: RegExp): string => {
    try {
      fn();
    } catch (e) {
      assert.instance(e, VlkError);
      if (re) assert.match((e as Error).message, re);
      return (e as VlkError).code;
    }
    return 'none';
  };
  assert.is(code(() => composeSync(im, im, { weights: { ...w, 'combiner_layer.weight': new Float32Array(3) }, dim: d }), /combiner_layer\.weight.*length 3, expected 30/), 'ERR_VLK_SHAPE');
  const missing = { ...w };
  delete missing['output_layer.bias'];
  assert.is(code(() => composeSync(im, im, { weights: missing, dim: d }), /output_layer\.bias/), 'ERR_VLK_TYPE');
  assert.is(code(() => composeSync(im, im, { mode: 'avg' as never, dim: d })), 'ERR_VLK_INVALID_ARG');
  assert.is(code(() => composeSync(im, im, { mode: 'sum', alpha: 2, dim: d })), 'ERR_VLK_INVALID_ARG');
  assert.is(code(() => composeSync(im, new Float32Array(3 * d), { dim: d })), 'ERR_VLK_SHAPE');
  assert.is(code(() => composeSync(im, Float32Array.of(NaN, 0, 0, 0, 0, 0, 0, 0), { dim: d })), 'ERR_VLK_NON_FINITE');
});

Compose.run();

const Search = suite('composedSearch');

Search('equals compose + search, and never returns the reference', async () => {
  const d = 16;
  const n = 800;
  const gallery = gaussianMatrix(n, d, 3);
  using index = new FlatIndex({ dim: d, metric: 'cosine' });
  const ids = Float64Array.from({ length: n }, (_, i) => 1000 + i);
  index.add(gallery, ids);
  const b = 12;
  const refRows = Array.from({ length: b }, (_, i) => (i * 37) % n);
  const im = new Float32Array(b * d);
  refRows.forEach((r, i) => im.set(gallery.subarray(r * d, r * d + d), i * d));
  const tx = gaussianMatrix(b, d, 4).map((x) => 0.1 * x);
  const refIds = refRows.map((r) => 1000 + r);
  const got = await composedSearch(index, im, tx, { k: 5, mode: 'sum', alpha: 0.2, excludeIds: refIds });
  const q = composeSync(im, tx, { mode: 'sum', alpha: 0.2, dim: d });
  const want = index.searchSync(q, { k: 5, filter: { exclude: refIds } });
  assert.equal(Array.from(got.ids, Number), Array.from(want.ids, Number));
  for (let i = 0; i < b; i++) assert.not.ok(Array.from(got.ids.subarray(i * 5, i * 5 + 5), Number).includes(refIds[i]));
  // Without the exclusion the reference (nearly the query itself) would come first.
  const plain = index.searchSync(q, { k: 1 });
  assert.ok(refIds.filter((id, i) => plain.ids[i] === id).length >= b - 1);
});

// GeneCIS's protocol (conditional similarity): each query (an image plus a condition text) ranks
// its own small candidate set (10 to 15 images, the target among them) by the condition-aware
// query combiner(image, condition); Recall@1/2/3 over those sets. compose + rerank (per-query
// candidate lists) is the whole pipeline.
Search('GeneCIS-style per-query candidate sets: compose + rerank equals a float64 ranking; a trained combiner beats sum', async () => {
  const task = plantedTask({ train: 1500, test: 200, seed: 77 });
  const d = task.dim;
  const u = rng(78);
  const offsets = new Int32Array(task.test.n + 1);
  const rows: number[] = [];
  for (let q = 0; q < task.test.n; q++) {
    const m = 10 + Math.floor(u() * 6);
    const set = new Set<number>([task.test.target[q]]);
    while (set.size < m) {
      const c = Math.floor(u() * task.combos);
      if (c !== task.test.reference[q]) set.add(c);
    }
    rows.push(...[...set].sort(() => u() - 0.5));
    offsets[q + 1] = rows.length;
  }
  const lists = { offsets, rows: Int32Array.from(rows) };
  const recall = async (queries: Float32Array) => {
    const r = await rerank(queries, task.gallery, lists, { k: 3, metric: 'cosine', dim: d });
    // float64 ranking of the same candidates (ties: lower row), top 3.
    for (let q = 0; q < task.test.n; q++) {
      const cand = rows.slice(offsets[q], offsets[q + 1]);
      const qv = queries.subarray(q * d, q * d + d);
      const cos = (c: number) => {
        let dot = 0, nq = 0, ng = 0;
        for (let j = 0; j < d; j++) {
          const g = task.gallery[c * d + j];
          dot += qv[j] * g;
          nq += qv[j] * qv[j];
          ng += g * g;
        }
        return dot / Math.sqrt(nq * ng);
      };
      const want = cand.map((c) => [cos(c), c]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, 3).map((x) => x[1]);
      assert.equal(Array.from(r.indices.subarray(q * 3, q * 3 + 3)), want, `query ${q}`);
    }
    const at = (k: number) => {
      let hit = 0;
      for (let q = 0; q < task.test.n; q++) if (Array.from(r.indices.subarray(q * 3, q * 3 + k)).includes(task.test.target[q])) hit++;
      return hit / task.test.n;
    };
    return [at(1), at(2), at(3)];
  };
  const sum = await recall(composeSync(task.test.image, task.test.text, { mode: 'sum', dim: d }));
  const trainer = new CombinerTrainer({ dim: d, seed: 3, lr: 1e-3, dropout: 0.1, temperature: 0.05, batchSize: 128, weightDecay: 0 });
  await trainer.fit(task.train, { epochs: 15 });
  const trained = await recall(await compose(task.test.image, task.test.text, { weights: trainer.weights(), dim: d }));
  const fmt = (r: number[]) => r.map((x) => (100 * x).toFixed(1)).join(' / ');
  console.log(`  GeneCIS-style R@1/2/3 over 10-15 candidates: sum ${fmt(sum)}, trained combiner ${fmt(trained)}`);
  assert.ok(trained[0] >= sum[0] + 0.2, `trained ${trained[0]} vs sum ${sum[0]}`);
  assert.ok(trained[0] <= trained[1] && trained[1] <= trained[2]);
});

Search('combiner weights, filters and errors through the one native call', async () => {
  const d = 8;
  const n = 300;
  const gallery = gaussianMatrix(n, d, 11);
  using index = new FlatIndex({ dim: d, metric: 'ip' });
  index.add(gallery);
  const b = 9;
  const im = gaussianMatrix(b, d, 12);
  const tx = gaussianMatrix(b, d, 13);
  const w = weights(d, 12, 20, 14);
  const excl = Array.from({ length: b }, (_, i) => (i % 3 === 0 ? null : i * 7));
  const got = await composedSearch(index, im, tx, { k: 7, weights: w, excludeIds: excl });
  const want = index.searchSync(composeSync(im, tx, { weights: w, dim: d }), { k: 7, filter: { exclude: excl } });
  assert.equal(Array.from(got.ids as Float64Array), Array.from(want.ids as Float64Array));
  assert.equal(Array.from(got.scores), Array.from(want.scores));
  assert.is(got.count, b);
  const code = async (p: Promise<unknown>) => p.then(() => 'none', (e) => (e as VlkError).code);
  assert.is(await code(composedSearch(index, im, tx, { k: 0 })), 'ERR_VLK_INVALID_K');
  assert.is(await code(composedSearch(index, gaussianMatrix(b, 4, 1), gaussianMatrix(b, 4, 2), { k: 3, dim: 4 })), 'ERR_VLK_DIM_MISMATCH');
  assert.is(await code(composedSearch(index, im, tx.subarray(0, 8 * d), { k: 3 })), 'ERR_VLK_SHAPE');
  assert.is(await code(composedSearch({} as never, im, tx, { k: 3 })), 'ERR_VLK_TYPE');
  const bad = { ...w, 'combiner_layer.weight': new Float32Array(3) };
  const e = await composedSearch(index, im, tx, { k: 3, weights: bad }).then(() => null, (x) => x as VlkError);
  assert.is(e!.code, 'ERR_VLK_SHAPE');
  assert.match(e!.message, /combiner_layer\.weight/);
  const ac = new AbortController();
  ac.abort();
  assert.is(await code(composedSearch(index, im, tx, { k: 3, signal: ac.signal })), 'ABORT_ERR');
  index.close();
  assert.is(await code(composedSearch(index, im, tx, { k: 3 })), 'ERR_VLK_INVALID_ARG');
});

Search.run();
