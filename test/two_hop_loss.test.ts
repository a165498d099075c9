// twoHopLoss (test/two_hop_loss.test.ts): PTHA's total loss on token features against a float64
// reference (relative error < 1e-5) and every gradient (query, text query, target tokens,
// prototype, temperature) against central finite differences of that float64 forward (relative
// error < 1e-3), at random shapes with B = 1, extra negative targets and explicit target lists;
// the stop-gradient side gets nothing; bad inputs give typed errors naming the input.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { twoHopLoss, twoHopLossSync, VlkError } from './helpers/lib';
import { gaussian } from './helpers/random';

interface Case {
  b: number;
  m: number;
  kt: number;
  d: number;
  k: number;
  kr: number;
  dp: number;
  text: boolean;
  proto: boolean;
  targets?: Int32Array;
  tau: number;
  eps: number;
  epsText: number;
  w: { itc: number; rtc: number; align: number };
}

type Vecs = { f: Float64Array; u: Float64Array; z: Float64Array; p: Float64Array; pr: Float64Array; tau: number };

function ce(s: Float64Array, rows: number, cols: number, scale: number, eps: number, tgt: (i: number) => number): number {
  let loss = 0;
  for (let i = 0; i < rows; i++) {
    let mx = -Infinity;
    for (let j = 0; j < cols; j++) mx = Math.max(mx, scale * s[i * cols + j]);
    let sum = 0;
    for (let j = 0; j < cols; j++) sum += Math.exp(scale * s[i * cols + j] - mx);
    const lse = mx + Math.log(sum);
    for (let j = 0; j < cols; j++) {
      const y = eps / cols + (j === tgt(i) ? 1 - eps : 0);
      loss -= y * (scale * s[i * cols + j] - lse);
    }
  }
  return loss / rows;
}

function tokenMax(q: Float64Array, z: Float64Array, c: Case): Float64Array {
  const s = new Float64Array(c.b * c.m);
  for (let i = 0; i < c.b; i++) {
    for (let j = 0; j < c.m; j++) {
      let best = -Infinity;
      for (let t = 0; t < c.kt; t++) {
        let acc = 0;
        for (let x = 0; x < c.d; x++) acc += q[i * c.d + x] * z[(j * c.kt + t) * c.d + x];
        best = Math.max(best, acc);
      }
      s[i * c.m + j] = best;
    }
  }
  return s;
}

// The float64 forward: [total, itc, rtc, align].
function reference(v: Vecs, c: Case): [number, number, number, number] {
  const tgt = (i: number) => (c.targets ? c.targets[i] : i);
  const itc = ce(tokenMax(v.f, v.z, c), c.b, c.m, 1 / v.tau, c.eps, tgt);
  const rtc = c.text ? ce(tokenMax(v.u, v.z, c), c.b, c.m, 1 / v.tau, c.epsText, tgt) : 0;
  let align = 0;
  if (c.proto) {
    for (let i = 0; i < c.b; i++) {
      for (let x = 0; x < c.dp; x++) {
        let a = 0;
        let r = 0;
        for (let t = 0; t < c.k; t++) a += v.p[(i * c.k + t) * c.dp + x];
        for (let t = 0; t < c.kr; t++) r += v.pr[(i * c.kr + t) * c.dp + x];
        align += (a / c.k - r / c.kr) ** 2;
      }
    }
    align /= c.b * c.dp;
  }
  return [c.w.itc * itc + c.w.rtc * rtc + c.w.align * align, itc, rtc, align];
}

function make(c: Case, seed: number): Vecs {
  const g = gaussian(seed);
  const arr = (n: number, s = 1) => Float64Array.from({ length: n }, () => Math.fround(g() * s));
  return {
    f: arr(c.b * c.d, 0.5),
    u: arr(c.b * c.d, 0.5),
    z: arr(c.m * c.kt * c.d, 0.5),
    p: arr(c.b * c.k * c.dp),
    pr: arr(c.b * c.kr * c.dp),
    tau: c.tau,
  };
}

const f32 = (x: Float64Array) => Float32Array.from(x);

function inputs(v: Vecs, c: Case) {
  return {
    query: { data: f32(v.f), dims: [c.b, c.d] as [number, number] },
    targetTokens: { data: f32(v.z), dims: [c.m, c.kt, c.d] as [number, number, number] },
    ...(c.text ? { textQuery: { data: f32(v.u), rows: c.b, cols: c.d } } : {}),
    ...(c.proto
      ? {
          prototype: { data: f32(v.p), dims: [c.b, c.k, c.dp] as [number, number, number] },
          reversePrototype: { data: f32(v.pr), dims: [c.b, c.kr, c.dp] as [number, number, number] },
        }
      : {}),
    ...(c.targets ? { targets: c.targets } : {}),
  };
}

function options(c: Case) {
  return { temperature: c.tau, labelSmoothing: c.eps, textLabelSmoothing: c.epsText, weights: c.w };
}

// Central differences of the float64 forward at `count` sampled entries of one input, against the
// analytic gradient; returns the relative error over the sample.
function fdCheck(v: Vecs, c: Case, key: 'f' | 'u' | 'z' | 'p', grad: Float32Array, count: number, seed: number): number {
  const x = v[key];
  const g = gaussian(seed);
  let num = 0;
  let den = 0;
  const h = 1e-6;
  const picks = new Set<number>();
  while (picks.size < Math.min(count, x.length)) picks.add(Math.floor(Math.abs(g() * 1e9)) % x.length);
  for (const i of picks) {
    const old = x[i];
    x[i] = old + h;
    const up = reference(v, c)[0];
    x[i] = old - h;
    const down = reference(v, c)[0];
    x[i] = old;
    const fd = (up - down) / (2 * h);
    num += (fd - grad[i]) ** 2;
    den += fd ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-300));
}

const base: Case = {
  b: 6, m: 6, kt: 5, d: 12, k: 4, kr: 3, dp: 9, text: true, proto: true, tau: 0.07, eps: 0.1, epsText: 0, w: { itc: 1, rtc: 0.4, align: 0.4 },
};
const cases: [string, Case][] = [
  ['the paper defaults', base],
  ['B = 1, one target token, one prototype token', { ...base, b: 1, m: 3, kt: 1, k: 1, kr: 1 }],
  ['extra negatives, explicit targets, odd sizes', { ...base, b: 5, m: 9, kt: 7, d: 13, targets: Int32Array.from([8, 0, 3, 3, 6]) }],
  ['no text term, no prototypes', { ...base, text: false, proto: false, b: 4, m: 4 }],
  ['other weights and smoothing', { ...base, w: { itc: 0.7, rtc: 1.3, align: 2 }, eps: 0.25, epsText: 0.05, tau: 0.5 }],
];

const Loss = suite('twoHopLoss');

for (const [name, c] of cases) {
  Loss(`forward vs float64 and gradients vs finite differences: ${name}`, async () => {
    for (let rep = 0; rep < 2; rep++) {
      const v = make(c, 1000 + rep + c.b * 31 + c.m);
      const [want, itc, rtc, align] = reference(v, c);
      const r = rep === 0 ? await twoHopLoss(inputs(v, c), options(c)) : twoHopLossSync(inputs(v, c), options(c));
      const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);
      assert.ok(rel(r.loss, want) < 1e-5, `loss ${r.loss} vs ${want}`);
      assert.ok(rel(r.itc, itc) < 1e-5, `itc ${r.itc} vs ${itc}`);
      if (c.text) assert.ok(rel(r.rtc, rtc) < 1e-5, `rtc ${r.rtc} vs ${rtc}`);
      else assert.is(r.rtc, 0);
      if (c.proto) assert.ok(rel(r.align, align) < 1e-5, `align ${r.align} vs ${align}`);
      else assert.is(r.align, 0);
      const g = r.grads!;
      assert.ok(g, 'gradients');
      const errs: Record<string, number> = {
        query: fdCheck(v, c, 'f', g.query, 40, 1),
        targetTokens: fdCheck(v, c, 'z', g.targetTokens, 80, 2),
      };
      if (c.text) errs.textQuery = fdCheck(v, c, 'u', g.textQuery!, 40, 3);
      else assert.is(g.textQuery, undefined);
      if (c.proto) errs.prototype = fdCheck(v, c, 'p', g.prototype!, 40, 4);
      else assert.is(g.prototype, undefined);
      for (const [k, e] of Object.entries(errs)) assert.ok(e < 1e-3, `d${k}: relative error ${e}`);
      // Temperature.
      const h = 1e-6;
      const up = reference({ ...v, tau: v.tau + h }, c)[0];
      const down = reference({ ...v, tau: v.tau - h }, c)[0];
      const fd = (up - down) / (2 * h);
      assert.ok(Math.abs(fd - g.temperature) <= 1e-3 * Math.max(Math.abs(fd), 1e-6), `dtau ${g.temperature} vs ${fd}`);
      // Tokens no max chose get exactly 0 (the gradient goes through the argmax only).
      let zeros = 0;
      for (let j = 0; j < c.m * c.kt; j++) {
        let all = true;
        for (let x = 0; x < c.d; x++) all = all && g.targetTokens[j * c.d + x] === 0;
        if (all) zeros++;
      }
      if (c.kt > c.b * (c.text ? 2 : 1)) assert.ok(zeros > 0, 'some tokens are never chosen');
    }
  });
}

Loss('grads: false returns the losses only; the stop-gradient side is untouched', () => {
  const v = make(base, 5);
  const i = inputs(v, base);
  const before = Float32Array.from(i.reversePrototype!.data);
  const r = twoHopLossSync(i, { ...options(base), grads: false });
  assert.is(r.grads, undefined);
  assert.ok(Math.abs(r.loss - reference(v, base)[0]) < 1e-5 * r.loss);
  assert.equal(Array.from(i.reversePrototype!.data), Array.from(before));
});

Loss('bad inputs: typed errors naming the input', async () => {
  const v = make(base, 9);
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
  const ok = inputs(v, base);
  code(() => twoHopLossSync({ ...ok, query: { data: new Float32Array(6 * 11), dims: [6, 11] } }, {}), 'ERR_VLK_DIM_MISMATCH', /query/);
  code(() => twoHopLossSync({ ...ok, targetTokens: { data: new Float32Array(5), dims: [6, 5, 12] } }, {}), 'ERR_VLK_SHAPE', /targetTokens/);
  code(() => twoHopLossSync({ ...ok, targetTokens: { data: new Float32Array(4 * 5 * 12), dims: [4, 5, 12] } }, {}), 'ERR_VLK_SHAPE', /targetTokens/);
  code(() => twoHopLossSync({ ...ok, prototype: undefined }, {}), 'ERR_VLK_INVALID_ARG', /reversePrototype/);
  code(() => twoHopLossSync({ ...ok, reversePrototype: { data: new Float32Array(6 * 3 * 8), dims: [6, 3, 8] } }, {}), 'ERR_VLK_DIM_MISMATCH', /reversePrototype/);
  code(() => twoHopLossSync(ok, { temperature: 0 }), 'ERR_VLK_INVALID_ARG', /temperature/);
  code(() => twoHopLossSync(ok, { labelSmoothing: 1 }), 'ERR_VLK_INVALID_ARG');
  code(() => twoHopLossSync(ok, { weights: { rtc: -1 } }), 'ERR_VLK_INVALID_ARG', /rtc/);
  code(() => twoHopLossSync({ ...ok, targets: Int32Array.from([0, 1, 2, 3, 4, 6]) }, {}), 'ERR_VLK_INVALID_ARG', /targets\[5\]/);
  code(() => twoHopLossSync({ ...ok, targets: Int32Array.from([0, 1]) }, {}), 'ERR_VLK_SHAPE', /targets/);
  const nan = Float32Array.from(ok.targetTokens.data);
  nan[5 * 12 + 3] = NaN;
  code(() => twoHopLossSync({ ...ok, targetTokens: { data: nan, dims: [6, 5, 12] } }, {}), 'ERR_VLK_NON_FINITE', /targetTokens: row 5, element 3/);
  const pn = Float32Array.from(ok.prototype!.data);
  pn[9 * 2] = Infinity;
  code(() => twoHopLossSync({ ...ok, prototype: { data: pn, dims: [6, 4, 9] } }, {}), 'ERR_VLK_NON_FINITE', /prototype/);
  code(() => twoHopLossSync(null as never, {}), 'ERR_VLK_TYPE');
  const ac = new AbortController();
  ac.abort();
  const err = await twoHopLoss(ok, { signal: ac.signal }).then(() => null, (e) => e);
  assert.is((err as Error).name, 'AbortError');
});

Loss.run();
