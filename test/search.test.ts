// search / searchSync correctness against the float64 reference (test/reference/search.ts): random
// inputs at awkward sizes, planted ties, k = N, clamp, every input form, offset views and
// non-mutation, cosine zero vectors, and bit-identical results across sync/async, thread counts
// and query batching. Matrices are row-major: queries Q x D, gallery N x D, results Q x k.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { search, searchSync } from './helpers/lib';
import { gaussianMatrix, rng } from './helpers/random';
import { assertSameResult, concatResults } from './helpers/compare';
import { assertSearch, referenceSearch, type Metric } from './reference/search';

const METRICS: Metric[] = ['ip', 'cosine', 'l2'];

function bytesOf(a: Float32Array | Int32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function copyRow(m: Float32Array, d: number, from: number, to: number): void {
  m.copyWithin(to * d, from * d, (from + 1) * d);
}

function isPermutation(idx: Int32Array, n: number): boolean {
  const sorted = Array.from(idx).sort((a, b) => a - b);
  return sorted.length === n && sorted.every((v, i) => v === i);
}

// ---------------------------------------------------------------------------------------------
const Random = suite('random inputs vs float64 reference');

// [metric, N, D, Q, k]: covers every N, D, Q and k value of the spec in each metric, plus k values
// around selection-path thresholds, without the full cross product.
const CASES: Array<[Metric, number, number, number, number]> = [
  ['ip', 1, 1, 1, 1],
  ['l2', 1, 768, 33, 1],
  ['cosine', 1, 3, 33, 1],
  ['ip', 7, 3, 33, 7],
  ['cosine', 7, 512, 1, 1],
  ['l2', 7, 1, 33, 7],
  ['ip', 1000, 512, 33, 10],
  ['cosine', 1000, 768, 33, 10],
  ['l2', 1000, 3, 33, 1000],
  ['ip', 1000, 1, 1, 10],
  ['cosine', 1000, 1, 33, 10],
  ['l2', 1000, 768, 1, 1],
  ['ip', 1000, 33, 7, 33],
  ['ip', 4097, 768, 33, 10],
  ['l2', 4097, 512, 33, 10],
  ['cosine', 4097, 512, 1, 4097],
  ['ip', 4097, 3, 33, 4097],
  ['l2', 4097, 768, 1, 4097],
  ['cosine', 4097, 768, 33, 1],
  ['ip', 4097, 512, 1, 1],
  ['l2', 4097, 1, 33, 10],
  ['ip', 4097, 64, 33, 1000],
  ['l2', 4097, 64, 5, 2000],
  ['cosine', 4097, 17, 5, 257],
];

let seed = 1000;
for (const [metric, n, d, q, k] of CASES) {
  const s = seed++;
  Random(`${metric} N=${n} D=${d} Q=${q} k=${k}`, () => {
    const queries = gaussianMatrix(q, d, s);
    const gallery = gaussianMatrix(n, d, s + 7919);
    const ref = referenceSearch(queries, gallery, d, metric);
    const res = searchSync(queries, gallery, { k, metric, dim: d });
    assertSearch(ref, res, k, 'searchSync');
  });
}

Random('default metric is ip', () => {
  const queries = gaussianMatrix(4, 16, 1);
  const gallery = gaussianMatrix(100, 16, 2);
  const a = searchSync(queries, gallery, { k: 5, dim: 16 });
  const b = searchSync(queries, gallery, { k: 5, dim: 16, metric: 'ip' });
  assertSameResult(a, b, 'default vs ip');
  assertSearch(referenceSearch(queries, gallery, 16, 'ip'), a, 5, 'default metric');
});

Random('rows with norms spanning 1e-3..1e3, every metric', () => {
  const d = 48;
  const u = rng(77);
  const gallery = gaussianMatrix(1500, d, 78);
  for (let r = 0; r < 1500; r++) {
    const scale = 10 ** (6 * u() - 3);
    for (let c = 0; c < d; c++) gallery[r * d + c] *= scale;
  }
  const queries = gaussianMatrix(9, d, 79);
  for (const metric of METRICS) {
    const res = searchSync(queries, gallery, { k: 50, metric, dim: d });
    assertSearch(referenceSearch(queries, gallery, d, metric), res, 50, 'mixed norms');
  }
});

Random('l2 near-duplicates with large norms rank exactly (no expanded-form cancellation)', () => {
  // Rows around a common offset of 1000 have |g|^2 ~ 1e8, where the fp32 expanded form
  // |q|^2 + |g|^2 - 2 q.g is off by ~10; the near-duplicates below differ from the query by ~1e-2.
  const d = 128;
  const base = gaussianMatrix(40, d, 90);
  for (let i = 0; i < base.length; i++) base[i] = 1000 + 100 * base[i];
  const noise = gaussianMatrix(400, d, 91);
  const gallery = new Float32Array(400 * d);
  for (let r = 0; r < 400; r++) {
    for (let c = 0; c < d; c++) gallery[r * d + c] = base[(r % 40) * d + c] + 0.01 * noise[r * d + c];
  }
  const queries = new Float32Array(6 * d);
  const qnoise = gaussianMatrix(6, d, 92);
  for (let r = 0; r < 6; r++) {
    for (let c = 0; c < d; c++) queries[r * d + c] = base[(r * 7) * d + c] + 0.01 * qnoise[r * d + c];
  }
  const res = searchSync(queries, gallery, { k: 20, metric: 'l2', dim: d });
  assertSearch(referenceSearch(queries, gallery, d, 'l2'), res, 20, 'l2 near-duplicates');
});

Random.run();

// ---------------------------------------------------------------------------------------------
const Ties = suite('planted ties and k = N');

function tiedGallery(): { gallery: Float32Array; queries: Float32Array; d: number } {
  const d = 64;
  const gallery = gaussianMatrix(1000, d, 500);
  copyRow(gallery, d, 10, 500);
  copyRow(gallery, d, 10, 990);
  copyRow(gallery, d, 20, 21);
  copyRow(gallery, d, 20, 400);
  const queries = new Float32Array(5 * d);
  queries.set(gallery.subarray(990 * d, 991 * d), 0);
  queries.set(gallery.subarray(400 * d, 401 * d), d);
  queries.set(gaussianMatrix(3, d, 501), 2 * d);
  return { gallery, queries, d };
}

for (const metric of METRICS) {
  Ties(`${metric}: duplicate rows come out lower index first (k = 10 and k = N)`, () => {
    const { gallery, queries, d } = tiedGallery();
    const ref = referenceSearch(queries, gallery, d, metric);
    for (const k of [10, 1000]) {
      const res = searchSync(queries, gallery, { k, metric, dim: d });
      assertSearch(ref, res, k, `planted ties k=${k}`);
      assert.equal(Array.from(res.indices.subarray(0, 3)), [10, 500, 990], 'query = row 990 (copy of 10)');
      assert.equal(Array.from(res.indices.subarray(k, k + 3)), [20, 21, 400], 'query = row 400 (copy of 20)');
      assert.is(res.scores[0], res.scores[1]);
      assert.is(res.scores[1], res.scores[2]);
    }
  });
}

Ties('a tie group cut by k keeps the lowest indices', () => {
  const { gallery, queries, d } = tiedGallery();
  for (const metric of METRICS) {
    const r1 = searchSync(queries, gallery, { k: 1, metric, dim: d });
    assert.is(r1.indices[0], 10, `${metric} k=1 query 0`);
    assert.is(r1.indices[1], 20, `${metric} k=1 query 1`);
    const r2 = searchSync(queries, gallery, { k: 2, metric, dim: d });
    assert.equal(Array.from(r2.indices), [10, 500, 20, 21, ...Array.from(r2.indices.subarray(4))], `${metric} k=2`);
  }
});

Ties('identical rows everywhere: indices are 0..k-1 for every metric', () => {
  const d = 13;
  const row = gaussianMatrix(1, d, 3);
  const gallery = new Float32Array(300 * d);
  for (let r = 0; r < 300; r++) gallery.set(row, r * d);
  const queries = gaussianMatrix(3, d, 4);
  for (const metric of METRICS) {
    for (const k of [1, 10, 100, 300]) {
      const res = searchSync(queries, gallery, { k, metric, dim: d });
      for (let q = 0; q < 3; q++) {
        const got = Array.from(res.indices.subarray(q * k, (q + 1) * k));
        assert.equal(got, Array.from({ length: k }, (_, i) => i), `${metric} k=${k} query ${q}`);
        for (let p = 1; p < k; p++) assert.is(res.scores[q * k + p], res.scores[q * k], `${metric} equal scores`);
      }
    }
  }
});

Ties('k = N returns a permutation of the gallery for every metric', () => {
  const d = 16;
  const n = 257;
  const queries = gaussianMatrix(4, d, 11);
  const gallery = gaussianMatrix(n, d, 12);
  for (const metric of METRICS) {
    const res = searchSync(queries, gallery, { k: n, metric, dim: d });
    assert.is(res.k, n);
    for (let q = 0; q < 4; q++) {
      assert.ok(isPermutation(res.indices.subarray(q * n, (q + 1) * n), n), `${metric} query ${q}`);
    }
    assertSearch(referenceSearch(queries, gallery, d, metric), res, n, 'k = N');
  }
});

Ties('clamp: true turns k > N into k = N (sync and async)', async () => {
  const d = 5;
  const queries = gaussianMatrix(3, d, 21);
  const gallery = gaussianMatrix(7, d, 22);
  for (const metric of METRICS) {
    const res = searchSync(queries, gallery, { k: 10, metric, dim: d, clamp: true });
    assert.is(res.k, 7, `${metric} k`);
    assert.is(res.count, 3);
    assert.is(res.indices.length, 21);
    for (let q = 0; q < 3; q++) assert.ok(isPermutation(res.indices.subarray(q * 7, q * 7 + 7), 7));
    assertSearch(referenceSearch(queries, gallery, d, metric), res, 7, 'clamp');
    const ares = await search(queries, gallery, { k: 1000, metric, dim: d, clamp: true });
    assertSameResult(ares, res, `${metric} async clamp`);
  }
  const small = searchSync(queries, gallery, { k: 3, dim: d, clamp: true });
  assert.is(small.k, 3, 'clamp leaves k <= N alone');
});

Ties.run();

// ---------------------------------------------------------------------------------------------
const Inputs = suite('input forms, views, non-mutation');

Inputs('Float32Array + dim, {data, rows, cols}, {data, dims} and mixes give identical results', () => {
  const d = 24;
  const queries = gaussianMatrix(5, d, 31);
  const gallery = gaussianMatrix(300, d, 32);
  for (const metric of METRICS) {
    const base = searchSync(queries, gallery, { k: 10, metric, dim: d });
    assertSearch(referenceSearch(queries, gallery, d, metric), base, 10, 'plain arrays');
    const forms: Array<[string, any, any]> = [
      ['rows/cols', { data: queries, rows: 5, cols: d }, { data: gallery, rows: 300, cols: d }],
      ['dims', { data: queries, dims: [5, d] }, { data: gallery, dims: [300, d] }],
      ['frozen dims', { data: queries, dims: Object.freeze([5, d]) }, { data: gallery, dims: Object.freeze([300, d]) }],
      ['dims + plain', { data: queries, dims: [5, d] }, gallery],
      ['plain + rows/cols', queries, { data: gallery, rows: 300, cols: d }],
      ['rows/cols + dims', { data: queries, rows: 5, cols: d }, { data: gallery, dims: [300, d] }],
    ];
    for (const [name, q, g] of forms) {
      const opts: any = { k: 10, metric };
      if (q instanceof Float32Array || g instanceof Float32Array) opts.dim = d;
      assertSameResult(searchSync(q, g, opts), base, `${metric} ${name}`);
    }
  }
});

Inputs('views with byteOffset are honoured and nothing is read outside them', async () => {
  const d = 19;
  const q = 6;
  const n = 211;
  const queries = gaussianMatrix(q, d, 41);
  const gallery = gaussianMatrix(n, d, 42);
  // One buffer, NaN everywhere outside the two views: reading past a view would hit a NaN.
  const big = new Float32Array(3 + q * d + 1001 + n * d + 5).fill(NaN);
  big.set(queries, 3);
  big.set(gallery, 3 + q * d + 1001);
  const qView = big.subarray(3, 3 + q * d);
  const gView = new Float32Array(big.buffer, (3 + q * d + 1001) * 4, n * d);
  assert.is(qView.byteOffset, 12);
  const before = Buffer.from(bytesOf(big));
  for (const metric of METRICS) {
    const expected = searchSync(queries, gallery, { k: 17, metric, dim: d });
    assertSameResult(searchSync(qView, gView, { k: 17, metric, dim: d }), expected, `${metric} plain views`);
    assertSameResult(
      searchSync({ data: qView, rows: q, cols: d }, { data: gView, dims: [n, d] }, { k: 17, metric }),
      expected,
      `${metric} object views`,
    );
    assertSameResult(await search(qView, gView, { k: 17, metric, dim: d }), expected, `${metric} async views`);
    // Single-query view in the middle of the buffer.
    const one = big.subarray(3 + 2 * d, 3 + 3 * d);
    const oneExpected = searchSync(queries.slice(2 * d, 3 * d), gallery, { k: 5, metric, dim: d });
    assertSameResult(searchSync(one, gView, { k: 5, metric, dim: d }), oneExpected, `${metric} one-row view`);
  }
  assert.ok(bytesOf(big).equals(before), 'the shared buffer (views and padding) is unchanged');
});

Inputs('inputs are not mutated by any metric, sync or async', async () => {
  const d = 33;
  const queries = gaussianMatrix(9, d, 51);
  const gallery = gaussianMatrix(500, d, 52);
  gallery.fill(0, 7 * d, 8 * d); // a zero row: cosine must not normalise in place
  const qCopy = queries.slice();
  const gCopy = gallery.slice();
  for (const metric of METRICS) {
    searchSync(queries, gallery, { k: 20, metric, dim: d });
    await search(queries, gallery, { k: 20, metric, dim: d });
    await search({ data: queries, rows: 9, cols: d }, { data: gallery, dims: [500, d] }, { k: 500, metric });
    assert.ok(bytesOf(queries).equals(bytesOf(qCopy)), `${metric}: queries unchanged`);
    assert.ok(bytesOf(gallery).equals(bytesOf(gCopy)), `${metric}: gallery unchanged`);
  }
});

Inputs('results are fresh arrays owned by the caller', () => {
  const queries = gaussianMatrix(2, 8, 61);
  const gallery = gaussianMatrix(50, 8, 62);
  const a = searchSync(queries, gallery, { k: 4, dim: 8 });
  const b = searchSync(queries, gallery, { k: 4, dim: 8 });
  assert.ok(a.indices.buffer !== b.indices.buffer, 'indices buffers are distinct');
  assert.ok(a.scores.buffer !== b.scores.buffer, 'scores buffers are distinct');
  assert.is(a.indices.byteLength, 2 * 4 * 4);
  const saved = Array.from(b.indices);
  a.indices.fill(-1);
  a.scores.fill(0);
  assert.equal(Array.from(b.indices), saved, 'writing one result leaves another alone');
});

Inputs.run();

// ---------------------------------------------------------------------------------------------
const Cosine = suite('cosine with zero vectors');

Cosine('a zero query scores 0 against every row: indices 0..k-1', () => {
  const d = 8;
  const queries = gaussianMatrix(3, d, 71);
  queries.fill(0, d, 2 * d);
  const gallery = gaussianMatrix(50, d, 72);
  const res = searchSync(queries, gallery, { k: 10, metric: 'cosine', dim: d });
  assert.equal(Array.from(res.indices.subarray(10, 20)), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  for (let p = 10; p < 20; p++) assert.is(res.scores[p], 0, `score ${p}`);
  assertSearch(referenceSearch(queries, gallery, d, 'cosine'), res, 10, 'zero query');
});

Cosine('zero gallery rows score exactly 0 and tie in index order', () => {
  const d = 8;
  const n = 60;
  const queries = gaussianMatrix(4, d, 73);
  const gallery = gaussianMatrix(n, d, 74);
  gallery.fill(0, 3 * d, 4 * d);
  gallery.fill(0, 17 * d, 18 * d);
  const res = searchSync(queries, gallery, { k: n, metric: 'cosine', dim: d });
  for (let q = 0; q < 4; q++) {
    const row = Array.from(res.indices.subarray(q * n, (q + 1) * n));
    const p3 = row.indexOf(3);
    const p17 = row.indexOf(17);
    assert.is(res.scores[q * n + p3], 0, `query ${q}: row 3`);
    assert.is(res.scores[q * n + p17], 0, `query ${q}: row 17`);
    assert.ok(p3 < p17, `query ${q}: row 3 before row 17`);
  }
  assertSearch(referenceSearch(queries, gallery, d, 'cosine'), res, n, 'zero rows');
});

Cosine('all-zero queries and gallery: every score 0, indices in order', () => {
  const res = searchSync(new Float32Array(2 * 4), new Float32Array(9 * 4), { k: 9, metric: 'cosine', dim: 4 });
  assert.equal(Array.from(res.indices), [0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.ok(res.scores.every((s) => s === 0));
});

Cosine.run();

// ---------------------------------------------------------------------------------------------
const Same = suite('identical results: async, threads, batching');

const SHAPES: Array<[number, number, number, number]> = [
  // [Q, N, D, k]
  [33, 1000, 100, 10],
  [33, 1000, 100, 1000],
  [1, 4097, 768, 10],
  [1, 4097, 64, 100],
  [33, 4097, 512, 10],
];

for (const metric of METRICS) {
  Same(`${metric}: search (async) === searchSync bit for bit`, async () => {
    for (const [q, n, d, k] of SHAPES) {
      const queries = gaussianMatrix(q, d, 100 + n);
      const gallery = gaussianMatrix(n, d, 200 + n);
      const s = searchSync(queries, gallery, { k, metric, dim: d });
      const a = await search(queries, gallery, { k, metric, dim: d });
      assertSameResult(a, s, `Q=${q} N=${n} D=${d} k=${k}`);
    }
  });

  Same(`${metric}: threads = 1, 2, 3, 7 and default agree bit for bit`, async () => {
    for (const [q, n, d, k] of SHAPES) {
      const queries = gaussianMatrix(q, d, 300 + n);
      const gallery = gaussianMatrix(n, d, 400 + n);
      const base = searchSync(queries, gallery, { k, metric, dim: d });
      for (const threads of [1, 2, 3, 7]) {
        assertSameResult(searchSync(queries, gallery, { k, metric, dim: d, threads }), base, `sync threads=${threads} Q=${q} N=${n} k=${k}`);
      }
      assertSameResult(await search(queries, gallery, { k, metric, dim: d, threads: 3 }), base, `async threads=3 Q=${q} N=${n} k=${k}`);
    }
  });

  Same(`${metric}: one query at a time and uneven batches equal one batch`, async () => {
    const d = 96;
    const q = 33;
    const queries = gaussianMatrix(q, d, 500);
    const gallery = gaussianMatrix(4097, d, 501);
    for (const k of [1, 10, 300]) {
      const all = searchSync(queries, gallery, { k, metric, dim: d });
      const single = [];
      for (let i = 0; i < q; i++) single.push(searchSync(queries.subarray(i * d, (i + 1) * d), gallery, { k, metric, dim: d }));
      assertSameResult(concatResults(single), all, `k=${k} one at a time`);
      const parts = await Promise.all([
        search(queries.subarray(0, 7 * d), gallery, { k, metric, dim: d }),
        search(queries.subarray(7 * d), gallery, { k, metric, dim: d }),
      ]);
      assertSameResult(concatResults(parts), all, `k=${k} batches of 7 + 26`);
    }
  });
}

Same.run();
