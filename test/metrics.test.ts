// Benchmark metrics (test/metrics.test.ts): each metric against a hand-computed case (the arithmetic
// in comments) and against an independent brute force here (full sorts, explicit loops) on random
// score matrices with planted ties, for every tie rule; real Flickr30K / Flickr8k embeddings against
// their READMEs (within 0.1); the annotation loaders on the real files (counts from their READMEs);
// typed errors for bad inputs. Real-data parts skip with a message when ../shared/data is absent.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  aro,
  circo,
  cirr,
  coco1k,
  coco5k,
  fashionIq,
  flickr,
  genecis,
  genecisFromEmbeddings,
  hpir,
  loadCirr,
  loadFashionIq,
  loadGenecis,
  meanr,
  medr,
  metrics,
  ndcg,
  recallAtK,
  rSum,
  sugarcrepe,
  VlkError,
} from './helpers/lib';
import { gaussian, rng } from './helpers/random';
import { readNpy } from './helpers/npy';
import { dataRoot } from './helpers/paths';

type Rule = 'stable' | 'optimistic' | 'pessimistic';
const RULES: Rule[] = ['stable', 'optimistic', 'pessimistic'];

const close = (a: number, b: number, what: string, tol = 1e-9) =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs expected ${b}`);

function throwsCode(fn: () => unknown, code: string, re?: RegExp): void {
  try {
    fn();
  } catch (err) {
    assert.instance(err, VlkError);
    assert.is((err as VlkError).code, code, (err as Error).message);
    if (re) assert.match((err as Error).message, re);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

// ---------------------------------------------------------------------------------------------
// Brute force: full sorts of a candidate list, the target placed among its equals by the rule.

/** 0-based position of candidate `t` among `cands` (ids) sorted by descending score. */
function position(score: (id: number) => number, cands: number[], t: number, rule: Rule): number {
  const order = [...cands].sort((a, b) => {
    const d = score(b) - score(a);
    if (d !== 0) return d;
    if (rule === 'optimistic' && (a === t || b === t)) return a === t ? -1 : 1;
    if (rule === 'pessimistic' && (a === t || b === t)) return a === t ? 1 : -1;
    return a - b;
  });
  return order.indexOf(t);
}

function range(n: number, from = 0): number[] {
  return Array.from({ length: n }, (_, i) => from + i);
}

function npMedianPlusOne(r: number[]): number {
  const s = [...r].sort((a, b) => a - b);
  const n = s.length;
  const med = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  return Math.floor(med) + 1;
}

function pct(r: number[], k: number): number {
  let hit = 0;
  for (const x of r) if (x < k) hit++;
  return (100 * hit) / r.length;
}

function bruteCrossModal(S: Float64Array, n: number, per: number, rule: Rule, i0 = 0, cols = n * per) {
  const at = (i: number, c: number) => S[(i0 + i) * cols + i0 * per + c];
  const i2t: number[] = [];
  for (let i = 0; i < n; i++) {
    const ranks = range(per, i * per).map((g) => position((c) => at(i, c), range(n * per), g, rule));
    i2t.push(Math.min(...ranks));
  }
  const t2i: number[] = [];
  for (let c = 0; c < n * per; c++) t2i.push(position((i) => at(i, c), range(n), Math.floor(c / per), rule));
  const dir = (r: number[]) => ({ r1: pct(r, 1), r5: pct(r, 5), r10: pct(r, 10), medr: npMedianPlusOne(r), meanr: r.reduce((s, x) => s + x, 0) / r.length + 1 });
  const a = dir(i2t);
  const b = dir(t2i);
  return { i2t: a, t2i: b, rsum: a.r1 + a.r5 + a.r10 + b.r1 + b.r5 + b.r10 };
}

/** Scores on a coarse grid (levels values), so that exact ties are frequent. */
function tiedScores(count: number, seed: number, levels = 7): Float64Array {
  const u = rng(seed);
  return Float64Array.from({ length: count }, () => Math.floor(u() * levels) / levels);
}

function compareCrossModal(got: any, want: any, what: string) {
  for (const d of ['i2t', 't2i']) for (const k of ['r1', 'r5', 'r10', 'medr', 'meanr']) close(got[d][k], want[d][k], `${what} ${d}.${k}`);
  close(got.rsum, want.rsum, `${what} rsum`);
}

// ---------------------------------------------------------------------------------------------
const fromRanks = suite('metrics: recall, medr, meanr, rSum from ranks');

fromRanks('hand-computed', () => {
  // ranks 0, 3, 12: R@1 = 1/3, R@5 = 2/3, R@10 = 2/3 (x 100)
  const r = recallAtK(new Int32Array([0, 3, 12]), [1, 5, 10]);
  close(r.r1, 100 / 3, 'r1');
  close(r.r5, 200 / 3, 'r5');
  close(r.r10, 200 / 3, 'r10');
  // [0, 1, 4, 9]: median (1 + 4) / 2 = 2.5 -> floor 2 + 1 = 3; mean 14 / 4 = 3.5 -> 4.5
  assert.is(medr([0, 1, 4, 9]), 3);
  assert.is(meanr([0, 1, 4, 9]), 4.5);
  // odd count: [7, 0, 2] -> median 2 -> 3
  assert.is(medr([7, 0, 2]), 3);
  assert.is(rSum({ i2t: { r1: 80, r5: 95, r10: 98 }, t2i: { r1: 60, r5: 85, r10: 91 } }), 509);
  assert.equal(recallAtK([4], 5), { r5: 100 });
});

fromRanks('errors', () => {
  throwsCode(() => recallAtK([0, -1], [1]), 'ERR_VLK_INVALID_ARG', /ranks\[1\]/);
  throwsCode(() => recallAtK([0, 1.5], [1]), 'ERR_VLK_INVALID_ARG');
  throwsCode(() => recallAtK(new Int32Array([0, -3]), [1]), 'ERR_VLK_INVALID_ARG', /-3/);
  throwsCode(() => recallAtK([], [1]), 'ERR_VLK_EMPTY');
  throwsCode(() => recallAtK([0], [0]), 'ERR_VLK_INVALID_K');
  throwsCode(() => recallAtK(new Float32Array([0]) as any, [1]), 'ERR_VLK_TYPE');
  throwsCode(() => rSum({ i2t: { r1: NaN, r5: 1, r10: 1 }, t2i: { r1: 1, r5: 1, r10: 1 } }), 'ERR_VLK_NON_FINITE', /i2t\.r1/);
});
fromRanks.run();

// ---------------------------------------------------------------------------------------------
const cm = suite('metrics: Flickr30K / COCO protocol');

// 3 images x 6 captions, 2 captions per image (caption c belongs to image floor(c / 2)).
const HAND = new Float32Array([
  0.9, 0.2, 0.8, 0.3, 0.4, 0.0, // image 0: its captions 0, 1
  0.5, 0.1, 0.3, 0.6, 0.9, 0.2, // image 1: captions 2, 3
  0.3, 0.2, 0.1, 0.0, 0.4, 0.4, // image 2: captions 4, 5
]);

cm('hand-computed, every tie rule', () => {
  // i2t: image 0 best caption 0 (0.9), nothing above -> 0. Image 1 best caption 3 (0.6), caption 4
  // (0.9) above -> 1. Image 2: captions 4 and 5 tie at 0.4, nothing above: stable 0, optimistic 0,
  // pessimistic #{>= 0.4} - 1 = 1.
  // t2i: c0 [0.9 0.5 0.3] -> 0; c1 [0.2 0.1 0.2] target image 0: nothing above, image 2 ties after
  // -> stable 0, optimistic 0, pessimistic 1; c2 [0.8 0.3 0.1] -> 1; c3 -> 0; c4 [0.4 0.9 0.4]
  // target image 2: 0.9 above, image 0 ties before -> stable 2, optimistic 1, pessimistic 2; c5 -> 0.
  const stable = flickr({ scores: { data: HAND, rows: 3, cols: 6 }, perImage: 2 });
  // i2t [0 1 0]: R@1 2/3, R@5 = R@10 = 100, medr floor(0) + 1 = 1, meanr 1/3 + 1
  close(stable.i2t.r1, 200 / 3, 'i2t r1');
  close(stable.i2t.r5, 100, 'i2t r5');
  close(stable.i2t.medr, 1, 'i2t medr');
  close(stable.i2t.meanr, 4 / 3, 'i2t meanr');
  // t2i [0 0 1 0 2 0]: R@1 4/6, R@10 100, medr floor(0) + 1 = 1, meanr 3/6 + 1
  close(stable.t2i.r1, 200 / 3, 't2i r1');
  close(stable.t2i.r10, 100, 't2i r10');
  close(stable.t2i.medr, 1, 't2i medr');
  close(stable.t2i.meanr, 1.5, 't2i meanr');
  close(stable.rsum, 200 / 3 + 200 + 200 / 3 + 200, 'rsum');
  assert.equal(stable.ties, { i2t: 1, t2i: 2 });
  assert.is(stable.images, 3);
  assert.is(stable.captions, 6);
  // optimistic: t2i [0 0 1 0 1 0] -> R@1 4/6, meanr 2/6 + 1
  const opt = flickr({ scores: { data: HAND, rows: 3, cols: 6 }, perImage: 2, ties: 'optimistic' });
  close(opt.t2i.meanr, 4 / 3, 'optimistic t2i meanr');
  close(opt.t2i.r1, 200 / 3, 'optimistic t2i r1');
  close(opt.i2t.r1, 200 / 3, 'optimistic i2t r1');
  // pessimistic: i2t [0 1 1] -> R@1 1/3, medr 1 + 1 = 2; t2i [0 1 1 0 2 0] -> R@1 3/6, meanr 4/6 + 1
  const pes = flickr({ scores: { data: HAND, rows: 3, cols: 6 }, perImage: 2, ties: 'pessimistic' });
  close(pes.i2t.r1, 100 / 3, 'pessimistic i2t r1');
  close(pes.i2t.medr, 2, 'pessimistic i2t medr');
  close(pes.t2i.meanr, 5 / 3, 'pessimistic t2i meanr');
  close(pes.t2i.r1, 50, 'pessimistic t2i r1');
  // the same report from the ranks
  const fromR = flickr({ i2t: [0, 1, 0], t2i: [0, 0, 1, 0, 2, 0], perImage: 2 });
  compareCrossModal(fromR, stable, 'from ranks');
  assert.is(fromR.ties, undefined);
  // a plain array with `images`, and the namespace object
  compareCrossModal(metrics.coco5k({ scores: HAND, images: 3, perImage: 2 }), stable, 'plain');
});

cm('brute force on tied random matrices, awkward sizes, every rule', () => {
  let seed = 11;
  for (const [n, per] of [[1, 1], [1, 5], [7, 5], [13, 3], [40, 5]]) {
    for (const rule of RULES) {
      const S = tiedScores(n * n * per, seed++, n === 40 ? 5 : 3);
      const got = flickr({ scores: { data: S, rows: n, cols: n * per }, perImage: per, ties: rule });
      compareCrossModal(got, bruteCrossModal(S, n, per, rule), `n=${n} per=${per} ${rule}`);
      // Float32 input gives the same (the grid values are exact in float32 up to rounding of
      // each, which keeps the order and the ties)
      const got32 = coco5k({ scores: { data: Float32Array.from(S), rows: n, cols: n * per }, perImage: per, ties: rule });
      compareCrossModal(got32, got, `float32 n=${n} ${rule}`);
    }
  }
});

cm('COCO 1K: folds against brute force per fold, averaged', () => {
  let seed = 101;
  for (const rule of RULES) {
    const folds = 5;
    const n = 3;
    const N = folds * n;
    const S = tiedScores(N * N * 5, seed++, 4);
    const got = coco1k({ scores: { data: S, rows: N, cols: N * 5 }, ties: rule });
    assert.is(got.folds.length, 5);
    const per = range(folds).map((f) => bruteCrossModal(S, n, 5, rule, f * n, N * 5));
    per.forEach((p, f) => compareCrossModal(got.folds[f], p, `fold ${f} ${rule}`));
    const mean = (pick: (r: any) => number) => per.reduce((s, r) => s + pick(r), 0) / folds;
    for (const d of ['i2t', 't2i']) {
      for (const k of ['r1', 'r5', 'r10', 'medr', 'meanr']) close((got as any)[d][k], mean((r) => r[d][k]), `${rule} mean ${d}.${k}`);
    }
    close(got.rsum, mean((r) => r.rsum), `${rule} mean rsum`);
    assert.is(got.images, N);
    // Entries outside the diagonal fold blocks are never read: changing them changes nothing.
    const S2 = Float64Array.from(S);
    S2[0 * N * 5 + 14 * 5] = 99; // image 0 vs caption of image 14 (another fold)
    compareCrossModal(coco1k({ scores: { data: S2, rows: N, cols: N * 5 }, ties: rule }), got, 'off-fold change');
  }
  // hand: two folds of 1 image x 1 caption: every rank 0 -> every recall 100, medr 1, meanr 1
  const h = coco1k({ scores: new Float64Array([0.2, 0.9, 0.1, 0.3]), images: 2, perImage: 1, folds: 2 });
  assert.is(h.rsum, 600);
  assert.is(h.t2i.medr, 1);
  // from per-fold ranks: fold 0 t2i [0 3] R@1 50; fold 1 t2i [0 0] R@1 100 -> mean 75
  const r = coco1k({ folds: [{ i2t: [0], t2i: [0, 3], perImage: 2 }, { i2t: [1], t2i: [0, 0], perImage: 2 }] });
  close(r.t2i.r1, 75, 'fold mean t2i r1');
  close(r.i2t.r1, 50, 'fold mean i2t r1');
});

cm('errors', () => {
  throwsCode(() => flickr({ scores: { data: new Float32Array(12), rows: 3, cols: 4 } }), 'ERR_VLK_SHAPE', /15 captions/);
  throwsCode(() => flickr({ scores: new Float32Array(10) }), 'ERR_VLK_SHAPE');
  const nan = Float32Array.from(HAND);
  nan[7] = NaN;
  throwsCode(() => flickr({ scores: { data: nan, rows: 3, cols: 6 }, perImage: 2 }), 'ERR_VLK_NON_FINITE', /\(1, 1\)/);
  throwsCode(() => flickr({ scores: { data: HAND, rows: 3, cols: 6 }, perImage: 2, ties: 'random' as any }), 'ERR_VLK_INVALID_ARG', /ties/);
  throwsCode(() => flickr({ i2t: [0, 1], t2i: [0, 1, 2] }), 'ERR_VLK_SHAPE', /10/);
  throwsCode(() => flickr({ scores: new Int32Array(6) as any, images: 1 }), 'ERR_VLK_TYPE');
  throwsCode(() => coco1k({ scores: { data: new Float32Array(7 * 35), rows: 7, cols: 35 } }), 'ERR_VLK_SHAPE', /5 equal folds/);
  throwsCode(() => flickr({ scores: { data: new Float32Array(0), rows: 0, cols: 0 } }), 'ERR_VLK_EMPTY');
});
cm.run();

// ---------------------------------------------------------------------------------------------
const cir = suite('metrics: CIRR, FashionIQ, GeneCIS');

const GAL = ['a', 'b', 'c', 'd', 'e'];
const CIRR_Q = [
  { reference: 'b', target: 'd', members: ['b', 'd', 'e', 'a'] },
  { reference: 'a', target: 'c', members: ['a', 'c', 'e', 'b'] },
];
const CIRR_S = new Float32Array([
  0.5, 0.9, 0.7, 0.5, 0.6, // query 0: a b c d e
  0.1, 0.2, 0.8, 0.3, 0.8, // query 1
]);

cir('CIRR hand-computed, every tie rule', () => {
  // query 0, reference b (0.9) removed: d = 0.5 beaten by c 0.7, e 0.6, tied with a (column 0 < 3):
  // stable 3, optimistic 2, pessimistic 3; subset {d, e, a}: e above, a tied before: 2 / 1 / 2.
  // query 1, reference a removed: c = 0.8 tied with e (column 4 > 2): stable 0, optimistic 0,
  // pessimistic 1; subset {c, e, b} the same.
  const st = cirr({ scores: { data: CIRR_S, rows: 2, cols: 5 }, gallery: GAL, queries: CIRR_Q });
  // ranks [3 0]: R@1 50, R@5..50 100; subset [2 0]: R_s@1 50, @2 50, @3 100; Avg (100 + 50) / 2
  assert.equal([st.r1, st.r5, st.r10, st.r50], [50, 100, 100, 100]);
  assert.equal(st.subset, { r1: 50, r2: 50, r3: 100 });
  assert.is(st.avg, 75);
  assert.equal(st.ties, { recall: 2, subset: 2 });
  // optimistic: [2 0], subset [1 0] -> R_s@2 100, Avg 75
  const op = cirr({ scores: { data: CIRR_S, rows: 2, cols: 5 }, gallery: GAL, queries: CIRR_Q, ties: 'optimistic' });
  assert.equal(op.subset, { r1: 50, r2: 100, r3: 100 });
  // pessimistic: [3 1], subset [2 1] -> R@1 0, R_s@1 0, Avg (100 + 0) / 2 = 50
  const pe = cirr({ scores: { data: CIRR_S, rows: 2, cols: 5 }, gallery: GAL, queries: CIRR_Q, ties: 'pessimistic' });
  assert.is(pe.r1, 0);
  assert.equal(pe.subset, { r1: 0, r2: 50, r3: 100 });
  assert.is(pe.avg, 50);
  // from ranks
  const fr = cirr({ ranks: [3, 0], subsetRanks: [2, 0] });
  assert.is(fr.avg, 75);
  // a target outside img_set.members is not found in the subset (as the official script)
  const out = cirr({ scores: { data: CIRR_S, rows: 2, cols: 5 }, gallery: GAL, queries: [CIRR_Q[0], { ...CIRR_Q[1], members: ['a', 'e', 'b'] }] });
  assert.equal(out.subset, { r1: 0, r2: 0, r3: 50 });
});

function bruteCirr(S: Float64Array, n: number, qs: { reference: number; target: number; members: number[] }[], rule: Rule) {
  const recall: number[] = [];
  const subset: number[] = [];
  qs.forEach((q, i) => {
    const score = (j: number) => S[i * n + j];
    recall.push(position(score, range(n).filter((j) => j !== q.reference), q.target, rule));
    const cands = [...new Set(q.members.filter((j) => j !== q.reference))];
    subset.push(cands.includes(q.target) ? position(score, cands, q.target, rule) : Infinity);
  });
  return {
    r1: pct(recall, 1), r5: pct(recall, 5), r10: pct(recall, 10), r50: pct(recall, 50),
    subset: { r1: pct(subset, 1), r2: pct(subset, 2), r3: pct(subset, 3) },
    avg: (pct(recall, 5) + pct(subset, 1)) / 2,
  };
}

cir('CIRR brute force, random galleries with ties', () => {
  const u = rng(7);
  let seed = 300;
  for (const [q, n] of [[1, 7], [7, 60], [33, 120]]) {
    const names = range(n).map((i) => `img${i}`);
    const qs = range(q).map(() => {
      const pick = () => Math.floor(u() * n);
      const reference = pick();
      let target = pick();
      while (target === reference) target = pick();
      const members = [reference, target];
      while (members.length < 6) members.push(pick());
      // some queries without their target in the set
      if (u() < 0.15) members.splice(1, 1, reference);
      return { reference, target, members };
    });
    for (const rule of RULES) {
      const S = tiedScores(q * n, seed++, 6);
      const got = cirr({
        scores: { data: S, rows: q, cols: n },
        gallery: names,
        queries: qs.map((x) => ({ reference: names[x.reference], target: names[x.target], members: x.members.map((m) => names[m]) })),
        ties: rule,
      });
      const want = bruteCirr(S, n, qs, rule);
      for (const k of ['r1', 'r5', 'r10', 'r50', 'avg'] as const) close(got[k], want[k], `q=${q} n=${n} ${rule} ${k}`);
      assert.equal(got.subset, want.subset, `q=${q} ${rule} subset`);
    }
  }
});

cir('CIRR errors', () => {
  const base = { scores: { data: CIRR_S, rows: 2, cols: 5 }, gallery: GAL, queries: CIRR_Q };
  throwsCode(() => cirr({ ...base, queries: [CIRR_Q[0], { ...CIRR_Q[1], target: 'zz' }] }), 'ERR_VLK_INVALID_ARG', /queries\[1\]\.target: "zz"/);
  throwsCode(() => cirr({ ...base, queries: [CIRR_Q[0], { ...CIRR_Q[1], members: ['a', 'q'] }] }), 'ERR_VLK_INVALID_ARG', /members\[1\]/);
  throwsCode(() => cirr({ ...base, queries: [CIRR_Q[0], { ...CIRR_Q[1], target: null }] }), 'ERR_VLK_INVALID_ARG', /test1/);
  throwsCode(() => cirr({ ...base, queries: [CIRR_Q[0], { ...CIRR_Q[1], target: 'a' }] }), 'ERR_VLK_INVALID_ARG', /reference/);
  throwsCode(() => cirr({ ...base, gallery: ['a', 'b', 'c', 'd', 'a'] }), 'ERR_VLK_INVALID_ARG', /twice/);
  throwsCode(() => cirr({ ...base, queries: [CIRR_Q[0]] }), 'ERR_VLK_SHAPE', /rows, expected 1|1 rows|2 rows/);
  throwsCode(() => cirr({ ranks: [0, 1], subsetRanks: [0] }), 'ERR_VLK_SHAPE');
});

cir('FashionIQ hand-computed and brute force', () => {
  // dress ranks [0 9 10 49 50]: R@10 2/5 = 40, R@50 4/5 = 80; shirt [60 5]: 50, 50
  // means: R@10 45, R@50 65; overall (45 + 65) / 2 = 55
  const r = fashionIq({ categories: { dress: { ranks: [0, 9, 10, 49, 50] }, shirt: { ranks: [60, 5] } } });
  assert.equal(r.categories.dress, { r10: 40, r50: 80, queries: 5 });
  assert.equal(r.average, { r10: 45, r50: 65 });
  assert.is(r.overall, 55);
  // scores: the reference stays in the gallery (here it outscores the target)
  const gallery = range(70).map((i) => `B${i}`);
  let seed = 500;
  for (const rule of RULES) {
    const q = 9;
    const S = tiedScores(q * 70, seed++, 30);
    const u = rng(seed);
    const qs = range(q).map(() => ({ reference: gallery[Math.floor(u() * 70)], target: gallery[Math.floor(u() * 70)] }));
    const got = fashionIq({ categories: { toptee: { scores: { data: S, rows: q, cols: 70 }, gallery, queries: qs } }, ties: rule });
    const ranks = qs.map((x, i) => position((j) => S[i * 70 + j], range(70), gallery.indexOf(x.target), rule));
    close(got.categories.toptee.r10, pct(ranks, 10), `${rule} r10`);
    close(got.categories.toptee.r50, pct(ranks, 50), `${rule} r50`);
    close(got.overall, (pct(ranks, 10) + pct(ranks, 50)) / 2, `${rule} overall`);
  }
  throwsCode(() => fashionIq({ categories: { dress: { scores: new Float32Array(2), gallery: ['x', 'y'], queries: [{ reference: 'x', target: 'w' }] } } }), 'ERR_VLK_INVALID_ARG', /"w"/);
  throwsCode(() => fashionIq({ categories: {} }), 'ERR_VLK_EMPTY');
});

cir('GeneCIS hand-computed, brute force, per-template targets', () => {
  // t0 [0.5 0.5 0.1 0.2]: the target (column 0) ties column 1: stable 0, pessimistic 1
  // t1 [0.3 0.4 0.35 0.1]: two above -> 2; t2 [0.2 0.9 0.8 0.7]: three above -> 3
  const S = new Float32Array([0.5, 0.5, 0.1, 0.2, 0.3, 0.4, 0.35, 0.1, 0.2, 0.9, 0.8, 0.7]);
  const st = genecis({ scores: S, candidates: 4 });
  // stable [0 2 3]: R@1 1/3, R@2 1/3, R@3 2/3
  close(st.r1, 100 / 3, 'r1');
  close(st.r2, 100 / 3, 'r2');
  close(st.r3, 200 / 3, 'r3');
  assert.is(st.ties, 1);
  // pessimistic [1 2 3]: R@1 0, R@2 1/3
  const pe = genecis({ scores: { data: S, rows: 3, cols: 4 }, ties: 'pessimistic' });
  assert.is(pe.r1, 0);
  close(pe.r2, 100 / 3, 'pessimistic r2');
  let seed = 700;
  for (const rule of RULES) {
    for (const [t, c] of [[1, 2], [7, 15], [200, 15]]) {
      const M = tiedScores(t * c, seed++, 4);
      const u = rng(seed);
      const targets = Int32Array.from({ length: t }, () => Math.floor(u() * c));
      const got = genecis({ scores: { data: M, rows: t, cols: c }, target: targets, ties: rule });
      const ranks = range(t).map((i) => position((j) => M[i * c + j], range(c), targets[i], rule));
      for (const k of [1, 2, 3]) close((got as any)[`r${k}`], pct(ranks, k), `t=${t} ${rule} r${k}`);
    }
  }
  throwsCode(() => genecis({ scores: S, candidates: 4, target: 4 }), 'ERR_VLK_INVALID_ARG', /0\.\.3/);
  throwsCode(() => genecis({ scores: S, candidates: 4, target: [0, 1] }), 'ERR_VLK_SHAPE');
});

cir('GeneCIS from keyed embeddings: cosine scores of each candidate', () => {
  const g = gaussian(5);
  const d = 7;
  const ids = range(20, 1000);
  const emb = new Map<number, Float32Array>(ids.map((id) => [id, Float32Array.from({ length: d }, g)]));
  const u = rng(6);
  const templates = range(11).map(() => {
    const c = range(5).map(() => ids[Math.floor(u() * ids.length)]);
    return { condition: 'x', reference: ids[0], target: c[0], gallery: c.slice(1), candidates: c };
  });
  const q = Float32Array.from({ length: 11 * d }, g);
  const got = genecisFromEmbeddings({ queries: { data: q, rows: 11, cols: d }, embeddings: emb, templates });
  const cos = (a: ArrayLike<number>, ao: number, b: ArrayLike<number>) => {
    let ab = 0, aa = 0, bb = 0;
    for (let x = 0; x < d; x++) { ab += a[ao + x] * b[x]; aa += a[ao + x] ** 2; bb += b[x] ** 2; }
    return ab / Math.sqrt(aa * bb);
  };
  const ranks = templates.map((t, i) => position((j) => cos(q, i * d, emb.get(t.candidates[j])!), range(5), 0, 'stable'));
  for (const k of [1, 2, 3]) close((got as any)[`r${k}`], pct(ranks, k), `r${k}`);
  // { names, matrix } gives the same
  const matrix = new Float32Array(ids.length * d);
  ids.forEach((id, i) => matrix.set(emb.get(id)!, i * d));
  assert.equal(genecisFromEmbeddings({ queries: q, embeddings: { names: ids, matrix }, templates }).r1, got.r1);
  throwsCode(
    () => genecisFromEmbeddings({ queries: q, embeddings: emb, templates: [{ ...templates[0], candidates: [1, 2, 3, 4, 5] }, ...templates.slice(1)] }),
    'ERR_VLK_INVALID_ARG',
    /candidates\[0\]: 1 has no embedding/,
  );
  throwsCode(() => genecisFromEmbeddings({ queries: q.subarray(1), embeddings: emb, templates }), 'ERR_VLK_DIM_MISMATCH');
});
cir.run();

// ---------------------------------------------------------------------------------------------
const ranked = suite('metrics: CIRCO mAP@K, NDCG@K');

ranked('CIRCO hand-computed', () => {
  // query 0: list [4 9 1 7 3], G = {9, 7}: hits at ranks 2 and 4 -> AP = (1/2)(1/2 + 2/4) = 0.5 for
  // every K >= 5 (the list ends at 5). Query 1: list [2 5 6], |G| = 6: hit at rank 1 ->
  // AP@5 = 1/5, AP@10 = AP@25 = AP@50 = 1/6. mAP@5 = (0.5 + 0.2)/2 = 35, mAP@10 = (0.5 + 1/6)/2
  const r = circo({ ranked: [[4, 9, 1, 7, 3], new Int32Array([2, 5, 6])], groundTruth: [[9, 7], [2, 8, 9, 10, 11, 12]] });
  close(r.map.map5, 35, 'map5');
  close(r.map.map10, (100 * (0.5 + 1 / 6)) / 2, 'map10');
  close(r.map.map50, (100 * (0.5 + 1 / 6)) / 2, 'map50');
  assert.is(r.queries, 2);
  // K = 1: AP@1 = rel_1 / min(1, |G|): query 0 -> 0, query 1 -> 1 -> 50
  assert.equal(circo({ ranked: [[4, 9], [2]], groundTruth: { offsets: [0, 2, 3], ids: [9, 7, 2] }, ks: [1] }).map, { map1: 50 });
});

function bruteAp(S: Float64Array, n: number, q: number, gt: Set<number>, skip: number, k: number, rule: Rule): number {
  const order = range(n).filter((j) => j !== skip).sort((a, b) => {
    const d = S[q * n + b] - S[q * n + a];
    if (d !== 0) return d;
    const ga = gt.has(a) ? 1 : 0;
    const gb = gt.has(b) ? 1 : 0;
    if (rule === 'optimistic' && ga !== gb) return gb - ga;
    if (rule === 'pessimistic' && ga !== gb) return ga - gb;
    return a - b;
  });
  let hits = 0;
  let sum = 0;
  for (let i = 0; i < Math.min(k, order.length); i++) {
    if (gt.has(order[i])) {
      hits++;
      sum += hits / (i + 1);
    }
  }
  return sum / Math.min(k, gt.size);
}

ranked('CIRCO brute force from scores with an excluded reference', () => {
  let seed = 900;
  const u = rng(77);
  for (const [q, n] of [[1, 3], [7, 80], [20, 300]]) {
    for (const rule of RULES) {
      const S = tiedScores(q * n, seed++, 12);
      const exclude = Int32Array.from({ length: q }, (_, i) => (i % 3 === 0 ? -1 : Math.floor(u() * n)));
      const gts = range(q).map((i) => {
        const s = new Set<number>();
        const want = 1 + Math.floor(u() * Math.min(n - 1, 8));
        while (s.size < want) {
          const j = Math.floor(u() * n);
          if (j !== exclude[i]) s.add(j);
        }
        return [...s];
      });
      const got = circo({ scores: { data: S, rows: q, cols: n }, groundTruth: gts, exclude, ties: rule });
      for (const k of [5, 10, 25, 50]) {
        const want = range(q).reduce((s, i) => s + bruteAp(S, n, i, new Set(gts[i]), exclude[i], k, rule), 0) / q;
        close(got.map[`map${k}`], 100 * want, `q=${q} n=${n} ${rule} map${k}`);
      }
    }
  }
});

ranked('CIRCO errors', () => {
  throwsCode(() => circo({ ranked: [[1, 2, 1]], groundTruth: [[1]] }), 'ERR_VLK_INVALID_ARG', /twice/);
  throwsCode(() => circo({ ranked: [[1]], groundTruth: [[1], [2]] }), 'ERR_VLK_SHAPE');
  throwsCode(() => circo({ ranked: [[1]], groundTruth: [[]] }), 'ERR_VLK_EMPTY');
  throwsCode(() => circo({ scores: { data: new Float32Array(4), rows: 1, cols: 4 }, groundTruth: [[2]], exclude: [2] }), 'ERR_VLK_INVALID_ARG', /excluded/);
  throwsCode(() => circo({ scores: { data: new Float32Array(4), rows: 1, cols: 4 }, groundTruth: [[9]] }), 'ERR_VLK_INVALID_ARG', /0\.\.3/);
  throwsCode(() => circo({ ranked: [[1]], groundTruth: [[1]], ks: [0] }), 'ERR_VLK_INVALID_K');
});

ranked('NDCG hand-computed', () => {
  // ranking [2 0 1], grades [3 0 1]: linear DCG = 1/log2(2) + 3/log2(3) = 2.8927893, ideal
  // 3 + 1/log2(3) = 3.6309298, NDCG@3 = 0.7967076; exponential gains 1 and 7: (1 + 7/log2(3)) /
  // (7 + 1/log2(3)) = 5.4165083 / 7.6309298 = 0.7098097. @1: grade 1 of ideal 3 -> 1/3 (linear).
  const rel = { data: new Float64Array([3, 0, 1]), rows: 1, cols: 3 };
  close(ndcg({ ranking: [[2, 0, 1]], relevance: rel, k: 3 }).ndcg.ndcg3, 79.67075809905066, 'linear', 1e-12);
  close(ndcg({ ranking: [[2, 0, 1]], relevance: rel, k: [3], gain: 'exponential' }).ndcg.ndcg3, 70.98097413968655, 'exp', 1e-12);
  close(ndcg({ ranking: [[2, 0, 1]], relevance: rel, k: 1 }).ndcg.ndcg1, 100 / 3, '@1');
  // from scores [0.2 0.1 0.9] the order is [2 0 1]: the same
  close(ndcg({ scores: new Float32Array([0.2, 0.1, 0.9]), relevance: rel, k: 3 }).ndcg.ndcg3, 79.67075809905066, 'scores', 1e-6);
  // a query without relevant items counts 0 (as sklearn): mean of 100 and 0
  const two = ndcg({ ranking: [[0], [0]], relevance: { data: new Float64Array([1, 0, 0, 0]), rows: 2, cols: 2 }, k: 1 });
  assert.is(two.ndcg.ndcg1, 50);
  assert.is(two.noRelevant, 1);
  // tie rules: scores [0.5 0.5], grades [0 2]: stable ranks column 0 first -> DCG@1 0 -> 0;
  // optimistic puts the relevant one first -> 100; pessimistic -> 0
  const tie = { scores: new Float32Array([0.5, 0.5]), relevance: { data: new Float64Array([0, 2]), rows: 1, cols: 2 }, k: 1 };
  assert.is(ndcg(tie).ndcg.ndcg1, 0);
  assert.is(ndcg({ ...tie, ties: 'optimistic' }).ndcg.ndcg1, 100);
  assert.is(ndcg({ ...tie, ties: 'pessimistic' }).ndcg.ndcg1, 0);
  assert.is(ndcg(tie).ties, 1);
});

ranked('NDCG brute force from scores, every rule and gain', () => {
  let seed = 1300;
  for (const [q, n] of [[1, 1], [7, 13], [15, 200]]) {
    for (const rule of RULES) {
      for (const gain of ['linear', 'exponential'] as const) {
        const S = tiedScores(q * n, seed++, 5);
        const R = tiedScores(q * n, seed++, 4).map((x) => Math.round(x * 4));
        const ks = [1, 5, 10];
        const got = ndcg({ scores: { data: S, rows: q, cols: n }, relevance: { data: R, rows: q, cols: n }, k: ks, gain, ties: rule });
        const g = (r: number) => (gain === 'linear' ? r : 2 ** r - 1);
        for (const k of ks) {
          let sum = 0;
          for (let i = 0; i < q; i++) {
            const order = range(n).sort((a, b) => {
              const d = S[i * n + b] - S[i * n + a];
              if (d !== 0) return d;
              const ra = R[i * n + a];
              const rb = R[i * n + b];
              if (rule === 'optimistic' && ra !== rb) return rb - ra;
              if (rule === 'pessimistic' && ra !== rb) return ra - rb;
              return a - b;
            });
            const ideal = range(n).map((j) => R[i * n + j]).sort((a, b) => b - a);
            let dcg = 0;
            let idcg = 0;
            for (let p = 0; p < Math.min(k, n); p++) {
              dcg += g(R[i * n + order[p]]) / Math.log2(p + 2);
              idcg += g(ideal[p]) / Math.log2(p + 2);
            }
            sum += idcg === 0 ? 0 : dcg / idcg;
          }
          close(got.ndcg[`ndcg${k}`], (100 * sum) / q, `q=${q} n=${n} ${rule} ${gain} @${k}`);
        }
      }
    }
  }
  throwsCode(() => ndcg({ ranking: [[0]], relevance: { data: new Float64Array([-1]), rows: 1, cols: 1 } }), 'ERR_VLK_INVALID_ARG', />= 0/);
  throwsCode(() => ndcg({ ranking: [[3]], relevance: { data: new Float64Array([1]), rows: 1, cols: 1 } }), 'ERR_VLK_INVALID_ARG', /not a column/);
  throwsCode(() => ndcg({ ranking: [[0]], relevance: { data: new Float64Array([1]), rows: 1, cols: 1 }, gain: 'log' as any }), 'ERR_VLK_INVALID_ARG');
});
ranked.run();

// ---------------------------------------------------------------------------------------------
const choice = suite('metrics: ARO, SugarCrepe, HPIR');

choice('ARO hand-computed: first-max argmax, groups, macro', () => {
  // VG-R options [false, true]: [0.2 0.3] right, [0.5 0.5] tie -> argmax 0 -> WRONG, [0.4 0.1]
  // wrong, [0.1 0.9] right. Groups on, on, on, under: on 1/3, under 1/1 -> macro (33.33 + 100)/2;
  // accuracy over samples 2/4 = 50.
  const vg = { data: new Float32Array([0.2, 0.3, 0.5, 0.5, 0.4, 0.1, 0.1, 0.9]), rows: 4, cols: 2 };
  const r = aro({ set: 'vg-relation', scores: vg, groups: ['on', 'on', 'on', 'under'] });
  assert.is(r.accuracy, 50);
  close(r.macro!, (100 / 3 + 100) / 2, 'macro');
  close(r.groups!.on.accuracy, 100 / 3, 'on');
  assert.is(r.groups!.under.count, 1);
  assert.is(r.ties, 1);
  // minGroupSize 2 keeps only "on"; excludeGroups drops "under" the same way
  close(aro({ set: 'vg-relation', scores: vg, groups: ['on', 'on', 'on', 'under'], minGroupSize: 2 }).macro!, 100 / 3, 'min 2');
  assert.is(aro({ set: 'vg-relation', scores: vg, groups: ['on', 'on', 'on', 'under'], excludeGroups: ['under'] }).droppedGroups, 1);
  // VG-A keeps groups of >= 25 samples by default: none here
  throwsCode(() => aro({ set: 'vg-attribution', scores: vg, groups: ['a_b', 'a_b', 'a_b', 'c_d'] }), 'ERR_VLK_EMPTY', /25/);
  // Order: index 0 must be a first max: [0.5 0.5 0.1] tie -> argmax 0 -> RIGHT; [0.2 0.3 0.1]
  // wrong; [0.9 0.1 0.8] right -> 2/3
  const ord = aro({ set: 'coco-order', scores: { data: new Float32Array([0.5, 0.5, 0.1, 0.2, 0.3, 0.1, 0.9, 0.1, 0.8]), rows: 3, cols: 3 } });
  close(ord.accuracy, 200 / 3, 'order');
  assert.is(ord.ties, 1);
  assert.is(ord.macro, undefined);
});

choice('ARO brute force with numpy-style argmax', () => {
  const argmaxFirst = (row: number[]) => row.reduce((best, v, i) => (v > row[best] ? i : best), 0);
  let seed = 2000;
  for (const n of [1, 7, 513]) {
    const S = tiedScores(n * 2, seed++, 3);
    const u = rng(seed);
    const groups = range(n).map(() => `g${Math.floor(u() * 4)}`);
    const got = aro({ set: 'vg-relation', scores: { data: S, rows: n, cols: 2 }, groups });
    const ok = range(n).map((i) => (argmaxFirst([S[2 * i], S[2 * i + 1]]) === 1 ? 1 : 0));
    close(got.accuracy, (100 * ok.reduce((s: number, x) => s + x, 0)) / n, `n=${n} accuracy`);
    const names = [...new Set(groups)];
    const accs = names.map((g) => {
      const idx = range(n).filter((i) => groups[i] === g);
      return (100 * idx.reduce((s, i) => s + ok[i], 0)) / idx.length;
    });
    close(got.macro!, accs.reduce((s, x) => s + x, 0) / accs.length, `n=${n} macro`);
    const O = tiedScores(n * 5, seed++, 3);
    const gotO = aro({ set: 'flickr30k-order', scores: { data: O, rows: n, cols: 5 } });
    const okO = range(n).filter((i) => argmaxFirst(range(5).map((j) => O[i * 5 + j])) === 0).length;
    close(gotO.accuracy, (100 * okO) / n, `n=${n} order`);
  }
});

choice('SugarCrepe hand-computed: strict >, categories and families', () => {
  // replace-obj [0.5>0.4 yes, 0.4=0.4 no, 0.3<0.6 no] -> 1/3; replace-att 1/1; swap_obj [no, yes] 1/2
  // families: replace (33.33 + 100)/2, swap 50; mean (33.33 + 100 + 50)/3
  const r = sugarcrepe({
    categories: {
      'replace-obj': { positive: new Float32Array([0.5, 0.4, 0.3]), negative: new Float32Array([0.4, 0.4, 0.6]) },
      'replace-att': { positive: [0.2], negative: [0.1] },
      swap_obj: { positive: [0.1, 0.9], negative: [0.2, 0.8] },
    },
  });
  close(r.categories['replace-obj'].accuracy, 100 / 3, 'replace-obj');
  assert.is(r.categories['replace-obj'].ties, 1);
  close(r.families.replace, (100 / 3 + 100) / 2, 'replace');
  assert.is(r.families.swap, 50);
  close(r.mean, (100 / 3 + 100 + 50) / 3, 'mean');
  // brute force
  const u = rng(3);
  const pos = Array.from({ length: 513 }, () => Math.floor(u() * 3));
  const neg = Array.from({ length: 513 }, () => Math.floor(u() * 3));
  const want = (100 * pos.filter((p, i) => p > neg[i]).length) / 513;
  close(sugarcrepe({ categories: { 'add-att': { positive: pos, negative: neg } } }).families.add, want, 'brute');
  throwsCode(() => sugarcrepe({ categories: { 'flip-obj': { positive: [1], negative: [0] } } }), 'ERR_VLK_INVALID_ARG', /flip/);
  throwsCode(() => sugarcrepe({ categories: { 'add-obj': { positive: [1, 2], negative: [0] } } }), 'ERR_VLK_SHAPE');
  throwsCode(() => sugarcrepe({ categories: { 'add-obj': { positive: [NaN], negative: [0] } } }), 'ERR_VLK_NON_FINITE', /positive\[0\]/);
});

choice('HPIR hand-computed and brute force', () => {
  // accuracy aspect: (mean 0.2 vs 0.25, human b, conf 0.6) right; (0.5 vs mean 0.5, human a, conf 1)
  // a tie -> not preferred -> 0.6 / 1.6 = 37.5. aesthetic: (0.9 vs 0.1, human b, 0.8) wrong;
  // (0.2 vs 0.3, human b, 0.4) right -> 0.4 / 1.2 = 33.33
  const r = hpir({
    comparisons: [
      { a: [0.3, 0.1], b: 0.25, preferred: 'b', confidence: 0.6, aspect: 'accuracy' },
      { a: 0.5, b: new Float64Array([0.4, 0.6]), preferred: 'a', confidence: 1, aspect: 'accuracy' },
      { a: 0.9, b: 0.1, preferred: 'b', confidence: 0.8, aspect: 'aesthetic' },
      { a: 0.2, b: 0.3, preferred: 'b', confidence: 0.4, aspect: 'aesthetic' },
    ],
  });
  close(r.aspects.accuracy.accuracy, 37.5, 'accuracy');
  assert.is(r.aspects.accuracy.ties, 1);
  close(r.aspects.aesthetic.accuracy, 100 / 3, 'aesthetic');
  const u = rng(9);
  const comps = range(101).map(() => ({
    a: range(1 + Math.floor(u() * 4)).map(() => Math.floor(u() * 3)),
    b: range(1 + Math.floor(u() * 4)).map(() => Math.floor(u() * 3)),
    preferred: (u() < 0.5 ? 'a' : 'b') as 'a' | 'b',
    confidence: Math.round(u() * 10) / 10,
  }));
  let num = 0;
  let den = 0;
  for (const c of comps) {
    const ma = c.a.reduce((s, x) => s + x, 0) / c.a.length;
    const mb = c.b.reduce((s, x) => s + x, 0) / c.b.length;
    if ((c.preferred === 'a' && ma > mb) || (c.preferred === 'b' && mb > ma)) num += c.confidence;
    den += c.confidence;
  }
  close(hpir({ comparisons: comps }).aspects.all.accuracy, (100 * num) / den, 'brute');
  throwsCode(() => hpir({ comparisons: [{ a: 1, b: 0, preferred: 'c' as any, confidence: 1 }] }), 'ERR_VLK_INVALID_ARG', /preferred/);
  throwsCode(() => hpir({ comparisons: [{ a: 1, b: 0, preferred: 'a', confidence: 1.5 }] }), 'ERR_VLK_INVALID_ARG', /1\.5/);
  throwsCode(() => hpir({ comparisons: [{ a: [], b: 0, preferred: 'a', confidence: 1 }] }), 'ERR_VLK_EMPTY');
  throwsCode(() => hpir({ comparisons: [{ a: 1, b: 0, preferred: 'a', confidence: 0 }] }), 'ERR_VLK_INVALID_ARG', /confidence 0/);
});
choice.run();

// ---------------------------------------------------------------------------------------------
const real = suite('metrics: real embeddings and annotation files');

function cosineScores(a: Float32Array, ra: number, b: Float32Array, rb: number, d: number, rowsA?: number[]): Float64Array {
  const rows = rowsA ?? range(ra);
  const out = new Float64Array(rows.length * rb);
  rows.forEach((i, r) => {
    for (let j = 0; j < rb; j++) {
      let s = 0;
      for (let x = 0; x < d; x++) s += a[i * d + x] * b[j * d + x];
      out[r * rb + j] = s;
    }
  });
  return out;
}

const f30k = join(dataRoot, 'flickr30k-clip-vitl14-1k');
real('Flickr30K CLIP ViT-L/14 (1000 x 1000) matches the README within 0.1', () => {
  if (!existsSync(f30k)) return console.log(`  skipped: ${f30k} is absent`);
  const img = readNpy(join(f30k, 'flickr30k_image_embeddings.npy'));
  const txt = readNpy(join(f30k, 'flickr30k_text_embeddings.npy'));
  const S = cosineScores(img.data as Float32Array, 1000, txt.data as Float32Array, 1000, 768);
  const r = flickr({ scores: { data: S, rows: 1000, cols: 1000 }, perImage: 1 });
  // README: t2i 71.7 / 92.0 / 95.4, i2t 74.7 / 94.0 / 97.0, rSum 524.8
  const want = { t2i: [71.7, 92.0, 95.4], i2t: [74.7, 94.0, 97.0] };
  for (const d of ['i2t', 't2i'] as const) {
    [r[d].r1, r[d].r5, r[d].r10].forEach((v, i) => assert.ok(Math.abs(v - want[d][i]) <= 0.1 + 1e-9, `${d} R@${[1, 5, 10][i]} ${v} vs ${want[d][i]}`));
  }
  assert.ok(Math.abs(r.rsum - 524.8) <= 0.1 + 1e-9, `rsum ${r.rsum}`);
});

const f8k = join(dataRoot, 'flickr8k-clip-vitb32-100x5');
real('Flickr8k CLIP ViT-B/32 (100 images x 500 captions) matches the README within 0.1', () => {
  if (!existsSync(f8k)) return console.log(`  skipped: ${f8k} is absent`);
  const img = readNpy(join(f8k, 'image_embeddings.npy'));
  const txt = readNpy(join(f8k, 'text_embeddings.npy'));
  // image rows repeat 5 times: the gallery is rows 0, 5, 10, ...
  const S = cosineScores(img.data as Float32Array, 500, txt.data as Float32Array, 500, 512, range(100).map((i) => 5 * i));
  const r = flickr({ scores: { data: S, rows: 100, cols: 500 } });
  // README: t2i 83.2 / 99.0 / 99.8, i2t 93.0 / 100 / 100, rSum 575.0
  const want = { t2i: [83.2, 99.0, 99.8], i2t: [93.0, 100, 100] };
  for (const d of ['i2t', 't2i'] as const) {
    [r[d].r1, r[d].r5, r[d].r10].forEach((v, i) => assert.ok(Math.abs(v - want[d][i]) <= 0.1 + 1e-9, `${d} R@${[1, 5, 10][i]} ${v} vs ${want[d][i]}`));
  }
  assert.ok(Math.abs(r.rsum - 575.0) <= 0.1 + 1e-9, `rsum ${r.rsum}`);
});

const cirrDir = join(dataRoot, 'cirr-annotations');
real('loadCirr: val and test1 counts, fields, and a full metric run', () => {
  if (!existsSync(cirrDir)) return console.log(`  skipped: ${cirrDir} is absent`);
  const val = loadCirr(cirrDir, 'val');
  assert.is(val.queries.length, 4181);
  assert.is(val.gallery.length, 2297);
  const q0 = val.queries[0];
  assert.equal([q0.pairId, q0.reference, q0.target, q0.caption], [12060, 'dev-244-0-img0', 'dev-1028-1-img1', 'show three bottles of soft drink']);
  assert.is(q0.members.length, 6);
  assert.is(q0.targetSoft['dev-1028-1-img1'], 1);
  assert.is(val.images['dev-244-0-img0'], './dev/dev-244-0-img0.png');
  const test1 = loadCirr(cirrDir, 'test1');
  assert.is(test1.queries.length, 4148);
  assert.is(test1.gallery.length, 2315);
  assert.is(test1.queries[0].target, null);
  // Scores that put every target first (and the reference above it, which the protocol removes)
  // give 100 everywhere; the loader's names resolve against its gallery.
  const index = new Map(val.gallery.map((n, i) => [n, i]));
  const S = new Float32Array(val.queries.length * val.gallery.length);
  val.queries.forEach((q, i) => {
    S[i * val.gallery.length + index.get(q.target!)!] = 1;
    S[i * val.gallery.length + index.get(q.reference)!] = 2;
  });
  const r = cirr({ scores: { data: S, rows: val.queries.length, cols: val.gallery.length }, gallery: val.gallery, queries: val.queries });
  assert.equal([r.r1, r.subset.r1, r.avg, r.queries], [100, 100, 100, 4181]);
  throwsCode(() => cirr({ scores: new Float32Array(test1.queries.length * test1.gallery.length), gallery: test1.gallery, queries: test1.queries }), 'ERR_VLK_INVALID_ARG', /test1/);
  throwsCode(() => loadCirr(cirrDir, 'train'), 'ERR_VLK_IO', /cap\.rc2\.train\.json/);
  throwsCode(() => loadCirr(cirrDir, 'dev' as any), 'ERR_VLK_INVALID_ARG');
});

const fiqDir = join(dataRoot, 'fashioniq-annotations');
real('loadFashionIq: counts of every category and split, CLIP4Cir caption join', () => {
  if (!existsSync(fiqDir)) return console.log(`  skipped: ${fiqDir} is absent`);
  const counts = {
    dress: [5985, 2017, 2024, 11452, 3817, 3818],
    shirt: [5988, 2038, 2038, 19036, 6346, 6346],
    toptee: [6027, 1961, 2056, 16121, 5373, 5374],
  };
  for (const [cat, c] of Object.entries(counts) as ['dress' | 'shirt' | 'toptee', number[]][]) {
    (['train', 'val', 'test'] as const).forEach((split, i) => {
      const s = loadFashionIq(fiqDir, cat, split);
      assert.is(s.queries.length, c[i], `${cat} ${split} triplets`);
      assert.is(s.gallery.length, c[3 + i], `${cat} ${split} images`);
    });
  }
  const dress = loadFashionIq(fiqDir, 'dress', 'val');
  const q = dress.queries.find((x) => x.target === 'B0084Y8XIU' && x.reference === 'B005X4PL1G')!;
  assert.is(q.text, 'Is shiny and silver with shorter sleeves and fit and flare');
  assert.is(loadFashionIq(fiqDir, 'dress', 'test').queries[0].target, null);
  // " yello and more flowing" -> "Yello and more flowing" (Python strip('.?, ') + capitalize)
  assert.is(loadFashionIq(fiqDir, 'dress', 'test').queries[0].text, 'Yello and more flowing and short and black');
  // targets first everywhere -> 100
  const index = new Map(dress.gallery.map((n, i) => [n, i]));
  const S = new Float32Array(dress.queries.length * dress.gallery.length);
  dress.queries.forEach((x, i) => (S[i * dress.gallery.length + index.get(x.target!)!] = 1));
  assert.is(fashionIq({ categories: { dress: { scores: S, ...dress } } }).overall, 100);
  throwsCode(() => loadFashionIq(fiqDir, 'shoes' as any, 'val'), 'ERR_VLK_INVALID_ARG', /shoes/);
});

const genDir = join(dataRoot, 'genecis-annotations');
real('loadGenecis: 1960 templates x 15 candidates, the duplicated target', () => {
  if (!existsSync(genDir)) return console.log(`  skipped: ${genDir} is absent`);
  const change = loadGenecis(join(genDir, 'change_object.json'));
  const focus = loadGenecis(join(genDir, 'focus_object.json'));
  assert.is(change.length, 1960);
  assert.is(focus.length, 1960);
  assert.equal(change[0].reference, 189213);
  assert.is(change[0].target, 153527);
  assert.is(change[0].condition, 'wall');
  assert.ok(change.every((t) => t.candidates.length === 15 && t.candidates[0] === t.target));
  const dup = change.filter((t) => t.gallery.includes(t.target));
  assert.is(dup.length, 1);
  // one embedding per id: the duplicated target ties itself; stable ties count it found at R@1
  const ids = new Set<number>();
  for (const t of [...change, ...focus]) for (const c of t.candidates) ids.add(c as number);
  const g = gaussian(42);
  const emb = new Map([...ids].map((id) => [id, Float32Array.from({ length: 8 }, g)]));
  const queries = new Float32Array(1 * 8);
  queries.set(emb.get(dup[0].target as number)!);
  const r = genecisFromEmbeddings({ queries, embeddings: emb, templates: dup });
  assert.is(r.r1, 100);
  assert.is(r.ties, 1);
  assert.is(genecisFromEmbeddings({ queries, embeddings: emb, templates: dup, ties: 'pessimistic' }).r1, 0);
  throwsCode(() => loadGenecis(join(genDir, 'missing.json')), 'ERR_VLK_IO');
  throwsCode(() => loadGenecis(join(genDir, 'README.md')), 'ERR_VLK_CORRUPT');
});
real.run();
