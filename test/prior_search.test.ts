// Prior-fused search and combinePriors (test/prior_search.test.ts): priorSearch returns exactly the
// top-k of final = s + lambda_q prior_j of a float64 brute force written here (bit for bit on
// integer-valued inputs with planted ties; within tolerance on Gaussian cosine inputs), including
// items a plain top-k would have cut; lambda 0 equals search; per-query lambda; threads 1 vs 2;
// sync vs async; abort; typed errors; combinePriors against a float64 z-score reference.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { combinePriors, priorSearch, priorSearchSync, searchSync, VlkError } from './helpers/lib';
import { gaussianMatrix, rng } from './helpers/random';

function intMatrix(rows: number, cols: number, seed: number, span = 3): Float32Array {
  const u = rng(seed);
  return Float32Array.from({ length: rows * cols }, () => Math.floor(u() * (2 * span + 1)) - span);
}

function finalScores(q: Float32Array, qi: number, g: Float32Array, n: number, d: number, cosine: boolean,
  prior: Float32Array, lambda: number, f32: boolean): Float64Array {
  const out = new Float64Array(n);
  let qn = 0;
  for (let c = 0; c < d; c++) qn += q[qi * d + c] ** 2;
  for (let j = 0; j < n; j++) {
    let s = 0;
    let gn = 0;
    for (let c = 0; c < d; c++) {
      s += q[qi * d + c] * g[j * d + c];
      gn += g[j * d + c] ** 2;
    }
    if (cosine) s = qn > 0 && gn > 0 ? s / Math.sqrt(qn * gn) : 0;
    out[j] = f32 ? Math.fround(Math.fround(s) + Math.fround(lambda * prior[j])) : s + lambda * prior[j];
  }
  return out;
}

function order(s: ArrayLike<number>): number[] {
  return Array.from({ length: s.length }, (_, i) => i).sort((a, b) => s[b] - s[a] || a - b);
}

function code(f: () => unknown, want: string, what: string) {
  try {
    f();
    assert.unreachable(what);
  } catch (e) {
    assert.instance(e, VlkError, what);
    assert.is((e as VlkError).code, want, `${what}: ${(e as Error).message}`);
  }
}

const test = suite('priorSearch');

test('integer inputs: exact top-k of s + lambda * prior (ties by lower index), per-query lambda', () => {
  for (const [nq, n, k] of [[1, 1, 1], [7, 7, 7], [7, 7, 2], [1, 1000, 10], [7, 1000, 33]]) {
    const d = 5;
    const qs = intMatrix(nq, d, nq + n + k);
    const g = intMatrix(n, d, n + 7, 1);
    const u = rng(n + 3);
    const prior = Float32Array.from({ length: n }, () => Math.floor(u() * 9) * 0.25);
    const lambdas = Float32Array.from({ length: nq }, (_, i) => [0, 0.5, 2, 8, 0.25, 1, 4][i % 7]);
    for (const lam of [lambdas, 1.5]) {
      const res = priorSearchSync({ data: qs, rows: nq, cols: d }, { data: g, rows: n, cols: d }, { k, prior, priorWeight: lam, threads: 2 });
      assert.is(res.k, k);
      for (let q = 0; q < nq; q++) {
        const l = typeof lam === 'number' ? lam : lam[q];
        const ref = finalScores(qs, q, g, n, d, false, prior, l, true);
        const want = order(ref).slice(0, k);
        assert.equal(Array.from(res.indices.subarray(q * k, (q + 1) * k)), want, `Q=${nq} N=${n} k=${k} q=${q}`);
        assert.equal(Array.from(res.scores.subarray(q * k, (q + 1) * k)), want.map((j) => ref[j]));
      }
    }
  }
});

test('the prior brings in items a truncated relevance list would have lost', () => {
  const n = 1000, d = 8, k = 5;
  const qs = intMatrix(1, d, 5);
  const g = intMatrix(n, d, 6);
  const prior = new Float32Array(n);
  prior[999] = 1000; // the last row, far from the top of the relevance order
  const plain = searchSync(qs, g, { k: 100, dim: d });
  assert.not.ok(Array.from(plain.indices).includes(999), 'row 999 is outside the plain top 100');
  const res = priorSearchSync(qs, g, { k, prior, priorWeight: 1, dim: d });
  assert.is(res.indices[0], 999);
});

test('lambda 0 equals search (cosine and ip, D <= 256)', () => {
  const nq = 7, n = 1000, d = 33, k = 12;
  const qs = gaussianMatrix(nq, d, 71);
  const g = gaussianMatrix(n, d, 72);
  const prior = gaussianMatrix(1, n, 73);
  for (const metric of ['cosine', 'ip'] as const) {
    const a = priorSearchSync(qs, g, { k, prior, priorWeight: 0, metric, dim: d });
    const b = searchSync(qs, g, { k, metric, dim: d });
    assert.equal(Array.from(a.indices), Array.from(b.indices), metric);
    assert.equal(Array.from(a.scores), Array.from(b.scores), metric);
  }
});

test('Gaussian cosine: top-k of the float64 final score; threads 1 vs 2; sync equals async', async () => {
  const nq = 7, n = 1000, d = 300, k = 20;
  const qs = gaussianMatrix(nq, d, 81);
  const g = gaussianMatrix(n, d, 82);
  g.copyWithin(900 * d, 4 * d, 5 * d); // duplicate rows 4 and 900
  const prior = gaussianMatrix(1, n, 83);
  const lam = Float32Array.from({ length: nq }, (_, i) => 0.05 * i);
  const opts = { k, prior, priorWeight: lam, metric: 'cosine' as const, dim: d };
  const a = priorSearchSync(qs, g, { ...opts, threads: 1 });
  const b = priorSearchSync(qs, g, { ...opts, threads: 2 });
  const c = await priorSearch(qs, g, { ...opts, threads: 2 });
  assert.equal(Array.from(b.indices), Array.from(a.indices));
  assert.equal(Array.from(b.scores), Array.from(a.scores));
  assert.equal(Array.from(c.indices), Array.from(a.indices));
  assert.equal(Array.from(c.scores), Array.from(a.scores));
  for (let q = 0; q < nq; q++) {
    const ref = finalScores(qs, q, g, n, d, true, prior, lam[q], false);
    const got = Array.from(a.indices.subarray(q * k, (q + 1) * k));
    const kth = Math.min(...got.map((j) => ref[j]));
    for (let j = 0; j < k; j++) assert.ok(Math.abs(a.scores[q * k + j] - ref[got[j]]) < 1e-5, `score q=${q}`);
    const inTop = new Set(got);
    for (let j = 0; j < n; j++) if (!inTop.has(j)) assert.ok(ref[j] <= kth + 1e-5, `item ${j} missed for q=${q}`);
    if (got.includes(900)) assert.ok(got.indexOf(4) === got.indexOf(900) - 1, 'duplicate order');
  }
});

test('k > N clamps or throws; abort; typed errors', async () => {
  const qs = gaussianMatrix(2, 4, 91);
  const g = gaussianMatrix(6, 4, 92);
  const prior = new Float32Array(6).fill(1);
  const base = { k: 3, prior, priorWeight: 0.1, dim: 4 };
  code(() => priorSearchSync(qs, g, { ...base, k: 7 }), 'ERR_VLK_INVALID_K', 'k > N');
  assert.is(priorSearchSync(qs, g, { ...base, k: 7, clamp: true }).k, 6);
  code(() => priorSearchSync(qs, g, { ...base, k: 0 }), 'ERR_VLK_INVALID_K', 'k 0');
  code(() => priorSearchSync(qs, g, { ...base, prior: new Float32Array(5) }), 'ERR_VLK_SHAPE', 'prior length');
  code(() => priorSearchSync(qs, g, { ...base, prior: [1, 2] as never }), 'ERR_VLK_TYPE', 'prior type');
  code(() => priorSearchSync(qs, g, { ...base, priorWeight: new Float32Array(3) }), 'ERR_VLK_SHAPE', 'lambda length');
  code(() => priorSearchSync(qs, g, { ...base, priorWeight: NaN }), 'ERR_VLK_NON_FINITE', 'lambda NaN');
  code(() => priorSearchSync(qs, g, { ...base, priorWeight: Float32Array.of(1, Infinity) }), 'ERR_VLK_NON_FINITE', 'lambda Inf');
  code(() => priorSearchSync(qs, g, { ...base, prior: Float32Array.of(1, 2, NaN, 4, 5, 6) }), 'ERR_VLK_NON_FINITE', 'prior NaN');
  code(() => priorSearchSync(qs, g, { ...base, prior: new Float32Array(6).fill(1e30), priorWeight: 1e30 }), 'ERR_VLK_NON_FINITE', 'overflow');
  code(() => priorSearchSync(qs, g, { ...base, metric: 'l2' as never }), 'ERR_VLK_INVALID_ARG', 'l2');
  const bad = Float32Array.from(g);
  bad[3] = NaN;
  code(() => priorSearchSync(qs, bad, base), 'ERR_VLK_NON_FINITE', 'NaN gallery');
  const ac = new AbortController();
  ac.abort();
  try {
    await priorSearch(qs, g, { ...base, signal: ac.signal });
    assert.unreachable('aborted');
  } catch (e) {
    assert.is((e as Error).name, 'AbortError');
  }
  const big = gaussianMatrix(200_000, 64, 93);
  const ac2 = new AbortController();
  const p = priorSearch(gaussianMatrix(64, 64, 94), big, { k: 10, prior: new Float32Array(200_000), priorWeight: 1, dim: 64, signal: ac2.signal });
  ac2.abort();
  try {
    await p;
    assert.unreachable('aborted in flight');
  } catch (e) {
    assert.is((e as Error).name, 'AbortError');
  }
});

test('combinePriors: z-scored per prior, averaged (float64 reference), all input forms', () => {
  const n = 513;
  const p = [gaussianMatrix(1, n, 101), gaussianMatrix(1, n, 102).map((x) => 3 * x + 5), new Float32Array(n).fill(2)];
  const ref = new Float64Array(n);
  for (const x of p) {
    const mean = x.reduce((a, b) => a + b, 0) / n;
    const sd = Math.sqrt(x.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
    for (let j = 0; j < n; j++) ref[j] += (sd > 0 ? (x[j] - mean) / sd : 0) / p.length;
  }
  const flat = new Float32Array(3 * n);
  p.forEach((x, i) => flat.set(x, i * n));
  for (const out of [combinePriors(p), combinePriors({ data: flat, rows: 3, cols: n }, { zscore: true })]) {
    assert.is(out.length, n);
    for (let j = 0; j < n; j++) assert.ok(Math.abs(out[j] - ref[j]) <= 1e-6 * Math.max(1, Math.abs(ref[j])), `j=${j}`);
  }
  const plain = combinePriors(p, { zscore: false });
  for (let j = 0; j < n; j++) assert.is(plain[j], Math.fround((p[0][j] + p[1][j] + p[2][j]) / 3));
  code(() => combinePriors([]), 'ERR_VLK_EMPTY', 'no priors');
  code(() => combinePriors([new Float32Array(3), new Float32Array(4)]), 'ERR_VLK_SHAPE', 'unequal');
  code(() => combinePriors([Float32Array.of(1, NaN)]), 'ERR_VLK_NON_FINITE', 'NaN');
  code(() => combinePriors([[1, 2]] as never), 'ERR_VLK_TYPE', 'type');
});

test.run();
