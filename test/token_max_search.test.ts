// Token-max search (test/token_max_search.test.ts): every item's score is the best of its tokens'
// (the same fp32 scores search gives those rows, bit for bit), items ordered by score then lower
// index, exclusion and allow-sets by item, awkward sizes (1 item, 1 token, k = N, many tokens),
// duplicated items (ties), every metric, sync and async, the 3-D tensor form; against a reference
// built from a full searchSync over the token rows, and a float64 check.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { searchSync, tokenMaxSearch, tokenMaxSearchSync, VlkError } from './helpers/lib';
import type { SearchResult } from './helpers/lib';
import { gaussianMatrix, rng } from './helpers/random';

type Metric = 'ip' | 'cosine' | 'l2';

// Reference: a full search over every token row (all N*K rows sorted), then per item its best
// row's score (the first row of the item in that order), items by (score, index).
function reference(
  q: Float32Array,
  g: Float32Array,
  d: number,
  items: number,
  tokens: number,
  k: number,
  metric: Metric,
  ok: (query: number, item: number) => boolean,
): { indices: number[][]; scores: number[][] } {
  const nq = q.length / d;
  const rows = items * tokens;
  const full = searchSync(q, g, { k: rows, dim: d, metric });
  const indices: number[][] = [];
  const scores: number[][] = [];
  for (let i = 0; i < nq; i++) {
    const seen = new Set<number>();
    const ids: number[] = [];
    const sc: number[] = [];
    for (let j = 0; j < rows && ids.length < k; j++) {
      const item = Math.floor(full.indices[i * rows + j] / tokens);
      if (seen.has(item) || !ok(i, item)) {
        seen.add(item);
        continue;
      }
      seen.add(item);
      ids.push(item);
      sc.push(full.scores[i * rows + j]);
    }
    // Row order breaks ties by lower row; items tie by lower item index. Re-sort stably by score.
    const order = ids.map((_, j) => j).sort((a, b) => {
      const diff = metric === 'l2' ? sc[a] - sc[b] : sc[b] - sc[a];
      return diff !== 0 ? diff : ids[a] - ids[b];
    });
    indices.push(order.map((j) => ids[j]));
    scores.push(order.map((j) => sc[j]));
  }
  return { indices, scores };
}

function check(r: SearchResult, want: { indices: number[][]; scores: number[][] }, k: number, what: string): void {
  for (let i = 0; i < want.indices.length; i++) {
    const n = want.indices[i].length;
    assert.is(r.counts[i], n, `${what}: count of query ${i}`);
    assert.equal(Array.from(r.indices.subarray(i * k, i * k + n)), want.indices[i], `${what}: query ${i} indices`);
    for (let j = 0; j < n; j++) {
      assert.ok(Object.is(r.scores[i * k + j], Math.fround(want.scores[i][j])), `${what}: query ${i} score ${j}`);
    }
    for (let j = n; j < k; j++) assert.is(r.indices[i * k + j], -1);
  }
}

const Exact = suite('token-max search equals the best token of each item');

Exact('awkward sizes, every metric, duplicated items, sync and async', async () => {
  const shapes = [
    { items: 1, tokens: 1, d: 3, k: 1 },
    { items: 7, tokens: 3, d: 5, k: 7 },
    { items: 513, tokens: 4, d: 16, k: 10 },
    { items: 300, tokens: 32, d: 64, k: 25 },
    { items: 2000, tokens: 2, d: 8, k: 100 },
  ];
  let seed = 1;
  for (const { items, tokens, d, k } of shapes) {
    for (const metric of ['ip', 'cosine', 'l2'] as Metric[]) {
      const g = gaussianMatrix(items * tokens, d, seed++);
      if (items > 3) g.copyWithin(2 * tokens * d, 0, tokens * d); // item 2 duplicates item 0: exact ties
      const q = gaussianMatrix(9, d, seed++);
      const want = reference(q, g, d, items, tokens, k, metric, () => true);
      const what = `${items}x${tokens}x${d} k=${k} ${metric}`;
      const sync = tokenMaxSearchSync(q, g, { k, dim: d, tokens, metric });
      check(sync, want, k, `${what} sync`);
      check(await tokenMaxSearch(q, { data: g, dims: [items, tokens, d] }, { k, metric, dim: d }), want, k, `${what} tensor`);
      check(await tokenMaxSearch(q, g, { k, dim: d, tokens, metric, threads: 1 }), want, k, `${what} 1 thread`);
    }
  }
});

Exact('float64 check of the scores (ip)', () => {
  const items = 400;
  const tokens = 8;
  const d = 32;
  const g = gaussianMatrix(items * tokens, d, 77);
  const q = gaussianMatrix(5, d, 78);
  const r = tokenMaxSearchSync(q, g, { k: 5, dim: d, tokens });
  for (let i = 0; i < 5; i++) {
    const best = Array.from({ length: items }, (_, j) => {
      let m = -Infinity;
      for (let t = 0; t < tokens; t++) {
        let s = 0;
        for (let c = 0; c < d; c++) s += q[i * d + c] * g[(j * tokens + t) * d + c];
        m = Math.max(m, s);
      }
      return m;
    });
    const order = best.map((_, j) => j).sort((a, b) => best[b] - best[a]);
    assert.equal(Array.from(r.indices.subarray(i * 5, i * 5 + 5)), order.slice(0, 5));
    for (let j = 0; j < 5; j++) assert.ok(Math.abs(r.scores[i * 5 + j] - best[order[j]]) < 1e-5 * (1 + Math.abs(best[order[j]])));
  }
});

Exact.run();

const Filters = suite('exclude and allow refer to items');

Filters('each query excludes its reference item; an allow-set of items', () => {
  const items = 600;
  const tokens = 6;
  const d = 12;
  const g = gaussianMatrix(items * tokens, d, 5);
  const q = gaussianMatrix(8, d, 6);
  const r = rng(9);
  const refs = Int32Array.from({ length: 8 }, () => Math.floor(r() * items));
  // Make each query's reference its best item, so excluding it matters.
  for (let i = 0; i < 8; i++) g.set(q.subarray(i * d, i * d + d).map((v) => v * 3), (refs[i] * tokens + 1) * d);
  const allow = Int32Array.from({ length: items / 2 }, (_, j) => 2 * j);
  const allowSet = new Set(allow);
  for (const metric of ['ip', 'cosine', 'l2'] as Metric[]) {
    const got = tokenMaxSearchSync(q, g, { k: 10, dim: d, tokens, metric, exclude: refs });
    check(got, reference(q, g, d, items, tokens, 10, metric, (i, item) => item !== refs[i]), 10, `${metric} exclude`);
    const both = tokenMaxSearchSync(q, g, { k: 10, dim: d, tokens, metric, exclude: refs, allow });
    check(
      both,
      reference(q, g, d, items, tokens, 10, metric, (i, item) => item !== refs[i] && allowSet.has(item)),
      10,
      `${metric} exclude + allow`,
    );
  }
});

Filters('bad shapes and options: typed errors', () => {
  const g = new Float32Array(7 * 4);
  const q = new Float32Array(4);
  const code = (fn: () => unknown): string => {
    try {
      fn();
    } catch (e) {
      assert.instance(e, VlkError);
      return (e as VlkError).code;
    }
    return 'none';
  };
  assert.is(code(() => tokenMaxSearchSync(q, g, { k: 1, dim: 4, tokens: 2 })), 'ERR_VLK_SHAPE'); // 7 rows, items of 2
  assert.is(code(() => tokenMaxSearchSync(q, g, { k: 1, dim: 4 })), 'ERR_VLK_SHAPE'); // no tokens
  assert.is(code(() => tokenMaxSearchSync(q, g, { k: 8, dim: 4, tokens: 1 })), 'ERR_VLK_INVALID_K');
  assert.is(code(() => tokenMaxSearchSync(q, { data: g, dims: [7, 1, 4] }, { k: 1, tokens: 2 })), 'ERR_VLK_SHAPE');
  assert.is(code(() => tokenMaxSearchSync(q, g, { k: 1, dim: 4, tokens: 7, exclude: Int32Array.of(1) })), 'ERR_VLK_INVALID_ARG');
  assert.is(tokenMaxSearchSync(q, g, { k: 5, dim: 4, tokens: 7, clamp: true }).k, 1);
});

Filters.run();
