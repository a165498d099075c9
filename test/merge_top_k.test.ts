// mergeTopK / mergeTopKSync (test/merge_top_k.test.ts): per-shard searches merged with offsets equal
// one search over the whole gallery (ids, and scores bit for bit) in every metric, ties across
// shards in shard order, short and filtered partials (counts) and padding, BigInt64 / Float64 ids
// kept exact, sync === async, AbortSignal, and every bad input with its code and a named message.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { binding, mergeTopK, mergeTopKSync, searchSync, VlkError } from './helpers/lib';
import type { MergeTopKResult, SearchOptions, SearchResult, TopKPartial } from './helpers/lib';
import { gaussianMatrix, rng } from './helpers/random';

type Metric = 'ip' | 'cosine' | 'l2';
const METRICS: Metric[] = ['ip', 'cosine', 'l2'];

/** Gallery rows [start, end) of an N x d matrix as a zero-copy view. */
function shardView(g: Float32Array, d: number, start: number, end: number) {
  return { data: g.subarray(start * d, end * d), rows: end - start, cols: d };
}

/** Searches each shard [starts[s], starts[s + 1]) and returns its result with offset = its start. */
function searchShards(
  q: Float32Array,
  g: Float32Array,
  d: number,
  starts: number[],
  options: (s: number, start: number, end: number) => SearchOptions,
): Array<SearchResult & { offset: number }> {
  const out: Array<SearchResult & { offset: number }> = [];
  for (let s = 0; s + 1 < starts.length; s++) {
    const [start, end] = [starts[s], starts[s + 1]];
    const r = searchSync({ data: q, rows: q.length / d, cols: d }, shardView(g, d, start, end), options(s, start, end));
    out.push({ ...r, offset: start });
  }
  return out;
}

/** Merged result equals a whole-gallery search: ids as numbers, scores with Object.is, counts. */
function assertSameAsSearch(merged: MergeTopKResult, whole: SearchResult, what: string): void {
  assert.is(merged.k, whole.k, `${what}: k`);
  assert.is(merged.count, whole.count, `${what}: count`);
  assert.instance(merged.ids, Float64Array, `${what}: ids are a Float64Array`);
  assert.is(merged.ids.length, whole.indices.length, `${what}: ids length`);
  for (let i = 0; i < whole.indices.length; i++) {
    const q = Math.floor(i / whole.k);
    const j = i % whole.k;
    if (merged.ids[i] !== whole.indices[i] || !Object.is(merged.scores[i], whole.scores[i])) {
      assert.unreachable(
        `${what}: query ${q} rank ${j}: merged (${merged.ids[i]}, ${merged.scores[i]}) vs search ` +
          `(${whole.indices[i]}, ${whole.scores[i]})`,
      );
    }
  }
  assert.equal(Array.from(merged.counts), Array.from(whole.counts), `${what}: counts`);
}

function bits(a: Float32Array): number[] {
  return Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
}

// ---------------------------------------------------------------------------------------------
const Exact = suite('merge of per-shard searches equals one search');

const N = 1000;
const D = 32;
const Q = 20;
const STARTS = [0, 137, 601, N]; // three uneven shards

for (const metric of METRICS) {
  Exact(`${metric}: N=${N} D=${D} Q=${Q} in shards of 137, 464, 399 rows, k = 10`, async () => {
    const g = gaussianMatrix(N, D, 1);
    const q = gaussianMatrix(Q, D, 2);
    const whole = searchSync(q, g, { k: 10, dim: D, metric });
    const parts = searchShards(q, g, D, STARTS, () => ({ k: 10, metric }));
    const merged = mergeTopKSync(parts, { k: 10, metric });
    assertSameAsSearch(merged, whole, `${metric} sync`);
    assertSameAsSearch(await mergeTopK(parts, { k: 10, metric }), whole, `${metric} async`);
    // The merged order is the metric's: l2 ascending, ip / cosine descending.
    for (let i = 0; i < Q; i++) {
      const row = Array.from(merged.scores.subarray(i * 10, i * 10 + 10));
      const sorted = [...row].sort((a, b) => (metric === 'l2' ? a - b : b - a));
      assert.equal(row, sorted, `query ${i} sorted for ${metric}`);
    }
    // Shards given out of order (offsets still global) change nothing without ties.
    const shuffled = mergeTopKSync([parts[2], parts[0], parts[1]], { k: 10, metric });
    assertSameAsSearch(shuffled, whole, `${metric} shards out of order`);
    // A smaller merged k is the first k of the search.
    assertSameAsSearch(mergeTopKSync(parts, { k: 3, metric }), searchSync(q, g, { k: 3, dim: D, metric }), `${metric} k = 3`);
  });
}

Exact('the wrong metric gives a different order (the metric is not ignored)', () => {
  const g = gaussianMatrix(N, D, 1);
  const q = gaussianMatrix(Q, D, 2);
  const parts = searchShards(q, g, D, STARTS, () => ({ k: 10, metric: 'l2' }));
  const wrong = mergeTopKSync(parts, { k: 10, metric: 'ip' });
  const whole = searchSync(q, g, { k: 10, dim: D, metric: 'l2' });
  assert.not.equal(Array.from(wrong.ids), Array.from(whole.indices, Number));
});

// ---------------------------------------------------------------------------------------------
const Ties = suite('ties');

Ties('identical rows in shard 0 and shard 2 come out in shard order, as one search gives', () => {
  const d = 8;
  const g = gaussianMatrix(60, d, 3);
  // Row 5 (shard 0) copied to rows 47 and 52 (shard 2) and row 9 (shard 0); row 30 (shard 1) to 41.
  // Both are scaled up so that they are the best match of their own copy in ip as well.
  for (let c = 0; c < d; c++) {
    g[5 * d + c] *= 10;
    g[30 * d + c] *= 10;
  }
  for (const to of [47, 52, 9]) g.copyWithin(to * d, 5 * d, 6 * d);
  g.copyWithin(41 * d, 30 * d, 31 * d);
  // Queries near (not at) the planted rows, so the tie order, not distance 0, is what is tested.
  const q = new Float32Array(3 * d);
  q.set(g.subarray(5 * d, 6 * d), 0);
  q.set(g.subarray(30 * d, 31 * d), d);
  q.set(g.subarray(52 * d, 53 * d), 2 * d);
  for (let i = 0; i < q.length; i++) q[i] += 0.25 * ((i % 3) - 1);
  const starts = [0, 20, 40, 60];
  for (const metric of METRICS) {
    const whole = searchSync(q, g, { k: 6, dim: d, metric });
    assert.equal(Array.from(whole.indices.subarray(0, 4)), [5, 9, 47, 52], `${metric}: search's own tie order`);
    assert.equal(Array.from(whole.indices.subarray(6, 8)), [30, 41], `${metric}: query 1 ties`);
    const parts = searchShards(q, g, d, starts, () => ({ k: 6, metric }));
    assertSameAsSearch(mergeTopKSync(parts, { k: 6, metric }), whole, `${metric} ties`);
  }
});

// A gallery row equal to the query: search and merge both report distance +0 (never -0).
Ties('zero l2 distance: merged score bits equal one search (+0, never -0)', () => {
  const d = 4;
  const g = gaussianMatrix(10, d, 13);
  const q = g.slice(7 * d, 8 * d); // row 7 itself: distance 0
  const whole = searchSync(q, g, { k: 3, dim: d, metric: 'l2' });
  const parts = searchShards(q, g, d, [0, 5, 10], () => ({ k: 3, metric: 'l2' }));
  assertSameAsSearch(mergeTopKSync(parts, { k: 3, metric: 'l2' }), whole, 'l2 distance 0');
});

Ties('ties go by partial order first, then by id', () => {
  const scores = Float32Array.from([0.5, 0.5, 0.25]);
  // Partial 0 holds the larger ids (offset 100), given in descending order within its row.
  const a = { indices: Int32Array.from([7, 3, 1]), scores, k: 3, count: 1, offset: 100 } satisfies TopKPartial;
  const b = { indices: Int32Array.from([2, 0, 5]), scores: scores.slice(), k: 3, count: 1 } satisfies TopKPartial;
  const r = mergeTopKSync([a, b], { k: 6 });
  assert.equal(Array.from(r.ids), [103, 107, 0, 2, 101, 5]);
  const swapped = mergeTopKSync([b, a], { k: 6 });
  assert.equal(Array.from(swapped.ids), [0, 2, 103, 107, 5, 101]);
  const l2 = mergeTopKSync([a, b], { k: 2, metric: 'l2' });
  assert.equal(Array.from(l2.ids), [101, 5]);
});

// ---------------------------------------------------------------------------------------------
const Short = suite('short and filtered partials');

Short('shards smaller than k (clamped searches, different k per partial)', () => {
  const d = 6;
  const g = gaussianMatrix(25, d, 4);
  const q = gaussianMatrix(7, d, 5);
  const starts = [0, 4, 12, 25]; // 4, 8 and 13 rows
  for (const metric of METRICS) {
    const parts = searchShards(q, g, d, starts, () => ({ k: 10, metric, clamp: true }));
    assert.equal(parts.map((p) => p.k), [4, 8, 10]);
    assertSameAsSearch(mergeTopKSync(parts, { k: 10, metric }), searchSync(q, g, { k: 10, dim: d, metric }), `${metric}`);
    // Every shard searched in full (k = 4, 8, 13): any merged k up to N is the whole search's.
    const all = searchShards(q, g, d, starts, () => ({ k: 25, metric, clamp: true }));
    assert.equal(all.map((p) => p.k), [4, 8, 13]);
    for (const k of [1, 12, 25]) {
      assertSameAsSearch(mergeTopKSync(all, { k, metric }), searchSync(q, g, { k, dim: d, metric }), `${metric} k = ${k}`);
    }
  }
});

Short('filtered searches (allow, exclude): counts < k respected, padding and counts match one search', () => {
  const d = 8;
  const n = 90;
  const q = 12;
  const g = gaussianMatrix(n, d, 6);
  const qm = gaussianMatrix(q, d, 7);
  const r = rng(8);
  const allow = new Uint8Array(n);
  for (let i = 0; i < n; i++) allow[i] = r() < 0.5 ? 1 : 0;
  allow.fill(0, 30, 60); // shard 1 has no allowed row at all
  allow.fill(0, 60, 86); // shard 2 has at most 4
  allow.fill(1, 86, 90);
  const exclude = new Int32Array(q);
  for (let i = 0; i < q; i++) exclude[i] = i % 2 === 0 ? 86 + (i % 4) : Math.floor(r() * 30);
  const starts = [0, 30, 60, 90];
  const localExclude = (start: number, end: number) =>
    exclude.map((row) => (row >= start && row < end ? row - start : -1));
  for (const metric of METRICS) {
    for (const k of [5, 12, 40]) {
      const parts = searchShards(qm, g, d, starts, (_s, start, end) => ({
        k: Math.min(k, end - start),
        metric,
        allow: allow.subarray(start, end),
        exclude: localExclude(start, end),
      }));
      const shortRows = parts.reduce((s, p) => s + p.counts.filter((c) => c < p.k).length, 0);
      assert.ok(shortRows > 0, 'some partial rows are short');
      assert.ok(parts[1].counts.every((c) => c === 0), 'shard 1: nothing allowed');
      // Entries past counts are padding (-1, NaN); make them garbage to prove they are never read.
      for (const p of parts) {
        for (let i = 0; i < q; i++) {
          for (let j = p.counts[i]; j < p.k; j++) {
            p.indices[i * p.k + j] = 1e9;
            p.scores[i * p.k + j] = -Infinity;
          }
        }
      }
      const whole = searchSync(qm, g, { k, dim: d, metric, allow, exclude });
      const merged = mergeTopKSync(parts, { k, metric });
      assertSameAsSearch(merged, whole, `${metric} k = ${k}`);
      if (k === 40) {
        assert.ok(merged.counts.every((c) => c < 40), 'k = 40: every row padded');
        for (let i = 0; i < q; i++) {
          for (let j = merged.counts[i]; j < k; j++) {
            assert.is(merged.ids[i * k + j], -1, 'padding id');
            assert.ok(Number.isNaN(merged.scores[i * k + j]), 'padding score');
          }
        }
      }
    }
  }
});

Short('k larger than the valid entries pads with -1 / NaN; k = 1', () => {
  const a = {
    indices: Int32Array.from([4, 9, 1, 2]),
    scores: Float32Array.from([3, 1, 2, 0]),
    k: 2,
    count: 2,
    counts: Int32Array.from([2, 1]),
  } satisfies TopKPartial;
  const b = { indices: Int32Array.from([0, 5]), scores: Float32Array.from([2, 7]), k: 1, count: 2, offset: 10 } satisfies TopKPartial;
  const r = mergeTopKSync([a, b], { k: 4 });
  assert.equal(Array.from(r.counts), [3, 2]);
  assert.equal(Array.from(r.ids), [4, 10, 9, -1, 15, 1, -1, -1]);
  assert.equal(Array.from(r.scores.subarray(0, 3)), [3, 2, 1]);
  assert.equal(Array.from(r.scores.subarray(4, 6)), [7, 2]);
  for (const p of [3, 6, 7]) assert.ok(Number.isNaN(r.scores[p]), `padding score at ${p}`);
  assert.is(r.k, 4);
  assert.is(r.count, 2);

  const one = mergeTopKSync([a, b], { k: 1 });
  assert.equal(Array.from(one.ids), [4, 15]);
  assert.equal(Array.from(one.scores), [3, 7]);
  assert.equal(Array.from(one.counts), [1, 1]);
  const oneL2 = mergeTopKSync([a, b], { k: 1, metric: 'l2' });
  assert.equal(Array.from(oneL2.ids), [9, 1]);

  // A partial with k = 0 or every count 0 contributes nothing; no valid entry at all pads fully.
  const empty = { indices: new Int32Array(0), scores: new Float32Array(0), k: 0, count: 2 } satisfies TopKPartial;
  const none = { ...a, counts: new Int32Array(2) } satisfies TopKPartial;
  const r2 = mergeTopKSync([empty, none], { k: 2 });
  assert.equal(Array.from(r2.ids), [-1, -1, -1, -1]);
  assert.equal(Array.from(r2.counts), [0, 0]);
  assert.ok(r2.scores.every(Number.isNaN));
  // A single partial merges to itself.
  assert.equal(Array.from(mergeTopKSync([a], { k: 2 }).ids), [4, 9, 1, -1]);
});

// ---------------------------------------------------------------------------------------------
const Ids = suite('id types');

Ids('BigInt64Array ids in -> BigInt64Array out, ids beyond 2^32 (and 2^53) exact', async () => {
  const big = 2n ** 40n;
  const a: TopKPartial = {
    indices: BigInt64Array.from([big + 1n, 2n ** 62n + 7n, big + 3n, -5n]),
    scores: Float32Array.from([0.9, 0.1, 0.8, 0.2]),
    k: 2,
    count: 2,
  };
  const b: TopKPartial = { indices: Int32Array.from([3, 4, 5, 6]), scores: Float32Array.from([0.5, 0.4, 0.95, 0.3]), k: 2, count: 2, offset: 2 ** 33 };
  for (const r of [mergeTopKSync([a, b], { k: 3 }), await mergeTopK([a, b], { k: 3 })]) {
    assert.instance(r.ids, BigInt64Array);
    assert.equal(Array.from(r.ids as BigInt64Array), [big + 1n, 2n ** 33n + 3n, 2n ** 33n + 4n, 2n ** 33n + 5n, big + 3n, 2n ** 33n + 6n]);
  }
  // Padding is -1n; an offset on a BigInt64Array partial is added exactly.
  const r = mergeTopKSync([{ ...a, offset: -(2 ** 53) }], { k: 3 });
  assert.equal(Array.from(r.ids as BigInt64Array), [big + 1n - 2n ** 53n, 2n ** 62n + 7n - 2n ** 53n, -1n, big + 3n - 2n ** 53n, -5n - 2n ** 53n, -1n]);
});

Ids('Float64Array ids in -> Float64Array out, exact up to 2^53; Int32Array + offset beyond 2^32', () => {
  const a = {
    indices: Float64Array.from([2 ** 53 - 1, 2 ** 40 + 1, -(2 ** 52), 7]),
    scores: Float32Array.from([1, 0.5, 0.75, 0.25]),
    k: 2,
    count: 2,
  } satisfies TopKPartial;
  const b = { indices: Int32Array.from([1, 2]), scores: Float32Array.from([0.6, 0.8]), k: 1, count: 2, offset: 2 ** 35 } satisfies TopKPartial;
  const r = mergeTopKSync([a, b], { k: 2 });
  assert.instance(r.ids, Float64Array);
  assert.equal(Array.from(r.ids), [2 ** 53 - 1, 2 ** 35 + 1, 2 ** 35 + 2, -(2 ** 52)]);
  const ints = mergeTopKSync([b, b], { k: 2 });
  assert.instance(ints.ids, Float64Array, 'Int32Array ids give a Float64Array');
  // A search result's Int32Array indices, offset beyond int32, stay exact.
  assert.equal(Array.from(ints.ids), [2 ** 35 + 1, 2 ** 35 + 1, 2 ** 35 + 2, 2 ** 35 + 2]);
});

// ---------------------------------------------------------------------------------------------
const Async = suite('async');

Async('mergeTopK === mergeTopKSync, bit for bit', async () => {
  const g = gaussianMatrix(N, D, 9);
  const q = gaussianMatrix(Q, D, 10);
  for (const metric of METRICS) {
    const parts = searchShards(q, g, D, STARTS, () => ({ k: 10, metric }));
    const s = mergeTopKSync(parts, { k: 12, metric });
    const a = await mergeTopK(parts, { k: 12, metric });
    assert.equal(Array.from(a.ids), Array.from(s.ids), `${metric} ids`);
    assert.equal(bits(a.scores), bits(s.scores), `${metric} score bits`);
    assert.equal(Array.from(a.counts), Array.from(s.counts), `${metric} counts`);
    assert.is(a.k, s.k);
    assert.is(a.count, s.count);
  }
  // Many in flight at once, each settling with its own answer.
  const parts = searchShards(q, g, D, STARTS, () => ({ k: 10 }));
  const ks = Array.from({ length: 40 }, (_, i) => 1 + (i % 25));
  const all = await Promise.all(ks.map((k) => mergeTopK(parts, { k })));
  all.forEach((r, i) => assert.equal(Array.from(r.ids), Array.from(mergeTopKSync(parts, { k: ks[i] }).ids)));
});

Async('an already-aborted signal rejects with AbortError (code ABORT_ERR, cause = reason); a live one does nothing', async () => {
  const parts = searchShards(gaussianMatrix(Q, D, 11), gaussianMatrix(N, D, 12), D, STARTS, () => ({ k: 10 }));
  const ac = new AbortController();
  const reason = new Error('stop');
  ac.abort(reason);
  let p: Promise<unknown>;
  try {
    p = mergeTopK(parts, { k: 10, signal: ac.signal });
  } catch (err) {
    throw new Error(`mergeTopK threw synchronously: ${(err as Error).message}`);
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
  const r = await mergeTopK(parts, { k: 10, signal: live.signal });
  assert.equal(Array.from(r.ids), Array.from(mergeTopKSync(parts, { k: 10 }).ids));
  // mergeTopKSync ignores the signal.
  assert.is(mergeTopKSync(parts, { k: 10, signal: ac.signal }).count, Q);
});

// ---------------------------------------------------------------------------------------------
const Bad = suite('bad input');

const base = () => ({
  indices: Int32Array.from([0, 1, 2, 3, 4, 5]),
  scores: Float32Array.from([3, 2, 1, 6, 5, 4]),
  k: 3,
  count: 2,
}) satisfies TopKPartial;
const withPart = (i: number, over: Record<string, unknown>) => {
  const parts: unknown[] = [base(), base(), base()];
  parts[i] = { ...base(), ...over };
  return parts;
};

// [name, partials, options, code, message patterns]
const BAD: Array<[string, () => unknown, Record<string, unknown> | unknown, string, RegExp[]]> = [
  ['partials not an array', () => base(), { k: 2 }, 'ERR_VLK_TYPE', [/^partials: expected an array/, /an object/]],
  ['partials undefined', () => undefined, { k: 2 }, 'ERR_VLK_TYPE', [/^partials/, /undefined/]],
  ['partials empty', () => [], { k: 2 }, 'ERR_VLK_INVALID_ARG', [/^partials: empty/]],
  ['options missing', () => [base()], undefined, 'ERR_VLK_TYPE', [/^options/]],
  ['a partial is null', () => [base(), null], { k: 2 }, 'ERR_VLK_TYPE', [/partials\[1\]/, /null/]],
  ['a partial is a typed array', () => [new Float32Array(6)], { k: 2 }, 'ERR_VLK_TYPE', [/partials\[0\]/, /Float32Array/]],
  ['scores a Float64Array', () => withPart(2, { scores: new Float64Array(6) }), { k: 2 }, 'ERR_VLK_TYPE', [/partials\[2\]\.scores: expected a Float32Array/, /Float64Array/]],
  ['indices a Uint32Array', () => withPart(1, { indices: new Uint32Array(6) }), { k: 2 }, 'ERR_VLK_TYPE', [/partials\[1\]\.indices/, /Int32Array, a Float64Array or a BigInt64Array/, /Uint32Array/]],
  ['indices a plain array', () => withPart(0, { indices: [0, 1, 2, 3, 4, 5] }), { k: 2 }, 'ERR_VLK_TYPE', [/partials\[0\]\.indices/, /an Array/]],
  ['counts a Uint8Array', () => withPart(2, { counts: new Uint8Array(2) }), { k: 2 }, 'ERR_VLK_TYPE', [/partials\[2\]\.counts/, /Int32Array/]],
  ['indices length != count x k', () => withPart(1, { indices: new Int32Array(5) }), { k: 2 }, 'ERR_VLK_SHAPE', [/partials\[1\]\.indices: length 5/, /2 x 3 = 6/]],
  ['scores length != count x k', () => withPart(2, { scores: new Float32Array(7) }), { k: 2 }, 'ERR_VLK_SHAPE', [/partials\[2\]\.scores: length 7/, /= 6/]],
  ['k does not match the arrays', () => withPart(0, { k: 2 }), { k: 2 }, 'ERR_VLK_SHAPE', [/partials\[0\]\.indices: length 6/, /2 x 2 = 4/]],
  ['partial k negative', () => withPart(1, { k: -1 }), { k: 2 }, 'ERR_VLK_SHAPE', [/partials\[1\]\.k/, /-1/]],
  ['partial count not a number', () => withPart(1, { count: '2' }), { k: 2 }, 'ERR_VLK_SHAPE', [/partials\[1\]\.count/]],
  ['count differs between partials', () => withPart(2, { count: 3, k: 2 }), { k: 2 }, 'ERR_VLK_SHAPE', [/partials\[2\]\.count: 3 differs from partials\[0\]\.count 2/]],
  ['counts length != count', () => withPart(1, { counts: new Int32Array(3) }), { k: 2 }, 'ERR_VLK_SHAPE', [/partials\[1\]\.counts: length 3/, /count \(2\)/]],
  ['counts value above k', () => withPart(2, { counts: Int32Array.from([3, 4]) }), { k: 2 }, 'ERR_VLK_INVALID_ARG', [/partials\[2\]\.counts\[1\]: 4 is outside 0\.\.3/]],
  ['counts value negative', () => withPart(0, { counts: Int32Array.from([-1, 0]) }), { k: 2 }, 'ERR_VLK_INVALID_ARG', [/partials\[0\]\.counts\[0\]: -1 is outside 0\.\.3/]],
  ['k = 0', () => [base()], { k: 0 }, 'ERR_VLK_INVALID_K', [/options\.k: 0/]],
  ['k = 1.5', () => [base()], { k: 1.5 }, 'ERR_VLK_INVALID_K', [/options\.k: 1\.5/]],
  ['k = NaN', () => [base()], { k: NaN }, 'ERR_VLK_INVALID_K', [/options\.k: NaN/]],
  ['k a string', () => [base()], { k: '2' }, 'ERR_VLK_INVALID_K', [/options\.k/, /string/]],
  ['k missing', () => [base()], {}, 'ERR_VLK_INVALID_K', [/options\.k: undefined/]],
  ['k = 2^31', () => [base()], { k: 2 ** 31 }, 'ERR_VLK_INVALID_K', [/options\.k: 2147483648/]],
  ['unknown metric', () => [base()], { k: 2, metric: 'dot' }, 'ERR_VLK_INVALID_ARG', [/options\.metric/, /'dot'/]],
  ['NaN among valid scores', () => withPart(1, { scores: Float32Array.from([3, 2, 1, 6, NaN, 4]) }), { k: 2 }, 'ERR_VLK_NON_FINITE', [/partials\[1\]/, /query 1, rank 1/, /NaN/]],
  ['Infinity among valid scores', () => withPart(0, { scores: Float32Array.from([Infinity, 2, 1, 6, 5, 4]) }), { k: 2 }, 'ERR_VLK_NON_FINITE', [/partials\[0\]/, /Infinity/]],
  ['Float64 id not an integer', () => withPart(2, { indices: Float64Array.from([0, 1, 2, 3, 4.5, 5]) }), { k: 2 }, 'ERR_VLK_INVALID_ARG', [/partials\[2\]\.indices\[4\]: 4\.5 is not an integer/]],
  ['Float64 id beyond 2^53', () => withPart(1, { indices: Float64Array.from([0, 2 ** 53 + 2, 2, 3, 4, 5]) }), { k: 2 }, 'ERR_VLK_INVALID_ARG', [/partials\[1\]\.indices\[1\]: 9007199254740994/, /2\^53/]],
  ['Float64 id NaN', () => withPart(0, { indices: Float64Array.from([0, 1, 2, NaN, 4, 5]) }), { k: 2 }, 'ERR_VLK_INVALID_ARG', [/partials\[0\]\.indices\[3\]: NaN/]],
  ['id + offset beyond 2^53 (Float64Array output)', () => withPart(1, { indices: Float64Array.from([0, 1, 2 ** 53, 3, 4, 5]), offset: 1 }), { k: 2 }, 'ERR_VLK_INVALID_ARG', [/partials\[1\]\.indices\[2\] \+ offset/, /2\^53/, /BigInt64Array/]],
  ['BigInt id + offset overflows int64', () => withPart(0, { indices: BigInt64Array.from([0n, 2n ** 63n - 1n, 2n, 3n, 4n, 5n]), offset: 1 }), { k: 2 }, 'ERR_VLK_INVALID_ARG', [/partials\[0\]\.indices\[1\] \+ offset/, /overflows/]],
  ['offset not an integer', () => withPart(2, { offset: 0.5 }), { k: 2 }, 'ERR_VLK_INVALID_ARG', [/partials\[2\]\.offset: 0\.5/]],
  ['offset beyond 2^53', () => withPart(1, { offset: 2 ** 54 }), { k: 2 }, 'ERR_VLK_INVALID_ARG', [/partials\[1\]\.offset/, /2\^53/]],
  ['offset a bigint', () => withPart(1, { offset: 5n }), { k: 2 }, 'ERR_VLK_INVALID_ARG', [/partials\[1\]\.offset/, /bigint/]],
];

for (const [name, make, options, code, patterns] of BAD) {
  Bad(`${name}: ${code}`, async () => {
    try {
      mergeTopKSync(make() as never, options as never);
      assert.unreachable('mergeTopKSync should throw');
    } catch (err) {
      assert.instance(err, VlkError, `${name}: a VlkError`);
      assert.is((err as VlkError).code, code, `${name}: code (${(err as Error).message})`);
      for (const re of patterns) assert.match((err as Error).message, re, `${name}: message`);
    }
    let p: Promise<unknown>;
    try {
      p = mergeTopK(make() as never, options as never);
    } catch (err) {
      throw new Error(`mergeTopK threw synchronously: ${(err as Error).message}`);
    }
    const err = await p.then(
      () => assert.unreachable('mergeTopK should reject'),
      (e) => e,
    );
    assert.instance(err, VlkError);
    assert.is((err as VlkError).code, code);
    assert.is((err as Error).message, (() => {
      try {
        mergeTopKSync(make() as never, options as never);
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    })(), 'same message sync and async');
  });
}

Bad('a bad signal is ERR_VLK_INVALID_ARG (async only)', async () => {
  const err: any = await mergeTopK([base()], { k: 2, signal: {} as never }).then(
    () => assert.unreachable('should reject'),
    (e) => e,
  );
  assert.is(err.code, 'ERR_VLK_INVALID_ARG');
  assert.match(err.message, /options\.signal/);
});

Bad('NaN / Infinity past counts is ignored', () => {
  const r = mergeTopKSync(
    [{ ...base(), scores: Float32Array.from([3, NaN, Infinity, 6, 5, NaN]), counts: Int32Array.from([1, 2]) }],
    { k: 3 },
  );
  assert.equal(Array.from(r.ids), [0, -1, -1, 3, 4, -1]);
});

// The binding re-checks what lib checks (memory safety when called directly).
const NATIVE: Array<[string, unknown, unknown, string]> = [
  ['partials not an array', base(), { k: 2, metric: 'ip' }, 'ERR_VLK_TYPE'],
  ['partials empty', [], { k: 2, metric: 'ip' }, 'ERR_VLK_INVALID_ARG'],
  ['options null', [base()], null, 'ERR_VLK_TYPE'],
  ['indices too short', [{ ...base(), indices: new Int32Array(2) }], { k: 2, metric: 'ip' }, 'ERR_VLK_SHAPE'],
  ['scores too short', [{ ...base(), scores: new Float32Array(2) }], { k: 2, metric: 'ip' }, 'ERR_VLK_SHAPE'],
  ['scores a Float64Array', [{ ...base(), scores: new Float64Array(6) }], { k: 2, metric: 'ip' }, 'ERR_VLK_TYPE'],
  ['counts too short', [{ ...base(), counts: new Int32Array(1) }], { k: 2, metric: 'ip' }, 'ERR_VLK_SHAPE'],
  ['count mismatch', [base(), { ...base(), count: 1, k: 6 }], { k: 2, metric: 'ip' }, 'ERR_VLK_SHAPE'],
  ['huge k x count', [{ ...base(), k: 2 ** 40, count: 2 ** 20 }], { k: 2, metric: 'ip' }, 'ERR_VLK_SHAPE'],
  ['k = 0', [base()], { k: 0, metric: 'ip' }, 'ERR_VLK_INVALID_K'],
  ['metric unknown', [base()], { k: 2, metric: 'dot' }, 'ERR_VLK_INVALID_ARG'],
  ['offset NaN', [{ ...base(), offset: NaN }], { k: 2, metric: 'ip' }, 'ERR_VLK_INVALID_ARG'],
];

for (const [name, partials, options, code] of NATIVE) {
  Bad(`binding.mergeTopKSync / mergeTopKAsync: ${name}: ${code}`, async () => {
    try {
      binding.mergeTopKSync(partials, options);
      assert.unreachable('should throw');
    } catch (err) {
      assert.is((err as { code?: string }).code, code, (err as Error).message);
    }
    const err: any = await binding.mergeTopKAsync(partials, options).then(
      () => assert.unreachable('should reject'),
      (e) => e,
    );
    assert.is(err.code, code, err.message);
  });
}

Bad('binding.mergeTopKAsync rejects a token that is not from createCancelToken()', async () => {
  const err: any = await binding.mergeTopKAsync([base()], { k: 2, metric: 'ip' }, {} as never).then(
    () => assert.unreachable('should reject'),
    (e) => e,
  );
  assert.is(err.code, 'ERR_VLK_INVALID_ARG');
  assert.match(err.message, /token/);
});

Exact.run();
Ties.run();
Short.run();
Ids.run();
Async.run();
Bad.run();
