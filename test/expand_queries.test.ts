// Query-time graph re-ranking (test/expand_queries.test.ts): the bar — attention-weighted
// query expansion lifts Recall@10 above plain search on a synthetic gallery with planted
// near-duplicate groups (test/helpers/planted_groups.ts, fixed seed), and gallery augmentation on
// top lifts it further; the expansion arithmetic (neighbours, softmax weights, mixed vectors) and
// the augmentation's against float64 references (relative error < 1e-5) for 'cosine' and 'ip';
// the re-search equals a search of the returned expanded queries; typed errors; async + abort.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { augmentGallery, augmentGallerySync, expandQueries, expandQueriesSync, searchSync, VlkError } from './helpers/lib';
import { gaussianMatrix } from './helpers/random';
import { plantedGroups, recallAt } from './helpers/planted_groups';

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / Math.max(den, 1e-30);
}

function row(m: Float32Array, i: number, d: number): Float64Array {
  return Float64Array.from(m.subarray(i * d, (i + 1) * d));
}
function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
function nrm(a: Float64Array): number {
  return Math.sqrt(dot(a, a));
}

// Float64 top-m by brute force (ties by lower row), excluding `skip`.
function topM(q: Float64Array, g: Float32Array, n: number, d: number, m: number, cosine: boolean, skip = -1): { idx: number[]; s: number[] } {
  const sc: [number, number][] = [];
  for (let j = 0; j < n; j++) {
    if (j === skip) continue;
    const gj = row(g, j, d);
    const v = dot(q, gj) / (cosine ? nrm(q) * nrm(gj) : 1);
    sc.push([v, j]);
  }
  sc.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  return { idx: sc.slice(0, m).map((x) => x[1]), s: sc.slice(0, m).map((x) => x[0]) };
}

function softmax(s: number[], t: number): number[] {
  const mx = Math.max(...s.map((v) => v / t));
  const e = s.map((v) => Math.exp(v / t - mx));
  const z = e.reduce((a, v) => a + v, 0);
  return e.map((v) => v / z);
}

function mixRef(parts: [number, Float64Array][], cosine: boolean, d: number): Float64Array {
  const acc = new Float64Array(d);
  for (const [c, v] of parts) {
    const s = cosine ? c / nrm(v) : c;
    for (let i = 0; i < d; i++) acc[i] += s * v[i];
  }
  const r = nrm(acc) + 1e-8;
  return acc.map((v) => v / r);
}

const qe = suite('expandQueries');

qe('planted near-duplicate groups: expansion lifts Recall@10 over plain search (and augmentation further)', () => {
  const p = plantedGroups({ seed: 7004 });
  const d = p.dim;
  const Q = { data: p.queries, rows: p.q, cols: d };
  const G = { data: p.gallery, rows: p.n, cols: d };
  const plain = searchSync(Q, G, { k: 10, metric: 'cosine' });
  const ex = expandQueriesSync(Q, G, { m: 16, k: 10 });
  const aug = augmentGallerySync(G, { m: 16 });
  const both = expandQueriesSync(Q, { data: aug.expanded, rows: p.n, cols: d }, { m: 16, k: 10 });
  const rPlain = recallAt(plain.indices, 10, 10, p);
  const rEx = recallAt(ex.indices!, 10, 10, p);
  const rBoth = recallAt(both.indices!, 10, 10, p);
  console.log(`    R@10 plain ${rPlain.toFixed(3)}, expanded ${rEx.toFixed(3)}, expanded + augmented gallery ${rBoth.toFixed(3)} (${p.q} queries, ${p.n} gallery rows)`);
  assert.ok(rEx > rPlain + 0.1, `expanded ${rEx} vs plain ${rPlain}`);
  assert.ok(rBoth > rPlain + 0.1, `expanded + augmented ${rBoth} vs plain ${rPlain}`);
  // The re-search is a search of the returned expanded queries over the same gallery.
  const again = searchSync({ data: ex.expanded, rows: p.q, cols: d }, G, { k: 10, metric: 'cosine' });
  assert.equal(Array.from(again.indices), Array.from(ex.indices!));
  assert.equal(Array.from(again.scores), Array.from(ex.scores!));
});

qe('expansion arithmetic matches float64 (cosine and ip, selfWeight, awkward sizes)', () => {
  const cases = [
    { q: 1, n: 1, d: 1, m: 1, metric: 'cosine' as const, t: 0.1, beta: 1 },
    { q: 5, n: 23, d: 7, m: 4, metric: 'cosine' as const, t: 0.1, beta: 1 },
    { q: 3, n: 9, d: 13, m: 9, metric: 'ip' as const, t: 2, beta: 0.5 },
    { q: 4, n: 17, d: 5, m: 3, metric: 'cosine' as const, t: 0.03, beta: 0 },
  ];
  for (const [ci, c] of cases.entries()) {
    const qs = gaussianMatrix(c.q, c.d, 40 + ci);
    const gs = gaussianMatrix(c.n, c.d, 50 + ci);
    const r = expandQueriesSync(qs, gs, { dim: c.d, m: c.m, metric: c.metric, temperature: c.t, selfWeight: c.beta });
    const cos = c.metric === 'cosine';
    const ref = new Float64Array(c.q * c.d);
    for (let i = 0; i < c.q; i++) {
      const qi = row(qs, i, c.d);
      const top = topM(qi, gs, c.n, c.d, c.m, cos);
      assert.equal(Array.from(r.neighbours.subarray(i * c.m, (i + 1) * c.m)), top.idx, `case ${ci} q${i} neighbours`);
      const w = softmax(top.s, c.t);
      assert.ok(relErr(r.weights.subarray(i * c.m, (i + 1) * c.m), w) < 1e-5, `case ${ci} weights`);
      ref.set(mixRef([[c.beta, qi], ...top.idx.map((j, k): [number, Float64Array] => [w[k], row(gs, j, c.d)])], cos, c.d), i * c.d);
    }
    assert.ok(relErr(r.expanded, ref) < 1e-5, `case ${ci}: ${relErr(r.expanded, ref)}`);
  }
});

qe('augmentGallery matches float64: self (score 1 / |g|^2) plus its top-m others', () => {
  for (const [ci, c] of [
    { n: 2, d: 3, m: 1, metric: 'cosine' as const, t: 0.1 },
    { n: 19, d: 6, m: 5, metric: 'cosine' as const, t: 0.2 },
    { n: 11, d: 9, m: 10, metric: 'ip' as const, t: 3 },
  ].entries()) {
    const gs = gaussianMatrix(c.n, c.d, 60 + ci);
    const r = augmentGallerySync({ data: gs, rows: c.n, cols: c.d }, { m: c.m, metric: c.metric, temperature: c.t });
    const cos = c.metric === 'cosine';
    const ref = new Float64Array(c.n * c.d);
    for (let i = 0; i < c.n; i++) {
      const gi = row(gs, i, c.d);
      const top = topM(gi, gs, c.n, c.d, c.m, cos, i);
      assert.equal(Array.from(r.neighbours.subarray(i * c.m, (i + 1) * c.m)), top.idx, `case ${ci} row ${i}`);
      const w = softmax([cos ? 1 : dot(gi, gi), ...top.s], c.t);
      assert.ok(relErr(r.weights.subarray(i * (c.m + 1), (i + 1) * (c.m + 1)), w) < 1e-5, `case ${ci} weights`);
      ref.set(mixRef([[w[0], gi], ...top.idx.map((j, k): [number, Float64Array] => [w[k + 1], row(gs, j, c.d)])], cos, c.d), i * c.d);
    }
    assert.ok(relErr(r.expanded, ref) < 1e-5, `case ${ci}: ${relErr(r.expanded, ref)}`);
  }
});

qe('async equals sync; abort; typed errors', async () => {
  const qs = gaussianMatrix(6, 8, 1);
  const gs = gaussianMatrix(30, 8, 2);
  const s = expandQueriesSync(qs, gs, { dim: 8, m: 5, k: 3 });
  const a = await expandQueries(qs, gs, { dim: 8, m: 5, k: 3, threads: 2 });
  assert.equal(Array.from(a.expanded), Array.from(s.expanded));
  assert.equal(Array.from(a.indices!), Array.from(s.indices!));
  const ag = await augmentGallery(gs, { dim: 8, m: 4 });
  assert.equal(Array.from(ag.expanded), Array.from(augmentGallerySync(gs, { dim: 8, m: 4 }).expanded));
  const ac = new AbortController();
  ac.abort();
  const err = await expandQueries(qs, gs, { dim: 8, signal: ac.signal, m: 5 }).then(() => null, (e) => e);
  assert.is(err?.name, 'AbortError');
  assert.throws(() => expandQueriesSync(qs, gs, { dim: 8, m: 31 }), (e: VlkError) => e.code === 'ERR_VLK_INVALID_K');
  assert.throws(() => expandQueriesSync(qs, gs, { dim: 8, m: 0 }), (e: VlkError) => e.code === 'ERR_VLK_INVALID_K');
  assert.throws(() => expandQueriesSync(qs, gs, { dim: 8, k: 31 }), (e: VlkError) => e.code === 'ERR_VLK_INVALID_K');
  assert.throws(() => augmentGallerySync(gs, { dim: 8, m: 30 }), (e: VlkError) => e.code === 'ERR_VLK_INVALID_K' && /N-1 = 29/.test(e.message));
  assert.throws(() => expandQueriesSync(qs, gs, { dim: 8, metric: 'l2' as never }), (e: VlkError) => e.code === 'ERR_VLK_INVALID_ARG' && /metric/.test(e.message));
  assert.throws(() => expandQueriesSync(qs, gs, { dim: 8, temperature: 0 }), (e: VlkError) => e.code === 'ERR_VLK_INVALID_ARG' && /temperature/.test(e.message));
  assert.throws(() => expandQueriesSync(qs, { data: gs, rows: 40, cols: 6 }, { dim: 8 }), (e: VlkError) => e.code === 'ERR_VLK_DIM_MISMATCH');
  assert.throws(() => expandQueriesSync(qs, gs), (e: VlkError) => e.code === 'ERR_VLK_INVALID_ARG' && /dim/.test(e.message));
  const bad = gs.slice();
  bad[13] = NaN;
  assert.throws(() => expandQueriesSync(qs, bad, { dim: 8 , m: 5 }), (e: VlkError) => e.code === 'ERR_VLK_NON_FINITE');
  assert.throws(() => augmentGallerySync(bad, { dim: 8, m: 5 }), (e: VlkError) => e.code === 'ERR_VLK_NON_FINITE');
});

qe.run();
