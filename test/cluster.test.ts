// Clustering prototypes (test/cluster.test.ts), seed 004:
//  - sinkhorn: codes against a float64 transcription of the paper's algorithm (per-element relative
//    error < 1e-5) at awkward sizes, epsilons and iteration counts; every sample's codes sum to 1;
//    scores offset by +100 (exp overflows without the max subtraction) give the same codes;
//    bit-identical for any thread count; typed errors (NaN naming row/column, a sample whose
//    exponentials all underflow, bad options).
//  - swavLoss: loss vs float64 (< 1e-5) and dOv, dOt, dtau vs central finite differences of the
//    float64 forward (< 1e-3), with Sinkhorn codes and with arbitrary positive weights;
//    bit-identical for any thread count; errors.
//  - kmeans: planted well-separated clusters recovered exactly (up to a label permutation) for
//    several seeds, l2 and cosine (cosine on rows of random norms); inertia never increases and is
//    the exact objective of the returned centroids/assignments, centroids are the float64 means;
//    same seed -> bit-identical result for threads 1, 2, 3; empty-cluster repair (duplicates with
//    k above the distinct count, and a forced empty cluster whose repair row is predicted);
//    k = n, n = 1, iterations 0 (k-means++ seeds are distinct data rows), tolerance;
//    onProgress once per iteration in order, AbortSignal (before and during); typed errors.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { kmeans, kmeansSync, sinkhorn, sinkhornSync, swavLoss, swavLossSync, VlkError } from './helpers/lib';
import { gaussian, rng } from './helpers/random';
import { expectCode } from './helpers/expect';

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

function randomMatrix(rows: number, cols: number, seed: number, scale = 1): Float32Array {
  const g = gaussian(seed);
  return Float32Array.from({ length: rows * cols }, () => g() * scale);
}

// ---------------------------------------------------------------------------------------------
// Sinkhorn

// The paper's algorithm, literally, in float64 (Q is P x B here): exp(O / eps)^T, / total, then
// `iters` x {rows / row-sum / P; cols / col-sum / B}, x B. Returned as B x P.
function sinkhornRef(o: Float32Array, b: number, p: number, eps: number, iters: number, shift = 0): Float64Array {
  const q = new Float64Array(p * b);
  let total = 0;
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < p; j++) {
      q[j * b + i] = Math.exp((o[i * p + j] - shift) / eps);
      total += q[j * b + i];
    }
  }
  for (let x = 0; x < q.length; x++) q[x] /= total;
  for (let it = 0; it < iters; it++) {
    for (let j = 0; j < p; j++) {
      let s = 0;
      for (let i = 0; i < b; i++) s += q[j * b + i];
      for (let i = 0; i < b; i++) q[j * b + i] /= s * p;
    }
    for (let i = 0; i < b; i++) {
      let s = 0;
      for (let j = 0; j < p; j++) s += q[j * b + i];
      for (let j = 0; j < p; j++) q[j * b + i] /= s * b;
    }
  }
  const out = new Float64Array(b * p);
  for (let i = 0; i < b; i++) for (let j = 0; j < p; j++) out[i * p + j] = q[j * b + i] * b;
  return out;
}

function maxRel(got: Float32Array, want: Float64Array): number {
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, rel(got[i], want[i]));
  return worst;
}

const Sk = suite('sinkhorn');

const skCases: [number, number, number, number][] = [
  // B, P, eps, iterations
  [8, 5, 0.1, 3],
  [1, 1, 0.1, 3],
  [1, 7, 0.1, 3],
  [13, 1, 0.05, 2],
  [7, 33, 0.1, 1],
  [64, 384, 0.1, 3],
  [31, 17, 0.5, 10],
];

for (const [b, p, eps, iters] of skCases) {
  Sk(`codes match the float64 algorithm and sum to 1 per sample: B = ${b}, P = ${p}, eps = ${eps}, ${iters} iterations`, async () => {
    // Cosine-like scores in [-1, 1] as O = v . C^T with unit rows gives.
    const o = Float32Array.from(randomMatrix(b, p, 17 + b * 7 + p), (v) => Math.tanh(v));
    const want = sinkhornRef(o, b, p, eps, iters);
    const got = sinkhornSync({ data: o, rows: b, cols: p }, { epsilon: eps, iterations: iters });
    assert.is(got.length, b * p);
    assert.ok(maxRel(got, want) < 1e-5, `max relative error ${maxRel(got, want)}`);
    for (let i = 0; i < b; i++) {
      let s = 0;
      for (let j = 0; j < p; j++) s += got[i * p + j];
      assert.ok(Math.abs(s - 1) < 1e-5, `sample ${i} sums to ${s}`);
    }
    const asyncGot = await sinkhorn(o, { dim: p, epsilon: eps, iterations: iters });
    assert.equal(Array.from(asyncGot), Array.from(got));
  });
}

Sk('defaults are eps 0.1 and 3 iterations; prototypes get equal mass', () => {
  const [b, p] = [48, 12];
  const o = Float32Array.from(randomMatrix(b, p, 5), (v) => Math.tanh(v));
  const got = sinkhornSync({ data: o, dims: [b, p] });
  assert.ok(maxRel(got, sinkhornRef(o, b, p, 0.1, 3)) < 1e-5);
  assert.ok(maxRel(got, sinkhornRef(o, b, p, 0.1, 2)) > 1e-4, 'the iteration count matters');
  // After enough iterations every prototype gets B / P of the (x B) mass.
  const many = sinkhornSync({ data: o, dims: [b, p] }, { iterations: 200 });
  for (let j = 0; j < p; j++) {
    let s = 0;
    for (let i = 0; i < b; i++) s += many[i * p + j];
    assert.ok(Math.abs(s - b / p) < 1e-3, `prototype ${j}: ${s}`);
  }
});

Sk('bit-identical for threads 1, 2 and 3 (fixed blocks of samples)', () => {
  const [b, p] = [100, 37];
  const o = Float32Array.from(randomMatrix(b, p, 31), (v) => Math.tanh(v));
  const one = sinkhornSync(o, { dim: p, threads: 1 });
  for (const threads of [2, 3]) assert.equal(Array.from(sinkhornSync(o, { dim: p, threads })), Array.from(one));
});

Sk('scores offset by +100: same codes (the global max is subtracted; exp(1000) overflows otherwise)', () => {
  const [b, p] = [9, 6];
  const o = Float32Array.from(randomMatrix(b, p, 8), (v) => 100 + Math.tanh(v));
  const naive = sinkhornRef(o, b, p, 0.1, 3);
  assert.ok(naive.some((v) => !Number.isFinite(v)), 'the literal formula overflows');
  let mx = -Infinity;
  for (const v of o) mx = Math.max(mx, v);
  const got = sinkhornSync({ data: o, rows: b, cols: p });
  assert.ok(maxRel(got, sinkhornRef(o, b, p, 0.1, 3, mx)) < 1e-5);
});

Sk('bad inputs: typed errors', async () => {
  const o = randomMatrix(4, 3, 1);
  const bad = Float32Array.from(o);
  bad[2 * 3 + 1] = NaN;
  expectCode(() => sinkhornSync({ data: bad, rows: 4, cols: 3 }), 'ERR_VLK_NON_FINITE', /scores: row 2, column 1/);
  const under = Float32Array.from(o);
  for (let j = 0; j < 3; j++) under[3 * 3 + j] = -1000;
  expectCode(() => sinkhornSync({ data: under, rows: 4, cols: 3 }), 'ERR_VLK_NON_FINITE', /scores\[3, p\].*underflows/);
  expectCode(() => sinkhornSync({ data: o, rows: 4, cols: 3 }, { epsilon: 0 }), 'ERR_VLK_INVALID_ARG', /epsilon/);
  expectCode(() => sinkhornSync({ data: o, rows: 4, cols: 3 }, { iterations: 0 }), 'ERR_VLK_INVALID_ARG', /iterations/);
  expectCode(() => sinkhornSync({ data: o, rows: 4, cols: 3 }, { iterations: 1.5 }), 'ERR_VLK_INVALID_ARG', /iterations/);
  expectCode(() => sinkhornSync(o, { dim: 5 }), 'ERR_VLK_DIM_MISMATCH', /scores/);
  expectCode(() => sinkhornSync(o), 'ERR_VLK_INVALID_ARG', /dim/);
  expectCode(() => sinkhornSync({ data: new Float32Array(0), rows: 0, cols: 3 }), 'ERR_VLK_EMPTY', /scores/);
  expectCode(() => sinkhornSync({ data: o, rows: 4, cols: 4 }), 'ERR_VLK_SHAPE', /scores/);
  expectCode(() => sinkhornSync(new Float64Array(12) as never, { dim: 3 }), 'ERR_VLK_TYPE', /scores/);
  const ac = new AbortController();
  ac.abort();
  const err = await sinkhorn(o, { dim: 3, signal: ac.signal }).then(() => null, (e) => e);
  assert.is((err as Error).name, 'AbortError');
});

Sk.run();

// ---------------------------------------------------------------------------------------------
// SwAV loss

interface SwavVecs {
  ov: Float64Array;
  ot: Float64Array;
  qv: Float64Array;
  qt: Float64Array;
  tau: number;
}

function swavRef(v: SwavVecs, b: number, p: number): [number, number, number] {
  const dir = (o: Float64Array, q: Float64Array) => {
    let loss = 0;
    for (let i = 0; i < b; i++) {
      let mx = -Infinity;
      for (let j = 0; j < p; j++) mx = Math.max(mx, o[i * p + j] / v.tau);
      let s = 0;
      for (let j = 0; j < p; j++) s += Math.exp(o[i * p + j] / v.tau - mx);
      const lse = mx + Math.log(s);
      for (let j = 0; j < p; j++) loss -= q[i * p + j] * (o[i * p + j] / v.tau - lse);
    }
    return loss / b;
  };
  const lv = dir(v.ov, v.qt);
  const lt = dir(v.ot, v.qv);
  return [lv + lt, lv, lt];
}

function fd(v: SwavVecs, b: number, p: number, key: 'ov' | 'ot', grad: Float32Array): number {
  const x = v[key];
  const h = 1e-6;
  let num = 0;
  let den = 0;
  for (let i = 0; i < x.length; i++) {
    const old = x[i];
    x[i] = old + h;
    const up = swavRef(v, b, p)[0];
    x[i] = old - h;
    const down = swavRef(v, b, p)[0];
    x[i] = old;
    const g = (up - down) / (2 * h);
    num += (g - grad[i]) ** 2;
    den += g ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-300));
}

const Sw = suite('swavLoss');

const swCases: [string, number, number, number, boolean][] = [
  // name, B, P, tau, Sinkhorn codes (else arbitrary positive weights not summing to 1)
  ['AAHR defaults, Sinkhorn codes', 6, 10, 0.1, true],
  ['B = 1, P = 1', 1, 1, 0.1, true],
  ['odd sizes, tau 0.5, arbitrary weights', 7, 13, 0.5, false],
  ['B = 5, P = 3, tau 0.07, arbitrary weights', 5, 3, 0.07, false],
];

for (const [name, b, p, tau, sk] of swCases) {
  Sw(`forward vs float64, gradients vs finite differences: ${name}`, async () => {
    const ov32 = Float32Array.from(randomMatrix(b, p, 100 + b + p), (x) => Math.tanh(x));
    const ot32 = Float32Array.from(randomMatrix(b, p, 200 + b + p), (x) => Math.tanh(x));
    const u = rng(300 + b);
    const qv32 = sk ? sinkhornSync({ data: ov32, rows: b, cols: p }) : Float32Array.from({ length: b * p }, () => u());
    const qt32 = sk ? sinkhornSync({ data: ot32, rows: b, cols: p }) : Float32Array.from({ length: b * p }, () => u());
    const v: SwavVecs = {
      ov: Float64Array.from(ov32),
      ot: Float64Array.from(ot32),
      qv: Float64Array.from(qv32),
      qt: Float64Array.from(qt32),
      tau,
    };
    const [want, wv, wt] = swavRef(v, b, p);
    for (const r of [
      swavLossSync({ data: ov32, rows: b, cols: p }, { data: ot32, rows: b, cols: p }, { data: qv32, rows: b, cols: p }, { data: qt32, rows: b, cols: p }, { temperature: tau }),
      await swavLoss(ov32, ot32, qv32, qt32, { dim: p, temperature: tau }),
    ]) {
      assert.ok(rel(r.loss, want) < 1e-5 || Math.abs(r.loss - want) < 1e-12, `loss ${r.loss} vs ${want}`);
      assert.ok(rel(r.lossV, wv) < 1e-5 || Math.abs(r.lossV - wv) < 1e-12, `lossV ${r.lossV} vs ${wv}`);
      assert.ok(rel(r.lossT, wt) < 1e-5 || Math.abs(r.lossT - wt) < 1e-12, `lossT ${r.lossT} vs ${wt}`);
      const g = r.grads!;
      assert.is(g.scoresV.length, b * p);
      if (p > 1) {
        assert.ok(fd(v, b, p, 'ov', g.scoresV) < 1e-3, `dOv: ${fd(v, b, p, 'ov', g.scoresV)}`);
        assert.ok(fd(v, b, p, 'ot', g.scoresT) < 1e-3, `dOt: ${fd(v, b, p, 'ot', g.scoresT)}`);
        const h = 1e-6;
        const dtau = (swavRef({ ...v, tau: tau + h }, b, p)[0] - swavRef({ ...v, tau: tau - h }, b, p)[0]) / (2 * h);
        assert.ok(Math.abs(dtau - g.temperature) <= 1e-3 * Math.abs(dtau) + 1e-9, `dtau ${g.temperature} vs ${dtau}`);
      } else {
        // One prototype: log softmax = 0, the loss and every gradient are 0.
        assert.is(r.loss, 0);
        assert.ok(Math.abs(g.scoresV[0]) < 1e-7 && Math.abs(g.scoresT[0]) < 1e-7);
      }
    }
  });
}

Sw('bit-identical for threads 1, 2 and 3', () => {
  const [b, p] = [90, 21];
  const ov = randomMatrix(b, p, 41, 0.5);
  const ot = randomMatrix(b, p, 42, 0.5);
  const qv = sinkhornSync(ov, { dim: p });
  const qt = sinkhornSync(ot, { dim: p });
  const run = (threads: number) => {
    const r = swavLossSync(ov, ot, qv, qt, { dim: p, threads });
    return [r.loss, r.lossV, r.lossT, r.grads!.temperature, Array.from(r.grads!.scoresV), Array.from(r.grads!.scoresT)];
  };
  const one = run(1);
  assert.equal(run(2), one);
  assert.equal(run(3), one);
});

Sw('grads: false returns the losses only; the codes are not written', () => {
  const [b, p] = [4, 6];
  const ov = randomMatrix(b, p, 1, 0.3);
  const ot = randomMatrix(b, p, 2, 0.3);
  const qv = sinkhornSync(ov, { dim: p });
  const qt = sinkhornSync(ot, { dim: p });
  const before = Float32Array.from(qv);
  const r = swavLossSync(ov, ot, qv, qt, { dim: p, grads: false });
  assert.is(r.grads, undefined);
  assert.ok(r.loss > 0);
  assert.equal(Array.from(qv), Array.from(before));
});

Sw('bad inputs: typed errors naming the input', async () => {
  const [b, p] = [4, 6];
  const m = (s: number) => ({ data: randomMatrix(b, p, s), rows: b, cols: p });
  const ok = [m(1), m(2), m(3), m(4)] as const;
  expectCode(() => swavLossSync(ok[0], ok[1], ok[2], { data: new Float32Array(b * 5), rows: b, cols: 5 }), 'ERR_VLK_DIM_MISMATCH', /codesT: P = 5/);
  expectCode(() => swavLossSync(ok[0], { data: new Float32Array(3 * p), rows: 3, cols: p }, ok[2], ok[3]), 'ERR_VLK_SHAPE', /scoresT: 3 rows/);
  const nan = m(5);
  nan.data[1 * p + 4] = Infinity;
  expectCode(() => swavLossSync(ok[0], ok[1], nan, ok[3]), 'ERR_VLK_NON_FINITE', /codesV: row 1, column 4/);
  expectCode(() => swavLossSync(ok[0], ok[1], ok[2], ok[3], { temperature: -1 }), 'ERR_VLK_INVALID_ARG', /temperature/);
  expectCode(() => swavLossSync(ok[0], ok[1], ok[2], null as never), 'ERR_VLK_TYPE', /codesT/);
  const ac = new AbortController();
  ac.abort();
  const err = await swavLoss(ok[0], ok[1], ok[2], ok[3], { signal: ac.signal }).then(() => null, (e) => e);
  assert.is((err as Error).name, 'AbortError');
});

Sw.run();

// ---------------------------------------------------------------------------------------------
// k-means

// Planted clusters: `k` centres far apart, `per` points each with small noise, rows shuffled.
function planted(k: number, per: number, d: number, seed: number, spread = 0.05) {
  const g = gaussian(seed);
  const centres = Float64Array.from({ length: k * d }, () => g() * 10);
  const n = k * per;
  const order = Array.from({ length: n }, (_, i) => i);
  const u = rng(seed + 1);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(u() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const x = new Float32Array(n * d);
  const label = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    const c = order[r] % k;
    label[r] = c;
    for (let e = 0; e < d; e++) x[r * d + e] = centres[c * d + e] + g() * spread;
  }
  return { x, label, n };
}

// True when `a` equals `b` up to a relabelling (a bijection between labels).
function samePartition(a: Int32Array, b: Int32Array): boolean {
  const ab = new Map<number, number>();
  const ba = new Map<number, number>();
  for (let i = 0; i < a.length; i++) {
    if ((ab.get(a[i]) ?? b[i]) !== b[i] || (ba.get(b[i]) ?? a[i]) !== a[i]) return false;
    ab.set(a[i], b[i]);
    ba.set(b[i], a[i]);
  }
  return true;
}

function normalized(x: Float32Array, d: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r * d < x.length; r++) {
    let s = 0;
    for (let e = 0; e < d; e++) s += x[r * d + e] * x[r * d + e];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let e = 0; e < d; e++) out[r * d + e] = x[r * d + e] * inv;
  }
  return out;
}

// The objective of (centroids, assignments) in float64; cosine on normalised rows.
function objective(x: Float32Array, d: number, c: Float32Array, a: Int32Array, cosine: boolean): number {
  const xs = cosine ? normalized(x, d) : x;
  let total = 0;
  for (let i = 0; i < a.length; i++) {
    let s = 0;
    for (let e = 0; e < d; e++) {
      const xv = xs[i * d + e];
      const cv = c[a[i] * d + e];
      s += cosine ? xv * cv : (xv - cv) ** 2;
    }
    total += cosine ? Math.max(0, 1 - s) : s;
  }
  return total;
}

// Float64 means (normalised for cosine) of the clusters of `a`.
function means(x: Float32Array, d: number, k: number, a: Int32Array, cosine: boolean): Float64Array {
  const xs = cosine ? normalized(x, d) : x;
  const sum = new Float64Array(k * d);
  const cnt = new Float64Array(k);
  for (let i = 0; i < a.length; i++) {
    cnt[a[i]]++;
    for (let e = 0; e < d; e++) sum[a[i] * d + e] += xs[i * d + e];
  }
  for (let j = 0; j < k; j++) {
    let s = 0;
    for (let e = 0; e < d; e++) s += cosine ? sum[j * d + e] ** 2 : 0;
    const div = cosine ? Math.sqrt(s) : cnt[j];
    for (let e = 0; e < d; e++) sum[j * d + e] /= div;
  }
  return sum;
}

function nonIncreasing(h: Float64Array): boolean {
  for (let t = 1; t < h.length; t++) if (h[t] > h[t - 1]) return false;
  return true;
}

const Km = suite('kmeans');

Km('recovers planted well-separated clusters exactly (up to a label permutation), several seeds', () => {
  for (const [k, per, d] of [
    [8, 40, 16],
    [5, 13, 3],
    [12, 25, 33],
  ]) {
    const { x, label } = planted(k, per, d, 10 + k);
    for (let seed = 0; seed < 4; seed++) {
      const r = kmeansSync({ data: x, rows: k * per, cols: d }, k, { seed });
      assert.ok(samePartition(r.assignments, label), `k = ${k}, seed ${seed}: partition differs`);
      assert.ok(r.converged);
      const mu = means(x, d, k, label, false);
      // Centroid j is the mean of the planted group it took.
      for (let i = 0; i < label.length; i++) {
        const j = r.assignments[i];
        for (let e = 0; e < d; e++) {
          assert.ok(Math.abs(r.centroids[j * d + e] - mu[label[i] * d + e]) <= 1e-6 * Math.abs(mu[label[i] * d + e]) + 1e-6);
        }
      }
      assert.ok(rel(r.inertia, objective(x, d, r.centroids, r.assignments, false)) < 1e-9);
    }
  }
});

Km('cosine (spherical k-means) recovers planted directions whatever the row norms; centroids are unit', () => {
  const [k, per, d] = [6, 30, 12];
  const { x, label, n } = planted(k, per, d, 77, 0.3);
  const u = rng(5);
  for (let i = 0; i < n; i++) {
    const s = 0.2 + 5 * u();
    for (let e = 0; e < d; e++) x[i * d + e] *= s;
  }
  const r = kmeansSync(x, k, { dim: d, metric: 'cosine', seed: 3 });
  assert.ok(samePartition(r.assignments, label));
  for (let j = 0; j < k; j++) {
    let s = 0;
    for (let e = 0; e < d; e++) s += r.centroids[j * d + e] ** 2;
    assert.ok(Math.abs(Math.sqrt(s) - 1) < 1e-6, `centroid ${j} norm ${Math.sqrt(s)}`);
  }
  assert.ok(rel(r.inertia, objective(x, d, r.centroids, r.assignments, true)) < 1e-9);
  const mu = means(x, d, k, r.assignments, true);
  for (let i = 0; i < mu.length; i++) assert.ok(Math.abs(r.centroids[i] - mu[i]) < 1e-6);
});

for (const metric of ['l2', 'cosine'] as const) {
  Km(`inertia never increases, equals the objective of the result, centroids are the float64 means (${metric})`, () => {
    for (const [n, d, k, seed] of [
      [2000, 7, 13, 1],
      [501, 16, 40, 2],
      [97, 3, 9, 3],
    ]) {
      const x = randomMatrix(n, d, 1000 + seed);
      const r = kmeansSync({ data: x, dims: [n, d] }, k, { metric, seed, iterations: 60 });
      assert.ok(r.iterations >= 2, `${r.iterations} iterations`);
      assert.is(r.inertiaHistory.length, r.iterations);
      assert.ok(nonIncreasing(r.inertiaHistory), `history ${Array.from(r.inertiaHistory).join(', ')}`);
      assert.ok(r.inertiaHistory[0] > r.inertiaHistory[r.iterations - 1], 'Lloyd improves on the seeds');
      assert.is(r.inertia, r.inertiaHistory[r.iterations - 1]);
      const want = objective(x, d, r.centroids, r.assignments, metric === 'cosine');
      assert.ok(rel(r.inertia, want) < 1e-9, `inertia ${r.inertia} vs ${want}`);
      const mu = means(x, d, k, r.assignments, metric === 'cosine');
      for (let i = 0; i < mu.length; i++) {
        assert.ok(Math.abs(r.centroids[i] - mu[i]) <= 1e-6 * Math.abs(mu[i]) + 1e-7, `centroid entry ${i}`);
      }
      const counts = new Int32Array(k);
      for (const a of r.assignments) counts[a]++;
      assert.ok(counts.every((c) => c > 0), 'no empty cluster');
      if (r.converged) {
        // A fixed point: every row is assigned to (one of) its nearest centroids.
        const xs = metric === 'cosine' ? normalized(x, d) : x;
        for (let i = 0; i < n; i++) {
          const dist = (j: number) => {
            let s = 0;
            for (let e = 0; e < d; e++) {
              s += metric === 'cosine' ? -xs[i * d + e] * r.centroids[j * d + e] : (xs[i * d + e] - r.centroids[j * d + e]) ** 2;
            }
            return s;
          };
          let best = Infinity;
          for (let j = 0; j < k; j++) best = Math.min(best, dist(j));
          assert.ok(dist(r.assignments[i]) <= best + 1e-5 * Math.max(1, Math.abs(best)), `row ${i} not at its nearest centroid`);
        }
      }
    }
  });
}

Km('same seed: bit-identical result for threads 1, 2 and 3 (and the async form); another seed differs', async () => {
  for (const metric of ['l2', 'cosine'] as const) {
    const [n, d, k] = [6000, 33, 24];
    const x = randomMatrix(n, d, 42);
    const opts = { dim: d, metric, seed: 9, iterations: 8 };
    const one = kmeansSync(x, k, { ...opts, threads: 1 });
    const bytes = (r: typeof one) => [
      Buffer.from(r.centroids.buffer).toString('hex'),
      Buffer.from(r.assignments.buffer).toString('hex'),
      Buffer.from(r.inertiaHistory.buffer).toString('hex'),
      r.inertia,
      r.iterations,
    ];
    for (const r of [kmeansSync(x, k, { ...opts, threads: 2 }), kmeansSync(x, k, { ...opts, threads: 3 }), await kmeans(x, k, { ...opts, threads: 2 })]) {
      assert.equal(bytes(r), bytes(one), metric);
    }
    const other = kmeansSync(x, k, { ...opts, seed: 10 });
    assert.not.equal(bytes(other)[0], bytes(one)[0]);
  }
});

Km('empty-cluster repair: duplicates with k above the number of distinct rows', () => {
  const d = 4;
  const distinct = randomMatrix(10, d, 3);
  const x = new Float32Array(50 * d);
  for (let i = 0; i < 50; i++) x.set(distinct.subarray((i % 10) * d, (i % 10 + 1) * d), i * d);
  for (const k of [10, 12, 25, 50]) {
    for (const metric of ['l2', 'cosine'] as const) {
      const r = kmeansSync(x, k, { dim: d, metric, seed: k });
      const counts = new Int32Array(k);
      for (const a of r.assignments) counts[a]++;
      assert.ok(counts.every((c) => c > 0), `k = ${k} ${metric}: an empty cluster`);
      // Exactly 0 for l2; cosine terms 1 - x.c carry the fp32 rounding of the unit rows (~1e-8 each).
      assert.ok(r.inertia <= (metric === 'l2' ? 0 : 50 * 1e-7), `k = ${k} ${metric}: inertia ${r.inertia}`);
      if (k === 10) assert.ok(samePartition(r.assignments, Int32Array.from({ length: 50 }, (_, i) => i % 10)));
      // Rows that are equal share a centroid value.
      for (let i = 0; i < 50; i++) {
        const want = metric === 'cosine' ? normalized(distinct, d).subarray((i % 10) * d, (i % 10 + 1) * d) : distinct.subarray((i % 10) * d, (i % 10 + 1) * d);
        for (let e = 0; e < d; e++) assert.ok(Math.abs(r.centroids[r.assignments[i] * d + e] - want[e]) < 1e-6);
      }
    }
  }
});

Km('empty-cluster repair moves the row farthest from its centroid (documented rule)', () => {
  const [n, d] = [30, 4];
  const x = randomMatrix(n, d, 21);
  const init = new Float32Array(4 * d);
  init.set(x.subarray(0, 3 * d));
  init.fill(1000, 3 * d); // centroid 3 is far from everything: empty after the first assignment
  // The first assignment and each row's distance, in float64.
  const near = new Int32Array(n);
  const dist = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let best = Infinity;
    for (let j = 0; j < 4; j++) {
      let s = 0;
      for (let e = 0; e < d; e++) s += (x[i * d + e] - init[j * d + e]) ** 2;
      if (s < best) {
        best = s;
        near[i] = j;
      }
    }
    dist[i] = best;
  }
  let far = -1;
  for (let i = 0; i < n; i++) if (far < 0 || dist[i] > dist[far]) far = i;
  const r = kmeansSync(x, 4, { dim: d, init: { data: init, rows: 4, cols: d }, iterations: 1 });
  assert.is(r.assignments[far], 3);
  assert.is(r.assignments.filter((a) => a === 3).length, 1);
  assert.equal(Array.from(r.centroids.subarray(3 * d)), Array.from(x.subarray(far * d, (far + 1) * d)));
  for (let i = 0; i < n; i++) if (i !== far) assert.is(r.assignments[i], near[i]);
});

Km('k = n, n = 1, iterations 0 (k-means++ seeds are distinct rows), tolerance', () => {
  const [n, d] = [17, 5];
  const x = randomMatrix(n, d, 4);
  const all = kmeansSync(x, n, { dim: d });
  assert.is(all.inertia, 0);
  assert.equal([...all.assignments].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i));
  for (let i = 0; i < n; i++) {
    assert.equal(Array.from(all.centroids.subarray(all.assignments[i] * d, (all.assignments[i] + 1) * d)), Array.from(x.subarray(i * d, (i + 1) * d)));
  }
  const one = kmeansSync(new Float32Array([1, 2, 3]), 1, { dim: 3 });
  assert.equal(Array.from(one.centroids), [1, 2, 3]);
  assert.equal(Array.from(one.assignments), [0]);
  assert.is(one.inertia, 0);
  const oneCos = kmeansSync(new Float32Array([3, 4]), 1, { dim: 2, metric: 'cosine' });
  assert.ok(Math.abs(oneCos.centroids[0] - 0.6) < 1e-7 && Math.abs(oneCos.centroids[1] - 0.8) < 1e-7);
  assert.is(oneCos.inertia, 0);

  const seeds = kmeansSync(x, 6, { dim: d, iterations: 0, seed: 5 });
  assert.is(seeds.iterations, 0);
  assert.is(seeds.inertiaHistory.length, 0);
  const rows = new Set<number>();
  for (let j = 0; j < 6; j++) {
    const c = Array.from(seeds.centroids.subarray(j * d, (j + 1) * d));
    const r = Array.from({ length: n }, (_, i) => i).find((i) => Array.from(x.subarray(i * d, (i + 1) * d)).every((v, e) => v === c[e]));
    assert.ok(r !== undefined, `seed ${j} is a data row`);
    rows.add(r!);
  }
  assert.is(rows.size, 6);
  assert.ok(rel(seeds.inertia, objective(x, d, seeds.centroids, seeds.assignments, false)) < 1e-9);

  const big = randomMatrix(3000, 8, 6);
  const full = kmeansSync(big, 30, { dim: 8, iterations: 100 });
  const tol = 0.01;
  const early = kmeansSync(big, 30, { dim: 8, iterations: 100, tolerance: tol });
  assert.ok(early.iterations < full.iterations, `${early.iterations} vs ${full.iterations}`);
  const h = early.inertiaHistory;
  const t = early.iterations - 1;
  assert.ok(h[t - 1] - h[t] <= tol * h[t - 1], 'stopped at the tolerance');
  for (let i = 1; i < t; i++) assert.ok(h[i - 1] - h[i] > tol * h[i - 1], `not before (iteration ${i + 1})`);
  assert.equal(Array.from(h), Array.from(full.inertiaHistory.subarray(0, early.iterations)));
});

Km('onProgress: once per iteration, in order, with the history; AbortSignal before and during', async () => {
  const x = randomMatrix(4000, 16, 12);
  const seen: [number, number][] = [];
  const r = await kmeans(x, 20, { dim: 16, iterations: 15, onProgress: (p) => seen.push([p.iteration, p.inertia]) });
  assert.equal(seen, Array.from(r.inertiaHistory, (v, i) => [i + 1, v]));
  const failing = await kmeans(x, 20, { dim: 16, iterations: 3, onProgress: () => { throw new Error('boom'); } }).then(() => null, (e) => e);
  assert.is((failing as Error).message, 'boom');

  const ac = new AbortController();
  ac.abort();
  const before = await kmeans(x, 20, { dim: 16, signal: ac.signal }).then(() => null, (e) => e);
  assert.is((before as Error).name, 'AbortError');
  const big = randomMatrix(40000, 32, 13);
  const ac2 = new AbortController();
  const t0 = Date.now();
  const p = kmeans(big, 400, { dim: 32, iterations: 1000, signal: ac2.signal });
  setTimeout(() => ac2.abort(), 10);
  const during = await p.then(() => null, (e) => e);
  assert.is((during as Error).name, 'AbortError');
  assert.ok(Date.now() - t0 < 5000, 'stopped soon after the abort');
});

Km('bad inputs: typed errors', () => {
  const [n, d] = [10, 3];
  const x = randomMatrix(n, d, 2);
  expectCode(() => kmeansSync(x, 0, { dim: d }), 'ERR_VLK_INVALID_K', /k: .*1\.\.10/);
  expectCode(() => kmeansSync(x, 11, { dim: d }), 'ERR_VLK_INVALID_K', /k/);
  expectCode(() => kmeansSync(x, 2.5, { dim: d }), 'ERR_VLK_INVALID_K', /k/);
  const nan = Float32Array.from(x);
  nan[7 * d + 2] = NaN;
  expectCode(() => kmeansSync(nan, 3, { dim: d }), 'ERR_VLK_NON_FINITE', /data: row 7, element 2/);
  expectCode(() => kmeansSync(x, 3, { dim: 4 }), 'ERR_VLK_DIM_MISMATCH', /data/);
  expectCode(() => kmeansSync(x, 3, { dim: d, init: { data: new Float32Array(3 * 4), rows: 3, cols: 4 } }), 'ERR_VLK_DIM_MISMATCH', /init/);
  expectCode(() => kmeansSync(x, 3, { dim: d, init: { data: new Float32Array(2 * 3), rows: 2, cols: 3 } }), 'ERR_VLK_SHAPE', /init/);
  const badInit = new Float32Array(9);
  badInit[4] = Infinity;
  expectCode(() => kmeansSync(x, 3, { dim: d, init: { data: badInit, rows: 3, cols: 3 } }), 'ERR_VLK_NON_FINITE', /init: row 1, element 1/);
  expectCode(() => kmeansSync(x, 3, { dim: d, metric: 'ip' as never }), 'ERR_VLK_INVALID_ARG', /metric/);
  expectCode(() => kmeansSync(x, 3, { dim: d, iterations: -1 }), 'ERR_VLK_INVALID_ARG', /iterations/);
  expectCode(() => kmeansSync(x, 3, { dim: d, seed: -1 }), 'ERR_VLK_INVALID_ARG', /seed/);
  expectCode(() => kmeansSync(x, 3, { dim: d, tolerance: NaN }), 'ERR_VLK_INVALID_ARG', /tolerance/);
  expectCode(() => kmeansSync(x, 3, { dim: d, threads: 0 }), 'ERR_VLK_INVALID_ARG', /threads/);
  expectCode(() => kmeansSync({ data: new Float32Array(0), rows: 0, cols: 3 }, 1), 'ERR_VLK_EMPTY', /data/);
  expectCode(() => kmeansSync([1, 2] as never, 1, { dim: 1 }), 'ERR_VLK_TYPE', /data/);
  expectCode(() => kmeansSync(x, 3, { dim: d, init: 'random' as never }), 'ERR_VLK_INVALID_ARG', /init/);
});

Km.run();
