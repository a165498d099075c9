// Matching losses of seed 004 (test/matching_losses.test.ts): memoryInfoNce, vseHinge and
// weightedTriplet, each forward against a float64 reference written here (relative error < 1e-5)
// and each backward against central finite differences of that reference (relative error < 1e-3),
// at awkward sizes (B = 1, odd dims, an empty bank), with the options that change the formula
// (in-batch negatives, same-id masking, max violation or sum, ids), ties (first index wins), the
// seeded sampler (valid candidates only, deterministic, thread-count independent, frequencies
// following the weights), and typed errors for bad inputs.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  MemoryBank,
  memoryInfoNce,
  memoryInfoNceSync,
  VlkError,
  vseHinge,
  vseHingeSync,
  weightedTriplet,
  weightedTripletSync,
} from './helpers/lib';
import { gaussian, rng } from './helpers/random';
import { expectCode as code } from './helpers/expect';

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

// fp32-representable float64 values.
function f64(n: number, seed: number, scale = 1): Float64Array {
  const g = gaussian(seed);
  return Float64Array.from({ length: n }, () => Math.fround(g() * scale));
}

// Relative error of an analytic gradient against central differences of f at sampled entries of x.
function fd(x: Float64Array, f: () => number, grad: Float32Array, count: number, seed: number, h = 1e-6): number {
  const u = rng(seed);
  const picks = new Set<number>();
  while (picks.size < Math.min(count, x.length)) picks.add(Math.floor(u() * x.length));
  let num = 0;
  let den = 0;
  for (const i of picks) {
    const old = x[i];
    x[i] = old + h;
    const up = f();
    x[i] = old - h;
    const down = f();
    x[i] = old;
    const want = (up - down) / (2 * h);
    num += (want - grad[i]) ** 2;
    den += want ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-300));
}

// ---------------------------------------------------------------- memoryInfoNce
interface NceCase {
  b: number;
  d: number;
  k: number;
  tau: number;
  inBatch: boolean;
  mask: boolean;
  queryIds?: number[];
  bankIds?: number[];
}

function nceRef(q: Float64Array, k: Float64Array, bank: Float64Array, c: NceCase): number {
  const dot = (a: Float64Array, i: number, b: Float64Array, j: number) => {
    let s = 0;
    for (let x = 0; x < c.d; x++) s += a[i * c.d + x] * b[j * c.d + x];
    return s;
  };
  let loss = 0;
  for (let i = 0; i < c.b; i++) {
    const logits = [dot(q, i, k, i) / c.tau];
    const id = c.queryIds ? c.queryIds[i] : -2;
    if (c.inBatch) {
      for (let j = 0; j < c.b; j++) {
        if (j === i || (c.mask && c.queryIds![j] === id)) continue;
        logits.push(dot(q, i, k, j) / c.tau);
      }
    }
    for (let m = 0; m < c.k; m++) {
      if (c.mask && c.bankIds && c.bankIds[m] === id) continue;
      logits.push(dot(q, i, bank, m) / c.tau);
    }
    const mx = Math.max(...logits);
    const lse = mx + Math.log(logits.reduce((s, l) => s + Math.exp(l - mx), 0));
    loss += lse - logits[0];
  }
  return loss / c.b;
}

const f32 = (x: Float64Array) => Float32Array.from(x);

const nceBase: NceCase = { b: 6, d: 9, k: 11, tau: 0.07, inBatch: false, mask: false };
const nceCases: [string, NceCase][] = [
  ['MoCo (positive + queue), tau 0.07', nceBase],
  ['in-batch + queue negatives', { ...nceBase, inBatch: true, tau: 0.2 }],
  [
    'in-batch + queue, same ids masked',
    { ...nceBase, inBatch: true, mask: true, tau: 0.1, queryIds: [3, 1, 3, 4, 1, 9], bankIds: [1, -1, 3, 3, 7, 9, 1, -1, 4, 5, 6] },
  ],
  ['queue only, same ids masked', { ...nceBase, b: 5, d: 7, mask: true, queryIds: [0, 1, 2, 3, 4], bankIds: [0, 0, 1, 2, 8, 8, 8, 3, 3, 4, 9] }],
  ['B = 1, D = 1', { ...nceBase, b: 1, d: 1, k: 5, tau: 0.5 }],
  ['empty bank with in-batch negatives', { ...nceBase, b: 4, k: 0, inBatch: true, tau: 0.3 }],
];

const Nce = suite('memoryInfoNce');

for (const [name, c] of nceCases) {
  Nce(`forward vs float64, gradients vs finite differences: ${name}`, async () => {
    const q = f64(c.b * c.d, 1 + c.b, 0.3);
    const k = f64(c.b * c.d, 2 + c.d, 0.3);
    const bank = f64(c.k * c.d, 3 + c.k, 0.3);
    const want = nceRef(q, k, bank, c);
    const opts = {
      dim: c.d,
      temperature: c.tau,
      inBatchNegatives: c.inBatch,
      maskSameId: c.mask,
      ...(c.queryIds ? { queryIds: c.queryIds } : {}),
      ...(c.bankIds ? { bankIds: c.bankIds } : {}),
    };
    const bankMatrix = { data: f32(bank), rows: c.k, cols: c.d };
    const a = await memoryInfoNce(f32(q), { data: f32(k), dims: [c.b, c.d] }, bankMatrix, opts);
    const s = memoryInfoNceSync(f32(q), f32(k), bankMatrix, opts);
    for (const r of [a, s]) {
      assert.ok(rel(r.loss, want) < 1e-5, `loss ${r.loss} vs ${want}`);
      assert.is(r.bankCount, c.k);
      const eq = fd(q, () => nceRef(q, k, bank, c), r.grads!.queries, 40, 7);
      const ek = fd(k, () => nceRef(q, k, bank, c), r.grads!.keys, 40, 8);
      assert.ok(eq < 1e-3, `dqueries: relative error ${eq}`);
      assert.ok(ek < 1e-3, `dkeys: relative error ${ek}`);
    }
    assert.equal(Array.from(a.grads!.queries), Array.from(s.grads!.queries), 'async = sync');
    // Count of masked negatives.
    let masked = 0;
    if (c.mask) {
      for (let i = 0; i < c.b; i++) {
        if (c.inBatch) for (let j = 0; j < c.b; j++) if (j !== i && c.queryIds![j] === c.queryIds![i]) masked++;
        for (let m = 0; m < c.k; m++) if (c.bankIds![m] === c.queryIds![i]) masked++;
      }
      assert.ok(masked > 0, 'the case masks something');
    }
    assert.is(a.masked, masked);
  });
}

Nce('a MemoryBank gives the matrix result; thread counts agree bit for bit; grads: false', async () => {
  const b = 9;
  const d = 33;
  const q = f32(f64(b * d, 11, 0.2));
  const k = f32(f64(b * d, 12, 0.2));
  const rows = f32(f64(50 * d, 13, 0.2));
  const ids = Array.from({ length: 50 }, (_, i) => i % 7);
  using bank = new MemoryBank({ size: 40, dim: d });
  bank.enqueue(rows, ids); // keeps the last 40 rows
  const snap = bank.snapshot();
  const opts = { dim: d, inBatchNegatives: true, maskSameId: true, queryIds: [0, 1, 2, 3, 4, 5, 6, 0, 1] };
  const fromBank = await memoryInfoNce(q, k, bank, { ...opts, threads: 1 });
  const fromMatrix = memoryInfoNceSync(q, k, snap.data, { ...opts, bankIds: Array.from(snap.ids), threads: 3 });
  assert.is(fromBank.bankCount, 40);
  assert.ok(rel(fromBank.loss, fromMatrix.loss) < 1e-6);
  const one = memoryInfoNceSync(q, k, bank, { ...opts, threads: 1 });
  const many = memoryInfoNceSync(q, k, bank, { ...opts, threads: 4 });
  assert.is(one.loss, many.loss);
  assert.equal(Array.from(one.grads!.queries), Array.from(many.grads!.queries));
  assert.equal(Array.from(one.grads!.keys), Array.from(many.grads!.keys));
  const noGrads = memoryInfoNceSync(q, k, bank, { ...opts, grads: false });
  assert.is(noGrads.grads, undefined);
  assert.is(noGrads.loss, one.loss);
  // An empty bank is allowed: with no negatives at all the loss is 0.
  using empty = new MemoryBank({ size: 4, dim: d });
  const z = memoryInfoNceSync(q, k, empty, { dim: d });
  assert.is(z.loss, 0);
  assert.ok(z.grads!.queries.every((x) => x === 0));
});

Nce('bad inputs: typed errors naming the input', async () => {
  const q = new Float32Array(12);
  const k = new Float32Array(12);
  const bank = new Float32Array(8);
  code(() => memoryInfoNceSync(q, k, bank, {}), 'ERR_VLK_INVALID_ARG', /dim/);
  code(() => memoryInfoNceSync(q, k, new Float32Array(7), { dim: 4 }), 'ERR_VLK_DIM_MISMATCH', /bank/);
  code(() => memoryInfoNceSync(q, new Float32Array(8), bank, { dim: 4 }), 'ERR_VLK_SHAPE', /keys/);
  code(() => memoryInfoNceSync(q, { data: k, rows: 4, cols: 3 }, bank, { dim: 4 }), 'ERR_VLK_DIM_MISMATCH', /keys/);
  code(() => memoryInfoNceSync(q, k, bank, { dim: 4, temperature: 0 }), 'ERR_VLK_INVALID_ARG', /temperature/);
  code(() => memoryInfoNceSync(q, k, bank, { dim: 4, maskSameId: true }), 'ERR_VLK_INVALID_ARG', /queryIds/);
  code(() => memoryInfoNceSync(q, k, bank, { dim: 4, queryIds: [1, 2] }), 'ERR_VLK_SHAPE', /queryIds/);
  code(() => memoryInfoNceSync(q, k, bank, { dim: 4, queryIds: [1, 2, -1] }), 'ERR_VLK_INVALID_ARG', /queryIds\[2\]/);
  code(() => memoryInfoNceSync(q, k, bank, { dim: 4, bankIds: [1, 1.5] }), 'ERR_VLK_INVALID_ARG', /bankIds\[1\]/);
  code(() => memoryInfoNceSync(new Float32Array(0), new Float32Array(0), bank, { dim: 4 }), 'ERR_VLK_EMPTY');
  const nan = new Float32Array(12);
  nan[9] = NaN;
  code(() => memoryInfoNceSync(q, nan, bank, { dim: 4 }), 'ERR_VLK_NON_FINITE', /keys: row 2, element 1/);
  const nb = new Float32Array(8);
  nb[5] = -Infinity;
  code(() => memoryInfoNceSync(q, k, nb, { dim: 4 }), 'ERR_VLK_NON_FINITE', /bank: row 1, element 1/);
  using mb = new MemoryBank({ size: 3, dim: 5 });
  code(() => memoryInfoNceSync(q, k, mb, { dim: 4 }), 'ERR_VLK_DIM_MISMATCH', /bank/);
  code(() => memoryInfoNceSync(q, k, mb, { dim: 4, bankIds: [1] }), 'ERR_VLK_DIM_MISMATCH');
  const ac = new AbortController();
  ac.abort();
  const err = await memoryInfoNce(q, k, bank, { dim: 4, signal: ac.signal }).then(() => null, (e) => e);
  assert.is((err as Error).name, 'AbortError');
});

// ---------------------------------------------------------------- vseHinge
function vseRef(s: Float64Array, b: number, margin: number, ids: number[] | undefined, maxViolation: boolean) {
  const neg = (i: number, j: number) => i !== j && !(ids && ids[i] === ids[j]);
  let loss = 0;
  const hc: number[] = [];
  const hi: number[] = [];
  for (let dir = 0; dir < 2; dir++) {
    for (let a = 0; a < b; a++) {
      const sc = (j: number) => (dir === 0 ? s[a * b + j] : s[j * b + a]);
      let best = -1;
      for (let j = 0; j < b; j++) if (neg(a, j) && (best < 0 || sc(j) > sc(best))) best = j;
      (dir === 0 ? hc : hi).push(best);
      for (let j = 0; j < b; j++) {
        if (!neg(a, j) || (maxViolation && j !== best)) continue;
        loss += Math.max(0, margin + sc(j) - s[a * b + a]);
      }
    }
  }
  return { loss, hc, hi };
}

const Vse = suite('vseHinge');

for (const [name, b, margin, ids, maxViolation] of [
  ['B = 7, margin 0.2, hardest negatives', 7, 0.2, undefined, true],
  ['same-id pairs masked (5 captions per image style)', 8, 0.3, [0, 0, 1, 1, 1, 2, 3, 3], true],
  ['sum over all negatives (VSE0)', 6, 0.4, undefined, false],
  ['sum over all negatives with ids', 5, 0.5, [4, 2, 4, 2, 9], false],
] as const) {
  Vse(`forward vs float64, dS vs finite differences: ${name}`, async () => {
    const s = f64(b * b, 31 + b, 0.4);
    const want = vseRef(s, b, margin, ids as number[] | undefined, maxViolation);
    assert.ok(want.loss > 0, 'some hinge is active');
    const opts = { margin, maxViolation, ...(ids ? { ids: ids as unknown as number[] } : {}) };
    const r = await vseHinge({ data: f32(s), rows: b, cols: b }, opts);
    const r2 = vseHingeSync({ data: f32(s), dims: [b, b] }, opts);
    assert.ok(rel(r.loss, want.loss) < 1e-5, `loss ${r.loss} vs ${want.loss}`);
    assert.is(r2.loss, r.loss);
    assert.equal(Array.from(r.hardestCaption), want.hc);
    assert.equal(Array.from(r.hardestImage), want.hi);
    const e = fd(s, () => vseRef(s, b, margin, ids as number[] | undefined, maxViolation).loss, r.grads!.scores, b * b, 3);
    assert.ok(e < 1e-3, `dS: relative error ${e}`);
  });
}

Vse('ties: the first index is the hardest; B = 1 and fully masked rows give -1 and 0', () => {
  // Row 0: captions 1 and 2 tie (0.5); column 0: images 1 and 2 tie (0.4). Column 2 picks image 1
  // (0.55) and row 2 caption 1 (0.45), so entries (0, 2) and (2, 0) are chosen by nothing else.
  const s = new Float32Array([1, 0.5, 0.5, 0.4, 1, 0.55, 0.4, 0.45, 1]);
  const r = vseHingeSync({ data: s, rows: 3, cols: 3 }, { margin: 0.6 });
  assert.is(r.hardestCaption[0], 1);
  assert.is(r.hardestImage[0], 1);
  assert.is(r.grads!.scores[0 * 3 + 2], 0, 'the later tie gets no gradient');
  assert.is(r.grads!.scores[2 * 3 + 0], 0);
  assert.ok(r.grads!.scores[0 * 3 + 1] >= 1);
  const one = vseHingeSync(new Float32Array([0.3]), { dim: 1 });
  assert.is(one.loss, 0);
  assert.equal(Array.from(one.hardestCaption), [-1]);
  const same = vseHingeSync({ data: new Float32Array([1, 2, 2, 1]), rows: 2, cols: 2 }, { ids: [5, 5] });
  assert.is(same.loss, 0);
  assert.equal(Array.from(same.hardestImage), [-1, -1]);
  assert.ok(same.grads!.scores.every((x) => x === 0));
  // The hinge at exactly 0 is inactive (relu'(0) = 0): 0.25 + 0.5 - 0.75 = 0 in binary fractions.
  const edge = vseHingeSync({ data: new Float32Array([0.75, 0.5, -1, 0.75]), rows: 2, cols: 2 }, { margin: 0.25 });
  assert.is(edge.loss, 0);
  assert.ok(edge.grads!.scores.every((x) => x === 0));
});

Vse('bad inputs: typed errors', async () => {
  code(() => vseHingeSync({ data: new Float32Array(6), rows: 2, cols: 3 }), 'ERR_VLK_SHAPE', /square/);
  code(() => vseHingeSync({ data: new Float32Array(0), rows: 0, cols: 0 }), 'ERR_VLK_EMPTY');
  code(() => vseHingeSync({ data: new Float32Array(4), rows: 2, cols: 2 }, { ids: [1] }), 'ERR_VLK_SHAPE', /ids/);
  code(() => vseHingeSync({ data: new Float32Array(4), rows: 2, cols: 2 }, { margin: NaN }), 'ERR_VLK_INVALID_ARG', /margin/);
  code(() => vseHingeSync({ data: new Float32Array([0, 0, NaN, 0]), rows: 2, cols: 2 }), 'ERR_VLK_NON_FINITE', /row 1, column 0/);
  code(() => vseHingeSync([1, 2] as never), 'ERR_VLK_TYPE');
  const ac = new AbortController();
  ac.abort();
  const err = await vseHinge({ data: new Float32Array(4), rows: 2, cols: 2 }, { signal: ac.signal }).then(() => null, (e) => e);
  assert.is((err as Error).name, 'AbortError');
});

// ---------------------------------------------------------------- weightedTriplet
interface TripOpts {
  margin: number;
  n: number;
  cutoff: number;
  maxDistance: number;
  ids?: number[];
}

const isPos = (o: TripOpts, i: number, j: number) => (o.ids ? o.ids[i] === o.ids[j] : i === j);

// The float64 sampling weights of an anchor (direction 0: row, 1: column), normalised; 0 off the candidates.
function tripWeights(s: Float64Array, b: number, o: TripOpts, dir: number, a: number): number[] {
  const lw: number[] = [];
  for (let j = 0; j < b; j++) {
    const v = dir === 0 ? s[a * b + j] : s[j * b + a];
    const d = Math.max(Math.sqrt(Math.max(2 - 2 * v, 0)), o.cutoff);
    lw.push(isPos(o, a, j) || !(d < o.maxDistance) ? -Infinity : (2 - o.n) * Math.log(d) - ((o.n - 3) / 2) * Math.log(1 - (d * d) / 4));
  }
  const mx = Math.max(...lw);
  const w = lw.map((x) => (x === -Infinity ? 0 : Math.exp(x - mx)));
  const t = w.reduce((p, q) => p + q, 0);
  return w.map((x) => (t > 0 ? x / t : 0));
}

type Triplets = { direction: Int32Array; anchor: Int32Array; positive: Int32Array; negative: Int32Array };

// The float64 loss given the sampled triplets.
function tripRef(s: Float64Array, b: number, margin: number, t: Triplets): number {
  let loss = 0;
  for (let x = 0; x < t.anchor.length; x++) {
    const [dir, a, p, n] = [t.direction[x], t.anchor[x], t.positive[x], t.negative[x]];
    if (n < 0) continue;
    const sn = dir === 0 ? s[a * b + n] : s[n * b + a];
    const sp = dir === 0 ? s[a * b + p] : s[p * b + a];
    loss += Math.max(0, margin + sn - sp);
  }
  return loss;
}

// Unit embeddings -> cosine similarities (float64, fp32-representable).
function cosines(b: number, d: number, seed: number, pull = 0): Float64Array {
  const g = gaussian(seed);
  const img: number[][] = [];
  const txt: number[][] = [];
  const unit = (v: number[]) => {
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  };
  for (let i = 0; i < b; i++) {
    const base = Array.from({ length: d }, () => g());
    img.push(unit(base.map((x) => x + 0.6 * g())));
    txt.push(unit(base.map((x) => x + 0.6 * g() + pull)));
  }
  const s = new Float64Array(b * b);
  for (let i = 0; i < b; i++) for (let j = 0; j < b; j++) s[i * b + j] = Math.fround(img[i].reduce((acc, x, k) => acc + x * txt[j][k], 0));
  return s;
}

const Trip = suite('weightedTriplet');

for (const [name, b, d, o] of [
  ['paper defaults (n 512, cutoff 0.5, maxDistance 1.7), B = 9', 9, 6, { margin: 0.2, n: 512, cutoff: 0.5, maxDistance: 1.7 }],
  ['ids: several positives per anchor, n 16, maxDistance 1.9', 8, 5, { margin: 0.3, n: 16, cutoff: 0.5, maxDistance: 1.9, ids: [0, 0, 1, 2, 2, 2, 3, 4] }],
  ['B = 1 (no negatives at all)', 1, 4, { margin: 0.2, n: 512, cutoff: 0.5, maxDistance: 1.7 }],
] as const) {
  Trip(`sampled negatives are candidates; loss vs float64; dS vs finite differences: ${name}`, async () => {
    const s = cosines(b, d, 50 + b, 0.1);
    const opts = { ...o, ids: o.ids ? Array.from(o.ids as readonly number[]) : undefined, seed: 7 } as TripOpts & { seed: number };
    const r = await weightedTriplet({ data: f32(s), rows: b, cols: b }, opts);
    const t = r.triplets;
    // One triplet per (direction, anchor, positive), in order.
    let x = 0;
    for (let dir = 0; dir < 2; dir++) {
      for (let a = 0; a < b; a++) {
        const w = tripWeights(s, b, opts, dir, a);
        for (let p = 0; p < b; p++) {
          if (!isPos(opts, a, p)) continue;
          assert.equal([t.direction[x], t.anchor[x], t.positive[x]], [dir, a, p]);
          const n = t.negative[x];
          if (w.every((v) => v === 0)) assert.is(n, -1, 'no candidate: -1');
          else assert.ok(n >= 0 && w[n] > 0, `negative ${n} of anchor ${a} is a candidate`);
          x++;
        }
      }
    }
    assert.is(x, t.anchor.length);
    const want = tripRef(s, b, opts.margin, t);
    assert.ok(rel(r.loss, want) < 1e-5 || (want === 0 && r.loss === 0), `loss ${r.loss} vs ${want}`);
    if (b > 1) {
      assert.ok(want > 0, 'some triplet is active');
      const e = fd(s, () => tripRef(s, b, opts.margin, t), r.grads!.scores, b * b, 5);
      assert.ok(e < 1e-3, `dS: relative error ${e}`);
    } else {
      assert.equal(Array.from(t.negative), [-1, -1]);
      assert.is(r.grads!.scores[0], 0);
    }
    const again = weightedTripletSync({ data: f32(s), rows: b, cols: b }, opts);
    assert.equal(Array.from(again.triplets.negative), Array.from(t.negative), 'same seed, same samples');
    assert.is(again.loss, r.loss);
  });
}

Trip('sampling frequencies follow the distance weights (chi-square over 3000 seeds)', () => {
  const b = 6;
  const s = cosines(b, 3, 77);
  const o: TripOpts = { margin: 0.2, n: 6, cutoff: 0.5, maxDistance: 2 };
  const w = tripWeights(s, b, o, 0, 2);
  assert.ok(w.filter((x) => x > 0.02).length >= 3, 'several negatives have weight');
  const counts = new Array(b).fill(0);
  const seeds = 3000;
  for (let seed = 0; seed < seeds; seed++) {
    const r = weightedTripletSync({ data: f32(s), rows: b, cols: b }, { ...o, seed, grads: false });
    counts[r.triplets.negative[2]]++;
  }
  let chi = 0;
  let dof = -1;
  for (let j = 0; j < b; j++) {
    if (w[j] === 0) {
      assert.is(counts[j], 0, `non-candidate ${j} never drawn`);
      continue;
    }
    chi += (counts[j] - seeds * w[j]) ** 2 / (seeds * w[j]);
    dof++;
  }
  // dof <= 4: the 99.9% quantile of chi-square(4) is 18.5.
  assert.ok(chi < 18.5, `chi-square ${chi} (counts ${counts}, weights ${w.map((x) => x.toFixed(3))})`);
  // Different seeds do differ; the sampler ignores the thread count (no threads option: one call = one answer).
  const a = weightedTripletSync({ data: f32(s), rows: b, cols: b }, { ...o, seed: 1 }).triplets.negative;
  const c = weightedTripletSync({ data: f32(s), rows: b, cols: b }, { ...o, seed: 2 }).triplets.negative;
  assert.ok(Array.from(a).some((x, i) => x !== c[i]), 'seeds 1 and 2 draw differently');
});

Trip('maxDistance leaves anchors without candidates (-1, no loss); bad inputs: typed errors', () => {
  // All off-diagonal similarities -0.9: d = sqrt(3.8) = 1.95 >= 1.7, so no candidate anywhere.
  const s = new Float32Array([1, -0.9, -0.9, -0.9, 1, -0.9, -0.9, -0.9, 1]);
  const r = weightedTripletSync({ data: s, rows: 3, cols: 3 });
  assert.ok(Array.from(r.triplets.negative).every((x) => x === -1));
  assert.is(r.loss, 0);
  const m = { data: new Float32Array(4), rows: 2, cols: 2 };
  code(() => weightedTripletSync({ data: new Float32Array(6), rows: 3, cols: 2 }), 'ERR_VLK_SHAPE', /square/);
  code(() => weightedTripletSync(m, { cutoff: 0 }), 'ERR_VLK_INVALID_ARG', /cutoff/);
  code(() => weightedTripletSync(m, { maxDistance: 2.5 }), 'ERR_VLK_INVALID_ARG', /maxDistance/);
  code(() => weightedTripletSync(m, { cutoff: 1.8 }), 'ERR_VLK_INVALID_ARG', /cutoff/);
  code(() => weightedTripletSync(m, { n: 0 }), 'ERR_VLK_INVALID_ARG', /n:/);
  code(() => weightedTripletSync(m, { seed: -1 }), 'ERR_VLK_INVALID_ARG', /seed/);
  code(() => weightedTripletSync(m, { ids: [1, 2, 3] }), 'ERR_VLK_SHAPE', /ids/);
  code(() => weightedTripletSync({ data: new Float32Array([0, Infinity, 0, 0]), rows: 2, cols: 2 }), 'ERR_VLK_NON_FINITE', /row 0, column 1/);
});

Nce.run();
Vse.run();
Trip.run();
