// rerank / rerankSync (test/rerank.test.ts): each query's result equals the full search ordering
// (k = N) restricted to its candidates, ids and scores bit for bit, with duplicates counted once and
// short lists padded; equal to search with `allow` when the queries share one list; the dense form
// (-1 padding) equals CSR; every ISA path equals scalar; async === sync, threads 1 === 3, AbortSignal,
// candidates copied at the call; real CLIP embeddings (Flickr30K); every bad input with its code.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { binding, info, rerank, rerankSync, searchSync, setIsa, VlkError } from './helpers/lib';
import type { CandidateLists, RerankOptions, SearchResult } from './helpers/lib';
import { gaussianMatrix, rng } from './helpers/random';
import { assertSameResult } from './helpers/compare';
import { readNpy } from './helpers/npy';
import { dataRoot } from './helpers/paths';

type Metric = 'ip' | 'cosine' | 'l2';
const METRICS: Metric[] = ['ip', 'cosine', 'l2'];

/** Q random candidate lists of 0..maxLen rows of 0..n-1, about a quarter of them repeats. */
function randomLists(q: number, n: number, seed: number, maxLen = 40): number[][] {
  const r = rng(seed);
  const lists: number[][] = [];
  for (let i = 0; i < q; i++) {
    // Query 1 has no candidates and query 2 the most, whenever there are that many queries.
    const len = i === 1 ? 0 : i === 2 ? maxLen : Math.floor(r() * (maxLen + 1));
    const list: number[] = [];
    for (let j = 0; j < len; j++) {
      list.push(j > 0 && r() < 0.25 ? list[Math.floor(r() * j)] : Math.floor(r() * n));
    }
    lists.push(list);
  }
  return lists;
}

function csr(lists: number[][]): CandidateLists {
  const offsets = new Int32Array(lists.length + 1);
  const rows: number[] = [];
  lists.forEach((l, i) => {
    rows.push(...l);
    offsets[i + 1] = rows.length;
  });
  return { offsets, rows: Int32Array.from(rows) };
}

/** Q x m dense candidates: each list's rows at random slots of its row, in order, -1 elsewhere. */
function dense(lists: number[][], m: number, seed: number): Int32Array {
  const r = rng(seed);
  const out = new Int32Array(lists.length * m).fill(-1);
  lists.forEach((list, i) => {
    let free = m - list.length;
    let at = i * m;
    for (const row of list) {
      while (free > 0 && r() < 0.3) {
        at++; // a -1 before this row
        free--;
      }
      out[at++] = row;
    }
  });
  return out;
}

interface Expected {
  rows: number[];
  scores: number[];
}

/** Per query: the full ordering (a k = N search) restricted to its candidate set, first k. */
function restricted(full: SearchResult, n: number, lists: number[][], k: number): Expected[] {
  return lists.map((list, i) => {
    const set = new Set(list);
    const rows: number[] = [];
    const scores: number[] = [];
    for (let j = 0; j < n && rows.length < Math.min(k, set.size); j++) {
      const row = full.indices[i * n + j];
      if (set.has(row)) {
        rows.push(row);
        scores.push(full.scores[i * n + j]);
      }
    }
    return { rows, scores };
  });
}

/** got equals the expected rows and scores (Object.is), counts, -1 / NaN padding, k, count. */
function check(got: SearchResult, want: Expected[], k: number, what: string): void {
  assert.is(got.k, k, `${what}: k`);
  assert.is(got.count, want.length, `${what}: count`);
  assert.is(got.indices.length, want.length * k, `${what}: indices length`);
  assert.is(got.scores.length, want.length * k, `${what}: scores length`);
  assert.is(got.counts.length, want.length, `${what}: counts length`);
  want.forEach(({ rows, scores }, i) => {
    assert.is(got.counts[i], rows.length, `${what}: counts[${i}]`);
    for (let j = 0; j < k; j++) {
      const idx = got.indices[i * k + j];
      const sc = got.scores[i * k + j];
      if (j < rows.length) {
        if (idx !== rows[j] || !Object.is(sc, scores[j])) {
          assert.unreachable(`${what}: query ${i} rank ${j}: rerank (${idx}, ${sc}) vs restricted search (${rows[j]}, ${scores[j]})`);
        }
      } else if (idx !== -1 || !Number.isNaN(sc)) {
        assert.unreachable(`${what}: query ${i} rank ${j}: padding is (${idx}, ${sc}), expected (-1, NaN)`);
      }
    }
  });
}

/** Bit-identical results, counts included. */
function assertSame(a: SearchResult, b: SearchResult, what: string): void {
  assertSameResult(a, b, what);
  assert.equal(Array.from(a.counts), Array.from(b.counts), `${what}: counts`);
}

// ---------------------------------------------------------------------------------------------
const Exact = suite('rerank equals the full search ordering restricted to the candidates');

const KS = [1, 10, 45]; // 45 > every list: padding in every query

for (const n of [1, 7, 1000, 4097]) {
  for (const d of [3, 64, 512]) {
    for (const q of [1, 33]) {
      Exact(`N=${n} D=${d} Q=${q}, every metric, k = ${KS.join(', ')}`, () => {
        const seed = n * 7919 + d * 31 + q;
        const g = gaussianMatrix(n, d, seed);
        const qm = gaussianMatrix(q, d, seed + 1);
        const lists = randomLists(q, n, seed + 2);
        const shared = randomLists(1, n, seed + 3)[0];
        const sharedDense = new Int32Array(q * shared.length);
        for (let i = 0; i < q; i++) sharedDense.set(shared, i * shared.length);
        for (const metric of METRICS) {
          const full = searchSync(qm, g, { k: n, dim: d, metric });
          for (const k of KS) {
            const what = `${metric} k=${k}`;
            check(rerankSync(qm, g, csr(lists), { k, dim: d, metric }), restricted(full, n, lists, k), k, what);
            // One list for every query: search with allow = that list gives the same answer.
            const viaAllow = searchSync(qm, g, { k: Math.min(k, n), dim: d, metric, allow: Int32Array.from(shared) });
            const viaRerank = rerankSync(qm, g, sharedDense, { k: Math.min(k, n), dim: d, metric });
            assertSame(viaRerank, viaAllow, `${what}: shared list of ${shared.length} vs search with allow`);
          }
        }
      });
    }
  }
}

Exact('a query whose list repeats one row gets it once; views and dims inputs work', () => {
  const d = 8;
  const g = gaussianMatrix(20, d, 5);
  const qm = gaussianMatrix(2, d, 6);
  const lists = [[4, 4, 4, 9, 4], [7, 7]];
  const r = rerankSync({ data: qm, rows: 2, cols: d }, { data: g, dims: [20, d] }, csr(lists), { k: 3 });
  assert.equal(Array.from(r.counts), [2, 1]);
  assert.equal(Array.from(r.indices.subarray(3, 6)), [7, -1, -1]);
  assert.equal(new Set(r.indices.subarray(0, 2)), new Set([4, 9]));
  assert.ok(Number.isNaN(r.scores[2]) && Number.isNaN(r.scores[4]), 'padding scores are NaN');
});

Exact('planted ties come out by lower row whatever the candidate order', () => {
  const d = 8;
  const g = gaussianMatrix(50, d, 7);
  for (const to of [11, 23, 42]) g.copyWithin(to * d, 3 * d, 4 * d); // rows 3, 11, 23, 42 identical
  const qm = g.slice(3 * d, 4 * d);
  for (const metric of METRICS) {
    const r = rerankSync(qm, g, Int32Array.from([42, 23, 0, 11, 3]), { k: 4, dim: d, metric });
    assert.equal(Array.from(r.indices), [3, 11, 23, 42], metric);
    assert.ok(r.scores.every((s) => Object.is(s, r.scores[0])), `${metric}: equal scores`);
  }
});

Exact('NaN in a gallery row that no query lists is never read', () => {
  const d = 4;
  const g = gaussianMatrix(10, d, 8);
  g[6 * d + 1] = NaN;
  const r = rerankSync(gaussianMatrix(1, d, 9), g, Int32Array.from([0, 5, 9]), { k: 2, dim: d });
  assert.is(r.counts[0], 2);
});

// ---------------------------------------------------------------------------------------------
const Dense = suite('dense candidates (-1 padding) equal CSR');

Dense('random lists at random slots of width 45, every metric', async () => {
  const n = 1000;
  const d = 37;
  const q = 33;
  const g = gaussianMatrix(n, d, 21);
  const qm = gaussianMatrix(q, d, 22);
  const lists = randomLists(q, n, 23);
  const padded = dense(lists, 45, 24);
  assert.ok(padded.includes(-1), 'the dense form has -1 entries');
  for (const metric of METRICS) {
    for (const k of [1, 10, 45]) {
      const viaCsr = rerankSync(qm, g, csr(lists), { k, dim: d, metric });
      assertSame(rerankSync(qm, g, padded, { k, dim: d, metric }), viaCsr, `${metric} k=${k} dense`);
      assertSame(await rerank(qm, g, padded, { k, dim: d, metric }), viaCsr, `${metric} k=${k} dense async`);
    }
  }
});

Dense('all -1, and a dense array of length 0 (m = 0): every query padded', () => {
  const d = 4;
  const g = gaussianMatrix(10, d, 25);
  const qm = gaussianMatrix(3, d, 26);
  for (const c of [new Int32Array(6).fill(-1), new Int32Array(0)]) {
    const r = rerankSync(qm, g, c, { k: 2, dim: d });
    assert.equal(Array.from(r.counts), [0, 0, 0]);
    assert.equal(Array.from(r.indices), [-1, -1, -1, -1, -1, -1]);
    assert.ok(r.scores.every(Number.isNaN));
  }
});

// ---------------------------------------------------------------------------------------------
const Isa = suite('ISA paths');

Isa('every path in info().isas gives scalar\'s result bit for bit (sync, async, threads 3)', async () => {
  const isas = info().isas;
  console.log(`\n    rerank ISA paths: ${isas.join(', ')}`);
  for (const [n, d, q] of [
    [1000, 67, 33],
    [4097, 512, 5],
    [7, 3, 33],
  ]) {
    const g = gaussianMatrix(n, d, n + d);
    const qm = gaussianMatrix(q, d, n + d + 1);
    const lists = csr(randomLists(q, n, n + d + 2));
    for (const metric of METRICS) {
      const opts: RerankOptions = { k: 12, dim: d, metric };
      let scalar: SearchResult;
      setIsa('scalar');
      try {
        scalar = rerankSync(qm, g, lists, opts);
      } finally {
        setIsa(null);
      }
      for (const isa of isas) {
        setIsa(isa as never);
        try {
          const what = `${isa} ${metric} N=${n} D=${d}`;
          assertSame(rerankSync(qm, g, lists, opts), scalar, what);
          assertSame(await rerank(qm, g, lists, opts), scalar, `${what} async`);
          assertSame(rerankSync(qm, g, lists, { ...opts, threads: 3 }), scalar, `${what} threads 3`);
        } finally {
          setIsa(null);
        }
      }
    }
  }
});

// ---------------------------------------------------------------------------------------------
const Async = suite('async');

Async('rerank === rerankSync bit for bit; threads 1 === threads 3; many in flight', async () => {
  const n = 4097;
  const d = 64;
  const q = 33;
  const g = gaussianMatrix(n, d, 31);
  const qm = gaussianMatrix(q, d, 32);
  const lists = csr(randomLists(q, n, 33));
  for (const metric of METRICS) {
    const s = rerankSync(qm, g, lists, { k: 10, dim: d, metric });
    assertSame(await rerank(qm, g, lists, { k: 10, dim: d, metric }), s, `${metric} async`);
    assertSame(rerankSync(qm, g, lists, { k: 10, dim: d, metric, threads: 1 }), s, `${metric} threads 1`);
    assertSame(rerankSync(qm, g, lists, { k: 10, dim: d, metric, threads: 3 }), s, `${metric} threads 3`);
    assertSame(await rerank(qm, g, lists, { k: 10, dim: d, metric, threads: 1 }), s, `${metric} async threads 1`);
    assertSame(await rerank(qm, g, lists, { k: 10, dim: d, metric, threads: 3 }), s, `${metric} async threads 3`);
  }
  const ks = Array.from({ length: 40 }, (_, i) => 1 + (i % 25));
  const all = await Promise.all(ks.map((k) => rerank(qm, g, lists, { k, dim: d })));
  all.forEach((r, i) => assertSame(r, rerankSync(qm, g, lists, { k: ks[i], dim: d }), `in flight k=${ks[i]}`));
});

Async('the candidates are copied at the call: changing them before the promise settles changes nothing', async () => {
  const d = 16;
  const g = gaussianMatrix(500, d, 34);
  const qm = gaussianMatrix(33, d, 35);
  const lists = randomLists(33, 500, 36);
  const want = rerankSync(qm, g, csr(lists), { k: 10, dim: d });
  const c = csr(lists);
  const padded = dense(lists, 41, 37);
  const pending = [rerank(qm, g, c, { k: 10, dim: d }), rerank(qm, g, padded, { k: 10, dim: d })];
  c.rows.fill(0);
  c.offsets.fill(0);
  padded.fill(-1);
  const [a, b] = await Promise.all(pending);
  assertSame(a, want, 'CSR changed after the call');
  assertSame(b, want, 'dense changed after the call');
});

Async('an already-aborted signal rejects with AbortError (code ABORT_ERR, cause = reason); a live one does nothing', async () => {
  const d = 8;
  const g = gaussianMatrix(100, d, 38);
  const qm = gaussianMatrix(5, d, 39);
  const lists = csr(randomLists(5, 100, 40));
  const ac = new AbortController();
  const reason = new Error('stop');
  ac.abort(reason);
  let p: Promise<unknown>;
  try {
    p = rerank(qm, g, lists, { k: 3, dim: d, signal: ac.signal });
  } catch (err) {
    throw new Error(`rerank threw synchronously: ${(err as Error).message}`);
  }
  const err: any = await p.then(
    () => assert.unreachable('should reject'),
    (e) => e,
  );
  assert.instance(err, VlkError);
  assert.is(err.name, 'AbortError');
  assert.is(err.code, 'ABORT_ERR');
  assert.ok(err.cause === reason, 'cause is the reason');
  const live = new AbortController();
  assertSame(await rerank(qm, g, lists, { k: 3, dim: d, signal: live.signal }), rerankSync(qm, g, lists, { k: 3, dim: d }), 'live signal');
  // rerankSync ignores the signal.
  assert.is(rerankSync(qm, g, lists, { k: 3, dim: d, signal: ac.signal }).count, 5);
});

// ---------------------------------------------------------------------------------------------
const Data = suite('real data');

const genecisDir = join(dataRoot, 'genecis-annotations');
const flickrDir = join(dataRoot, 'flickr30k-clip-vitl14-1k');

// GeneCIS (its README) ships COCO image ids per template (15 candidates each), not embeddings:
// nothing to rank, so Flickr30K's paired CLIP embeddings stand in for its 15-candidate setting.
console.log(
  `rerank.test.ts: ${existsSync(genecisDir) ? `${genecisDir} holds ids, no embeddings` : `${genecisDir} not found`}, ` +
    'skipping GeneCIS; the 15-candidate test uses Flickr30K',
);

if (!existsSync(join(flickrDir, 'flickr30k_image_embeddings.npy'))) {
  console.log(`rerank.test.ts: ${flickrDir} not found, skipping the Flickr30K re-ranking test`);
  Data.skip('Flickr30K image -> 15 captions', () => {});
} else {
  Data('Flickr30K CLIP ViT-L/14: each image re-ranks its true caption + 14 random ones', () => {
    const images = readNpy(join(flickrDir, 'flickr30k_image_embeddings.npy'));
    const texts = readNpy(join(flickrDir, 'flickr30k_text_embeddings.npy'));
    assert.equal([images.shape, texts.shape], [[1000, 768], [1000, 768]]);
    const [n, d] = images.shape;
    const r = rng(41);
    const m = 15;
    const lists: number[][] = [];
    const candidates = new Int32Array(n * m);
    for (let i = 0; i < n; i++) {
      const list = [i];
      while (list.length < m) {
        const c = Math.floor(r() * n);
        if (!list.includes(c)) list.push(c);
      }
      for (let j = m - 1; j > 0; j--) {
        const s = Math.floor(r() * (j + 1));
        [list[j], list[s]] = [list[s], list[j]];
      }
      lists.push(list);
      candidates.set(list, i * m);
    }
    const qs = images.data as Float32Array;
    const gs = texts.data as Float32Array;
    const got = rerankSync(qs, gs, candidates, { k: m, dim: d, metric: 'cosine' });
    let hits = 0;
    for (let i = 0; i < n; i++) if (got.indices[i * m] === i) hits++;
    const top1 = (100 * hits) / n;
    // The true caption is first among 15 whenever it is first among all 1000, so the rate is at
    // least the README's image->text Recall@1 (a caption in the true one's place only lowers it).
    const readme = readFileSync(join(flickrDir, 'README.md'), 'utf8');
    const r1 = /image→text Recall@1\/5\/10 = ([\d.]+)/.exec(readme);
    console.log(`\n    Flickr30K image -> 1 of 15 captions: top-1 ${top1.toFixed(1)}%${r1 ? ` (README R@1 over 1000: ${r1[1]}%)` : ''}`);
    assert.ok(top1 > 50, `top-1 ${top1}% > 50%`);
    if (r1) assert.ok(top1 >= Number(r1[1]) - 0.1, `top-1 ${top1}% >= README R@1 ${r1[1]}%`);
    for (const metric of ['cosine', 'ip'] as const) {
      const full = searchSync(qs, gs, { k: n, dim: d, metric });
      check(rerankSync(qs, gs, candidates, { k: m, dim: d, metric }), restricted(full, n, lists, m), m, `Flickr30K ${metric}`);
      check(rerankSync(qs, gs, csr(lists), { k: 5, dim: d, metric }), restricted(full, n, lists, 5), 5, `Flickr30K ${metric} k=5`);
    }
  });
}

// ---------------------------------------------------------------------------------------------
const Bad = suite('bad input');

const D0 = 4;
const g0 = () => gaussianMatrix(10, D0, 50);
const q0 = () => gaussianMatrix(3, D0, 51);
const ok0 = () => csr([[0, 1], [2], [3, 4, 5]]);
const withNaN = (m: Float32Array, at: number, v: number) => {
  m[at] = v;
  return m;
};

// [name, queries, gallery, candidates, options (dim: 4 added unless given), code, message patterns]
type BadCase = [string, () => unknown, () => unknown, () => unknown, Record<string, unknown> | null, string, RegExp[]];
const BAD: BadCase[] = [
  ['candidates null', q0, g0, () => null, {}, 'ERR_VLK_TYPE', [/^candidates: expected an Int32Array \(Q x m rows, -1: none\) or \{ offsets, rows \}, got null$/]],
  ['candidates a Float32Array', q0, g0, () => new Float32Array(6), {}, 'ERR_VLK_TYPE', [/^candidates: expected an Int32Array/, /got a Float32Array$/]],
  ['candidates a plain array', q0, g0, () => [0, 1, 2], {}, 'ERR_VLK_TYPE', [/^candidates: /, /got an Array$/]],
  ['candidates a number', q0, g0, () => 3, {}, 'ERR_VLK_TYPE', [/^candidates: /, /a number \(3\)/]],
  ['offsets a Float64Array', q0, g0, () => ({ offsets: new Float64Array(4), rows: new Int32Array(0) }), {}, 'ERR_VLK_TYPE', [/^candidates\.offsets: expected an Int32Array, got a Float64Array$/]],
  ['rows missing', q0, g0, () => ({ offsets: new Int32Array(4) }), {}, 'ERR_VLK_TYPE', [/^candidates\.rows: expected an Int32Array, got undefined$/]],
  ['dense length not a multiple of Q', q0, g0, () => new Int32Array(7), {}, 'ERR_VLK_SHAPE', [/^candidates: length 7 is not a multiple of the number of queries \(3\)/]],
  ['offsets length != Q + 1', q0, g0, () => ({ offsets: Int32Array.from([0, 1, 2]), rows: new Int32Array(2) }), {}, 'ERR_VLK_SHAPE', [/^candidates\.offsets: length 3 is not queries \+ 1 \(4\)$/]],
  ['offsets[0] != 0', q0, g0, () => ({ offsets: Int32Array.from([1, 1, 2, 2]), rows: new Int32Array(2) }), {}, 'ERR_VLK_SHAPE', [/^candidates\.offsets: must start at 0 and end at rows\.length \(2\), got 1 \.\. 2$/]],
  ['offsets[Q] != rows.length', q0, g0, () => ({ offsets: Int32Array.from([0, 1, 2, 2]), rows: new Int32Array(3) }), {}, 'ERR_VLK_SHAPE', [/rows\.length \(3\), got 0 \.\. 2$/]],
  ['offsets decreasing', q0, g0, () => ({ offsets: Int32Array.from([0, 2, 1, 2]), rows: Int32Array.from([1, 2]) }), {}, 'ERR_VLK_INVALID_ARG', [/^candidates\.offsets: decrease at query 1 \(2 then 1\)$/]],
  ['CSR row = N', q0, g0, () => ({ offsets: Int32Array.from([0, 1, 3, 3]), rows: Int32Array.from([0, 1, 10]) }), {}, 'ERR_VLK_INVALID_ARG', [/^candidates\.rows\[2\]: row 10 \(query 1\) is outside 0\.\.9$/]],
  ['CSR row -1 (no padding in CSR)', q0, g0, () => ({ offsets: Int32Array.from([0, 1, 1, 1]), rows: Int32Array.from([-1]) }), {}, 'ERR_VLK_INVALID_ARG', [/^candidates\.rows\[0\]: row -1 \(query 0\) is outside 0\.\.9$/]],
  ['dense row -2', q0, g0, () => Int32Array.from([0, 1, 2, -2, 4, 5]), {}, 'ERR_VLK_INVALID_ARG', [/^candidates\[3\]: row -2 \(query 1\) is outside 0\.\.9 \(-1: no candidate\)$/]],
  ['dense row = N', q0, g0, () => Int32Array.from([0, -1, 2, 3, 4, 10]), {}, 'ERR_VLK_INVALID_ARG', [/^candidates\[5\]: row 10 \(query 2\) is outside 0\.\.9/]],
  ['k = 0', q0, g0, ok0, { k: 0 }, 'ERR_VLK_INVALID_K', [/^options\.k: 0 is not an integer in 1\.\.2147483647$/]],
  ['k = 1.5', q0, g0, ok0, { k: 1.5 }, 'ERR_VLK_INVALID_K', [/^options\.k: 1\.5 /]],
  ['k = -3', q0, g0, ok0, { k: -3 }, 'ERR_VLK_INVALID_K', [/^options\.k: -3 /]],
  ['k = NaN', q0, g0, ok0, { k: NaN }, 'ERR_VLK_INVALID_K', [/^options\.k: NaN /]],
  ['k = Infinity', q0, g0, ok0, { k: Infinity }, 'ERR_VLK_INVALID_K', [/^options\.k: Infinity /]],
  ['k a string', q0, g0, ok0, { k: '2' }, 'ERR_VLK_INVALID_K', [/^options\.k: a string/]],
  ['k missing', q0, g0, ok0, { k: undefined }, 'ERR_VLK_INVALID_K', [/^options\.k: undefined /]],
  ['k = 2^31', q0, g0, ok0, { k: 2 ** 31 }, 'ERR_VLK_INVALID_K', [/^options\.k: 2147483648 is not an integer in 1\.\.2147483647$/]],
  ['unknown metric', q0, g0, ok0, { metric: 'dot' }, 'ERR_VLK_INVALID_ARG', [/^options\.metric: expected 'ip', 'cosine' or 'l2', got 'dot'$/]],
  ['threads 0', q0, g0, ok0, { threads: 0 }, 'ERR_VLK_INVALID_ARG', [/^options\.threads: 0 is not an integer >= 1$/]],
  ['options null', q0, g0, ok0, null, 'ERR_VLK_TYPE', [/^options: expected an object/, /null/]],
  ['queries a Float64Array', () => new Float64Array(12), g0, ok0, {}, 'ERR_VLK_TYPE', [/^queries: expected a Float32Array/, /Float64Array/]],
  ['gallery view of the wrong length', q0, () => ({ data: new Float32Array(39), rows: 10, cols: 4 }), ok0, {}, 'ERR_VLK_SHAPE', [/^gallery: data length 39 is not rows x cols = 10 x 4 = 40$/]],
  ['gallery length not a multiple of dim', q0, () => new Float32Array(41), ok0, {}, 'ERR_VLK_DIM_MISMATCH', [/^gallery: length 41 is not a multiple of dim 4$/]],
  ['plain arrays without dim', q0, g0, ok0, { dim: undefined }, 'ERR_VLK_INVALID_ARG', [/^options\.dim: required when queries is a plain Float32Array$/]],
  ['view cols differ', () => ({ data: q0(), rows: 3, cols: 4 }), () => ({ data: new Float32Array(50), rows: 10, cols: 5 }), ok0, { dim: undefined }, 'ERR_VLK_DIM_MISMATCH', [/^queries have 4 columns but gallery has 5$/]],
  ['no queries', () => new Float32Array(0), g0, () => new Int32Array(0), {}, 'ERR_VLK_EMPTY', [/^queries: shape 0 x 4 is empty$/]],
  ['NaN in a query', () => withNaN(q0(), 5, NaN), g0, ok0, {}, 'ERR_VLK_NON_FINITE', [/queries/, /NaN/]],
  ['Infinity in a candidate row', q0, () => withNaN(g0(), 4 * 4 + 2, Infinity), ok0, {}, 'ERR_VLK_NON_FINITE', [/^gallery: row 4/, /Infinity/]],
];

for (const [name, queries, gallery, candidates, extra, code, patterns] of BAD) {
  const options = () => (extra === null ? null : { k: 2, dim: D0, ...extra });
  const syncMessage = () => {
    try {
      rerankSync(queries() as never, gallery() as never, candidates() as never, options() as never);
    } catch (e) {
      return (e as Error).message;
    }
    return '';
  };
  Bad(`${name}: ${code}`, async () => {
    try {
      rerankSync(queries() as never, gallery() as never, candidates() as never, options() as never);
      assert.unreachable('rerankSync should throw');
    } catch (err) {
      assert.instance(err, VlkError, `${name}: a VlkError (${(err as Error).message})`);
      assert.is((err as VlkError).code, code, `${name}: code (${(err as Error).message})`);
      for (const re of patterns) assert.match((err as Error).message, re, `${name}: message`);
    }
    let p: Promise<unknown>;
    try {
      p = rerank(queries() as never, gallery() as never, candidates() as never, options() as never);
    } catch (err) {
      throw new Error(`rerank threw synchronously: ${(err as Error).message}`);
    }
    const err = await p.then(
      () => assert.unreachable('rerank should reject'),
      (e) => e,
    );
    assert.instance(err, VlkError);
    assert.is((err as VlkError).code, code);
    assert.is((err as Error).message, syncMessage(), 'same message sync and async');
  });
}

Bad('a bad signal is ERR_VLK_INVALID_ARG (async only)', async () => {
  const err: any = await rerank(q0(), g0(), ok0(), { k: 2, dim: D0, signal: {} as never }).then(
    () => assert.unreachable('should reject'),
    (e) => e,
  );
  assert.is(err.code, 'ERR_VLK_INVALID_ARG');
  assert.match(err.message, /^options\.signal: expected an AbortSignal/);
});

Bad('k above N and above every list is fine (no bound tied to N)', () => {
  const r = rerankSync(q0(), g0(), ok0(), { k: 11, dim: D0 });
  assert.equal(Array.from(r.counts), [2, 1, 3]);
  assert.is(r.indices.length, 33);
});

// The binding re-checks what lib checks (memory safety when called directly), with the same codes
// and messages.
const view = (data: Float32Array, rows: number) => ({ data, rows, cols: D0 });
const NATIVE: Array<[string, unknown, unknown, string, RegExp]> = [
  ['candidates null', null, { k: 2, metric: 'ip' }, 'ERR_VLK_TYPE', /^candidates: expected an Int32Array/],
  ['candidates a Uint32Array', new Uint32Array(3), { k: 2, metric: 'ip' }, 'ERR_VLK_TYPE', /got a Uint32Array$/],
  ['candidates a function', () => 0, { k: 2, metric: 'ip' }, 'ERR_VLK_TYPE', /got a function$/],
  ['offsets a Float32Array', { offsets: new Float32Array(4), rows: new Int32Array(0) }, { k: 2, metric: 'ip' }, 'ERR_VLK_TYPE', /^candidates\.offsets: expected an Int32Array/],
  ['dense length', new Int32Array(4), { k: 2, metric: 'ip' }, 'ERR_VLK_SHAPE', /^candidates: length 4 is not a multiple of the number of queries \(3\)/],
  ['offsets too short', { offsets: new Int32Array(2), rows: new Int32Array(0) }, { k: 2, metric: 'ip' }, 'ERR_VLK_SHAPE', /^candidates\.offsets: length 2 is not queries \+ 1 \(4\)$/],
  ['offsets past rows', { offsets: Int32Array.from([0, 0, 0, 5]), rows: new Int32Array(2) }, { k: 2, metric: 'ip' }, 'ERR_VLK_SHAPE', /got 0 \.\. 5$/],
  ['offsets decreasing', { offsets: Int32Array.from([0, 2, 1, 2]), rows: new Int32Array(2) }, { k: 2, metric: 'ip' }, 'ERR_VLK_INVALID_ARG', /^candidates\.offsets: decrease at query 1 \(2 then 1\)$/],
  ['offsets negative inside', { offsets: Int32Array.from([0, -5, 0, 2]), rows: new Int32Array(2) }, { k: 2, metric: 'ip' }, 'ERR_VLK_INVALID_ARG', /decrease at query 0 \(0 then -5\)$/],
  ['CSR row out of range', { offsets: Int32Array.from([0, 0, 0, 2]), rows: Int32Array.from([3, 99]) }, { k: 2, metric: 'ip' }, 'ERR_VLK_INVALID_ARG', /^candidates\.rows\[1\]: row 99 \(query 2\) is outside 0\.\.9$/],
  ['dense row out of range', Int32Array.from([-1, -7, 0]), { k: 2, metric: 'ip' }, 'ERR_VLK_INVALID_ARG', /^candidates\[1\]: row -7 \(query 1\)/],
  ['k = 0', ok0(), { k: 0, metric: 'ip' }, 'ERR_VLK_INVALID_K', /^options\.k: 0 is not an integer in 1\.\.2147483647$/],
  ['k = 2^31', ok0(), { k: 2 ** 31, metric: 'ip' }, 'ERR_VLK_INVALID_K', /^options\.k: 2147483648 /],
  ['k missing', ok0(), { metric: 'ip' }, 'ERR_VLK_INVALID_K', /^options\.k: undefined /],
  ['metric unknown', ok0(), { k: 2, metric: 'dot' }, 'ERR_VLK_INVALID_ARG', /^options\.metric: expected 'ip', 'cosine' or 'l2', got 'dot'$/],
  ['threads 1.5', ok0(), { k: 2, threads: 1.5 }, 'ERR_VLK_INVALID_ARG', /^options\.threads: 1\.5 is not an integer >= 1$/],
  ['options null', ok0(), null, 'ERR_VLK_TYPE', /^options: expected an object/],
];

for (const [name, candidates, options, code, message] of NATIVE) {
  Bad(`binding.rerankSync / rerankAsync: ${name}: ${code}`, async () => {
    const args = () => [view(q0(), 3), view(g0(), 10), candidates, options] as const;
    try {
      binding.rerankSync(...args());
      assert.unreachable('should throw');
    } catch (err) {
      assert.is((err as { code?: string }).code, code, (err as Error).message);
      assert.match((err as Error).message, message);
    }
    const err: any = await binding.rerankAsync(...args()).then(
      () => assert.unreachable('should reject'),
      (e) => e,
    );
    assert.is(err.code, code, err.message);
    assert.match(err.message, message);
  });
}

Bad('binding.rerankAsync rejects a token that is not from createCancelToken()', async () => {
  const err: any = await binding.rerankAsync(view(q0(), 3), view(g0(), 10), ok0(), { k: 2, metric: 'ip' }, {} as never).then(
    () => assert.unreachable('should reject'),
    (e) => e,
  );
  assert.is(err.code, 'ERR_VLK_INVALID_ARG');
  assert.match(err.message, /^token: expected a value from createCancelToken\(\)/);
});

Exact.run();
Dense.run();
Isa.run();
Async.run();
Data.run();
Bad.run();
