// Global-local scoring (test/global_local.test.ts): maxkPool, cosineMhaPool, gatedFusion and
// scanSimilarity against plain float64 references written here (relative error < 1e-5), every
// backward against central finite differences of that float64 forward (relative error < 1e-3),
// at awkward sizes (B = 1, odd n and D, lengths shorter than n, k above a length), exact ties
// (first tokens win), NaN in padding (ignored) and in valid tokens (typed error), thread-count
// invariance, async + abort, and typed errors naming the input.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  cosineMhaPool,
  cosineMhaPoolBackwardSync,
  cosineMhaPoolSync,
  gatedFusion,
  gatedFusionBackwardSync,
  gatedFusionSync,
  info,
  maxkPool,
  maxkPoolBackwardSync,
  maxkPoolSync,
  scanSimilarity,
  scanSimilaritySync,
  setIsa,
  VlkError,
} from './helpers/lib';
import { gaussian, gaussianMatrix, rng } from './helpers/random';

const EPS = 1e-8;

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.is(a.length, b.length, 'length');
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / Math.max(den, 1e-30);
}

function f64(a: Float32Array): Float64Array {
  return Float64Array.from(a);
}

// Central finite differences of f (float64) at `count` random entries of p; returns the relative
// error against the analytic gradient `grad` over those entries.
function fdCheck(p: Float64Array, grad: Float32Array, f: () => number, count: number, seed: number, h = 1e-5): number {
  const u = rng(seed);
  const fd: number[] = [];
  const an: number[] = [];
  const picks = new Set<number>();
  while (picks.size < Math.min(count, p.length)) picks.add(Math.floor(u() * p.length));
  for (const i of picks) {
    const x = p[i];
    p[i] = x + h;
    const up = f();
    p[i] = x - h;
    const dn = f();
    p[i] = x;
    fd.push((up - dn) / (2 * h));
    an.push(grad[i]);
  }
  return relErr(an, fd);
}

function dotW(d: Float64Array, y: Float64Array): number {
  let s = 0;
  for (let i = 0; i < d.length; i++) s += d[i] * y[i];
  return s;
}

// ---------------------------------------------------------------------------------------------
// maxkPool

function maxkRef(x: Float64Array, b: number, n: number, d: number, lengths: Int32Array | undefined, k: number): Float64Array {
  const out = new Float64Array(b * d);
  for (let i = 0; i < b; i++) {
    const len = lengths ? lengths[i] : n;
    const kk = Math.min(k, len);
    for (let e = 0; e < d; e++) {
      const vals: number[] = [];
      for (let t = 0; t < len; t++) vals.push(x[(i * n + t) * d + e]);
      vals.sort((p, q) => q - p);
      let s = 0;
      for (let j = 0; j < kk; j++) s += vals[j];
      out[i * d + e] = s / kk;
    }
  }
  return out;
}

const maxk = suite('maxkPool');

maxk('forward matches float64 at awkward sizes (B = 1, k clipped to short lengths)', () => {
  const cases = [
    { b: 1, n: 1, d: 1, k: 2, lengths: undefined },
    { b: 3, n: 7, d: 5, k: 2, lengths: Int32Array.from([1, 7, 3]) },
    { b: 2, n: 9, d: 13, k: 4, lengths: Int32Array.from([9, 2]) },
    { b: 4, n: 6, d: 3, k: 10, lengths: undefined },
  ];
  for (const [ci, c] of cases.entries()) {
    const x = gaussianMatrix(c.b * c.n, c.d, 100 + ci);
    const out = maxkPoolSync({ data: x, dims: [c.b, c.n, c.d] }, { k: c.k, lengths: c.lengths });
    const ref = maxkRef(f64(x), c.b, c.n, c.d, c.lengths, c.k);
    assert.ok(relErr(out, ref) < 1e-5, `case ${ci}: ${relErr(out, ref)}`);
  }
});

maxk('padding is never read (NaN there is fine); a NaN in a valid token is ERR_VLK_NON_FINITE', () => {
  const x = gaussianMatrix(2 * 5, 3, 7);
  const lengths = Int32Array.from([5, 2]);
  const clean = maxkPoolSync({ data: x, dims: [2, 5, 3] }, { lengths });
  const y = x.slice();
  for (let t = 2; t < 5; t++) y[(5 + t) * 3 + 1] = NaN;
  const out = maxkPoolSync({ data: y, dims: [2, 5, 3] }, { lengths });
  assert.equal(Array.from(out), Array.from(clean));
  y[(5 + 1) * 3] = NaN;
  assert.throws(() => maxkPoolSync({ data: y, dims: [2, 5, 3] }, { lengths }), (e: VlkError) => e.code === 'ERR_VLK_NON_FINITE' && /item 1, token 1/.test(e.message));
});

maxk('backward: gradient split over the chosen tokens, ties to the first indices', () => {
  // Column 0: values [1, 3, 3, 3, 0] -> top-2 = tokens 1 and 2 (first of the equal ones).
  const x = new Float32Array([1, 3, 3, 3, 0]);
  const dx = maxkPoolBackwardSync({ data: x, dims: [1, 5, 1] }, new Float32Array([4]), { k: 2 });
  assert.equal(Array.from(dx), [0, 2, 2, 0, 0]);
  assert.equal(Array.from(maxkPoolSync({ data: x, dims: [1, 5, 1] }, { k: 2 })), [3]);
  // All equal: the first k tokens get it.
  const dx2 = maxkPoolBackwardSync({ data: new Float32Array([5, 5, 5]), dims: [1, 3, 1] }, { data: new Float32Array([3]), rows: 1, cols: 1 }, { k: 2 });
  assert.equal(Array.from(dx2), [1.5, 1.5, 0]);
});

maxk('backward matches finite differences of the float64 forward', () => {
  const b = 3, n = 7, d = 5, k = 3;
  const lengths = Int32Array.from([7, 2, 4]);
  const x = gaussianMatrix(b * n, d, 11);
  const w = f64(gaussianMatrix(b, d, 12));
  const dx = maxkPoolBackwardSync({ data: x, dims: [b, n, d] }, new Float32Array(w), { k, lengths });
  const p = f64(x);
  const err = fdCheck(p, dx, () => dotW(w, maxkRef(p, b, n, d, lengths, k)), 60, 13, 1e-6);
  assert.ok(err < 1e-3, `fd ${err}`);
  for (let t = 2; t < n; t++) for (let e = 0; e < d; e++) assert.is(dx[(n + t) * d + e], 0, 'padding gets 0');
});

maxk('async equals sync; thread counts agree; errors are typed', async () => {
  const x = gaussianMatrix(16 * 9, 17, 21);
  const t = { data: x, dims: [16, 9, 17] };
  const a = await maxkPool(t, { threads: 2 });
  const s = maxkPoolSync(t, { threads: 1 });
  assert.equal(Array.from(a), Array.from(s));
  assert.throws(() => maxkPoolSync(t, { k: 0 }), (e: VlkError) => e.code === 'ERR_VLK_INVALID_K');
  assert.throws(() => maxkPoolSync(t, { lengths: new Int32Array(3) }), (e: VlkError) => e.code === 'ERR_VLK_SHAPE' && /lengths/.test(e.message));
  const bad = new Int32Array(16).fill(9);
  bad[4] = 0;
  assert.throws(() => maxkPoolSync(t, { lengths: bad }), (e: VlkError) => e.code === 'ERR_VLK_INVALID_ARG' && /lengths\[4\] = 0/.test(e.message));
  assert.throws(() => maxkPoolSync({ data: x, dims: [16, 9] } as never), (e: VlkError) => e.code === 'ERR_VLK_TYPE');
  assert.throws(() => maxkPoolSync({ data: x, dims: [0, 9, 17] }), (e: VlkError) => e.code === 'ERR_VLK_EMPTY');
  assert.throws(() => maxkPoolBackwardSync(t, new Float32Array(3)), (e: VlkError) => e.code === 'ERR_VLK_DIM_MISMATCH' || e.code === 'ERR_VLK_INVALID_ARG');
  const ac = new AbortController();
  ac.abort();
  const err = await maxkPool(t, { signal: ac.signal }).then(() => null, (e) => e);
  assert.is(err?.name, 'AbortError');
});

maxk.run();

// ---------------------------------------------------------------------------------------------
// cosineMhaPool

interface MhaCase {
  b: number;
  n: number;
  d: number;
  dg: number;
  h: number;
  lengths?: Int32Array;
  bias: boolean;
}

interface MhaP {
  g: Float64Array;
  x: Float64Array;
  wq: Float64Array;
  wk: Float64Array;
  wv: Float64Array;
  bq: Float64Array;
  bk: Float64Array;
  bv: Float64Array;
}

function norm64(v: number[]): number[] {
  let s = 0;
  for (const y of v) s += y * y;
  const r = Math.sqrt(s) + EPS;
  return v.map((y) => y / r);
}

function mhaRef(p: MhaP, c: MhaCase): Float64Array {
  const { b, n, d, dg, h } = c;
  const out = new Float64Array(b * d);
  const lin = (w: Float64Array, bias: Float64Array, head: number, x: Float64Array, off: number, din: number) => {
    const y: number[] = [];
    for (let i = 0; i < d; i++) {
      let s = bias[head * d + i];
      for (let j = 0; j < din; j++) s += w[(head * d + i) * din + j] * x[off + j];
      y.push(s);
    }
    return y;
  };
  for (let i = 0; i < b; i++) {
    const len = c.lengths ? c.lengths[i] : n;
    for (let hh = 0; hh < h; hh++) {
      const qn = norm64(lin(p.wq, p.bq, hh, p.g, i * dg, dg));
      const s: number[] = [];
      for (let t = 0; t < len; t++) {
        const kn = norm64(lin(p.wk, p.bk, hh, p.x, (i * n + t) * d, d));
        s.push(qn.reduce((acc, v, j) => acc + v * kn[j], 0));
      }
      const mx = Math.max(...s);
      const ex = s.map((v) => Math.exp(v - mx));
      const z = ex.reduce((a, v) => a + v, 0);
      for (let t = 0; t < len; t++) {
        const v = lin(p.wv, p.bv, hh, p.x, (i * n + t) * d, d);
        for (let j = 0; j < d; j++) out[i * d + j] += (ex[t] / z) * v[j] / h;
      }
    }
  }
  return out;
}

function mhaMake(c: MhaCase, seed: number) {
  const gs = gaussian(seed);
  const mk = (len: number, scale: number) => {
    const a = new Float32Array(len);
    for (let i = 0; i < len; i++) a[i] = gs() * scale;
    return a;
  };
  const f = {
    g: mk(c.b * c.dg, 1),
    x: mk(c.b * c.n * c.d, 1),
    wq: mk(c.h * c.d * c.dg, 0.5),
    wk: mk(c.h * c.d * c.d, 0.5),
    wv: mk(c.h * c.d * c.d, 0.5),
    bq: c.bias ? mk(c.h * c.d, 0.3) : new Float32Array(c.h * c.d),
    bk: c.bias ? mk(c.h * c.d, 0.3) : new Float32Array(c.h * c.d),
    bv: c.bias ? mk(c.h * c.d, 0.3) : new Float32Array(c.h * c.d),
  };
  const inputs = {
    global: { data: f.g, rows: c.b, cols: c.dg },
    tokens: { data: f.x, dims: [c.b, c.n, c.d] },
    lengths: c.lengths,
    wq: { data: f.wq, dims: [c.h, c.d, c.dg] },
    wk: { data: f.wk, dims: [c.h, c.d, c.d] },
    wv: { data: f.wv, dims: [c.h, c.d, c.d] },
    ...(c.bias ? { bq: f.bq, bk: f.bk, bv: f.bv } : {}),
  };
  const p: MhaP = { g: f64(f.g), x: f64(f.x), wq: f64(f.wq), wk: f64(f.wk), wv: f64(f.wv), bq: f64(f.bq), bk: f64(f.bk), bv: f64(f.bv) };
  return { f, inputs, p };
}

const mha = suite('cosineMhaPool');

const MHA_CASES: MhaCase[] = [
  { b: 1, n: 1, d: 3, dg: 2, h: 1, bias: false },
  { b: 3, n: 7, d: 5, dg: 4, h: 2, lengths: Int32Array.from([7, 1, 4]), bias: true },
  { b: 2, n: 5, d: 9, dg: 11, h: 3, bias: true },
];

mha('forward (and attention weights) match float64', () => {
  for (const [ci, c] of MHA_CASES.entries()) {
    const { inputs, p } = mhaMake(c, 200 + ci);
    const r = cosineMhaPoolSync(inputs, { attention: true });
    const ref = mhaRef(p, c);
    assert.ok(relErr(r.out, ref) < 1e-5, `case ${ci}: ${relErr(r.out, ref)}`);
    const att = r.attention!;
    assert.is(att.length, c.b * c.h * c.n);
    for (let i = 0; i < c.b; i++) {
      const len = c.lengths ? c.lengths[i] : c.n;
      for (let hh = 0; hh < c.h; hh++) {
        let s = 0;
        for (let t = 0; t < c.n; t++) {
          const a = att[(i * c.h + hh) * c.n + t];
          if (t >= len) assert.is(a, 0, 'padding attention');
          s += a;
        }
        assert.ok(Math.abs(s - 1) < 1e-5, 'attention sums to 1');
      }
    }
  }
});

mha('backward matches finite differences for g, X, Wq, Wk, Wv and the biases', () => {
  for (const [ci, c] of MHA_CASES.entries()) {
    const { inputs, p } = mhaMake(c, 300 + ci);
    const w = f64(gaussianMatrix(c.b, c.d, 400 + ci));
    const gr = cosineMhaPoolBackwardSync(inputs, { data: new Float32Array(w), rows: c.b, cols: c.d });
    const f = () => dotW(w, mhaRef(p, c));
    const pairs: [keyof MhaP, Float32Array][] = [
      ['g', gr.global],
      ['x', gr.tokens],
      ['wq', gr.wq],
      ['wk', gr.wk],
      ['wv', gr.wv],
      ['bq', gr.bq],
      ['bk', gr.bk],
      ['bv', gr.bv],
    ];
    for (const [ki, [key, grad]] of pairs.entries()) {
      const err = fdCheck(p[key], grad, f, 25, 500 + ci * 10 + ki);
      assert.ok(err < 1e-3, `case ${ci} ${key}: fd ${err}`);
    }
    if (c.lengths) {
      for (let i = 0; i < c.b; i++) {
        for (let t = c.lengths[i]; t < c.n; t++) {
          for (let e = 0; e < c.d; e++) assert.is(gr.tokens[(i * c.n + t) * c.d + e], 0, 'padding gradient');
        }
      }
    }
  }
});

mha('padding NaN ignored; async and thread counts agree; typed errors', async () => {
  const c: MhaCase = { b: 6, n: 5, d: 8, dg: 6, h: 2, lengths: Int32Array.from([5, 3, 1, 5, 2, 4]), bias: true };
  const { inputs, f } = mhaMake(c, 600);
  const base = cosineMhaPoolSync(inputs, { threads: 1 }).out;
  const x2 = f.x.slice();
  x2[(1 * 5 + 4) * 8 + 2] = NaN;
  const r2 = await cosineMhaPool({ ...inputs, tokens: { data: x2, dims: [6, 5, 8] } }, { threads: 2 });
  assert.equal(Array.from(r2.out), Array.from(base));
  x2[(1 * 5 + 0) * 8 + 2] = NaN;
  assert.throws(() => cosineMhaPoolSync({ ...inputs, tokens: { data: x2, dims: [6, 5, 8] } }), (e: VlkError) => e.code === 'ERR_VLK_NON_FINITE' && /x: item 1, token 0/.test(e.message));
  assert.throws(() => cosineMhaPoolSync({ ...inputs, wk: { data: f.wk, dims: [2, 8, 4] } } as never), (e: VlkError) => e.code === 'ERR_VLK_DIM_MISMATCH' || e.code === 'ERR_VLK_SHAPE');
  assert.throws(() => cosineMhaPoolSync({ ...inputs, global: { data: f.g, rows: 3, cols: 12 } }), (e: VlkError) => e.code === 'ERR_VLK_SHAPE' && /global/.test(e.message));
  assert.throws(() => cosineMhaPoolSync({ ...inputs, bq: new Float32Array(3) }), (e: VlkError) => e.code === 'ERR_VLK_SHAPE' && /bq/.test(e.message));
  const wq = f.wq.slice();
  wq[5] = Infinity;
  assert.throws(() => cosineMhaPoolSync({ ...inputs, wq: { data: wq, dims: [2, 8, 6] } }), (e: VlkError) => e.code === 'ERR_VLK_NON_FINITE' && /wq/.test(e.message));
});

mha.run();

// ---------------------------------------------------------------------------------------------
// gatedFusion

function gatedRef(e: Float64Array, g: Float64Array, w: Float64Array, bias: Float64Array | null, b: number, d: number) {
  const v = new Float64Array(b * d);
  const z = new Float64Array(b * d);
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < d; j++) {
      let s = bias ? bias[j] : 0;
      for (let t = 0; t < d; t++) s += w[j * 2 * d + t] * e[i * d + t] + w[j * 2 * d + d + t] * g[i * d + t];
      const zz = 1 / (1 + Math.exp(-s));
      z[i * d + j] = zz;
      v[i * d + j] = zz * e[i * d + j] + (1 - zz) * g[i * d + j];
    }
  }
  return { v, z };
}

const gated = suite('gatedFusion');

gated('forward and backward match float64 and finite differences', () => {
  for (const [ci, [b, d, withBias]] of ([[1, 1, true], [3, 7, true], [5, 4, false]] as [number, number, boolean][]).entries()) {
    const e = gaussianMatrix(b, d, 700 + ci);
    const g = gaussianMatrix(b, d, 710 + ci);
    const w = gaussianMatrix(d, 2 * d, 720 + ci).map((x) => x * 0.5);
    const bias = withBias ? gaussianMatrix(1, d, 730 + ci) : undefined;
    const inputs = { e: { data: e, rows: b, cols: d }, g: { data: g, dims: [b, d] }, weight: { data: w, rows: d, cols: 2 * d }, bias };
    const r = gatedFusionSync(inputs);
    const P = { e: f64(e), g: f64(g), w: f64(w), b: bias ? f64(bias) : null };
    const ref = gatedRef(P.e, P.g, P.w, P.b, b, d);
    assert.ok(relErr(r.v, ref.v) < 1e-5, `v ${relErr(r.v, ref.v)}`);
    assert.ok(relErr(r.z, ref.z) < 1e-5, `z ${relErr(r.z, ref.z)}`);
    const dv = f64(gaussianMatrix(b, d, 740 + ci));
    const gr = gatedFusionBackwardSync(inputs, { data: new Float32Array(dv), rows: b, cols: d });
    const f = () => dotW(dv, gatedRef(P.e, P.g, P.w, P.b, b, d).v);
    assert.ok(fdCheck(P.e, gr.e, f, 30, 1) < 1e-3, 'de');
    assert.ok(fdCheck(P.g, gr.g, f, 30, 2) < 1e-3, 'dg');
    assert.ok(fdCheck(P.w, gr.weight, f, 40, 3) < 1e-3, 'dW');
    if (P.b) assert.ok(fdCheck(P.b, gr.bias, f, 30, 4) < 1e-3, 'db');
  }
});

gated('async equals sync; typed errors', async () => {
  const b = 4, d = 6;
  const inputs = { e: { data: gaussianMatrix(b, d, 1), rows: b, cols: d }, g: { data: gaussianMatrix(b, d, 2), rows: b, cols: d }, weight: { data: gaussianMatrix(d, 2 * d, 3), rows: d, cols: 2 * d } };
  const a = await gatedFusion(inputs);
  assert.equal(Array.from(a.v), Array.from(gatedFusionSync(inputs).v));
  assert.throws(() => gatedFusionSync({ ...inputs, weight: { data: gaussianMatrix(d, d, 3), rows: d, cols: d } }), (e: VlkError) => e.code === 'ERR_VLK_DIM_MISMATCH' && /weight/.test(e.message));
  assert.throws(() => gatedFusionSync({ ...inputs, g: { data: gaussianMatrix(3, d, 2), rows: 3, cols: d } }), (e: VlkError) => e.code === 'ERR_VLK_SHAPE' && /g: 3 rows/.test(e.message));
  assert.throws(() => gatedFusionSync({ ...inputs, bias: new Float32Array(2) }), (e: VlkError) => e.code === 'ERR_VLK_SHAPE' && /bias/.test(e.message));
  const e2 = inputs.e.data.slice();
  e2[7] = NaN;
  assert.throws(() => gatedFusionSync({ ...inputs, e: { data: e2, rows: b, cols: d } }), (e: VlkError) => e.code === 'ERR_VLK_NON_FINITE' && /e: row 1, element 1/.test(e.message));
});

gated.run();

// ---------------------------------------------------------------------------------------------
// scanSimilarity

type Mode = 't2i-lse' | 't2i-mean' | 'mean-max';

function scanRef(words: Float64Array, lq: number, wOff: number, reg: Float64Array, rOff: number, R: number, D: number, mode: Mode, l1: number, l2: number): number {
  const A0: number[][] = [];
  for (let t = 0; t < lq; t++) {
    const row: number[] = [];
    for (let r = 0; r < R; r++) {
      let s = 0;
      for (let e = 0; e < D; e++) s += words[wOff + t * D + e] * reg[rOff + r * D + e];
      row.push(s);
    }
    A0.push(row);
  }
  const A = A0.map((row) => row.map((v) => (v > 0 ? v : 0.1 * v)));
  for (let r = 0; r < R; r++) {
    let s = 0;
    for (let t = 0; t < lq; t++) s += A[t][r] * A[t][r];
    const nn = Math.sqrt(s) + EPS;
    for (let t = 0; t < lq; t++) A[t][r] /= nn;
  }
  if (mode === 'mean-max') return A.reduce((acc, row) => acc + Math.max(...row), 0) / lq;
  const rw: number[] = [];
  for (let t = 0; t < lq; t++) {
    const mx = Math.max(...A[t].map((v) => l1 * v));
    const ex = A[t].map((v) => Math.exp(l1 * v - mx));
    const z = ex.reduce((a, v) => a + v, 0);
    const att = new Float64Array(D);
    for (let r = 0; r < R; r++) for (let e = 0; e < D; e++) att[e] += (ex[r] / z) * reg[rOff + r * D + e];
    let dot = 0, nw = 0, na = 0;
    for (let e = 0; e < D; e++) {
      dot += words[wOff + t * D + e] * att[e];
      nw += words[wOff + t * D + e] ** 2;
      na += att[e] ** 2;
    }
    rw.push(dot / Math.max(Math.sqrt(nw) * Math.sqrt(na), 1e-8));
  }
  if (mode === 't2i-mean') return rw.reduce((a, v) => a + v, 0) / lq;
  const mx = Math.max(...rw.map((v) => l2 * v));
  return (mx + Math.log(rw.reduce((a, v) => a + Math.exp(l2 * v - mx), 0))) / l2;
}

function unitRows(m: Float32Array, d: number): Float32Array {
  for (let i = 0; i < m.length / d; i++) {
    let s = 0;
    for (let e = 0; e < d; e++) s += m[i * d + e] ** 2;
    const r = Math.sqrt(s);
    for (let e = 0; e < d; e++) m[i * d + e] /= r;
  }
  return m;
}

const scan = suite('scanSimilarity');

scan('bank + CSR lists (repeated candidates: Gram path) match float64 in every mode, top-k sorted', () => {
  const Q = 5, L = 7, D = 9, N = 6, R = 5;
  const words = unitRows(gaussianMatrix(Q * L, D, 800), D);
  const regions = unitRows(gaussianMatrix(N * R, D, 801), D);
  const wordLengths = Int32Array.from([7, 1, 3, 7, 5]);
  // Query 2 has no candidates; query 3 lists row 4 twice (a tie: the lower position first).
  const lists = [[0, 1, 2, 3, 4, 5], [5, 0], [], [4, 2, 4, 1, 0, 3, 5], [3]];
  const offsets = new Int32Array(Q + 1);
  lists.forEach((l, i) => (offsets[i + 1] = offsets[i] + l.length));
  const rows = Int32Array.from(lists.flat());
  const W = f64(words), V = f64(regions);
  for (const mode of ['t2i-lse', 't2i-mean', 'mean-max'] as Mode[]) {
    const k = 3;
    const r = scanSimilaritySync({ words: { data: words, dims: [Q, L, D] }, wordLengths, regions: { data: regions, dims: [N, R, D] }, candidates: { offsets, rows } }, { mode, k });
    const ref = new Float64Array(rows.length);
    for (let q = 0; q < Q; q++) {
      for (let i = offsets[q]; i < offsets[q + 1]; i++) ref[i] = scanRef(W, wordLengths[q], q * L * D, V, rows[i] * R * D, R, D, mode, 9, 6);
    }
    assert.ok(relErr(r.scores, ref) < 1e-5, `${mode}: ${relErr(r.scores, ref)}`);
    for (let q = 0; q < Q; q++) {
      const cnt = lists[q].length;
      const order = lists[q].map((_, j) => j).sort((a, b) => r.scores[offsets[q] + b] - r.scores[offsets[q] + a] || a - b);
      assert.is(r.counts![q], Math.min(k, cnt));
      for (let j = 0; j < k; j++) {
        if (j < cnt) {
          assert.is(r.positions![q * k + j], order[j], `${mode} q${q} pos ${j}`);
          assert.is(r.indices![q * k + j], lists[q][order[j]]);
          assert.is(r.topScores![q * k + j], r.scores[offsets[q] + order[j]]);
        } else {
          assert.is(r.indices![q * k + j], -1);
          assert.ok(Number.isNaN(r.topScores![q * k + j]));
        }
      }
    }
    // The duplicated row 4 of query 3: equal scores.
    assert.is(r.scores[offsets[3] + 0], r.scores[offsets[3] + 2]);
  }
});

scan('dense Q x C x R x D (direct path) matches float64; lambdas honoured; threads agree', async () => {
  const Q = 4, C = 3, L = 5, D = 11, R = 7;
  const words = unitRows(gaussianMatrix(Q * L, D, 900), D);
  const regions = unitRows(gaussianMatrix(Q * C * R, D, 901), D);
  const W = f64(words), V = f64(regions);
  for (const [l1, l2] of [[9, 6], [4, 1.5]]) {
    const r = scanSimilaritySync({ words: { data: words, dims: [Q, L, D] }, regions: { data: regions, dims: [Q, C, R, D] } }, { lambda1: l1, lambda2: l2, k: 2, threads: 1 });
    const ref = new Float64Array(Q * C);
    for (let q = 0; q < Q; q++) for (let c = 0; c < C; c++) ref[q * C + c] = scanRef(W, L, q * L * D, V, (q * C + c) * R * D, R, D, 't2i-lse', l1, l2);
    assert.ok(relErr(r.scores, ref) < 1e-5, `lambda ${l1}/${l2}: ${relErr(r.scores, ref)}`);
    const a = await scanSimilarity({ words: { data: words, dims: [Q, L, D] }, regions: { data: regions, dims: [Q, C, R, D] } }, { lambda1: l1, lambda2: l2, k: 2, threads: 2 });
    assert.equal(Array.from(a.scores), Array.from(r.scores));
    assert.equal(Array.from(a.indices!), Array.from(r.indices!));
    for (let q = 0; q < Q; q++) assert.ok(r.indices![q * 2] >= q * C && r.indices![q * 2] < (q + 1) * C, 'dense indices are bank rows q C + c');
  }
});

scan('typed errors name the input', async () => {
  const words = { data: gaussianMatrix(2 * 3, 4, 1), dims: [2, 3, 4] };
  const regions = { data: gaussianMatrix(3 * 5, 4, 2), dims: [3, 5, 4] };
  const candidates = { offsets: Int32Array.from([0, 2, 3]), rows: Int32Array.from([0, 2, 1]) };
  assert.ok(scanSimilaritySync({ words, regions, candidates }).scores.length === 3);
  assert.throws(() => scanSimilaritySync({ words, regions, candidates: { offsets: Int32Array.from([0, 2, 3]), rows: Int32Array.from([0, 3, 1]) } }), (e: VlkError) => e.code === 'ERR_VLK_INVALID_ARG' && /rows\[1\] = 3/.test(e.message));
  assert.throws(() => scanSimilaritySync({ words, regions, candidates: { offsets: Int32Array.from([0, 2]), rows: Int32Array.from([0, 2]) } }), (e: VlkError) => e.code === 'ERR_VLK_SHAPE');
  assert.throws(() => scanSimilaritySync({ words, regions: { data: regions.data.subarray(0, 15), dims: [5, 3, 1] }, candidates }), (e: VlkError) => e.code === 'ERR_VLK_DIM_MISMATCH');
  assert.throws(() => scanSimilaritySync({ words, regions, candidates }, { mode: 'i2t' as never }), (e: VlkError) => e.code === 'ERR_VLK_INVALID_ARG' && /mode/.test(e.message));
  assert.throws(() => scanSimilaritySync({ words, regions, candidates }, { lambda1: 0 }), (e: VlkError) => e.code === 'ERR_VLK_INVALID_ARG' && /lambda1/.test(e.message));
  assert.throws(() => scanSimilaritySync({ words, regions, candidates }, { k: -1 }), (e: VlkError) => e.code === 'ERR_VLK_INVALID_K');
  assert.throws(() => scanSimilaritySync({ words, regions }), (e: VlkError) => e.code === 'ERR_VLK_TYPE' && /regions/.test(e.message));
  const bad = regions.data.slice();
  bad[17] = NaN;
  assert.throws(() => scanSimilaritySync({ words, regions: { data: bad, dims: [3, 5, 4] }, candidates }), (e: VlkError) => e.code === 'ERR_VLK_NON_FINITE' && /regions/.test(e.message));
  assert.throws(() => scanSimilaritySync({ words, wordLengths: Int32Array.from([3, 4]), regions, candidates }), (e: VlkError) => e.code === 'ERR_VLK_INVALID_ARG' && /wordLengths\[1\] = 4/.test(e.message));
  const ac = new AbortController();
  ac.abort();
  const err = await scanSimilarity({ words, regions, candidates }, { signal: ac.signal }).then(() => null, (e) => e);
  assert.is(err?.name, 'AbortError');
});

scan('every ISA path gives the same scores, bit for bit (Gram and direct paths, 20 words: two blocks)', () => {
  const Q = 3, L = 20, D = 37, N = 5, R = 13;
  const words = unitRows(gaussianMatrix(Q * L, D, 950), D);
  const bank = unitRows(gaussianMatrix(N * R, D, 951), D);
  const csr = { words: { data: words, dims: [Q, L, D] }, regions: { data: bank, dims: [N, R, D] }, candidates: { offsets: Int32Array.from([0, 5, 10, 15]), rows: Int32Array.from([0, 1, 2, 3, 4, 4, 3, 2, 1, 0, 1, 1, 1, 2, 2]) } };
  const dense = { words: { data: words, dims: [Q, L, D] }, regions: { data: gaussianMatrix(Q * 2 * R, D, 952), dims: [Q, 2, R, D] } };
  const base = [scanSimilaritySync(csr).scores, scanSimilaritySync(dense).scores, scanSimilaritySync(csr, { mode: 'mean-max' }).scores];
  const W = f64(words), V = f64(bank);
  const ref = Array.from(csr.candidates.rows).map((row, i) => scanRef(W, L, Math.floor(i / 5) * L * D, V, row * R * D, R, D, 't2i-lse', 9, 6));
  assert.ok(relErr(base[0], Float64Array.from(ref)) < 1e-5, `two word blocks vs float64: ${relErr(base[0], Float64Array.from(ref))} ${base[0].slice(0, 3)} ${ref.slice(0, 3)}`);
  for (const isa of info().isas) {
    setIsa(isa as never);
    try {
      const got = [scanSimilaritySync(csr).scores, scanSimilaritySync(dense).scores, scanSimilaritySync(csr, { mode: 'mean-max' }).scores];
      got.forEach((g, i) => assert.equal(Array.from(g), Array.from(base[i]), `${isa} case ${i}`));
    } finally {
      setIsa(null);
    }
  }
});

scan.run();
