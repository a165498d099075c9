// biasedAttention (test/biased_attention.test.ts): AAHR's biased graph attention layer (attention with
// bias w R on connected pairs and -inf elsewhere, output projection, residual, post-LayerNorm).
// The forward is checked against a float64 reference (per row, per head, relative error < 1e-5)
// and against an independent dense formulation (explicit n x n masked biased score matrix,
// row softmax, matrix products); every gradient (x, wq, wk, wv, wo, bq, bk, bv, bo, gamma, beta, R,
// w) against central finite differences of the float64 forward (relative error < 1e-3). Sizes
// n = 1, 7, 33 with tiles that do not divide n, 1 and 4 heads, D = 8 and 12; rows whose only
// connected entry is the self-edge, rows empty in the mask; saved vs recomputed backward, sync vs
// async and thread counts give the same bits; bad inputs give typed errors naming the input.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { biasedAttention, biasedAttentionBackward, biasedAttentionBackwardSync, biasedAttentionSync, VlkError } from './helpers/lib';
import { gaussian, rng } from './helpers/random';

interface Case {
  n: number;
  d: number;
  heads: number;
  w: number;
  blockQuery?: number;
  blockKey?: number;
  selfLoops?: boolean;
  /** Rows of the mask set to all zeros (only the self-edge survives). */
  emptyRows?: number[];
  /** Rows whose only mask entry is the diagonal. */
  diagOnlyRows?: number[];
}

const PARAMS = ['x', 'wq', 'wk', 'wv', 'wo', 'bq', 'bk', 'bv', 'bo', 'gamma', 'beta', 'relevance'] as const;
type Param = (typeof PARAMS)[number];
type Vals = Record<Param, Float64Array> & { mask: Uint8Array; w: number };

function make(c: Case, seed: number): Vals {
  const g = gaussian(seed);
  const u = rng(seed + 7);
  const arr = (k: number, s: number, shift = 0) => Float64Array.from({ length: k }, () => Math.fround(shift + g() * s));
  const { n, d } = c;
  const ws = 1.2 / Math.sqrt(d);
  const v: Vals = {
    x: arr(n * d, 1),
    wq: arr(d * d, ws),
    wk: arr(d * d, ws),
    wv: arr(d * d, ws),
    wo: arr(d * d, ws),
    bq: arr(d, 0.1),
    bk: arr(d, 0.1),
    bv: arr(d, 0.1),
    bo: arr(d, 0.1),
    gamma: arr(d, 0.2, 1),
    beta: arr(d, 0.1),
    relevance: Float64Array.from({ length: n * n }, () => Math.fround(u())),
    mask: new Uint8Array(n * n),
    w: c.w,
  };
  // Top 50% per row of the relevance (ties kept), as AAHR's connectivity.
  for (let i = 0; i < n; i++) {
    const row = Array.from(v.relevance.subarray(i * n, i * n + n)).sort((a, b) => b - a);
    const kth = row[Math.max(0, Math.floor(0.5 * n) - 1)];
    for (let j = 0; j < n; j++) v.mask[i * n + j] = v.relevance[i * n + j] >= kth ? 1 : 0;
  }
  for (const i of c.emptyRows ?? []) v.mask.fill(0, i * n, i * n + n);
  for (const i of c.diagOnlyRows ?? []) {
    v.mask.fill(0, i * n, i * n + n);
    v.mask[i * n + i] = 1;
  }
  return v;
}

const connected = (v: Vals, c: Case, i: number, j: number) => v.mask[i * c.n + j] === 1 || ((c.selfLoops ?? true) && i === j);

// x W^T + b with W out x in.
function linear(x: Float64Array, w: Float64Array, b: Float64Array, n: number, d: number): Float64Array {
  const y = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let o = 0; o < d; o++) {
      let acc = b[o];
      for (let k = 0; k < d; k++) acc += x[i * d + k] * w[o * d + k];
      y[i * d + o] = acc;
    }
  }
  return y;
}

function layerNormResidual(x: Float64Array, a: Float64Array, v: Vals, n: number, d: number): Float64Array {
  const y = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    let mean = 0;
    for (let c = 0; c < d; c++) mean += x[i * d + c] + a[i * d + c];
    mean /= d;
    let vr = 0;
    for (let c = 0; c < d; c++) vr += (x[i * d + c] + a[i * d + c] - mean) ** 2;
    vr /= d;
    const rs = 1 / Math.sqrt(vr + 1e-5);
    for (let c = 0; c < d; c++) y[i * d + c] = v.gamma[c] * (x[i * d + c] + a[i * d + c] - mean) * rs + v.beta[c];
  }
  return y;
}

// The float64 reference: per row and head, scores over the connected keys only.
function reference(v: Vals, c: Case): Float64Array {
  const { n, d, heads } = c;
  const dh = d / heads;
  const q = linear(v.x, v.wq, v.bq, n, d);
  const k = linear(v.x, v.wk, v.bk, n, d);
  const val = linear(v.x, v.wv, v.bv, n, d);
  const o = new Float64Array(n * d);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < n; i++) {
      const js: number[] = [];
      const s: number[] = [];
      for (let j = 0; j < n; j++) {
        if (!connected(v, c, i, j)) continue;
        let dot = 0;
        for (let t = 0; t < dh; t++) dot += q[i * d + h * dh + t] * k[j * d + h * dh + t];
        js.push(j);
        s.push(dot / Math.sqrt(dh) + v.w * v.relevance[i * n + j]);
      }
      const mx = Math.max(...s);
      const e = s.map((x) => Math.exp(x - mx));
      const z = e.reduce((a, b) => a + b, 0);
      for (let t = 0; t < dh; t++) {
        let acc = 0;
        js.forEach((j, idx) => (acc += (e[idx] / z) * val[j * d + h * dh + t]));
        o[i * d + h * dh + t] = acc;
      }
    }
  }
  return layerNormResidual(v.x, linear(o, v.wo, v.bo, n, d), v, n, d);
}

// An independent dense formulation: whole matrices, explicit masked biased score matrix with -inf.
function matmul(a: Float64Array, b: Float64Array, m: number, k: number, nn: number): Float64Array {
  const c = new Float64Array(m * nn);
  for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) for (let j = 0; j < nn; j++) c[i * nn + j] += a[i * k + p] * b[p * nn + j];
  return c;
}
function transpose(a: Float64Array, r: number, cols: number): Float64Array {
  const t = new Float64Array(r * cols);
  for (let i = 0; i < r; i++) for (let j = 0; j < cols; j++) t[j * r + i] = a[i * cols + j];
  return t;
}
function dense(v: Vals, c: Case): Float64Array {
  const { n, d, heads } = c;
  const dh = d / heads;
  const addRow = (m: Float64Array, b: Float64Array) => m.map((x, idx) => x + b[idx % d]);
  const q = addRow(matmul(v.x, transpose(v.wq, d, d), n, d, d), v.bq);
  const k = addRow(matmul(v.x, transpose(v.wk, d, d), n, d, d), v.bk);
  const vv = addRow(matmul(v.x, transpose(v.wv, d, d), n, d, d), v.bv);
  const bias = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) bias[i * n + j] = connected(v, c, i, j) ? v.w * v.relevance[i * n + j] : -Infinity;
  const o = new Float64Array(n * d);
  const slice = (m: Float64Array, h: number) => {
    const s = new Float64Array(n * dh);
    for (let i = 0; i < n; i++) for (let t = 0; t < dh; t++) s[i * dh + t] = m[i * d + h * dh + t];
    return s;
  };
  for (let h = 0; h < heads; h++) {
    const s = matmul(slice(q, h), transpose(slice(k, h), n, dh), n, dh, n).map((x, idx) => x / Math.sqrt(dh) + bias[idx]);
    const p = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      const row = s.subarray(i * n, i * n + n);
      const mx = row.reduce((a, b) => Math.max(a, b), -Infinity);
      let z = 0;
      for (let j = 0; j < n; j++) z += Math.exp(row[j] - mx);
      for (let j = 0; j < n; j++) p[i * n + j] = Math.exp(row[j] - mx) / z;
    }
    const oh = matmul(p, slice(vv, h), n, n, dh);
    for (let i = 0; i < n; i++) for (let t = 0; t < dh; t++) o[i * d + h * dh + t] = oh[i * dh + t];
  }
  const att = addRow(matmul(o, transpose(v.wo, d, d), n, d, d), v.bo);
  return layerNormResidual(v.x, att, v, n, d);
}

const f32 = (x: Float64Array) => Float32Array.from(x);

function inputs(v: Vals, c: Case) {
  return {
    x: { data: f32(v.x), rows: c.n, cols: c.d },
    wq: { data: f32(v.wq), dims: [c.d, c.d] as [number, number] },
    wk: { data: f32(v.wk), rows: c.d, cols: c.d },
    wv: { data: f32(v.wv), rows: c.d, cols: c.d },
    wo: { data: f32(v.wo), rows: c.d, cols: c.d },
    bq: f32(v.bq),
    bk: f32(v.bk),
    bv: f32(v.bv),
    bo: f32(v.bo),
    gamma: f32(v.gamma),
    beta: f32(v.beta),
    relevance: { data: f32(v.relevance), rows: c.n, cols: c.n },
    mask: v.mask,
  };
}

function options(c: Case) {
  return { heads: c.heads, biasWeight: c.w, blockQuery: c.blockQuery, blockKey: c.blockKey, selfLoops: c.selfLoops };
}

function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-12);
}

// L = sum(Y * G) of the float64 forward.
function loss(v: Vals, c: Case, g: Float64Array): number {
  const y = reference(v, c);
  let s = 0;
  for (let i = 0; i < y.length; i++) s += y[i] * g[i];
  return s;
}

// Central differences at up to `count` sampled entries of one input vs the analytic gradient.
function fdCheck(v: Vals, c: Case, g: Float64Array, key: Param, grad: Float32Array, count: number, seed: number): number {
  const x = v[key];
  const pick = rng(seed);
  const picks = new Set<number>();
  if (x.length <= count) for (let i = 0; i < x.length; i++) picks.add(i);
  while (picks.size < Math.min(count, x.length)) picks.add(Math.floor(pick() * x.length));
  const h = 1e-6;
  let num = 0;
  let den = 0;
  for (const i of picks) {
    const old = x[i];
    x[i] = old + h;
    const up = loss(v, c, g);
    x[i] = old - h;
    const down = loss(v, c, g);
    x[i] = old;
    const fd = (up - down) / (2 * h);
    num += (fd - grad[i]) ** 2;
    den += fd ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-7);
}

const cases: [string, Case][] = [
  ['n = 1, one head, D = 8 (a lone node attends to itself)', { n: 1, d: 8, heads: 1, w: 1 }],
  ['n = 7, 4 heads, D = 12, tiles 3 x 2, a row empty in the mask and a row with the self-edge only', {
    n: 7, d: 12, heads: 4, w: 1, blockQuery: 3, blockKey: 2, emptyRows: [2], diagOnlyRows: [4],
  }],
  ['n = 7, one head, D = 8, default tiles, w = 1.5', { n: 7, d: 8, heads: 1, w: 1.5, emptyRows: [0, 6] }],
  ['n = 33, 4 heads, D = 12, tiles 5 x 7, w = 1.5', { n: 33, d: 12, heads: 4, w: 1.5, blockQuery: 5, blockKey: 7, emptyRows: [0, 17], diagOnlyRows: [32] }],
  ['n = 33, one head, D = 8, tiles 16 x 32, selfLoops false', { n: 33, d: 8, heads: 1, w: 1, blockQuery: 16, blockKey: 32, selfLoops: false }],
  ['n = 33, 4 heads, D = 8 (dh = 2), tiles 1 x 33, negative w', { n: 33, d: 8, heads: 4, w: -0.7, blockQuery: 1, blockKey: 33, diagOnlyRows: [3] }],
];

const Attn = suite('biasedAttention');

for (const [name, c] of cases) {
  Attn(`forward vs float64 and dense, gradients vs finite differences: ${name}`, async () => {
    const v = make(c, 100 + c.n * 13 + c.heads + c.d);
    const want = reference(v, c);
    const alt = dense(v, c);
    assert.ok(relErr(alt, want) < 1e-12, `the two float64 formulations agree (${relErr(alt, want)})`);
    const fwd = await biasedAttention(inputs(v, c), options(c));
    assert.is(fwd.output.length, c.n * c.d);
    const e1 = relErr(fwd.output, want);
    const e2 = relErr(fwd.output, alt);
    assert.ok(e1 < 1e-5, `forward vs float64: ${e1}`);
    assert.ok(e2 < 1e-5, `forward vs dense: ${e2}`);
    // Gradients of sum(Y * G).
    const gg = gaussian(5 + c.n);
    const g = Float64Array.from({ length: c.n * c.d }, () => Math.fround(gg()));
    const grads = biasedAttentionBackwardSync(inputs(v, c), { data: f32(g), rows: c.n, cols: c.d }, { ...options(c), saved: fwd.saved });
    const errs: Record<string, number> = {};
    for (const p of PARAMS) if (p !== 'bk') errs[p] = fdCheck(v, c, g, p, grads[p], 24, 11 + p.length);
    for (const [k, e] of Object.entries(errs)) assert.ok(e < 1e-3, `d${k}: relative error ${e}`);
    // bk adds q_i . bk to every score of row i, which the softmax ignores: dbk is 0 up to rounding
    // (finite differences agree at the 1e-9 level).
    const scale = Math.max(1, ...Array.from(grads.bq, Math.abs));
    for (let t = 0; t < c.d; t++) assert.ok(Math.abs(grads.bk[t]) < 1e-5 * scale, `dbk[${t}] = ${grads.bk[t]}`);
    for (let t = 0; t < c.d; t++) {
      const old = v.bk[t];
      v.bk[t] = old + 1e-4;
      const up = loss(v, c, g);
      v.bk[t] = old - 1e-4;
      const down = loss(v, c, g);
      v.bk[t] = old;
      assert.ok(Math.abs(up - down) / 2e-4 < 1e-6, `finite difference of bk[${t}]: ${(up - down) / 2e-4}`);
    }
    // dw.
    const h = 1e-6;
    const fdw = (loss({ ...v, w: v.w + h }, c, g) - loss({ ...v, w: v.w - h }, c, g)) / (2 * h);
    assert.ok(Math.abs(fdw - grads.biasWeight) <= 1e-3 * Math.max(Math.abs(fdw), 1e-6), `dw ${grads.biasWeight} vs ${fdw}`);
    // dR is exactly 0 where not connected; with w != 0 and a connected pair it is not all 0.
    let nonzero = 0;
    for (let i = 0; i < c.n; i++) {
      for (let j = 0; j < c.n; j++) {
        const r = grads.relevance[i * c.n + j];
        if (!connected(v, c, i, j)) assert.is(r, 0, `dR[${i}, ${j}] not connected`);
        else if (r !== 0) nonzero++;
      }
    }
    if (c.n > 1) assert.ok(nonzero > 0, 'some dR entries are non-zero');
    // Rows whose only connected entry is the self-edge attend to themselves alone: dR there is 0
    // up to rounding (the softmax of one entry does not depend on it).
    for (const i of [...(c.emptyRows ?? []), ...(c.diagOnlyRows ?? [])]) {
      for (let j = 0; j < c.n; j++) assert.ok(Math.abs(grads.relevance[i * c.n + j]) < 1e-5, `dR row ${i}`);
    }
    // The recomputed-forward backward, the async form and one thread give the same bits.
    const again = await biasedAttentionBackward(inputs(v, c), { data: f32(g), rows: c.n, cols: c.d }, { ...options(c), threads: 1 });
    for (const p of PARAMS) assert.equal(Array.from(again[p]), Array.from(grads[p]), `d${p}: saved vs recomputed, threads`);
    assert.is(again.biasWeight, grads.biasWeight);
    const one = biasedAttentionSync(inputs(v, c), { ...options(c), threads: 1, save: false });
    assert.is(one.saved, undefined);
    assert.equal(Array.from(one.output), Array.from(fwd.output), 'sync, one thread: same bits');
  });
}

Attn('tile sizes change the result by rounding only; a row that attends to itself alone gives LayerNorm(x + v Wo^T + bo)', () => {
  const c: Case = { n: 20, d: 12, heads: 3, w: 1, diagOnlyRows: [5] };
  const v = make(c, 77);
  const a = biasedAttentionSync(inputs(v, c), { ...options(c), blockQuery: 3, blockKey: 5 }).output;
  const b = biasedAttentionSync(inputs(v, c), { ...options(c), blockQuery: 64, blockKey: 128 }).output;
  assert.ok(relErr(a, b) < 1e-6, `tiles: ${relErr(a, b)}`);
  // Row 5: P is one-hot on the diagonal in every head, so O_5 = V_5.
  const val = linear(v.x, v.wv, v.bv, c.n, c.d);
  const att = linear(val, v.wo, v.bo, c.n, c.d);
  const y = layerNormResidual(v.x, att, v, c.n, c.d);
  for (let t = 0; t < c.d; t++) assert.ok(Math.abs(a[5 * c.d + t] - y[5 * c.d + t]) < 1e-5, `row 5, column ${t}`);
});

Attn('large scores and bias stay finite (max-subtracted online softmax)', () => {
  const c: Case = { n: 9, d: 8, heads: 2, w: 60, blockQuery: 2, blockKey: 4 };
  const v = make(c, 31);
  for (let i = 0; i < v.x.length; i++) v.x[i] = Math.fround(v.x[i] * 6);
  const y = biasedAttentionSync(inputs(v, c), options(c)).output;
  assert.ok(y.every(Number.isFinite));
  assert.ok(relErr(y, reference(v, c)) < 1e-5, `${relErr(y, reference(v, c))}`);
});

Attn('bad inputs: typed errors naming the input', async () => {
  const c: Case = { n: 5, d: 8, heads: 2, w: 1 };
  const v = make(c, 9);
  const ok = inputs(v, c);
  const code = (fn: () => unknown, want: string, match?: RegExp) => {
    try {
      fn();
    } catch (e) {
      assert.instance(e, VlkError);
      assert.is((e as VlkError).code, want, (e as Error).message);
      if (match) assert.match((e as Error).message, match);
      return;
    }
    assert.unreachable(`expected ${want}`);
  };
  const opts = options(c);
  code(() => biasedAttentionSync({ ...ok, mask: new Uint8Array(24) }, opts), 'ERR_VLK_SHAPE', /mask: length 24, expected n \* n/);
  code(() => biasedAttentionSync({ ...ok, mask: new Float32Array(25) as never }, opts), 'ERR_VLK_TYPE', /mask/);
  const m2 = Uint8Array.from(ok.mask);
  m2[7] = 2;
  code(() => biasedAttentionSync({ ...ok, mask: m2 }, opts), 'ERR_VLK_INVALID_ARG', /mask: entry \(1, 2\) is 2/);
  code(() => biasedAttentionSync(ok, { ...opts, heads: 3 }), 'ERR_VLK_INVALID_ARG', /D = 8 is not divisible by heads = 3/);
  code(() => biasedAttentionSync(ok, { ...opts, heads: undefined as never }), 'ERR_VLK_INVALID_ARG', /heads/);
  code(() => biasedAttentionSync(ok, { ...opts, blockKey: 0 }), 'ERR_VLK_INVALID_ARG', /blockKey/);
  code(() => biasedAttentionSync(ok, { ...opts, biasWeight: NaN }), 'ERR_VLK_INVALID_ARG', /biasWeight/);
  code(() => biasedAttentionSync({ ...ok, wq: { data: new Float32Array(8 * 7), rows: 8, cols: 7 } }, opts), 'ERR_VLK_DIM_MISMATCH', /wq/);
  code(() => biasedAttentionSync({ ...ok, wk: { data: new Float32Array(7 * 8), rows: 7, cols: 8 } }, opts), 'ERR_VLK_SHAPE', /wk: 7 rows/);
  code(() => biasedAttentionSync({ ...ok, bo: new Float32Array(7) }, opts), 'ERR_VLK_SHAPE', /bo: length 7/);
  code(() => biasedAttentionSync({ ...ok, relevance: { data: new Float32Array(20), rows: 4, cols: 5 } }, opts), 'ERR_VLK_SHAPE', /relevance/);
  code(() => biasedAttentionSync({ ...ok, x: new Float32Array(40) }, opts), 'ERR_VLK_INVALID_ARG', /options.dim/);
  const xn = Float32Array.from(ok.x.data);
  xn[2 * 8 + 3] = NaN;
  code(() => biasedAttentionSync({ ...ok, x: { data: xn, rows: 5, cols: 8 } }, opts), 'ERR_VLK_NON_FINITE', /x: row 2, element 3/);
  const rn = Float32Array.from(ok.relevance.data);
  rn[3 * 5 + 1] = NaN;
  code(() => biasedAttentionSync({ ...ok, relevance: { data: rn, rows: 5, cols: 5 } }, opts), 'ERR_VLK_NON_FINITE', /relevance: row 3, element 1/);
  const wn = Float32Array.from(ok.wv.data);
  wn[9] = Infinity;
  code(() => biasedAttentionSync({ ...ok, wv: { data: wn, rows: 8, cols: 8 } }, opts), 'ERR_VLK_NON_FINITE', /wv: row 1, element 1/);
  // Without self-loops, a row with no connected entry has no softmax: a typed error, never NaN.
  const me = Uint8Array.from(ok.mask);
  me.fill(0, 10, 15);
  code(() => biasedAttentionSync({ ...ok, mask: me }, { ...opts, selfLoops: false }), 'ERR_VLK_EMPTY', /mask: row 2 has no connected entry/);
  const y = biasedAttentionSync({ ...ok, mask: me }, opts).output;  // with self-loops it is fine
  assert.ok(y.every(Number.isFinite));
  const dy = { data: new Float32Array(40), rows: 5, cols: 8 };
  code(() => biasedAttentionBackwardSync(ok, { data: new Float32Array(32), rows: 4, cols: 8 }, opts), 'ERR_VLK_SHAPE', /dOutput: 4 rows/);
  const dyn = { data: new Float32Array(40).fill(NaN), rows: 5, cols: 8 };
  code(() => biasedAttentionBackwardSync(ok, dyn, opts), 'ERR_VLK_NON_FINITE', /dOutput/);
  const saved = biasedAttentionSync(ok, opts).saved!;
  code(() => biasedAttentionBackwardSync(ok, dy, { ...opts, saved: { ...saved, lse: new Float32Array(3) } }), 'ERR_VLK_SHAPE', /saved.lse/);
  code(() => biasedAttentionSync(null as never, opts), 'ERR_VLK_TYPE');
  const err = await biasedAttention(ok, { ...opts, heads: 5 }).then(() => null, (e) => e);
  assert.is((err as VlkError).code, 'ERR_VLK_INVALID_ARG');
  const ac = new AbortController();
  ac.abort();
  const ab = await biasedAttentionBackward(ok, dy, { ...opts, signal: ac.signal }).then(() => null, (e) => e);
  assert.is((ab as Error).name, 'AbortError');
});

Attn.run();
