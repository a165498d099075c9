// Preference loss of seed 000 (test/preference_loss.test.ts): both input forms against a float64
// reference written here (relative error < 1e-5), gradients against central finite differences of
// that reference (relative error < 1e-3), P = 1, 7, 65, 513, label smoothing 0 and 0.1, mean and
// sum, |beta h| far beyond exp's range, grid-order pairs sharing items (gradients accumulate),
// threads 1 vs 2 and sync vs async bit-identical, and typed errors.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { preferenceLoss, preferenceLossSync, VlkError } from './helpers/lib';
import { gaussian, rng } from './helpers/random';
import { expectCode as code } from './helpers/expect';

async function rejects(p: Promise<unknown>, want: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.is((e as VlkError).code, want, (e as Error).message);
    return;
  }
  assert.unreachable(`expected ${want}`);
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

// fp32-representable float64 values.
function f64(n: number, seed: number, scale = 1): Float64Array {
  const g = gaussian(seed);
  return Float64Array.from({ length: n }, () => Math.fround(g() * scale));
}
const f32 = (x: Float64Array) => Float32Array.from(x);

// -log sigma(z) = softplus(-z), written without the library's min / log1p form.
function softplusNeg(z: number): number {
  return z > 0 ? Math.log(1 + Math.exp(-z)) : -z + Math.log(1 + Math.exp(z));
}

function pairLoss(h: number, beta: number, eps: number): number {
  return (1 - eps) * softplusNeg(beta * h) + eps * softplusNeg(-beta * h);
}

interface Opts {
  beta: number;
  eps: number;
  sum: boolean;
}

function refPairs(sw: Float64Array, sl: Float64Array, rw: Float64Array, rl: Float64Array, o: Opts): number {
  let total = 0;
  for (let i = 0; i < sw.length; i++) total += pairLoss(sw[i] - rw[i] - (sl[i] - rl[i]), o.beta, o.eps);
  return o.sum ? total : total / sw.length;
}

function refMatrix(s: Float64Array, r: Float64Array, n: number, pairs: Int32Array, o: Opts): number {
  let total = 0;
  const p = pairs.length / 3;
  for (let i = 0; i < p; i++) {
    const w = pairs[3 * i] * n + pairs[3 * i + 1];
    const l = pairs[3 * i] * n + pairs[3 * i + 2];
    total += pairLoss(s[w] - r[w] - (s[l] - r[l]), o.beta, o.eps);
  }
  return o.sum ? total : total / p;
}

// Relative error (over the picked entries) of an analytic gradient against central differences.
function fd(x: Float64Array, f: () => number, grad: Float32Array, picks: Iterable<number>, h = 1e-6): number {
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

function sample(n: number, count: number, seed: number): number[] {
  const u = rng(seed);
  const picks = new Set<number>();
  while (picks.size < Math.min(count, n)) picks.add(Math.floor(u() * n));
  return [...picks];
}

// Seed 000's grid order: u rows (relevance) x v columns (aesthetics), a > b when a is at or above and
// at or left of b. Items are columns row * v + col of query q's row.
function gridPairs(q: number, u: number, v: number): number[] {
  const out: number[] = [];
  for (let a = 0; a < u * v; a++) {
    for (let b = 0; b < u * v; b++) {
      if (a === b) continue;
      if (Math.floor(a / v) <= Math.floor(b / v) && a % v <= b % v) out.push(q, a, b);
    }
  }
  return out;
}

const Pairs = suite('preferenceLoss: per-pair vectors');

for (const p of [1, 7, 65, 513]) {
  for (const o of [
    { beta: 10, eps: 0.1, sum: false },
    { beta: 10, eps: 0, sum: false },
    { beta: 2.5, eps: 0.1, sum: true },
  ]) {
    Pairs(`P = ${p}, beta ${o.beta}, eps ${o.eps}, ${o.sum ? 'sum' : 'mean'}: forward and gradients`, async () => {
      const sw = f64(p, 10 + p, 0.2);
      const sl = f64(p, 20 + p, 0.2);
      const rw = f64(p, 30 + p, 0.2);
      const rl = f64(p, 40 + p, 0.2);
      const want = refPairs(sw, sl, rw, rl, o);
      const inputs = { policyChosen: f32(sw), policyRejected: f32(sl), referenceChosen: f32(rw), referenceRejected: f32(rl) };
      const options = { beta: o.beta, labelSmoothing: o.eps, reduction: o.sum ? ('sum' as const) : ('mean' as const) };
      const s = preferenceLossSync(inputs, options);
      const a = await preferenceLoss(inputs, options);
      assert.ok(rel(s.loss, want) < 1e-5, `loss ${s.loss} vs ${want}`);
      let preferred = 0;
      for (let i = 0; i < p; i++) preferred += sw[i] - rw[i] - (sl[i] - rl[i]) > 0 ? 1 : 0;
      assert.is(s.preferred, preferred);
      const f = () => refPairs(sw, sl, rw, rl, o);
      const picks = sample(p, 40, p);
      const ew = fd(sw, f, s.dPolicyChosen, picks);
      const el = fd(sl, f, s.dPolicyRejected, picks);
      assert.ok(ew < 1e-3, `dPolicyChosen: relative error ${ew}`);
      assert.ok(el < 1e-3, `dPolicyRejected: relative error ${el}`);
      for (let i = 0; i < p; i++) assert.is(s.dPolicyRejected[i], -s.dPolicyChosen[i]);
      assert.is(a.loss, s.loss, 'async = sync');
      assert.equal(Array.from(a.dPolicyChosen), Array.from(s.dPolicyChosen));
    });
  }
}

Pairs('|beta h| far past exp overflow: finite loss, limits of the gradient', () => {
  // h = +-1, +-50 with beta 1e4: beta h up to 5e5, where exp(beta h) is Infinity in float64.
  const h = [1, -1, 50, -50, 0];
  const eps = 0.1;
  const beta = 1e4;
  const zero = new Float32Array(h.length);
  const r = preferenceLossSync(
    { policyChosen: Float32Array.from(h), policyRejected: zero, referenceChosen: zero, referenceRejected: zero },
    { beta, labelSmoothing: eps, reduction: 'sum' },
  );
  assert.ok(Number.isFinite(r.loss));
  // -log sigma(z) = max(-z, 0) + log1p(exp(-|z|)): with |z| >= 1e4 the log1p term is 0 in float64.
  let want = Math.log(2); // h = 0: -(1 - eps) log(1/2) - eps log(1/2)
  for (const x of h) if (x !== 0) want += x > 0 ? eps * beta * x : (1 - eps) * beta * -x;
  assert.ok(rel(r.loss, want) < 1e-12, `loss ${r.loss} vs ${want}`);
  // dL/dh -> beta eps for beta h >> 0, -beta (1 - eps) for beta h << 0, beta (eps - 1/2) at 0.
  const grads = [beta * eps, -beta * (1 - eps), beta * eps, -beta * (1 - eps), beta * (eps - 0.5)];
  for (let i = 0; i < h.length; i++) assert.ok(rel(r.dPolicyChosen[i], grads[i]) < 1e-6, `pair ${i}: ${r.dPolicyChosen[i]}`);
  // Moderate |beta h| (around 30 to 700) against the reference, where the naive form loses digits.
  const sw = Float64Array.from([0.003, -0.003, 0.07, -0.07].map(Math.fround));
  const z = new Float64Array(4);
  const m = preferenceLossSync(
    { policyChosen: f32(sw), policyRejected: f32(z), referenceChosen: f32(z), referenceRejected: f32(z) },
    { beta: 1e4, labelSmoothing: 0 },
  );
  const wantM = refPairs(sw, z, z, z, { beta: 1e4, eps: 0, sum: false });
  assert.ok(rel(m.loss, wantM) < 1e-9, `loss ${m.loss} vs ${wantM}`);
});

Pairs('threads 1 vs 2: bit-identical loss and gradients over many chunks', () => {
  const p = 20011;
  const v = [f64(p, 1, 0.3), f64(p, 2, 0.3), f64(p, 3, 0.3), f64(p, 4, 0.3)].map(f32);
  const inputs = { policyChosen: v[0], policyRejected: v[1], referenceChosen: v[2], referenceRejected: v[3] };
  const one = preferenceLossSync(inputs, { threads: 1 });
  const two = preferenceLossSync(inputs, { threads: 2 });
  assert.is(one.loss, two.loss);
  assert.is(one.preferred, two.preferred);
  assert.equal(Buffer.from(one.dPolicyChosen.buffer), Buffer.from(two.dPolicyChosen.buffer));
});

const Matrix = suite('preferenceLoss: pairs into score matrices');

for (const [q, n, u, v] of [
  [1, 7, 2, 3],
  [7, 65, 5, 4],
  [3, 13, 1, 13],
]) {
  for (const o of [
    { beta: 10, eps: 0.1, sum: false },
    { beta: 10, eps: 0, sum: true },
  ]) {
    Matrix(`Q ${q} x N ${n}, grid ${u} x ${v}, eps ${o.eps}: forward, scattered gradients accumulate`, async () => {
      const s = f64(q * n, 100 + n, 0.3);
      const r = f64(q * n, 200 + n, 0.3);
      const list: number[] = [];
      for (let i = 0; i < q; i++) list.push(...gridPairs(i, u, v));
      // A repeated pair on top of the grid's shared items.
      list.push(...list.slice(0, 3));
      const pairs = Int32Array.from(list);
      const count = ((u * (u + 1)) / 2) * ((v * (v + 1)) / 2) - u * v;
      assert.is(pairs.length / 3, q * count + 1);
      const want = refMatrix(s, r, n, pairs, o);
      const options = { beta: o.beta, labelSmoothing: o.eps, reduction: o.sum ? ('sum' as const) : ('mean' as const) };
      const res = preferenceLossSync({ scores: { data: f32(s), rows: q, cols: n }, referenceScores: f32(r), pairs }, options);
      assert.ok(rel(res.loss, want) < 1e-5, `loss ${res.loss} vs ${want}`);
      assert.is(res.dScores.length, q * n);
      // Every touched entry against finite differences; untouched entries exactly 0.
      const touched = new Set<number>();
      for (let i = 0; i < pairs.length; i += 3) {
        touched.add(pairs[i] * n + pairs[i + 1]);
        touched.add(pairs[i] * n + pairs[i + 2]);
      }
      const e = fd(s, () => refMatrix(s, r, n, pairs, o), res.dScores, touched);
      assert.ok(e < 1e-3, `dScores: relative error ${e}`);
      for (let i = 0; i < q * n; i++) if (!touched.has(i)) assert.is(res.dScores[i], 0);
      // The same pairs gathered into vectors give the same loss, bit for bit.
      const g = (m: Float64Array, k: number) => Float32Array.from({ length: pairs.length / 3 }, (_, i) => m[pairs[3 * i] * n + pairs[3 * i + k]]);
      const vec = preferenceLossSync(
        { policyChosen: g(s, 1), policyRejected: g(s, 2), referenceChosen: g(r, 1), referenceRejected: g(r, 2) },
        options,
      );
      assert.is(vec.loss, res.loss);
      const a = await preferenceLoss({ scores: f32(s), referenceScores: f32(r), pairs: list }, { ...options, dim: n });
      assert.is(a.loss, res.loss, 'async = sync');
      assert.equal(Array.from(a.dScores), Array.from(res.dScores));
      const t2 = preferenceLossSync({ scores: f32(s), referenceScores: f32(r), pairs }, { ...options, dim: n, threads: 2 });
      assert.is(t2.loss, res.loss, 'threads 2 = threads 1');
      assert.equal(Array.from(t2.dScores), Array.from(res.dScores));
    });
  }
}

const Errors = suite('preferenceLoss: typed errors');

Errors('bad inputs and options name the argument', async () => {
  const v = (n: number) => new Float32Array(n).fill(0.5);
  const pair = (n = 3) => ({ policyChosen: v(n), policyRejected: v(n), referenceChosen: v(n), referenceRejected: v(n) });
  code(() => preferenceLossSync({ ...pair(), referenceRejected: v(2) }), 'ERR_VLK_SHAPE', /referenceRejected: length 2/);
  code(() => preferenceLossSync({ ...pair(), policyRejected: new Float64Array(3) as never }), 'ERR_VLK_TYPE', /policyRejected/);
  code(() => preferenceLossSync(pair(0)), 'ERR_VLK_EMPTY');
  const nan = pair();
  nan.referenceChosen[2] = NaN;
  code(() => preferenceLossSync(nan), 'ERR_VLK_NON_FINITE', /referenceChosen\[2\]/);
  code(() => preferenceLossSync(pair(), { beta: 0 }), 'ERR_VLK_INVALID_ARG', /beta/);
  code(() => preferenceLossSync(pair(), { beta: -1 }), 'ERR_VLK_INVALID_ARG', /beta/);
  code(() => preferenceLossSync(pair(), { beta: NaN }), 'ERR_VLK_INVALID_ARG', /beta/);
  code(() => preferenceLossSync(pair(), { labelSmoothing: 1 }), 'ERR_VLK_INVALID_ARG', /labelSmoothing/);
  code(() => preferenceLossSync(pair(), { labelSmoothing: -0.01 }), 'ERR_VLK_INVALID_ARG', /labelSmoothing/);
  code(() => preferenceLossSync(pair(), { reduction: 'max' as never }), 'ERR_VLK_INVALID_ARG', /reduction/);

  const scores = { data: v(12), rows: 3, cols: 4 };
  const ref = { data: v(12), rows: 3, cols: 4 };
  const m = (pairs: number[], s = scores, r = ref) => preferenceLossSync({ scores: s, referenceScores: r, pairs });
  code(() => m([0, 1]), 'ERR_VLK_SHAPE', /pairs: length 2/);
  code(() => m([]), 'ERR_VLK_EMPTY', /pairs/);
  code(() => m([0, 1, 2, 3, 0, 1]), 'ERR_VLK_INVALID_ARG', /pairs\[1\]: query 3 is not in 0..2/);
  code(() => m([2, 4, 1]), 'ERR_VLK_INVALID_ARG', /pairs\[0\]: winner 4 is not in 0..3/);
  code(() => m([0, 1, 2, 1, 0, 9]), 'ERR_VLK_INVALID_ARG', /pairs\[1\]: loser 9/);
  code(() => m([0, 1, -1]), 'ERR_VLK_INVALID_ARG', /pairs\[0\]/);
  code(() => m([1, 2, 2]), 'ERR_VLK_INVALID_ARG', /winner and loser/);
  code(() => m([0, 1, 2], scores, { data: v(8), rows: 2, cols: 4 }), 'ERR_VLK_SHAPE', /referenceScores/);
  code(() => m([0, 1, 2], scores, { data: v(15), rows: 3, cols: 5 }), 'ERR_VLK_DIM_MISMATCH', /referenceScores/);
  const bad = { data: v(12), rows: 3, cols: 4 };
  bad.data[9] = Infinity;
  code(() => m([0, 1, 2], bad), 'ERR_VLK_NON_FINITE', /scores: row 2, column 1/);
  code(() => preferenceLossSync({ scores: v(12), referenceScores: v(12), pairs: [0, 1, 2] }), 'ERR_VLK_INVALID_ARG', /dim/);
  code(() => preferenceLossSync({ scores, referenceScores: ref, pairs: new Float32Array(3) as never }), 'ERR_VLK_TYPE', /pairs/);
  code(() => preferenceLossSync({ ...pair(), scores, referenceScores: ref, pairs: [0, 1, 2] } as never), 'ERR_VLK_INVALID_ARG', /either/);

  await rejects(preferenceLoss(nan), 'ERR_VLK_NON_FINITE');
  await rejects(preferenceLoss({ scores, referenceScores: ref, pairs: [0, 1, 7] }), 'ERR_VLK_INVALID_ARG');
  const ac = new AbortController();
  ac.abort();
  try {
    await preferenceLoss(pair(), { signal: ac.signal });
    assert.unreachable('aborted');
  } catch (e) {
    assert.is((e as Error).name, 'AbortError');
  }
});

Pairs.run();
Matrix.run();
Errors.run();
