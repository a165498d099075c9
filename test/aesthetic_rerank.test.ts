// Candidate-list helpers of aesthetic re-ranking (test/aesthetic_rerank.test.ts): aestheticRerank
// against a float64 reference written here (z-scored priors over the K candidates, averaged,
// relevance + lambda a, stable order); gridOrder's pair count [u(u+1)/2][v(v+1)/2] - u v, the
// product order of every pair, rows by relevance and aesthetic order within a row; typed errors.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { aestheticRerank, gridOrder, VlkError } from './helpers/lib';
import { gaussianMatrix, rng } from './helpers/random';

function code(f: () => unknown, want: string, what: string) {
  try {
    f();
    assert.unreachable(what);
  } catch (e) {
    assert.instance(e, VlkError, what);
    assert.is((e as VlkError).code, want, `${what}: ${(e as Error).message}`);
  }
}

const test = suite('aestheticRerank / gridOrder');

test('aestheticRerank equals a float64 reference (K = 1, 7, 100; ties by lower position)', () => {
  for (const k of [1, 7, 100]) {
    const u = rng(k);
    const rel = Float32Array.from({ length: k }, () => Math.floor(u() * 4) / 4); // many ties
    const priors = [gaussianMatrix(1, k, k + 1), gaussianMatrix(1, k, k + 2).map((x) => 10 * x - 3)];
    for (const zscore of [true, false]) {
      for (const lambda of [0.1, 2]) {
        const a = new Float64Array(k);
        for (const p of priors) {
          let mean = 0;
          let sd = 1;
          if (zscore) {
            mean = p.reduce((s, x) => s + x, 0) / k;
            sd = Math.sqrt(p.reduce((s, x) => s + (x - mean) ** 2, 0) / k);
          }
          for (let i = 0; i < k; i++) a[i] += (sd > 0 ? (p[i] - mean) / sd : 0) / priors.length;
        }
        const fin = Array.from(rel, (r, i) => r + lambda * a[i]);
        const want = fin.map((_, i) => i).sort((x, y) => fin[y] - fin[x] || x - y);
        const res = aestheticRerank(rel, priors, { lambda, zscore });
        assert.equal(Array.from(res.order), want, `K=${k} zscore=${zscore} lambda=${lambda}`);
        for (let i = 0; i < k; i++) {
          assert.ok(Math.abs(res.scores[i] - fin[i]) < 1e-9 * Math.max(1, Math.abs(fin[i])));
          assert.ok(Math.abs(res.aesthetic[i] - a[i]) < 1e-9 * Math.max(1, Math.abs(a[i])));
        }
      }
    }
  }
  // A constant prior contributes nothing: the order is the relevance order.
  const rel = Float32Array.of(0.1, 0.9, 0.5, 0.9);
  assert.equal(Array.from(aestheticRerank(rel, [new Float32Array(4).fill(7)]).order), [1, 3, 2, 0]);
  code(() => aestheticRerank(rel, [new Float32Array(3)]), 'ERR_VLK_SHAPE', 'prior length');
  code(() => aestheticRerank(Float32Array.of(1, NaN), [new Float32Array(2)]), 'ERR_VLK_NON_FINITE', 'NaN');
  code(() => aestheticRerank(rel, [new Float32Array(4)], { lambda: Infinity }), 'ERR_VLK_INVALID_ARG', 'lambda');
});

test('gridOrder: count formula, product order, rows by relevance, aesthetic within a row', () => {
  for (const [u, v, stride, k] of [[5, 4, 2, 100], [1, 1, 1, 1], [3, 2, 1, 6], [2, 5, 3, 40], [4, 1, 2, 7]]) {
    const rnd = rng(u * 100 + v * 10 + stride);
    const rel = Float32Array.from({ length: k }, () => Math.floor(rnd() * 20) / 20);
    const aes = Float32Array.from({ length: k }, () => Math.floor(rnd() * 10) / 10);
    const { grid, pairs } = gridOrder(rel, aes, { u, v, stride });
    const count = ((u * (u + 1)) / 2) * ((v * (v + 1)) / 2) - u * v;
    assert.is(pairs.length, 2 * count, `${u}x${v}: pair count`);
    // The grid holds every stride-th candidate of the relevance order (ties by lower position).
    const byRel = Array.from({ length: k }, (_, i) => i).sort((a, b) => rel[b] - rel[a] || a - b);
    const taken = Array.from({ length: u * v }, (_, i) => byRel[i * stride]);
    for (let r = 0; r < u; r++) {
      const row = Array.from(grid.subarray(r * v, (r + 1) * v));
      assert.equal([...row].sort((a, b) => a - b), taken.slice(r * v, (r + 1) * v).sort((a, b) => a - b), `row ${r} members`);
      for (let c = 1; c < v; c++) assert.ok(aes[row[c - 1]] >= aes[row[c]], `row ${r} aesthetic order`);
    }
    const pos = new Map<number, [number, number]>();
    grid.forEach((x, i) => pos.set(x, [Math.floor(i / v), i % v]));
    const seen = new Set<string>();
    for (let p = 0; p < count; p++) {
      const [a, b] = [pairs[2 * p], pairs[2 * p + 1]];
      const [ra, ca] = pos.get(a) as [number, number];
      const [rb, cb] = pos.get(b) as [number, number];
      assert.ok(a !== b && ra <= rb && ca <= cb, `pair ${a} > ${b} is in product order`);
      seen.add(`${a},${b}`);
    }
    assert.is(seen.size, count, 'pairs are distinct');
  }
  code(() => gridOrder(new Float32Array(38), new Float32Array(38)), 'ERR_VLK_SHAPE', 'K too small for 5x4 stride 2');
  code(() => gridOrder(new Float32Array(40), new Float32Array(39)), 'ERR_VLK_SHAPE', 'aesthetic length');
  code(() => gridOrder(new Float32Array(40), new Float32Array(40), { u: 0 }), 'ERR_VLK_INVALID_ARG', 'u 0');
});

test.run();
