// In-batch graph ops (test/graph.test.ts, seed 004 AAHR): relevance (gaussian and cosine) and
// gcn forward against float64 references (relative error < 1e-5) and their backward passes
// against central finite differences of those references (relative error < 1e-3), at n = 1, 7,
// 33 with odd D, plus a far-from-origin cluster of near points (the Gram-matrix cancellation
// case), duplicate rows (zero-distance gradient 0) and a zero row (cosine); scanRelevance against
// a float64 reference with wordLengths < L (padding NaN, so it must never be read); rowTopkMask
// with ties, both k forms, -Infinity and the diagonal rule; thread-count independence, sync =
// async, abort, and typed errors naming the argument.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  gcn,
  gcnBackwardSync,
  gcnSync,
  graph,
  info,
  relevance,
  relevanceBackwardSync,
  relevanceSync,
  rowTopkMaskSync,
  scanRelevance,
  scanRelevanceSync,
  setIsa,
  VlkError,
} from './helpers/lib';
import { gaussian } from './helpers/random';

const f32 = (x: Float64Array) => Float32Array.from(x);
const f64 = (x: Float32Array) => Float64Array.from(x);

function randn(count: number, seed: number, scale = 1): Float64Array {
  const g = gaussian(seed);
  return Float64Array.from({ length: count }, () => Math.fround(g() * scale));
}

// max |a - b| / max |b| (normwise relative error).
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return den === 0 ? num : num / den;
}

// ||a - b||_2 / ||b||_2 over a sample.
function relErr2(a: number[], b: number[]): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-300));
}

// Central differences of loss(x) at `count` sampled entries of x (float64, x restored after).
function fd(x: Float64Array, loss: () => number, count: number, seed: number, h = 1e-6): { idx: number[]; val: number[] } {
  const g = gaussian(seed);
  const idx: number[] = [];
  const val: number[] = [];
  const all = x.length <= count;
  for (let s = 0; s < Math.min(count, x.length); s++) {
    const i = all ? s : Math.floor(Math.abs(g() * 1e6)) % x.length;
    const keep = x[i];
    x[i] = keep + h;
    const up = loss();
    x[i] = keep - h;
    const down = loss();
    x[i] = keep;
    idx.push(i);
    val.push((up - down) / (2 * h));
  }
  return { idx, val };
}

function checkGrad(x: Float64Array, grad: Float32Array, loss: () => number, what: string, count = 40, seed = 5, h = 1e-6) {
  const { idx, val } = fd(x, loss, count, seed, h);
  const got = idx.map((i) => grad[i]);
  const err = relErr2(got, val);
  assert.ok(err < 1e-3, `${what}: finite-difference relative error ${err}`);
}

// ---- float64 references -----------------------------------------------------------------------

function relevanceRef(x: Float64Array, n: number, d: number, kind: 'gaussian' | 'cosine', sigma: number): Float64Array {
  const r = new Float64Array(n * n);
  const norms = Array.from({ length: n }, (_, i) => {
    let s = 0;
    for (let k = 0; k < d; k++) s += x[i * d + k] ** 2;
    return Math.max(Math.sqrt(s), 1e-12);
  });
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let k = 0; k < d; k++) {
        acc += kind === 'gaussian' ? (x[i * d + k] - x[j * d + k]) ** 2 : x[i * d + k] * x[j * d + k];
      }
      r[i * n + j] = kind === 'gaussian' ? Math.exp(-Math.sqrt(acc) / sigma) : acc / (norms[i] * norms[j]);
    }
  }
  return r;
}

function dotLoss(r: Float64Array, g: Float64Array): number {
  let s = 0;
  for (let i = 0; i < r.length; i++) s += r[i] * g[i];
  return s;
}

function gcnRef(a: Float64Array, x: Float64Array, w: Float64Array, b: Float64Array | null, n: number, din: number, dout: number, slope: number): Float64Array {
  const h = new Float64Array(n * dout);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < din; k++) {
      const xv = x[i * din + k];
      for (let o = 0; o < dout; o++) h[i * dout + o] += xv * w[k * dout + o];
    }
  }
  const y = new Float64Array(n * dout);
  for (let i = 0; i < n; i++) {
    for (let o = 0; o < dout; o++) {
      let p = b ? b[o] : 0;
      for (let j = 0; j < n; j++) p += a[i * n + j] * h[j * dout + o];
      y[i * dout + o] = p > 0 ? p : slope * p;
    }
  }
  return y;
}

// ---- relevance ---------------------------------------------------------------------------------

const Rel = suite('relevance');

for (const kind of ['gaussian', 'cosine'] as const) {
  for (const [n, d, sigma] of [
    [1, 5, 1],
    [7, 13, 0.7],
    [33, 65, 1.3],
  ] as const) {
    Rel(`${kind} n = ${n}, D = ${d}: forward vs float64, backward vs finite differences`, () => {
      const x = randn(n * d, 100 + n, 0.15);
      const r = relevanceSync({ data: f32(x), rows: n, cols: d }, { kind, sigma });
      assert.is(r.length, n * n);
      const ref = relevanceRef(x, n, d, kind, sigma);
      const e = relErr(r, ref);
      assert.ok(e < 1e-5, `forward relative error ${e}`);
      if (kind === 'gaussian') for (let i = 0; i < n; i++) assert.is(r[i * n + i], 1, 'diagonal exactly 1');
      const gr = randn(n * n, 200 + n);
      const dx = relevanceBackwardSync(f32(x), f32(gr), { kind, sigma, dim: d });
      assert.is(dx.length, n * d);
      if (n === 1) {
        for (const v of dx) assert.ok(Math.abs(v) < 1e-6, 'one node: no gradient');
        return;
      }
      checkGrad(x, dx, () => dotLoss(relevanceRef(x, n, d, kind, sigma), gr), `${kind} dX`);
    });
  }
}

Rel('gaussian on a far-from-origin cluster of near points (Gram cancellation) stays accurate', () => {
  const n = 9;
  const d = 33;
  const base = randn(d, 7, 40);
  const noise = randn(n * d, 8, 0.01);
  const x = Float64Array.from({ length: n * d }, (_, i) => Math.fround(base[i % d] + 30 + noise[i]));
  const r = relevanceSync(f32(x), { dim: d });
  const ref = relevanceRef(x, n, d, 'gaussian', 1);
  // Entrywise: distances are ~0.06, exp(-d) ~ 0.94; compare 1 - R (the distance part) relatively.
  let worst = 0;
  for (let i = 0; i < n * n; i++) {
    if (ref[i] === 1) continue;
    worst = Math.max(worst, Math.abs((1 - r[i]) - (1 - ref[i])) / (1 - ref[i]));
  }
  assert.ok(worst < 1e-4, `relative error of 1 - R on near pairs: ${worst}`);
  const gr = randn(n * n, 9);
  const dx = relevanceBackwardSync(f32(x), f32(gr), { dim: d });
  checkGrad(x, dx, () => dotLoss(relevanceRef(x, n, d, 'gaussian', 1), gr), 'clustered dX', 60, 3, 1e-7);
});

Rel('gaussian: duplicate rows get distance 0, R = 1 and zero gradient from that pair', () => {
  const d = 5;
  const row = [0.3, -0.2, 0.1, 0.5, -0.4];
  const x = new Float32Array([...row, ...row, 1, 0, 0, 0, 0]);
  const r = relevanceSync(x, { dim: d });
  assert.is(r[1], 1);
  assert.is(r[3], 1);
  const g = new Float32Array(9);
  g[1] = 1; // only dL/dR[0, 1]
  g[3] = 2;
  const dx = relevanceBackwardSync(x, g, { dim: d });
  for (const v of dx) assert.is(v, 0);
});

Rel('gaussian: far pairs underflow like exp (subnormal results kept, then 0), on every ISA path', () => {
  // Points on a line at distances 0 .. 119 with sigma 1: exp(-d) spans 1 .. 1e-52, through
  // fp32's subnormal range (below 1.2e-38, where the vector exp hands over to std::exp) to 0.
  const n = 120;
  const x = new Float32Array(n * 2);
  for (let i = 0; i < n; i++) x[i * 2] = i;
  for (const isa of info().isas) {
    setIsa(isa as 'scalar' | 'avx2' | 'avx512');
    const r = relevanceSync(x, { dim: 2, sigma: 1 });
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const want = Math.fround(Math.exp(-Math.abs(i - j)));
        const got = r[i * n + j];
        // Normal range: relative 1e-6; subnormal: within 2 units of the smallest subnormal.
        const ok = want >= 1.2e-38 ? Math.abs(got - want) <= 1e-6 * want : Math.abs(got - want) <= 3e-45;
        if (!ok) assert.unreachable(`${isa}: R[${i}, ${j}] = ${got}, exp(-${Math.abs(i - j)}) = ${want}`);
      }
    }
  }
  setIsa(null);
});

Rel('cosine: a zero row relates 0 to everything (and itself); other rows keep their cosines', () => {
  const x = new Float32Array([0, 0, 0, 1, 2, 2, -2, 1, 2]);
  const r = relevanceSync(x, { dim: 3, kind: 'cosine' });
  for (let j = 0; j < 3; j++) {
    assert.is(r[j], 0);
    assert.is(r[j * 3], 0);
  }
  assert.ok(Math.abs(r[4] - 1) < 1e-6);
  assert.ok(Math.abs(r[5] - (-2 + 2 + 4) / 9) < 1e-6);
});

Rel('threads = 1 and 2 give identical results; async equals sync; the namespace is the same functions', async () => {
  const n = 130;
  const d = 71;
  const x = f32(randn(n * d, 11, 0.1));
  const a = relevanceSync(x, { dim: d, threads: 1 });
  const b = relevanceSync(x, { dim: d, threads: 2 });
  assert.equal(a, b);
  const c = await relevance(x, { dim: d });
  assert.equal(c, a);
  const gr = f32(randn(n * n, 12));
  assert.equal(relevanceBackwardSync(x, gr, { dim: d, threads: 1 }), relevanceBackwardSync(x, gr, { dim: d, threads: 2 }));
  assert.equal(await graph.relevanceBackward(x, gr, { dim: d }), relevanceBackwardSync(x, gr, { dim: d }));
  assert.is(graph.relevance, relevance);
  assert.is(graph.gcnSync, gcnSync);
});

// ---- scanRelevance -----------------------------------------------------------------------------

function scanRef(words: Float64Array, lens: Int32Array, regions: Float64Array, bt: number, l: number, bi: number, r: number, d: number) {
  const eps = 1e-8;
  const vn = new Float64Array(regions.length);
  for (let q = 0; q < bi * r; q++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += regions[q * d + k] ** 2;
    const nn = Math.sqrt(s) + eps;
    for (let k = 0; k < d; k++) vn[q * d + k] = regions[q * d + k] / nn;
  }
  const t2i = new Float64Array(bt * bi);
  const i2t = new Float64Array(bi * bt);
  for (let i = 0; i < bt; i++) {
    const len = lens[i];
    for (let j = 0; j < bi; j++) {
      const A: number[][] = [];
      for (let w = 0; w < len; w++) {
        A.push([]);
        for (let q = 0; q < r; q++) {
          let s = 0;
          for (let k = 0; k < d; k++) s += words[(i * l + w) * d + k] * vn[(j * r + q) * d + k];
          A[w].push(s > 0 ? s : 0.1 * s);
        }
      }
      let tsum = 0;
      for (let w = 0; w < len; w++) {
        let mx = -Infinity;
        for (let q = 0; q < r; q++) {
          let cn = 0;
          for (let w2 = 0; w2 < len; w2++) cn += A[w2][q] ** 2;
          mx = Math.max(mx, A[w][q] / (Math.sqrt(cn) + eps));
        }
        tsum += mx;
      }
      t2i[i * bi + j] = tsum / len;
      let isum = 0;
      for (let q = 0; q < r; q++) {
        let mx = -Infinity;
        for (let w = 0; w < len; w++) {
          let rn = 0;
          for (let q2 = 0; q2 < r; q2++) rn += A[w][q2] ** 2;
          mx = Math.max(mx, A[w][q] / (Math.sqrt(rn) + eps));
        }
        isum += mx;
      }
      i2t[j * bt + i] = isum / r;
    }
  }
  return { t2i, i2t };
}

const Scan = suite('scanRelevance');

for (const [bt, l, bi, r, d, lens] of [
  [5, 6, 4, 7, 9, [6, 1, 3, 5, 2]],
  [1, 1, 1, 1, 1, [1]],
  [3, 8, 6, 36, 33, [8, 4, 7]],
] as const) {
  Scan(`Bt = ${bt}, L = ${l}, Bi = ${bi}, R = ${r}, D = ${d}, wordLengths [${lens.join(', ')}]: vs float64`, async () => {
    const words = randn(bt * l * d, 300 + bt);
    const regions = randn(bi * r * d, 400 + bi, 3);
    const wl = Int32Array.from(lens);
    const ref = scanRef(words, wl, regions, bt, l, bi, r, d);
    const w32 = f32(words);
    for (let i = 0; i < bt; i++) for (let w = wl[i]; w < l; w++) for (let k = 0; k < d; k++) w32[(i * l + w) * d + k] = NaN;
    const inputs = { words: { data: w32, dims: [bt, l, d] }, wordLengths: wl, regions: { data: f32(regions), dims: [bi, r, d] } };
    const got = scanRelevanceSync(inputs);
    assert.is(got.textToImage.length, bt * bi);
    assert.is(got.imageToText.length, bi * bt);
    const e1 = relErr(got.textToImage, ref.t2i);
    const e2 = relErr(got.imageToText, ref.i2t);
    assert.ok(e1 < 1e-5, `textToImage relative error ${e1}`);
    assert.ok(e2 < 1e-5, `imageToText relative error ${e2}`);
    const again = await scanRelevance(inputs, { threads: 1 });
    assert.equal(again.textToImage, got.textToImage);
    assert.equal(again.imageToText, got.imageToText);
  });
}

Scan('a shorter wordLengths changes only that caption (padding is ignored, real words are not)', () => {
  const [bt, l, bi, r, d] = [2, 5, 3, 4, 6];
  const words = f32(randn(bt * l * d, 1));
  const regions = f32(randn(bi * r * d, 2));
  const run = (lens: number[]) =>
    scanRelevanceSync({ words: { data: words, dims: [bt, l, d] }, wordLengths: Int32Array.from(lens), regions: { data: regions, dims: [bi, r, d] } });
  const a = run([5, 5]);
  const b = run([5, 3]);
  for (let j = 0; j < bi; j++) {
    assert.is(a.textToImage[j], b.textToImage[j]);
    assert.is(a.imageToText[j * bt], b.imageToText[j * bt]);
    assert.is.not(a.textToImage[bi + j], b.textToImage[bi + j]);
  }
});

// ---- rowTopkMask -------------------------------------------------------------------------------

const Mask = suite('rowTopkMask');

Mask('ties with the k-th value are all kept; k and fraction forms; the diagonal rule', () => {
  const s = new Float32Array([1, 3, 3, 2, /* */ 5, 5, 5, 5, /* */ 0, -Infinity, 4, 1, /* */ 2, 1, 0, 7]);
  const m = (opts: object) => Array.from(rowTopkMaskSync({ data: s, rows: 4, cols: 4 }, opts as never));
  assert.equal(m({ k: 2, keepDiagonal: false }), [0, 1, 1, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1]);
  // fraction 0.5 of 4 -> k = 2: same as k = 2; the diagonal kept by default.
  assert.equal(m({ fraction: 0.5 }), [1, 1, 1, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1]);
  assert.equal(m({ k: 2 }), m({ fraction: 0.5 }));
  // k = 3: row 0 keeps 3, 3, 2 (and its diagonal).
  assert.equal(m({ k: 3, keepDiagonal: false }).slice(0, 4), [0, 1, 1, 1]);
  // fraction 0.1 -> k = max(1, floor(0.4)) = 1: only the row max (ties: row 1 keeps all 5s).
  assert.equal(m({ fraction: 0.1, keepDiagonal: false }), [0, 1, 1, 0, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1]);
  // k = 4 keeps everything, -Infinity included.
  assert.ok(m({ k: 4 }).every((v) => v === 1));
});

Mask('async form resolves with the same Uint8Array mask', async () => {
  const s = Float32Array.from({ length: 9 * 11 }, (_, i) => (i * 7919) % 13);
  const sync = rowTopkMaskSync(s, { dim: 11, fraction: 0.5, keepDiagonal: false });
  const got = await graph.rowTopkMask(s, { dim: 11, fraction: 0.5, keepDiagonal: false });
  assert.instance(got, Uint8Array);
  assert.equal(got, sync);
});

Mask('non-square scores: no diagonal forcing; random ties against a sort-based reference', () => {
  const g = gaussian(21);
  for (const [rows, cols, k] of [
    [1, 1, 1],
    [7, 3, 2],
    [33, 33, 16],
    [5, 40, 7],
  ] as const) {
    const s = Float32Array.from({ length: rows * cols }, () => Math.round(g() * 3) / 2); // many ties
    const mask = rowTopkMaskSync(s, { dim: cols, k });
    for (let i = 0; i < rows; i++) {
      const row = Array.from(s.subarray(i * cols, (i + 1) * cols));
      const t = [...row].sort((a, b) => b - a)[k - 1];
      for (let j = 0; j < cols; j++) {
        const want = row[j] >= t || (rows === cols && i === j) ? 1 : 0;
        assert.is(mask[i * cols + j], want, `row ${i} col ${j}`);
      }
    }
  }
});

// ---- gcn ---------------------------------------------------------------------------------------

const Gcn = suite('gcn');

for (const [n, din, dout, slope, bias] of [
  [1, 5, 3, 0.2, true],
  [7, 13, 9, 0.2, true],
  [33, 65, 17, 0.2, false],
  [7, 3, 11, 0, true],
] as const) {
  Gcn(`n = ${n}, Din = ${din}, Dout = ${dout}, slope ${slope}, bias ${bias}: forward, backward (dX, dW, db, dA)`, () => {
    const a = randn(n * n, 500 + n, 0.5);
    const x = randn(n * din, 600 + n);
    const w = randn(din * dout, 700 + n, 0.3);
    const b = bias ? randn(dout, 800 + n, 0.5) : null;
    const inputs = {
      adjacency: f32(a),
      input: { data: f32(x), dims: [n, din] as [number, number] },
      weight: { data: f32(w), rows: din, cols: dout },
      ...(b ? { bias: f32(b) } : {}),
    };
    const { output, hidden } = gcnSync(inputs, { slope });
    const ref = gcnRef(a, x, w, b, n, din, dout, slope);
    const e = relErr(output, ref);
    assert.ok(e < 1e-5, `forward relative error ${e}`);
    assert.is(hidden.length, n * dout);
    const gy = randn(n * dout, 900 + n);
    const grads = gcnBackwardSync({ ...inputs, gradOutput: f32(gy) }, { slope });
    const loss = () => dotLoss(gcnRef(a, x, w, b, n, din, dout, slope), gy);
    checkGrad(x, grads.input, loss, 'dX');
    checkGrad(w, grads.weight, loss, 'dW');
    checkGrad(a, grads.adjacency, loss, 'dA');
    if (b) checkGrad(b, grads.bias, loss, 'db');
    else {
      // db is still dL/db at b = 0: the column sums of dP.
      const bz = new Float64Array(dout);
      checkGrad(bz, grads.bias, () => dotLoss(gcnRef(a, x, w, bz, n, din, dout, slope), gy), 'db at 0');
    }
    // The forward's output/hidden given: bit-identical to recomputing them.
    const again = gcnBackwardSync({ ...inputs, gradOutput: f32(gy), output, hidden }, { slope });
    assert.equal(again, grads);
  });
}

Gcn('threads 1 vs 2 identical (row-split GEMM), async = sync, plain arrays with dim', async () => {
  const n = 130;
  const din = 70;
  const dout = 45;
  const a = f32(randn(n * n, 1, 0.1));
  const x = f32(randn(n * din, 2));
  const w = f32(randn(din * dout, 3, 0.2));
  const b = f32(randn(dout, 4));
  const inputs = { adjacency: a, input: x, weight: w, bias: b };
  const one = gcnSync(inputs, { dim: din, threads: 1 });
  const two = gcnSync(inputs, { dim: din, threads: 2 });
  assert.equal(one, two);
  assert.equal(await gcn(inputs, { dim: din }), one);
  const gy = f32(randn(n * dout, 5));
  const g1 = gcnBackwardSync({ ...inputs, gradOutput: gy }, { dim: din, threads: 1 });
  const g2 = gcnBackwardSync({ ...inputs, gradOutput: gy }, { dim: din, threads: 2 });
  assert.equal(g1, g2);
  assert.equal(await graph.gcnBackward({ ...inputs, gradOutput: gy, ...one }, { dim: din }), g1);
});

// ---- errors ------------------------------------------------------------------------------------

const Err = suite('typed errors');

function code(fn: () => unknown, want: string, match?: RegExp) {
  try {
    fn();
  } catch (e) {
    assert.instance(e, VlkError);
    assert.is((e as VlkError).code, want, (e as Error).message);
    if (match) assert.match((e as Error).message, match);
    return;
  }
  assert.unreachable(`expected ${want}`);
}

Err('relevance', () => {
  const x = f32(randn(12, 1));
  code(() => relevanceSync(x, { dim: 4, sigma: 0 }), 'ERR_VLK_INVALID_ARG', /sigma/);
  code(() => relevanceSync(x, { dim: 4, sigma: -1 }), 'ERR_VLK_INVALID_ARG', /sigma/);
  code(() => relevanceSync(x, { dim: 4, sigma: NaN }), 'ERR_VLK_INVALID_ARG', /sigma/);
  code(() => relevanceSync(x, { dim: 4, kind: 'l2' as never }), 'ERR_VLK_INVALID_ARG', /kind/);
  code(() => relevanceSync(x, { dim: 5 }), 'ERR_VLK_DIM_MISMATCH', /x/);
  code(() => relevanceSync(x), 'ERR_VLK_INVALID_ARG', /dim/);
  code(() => relevanceSync(new Float64Array(4) as never, { dim: 2 }), 'ERR_VLK_TYPE', /x/);
  code(() => relevanceBackwardSync(x, new Float32Array(8), { dim: 4 }), 'ERR_VLK_DIM_MISMATCH', /gradOutput/);
  code(() => relevanceBackwardSync(x, { data: new Float32Array(6), rows: 2, cols: 3 }, { dim: 4 }), 'ERR_VLK_SHAPE', /gradOutput: 2 rows, expected 3/);
  const nan = x.slice();
  nan[6] = NaN;
  code(() => relevanceSync(nan, { dim: 4 }), 'ERR_VLK_NON_FINITE', /x: row 1, column 2/);
  const gnan = new Float32Array(9);
  gnan[4] = Infinity;
  code(() => relevanceBackwardSync(x, gnan, { dim: 4 }), 'ERR_VLK_NON_FINITE', /gradOutput: row 1, column 1/);
  code(() => relevanceSync(new Float32Array(0), { dim: 4 }), 'ERR_VLK_EMPTY');
});

Err('scanRelevance', () => {
  const ok = {
    words: { data: new Float32Array(2 * 3 * 4), dims: [2, 3, 4] },
    wordLengths: Int32Array.from([3, 2]),
    regions: { data: new Float32Array(5 * 2 * 4).fill(1), dims: [5, 2, 4] },
  };
  code(() => scanRelevanceSync({ ...ok, regions: { data: new Float32Array(5 * 2 * 3), dims: [5, 2, 3] } }), 'ERR_VLK_DIM_MISMATCH', /regions/);
  code(() => scanRelevanceSync({ ...ok, wordLengths: Int32Array.from([3]) }), 'ERR_VLK_SHAPE', /wordLengths/);
  code(() => scanRelevanceSync({ ...ok, wordLengths: Int32Array.from([3, 4]) }), 'ERR_VLK_INVALID_ARG', /wordLengths\[1\]: 4/);
  code(() => scanRelevanceSync({ ...ok, wordLengths: Int32Array.from([0, 1]) }), 'ERR_VLK_INVALID_ARG', /wordLengths\[0\]/);
  code(() => scanRelevanceSync({ ...ok, wordLengths: [3, 2] as never }), 'ERR_VLK_TYPE', /wordLengths/);
  code(() => scanRelevanceSync({ ...ok, words: { data: new Float32Array(5), dims: [2, 3, 4] } }), 'ERR_VLK_SHAPE', /words/);
  const rn = ok.regions.data.slice();
  rn[9] = NaN;
  code(() => scanRelevanceSync({ ...ok, regions: { data: rn, dims: [5, 2, 4] } }), 'ERR_VLK_NON_FINITE', /regions/);
  const wn = ok.words.data.slice();
  wn[4 * 4 + 1] = NaN; // caption 1, word 1: real (length 2)
  code(() => scanRelevanceSync({ ...ok, words: { data: wn, dims: [2, 3, 4] } }), 'ERR_VLK_NON_FINITE', /words\[1\]: row 1/);
  code(() => scanRelevanceSync({ ...ok, words: { data: new Float32Array(0), dims: [0, 3, 4] }, wordLengths: new Int32Array(0) }), 'ERR_VLK_EMPTY');
});

Err('rowTopkMask', () => {
  const s = new Float32Array(12);
  code(() => rowTopkMaskSync(s, { dim: 4, k: 0 }), 'ERR_VLK_INVALID_K', /k/);
  code(() => rowTopkMaskSync(s, { dim: 4, k: 5 }), 'ERR_VLK_INVALID_K', /1\.\.4/);
  code(() => rowTopkMaskSync(s, { dim: 4, k: 1.5 }), 'ERR_VLK_INVALID_K', /k/);
  code(() => rowTopkMaskSync(s, { dim: 4, fraction: 0 }), 'ERR_VLK_INVALID_K', /fraction/);
  code(() => rowTopkMaskSync(s, { dim: 4, fraction: 1.5 }), 'ERR_VLK_INVALID_K', /fraction/);
  code(() => rowTopkMaskSync(s, { dim: 4 }), 'ERR_VLK_INVALID_K', /exactly one/);
  code(() => rowTopkMaskSync(s, { dim: 4, k: 1, fraction: 0.5 }), 'ERR_VLK_INVALID_K', /exactly one/);
  code(() => rowTopkMaskSync(s, { dim: 5, k: 1 }), 'ERR_VLK_DIM_MISMATCH', /scores/);
  code(() => rowTopkMaskSync(s, { dim: 4, k: 1, keepDiagonal: 1 as never }), 'ERR_VLK_INVALID_ARG', /options\.keepDiagonal/);
  const nan = s.slice();
  nan[6] = NaN;
  code(() => rowTopkMaskSync(nan, { dim: 4, k: 1 }), 'ERR_VLK_NON_FINITE', /scores: row 1, column 2 is NaN/);
});

Err('gcn', () => {
  const n = 3;
  const ok = {
    adjacency: new Float32Array(n * n),
    input: { data: new Float32Array(n * 4), rows: n, cols: 4 },
    weight: { data: new Float32Array(4 * 5), rows: 4, cols: 5 },
    bias: new Float32Array(5),
  };
  code(() => gcnSync({ ...ok, weight: { data: new Float32Array(15), rows: 3, cols: 5 } }), 'ERR_VLK_SHAPE', /weight: 3 rows, expected 4/);
  code(() => gcnSync({ ...ok, weight: new Float32Array(18) }), 'ERR_VLK_SHAPE', /weight/);
  code(() => gcnSync({ ...ok, adjacency: new Float32Array(8) }), 'ERR_VLK_DIM_MISMATCH', /adjacency/);
  code(() => gcnSync({ ...ok, adjacency: { data: new Float32Array(12), rows: 4, cols: 3 } }), 'ERR_VLK_SHAPE', /adjacency/);
  code(() => gcnSync({ ...ok, bias: new Float32Array(4) }), 'ERR_VLK_SHAPE', /bias/);
  code(() => gcnSync({ ...ok, bias: [0, 0, 0, 0, 0] as never }), 'ERR_VLK_TYPE', /bias/);
  code(() => gcnSync(ok, { slope: -0.1 }), 'ERR_VLK_INVALID_ARG', /slope/);
  code(() => gcnSync({ ...ok, input: new Float32Array(12) }), 'ERR_VLK_INVALID_ARG', /dim/);
  code(() => gcnBackwardSync({ ...ok, gradOutput: new Float32Array(14) }), 'ERR_VLK_DIM_MISMATCH', /gradOutput/);
  code(() => gcnBackwardSync({ ...ok, gradOutput: new Float32Array(15), hidden: new Float32Array(10) }), 'ERR_VLK_SHAPE', /hidden/);
  code(() => gcnBackwardSync({ ...ok, gradOutput: new Float32Array(15), output: { data: new Float32Array(10), rows: 2, cols: 5 } }), 'ERR_VLK_SHAPE', /output/);
  const an = ok.adjacency.slice();
  an[5] = NaN;
  code(() => gcnSync({ ...ok, adjacency: an }), 'ERR_VLK_NON_FINITE', /adjacency: row 1, column 2/);
  const xn = ok.input.data.slice();
  xn[0] = -Infinity;
  code(() => gcnSync({ ...ok, input: { data: xn, rows: n, cols: 4 } }), 'ERR_VLK_NON_FINITE', /input: row 0, column 0/);
  code(() => gcnSync(null as never), 'ERR_VLK_TYPE');
  code(() => gcnSync({ ...ok, adjacency: new Float32Array(0), input: { data: new Float32Array(0), rows: 0, cols: 4 } }), 'ERR_VLK_EMPTY');
});

Err('async: rejections are typed; an aborted signal gives AbortError', async () => {
  const x = f32(randn(12, 1));
  const err = await relevance(x, { dim: 4, sigma: 0 }).catch((e) => e);
  assert.instance(err, VlkError);
  const ac = new AbortController();
  ac.abort();
  const aborted = await relevance(x, { dim: 4, signal: ac.signal }).catch((e) => e);
  assert.is((aborted as Error).name, 'AbortError');
  const nan = x.slice();
  nan[0] = NaN;
  const e2 = await gcn({ adjacency: new Float32Array(9), input: nan, weight: new Float32Array(8) }, { dim: 4 }).catch((e) => e);
  assert.is((e2 as VlkError).code, 'ERR_VLK_NON_FINITE');
});

Rel.run();
Scan.run();
Mask.run();
Gcn.run();
Err.run();
