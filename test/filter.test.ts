// search filters (options.exclude, options.allow): applied inside the scan, so a filtered top-k
// must equal the first k allowed entries of the full ordering (k = N, itself checked against the
// float64 reference), bit for bit; short rows are padded (index -1, score NaN) and counted.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { search, searchSync, VlkError } from './helpers/lib';
import { gaussianMatrix, rng } from './helpers/random';
import { assertSearch, referenceSearch, type Metric } from './reference/search';

interface Case {
  metric: Metric;
  n: number;
  d: number;
  q: number;
  k: number;
  seed: number;
}

interface Filter {
  allowMask?: Uint8Array;
  excludeLists?: number[][];
}

function makeFilter(c: Case, density: number, perQuery: number): Filter {
  const r = rng(c.seed * 7 + 1);
  const allowMask = new Uint8Array(c.n);
  for (let i = 0; i < c.n; i++) allowMask[i] = r() < density ? 1 : 0;
  const excludeLists: number[][] = [];
  for (let i = 0; i < c.q; i++) {
    const list: number[] = [];
    for (let j = 0; j < perQuery; j++) list.push(Math.floor(r() * c.n));
    excludeLists.push(list);
  }
  return { allowMask, excludeLists };
}

function csr(lists: number[][]): { offsets: Int32Array; rows: Int32Array } {
  const offsets = new Int32Array(lists.length + 1);
  const rows: number[] = [];
  lists.forEach((l, i) => {
    rows.push(...l);
    offsets[i + 1] = rows.length;
  });
  return { offsets, rows: Int32Array.from(rows) };
}

// Expected rows per query: the full ordering filtered, first k.
function expected(full: { indices: Int32Array; scores: Float32Array }, n: number, q: number, k: number, f: Filter) {
  const rows: number[][] = [];
  const scores: number[][] = [];
  for (let i = 0; i < q; i++) {
    const ex = new Set(f.excludeLists?.[i] ?? []);
    const r: number[] = [];
    const s: number[] = [];
    for (let j = 0; j < n && r.length < k; j++) {
      const row = full.indices[i * n + j];
      if (f.allowMask && f.allowMask[row] === 0) continue;
      if (ex.has(row)) continue;
      r.push(row);
      s.push(full.scores[i * n + j]);
    }
    rows.push(r);
    scores.push(s);
  }
  return { rows, scores };
}

function check(
  got: { indices: Int32Array; scores: Float32Array; counts: Int32Array },
  want: { rows: number[][]; scores: number[][] },
  k: number,
  what: string,
): void {
  want.rows.forEach((rows, i) => {
    assert.is(got.counts[i], rows.length, `${what}: counts[${i}]`);
    for (let j = 0; j < k; j++) {
      const idx = got.indices[i * k + j];
      const sc = got.scores[i * k + j];
      if (j < rows.length) {
        assert.is(idx, rows[j], `${what}: query ${i} rank ${j} row`);
        assert.ok(Object.is(sc, Math.fround(want.scores[i][j])), `${what}: query ${i} rank ${j} score ${sc} vs ${want.scores[i][j]}`);
      } else {
        assert.is(idx, -1, `${what}: query ${i} rank ${j} padding index`);
        assert.ok(Number.isNaN(sc), `${what}: query ${i} rank ${j} padding score`);
      }
    }
  });
}

const CASES: Case[] = [
  { metric: 'ip', n: 1, d: 3, q: 2, k: 1, seed: 1 },
  { metric: 'cosine', n: 7, d: 5, q: 4, k: 7, seed: 2 },
  { metric: 'l2', n: 513, d: 33, q: 7, k: 10, seed: 3 },
  { metric: 'ip', n: 1000, d: 64, q: 33, k: 10, seed: 4 },
  { metric: 'cosine', n: 4097, d: 17, q: 3, k: 50, seed: 5 },
  { metric: 'l2', n: 700, d: 8, q: 40, k: 100, seed: 6 },
];

const Exact = suite('filters: exact against the filtered full ordering');

for (const c of CASES) {
  for (const [density, perQuery] of [
    [1, 1],
    [0.5, 3],
    [0.02, 0],
    [0, 0],
  ] as const) {
    Exact(`${c.metric} N=${c.n} D=${c.d} Q=${c.q} k=${c.k} allow ${density} exclude ${perQuery}/query`, async () => {
      const g = gaussianMatrix(c.n, c.d, c.seed);
      const qm = gaussianMatrix(c.q, c.d, c.seed + 100);
      const full = searchSync(qm, g, { k: c.n, dim: c.d, metric: c.metric });
      assertSearch(referenceSearch(qm, g, c.d, c.metric), full, c.n, 'full ordering');
      const f = makeFilter(c, density, perQuery);
      const want = expected(full, c.n, c.q, c.k, f);
      const opts = { k: c.k, dim: c.d, metric: c.metric, allow: f.allowMask, exclude: csr(f.excludeLists!) };
      check(searchSync(qm, g, opts), want, c.k, 'sync');
      check(await search(qm, g, opts), want, c.k, 'async');
      check(searchSync(qm, g, { ...opts, threads: 3 }), want, c.k, 'threads 3');
      // The same allow-set given as rows.
      const rows = Int32Array.from(Array.from(f.allowMask!.entries()).filter(([, v]) => v).map(([i]) => i));
      check(searchSync(qm, g, { ...opts, allow: rows }), want, c.k, 'allow as rows');
    });
  }
}

Exact('one excluded row per query (composed retrieval: drop the reference image)', () => {
  const d = 16;
  const g = gaussianMatrix(300, d, 11);
  const queries = g.slice(0, 5 * d); // queries are gallery rows 0..4: each finds itself first
  const plain = searchSync(queries, g, { k: 3, dim: d, metric: 'cosine' });
  for (let i = 0; i < 5; i++) assert.is(plain.indices[i * 3], i);
  const exclude = Int32Array.from([0, 1, 2, 3, -1]);
  const r = searchSync(queries, g, { k: 3, dim: d, metric: 'cosine', exclude });
  for (let i = 0; i < 4; i++) {
    assert.is.not(r.indices[i * 3], i, `query ${i} still returns itself`);
    assert.equal(Array.from(r.indices.subarray(i * 3, i * 3 + 2)), Array.from(plain.indices.subarray(i * 3 + 1, i * 3 + 3)));
  }
  assert.is(r.indices[12], 4, 'query 4 (-1: nothing excluded) finds itself');
});

Exact('planted ties stay in index order when filtered', () => {
  const d = 8;
  const g = gaussianMatrix(50, d, 12);
  for (let i = 10; i < 50; i += 5) g.copyWithin(i * d, 3 * d, 4 * d); // rows 3, 10, 15, ... identical
  const q = g.slice(3 * d, 4 * d);
  const allow = new Uint8Array(50).fill(1);
  allow[10] = 0;
  const r = searchSync(q, g, { k: 5, dim: d, allow, exclude: Int32Array.from([3]) });
  assert.equal(Array.from(r.indices), [15, 20, 25, 30, 35]);
  assert.ok(r.scores.every((s) => s === r.scores[0]));
});

Exact('no filter: counts are all k', () => {
  const r = searchSync(gaussianMatrix(9, 4, 13), gaussianMatrix(20, 4, 14), { k: 6, dim: 4 });
  assert.equal(Array.from(r.counts), Array(9).fill(6));
});

const Bad = suite('filters: bad input');

const g0 = gaussianMatrix(10, 4, 20);
const q0 = gaussianMatrix(3, 4, 21);
const BAD: Array<[string, Record<string, unknown>, string, RegExp]> = [
  ['exclude of wrong length', { exclude: new Int32Array(2) }, 'ERR_VLK_SHAPE', /options\.exclude: length 2 .*queries \(3\)/],
  ['exclude row out of range', { exclude: Int32Array.from([0, 10, 1]) }, 'ERR_VLK_INVALID_ARG', /query 1 lists row 10, outside 0\.\.9/],
  ['exclude as a plain array', { exclude: [1, 2, 3] }, 'ERR_VLK_TYPE', /options\.exclude/],
  ['exclude offsets wrong length', { exclude: { offsets: new Int32Array(3), rows: new Int32Array(0) } }, 'ERR_VLK_SHAPE', /offsets: length 3 .*\(4\)/],
  ['exclude offsets not ending at rows.length', { exclude: { offsets: Int32Array.from([0, 1, 1, 1]), rows: new Int32Array(2) } }, 'ERR_VLK_SHAPE', /end at rows\.length \(2\)/],
  ['exclude offsets decreasing', { exclude: { offsets: Int32Array.from([0, 2, 1, 2]), rows: Int32Array.from([1, 2]) } }, 'ERR_VLK_INVALID_ARG', /decrease at query 1/],
  ['exclude rows a Float32Array', { exclude: { offsets: new Int32Array(4), rows: new Float32Array(0) } }, 'ERR_VLK_TYPE', /options\.exclude\.rows: expected an Int32Array/],
  ['allow mask of wrong length', { allow: new Uint8Array(9) }, 'ERR_VLK_SHAPE', /mask length 9 .*\(10\)/],
  ['allow row out of range', { allow: Int32Array.from([3, -1]) }, 'ERR_VLK_INVALID_ARG', /row -1 at index 1/],
  ['allow a Float32Array', { allow: new Float32Array(10) }, 'ERR_VLK_TYPE', /options\.allow: expected a Uint8Array/],
];

for (const [name, extra, code, message] of BAD) {
  Bad(name, async () => {
    const opts = { k: 2, dim: 4, ...extra } as never;
    try {
      searchSync(q0, g0, opts);
      assert.unreachable('searchSync should throw');
    } catch (err) {
      assert.instance(err, VlkError);
      assert.is((err as VlkError).code, code);
      assert.match((err as Error).message, message);
    }
    const p = search(q0, g0, opts);
    try {
      await p;
      assert.unreachable('search should reject');
    } catch (err) {
      assert.is((err as VlkError).code, code);
    }
  });
}

Exact.run();
Bad.run();
