// FlatIndex (test/flat_index.test.ts): search equals searchSync over the live vectors in insertion
// order (ids mapped, scores bit for bit, counts, padding) across block boundaries, after
// removals and re-adds, in every metric, sync and async; ties in insertion order; add/remove/has/
// get/size/memoryUsage and id semantics (automatic, Float64, BigInt64 beyond 2^53); every bad input
// with its code, all or nothing; close() and `using`; add/remove racing in-flight searches; close()
// and garbage collection while searches run.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { constants as perf, PerformanceObserver } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { binding, FlatIndex, searchSync, VlkError } from './helpers/lib';
import type { FlatIndexSearchResult } from './helpers/lib';
import { distCjs } from './helpers/paths';
import { gaussianMatrix, rng } from './helpers/random';

type Metric = 'ip' | 'cosine' | 'l2';
const METRICS: Metric[] = ['ip', 'cosine', 'l2'];
const gc: (() => void) | undefined = (globalThis as any).gc;
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** n distinct, non-contiguous ids in shuffled order. */
function shuffledIds(n: number, seed: number): number[] {
  const r = rng(seed);
  const ids = Array.from({ length: n }, (_, i) => i * 3 + 1 + Math.floor(r() * 2));
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  return ids;
}

function row(m: Float32Array, d: number, i: number): Float32Array {
  return m.subarray(i * d, (i + 1) * d);
}

interface Expected {
  ids: Array<number | bigint>;
  scores: Float32Array;
  counts: number[];
}

/** searchSync over the live rows (insertion order) with ids mapped, padded to k. */
function expected(
  queries: Float32Array,
  live: Float32Array,
  liveIds: Array<number | bigint>,
  d: number,
  k: number,
  metric: Metric,
  pad: number | bigint = -1,
): Expected {
  const q = queries.length / d;
  const n = liveIds.length;
  const ids = new Array<number | bigint>(q * k).fill(pad);
  const scores = new Float32Array(q * k).fill(NaN);
  const kk = Math.min(k, n);
  if (n > 0) {
    const r = searchSync(queries, live, { k: kk, dim: d, metric });
    for (let i = 0; i < q; i++) {
      for (let j = 0; j < kk; j++) {
        ids[i * k + j] = liveIds[r.indices[i * kk + j]];
        scores[i * k + j] = r.scores[i * kk + j];
      }
    }
  }
  return { ids, scores, counts: new Array(q).fill(kk) };
}

function check(got: FlatIndexSearchResult, want: Expected, k: number, what: string): void {
  assert.is(got.k, k, `${what}: k`);
  assert.is(got.count, want.counts.length, `${what}: count`);
  assert.is(got.ids.length, want.ids.length, `${what}: ids length`);
  assert.is(got.scores.length, want.ids.length, `${what}: scores length`);
  assert.equal(Array.from(got.counts), want.counts, `${what}: counts`);
  for (let p = 0; p < want.ids.length; p++) {
    if (got.ids[p] !== want.ids[p] || !Object.is(got.scores[p], want.scores[p])) {
      assert.unreachable(
        `${what}: query ${Math.floor(p / k)} rank ${p % k}: index (${got.ids[p]}, ${got.scores[p]}) vs ` +
          `search over the live rows (${want.ids[p]}, ${want.scores[p]})`,
      );
    }
  }
}

function idList(a: Float64Array | BigInt64Array): Array<number | bigint> {
  return Array.from(a as ArrayLike<number | bigint>);
}

function bits(a: Float32Array): number[] {
  return Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
}

/** Two index results are bit-identical (ids, scores, counts). */
function assertSame(a: FlatIndexSearchResult, b: FlatIndexSearchResult, what: string): void {
  assert.is(a.k, b.k, `${what}: k`);
  assert.is(a.count, b.count, `${what}: count`);
  assert.is(Object.prototype.toString.call(a.ids), Object.prototype.toString.call(b.ids), `${what}: ids type`);
  assert.equal(idList(a.ids), idList(b.ids), `${what}: ids`);
  assert.equal(bits(a.scores), bits(b.scores), `${what}: scores`);
  assert.equal(Array.from(a.counts), Array.from(b.counts), `${what}: counts`);
}

function throwsVlk(fn: () => unknown, code: string, message: RegExp[] = [], what = ''): VlkError {
  try {
    fn();
  } catch (err) {
    assert.instance(err, VlkError, `${what}: a VlkError (${err})`);
    const e = err as VlkError;
    assert.is(e.code, code, `${what}: code (${e.message})`);
    for (const re of message) assert.match(e.message, re, `${what}: message "${e.message}" matches ${re}`);
    return e;
  }
  assert.unreachable(`${what}: did not throw (expected ${code})`);
  throw new Error('unreachable');
}

async function rejectsVlk(p: Promise<unknown>, code: string, message: RegExp[] = [], what = ''): Promise<VlkError> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, VlkError, `${what}: a VlkError (${err})`);
    const e = err as VlkError;
    assert.is(e.code, code, `${what}: code (${e.message})`);
    for (const re of message) assert.match(e.message, re, `${what}: message "${e.message}" matches ${re}`);
    return e;
  }
  assert.unreachable(`${what}: did not reject (expected ${code})`);
  throw new Error('unreachable');
}

// ---------------------------------------------------------------------------------------------
const Exact = suite('FlatIndex search equals search over the live vectors in insertion order');

const SIZES: Array<[number, number]> = [
  [1, 8],
  [7, 8],
  [1000, 8],
  [1000, 512],
  [70_000, 8], // added in three calls: crosses block boundaries
];

for (const [n, d] of SIZES) {
  Exact(`N = ${n}, D = ${d}: ip, cosine, l2; removals and re-adds; sync and async; k > size pads`, async () => {
    const vectors = gaussianMatrix(n, d, 100 + n + d);
    const ids = shuffledIds(n, 200 + n);
    const queries = gaussianMatrix(5, d, 300 + n + d);
    const r = rng(400 + n);
    // Removed: about a fifth (none when n = 1); re-added with new vectors: two of them.
    const removed = n === 1 ? [] : ids.filter(() => r() < 0.2);
    if (n === 7 && removed.length === 0) removed.push(ids[3]);
    const readded = removed.slice(0, 2);
    const fresh = gaussianMatrix(readded.length, d, 500 + n);
    const removedSet = new Set(removed);

    const liveIds: number[] = [];
    const liveRows: Float32Array[] = [];
    ids.forEach((id, i) => {
      if (!removedSet.has(id)) {
        liveIds.push(id);
        liveRows.push(row(vectors, d, i));
      }
    });
    readded.forEach((id, i) => {
      liveIds.push(id);
      liveRows.push(row(fresh, d, i));
    });
    const live = new Float32Array(liveIds.length * d);
    liveRows.forEach((v, i) => live.set(v, i * d));

    for (const metric of METRICS) {
      const index = new FlatIndex({ dim: d, metric });
      try {
        // Three adds: a plain array, a { data, rows, cols } view with a Float64Array, a dims view.
        const a = Math.floor(n / 3);
        const b = Math.floor((2 * n) / 3);
        index.add(vectors.subarray(0, a * d), ids.slice(0, a));
        index.add({ data: vectors.subarray(a * d, b * d), rows: b - a, cols: d }, Float64Array.from(ids.slice(a, b)));
        index.add({ data: vectors.subarray(b * d), dims: [n - b, d] }, Int32Array.from(ids.slice(b)));
        assert.is(index.size, n);
        if (removed.length > 0) assert.is(index.remove(removed), removed.length);
        if (readded.length > 0) index.add(fresh, readded);
        assert.is(index.size, liveIds.length, 'size after removals and re-adds');

        for (const k of [1, 10, liveIds.length + 3]) {
          const what = `${metric}, k = ${k}`;
          const got = index.searchSync(queries, { k });
          assert.instance(got.ids, Float64Array, `${what}: number ids come back as a Float64Array`);
          check(got, expected(queries, live, liveIds, d, k, metric), k, what);
          assertSame(await index.search(queries, { k }), got, `${what}: async vs sync`);
          assertSame(index.searchSync({ data: queries, rows: 5, cols: d }, { k, threads: 1 }), got, `${what}: threads 1`);
        }
      } finally {
        index.close();
      }
    }
  });
}

Exact('an index whose vectors were all removed, and a new index, return only padding', async () => {
  const index = new FlatIndex({ dim: 4, metric: 'l2' });
  const q = gaussianMatrix(3, 4, 1);
  const empty = index.searchSync(q, { k: 2 });
  assert.equal(Array.from(empty.counts), [0, 0, 0]);
  assert.equal(idList(empty.ids), [-1, -1, -1, -1, -1, -1]);
  assert.ok(Array.from(empty.scores).every(Number.isNaN));
  index.add(gaussianMatrix(5, 4, 2));
  index.remove([0, 1, 2, 3, 4]);
  assert.is(index.size, 0);
  assertSame(await index.search(q, { k: 2 }), empty, 'all removed');
  index.close();
});

Exact.run();

// ---------------------------------------------------------------------------------------------
const Ties = suite('ties come back in insertion order');

Ties('duplicates under different ids, across a block boundary (l2: distance 0)', () => {
  const d = 8;
  const n = 70_000;
  const v = gaussianMatrix(1, d, 7);
  const vectors = gaussianMatrix(n, d, 8);
  // Copies of v at rows 3, 10, 65,540 and 69,000, under ids that do not sort in insertion order.
  const at = new Map<number, number>([
    [3, 900_000],
    [10, 5],
    [65_540, 700_000],
    [69_000, 1],
  ]);
  const ids = new Float64Array(n);
  let next = 10;
  for (let i = 0; i < n; i++) {
    if (at.has(i)) {
      vectors.set(v, i * d);
      ids[i] = at.get(i)!;
    } else {
      ids[i] = next++;
    }
  }
  const index = new FlatIndex({ dim: d, metric: 'l2' });
  // Two adds: the second needs a new block, so rows 65,540 and 69,000 sit in another block.
  index.add(vectors.subarray(0, 65_536 * d), ids.subarray(0, 65_536));
  index.add(vectors.subarray(65_536 * d), ids.subarray(65_536));
  const r = index.searchSync(v, { k: 5 });
  assert.equal(idList(r.ids.subarray(0, 4)), [900_000, 5, 700_000, 1]);
  assert.equal(Array.from(r.scores.subarray(0, 4)), [0, 0, 0, 0]);
  assert.ok(r.scores[4] > 0);
  // A removed id added again goes to the end of the insertion order.
  index.remove(900_000);
  index.add(v, [900_000]);
  const again = index.searchSync(v, { k: 4 });
  assert.equal(idList(again.ids), [5, 700_000, 1, 900_000]);
  index.close();
});

for (const metric of METRICS) {
  Ties(`every vector equal (${metric}): ids in insertion order, scores equal`, async () => {
    const d = 16;
    const v = gaussianMatrix(1, d, 11);
    const ids = [42, 7, 1000, 3, 99, 0, 12];
    const vectors = new Float32Array(ids.length * d);
    ids.forEach((_, i) => vectors.set(v, i * d));
    const index = new FlatIndex({ dim: d, metric });
    index.add(vectors.subarray(0, 3 * d), ids.slice(0, 3));
    index.add(vectors.subarray(3 * d), ids.slice(3));
    const q = gaussianMatrix(2, d, 12);
    for (const r of [index.searchSync(q, { k: 10 }), await index.search(q, { k: 10 })]) {
      for (let i = 0; i < 2; i++) {
        assert.equal(idList(r.ids.subarray(i * 10, i * 10 + 7)), ids, `query ${i}`);
        const s = Array.from(r.scores.subarray(i * 10, i * 10 + 7));
        assert.ok(s.every((x) => Object.is(x, s[0])), `query ${i}: equal scores ${s}`);
      }
    }
    index.close();
  });
}

Ties.run();

// ---------------------------------------------------------------------------------------------
const Api = suite('add / remove / has / get / size / memoryUsage');

Api('properties, sizes, has, get (a copy), automatic ids from one past the largest', () => {
  const d = 4;
  const index = new FlatIndex({ dim: d, metric: 'cosine' });
  assert.is(index.dim, d);
  assert.is(index.metric, 'cosine');
  assert.is(index.storage, 'f32');
  assert.is(new FlatIndex({ dim: 3 }).metric, 'ip');
  assert.is(index.size, 0);
  const vectors = gaussianMatrix(3, d, 21);
  assert.equal(index.add(vectors, [10, 3, 7]), { firstId: undefined });
  assert.is(index.size, 3);
  assert.ok(index.has(10) && index.has(3) && index.has(7n));
  assert.not.ok(index.has(4));
  assert.not.ok(index.has(2n ** 62n));
  const got = index.get(3);
  assert.instance(got, Float32Array);
  assert.equal(bits(got), bits(row(vectors, d, 1)));
  got.fill(0);
  assert.equal(bits(index.get(3)), bits(row(vectors, d, 1)), 'get returns a copy');
  vectors.fill(5);
  assert.not.equal(bits(index.get(10)), bits(row(vectors, d, 0)), 'add copied the vectors');

  assert.equal(index.add(gaussianMatrix(2, d, 22)), { firstId: 11 });
  assert.ok(index.has(11) && index.has(12));
  assert.is(index.size, 5);
  assert.is(index.remove(12), 1);
  assert.not.ok(index.has(12));
  assert.equal(index.add(gaussianMatrix(1, d, 23)), { firstId: 13 }, 'a removed largest id still counts');
  index.add(gaussianMatrix(1, d, 24), Float64Array.of(100));
  assert.equal(index.add(gaussianMatrix(1, d, 25)), { firstId: 101 });
  assert.equal(index.add(new Float32Array(0)), { firstId: 102 }, 'adding no vectors');
  assert.equal(index.add(new Float32Array(0), []), { firstId: undefined });
  assert.is(index.size, 7);
  assert.is(index.remove([]), 0);
  assert.is(index.remove(Float64Array.of(3, 100)), 2);
  assert.is(index.remove(BigInt64Array.of(7n)), 1);
  assert.is(index.remove(11n), 1);
  assert.is(index.size, 3);
  // A removed id can be used again.
  index.add(gaussianMatrix(1, d, 26), [3]);
  assert.ok(index.has(3));
  index.close();
});

Api('compact: memory comes back, results, ties, ids and automatic ids unchanged', async () => {
  const d = 16;
  const n = 6000;
  const vectors = gaussianMatrix(n, d, 61);
  for (let r = 11; r < n; r += 101) vectors.copyWithin(r * d, 0, d); // tied rows
  const queries = gaussianMatrix(4, d, 62);
  queries.set(vectors.subarray(0, d), 0);
  for (const metric of ['ip', 'cosine', 'l2'] as const) {
    const index = new FlatIndex({ dim: d, metric });
    for (let from = 0; from < n; from += 1500) index.add(vectors.subarray(from * d, (from + 1500) * d));
    const gone = Array.from({ length: n }, (_, i) => i).filter((i) => i % 4 !== 0);
    assert.is(index.remove(gone), gone.length);
    const before = index.searchSync(queries, { k: 30 });
    const bytes = index.memoryUsage().bytes;
    const freed = index.compact();
    assert.ok(freed > 0, `freed ${freed}`);
    assert.ok(index.memoryUsage().bytes < bytes, 'memoryUsage went down');
    assert.is(index.memoryUsage().bytes, bytes - freed);
    const after = await index.search(queries, { k: 30 });
    assert.equal(idList(after.ids), idList(before.ids), `${metric}: ids`);
    assert.ok(after.scores.every((v, i) => Object.is(v, before.scores[i])), `${metric}: scores bit for bit`);
    assert.ok(index.has(4) && !index.has(5));
    assert.equal(Array.from(index.get(8)), Array.from(vectors.subarray(8 * d, 9 * d)));
    assert.is(index.add(vectors.subarray(0, d)).firstId, n);
    assert.is(index.compact(), 0, 'nothing removed since: nothing to free');
    index.close();
    assert.throws(() => index.compact(), (e: unknown) => e instanceof VlkError && /closed/.test((e as Error).message));
  }
});

Api('memoryUsage: core bytes, bytesPerVector = bytes / max(size, 1)', () => {
  const d = 64;
  const index = new FlatIndex({ dim: d });
  const empty = index.memoryUsage();
  assert.ok(empty.bytes >= 0 && empty.bytes < 4096, `empty: ${empty.bytes}`);
  assert.is(empty.bytesPerVector, empty.bytes);
  index.add(gaussianMatrix(10, d, 31));
  const m = index.memoryUsage();
  // The first block holds 64 rows (the smallest block) of d floats and an int64 id each.
  assert.ok(m.bytes >= 64 * (d * 4 + 8) && m.bytes < 64 * (d * 4 + 8) + 4096, `bytes ${m.bytes}`);
  assert.is(m.bytesPerVector, m.bytes / 10);
  // Growth is geometric: 1,000 more rows take blocks of 64, 64, 128, 256, 512 (1,024 rows), not a
  // block per add.
  for (let i = 0; i < 10; i++) index.add(gaussianMatrix(100, d, 40 + i));
  const grown = index.memoryUsage();
  assert.ok(grown.bytes >= 1010 * (d * 4 + 8) && grown.bytes < 1024 * (d * 4 + 8) + 65536, `grown: ${grown.bytes}`);
  index.remove([0, 1, 2, 3, 4]);
  const after = index.memoryUsage();
  assert.ok(after.bytes <= grown.bytes && after.bytes > 1024 * d * 4, 'removed rows keep their block');
  assert.is(after.bytesPerVector, after.bytes / 1005);
  index.close();
});

Api('native bytes are reported to V8: unclosed indexes alone trigger full garbage collections', async () => {
  const starts: number[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === perf.NODE_PERFORMANCE_GC_MAJOR) {
        starts.push(e.startTime);
      }
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  gc?.();
  await tick();
  const t0 = performance.now();
  // 40 x 32 MiB of native rows (16,384 x 512 floats each, copied from one shared array), next to
  // no new JS heap.
  const rows = new Float32Array(16_384 * 512);
  for (let i = 0; i < 40; i++) new FlatIndex({ dim: 512 }).add(rows);
  const t1 = performance.now();
  for (let i = 0; i < 5; i++) await tick();
  observer.disconnect();
  const during = starts.filter((t) => t >= t0 && t <= t1).length;
  assert.ok(during > 0, `${during} full GCs while 1.3 GiB of unclosed indexes were reported`);
});

Api('BigInt64Array ids beyond 2^53 round-trip and make results BigInt64Array', async () => {
  const d = 8;
  const big = [2n ** 62n + 5n, 2n ** 53n + 1n, 9n];
  const vectors = gaussianMatrix(3, d, 41);
  const index = new FlatIndex({ dim: d, metric: 'l2' });
  const other = gaussianMatrix(1, d, 43);
  index.add(other, [4]); // a number id first: results are Float64Array until...
  assert.instance(index.searchSync(other, { k: 1 }).ids, Float64Array);
  index.add({ data: vectors, rows: 3, cols: d }, BigInt64Array.from(big));
  for (let i = 0; i < 3; i++) {
    assert.ok(index.has(big[i]), `has ${big[i]}`);
    assert.equal(bits(index.get(big[i])), bits(row(vectors, d, i)), `get ${big[i]}`);
  }
  assert.ok(index.has(9) && index.has(4n));
  const r = index.searchSync(vectors, { k: 6 });
  assert.instance(r.ids, BigInt64Array);
  for (let i = 0; i < 3; i++) {
    assert.is(r.ids[i * 6], big[i], `query ${i}: its own vector first`);
    assert.is(r.scores[i * 6], 0);
    assert.is(r.counts[i], 4);
    assert.equal(idList(r.ids.subarray(i * 6 + 4, i * 6 + 6)), [-1n, -1n], 'padding -1n');
  }
  const want = expected(vectors, new Float32Array([...other, ...vectors]), [4n, ...big], d, 6, 'l2', -1n);
  check(r, want, 6, 'BigInt ids vs search over the live rows');
  assertSame(await index.search(vectors, { k: 6 }), r, 'async');
  // Automatic ids continue past the largest BigInt id, as bigints.
  assert.equal(index.add(gaussianMatrix(2, d, 42)), { firstId: 2n ** 62n + 6n });
  assert.ok(index.has(2n ** 62n + 7n));
  assert.is(index.remove(BigInt64Array.of(2n ** 62n + 5n, 2n ** 62n + 6n)), 2);
  assert.is(index.size, 4);
  index.close();
});

Api('number ids up to 2^53 - 1 (Float64Array) stay exact', () => {
  const d = 4;
  const max = Number.MAX_SAFE_INTEGER;
  const index = new FlatIndex({ dim: d, metric: 'l2' });
  const vectors = gaussianMatrix(2, d, 51);
  index.add(vectors, Float64Array.of(max, max - 1));
  assert.ok(index.has(max) && index.has(BigInt(max)));
  const r = index.searchSync(vectors, { k: 2 });
  assert.instance(r.ids, Float64Array);
  assert.is(r.ids[0], max);
  assert.is(r.ids[2], max - 1);
  index.close();
});

Api('using / Symbol.dispose close the index', () => {
  let kept: FlatIndex | undefined;
  {
    using index = new FlatIndex({ dim: 4 });
    index.add(new Float32Array(4));
    kept = index;
    assert.is(index.size, 1);
  }
  throwsVlk(() => kept!.size, 'ERR_VLK_INVALID_ARG', [/index is closed/], 'after using');
  const other = new FlatIndex({ dim: 4 });
  other[Symbol.dispose]();
  throwsVlk(() => other.has(0), 'ERR_VLK_INVALID_ARG', [/index is closed/], 'after Symbol.dispose');
  other[Symbol.dispose]();
});

Api.run();

// ---------------------------------------------------------------------------------------------
const Errors = suite('bad input: VlkError with code and message, all or nothing');

Errors('constructor', () => {
  const bad: Array<[unknown, string, RegExp[]]> = [
    [undefined, 'ERR_VLK_TYPE', [/options/]],
    [8, 'ERR_VLK_TYPE', [/options/]],
    [{}, 'ERR_VLK_INVALID_ARG', [/dim/, /undefined/]],
    [{ dim: 0 }, 'ERR_VLK_INVALID_ARG', [/dim/, /\b0\b/]],
    [{ dim: -3 }, 'ERR_VLK_INVALID_ARG', [/dim/, /-3/]],
    [{ dim: 1.5 }, 'ERR_VLK_INVALID_ARG', [/dim/, /1\.5/]],
    [{ dim: NaN }, 'ERR_VLK_INVALID_ARG', [/dim/, /NaN/]],
    [{ dim: '8' }, 'ERR_VLK_INVALID_ARG', [/dim/]],
    [{ dim: 2 ** 31 }, 'ERR_VLK_INVALID_ARG', [/dim/, /2147483648/]],
    [{ dim: 4, metric: 'dot' }, 'ERR_VLK_INVALID_ARG', [/metric/, /'dot'/]],
    [{ dim: 4, metric: 1 }, 'ERR_VLK_INVALID_ARG', [/metric/]],
    [{ dim: 4, approximate: true }, 'ERR_VLK_INVALID_ARG', [/^options\.approximate: only for storage 'bf16' or 'i8'/]],
    [{ dim: 70000, storage: 'i8' }, 'ERR_VLK_INVALID_ARG', [/options\.dim: 70000 exceeds 65536/]],
    [{ dim: 4, storage: 'f16' }, 'ERR_VLK_INVALID_ARG', [/storage/, /'f16'/]],
    [{ dim: 4, storage: 32 }, 'ERR_VLK_INVALID_ARG', [/storage/]],
  ];
  for (const [options, code, message] of bad) {
    throwsVlk(() => new FlatIndex(options as any), code, message, `new FlatIndex(${JSON.stringify(options)})`);
  }
});

Errors('add: every bad input fails and leaves the index unchanged', () => {
  const d = 4;
  const index = new FlatIndex({ dim: d });
  index.add(gaussianMatrix(3, d, 61), [0, 1, 2]);
  const before = index.memoryUsage().bytes;
  const v2 = () => gaussianMatrix(2, d, 62);
  const withNaN = v2();
  withNaN[5] = NaN;
  const withInf = v2();
  withInf[0] = -Infinity;
  const bad: Array<[string, () => unknown, string, RegExp[]]> = [
    ['vectors a Float64Array', () => index.add(new Float64Array(8) as any, [5, 6]), 'ERR_VLK_TYPE', [/vectors/, /Float64Array/]],
    ['vectors null', () => index.add(null as any), 'ERR_VLK_TYPE', [/vectors/]],
    ['plain length 10, dim 4', () => index.add(new Float32Array(10)), 'ERR_VLK_DIM_MISMATCH', [/vectors/, /10/, /\b4\b/]],
    ['view cols 5 vs dim 4', () => index.add({ data: new Float32Array(10), rows: 2, cols: 5 }), 'ERR_VLK_DIM_MISMATCH', [/vectors/, /5/, /4/]],
    ['view length 7 != 2 x 4', () => index.add({ data: new Float32Array(7), rows: 2, cols: 4 }), 'ERR_VLK_SHAPE', [/vectors/, /7/]],
    ['ids length 3 for 2 vectors', () => index.add(v2(), [5, 6, 7]), 'ERR_VLK_SHAPE', [/ids/, /3/, /2/]],
    ['ids a string', () => index.add(v2(), 'ab' as any), 'ERR_VLK_TYPE', [/ids/]],
    ['ids a BigUint64Array', () => index.add(v2(), new BigUint64Array(2) as any), 'ERR_VLK_TYPE', [/ids/, /BigUint64Array/]],
    ['ids [5, "6"]', () => index.add(v2(), [5, '6'] as any), 'ERR_VLK_TYPE', [/ids\[1\]/]],
    ['duplicate ids in the call', () => index.add(v2(), [5, 5]), 'ERR_VLK_INVALID_ARG', [/ids\[1\]/, /5/, /twice/]],
    ['an id already present', () => index.add(v2(), [5, 2]), 'ERR_VLK_INVALID_ARG', [/ids\[1\]/, /\b2\b/, /already/]],
    ['a negative id', () => index.add(v2(), [5, -1]), 'ERR_VLK_INVALID_ARG', [/ids\[1\]/, /-1/]],
    ['a non-integer id', () => index.add(v2(), [1.5, 6]), 'ERR_VLK_INVALID_ARG', [/ids\[0\]/, /1\.5/]],
    ['a number id 2^53', () => index.add(v2(), [5, 2 ** 53]), 'ERR_VLK_INVALID_ARG', [/ids\[1\]/, /9007199254740992/, /BigInt64Array/]],
    ['a NaN id (Float64Array)', () => index.add(v2(), Float64Array.of(5, NaN)), 'ERR_VLK_INVALID_ARG', [/ids\[1\]/, /NaN/]],
    ['a negative BigInt id', () => index.add(v2(), BigInt64Array.of(5n, -3n)), 'ERR_VLK_INVALID_ARG', [/ids\[1\]/, /-3/]],
    ['a duplicate BigInt id', () => index.add(v2(), BigInt64Array.of(2n ** 60n, 2n ** 60n)), 'ERR_VLK_INVALID_ARG', [/twice/]],
    ['NaN in vectors', () => index.add(withNaN, [5, 6]), 'ERR_VLK_NON_FINITE', [/vectors/]],
    ['-Infinity in vectors', () => index.add(withInf), 'ERR_VLK_NON_FINITE', [/vectors/]],
    ['a squared norm that overflows', () => index.add(new Float32Array(8).fill(3e30)), 'ERR_VLK_NON_FINITE', [/vectors/]],
  ];
  for (const [what, fn, code, message] of bad) {
    throwsVlk(fn, code, message, what);
    assert.is(index.size, 3, `${what}: size unchanged`);
    assert.not.ok(index.has(5) || index.has(6) || index.has(2n ** 60n), `${what}: no id added`);
    assert.is(index.memoryUsage().bytes, before, `${what}: memory unchanged`);
  }
  // A failed BigInt add does not switch the results to BigInt64Array.
  assert.instance(index.searchSync(v2(), { k: 1 }).ids, Float64Array);
  // Automatic ids must stay exact as numbers.
  index.add(gaussianMatrix(1, d, 63), [Number.MAX_SAFE_INTEGER]);
  throwsVlk(() => index.add(gaussianMatrix(1, d, 64)), 'ERR_VLK_INVALID_ARG', [/automatic ids/, /2\^53/], 'automatic ids past 2^53 - 1');
  assert.is(index.size, 4);
  index.close();
});

Errors('remove / has / get', () => {
  const d = 4;
  const index = new FlatIndex({ dim: d });
  index.add(gaussianMatrix(3, d, 71), [0, 1, 2]);
  const bad: Array<[string, () => unknown, string, RegExp[]]> = [
    ['remove an unknown id', () => index.remove([1, 9]), 'ERR_VLK_INVALID_ARG', [/ids\[1\]/, /9/, /not in the index/, /nothing was removed/]],
    ['remove an id twice', () => index.remove([1, 1]), 'ERR_VLK_INVALID_ARG', [/ids\[1\]/, /twice/]],
    ['remove -1', () => index.remove(-1), 'ERR_VLK_INVALID_ARG', [/-1/]],
    ['remove 1.5', () => index.remove([0, 1.5]), 'ERR_VLK_INVALID_ARG', [/ids\[1\]/, /1\.5/]],
    ['remove -1n', () => index.remove(-1n), 'ERR_VLK_INVALID_ARG', [/-1/]],
    ['remove 2^64n', () => index.remove(2n ** 64n), 'ERR_VLK_INVALID_ARG', [/18446744073709551616/]],
    ['remove a string', () => index.remove('1' as any), 'ERR_VLK_TYPE', [/ids/]],
    ['remove null', () => index.remove(null as any), 'ERR_VLK_TYPE', [/ids/]],
    ['get an unknown id', () => index.get(7), 'ERR_VLK_INVALID_ARG', [/\b7\b/, /not in the index/]],
    ['get -1', () => index.get(-1), 'ERR_VLK_INVALID_ARG', [/id/, /-1/]],
    ['get 2^53', () => index.get(2 ** 53), 'ERR_VLK_INVALID_ARG', [/id/, /9007199254740992/]],
    ['get a string', () => index.get('1' as any), 'ERR_VLK_TYPE', [/id/, /string/]],
    ['has 0.5', () => index.has(0.5), 'ERR_VLK_INVALID_ARG', [/id/, /0\.5/]],
    ['has -2n', () => index.has(-2n), 'ERR_VLK_INVALID_ARG', [/id/, /-2/]],
    ['has undefined', () => index.has(undefined as any), 'ERR_VLK_TYPE', [/id/, /undefined/]],
  ];
  for (const [what, fn, code, message] of bad) {
    throwsVlk(fn, code, message, what);
    assert.is(index.size, 3, `${what}: nothing removed`);
    assert.ok(index.has(0) && index.has(1) && index.has(2), `${what}: every id still there`);
  }
  index.close();
});

Errors('search and searchSync (search rejects, never throws)', async () => {
  const d = 4;
  const index = new FlatIndex({ dim: d });
  index.add(gaussianMatrix(5, d, 81));
  const q = gaussianMatrix(2, d, 82);
  const qNaN = gaussianMatrix(2, d, 83);
  qNaN[3] = NaN;
  const bad: Array<[string, unknown, unknown, string, RegExp[]]> = [
    ['options missing', q, undefined, 'ERR_VLK_TYPE', [/options/]],
    ['queries a Float64Array', new Float64Array(8), { k: 1 }, 'ERR_VLK_TYPE', [/queries/, /Float64Array/]],
    ['queries length 6, dim 4', new Float32Array(6), { k: 1 }, 'ERR_VLK_DIM_MISMATCH', [/queries/, /6/, /\b4\b/]],
    ['queries cols 3', { data: new Float32Array(6), rows: 2, cols: 3 }, { k: 1 }, 'ERR_VLK_DIM_MISMATCH', [/queries/, /3/, /4/]],
    ['queries view length 5 != 2 x 4', { data: new Float32Array(5), rows: 2, cols: 4 }, { k: 1 }, 'ERR_VLK_SHAPE', [/queries/, /5/]],
    ['no queries', new Float32Array(0), { k: 1 }, 'ERR_VLK_EMPTY', [/queries/]],
    ['k = 0', q, { k: 0 }, 'ERR_VLK_INVALID_K', [/\bk\b/, /\b0\b/]],
    ['k = 1.5', q, { k: 1.5 }, 'ERR_VLK_INVALID_K', [/\bk\b/, /1\.5/]],
    ['k = NaN', q, { k: NaN }, 'ERR_VLK_INVALID_K', [/\bk\b/, /NaN/]],
    ['k = 2^31', q, { k: 2 ** 31 }, 'ERR_VLK_INVALID_K', [/\bk\b/, /2147483648/]],
    ['k a string', q, { k: '3' }, 'ERR_VLK_INVALID_K', [/\bk\b/]],
    ['k missing', q, {}, 'ERR_VLK_INVALID_K', [/\bk\b/, /undefined/]],
    ['threads = 0', q, { k: 1, threads: 0 }, 'ERR_VLK_INVALID_ARG', [/threads/, /\b0\b/]],
    ['NaN in queries', qNaN, { k: 1 }, 'ERR_VLK_NON_FINITE', [/queries/]],
  ];
  for (const [what, queries, options, code, message] of bad) {
    throwsVlk(() => index.searchSync(queries as any, options as any), code, message, `searchSync: ${what}`);
    let p: Promise<unknown> | undefined;
    try {
      p = index.search(queries as any, options as any);
    } catch (err) {
      assert.unreachable(`search: ${what}: threw synchronously (${err})`);
    }
    await rejectsVlk(p!, code, message, `search: ${what}`);
  }
  await rejectsVlk(index.search(q, { k: 1, signal: 'x' as any }), 'ERR_VLK_INVALID_ARG', [/signal/], 'search: bad signal');
  const ac = new AbortController();
  ac.abort(new Error('stop'));
  try {
    await index.search(q, { k: 1, signal: ac.signal });
    assert.unreachable('aborted search resolved');
  } catch (err) {
    assert.is((err as Error).name, 'AbortError');
    assert.is((err as VlkError).code, 'ABORT_ERR');
  }
  // An errored call leaves the index usable.
  assert.is(index.searchSync(q, { k: 2 }).counts[0], 2);
  index.close();
});

Errors('use after close(): "index is closed"; close() is idempotent', async () => {
  const index = new FlatIndex({ dim: 4 });
  index.add(gaussianMatrix(2, 4, 91), [1, 2]);
  index.close();
  index.close();
  const closed: Array<[string, () => unknown]> = [
    ['size', () => index.size],
    ['memoryUsage', () => index.memoryUsage()],
    ['add', () => index.add(new Float32Array(4))],
    ['remove', () => index.remove(1)],
    ['has', () => index.has(1)],
    ['get', () => index.get(1)],
    ['searchSync', () => index.searchSync(new Float32Array(4), { k: 1 })],
  ];
  for (const [what, fn] of closed) {
    const err = throwsVlk(fn, 'ERR_VLK_INVALID_ARG', [/^index is closed$/], what);
    assert.match(err.stack ?? '', /flat_index\.test/, `${what}: the stack starts at the caller`);
  }
  await rejectsVlk(index.search(new Float32Array(4), { k: 1 }), 'ERR_VLK_INVALID_ARG', [/^index is closed$/], 'search');
  assert.is(index.dim, 4);
  assert.is(index.metric, 'ip');
});

Errors.run();

// ---------------------------------------------------------------------------------------------
const Race = suite('add and remove while searches are in flight');

for (const metric of METRICS) {
  Race(`20 async searches (${metric}) racing add/remove: every (id, score) is exact`, async () => {
    const d = 32;
    const k = 16;
    const Q = 8;
    const index = new FlatIndex({ dim: d, metric });
    const byId = new Map<number, Float32Array>();
    const initial = gaussianMatrix(60_000, d, 1001);
    index.add(initial); // ids 0..59,999 (automatic), crossing into a second block as more arrive
    for (let i = 0; i < 60_000; i++) byId.set(i, initial.slice(i * d, (i + 1) * d));
    let nextId = 60_000;
    const r = rng(1002);
    const pending: Array<{ queries: Float32Array; p: Promise<FlatIndexSearchResult> }> = [];
    let overlapped = 0; // mutations made while searches of this test were in flight
    for (let i = 0; i < 100; i++) {
      if (i % 5 === 0) {
        const queries = gaussianMatrix(Q, d, 2000 + i);
        pending.push({ queries, p: index.search(queries, { k }) });
      }
      const batch = gaussianMatrix(64, d, 3000 + i);
      const { firstId } = index.add(batch);
      assert.is(firstId, nextId);
      for (let j = 0; j < 64; j++) byId.set(nextId + j, batch.slice(j * d, (j + 1) * d));
      nextId += 64;
      const victims: number[] = [];
      for (let j = 0; j < 40; j++) {
        const id = Math.floor(r() * nextId);
        if (index.has(id) && !victims.includes(id)) victims.push(id);
      }
      assert.is(index.remove(victims), victims.length);
      if (binding.info().inFlight > 0) overlapped++;
      if (i % 10 === 0) await tick();
    }
    assert.is(pending.length, 20);
    assert.ok(overlapped >= 50, `${overlapped} of 100 add/remove rounds ran with searches in flight`);
    const results = await Promise.all(pending.map((x) => x.p));
    results.forEach((res, s) => {
      const { queries } = pending[s];
      assert.instance(res.ids, Float64Array);
      for (let q = 0; q < Q; q++) {
        assert.is(res.counts[q], k, `search ${s} query ${q}: counts`);
        const query = queries.subarray(q * d, (q + 1) * d);
        for (let j = 0; j < k; j++) {
          const id = res.ids[q * k + j] as number;
          const vector = byId.get(id);
          if (vector === undefined) assert.unreachable(`search ${s}: id ${id} was never added`);
          const exact = searchSync(query, vector!, { k: 1, dim: d, metric }).scores[0];
          if (!Object.is(res.scores[q * k + j], exact)) {
            assert.unreachable(`search ${s} query ${q} rank ${j}: id ${id} score ${res.scores[q * k + j]}, exact ${exact}`);
          }
          if (j > 0) {
            const prev = res.scores[q * k + j - 1];
            const cur = res.scores[q * k + j];
            assert.ok(metric === 'l2' ? prev <= cur : prev >= cur, `search ${s} query ${q}: sorted at rank ${j}`);
          }
        }
      }
    });
    index.close();
  });
}

Race.run();

// ---------------------------------------------------------------------------------------------
const Lifetime = suite('close() and garbage collection while searches run');

Lifetime('close() while 10 searches are in flight: each resolves (exactly) or rejects cleanly', async () => {
  const d = 64;
  const vectors = gaussianMatrix(40_000, d, 1101);
  const index = new FlatIndex({ dim: d, metric: 'cosine' });
  index.add(vectors);
  const queries = gaussianMatrix(8, d, 1102);
  const want = index.searchSync(queries, { k: 5 });
  const pending = Array.from({ length: 10 }, () => index.search(queries, { k: 5 }));
  index.close();
  const settled = await Promise.allSettled(pending);
  for (const s of settled) {
    if (s.status === 'fulfilled') assertSame(s.value, want, 'a search that outlived close()');
    else assert.instance(s.reason, VlkError);
  }
  assert.ok(settled.some((s) => s.status === 'fulfilled'), 'searches started before close() finish on their snapshot');
  await rejectsVlk(index.search(queries, { k: 5 }), 'ERR_VLK_INVALID_ARG', [/closed/], 'a search after close()');
});

Lifetime('an unclosed index is freed by GC, also with a search in flight', async () => {
  assert.ok(gc, 'run with --expose-gc (test/run.mjs passes it)');
  const d = 32;
  const queries = gaussianMatrix(4, d, 1201);
  let want: FlatIndexSearchResult | undefined;
  const start = () => {
    const index = new FlatIndex({ dim: d, metric: 'l2' });
    index.add(gaussianMatrix(30_000, d, 1202));
    want ??= index.searchSync(queries, { k: 3 });
    return index.search(queries, { k: 3 }); // the index itself is dropped here
  };
  const pending = Array.from({ length: 6 }, start);
  for (let i = 0; i < 5; i++) {
    gc!();
    await tick();
  }
  for (const r of await Promise.all(pending)) assertSame(r, want!, 'search on an index collected meanwhile');
  // Indexes that are never closed nor searched.
  for (let i = 0; i < 20; i++) new FlatIndex({ dim: 16 }).add(gaussianMatrix(100, 16, 1300 + i));
  for (let i = 0; i < 5; i++) {
    gc!();
    await tick();
  }
  gc!();
});

Lifetime('a worker that exits with an unclosed index and a search in flight does not crash', async () => {
  const code = `
    const { parentPort } = require('node:worker_threads');
    const { FlatIndex } = require(${JSON.stringify(distCjs)});
    const index = new FlatIndex({ dim: 64 });
    index.add(new Float32Array(64 * 50000).fill(0.5));
    index.search(new Float32Array(64 * 8).fill(1), { k: 10 }).catch(() => {});
    parentPort.postMessage(index.size);
  `;
  const size = await new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true });
    w.once('message', (m) => {
      resolve(m);
      void w.terminate();
    });
    w.once('error', reject);
  });
  assert.is(size, 50_000);
  // The main thread's addon instance still works.
  const index = new FlatIndex({ dim: 4 });
  index.add(new Float32Array(8), [1, 2]);
  assert.is((await index.search(new Float32Array(4), { k: 2 })).counts[0], 2);
  index.close();
});

Lifetime.run();
