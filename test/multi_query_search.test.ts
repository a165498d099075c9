// Multi-query fusion search (test/multi_query_search.test.ts): every fusion mode returns exactly
// the top-k of the fused score of a float64 brute force written here: bit for bit on integer-valued
// inputs (fp32 scores are then exact, many planted ties), within a float tolerance on Gaussian
// inputs (with duplicate rows: the lower index first); Q = 1, 7; R = 1, 3; N = 1, 7, 1000;
// weights; threads 1 vs 2; sync vs async; abort; typed errors.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { multiQuerySearch, multiQuerySearchSync, searchSync, VlkError } from './helpers/lib';
import { gaussianMatrix, rng } from './helpers/random';

type Mode = 'embedding' | 'mean' | 'max' | 'rrf';

function intMatrix(rows: number, cols: number, seed: number, span = 3): Float32Array {
  const u = rng(seed);
  return Float32Array.from({ length: rows * cols }, () => Math.floor(u() * (2 * span + 1)) - span);
}

function scoresOf(q: Float32Array, qi: number, g: Float32Array, n: number, d: number, cosine: boolean): Float64Array {
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
    out[j] = cosine ? (qn > 0 && gn > 0 ? s / Math.sqrt(qn * gn) : 0) : s;
  }
  return out;
}

// Positions by score descending, ties by lower index.
function order(s: ArrayLike<number>): number[] {
  return Array.from({ length: s.length }, (_, i) => i).sort((a, b) => s[b] - s[a] || a - b);
}

function weight(w: Float32Array | undefined, r: number, q: number, i: number): number {
  if (w === undefined) return 1;
  return w.length === r ? w[i] : w[q * r + i];
}

// Float64 fused score of query q over the whole gallery (f32: round the way the definition does).
function fused(mode: Mode, qs: Float32Array, g: Float32Array, q: number, r: number, n: number, d: number,
  cosine: boolean, w: Float32Array | undefined, c = 60, depth = 100, f32 = true): Float64Array {
  const S = Array.from({ length: r }, (_, i) => scoresOf(qs, q * r + i, g, n, d, cosine));
  const out = new Float64Array(n);
  const round = f32 ? Math.fround : (x: number) => x;
  if (mode === 'mean') {
    let ws = 0;
    for (let i = 0; i < r; i++) ws += weight(w, r, q, i);
    for (let j = 0; j < n; j++) {
      let a = 0;
      for (let i = 0; i < r; i++) a += weight(w, r, q, i) * round(S[i][j]);
      out[j] = round(a / ws);
    }
  } else if (mode === 'max') {
    for (let j = 0; j < n; j++) {
      let m = -Infinity;
      for (let i = 0; i < r; i++) m = Math.max(m, round(weight(w, r, q, i) * round(S[i][j])));
      out[j] = m;
    }
  } else if (mode === 'rrf') {
    const dep = Math.min(depth, n);
    const acc = new Float64Array(n);
    for (let i = 0; i < r; i++) {
      const ord = order(S[i].map(round));
      for (let t = 0; t < dep; t++) acc[ord[t]] += weight(w, r, q, i) / (c + t + 1);
    }
    for (let j = 0; j < n; j++) out[j] = round(acc[j]);
  } else {
    const u = new Float64Array(d);
    for (let i = 0; i < r; i++) for (let x = 0; x < d; x++) u[x] += weight(w, r, q, i) * qs[(q * r + i) * d + x];
    let nn = 0;
    for (let x = 0; x < d; x++) nn += u[x] * u[x];
    const e = Float32Array.from(u, (x) => (nn > 0 ? x / Math.sqrt(nn) : 0));
    return scoresOf(e, 0, g, n, d, cosine);
  }
  return out;
}

// The fused query vectors of 'embedding', built the way the definition says (float64, then fp32).
function fusedQueries(qs: Float32Array, nq: number, r: number, d: number, w?: Float32Array): Float32Array {
  const out = new Float32Array(nq * d);
  for (let q = 0; q < nq; q++) {
    const u = new Float64Array(d);
    for (let i = 0; i < r; i++) for (let x = 0; x < d; x++) u[x] += weight(w, r, q, i) * qs[(q * r + i) * d + x];
    let nn = 0;
    for (let x = 0; x < d; x++) nn += u[x] * u[x];
    const inv = nn > 0 ? 1 / Math.sqrt(nn) : 0;
    for (let x = 0; x < d; x++) out[q * d + x] = u[x] * inv;
  }
  return out;
}

function expectExact(res: { indices: Int32Array; scores: Float32Array }, ref: Float64Array, q: number, k: number, label: string) {
  const want = order(ref).slice(0, k);
  const got = Array.from(res.indices.subarray(q * k, (q + 1) * k));
  assert.equal(got, want, `${label}: indices of query ${q}`);
  const gotS = Array.from(res.scores.subarray(q * k, (q + 1) * k));
  assert.equal(gotS, want.map((j) => ref[j]), `${label}: scores of query ${q}`);
}

// Top-k of a float64 score within tol: sorted, scores near the reference, nothing left out that
// beats the k-th by more than tol, and exact duplicates ordered by index.
function expectNear(res: { indices: Int32Array; scores: Float32Array }, ref: Float64Array, q: number, k: number, tol: number, label: string) {
  const got = Array.from(res.indices.subarray(q * k, (q + 1) * k));
  const s = res.scores.subarray(q * k, (q + 1) * k);
  assert.is(new Set(got).size, k, `${label}: distinct indices`);
  for (let j = 0; j < k; j++) {
    assert.ok(Math.abs(s[j] - ref[got[j]]) <= tol, `${label}: score ${j} ${s[j]} vs ${ref[got[j]]}`);
    if (j > 0) {
      assert.ok(s[j] <= s[j - 1], `${label}: sorted`);
      if (s[j] === s[j - 1]) assert.ok(got[j] > got[j - 1], `${label}: tie order`);
    }
  }
  const kth = Math.min(...got.map((j) => ref[j]));
  const inTop = new Set(got);
  for (let j = 0; j < ref.length; j++) {
    if (!inTop.has(j)) assert.ok(ref[j] <= kth + tol, `${label}: item ${j} (${ref[j]}) beats the k-th (${kth})`);
  }
}

const MODES: Mode[] = ['embedding', 'mean', 'max', 'rrf'];
const test = suite('multiQuerySearch');

test('integer inputs: every mode equals the brute-force top-k exactly (ties by lower index)', () => {
  for (const mode of MODES) {
    for (const [nq, r, n, k] of [[1, 1, 1, 1], [1, 3, 7, 7], [7, 3, 7, 3], [7, 1, 1000, 10], [7, 3, 1000, 25], [1, 3, 1000, 1]]) {
      const d = 5;
      const seed = nq * 1000 + r * 100 + n + k;
      const qs = intMatrix(nq * r, d, seed);
      const g = intMatrix(n, d, seed + 1, 1); // few distinct rows: many exact ties
      for (const w of [undefined, Float32Array.from({ length: r }, (_, i) => 0.5 + i * 0.75)]) {
        const depth = mode === 'rrf' ? Math.max(2, Math.min(k + 2, n)) : 100;
        const res = multiQuerySearchSync({ data: qs, rows: nq * r, cols: d }, { data: g, rows: n, cols: d }, {
          rewrites: r, k, fusion: mode, weights: w, depth, rrfConstant: 3, threads: 2,
        });
        assert.is(res.k, k);
        for (let q = 0; q < nq; q++) {
          const label = `${mode} Q=${nq} R=${r} N=${n} k=${k} w=${w ? 'yes' : 'no'}`;
          if (mode === 'embedding') {
            const ref = searchSync(fusedQueries(qs, nq, r, d, w), g, { k, dim: d });
            assert.equal(Array.from(res.indices), Array.from(ref.indices), `${label}: = search of the fused queries`);
            assert.equal(Array.from(res.scores), Array.from(ref.scores), label);
            expectNear(res, fused(mode, qs, g, q, r, n, d, false, w), q, k, 1e-4, label);
          } else {
            expectExact(res, fused(mode, qs, g, q, r, n, d, false, w, 3, depth), q, k, label);
          }
        }
      }
    }
  }
});

test('per-query weights (Q*R) and rrf with items in no list (score 0, filled by index)', () => {
  const nq = 7, r = 3, n = 1000, d = 6, k = 40;
  const qs = intMatrix(nq * r, d, 11);
  const g = intMatrix(n, d, 12);
  const w = Float32Array.from({ length: nq * r }, (_, i) => (i % 4) * 0.5); // zeros included
  for (const mode of ['mean', 'max', 'rrf'] as Mode[]) {
    const res = multiQuerySearchSync({ data: qs, rows: nq * r, cols: d }, { data: g, rows: n, cols: d }, {
      rewrites: r, k, fusion: mode, weights: w, depth: 5,
    });
    for (let q = 0; q < nq; q++) expectExact(res, fused(mode, qs, g, q, r, n, d, false, w, 60, 5), q, k, `${mode} per-query weights`);
  }
  const res = multiQuerySearchSync({ data: qs, rows: nq * r, cols: d }, { data: g, rows: n, cols: d }, { rewrites: r, k, fusion: 'rrf', depth: 5 });
  // At most 3 * 5 items score > 0, so the rest of the 40 are score-0 rows in index order.
  const tail = Array.from(res.scores.subarray(k - 10, k));
  assert.equal(tail, new Array(10).fill(0));
});

test('Gaussian inputs, cosine and ip: top-k of the float64 fused score, duplicates by lower index', () => {
  const nq = 7, r = 3, n = 1000, d = 33, k = 20;
  const qs = gaussianMatrix(nq * r, d, 21);
  const g = gaussianMatrix(n, d, 22);
  // Plant duplicate rows so ties are exact in fp32 too.
  for (const [a, b] of [[3, 700], [10, 11], [500, 999]]) g.copyWithin(b * d, a * d, (a + 1) * d);
  for (const metric of ['cosine', 'ip'] as const) {
    for (const mode of MODES) {
      const res = multiQuerySearchSync({ data: qs, rows: nq * r, cols: d }, { data: g, rows: n, cols: d }, { rewrites: r, k, fusion: mode, metric });
      for (let q = 0; q < nq; q++) {
        const ref = fused(mode, qs, g, q, r, n, d, metric === 'cosine', undefined, 60, 100, false);
        const tol = mode === 'rrf' ? 1e-7 : metric === 'cosine' ? 1e-5 : 1e-4;
        if (mode === 'rrf') {
          // Ranks: the list per rewrite is exact search (its own test); here compare fused values.
          const want = order(fused(mode, qs, g, q, r, n, d, metric === 'cosine', undefined, 60, 100, true)).slice(0, k);
          assert.equal(Array.from(res.indices.subarray(q * k, (q + 1) * k)), want, `rrf ${metric} q=${q}`);
        } else {
          expectNear(res, ref, q, k, tol, `${mode} ${metric} q=${q}`);
        }
        const got = Array.from(res.indices.subarray(q * k, (q + 1) * k));
        for (const [a, b] of [[3, 700], [10, 11], [500, 999]]) {
          if (got.includes(b)) assert.ok(got.indexOf(a) >= 0 && got.indexOf(a) === got.indexOf(b) - 1, `${mode} ${metric}: duplicate ${a}/${b}`);
        }
      }
    }
  }
});

test('threads 1 vs 2 identical; sync equals async; l2 with embedding / rrf', async () => {
  const nq = 7, r = 3, n = 1000, d = 300, k = 15; // d > 256: gemm's second depth slice
  const qs = gaussianMatrix(nq * r, d, 31);
  const g = gaussianMatrix(n, d, 32);
  for (const mode of MODES) {
    for (const metric of mode === 'embedding' || mode === 'rrf' ? (['cosine', 'l2'] as const) : (['cosine', 'ip'] as const)) {
      const opts = { rewrites: r, k, fusion: mode, metric, dim: d };
      const a = multiQuerySearchSync(qs, g, { ...opts, threads: 1 });
      const b = multiQuerySearchSync(qs, g, { ...opts, threads: 2 });
      const c = await multiQuerySearch(qs, g, { ...opts, threads: 2 });
      assert.equal(Array.from(b.indices), Array.from(a.indices), `${mode} ${metric}: threads`);
      assert.equal(Array.from(b.scores), Array.from(a.scores), `${mode} ${metric}: threads`);
      assert.equal(Array.from(c.indices), Array.from(a.indices), `${mode} ${metric}: async`);
      assert.equal(Array.from(c.scores), Array.from(a.scores), `${mode} ${metric}: async`);
      if (mode !== 'rrf' && metric !== 'l2') {
        for (let q = 0; q < nq; q++) expectNear(a, fused(mode, qs, g, q, r, n, d, metric === 'cosine', undefined, 60, 100, false), q, k, 2e-4, `${mode} ${metric} d=300`);
      }
    }
  }
});

test('k > N: typed error, or clamp to N', () => {
  const qs = intMatrix(3, 4, 41);
  const g = intMatrix(7, 4, 42);
  try {
    multiQuerySearchSync(qs, g, { rewrites: 3, k: 8, fusion: 'mean', dim: 4 });
    assert.unreachable('k > N');
  } catch (e) {
    assert.instance(e, VlkError);
    assert.is((e as VlkError).code, 'ERR_VLK_INVALID_K');
  }
  const res = multiQuerySearchSync(qs, g, { rewrites: 3, k: 8, fusion: 'max', dim: 4, clamp: true });
  assert.is(res.k, 7);
  expectExact(res, fused('max', qs, g, 0, 3, 7, 4, false, undefined), 0, 7, 'clamped');
});

test('typed errors', () => {
  const qs = gaussianMatrix(6, 4, 51);
  const g = gaussianMatrix(10, 4, 52);
  const code = (f: () => unknown, want: string, what: string) => {
    try {
      f();
      assert.unreachable(what);
    } catch (e) {
      assert.instance(e, VlkError, what);
      assert.is((e as VlkError).code, want, `${what}: ${(e as Error).message}`);
    }
  };
  const base = { rewrites: 3, k: 2, fusion: 'mean' as Mode, dim: 4 };
  code(() => multiQuerySearchSync(qs, g, { ...base, k: 0 }), 'ERR_VLK_INVALID_K', 'k 0');
  code(() => multiQuerySearchSync(qs, g, { ...base, rewrites: 4 }), 'ERR_VLK_SHAPE', 'rows not a multiple of R');
  code(() => multiQuerySearchSync(qs, g, { ...base, rewrites: 0 }), 'ERR_VLK_INVALID_ARG', 'rewrites 0');
  code(() => multiQuerySearchSync(qs, g, { ...base, fusion: 'sum' as Mode }), 'ERR_VLK_INVALID_ARG', 'fusion');
  code(() => multiQuerySearchSync(qs, g, { ...base, metric: 'l2' }), 'ERR_VLK_INVALID_ARG', 'l2 with mean');
  code(() => multiQuerySearchSync(qs, g, { ...base, weights: new Float32Array(2) }), 'ERR_VLK_SHAPE', 'weights length');
  code(() => multiQuerySearchSync(qs, g, { ...base, weights: Float32Array.of(1, -1, 1) }), 'ERR_VLK_INVALID_ARG', 'negative weight');
  code(() => multiQuerySearchSync(qs, g, { ...base, weights: Float32Array.of(1, NaN, 1) }), 'ERR_VLK_NON_FINITE', 'NaN weight');
  code(() => multiQuerySearchSync(qs, g, { ...base, weights: new Float32Array(3) }), 'ERR_VLK_INVALID_ARG', 'mean weights sum 0');
  code(() => multiQuerySearchSync(qs, g, { ...base, fusion: 'rrf', depth: 0 }), 'ERR_VLK_INVALID_ARG', 'depth 0');
  code(() => multiQuerySearchSync(qs, g, { ...base, fusion: 'rrf', rrfConstant: -1 }), 'ERR_VLK_INVALID_ARG', 'rrf constant');
  code(() => multiQuerySearchSync(qs, gaussianMatrix(10, 5, 1), { ...base, dim: undefined } as never), 'ERR_VLK_INVALID_ARG', 'no dim');
  code(() => multiQuerySearchSync({ data: qs, rows: 6, cols: 4 }, { data: gaussianMatrix(10, 5, 1), rows: 10, cols: 5 }, { ...base, dim: undefined }), 'ERR_VLK_DIM_MISMATCH', 'dim mismatch');
  for (const mode of MODES) {
    const bad = Float32Array.from(g);
    bad[17] = NaN;
    code(() => multiQuerySearchSync(qs, bad, { ...base, fusion: mode }), 'ERR_VLK_NON_FINITE', `NaN gallery ${mode}`);
    const badq = Float32Array.from(qs);
    badq[5] = Infinity;
    code(() => multiQuerySearchSync(badq, g, { ...base, fusion: mode }), 'ERR_VLK_NON_FINITE', `Inf query ${mode}`);
  }
  code(() => multiQuerySearchSync(qs, g, null as never), 'ERR_VLK_TYPE', 'options');
});

test('abort: a signal aborted before the call, and one aborted while the job waits', async () => {
  const qs = gaussianMatrix(3, 8, 61);
  const g = gaussianMatrix(50, 8, 62);
  const ac = new AbortController();
  ac.abort();
  try {
    await multiQuerySearch(qs, g, { rewrites: 3, k: 5, fusion: 'mean', dim: 8, signal: ac.signal });
    assert.unreachable('aborted');
  } catch (e) {
    assert.is((e as Error).name, 'AbortError');
  }
  const big = gaussianMatrix(200_000, 64, 63);
  const many = gaussianMatrix(64 * 3, 64, 64);
  for (const mode of MODES) {
    const ac2 = new AbortController();
    const p = multiQuerySearch(many, big, { rewrites: 3, k: 10, fusion: mode, dim: 64, signal: ac2.signal });
    ac2.abort();
    try {
      await p;
      assert.unreachable(`${mode}: aborted in flight`);
    } catch (e) {
      assert.is((e as Error).name, 'AbortError', mode);
    }
  }
});

test.run();
