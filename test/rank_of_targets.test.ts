// Streaming rank of targets (test/rank_of_targets.test.ts): rankOfTargets against a float64 brute
// force written here (full score matrix, explicit counting) at awkward sizes, every metric and tie
// rule, with planted exact ties (duplicated gallery rows, duplicated ground-truth rows), several
// targets per query, exclusions and the ties count; thread counts, sync vs async, abort, typed
// errors; crossModalRanks against two rankOfTargets calls and the brute force; and, on the real
// Flickr30K / Flickr8k embeddings in ../shared/data, Recall@1/5/10 against their READMEs.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { binding, crossModalRanks, crossModalRanksSync, rankOfTargets, rankOfTargetsSync, VlkError } from './helpers/lib';
import { readNpy } from './helpers/npy';
import { dataRoot } from './helpers/paths';
import { gaussianMatrix, rng } from './helpers/random';
import { expectCode as code } from './helpers/expect';

type Metric = 'ip' | 'cosine' | 'l2';
type Ties = 'stable' | 'optimistic' | 'pessimistic';
const METRICS: Metric[] = ['ip', 'cosine', 'l2'];
const TIES: Ties[] = ['stable', 'optimistic', 'pessimistic'];

// The binding's own errors (no lib wrapper): an Error whose code is the typed code.
function nativeCode(fn: () => unknown, want: string, match?: RegExp): void {
  try {
    fn();
  } catch (e) {
    assert.is((e as { code?: string }).code, want, (e as Error).message);
    if (match) assert.match((e as Error).message, match);
    return;
  }
  assert.unreachable(`expected ${want}`);
}

// Float64 scores of every (query, item) pair, larger = better (l2: minus the squared distance),
// and a per-pair bound on the fp32 kernel's rounding error (for near-ties that are not exact).
function scoreMatrix(q: Float32Array, g: Float32Array, d: number, metric: Metric): { s: Float64Array; tol: Float64Array } {
  const nq = q.length / d;
  const ng = g.length / d;
  const s = new Float64Array(nq * ng);
  const tol = new Float64Array(nq * ng);
  const norm = (m: Float32Array, r: number) => {
    let t = 0;
    for (let k = 0; k < d; k++) t += m[r * d + k] * m[r * d + k];
    return Math.sqrt(t);
  };
  const qn = Array.from({ length: nq }, (_, i) => norm(q, i));
  const gn = Array.from({ length: ng }, (_, j) => norm(g, j));
  for (let i = 0; i < nq; i++) {
    for (let j = 0; j < ng; j++) {
      let dot = 0;
      for (let k = 0; k < d; k++) dot += q[i * d + k] * g[j * d + k];
      let v = dot;
      let scale = qn[i] * gn[j];
      if (metric === 'cosine') {
        v = qn[i] > 0 && gn[j] > 0 ? dot / (qn[i] * gn[j]) : 0;
        scale = 1;
      } else if (metric === 'l2') {
        v = -(qn[i] * qn[i] + gn[j] * gn[j] - 2 * dot);
        scale = 2 * qn[i] * gn[j] + gn[j] * gn[j];
      }
      s[i * ng + j] = v;
      tol[i * ng + j] = 4 * (d + 2) * 2 ** -24 * scale;
    }
  }
  return { s, tol };
}

interface Csr {
  offsets: number[];
  ids: number[];
}

interface Expected {
  lo: number[]; // per GT entry: rank if every near-tie loses
  hi: number[]; // ... if every near-tie wins
  bestLo: number[];
  bestHi: number[];
  ties: number; // queries whose best rank differs between optimistic and pessimistic (exact ties)
  exact: number; // GT entries with no near-tie at all
}

// Brute force: counts every item against every target, exact float64 ties by the rule, excluded
// rows and the target itself skipped.
function expected(sc: { s: Float64Array; tol: Float64Array }, n: number, gt: Csr, ex: Csr | undefined, ties: Ties): Expected {
  const q = gt.offsets.length - 1;
  const out: Expected = { lo: [], hi: [], bestLo: [], bestHi: [], ties: 0, exact: 0 };
  for (let i = 0; i < q; i++) {
    const excluded = new Set(ex ? ex.ids.slice(ex.offsets[i], ex.offsets[i + 1]) : []);
    let bl = Infinity;
    let bh = Infinity;
    let bo = Infinity;
    let bp = Infinity;
    for (let e = gt.offsets[i]; e < gt.offsets[i + 1]; e++) {
      const g = gt.ids[e];
      const t = sc.s[i * n + g];
      let gtCount = 0;
      let eqb = 0;
      let eqa = 0;
      let near = 0;
      for (let j = 0; j < n; j++) {
        if (j === g || excluded.has(j)) continue;
        const v = sc.s[i * n + j];
        if (v === t) {
          if (j < g) eqb++;
          else eqa++;
        } else if (Math.abs(v - t) <= sc.tol[i * n + j] + sc.tol[i * n + g]) {
          near++;
        } else if (v > t) {
          gtCount++;
        }
      }
      const r = ties === 'optimistic' ? gtCount : ties === 'pessimistic' ? gtCount + eqb + eqa : gtCount + eqb;
      out.lo.push(r);
      out.hi.push(r + near);
      if (near === 0) out.exact++;
      bl = Math.min(bl, r);
      bh = Math.min(bh, r + near);
      bo = Math.min(bo, gtCount);
      bp = Math.min(bp, gtCount + eqb + eqa);
    }
    out.bestLo.push(bl === Infinity ? -1 : bl);
    out.bestHi.push(bh === Infinity ? -1 : bh);
    if (bo !== bp) out.ties++;
  }
  return out;
}

function checkRanks(got: { ranks: Int32Array; best: Int32Array; ties: number }, want: Expected, label: string): void {
  assert.is(got.ranks.length, want.lo.length, `${label}: ranks length`);
  for (let e = 0; e < want.lo.length; e++) {
    if (got.ranks[e] < want.lo[e] || got.ranks[e] > want.hi[e]) {
      assert.unreachable(`${label}: entry ${e}: rank ${got.ranks[e]}, expected ${want.lo[e]}..${want.hi[e]}`);
    }
  }
  for (let i = 0; i < want.bestLo.length; i++) {
    if (got.best[i] < want.bestLo[i] || got.best[i] > want.bestHi[i]) {
      assert.unreachable(`${label}: query ${i}: best ${got.best[i]}, expected ${want.bestLo[i]}..${want.bestHi[i]}`);
    }
  }
  assert.is(got.ties, want.ties, `${label}: ties`);
}

// A case: gallery with planted duplicate rows (some of them ground-truth rows), 0-3 targets per
// query (some queries none), optional exclusions (never a target of the same query).
function makeCase(nq: number, n: number, d: number, seed: number, withExclude: boolean) {
  const u = rng(seed);
  const q = gaussianMatrix(nq, d, seed + 1);
  const g = gaussianMatrix(n, d, seed + 2);
  const gt: Csr = { offsets: [0], ids: [] };
  for (let i = 0; i < nq; i++) {
    const count = n === 1 ? (i % 4 === 3 ? 0 : 1) : Math.floor(u() * 4);
    const picked = new Set<number>();
    for (let k = 0; k < count; k++) picked.add(Math.floor(u() * n));
    gt.ids.push(...picked);
    gt.offsets.push(gt.ids.length);
  }
  // Duplicates: ground-truth rows copied elsewhere (exact ties with the target), and random pairs.
  if (n > 1) {
    for (let k = 0; k < Math.max(1, Math.floor(n / 10)); k++) {
      const src = k % 2 === 0 && gt.ids.length > 0 ? gt.ids[Math.floor(u() * gt.ids.length)] : Math.floor(u() * n);
      const dst = Math.floor(u() * n);
      if (dst !== src && !gt.ids.includes(dst)) g.copyWithin(dst * d, src * d, src * d + d);
    }
  }
  let ex: Csr | undefined;
  if (withExclude && n > 1) {
    ex = { offsets: [0], ids: [] };
    for (let i = 0; i < nq; i++) {
      const own = new Set(gt.ids.slice(gt.offsets[i], gt.offsets[i + 1]));
      for (let k = 0; k < Math.floor(u() * 4); k++) {
        const x = Math.floor(u() * n);
        if (!own.has(x)) ex.ids.push(x, x); // duplicates are allowed
      }
      ex.offsets.push(ex.ids.length);
    }
  }
  return { q, g, gt, ex };
}

const Rank = suite('rankOfTargets');

Rank('matches the float64 brute force at awkward sizes, every metric and tie rule', () => {
  let entries = 0;
  let exact = 0;
  let tied = 0;
  for (const nq of [1, 7, 513]) {
    for (const n of [1, 7, 1000]) {
      for (const d of [3, 65]) {
        const c = makeCase(nq, n, d, nq * 7919 + n * 31 + d, (nq + n) % 2 === 0);
        for (const metric of METRICS) {
          const sc = scoreMatrix(c.q, c.g, d, metric);
          for (const ties of TIES) {
            const got = rankOfTargetsSync(c.q, c.g, c.gt, { dim: d, metric, ties, exclude: c.ex });
            const want = expected(sc, n, c.gt, c.ex, ties);
            checkRanks(got, want, `Q=${nq} N=${n} D=${d} ${metric} ${ties}${c.ex ? ' exclude' : ''}`);
            entries += want.lo.length;
            exact += want.exact;
            tied += want.ties;
          }
        }
      }
    }
  }
  // The tolerance window must stay the exception, and planted ties must actually occur.
  assert.ok(exact > 0.9 * entries, `${exact} of ${entries} entries free of near-ties`);
  assert.ok(tied > 50, `${tied} tied queries`);
});

Rank('planted exact ties: a duplicated target and duplicated rows give each rule its exact rank', () => {
  const d = 33;
  const n = 700;
  for (const metric of METRICS) {
    const q = gaussianMatrix(5, d, 11);
    const g = gaussianMatrix(n, d, 12);
    // Target 400 duplicated at 10 (before it) and 650 (after it); target 3 duplicated at 690.
    g.copyWithin(10 * d, 400 * d, 401 * d);
    g.copyWithin(650 * d, 400 * d, 401 * d);
    g.copyWithin(690 * d, 3 * d, 4 * d);
    const sc = scoreMatrix(q, g, d, metric);
    const gt = { offsets: [0, 1, 2, 3, 5, 5], ids: [400, 3, 650, 400, 10] };
    for (const ties of TIES) {
      const got = rankOfTargetsSync(q, g, gt, { dim: d, metric, ties });
      const want = expected(sc, n, gt, undefined, ties);
      assert.equal(want.lo, want.hi, 'no near-ties besides the planted ones');
      assert.equal(Array.from(got.ranks), want.lo, `${metric} ${ties}`);
      assert.equal(Array.from(got.best), want.bestLo, `${metric} ${ties}: best`);
      assert.is(got.ties, 4, `${metric} ${ties}: queries 0-3 have a tie at their best target`);
      assert.is(got.best[4], -1);
    }
    // The stable rank of 400 is one above that of its earlier copy 10 and one below 650's.
    const st = rankOfTargetsSync(q.subarray(0, d), g, { offsets: [0, 3], ids: [10, 400, 650] }, { dim: d, metric });
    assert.is(st.ranks[1], st.ranks[0] + 1);
    assert.is(st.ranks[2], st.ranks[1] + 1);
    const pe = rankOfTargetsSync(q.subarray(0, d), g, { offsets: [0, 3], ids: [10, 400, 650] }, { dim: d, metric, ties: 'pessimistic' });
    assert.equal(Array.from(pe.ranks), [st.ranks[2], st.ranks[2], st.ranks[2]]);
  }
});

Rank('exclusions: an excluded item never counts; excluding a target is an error', () => {
  const d = 16;
  const q = gaussianMatrix(3, d, 21);
  const g = gaussianMatrix(50, d, 22);
  for (const metric of METRICS) {
    const full = rankOfTargetsSync(q, g, [5, 6, 7], { dim: d, metric });
    const sc = scoreMatrix(q, g, d, metric);
    // Exclude every item that beats the target: rank 0.
    const beat = [5, 6, 7].map((t, i) => Array.from({ length: 50 }, (_, j) => j).filter((j) => sc.s[i * 50 + j] > sc.s[i * 50 + t]));
    const ex = { offsets: [0], ids: [] as number[] };
    for (const b of beat) {
      ex.ids.push(...b);
      ex.offsets.push(ex.ids.length);
    }
    const r = rankOfTargetsSync(q, g, [5, 6, 7], { dim: d, metric, exclude: ex });
    assert.equal(Array.from(r.best), [0, 0, 0]);
    assert.equal(Array.from(full.best), beat.map((b) => b.length));
    // One id per query, -1 = none: only query 1 loses one competitor (if 0 beats its target).
    const one = rankOfTargetsSync(q, g, [5, 6, 7], { dim: d, metric, exclude: [-1, 0, -1] });
    assert.is(one.best[0], full.best[0]);
    assert.is(one.best[1], full.best[1] - (sc.s[50] > sc.s[50 + 6] ? 1 : 0));
  }
  code(() => rankOfTargetsSync(q, g, [5, 6, 7], { dim: d, exclude: [-1, 6, -1] }), 'ERR_VLK_INVALID_ARG', /query 1 excludes gallery row 6/);
});

Rank('threads 1 and 2 agree; sync equals async; GT forms agree', async () => {
  const c = makeCase(300, 3000, 40, 5, true);
  for (const metric of METRICS) {
    const a = rankOfTargetsSync(c.q, c.g, c.gt, { dim: 40, metric, exclude: c.ex, threads: 1 });
    const b = rankOfTargetsSync(c.q, c.g, c.gt, { dim: 40, metric, exclude: c.ex, threads: 2 });
    const p = await rankOfTargets(c.q, c.g, c.gt, { dim: 40, metric, exclude: c.ex, threads: 2 });
    assert.equal(a, b);
    assert.equal(a, p);
  }
  const single = Int32Array.from({ length: 300 }, (_, i) => (i * 7) % 3000);
  const viaArray = rankOfTargetsSync({ data: c.q, rows: 300, cols: 40 }, { data: c.g, dims: [3000, 40] }, single);
  const viaCsr = rankOfTargetsSync(c.q, c.g, { offsets: Int32Array.from({ length: 301 }, (_, i) => i), ids: single }, { dim: 40 });
  assert.equal(viaArray, viaCsr);
  assert.equal(Array.from(viaArray.ranks), Array.from(viaArray.best));
});

Rank('abort: an aborted signal rejects at once; an abort mid-run rejects with AbortError', async () => {
  const q = gaussianMatrix(2000, 256, 1);
  const g = gaussianMatrix(20000, 256, 2);
  const gt = Int32Array.from({ length: 2000 }, (_, i) => i);
  const ac = new AbortController();
  ac.abort();
  const early = await rankOfTargets(q, g, gt, { dim: 256, signal: ac.signal }).catch((e) => e);
  assert.is((early as Error).name, 'AbortError');
  const ac2 = new AbortController();
  const t0 = Date.now();
  const run = rankOfTargets(q, g, gt, { dim: 256, signal: ac2.signal }).catch((e) => e);
  setTimeout(() => ac2.abort(), 10);
  const late = await run;
  assert.is((late as Error).name, 'AbortError');
  assert.ok(Date.now() - t0 < 2000, 'stopped promptly');
  const ac3 = new AbortController();
  const cross = crossModalRanks(g.subarray(0, 4000 * 256), g, { dim: 256, signal: ac3.signal }).catch((e) => e);
  setTimeout(() => ac3.abort(), 10);
  assert.is(((await cross) as Error).name, 'AbortError');
});

Rank('typed errors name the argument', async () => {
  const d = 4;
  const q = gaussianMatrix(3, d, 1);
  const g = gaussianMatrix(10, d, 2);
  const bad = q.slice();
  bad[5] = NaN;
  code(() => rankOfTargetsSync(bad, g, [0, 1, 2], { dim: d }), 'ERR_VLK_NON_FINITE', /queries: row 1, column 1/);
  const inf = g.slice();
  inf[39] = Infinity;
  code(() => rankOfTargetsSync(q, inf, [0, 1, 2], { dim: d }), 'ERR_VLK_NON_FINITE', /gallery: row 9, column 3/);
  const huge = g.slice();
  huge[0] = 3e38;
  code(() => rankOfTargetsSync(q, huge, [0, 1, 2], { dim: d }), 'ERR_VLK_NON_FINITE', /overflow/);
  code(() => rankOfTargetsSync(q, g, [0, 10, 2], { dim: d }), 'ERR_VLK_INVALID_ARG', /groundTruth\[1\]/);
  code(() => rankOfTargetsSync(q, g, [0, 1], { dim: d }), 'ERR_VLK_SHAPE', /groundTruth: length 2/);
  code(() => rankOfTargetsSync(q, g, { offsets: [0, 2, 1, 3], ids: [0, 1, 2] }, { dim: d }), 'ERR_VLK_INVALID_ARG', /offsets\[2\]/);
  code(() => rankOfTargetsSync(q, g, { offsets: [0, 1, 2, 3], ids: [0, 1] }, { dim: d }), 'ERR_VLK_SHAPE', /ids: length 2/);
  code(() => rankOfTargetsSync(q, g, [0, 1, 2], { dim: d, exclude: [0, 99, -1] }), 'ERR_VLK_INVALID_ARG', /exclude\[1\]/);
  code(() => rankOfTargetsSync(q, g, [0, 1, 2], { dim: d, ties: 'random' as never }), 'ERR_VLK_INVALID_ARG', /options.ties/);
  code(() => rankOfTargetsSync(q, g, [0, 1, 2], { dim: d, metric: 'dot' as never }), 'ERR_VLK_INVALID_ARG', /options.metric/);
  code(() => rankOfTargetsSync(q, g, [0, 1, 2], { dim: 3 }), 'ERR_VLK_DIM_MISMATCH', /not a multiple of dim 3/);
  code(() => rankOfTargetsSync({ data: q, rows: 3, cols: 4 }, { data: g.subarray(0, 30), rows: 10, cols: 3 }, [0, 1, 2]), 'ERR_VLK_DIM_MISMATCH');
  code(() => rankOfTargetsSync(new Float32Array(0), g, [], { dim: d }), 'ERR_VLK_EMPTY', /queries/);
  code(() => rankOfTargetsSync(q, g, new Float64Array(3) as never, { dim: d }), 'ERR_VLK_TYPE', /groundTruth/);
  code(() => rankOfTargetsSync(q.subarray(0, 4), g, [1.5], { dim: d }), 'ERR_VLK_INVALID_ARG', /groundTruth\[0\]/);
  const rejected = await rankOfTargets(bad, g, [0, 1, 2], { dim: d }).catch((e) => e);
  assert.instance(rejected, VlkError);
  assert.is((rejected as VlkError).code, 'ERR_VLK_NON_FINITE');
  // The native layer checks again what lib already checked.
  const spec = { q: 3, n: 10, d, queries: q, gallery: g, metric: 'ip', ties: 'stable' };
  const native = (extra: Record<string, unknown>) => () => binding.rankOfTargetsSync({ ...spec, ...extra });
  const off = Int32Array.from([0, 1, 2, 3]);
  nativeCode(native({ gtOffsets: off, gtIds: Int32Array.from([0, 10, 1]) }), 'ERR_VLK_INVALID_ARG', /gallery row in 0..9/);
  nativeCode(native({ gtOffsets: Int32Array.from([0, 2, 1, 3]), gtIds: Int32Array.from([0, 1, 2]) }), 'ERR_VLK_INVALID_ARG', /below/);
  nativeCode(native({ gtOffsets: off, gtIds: Int32Array.from([0, 1]) }), 'ERR_VLK_SHAPE');
  nativeCode(native({ gtOffsets: off, gtIds: Int32Array.from([0, 1, 2]), ties: 'x' }), 'ERR_VLK_INVALID_ARG');
  nativeCode(native({ gtOffsets: off, gtIds: Int32Array.from([0, 1, 2]), exOffsets: off, exIds: Int32Array.from([1, 1, 1]) }), 'ERR_VLK_INVALID_ARG', /query 1 excludes/);
  nativeCode(native({ gtOffsets: off, gtIds: Int32Array.from([0, 1, 2]), queries: new Float32Array(11) }), 'ERR_VLK_SHAPE');
});

const Cross = suite('crossModalRanks');

Cross('equals two rankOfTargets calls and the brute force (planted ties, every metric and rule)', async () => {
  for (const [n, per, d] of [
    [1, 1, 3],
    [7, 5, 65],
    [130, 3, 17],
    [600, 5, 8],
  ]) {
    const images = gaussianMatrix(n, d, n + per);
    const captions = gaussianMatrix(n * per, d, n * per + 1);
    const u = rng(n);
    if (n > 1) {
      // Exact ties both ways: duplicated images, and captions duplicated across images.
      for (let k = 0; k < Math.max(1, n / 20); k++) {
        const a = Math.floor(u() * n);
        const b = Math.floor(u() * n);
        images.copyWithin(a * d, b * d, b * d + d);
        const c = Math.floor(u() * n * per);
        const e = Math.floor(u() * n * per);
        captions.copyWithin(c * d, e * d, e * d + d);
      }
    }
    const i2tGt = { offsets: Array.from({ length: n + 1 }, (_, i) => i * per), ids: Array.from({ length: n * per }, (_, c) => c) };
    const t2iGt = Array.from({ length: n * per }, (_, c) => Math.floor(c / per));
    for (const metric of METRICS) {
      for (const ties of TIES) {
        const label = `N=${n} per=${per} D=${d} ${metric} ${ties}`;
        const got = crossModalRanksSync(images, captions, { perImage: per, dim: d, metric, ties, threads: 2 });
        const a = rankOfTargetsSync(images, captions, i2tGt, { dim: d, metric, ties });
        const b = rankOfTargetsSync(captions, images, t2iGt, { dim: d, metric, ties });
        assert.equal(Array.from(got.i2t), Array.from(a.best), `${label}: i2t`);
        assert.equal(Array.from(got.t2i), Array.from(b.best), `${label}: t2i`);
        assert.equal(got.ties, { i2t: a.ties, t2i: b.ties }, `${label}: ties`);
        const wantI = expected(scoreMatrix(images, captions, d, metric), n * per, i2tGt, undefined, ties);
        checkRanks({ ranks: a.ranks, best: got.i2t, ties: got.ties.i2t }, wantI, `${label}: i2t brute force`);
        const wantT = expected(scoreMatrix(captions, images, d, metric), n, { offsets: Array.from({ length: n * per + 1 }, (_, i) => i), ids: t2iGt }, undefined, ties);
        checkRanks({ ranks: got.t2i, best: got.t2i, ties: got.ties.t2i }, wantT, `${label}: t2i brute force`);
      }
    }
    const one = crossModalRanksSync(images, captions, { perImage: per, dim: d, threads: 1 });
    const asy = await crossModalRanks(images, captions, { perImage: per, dim: d, threads: 2 });
    assert.equal(one, asy);
  }
});

Cross('typed errors', () => {
  const images = gaussianMatrix(4, 8, 1);
  code(() => crossModalRanksSync(images, gaussianMatrix(19, 8, 2), { dim: 8 }), 'ERR_VLK_SHAPE', /images x perImage = 4 x 5 = 20/);
  code(() => crossModalRanksSync(images, gaussianMatrix(8, 8, 2), { dim: 8, perImage: 0 }), 'ERR_VLK_INVALID_ARG', /perImage/);
  const bad = gaussianMatrix(8, 8, 2);
  bad[60] = NaN;
  code(() => crossModalRanksSync(images, bad, { dim: 8, perImage: 2 }), 'ERR_VLK_NON_FINITE', /captions: row 7, column 4/);
  nativeCode(
    () => binding.crossModalRanksSync({ n: 4, d: 8, per: 2, images, captions: bad.subarray(0, 56), metric: 'ip', ties: 'stable' }),
    'ERR_VLK_SHAPE',
  );
});

// ---- real embeddings: recall figures of the READMEs ----
const recall = (ranks: Int32Array, k: number) => (100 * ranks.filter((r) => r < k).length) / ranks.length;

// "text→image Recall@1/5/10 = 71.7 / 92.0 / 95.4" -> [71.7, 92, 95.4]
function readmeRecalls(readme: string, direction: 'text→image' | 'image→text'): number[] {
  const m = new RegExp(`${direction} Recall@1/5/10 = ([0-9.]+) / ([0-9.]+) / ([0-9.]+)`).exec(readme);
  if (m === null) throw new Error(`README has no ${direction} recall line`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

function checkRecalls(i2t: Int32Array, t2i: Int32Array, readme: string, label: string): void {
  const wantT = readmeRecalls(readme, 'text→image');
  const wantI = readmeRecalls(readme, 'image→text');
  [1, 5, 10].forEach((k, i) => {
    assert.ok(Math.abs(recall(t2i, k) - wantT[i]) <= 0.1 + 1e-9, `${label} t2i R@${k}: ${recall(t2i, k)} vs ${wantT[i]}`);
    assert.ok(Math.abs(recall(i2t, k) - wantI[i]) <= 0.1 + 1e-9, `${label} i2t R@${k}: ${recall(i2t, k)} vs ${wantI[i]}`);
  });
}

const Data = suite('crossModalRanks on ../shared/data');
const f30 = join(dataRoot, 'flickr30k-clip-vitl14-1k');
const f8 = join(dataRoot, 'flickr8k-clip-vitb32-100x5');

if (!existsSync(join(f30, 'flickr30k_image_embeddings.npy'))) {
  console.log(`rank_of_targets.test.ts: ${f30} not found, skipping the Flickr30K recall test`);
  Data.skip('Flickr30K (1 caption per image)', () => {});
} else {
  Data('Flickr30K (1 caption per image): R@1/5/10 both ways match the README', async () => {
    const im = readNpy(join(f30, 'flickr30k_image_embeddings.npy'));
    const tx = readNpy(join(f30, 'flickr30k_text_embeddings.npy'));
    assert.equal(im.shape, [1000, 768]);
    const images = { data: im.data as Float32Array, rows: 1000, cols: 768 };
    const captions = { data: tx.data as Float32Array, rows: 1000, cols: 768 };
    // README: text row i is the first caption of image i (1:1), cosine brute force.
    const r = await crossModalRanks(images, captions, { perImage: 1, metric: 'cosine' });
    checkRecalls(r.i2t, r.t2i, readFileSync(join(f30, 'README.md'), 'utf8'), 'Flickr30K');
  });
}

if (!existsSync(join(f8, 'image_embeddings.npy'))) {
  console.log(`rank_of_targets.test.ts: ${f8} not found, skipping the Flickr8k recall test`);
  Data.skip('Flickr8k (5 captions per image)', () => {});
} else {
  Data('Flickr8k (5 captions per image): R@1/5/10 both ways match the README', async () => {
    const im = readNpy(join(f8, 'image_embeddings.npy'));
    const tx = readNpy(join(f8, 'text_embeddings.npy'));
    const d = im.shape[1];
    // README: row j of every file is one (image, caption) pair; the image rows repeat per caption.
    // Group captions by image_id in order of first appearance (image-major) and keep one image row.
    const ids = readFileSync(join(f8, 'metadata.csv'), 'utf8')
      .split('\n')
      .slice(1)
      .filter((l) => l.length > 0)
      .map((l) => l.slice(0, l.indexOf(',')));
    assert.is(ids.length, im.shape[0]);
    const order = new Map<string, number[]>();
    ids.forEach((id, j) => order.set(id, [...(order.get(id) ?? []), j]));
    const groups = [...order.values()];
    assert.ok(groups.every((g) => g.length === 5), 'five captions per image');
    const images = new Float32Array(groups.length * d);
    const captions = new Float32Array(ids.length * d);
    const imData = im.data as Float32Array;
    const txData = tx.data as Float32Array;
    groups.forEach((rows, i) => {
      images.set(imData.subarray(rows[0] * d, rows[0] * d + d), i * d);
      rows.forEach((j, k) => captions.set(txData.subarray(j * d, j * d + d), (i * 5 + k) * d));
    });
    const r = await crossModalRanks(images, captions, { perImage: 5, metric: 'cosine', dim: d });
    assert.is(r.i2t.length, 100);
    checkRecalls(r.i2t, r.t2i, readFileSync(join(f8, 'README.md'), 'utf8'), 'Flickr8k');
  });
}

Rank.run();
Cross.run();
Data.run();
