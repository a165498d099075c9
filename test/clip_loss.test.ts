// CLIP symmetric InfoNCE of seed 003 (test/clip_loss.test.ts): forward against a float64 reference
// written here (relative error < 1e-5), gradients for images, texts and the logit scale against
// central finite differences of that reference (relative error < 1e-3), B = 1, 7, 65, label
// smoothing 0 and 0.1, rows of any norm (and a zero row), normalize off, the clip at 100, threads
// 1 vs 2 and sync vs async bit-identical, and typed errors.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { clipLoss, clipLossSync, VlkError } from './helpers/lib';
import { gaussian, rng } from './helpers/random';
import { expectCode as code } from './helpers/expect';

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

// Rows of random norm (0.2 .. 3), fp32-representable.
function rows(b: number, d: number, seed: number): Float64Array {
  const g = gaussian(seed);
  const u = rng(seed + 1000);
  const out = new Float64Array(b * d);
  for (let i = 0; i < b; i++) {
    const s = 0.2 + 2.8 * u();
    for (let k = 0; k < d; k++) out[i * d + k] = Math.fround((g() * s) / Math.sqrt(d));
  }
  return out;
}
const f32 = (x: Float64Array) => Float32Array.from(x);

interface Opts {
  t: number;
  eps: number;
  normalize: boolean;
  maxScale?: number;
}

function unit(x: Float64Array, b: number, d: number, normalize: boolean): Float64Array {
  if (!normalize) return x;
  const out = new Float64Array(b * d);
  for (let i = 0; i < b; i++) {
    let ss = 0;
    for (let k = 0; k < d; k++) ss += x[i * d + k] ** 2;
    const den = Math.max(Math.sqrt(ss), 1e-12);
    for (let k = 0; k < d; k++) out[i * d + k] = x[i * d + k] / den;
  }
  return out;
}

// Mean over rows of the label-smoothed CE of logits[i, .] against column i.
function ce(logits: (i: number, j: number) => number, b: number, eps: number): number {
  let total = 0;
  for (let i = 0; i < b; i++) {
    let mx = -Infinity;
    for (let j = 0; j < b; j++) mx = Math.max(mx, logits(i, j));
    let sum = 0;
    for (let j = 0; j < b; j++) sum += Math.exp(logits(i, j) - mx);
    const lse = mx + Math.log(sum);
    for (let j = 0; j < b; j++) total -= ((j === i ? 1 - eps : 0) + eps / b) * (logits(i, j) - lse);
  }
  return total / b;
}

function ref(img: Float64Array, txt: Float64Array, b: number, d: number, o: Opts): number {
  const u = unit(img, b, d, o.normalize);
  const v = unit(txt, b, d, o.normalize);
  const scale = Math.min(Math.exp(o.t), o.maxScale ?? 100);
  const s = new Float64Array(b * b);
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < b; j++) {
      let dot = 0;
      for (let k = 0; k < d; k++) dot += u[i * d + k] * v[j * d + k];
      s[i * b + j] = scale * dot;
    }
  }
  return 0.5 * (ce((i, j) => s[i * b + j], b, o.eps) + ce((i, j) => s[j * b + i], b, o.eps));
}

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

const Clip = suite('clipLoss');

const tInit = Math.log(1 / 0.07);
for (const [b, d] of [
  [1, 5],
  [7, 33],
  [65, 96],
]) {
  for (const o of [
    { t: tInit, eps: 0, normalize: true },
    { t: Math.log(30), eps: 0.1, normalize: true },
    { t: 1.2, eps: 0.1, normalize: false },
  ]) {
    Clip(`B ${b} x D ${d}, t ${o.t.toFixed(3)}, eps ${o.eps}, normalize ${o.normalize}: forward and gradients`, async () => {
      const img = rows(b, d, 10 * b + d);
      const txt = rows(b, d, 20 * b + d);
      const want = ref(img, txt, b, d, o);
      const options = { logitScale: o.t, labelSmoothing: o.eps, normalize: o.normalize };
      const s = clipLossSync({ data: f32(img), rows: b, cols: d }, { data: f32(txt), dims: [b, d] }, options);
      assert.ok(rel(s.loss, want) < 1e-5, `loss ${s.loss} vs ${want}`);
      assert.is(s.clipped, false);
      assert.ok(rel(s.scale, Math.exp(o.t)) < 1e-15);
      const f = () => ref(img, txt, b, d, o);
      const ei = fd(img, f, s.dImages!, 40, b);
      const et = fd(txt, f, s.dTexts!, 40, b + 1);
      assert.ok(ei < 1e-3, `dImages: relative error ${ei}`);
      assert.ok(et < 1e-3, `dTexts: relative error ${et}`);
      const h = 1e-6;
      const dt = (ref(img, txt, b, d, { ...o, t: o.t + h }) - ref(img, txt, b, d, { ...o, t: o.t - h })) / (2 * h);
      if (b === 1) {
        // One pair: the loss is 0 for any scale (a single-column softmax), and so is every gradient.
        assert.is(s.loss, 0);
        assert.is(s.dLogitScale, 0);
      } else {
        assert.ok(rel(s.dLogitScale, dt) < 1e-3, `dLogitScale ${s.dLogitScale} vs ${dt}`);
      }
      const a = await clipLoss(f32(img), f32(txt), { ...options, dim: d });
      assert.is(a.loss, s.loss, 'async = sync');
      assert.is(a.dLogitScale, s.dLogitScale);
      assert.equal(Array.from(a.dImages!), Array.from(s.dImages!));
      assert.equal(Array.from(a.dTexts!), Array.from(s.dTexts!));
    });
  }
}

Clip('the clip at 100: scale 100, dLogitScale 0 above it, finite differences just below it', () => {
  const b = 9;
  const d = 17;
  const img = rows(b, d, 1);
  const txt = rows(b, d, 2);
  const above = clipLossSync(f32(img), f32(txt), { dim: d, logitScale: Math.log(100) + 0.5 });
  assert.is(above.clipped, true);
  assert.is(above.scale, 100);
  assert.is(above.dLogitScale, 0);
  const atClip = ref(img, txt, b, d, { t: Math.log(100), eps: 0, normalize: true });
  assert.ok(rel(above.loss, atClip) < 1e-5, `loss ${above.loss} vs ${atClip}`);
  const t = Math.log(100) - 0.01;
  const below = clipLossSync(f32(img), f32(txt), { dim: d, logitScale: t });
  assert.is(below.clipped, false);
  const h = 1e-6;
  const o = { eps: 0, normalize: true };
  const dt = (ref(img, txt, b, d, { ...o, t: t + h }) - ref(img, txt, b, d, { ...o, t: t - h })) / (2 * h);
  assert.ok(rel(below.dLogitScale, dt) < 1e-3, `dLogitScale ${below.dLogitScale} vs ${dt}`);
  // A user clip (maxScale) works the same way.
  const custom = clipLossSync(f32(img), f32(txt), { dim: d, logitScale: 3, maxScale: 10 });
  assert.is(custom.scale, 10);
  assert.is(custom.dLogitScale, 0);
  assert.ok(rel(custom.loss, ref(img, txt, b, d, { t: Math.log(10), eps: 0, normalize: true })) < 1e-5);
});

Clip('a zero row: finite loss equal to the reference (u = 0), finite gradients', () => {
  const b = 5;
  const d = 8;
  const img = rows(b, d, 3);
  const txt = rows(b, d, 4);
  img.fill(0, 2 * d, 3 * d);
  const o = { t: tInit, eps: 0.1, normalize: true };
  const r = clipLossSync(f32(img), f32(txt), { dim: d, logitScale: o.t, labelSmoothing: o.eps });
  assert.ok(rel(r.loss, ref(img, txt, b, d, o)) < 1e-5);
  assert.ok(r.dImages!.every(Number.isFinite) && r.dTexts!.every(Number.isFinite));
  // The other rows' gradients match finite differences (a zero row sits on the clamp's kink: a
  // perturbation of 1e-6 leaves the 1e-12 regime, so it is left out).
  let num = 0;
  let den = 0;
  const h = 1e-6;
  for (let i = 0; i < b * d; i++) {
    if (Math.floor(i / d) === 2) continue;
    const old = img[i];
    img[i] = old + h;
    const up = ref(img, txt, b, d, o);
    img[i] = old - h;
    const down = ref(img, txt, b, d, o);
    img[i] = old;
    num += ((up - down) / (2 * h) - r.dImages![i]) ** 2;
    den += ((up - down) / (2 * h)) ** 2;
  }
  assert.ok(den > 0 && Math.sqrt(num / den) < 1e-3, `dImages: relative error ${Math.sqrt(num / den)}`);
  const e = fd(txt, () => ref(img, txt, b, d, o), r.dTexts!, 40, 5);
  assert.ok(e < 1e-3, `dTexts: relative error ${e}`);
});

Clip('threads 1 vs 2: bit-identical; grads: false gives the same loss', () => {
  for (const [b, d] of [
    [65, 96],
    [300, 64],
  ]) {
    const img = f32(rows(b, d, 7));
    const txt = f32(rows(b, d, 8));
    const opts = { dim: d, logitScale: tInit, labelSmoothing: 0.1 };
    const one = clipLossSync(img, txt, { ...opts, threads: 1 });
    const two = clipLossSync(img, txt, { ...opts, threads: 2 });
    assert.is(one.loss, two.loss);
    assert.is(one.dLogitScale, two.dLogitScale);
    assert.equal(Buffer.from(one.dImages!.buffer), Buffer.from(two.dImages!.buffer));
    assert.equal(Buffer.from(one.dTexts!.buffer), Buffer.from(two.dTexts!.buffer));
    const bare = clipLossSync(img, txt, { ...opts, grads: false });
    assert.is(bare.loss, one.loss);
    assert.is(bare.dImages, undefined);
    assert.is(bare.dLogitScale, one.dLogitScale);
  }
});

Clip('bad inputs: typed errors naming the input', async () => {
  const m = (n: number) => new Float32Array(n).fill(0.25);
  code(() => clipLossSync(m(12), m(8), { dim: 4, logitScale: 1 }), 'ERR_VLK_SHAPE', /texts: 2 rows/);
  code(() => clipLossSync(m(12), { data: m(9), rows: 3, cols: 3 }, { dim: 4, logitScale: 1 }), 'ERR_VLK_DIM_MISMATCH', /texts/);
  code(() => clipLossSync(m(12), m(13), { dim: 4, logitScale: 1 }), 'ERR_VLK_DIM_MISMATCH', /texts/);
  code(() => clipLossSync(m(0), m(0), { dim: 4, logitScale: 1 }), 'ERR_VLK_EMPTY');
  code(() => clipLossSync(m(12), m(12), { logitScale: 1 } as never), 'ERR_VLK_INVALID_ARG', /dim/);
  code(() => clipLossSync(m(12), m(12), { dim: 4 } as never), 'ERR_VLK_INVALID_ARG', /logitScale/);
  code(() => clipLossSync(m(12), m(12), { dim: 4, logitScale: NaN }), 'ERR_VLK_INVALID_ARG', /logitScale/);
  code(() => clipLossSync(m(12), m(12), { dim: 4, logitScale: 1, labelSmoothing: 1 }), 'ERR_VLK_INVALID_ARG', /labelSmoothing/);
  code(() => clipLossSync(m(12), m(12), { dim: 4, logitScale: 1, maxScale: 0 }), 'ERR_VLK_INVALID_ARG', /maxScale/);
  code(() => clipLossSync(m(12), m(12), { dim: 4, logitScale: 1, normalize: 1 as never }), 'ERR_VLK_INVALID_ARG', /normalize/);
  code(() => clipLossSync(new Float64Array(12) as never, m(12), { dim: 4, logitScale: 1 }), 'ERR_VLK_TYPE', /images/);
  const bad = m(12);
  bad[7] = NaN;
  code(() => clipLossSync(m(12), bad, { dim: 4, logitScale: 1 }), 'ERR_VLK_NON_FINITE', /texts: row 1, column 3/);
  try {
    await clipLoss(bad, m(12), { dim: 4, logitScale: 1 });
    assert.unreachable('NaN');
  } catch (e) {
    assert.is((e as VlkError).code, 'ERR_VLK_NON_FINITE');
    assert.match((e as Error).message, /images: row 1, column 3/);
  }
  const ac = new AbortController();
  ac.abort();
  try {
    await clipLoss(m(12), m(12), { dim: 4, logitScale: 1, signal: ac.signal });
    assert.unreachable('aborted');
  } catch (e) {
    assert.is((e as Error).name, 'AbortError');
  }
});

Clip.run();
