// ShardedIndex (test/sharded_index.test.ts): search equals one FlatIndex over the same vectors
// (scores bit for bit, ids but for the order among exact ties, counts, padding) for ip/cosine/l2,
// 1, 2, 3 and 5 shards, sizes 1, 7 and 513, k > size, removals, bf16/i8 storage passed on, id
// filters given to every shard; explicit, automatic and BigInt ids
// beyond 2^53; routing (id % shards) of has/get/remove; the documented tie rule; add/remove all or
// nothing across shards with FlatIndex's errors; call order; AbortSignal; bad inputs with the same
// codes and messages as FlatIndex; close(), `await using`, a dying worker; the ESM entry; and a
// process with an unclosed index that exits by itself.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Worker } from 'node:worker_threads';
import { FlatIndex, ShardedIndex, VlkError } from './helpers/lib';
import type { FlatIndexSearchResult } from './helpers/lib';
import { runNode } from './helpers/child';
import { distCjs, distEsm } from './helpers/paths';
import { gaussianMatrix, rng } from './helpers/random';

type Metric = 'ip' | 'cosine' | 'l2';
const METRICS: Metric[] = ['ip', 'cosine', 'l2'];
const WORKERS = Symbol.for('vlkernels.ShardedIndex.workers');

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

function bits(a: Float32Array): number[] {
  return Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
}

function idList(a: Float64Array | BigInt64Array): Array<number | bigint> {
  return Array.from(a as ArrayLike<number | bigint>);
}

/**
 * got equals want (a FlatIndex over the same vectors): shape, ids type, counts and every score bit
 * for bit; ids equal except inside a run of exactly tied scores, where the sets must be equal (a
 * run cut by the end of the list may hold other tied ids).
 */
function assertLikeFlat(got: FlatIndexSearchResult, want: FlatIndexSearchResult, what: string): void {
  assert.is(got.k, want.k, `${what}: k`);
  assert.is(got.count, want.count, `${what}: count`);
  assert.is(Object.prototype.toString.call(got.ids), Object.prototype.toString.call(want.ids), `${what}: ids type`);
  assert.equal(Array.from(got.counts), Array.from(want.counts), `${what}: counts`);
  assert.equal(bits(got.scores), bits(want.scores), `${what}: scores`);
  const k = got.k;
  for (let q = 0; q < got.count; q++) {
    const n = got.counts[q];
    for (let j = n; j < k; j++) assert.is(got.ids[q * k + j], want.ids[q * k + j], `${what}: padding`);
    for (let a = 0; a < n; ) {
      let b = a + 1;
      while (b < n && Object.is(got.scores[q * k + b], got.scores[q * k + a])) b++;
      const g = idList(got.ids.subarray(q * k + a, q * k + b));
      const w = idList(want.ids.subarray(q * k + a, q * k + b));
      if (b - a === 1) {
        if (g[0] !== w[0]) assert.unreachable(`${what}: query ${q} rank ${a}: id ${g[0]} vs FlatIndex ${w[0]}`);
      } else if (b < n || n < want.counts[q]) {
        const sort = (x: Array<number | bigint>) => [...x].sort((u, v) => (u < v ? -1 : u > v ? 1 : 0));
        assert.equal(sort(g), sort(w), `${what}: query ${q} ranks ${a}..${b - 1} (tied): id sets`);
      }
      a = b;
    }
  }
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

/** The sharded call rejects with the VlkError (code and message) FlatIndex's call throws or rejects with. */
async function sameError(flat: () => unknown, sharded: () => Promise<unknown>, what: string): Promise<void> {
  let want: VlkError | undefined;
  try {
    await flat();
  } catch (err) {
    want = err as VlkError;
  }
  if (want === undefined) assert.unreachable(`${what}: FlatIndex did not throw`);
  assert.instance(want, VlkError, `${what}: FlatIndex threw a VlkError`);
  let p: Promise<unknown> | undefined;
  try {
    p = sharded();
  } catch (err) {
    assert.unreachable(`${what}: ShardedIndex threw synchronously (${err})`);
  }
  const got = await rejectsVlk(p!, want!.code, [], what);
  assert.is(got.message, want!.message, `${what}: message`);
}

// ---------------------------------------------------------------------------------------------
const Exact = suite('ShardedIndex search equals one FlatIndex over the same vectors');

for (const metric of METRICS) {
  Exact(`${metric}: shards 1, 2, 3, 5; sizes 1, 7, 513; k > size; removals`, async () => {
    const d = 16;
    const n = 513;
    const vectors = gaussianMatrix(n, d, 10 + METRICS.indexOf(metric));
    const ids = shuffledIds(n, 20);
    const queries = gaussianMatrix(4, d, 30);
    const removed = ids.filter((_, i) => i % 7 === 3);
    for (const shards of [1, 2, 3, 5]) {
      const flat = new FlatIndex({ dim: d, metric });
      const index = new ShardedIndex({ dim: d, metric, shards });
      assert.is(index.shards, shards);
      const check = async (ks: number[], stage: string) => {
        assert.is(index.size, flat.size, `${stage}: size`);
        for (const k of ks) {
          const what = `${metric}, ${shards} shards, ${stage}, k = ${k}`;
          assertLikeFlat(await index.search(queries, { k }), flat.searchSync(queries, { k }), what);
        }
      };
      try {
        // Three adds in the three matrix forms: 1 vector, then 7 in all, then 513.
        flat.add(vectors.subarray(0, d), ids.slice(0, 1));
        await index.add(vectors.subarray(0, d), ids.slice(0, 1));
        await check([1, 3], 'size 1');
        flat.add({ data: vectors.subarray(d, 7 * d), rows: 6, cols: d }, Float64Array.from(ids.slice(1, 7)));
        await index.add({ data: vectors.subarray(d, 7 * d), rows: 6, cols: d }, Float64Array.from(ids.slice(1, 7)));
        await check([1, 5, 10], 'size 7');
        flat.add({ data: vectors.subarray(7 * d), dims: [n - 7, d] }, Int32Array.from(ids.slice(7)));
        await index.add({ data: vectors.subarray(7 * d), dims: [n - 7, d] }, Int32Array.from(ids.slice(7)));
        await check([1, 10, 600], 'size 513');
        assert.is(await index.remove(removed), flat.remove(removed));
        await check([10, 500], 'after removals');
        assertLikeFlat(
          await index.search(queries, { k: 8, threads: 1 }),
          flat.searchSync(queries, { k: 8 }),
          `${metric}, ${shards} shards, threads 1`,
        );
      } finally {
        flat.close();
        await index.close();
      }
    }
  });
}

Exact('an empty index, and one whose vectors were all removed, return only padding', async () => {
  const index = new ShardedIndex({ dim: 4, metric: 'l2', shards: 3 });
  const q = gaussianMatrix(2, 4, 1);
  const empty = await index.search(q, { k: 2 });
  assert.instance(empty.ids, Float64Array);
  assert.equal(Array.from(empty.counts), [0, 0]);
  assert.equal(idList(empty.ids), [-1, -1, -1, -1]);
  assert.ok(Array.from(empty.scores).every(Number.isNaN));
  await index.add(gaussianMatrix(5, 4, 2));
  assert.is(await index.remove([0, 1, 2, 3, 4]), 5);
  assert.is(index.size, 0);
  const again = await index.search(q, { k: 2 });
  assert.equal(idList(again.ids), [-1, -1, -1, -1]);
  await index.close();
});

for (const [storage, approximate] of [['bf16', false], ['i8', false], ['i8', true]] as const) {
  Exact(`storage ${storage}${approximate ? ', approximate' : ''}: passed to every shard, results as FlatIndex's`, async () => {
    const d = 32;
    const vectors = gaussianMatrix(300, d, 50);
    const queries = gaussianMatrix(5, d, 51);
    const options = { dim: d, metric: 'cosine' as const, storage, approximate };
    const flat = new FlatIndex(options);
    const index = new ShardedIndex({ ...options, shards: 3 });
    assert.is(index.storage, storage);
    assert.is(index.approximate, approximate);
    flat.add(vectors);
    await index.add(vectors);
    const got = await index.search(queries, { k: 10 });
    assertLikeFlat(got, flat.searchSync(queries, { k: 10 }), storage);
    assert.instance(got.rescored, Int32Array);
    assert.is(got.rescored.length, 5);
    if (approximate) assert.ok(got.rescored.every((x) => x === 0), 'approximate: nothing re-scored');
    assert.equal(bits(await index.get(7)), bits(flat.get(7)), 'get');
    flat.close();
    await index.close();
  });
}

Exact('filters (allow, exclude by id) reach every shard: results as FlatIndex gives them', async () => {
  const d = 8;
  const n = 200;
  const vectors = gaussianMatrix(n, d, 55);
  const queries = gaussianMatrix(3, d, 56);
  const flat = new FlatIndex({ dim: d, metric: 'l2' });
  const index = new ShardedIndex({ dim: d, metric: 'l2', shards: 3 });
  flat.add(vectors);
  await index.add(vectors);
  const allow = Array.from({ length: 40 }, (_, i) => i * 5 + 1).concat([5000]); // 5000: not in the index
  const filters: Array<[string, unknown]> = [
    ['allow: an array', { allow }],
    ['allow: a Set', { allow: new Set(allow) }],
    ['allow: a Float64Array of 3', { allow: Float64Array.of(3, 100, 199) }],
    ['allow: a BigInt64Array', { allow: BigInt64Array.of(3n, 4n) }],
    ['exclude: one id or a list per query', { exclude: [4, null, [1, 2, 3, 199]] }],
    ['exclude: one id per query', { exclude: Float64Array.of(0, -1, 7) }],
    ['exclude: CSR', { exclude: { offsets: Int32Array.of(0, 2, 2, 3), ids: Float64Array.of(9, 10, 11) } }],
    ['allow and exclude', { allow, exclude: [allow[0], allow[1], null] }],
  ];
  for (const [what, filter] of filters) {
    for (const k of [5, 50]) {
      const want = await flat.search(queries, { k, filter: filter as any });
      assertLikeFlat(await index.search(queries, { k, filter: filter as any }), want, `${what}, k = ${k}`);
    }
  }
  const bad: Array<[string, unknown]> = [
    ['filter a number', 3],
    ['allow a string', { allow: 'x' }],
    ['allow a negative id', { allow: [1, -2] }],
    ['exclude of the wrong length', { exclude: [1, 2] }],
    ['exclude.offsets an Array', { exclude: { offsets: [0, 1, 1, 1], ids: [1] } }],
  ];
  for (const [what, filter] of bad) {
    await sameError(
      () => flat.search(queries, { k: 5, filter: filter as any }),
      () => index.search(queries, { k: 5, filter: filter as any }),
      `filter: ${what}`,
    );
  }
  await rejectsVlk(index.search(queries, { k: 5, filter: { allow: [1], extra: () => 1 } as any }), 'ERR_VLK_TYPE', [/shard/], 'a filter that cannot be sent');
  flat.close();
  await index.close();
});

Exact.run();

// ---------------------------------------------------------------------------------------------
const Ids = suite('ids: routing, automatic, BigInt beyond 2^53, has / get / remove');

Ids('properties; routing id % shards; has, get (a copy); automatic ids as FlatIndex gives them', async () => {
  const d = 4;
  const flat = new FlatIndex({ dim: d, metric: 'cosine' });
  const index = new ShardedIndex({ dim: d, metric: 'cosine', shards: 3 });
  assert.is(index.dim, d);
  assert.is(index.metric, 'cosine');
  assert.is(index.storage, 'f32');
  assert.is(index.size, 0);
  const vectors = gaussianMatrix(3, d, 21);
  const both = async (v: Float32Array, ids?: number[] | Float64Array) => {
    const want = flat.add(v, ids);
    const got = await index.add(v, ids);
    assert.equal(got, want, `add(${ids === undefined ? 'automatic' : Array.from(ids)})`);
    return got;
  };
  await both(vectors, [10, 3, 7]);
  assert.is(index.size, 3);
  assert.ok((await index.has(10)) && (await index.has(3)) && (await index.has(7n)));
  assert.not.ok(await index.has(4));
  assert.not.ok(await index.has(2n ** 62n));
  const got = await index.get(3);
  assert.instance(got, Float32Array);
  assert.equal(bits(got), bits(vectors.subarray(d, 2 * d)));
  got.fill(0);
  assert.equal(bits(await index.get(3)), bits(vectors.subarray(d, 2 * d)), 'get returns a copy');
  vectors.fill(5);
  assert.not.equal(bits(await index.get(10)), bits(vectors.subarray(0, d)), 'add copied the vectors');

  // Each vector lives in shard id % 3: the per-shard sizes say so.
  const usage = await index.memoryUsage();
  assert.equal(usage.shards.map((s) => s.size), [1, 2, 0], 'ids 3 | 7, 10 | -');
  assert.is(usage.bytes, usage.shards.reduce((a, s) => a + s.bytes, 0));
  assert.ok(usage.bytes > 0 && usage.bytesPerVector === usage.bytes / 3);

  assert.equal(await both(gaussianMatrix(2, d, 22)), { firstId: 11 });
  assert.ok((await index.has(11)) && (await index.has(12)));
  assert.is(await index.remove(12), flat.remove(12));
  assert.equal(await both(gaussianMatrix(1, d, 23)), { firstId: 13 }, 'a removed largest id still counts');
  await both(gaussianMatrix(1, d, 24), Float64Array.of(100));
  assert.equal(await both(gaussianMatrix(1, d, 25)), { firstId: 101 });
  assert.equal(await both(new Float32Array(0)), { firstId: 102 }, 'adding no vectors');
  assert.equal(await both(new Float32Array(0), []), { firstId: undefined });
  assert.is(index.size, 7);
  assert.is(await index.remove([]), 0);
  assert.is(await index.remove(Float64Array.of(3, 100)), flat.remove(Float64Array.of(3, 100)));
  assert.is(await index.remove(BigInt64Array.of(7n)), flat.remove(BigInt64Array.of(7n)));
  assert.is(await index.remove(11n), flat.remove(11n));
  assert.is(index.size, flat.size);
  // A removed id can be used again.
  await both(gaussianMatrix(1, d, 26), [3]);
  assert.ok(await index.has(3));
  const q = gaussianMatrix(3, d, 27);
  assertLikeFlat(await index.search(q, { k: 6 }), flat.searchSync(q, { k: 6 }), 'after the id shuffle');
  assert.ok((await index.compact()) > 0, 'compact gives back the removed rows');
  assertLikeFlat(await index.search(q, { k: 6 }), flat.searchSync(q, { k: 6 }), 'after compact');
  flat.close();
  await index.close();
});

Ids('automatic ids: the same as FlatIndex over many adds, and search results match', async () => {
  const d = 8;
  const flat = new FlatIndex({ dim: d, metric: 'ip' });
  const index = new ShardedIndex({ dim: d, metric: 'ip', shards: 5 });
  for (let i = 0; i < 6; i++) {
    const v = gaussianMatrix(1 + i * 13, d, 40 + i);
    assert.equal(await index.add(v), flat.add(v), `add ${i}`);
  }
  const q = gaussianMatrix(3, d, 49);
  assertLikeFlat(await index.search(q, { k: 20 }), flat.searchSync(q, { k: 20 }), 'automatic ids');
  // Automatic ids must stay exact as numbers.
  await index.add(gaussianMatrix(1, d, 50), [Number.MAX_SAFE_INTEGER]);
  flat.add(gaussianMatrix(1, d, 50), [Number.MAX_SAFE_INTEGER]);
  await sameError(() => flat.add(gaussianMatrix(2, d, 51)), () => index.add(gaussianMatrix(2, d, 51)), 'automatic ids past 2^53 - 1');
  assert.is(index.size, flat.size);
  flat.close();
  await index.close();
});

Ids('BigInt64Array ids beyond 2^53: routed by BigInt modulo, results BigInt64Array, automatic ids continue', async () => {
  const d = 8;
  const big = [2n ** 62n + 5n, 2n ** 53n + 1n, 9n, 2n ** 63n - 1n - 3n];
  const vectors = gaussianMatrix(4, d, 41);
  const flat = new FlatIndex({ dim: d, metric: 'l2' });
  const index = new ShardedIndex({ dim: d, metric: 'l2', shards: 3 });
  const other = gaussianMatrix(1, d, 43);
  flat.add(other, [4]);
  await index.add(other, [4]); // a number id first: results are Float64Array until...
  assert.instance((await index.search(other, { k: 1 })).ids, Float64Array);
  flat.add({ data: vectors, rows: 4, cols: d }, BigInt64Array.from(big));
  await index.add({ data: vectors, rows: 4, cols: d }, BigInt64Array.from(big));
  for (let i = 0; i < big.length; i++) {
    assert.ok(await index.has(big[i]), `has ${big[i]}`);
    assert.equal(bits(await index.get(big[i])), bits(vectors.subarray(i * d, (i + 1) * d)), `get ${big[i]}`);
  }
  const perShard = (await index.memoryUsage()).shards.map((s) => s.size);
  const want = [0, 0, 0];
  for (const id of [4n, ...big]) want[Number(id % 3n)]++;
  assert.equal(perShard, want, 'shard = id % 3 (BigInt modulo)');
  const r = await index.search(vectors, { k: 7 });
  assert.instance(r.ids, BigInt64Array);
  assertLikeFlat(r, flat.searchSync(vectors, { k: 7 }), 'BigInt ids');
  for (let i = 0; i < big.length; i++) assert.is(r.ids[i * 7], big[i], `query ${i}: its own vector first`);
  // Automatic ids continue past the largest BigInt id, as bigints.
  assert.equal(await index.add(gaussianMatrix(2, d, 42)), flat.add(gaussianMatrix(2, d, 42)));
  assert.ok(await index.has(2n ** 63n - 1n - 1n));
  await sameError(() => flat.add(gaussianMatrix(2, d, 44)), () => index.add(gaussianMatrix(2, d, 44)), 'automatic ids past 2^63 - 1');
  assert.is(await index.remove(BigInt64Array.of(2n ** 62n + 5n, 9n)), 2);
  flat.remove(BigInt64Array.of(2n ** 62n + 5n, 9n));
  assertLikeFlat(await index.search(other, { k: 7 }), flat.searchSync(other, { k: 7 }), 'after removals');
  flat.close();
  await index.close();
});

Ids.run();

// ---------------------------------------------------------------------------------------------
const Ties = suite('ties: lower shard first, then lower id; scores as FlatIndex');

for (const metric of METRICS) {
  Ties(`equal vectors (${metric}): the documented order, and what FlatIndex gives as a set`, async () => {
    const d = 8;
    const shards = 3;
    const v = gaussianMatrix(1, d, 61).map((x) => 10 * x); // ip: the copies outscore the others
    // Twelve copies of v under ids that do not sort in insertion order, then 20 other vectors.
    const tied = [9, 3, 6, 0, 12, 1, 4, 7, 10, 13, 2, 5];
    const others = gaussianMatrix(20, d, 62);
    const otherIds = Array.from({ length: 20 }, (_, i) => 100 + i);
    const vectors = new Float32Array((tied.length + 20) * d);
    tied.forEach((_, i) => vectors.set(v, i * d));
    vectors.set(others, tied.length * d);
    const ids = [...tied, ...otherIds];
    const flat = new FlatIndex({ dim: d, metric });
    const index = new ShardedIndex({ dim: d, metric, shards });
    flat.add(vectors, ids);
    await index.add(vectors, ids);
    // The rule: each shard keeps its k earliest-inserted tied vectors; the merge orders them by
    // shard, then id.
    const rule = (k: number) => {
      const out: number[] = [];
      for (let s = 0; s < shards; s++) out.push(...tied.filter((id) => id % shards === s).slice(0, k).sort((a, b) => a - b));
      return out.slice(0, k);
    };
    for (const k of [1, 4, 7, 12]) {
      const got = await index.search(v, { k });
      const want = flat.searchSync(v, { k });
      assert.equal(bits(got.scores), bits(want.scores), `k = ${k}: scores bit for bit`);
      assert.equal(idList(got.ids), rule(k), `k = ${k}: ids by the documented tie rule`);
      assert.equal(idList(want.ids), tied.slice(0, k), `k = ${k}: FlatIndex keeps insertion order`);
    }
    // Every tied id fits: the sets are equal, and the rest follows exactly.
    assertLikeFlat(await index.search(v, { k: 20 }), flat.searchSync(v, { k: 20 }), 'k = 20');
    flat.close();
    await index.close();
  });
}

Ties.run();

// ---------------------------------------------------------------------------------------------
const Atomic = suite('add / remove: all or nothing across shards, FlatIndex errors, call order');

Atomic('a failing add leaves every shard unchanged; the error names the row of the call', async () => {
  const d = 4;
  const flat = new FlatIndex({ dim: d });
  const index = new ShardedIndex({ dim: d, shards: 3 });
  const base = gaussianMatrix(6, d, 71);
  flat.add(base, [0, 1, 2, 3, 4, 5]);
  await index.add(base, [0, 1, 2, 3, 4, 5]);
  const q = gaussianMatrix(2, d, 72);
  const before = await index.search(q, { k: 6 });
  const withNaN = gaussianMatrix(5, d, 73);
  withNaN[3 * d + 2] = NaN; // row 3 (shard of id 23 = 2)
  const big = gaussianMatrix(5, d, 74);
  big.fill(3e30, 2 * d, 3 * d); // row 2: a squared norm that overflows
  const cases: Array<[string, Float32Array, number[]]> = [
    ['an id already present (row 2, shard 1)', gaussianMatrix(4, d, 75), [20, 21, 4, 22]],
    ['an id twice (rows 1 and 3)', gaussianMatrix(4, d, 76), [30, 33, 31, 33]],
    ['NaN in row 3, an id already present in row 1', withNaN, [20, 2, 22, 23, 24]],
    ['a squared norm that overflows in row 2, an id present in row 0', big, [5, 41, 42, 43, 44]],
    ['NaN (row 3) and an overflowing norm (row 2)', (() => {
      const m = big.slice();
      m[3 * d] = NaN;
      return m;
    })(), [40, 41, 42, 43, 44]],
  ];
  for (const [what, vectors, ids] of cases) {
    await sameError(() => flat.add(vectors, ids), () => index.add(vectors, ids), what);
    assert.is(index.size, 6, `${what}: size`);
    for (const id of ids) if (id > 5) assert.not.ok(await index.has(id), `${what}: id ${id} not added`);
    assertLikeFlat(await index.search(q, { k: 6 }), before, `${what}: search unchanged`);
  }
  // A failed BigInt add does not switch the results to BigInt64Array.
  await sameError(
    () => flat.add(gaussianMatrix(2, d, 77), BigInt64Array.of(2n ** 60n, 3n)),
    () => index.add(gaussianMatrix(2, d, 77), BigInt64Array.of(2n ** 60n, 3n)),
    'BigInt ids, one present',
  );
  assert.instance((await index.search(q, { k: 6 })).ids, Float64Array);
  assert.equal(await index.add(gaussianMatrix(1, d, 78)), flat.add(gaussianMatrix(1, d, 78)), 'automatic ids unaffected');
  flat.close();
  await index.close();
});

Atomic('a failing remove removes nothing on any shard; same errors as FlatIndex', async () => {
  const d = 4;
  const flat = new FlatIndex({ dim: d });
  const index = new ShardedIndex({ dim: d, shards: 3 });
  const v = gaussianMatrix(6, d, 81);
  flat.add(v, [0, 1, 2, 3, 4, 5]);
  await index.add(v, [0, 1, 2, 3, 4, 5]);
  const bad: Array<[string, unknown]> = [
    ['an unknown id in another shard', [0, 1, 2, 9]],
    ['an unknown id first', [7, 1]],
    ['an id twice', [0, 4, 2, 4]],
    ['-1', -1],
    ['1.5', [0, 1.5]],
    ['-1n', -1n],
    ['2^64n', 2n ** 64n],
    ['a string', '1'],
    ['null', null],
    ['a BigUint64Array', new BigUint64Array(1)],
  ];
  for (const [what, ids] of bad) {
    await sameError(() => flat.remove(ids as any), () => index.remove(ids as any), `remove ${what}`);
    assert.is(index.size, 6, `${what}: nothing removed`);
    for (let id = 0; id < 6; id++) assert.ok(await index.has(id), `${what}: id ${id} still there`);
  }
  flat.close();
  await index.close();
});

Atomic('calls take effect in call order; inputs may be reused as soon as add() returns', async () => {
  const d = 4;
  const index = new ShardedIndex({ dim: d, shards: 2 });
  const v = gaussianMatrix(3, d, 91);
  const keep = v.slice();
  const ids = [1, 2, 3];
  const added = index.add(v, ids);
  v.fill(7);
  ids[0] = 99;
  assert.ok(await index.has(1), 'has() after add() (not awaited) sees it');
  // Queued behind a write that fails: its copy was taken at the call, its automatic ids follow
  // the failure (nothing was added by it).
  const failing = index.add(gaussianMatrix(2, d, 92), [50, 2]);
  const w = gaussianMatrix(2, d, 93);
  const wKeep = w.slice();
  const queued = index.add(w);
  w.fill(9);
  const removed = index.remove(1);
  const size = index.memoryUsage();
  await added;
  await rejectsVlk(failing, 'ERR_VLK_INVALID_ARG', [/^ids\[1\]: id 2 is already in the index$/], 'queued failing add');
  assert.equal(await queued, { firstId: 4 });
  assert.is(await removed, 1);
  assert.equal((await size).shards.reduce((a, s) => a + s.size, 0), 4);
  assert.equal(bits(await index.get(2)), bits(keep.subarray(d, 2 * d)));
  assert.equal(bits(await index.get(5)), bits(wKeep.subarray(d, 2 * d)));
  assert.not.ok(await index.has(50));
  assert.not.ok(await index.has(99));
  assert.is(index.size, 4);
  await index.close();
});

Atomic.run();

// ---------------------------------------------------------------------------------------------
const Errors = suite('bad input: the codes and messages of FlatIndex; close(); a dying worker');

Errors('constructor: the checks of FlatIndex, and shards', async () => {
  const bad: unknown[] = [
    undefined,
    8,
    {},
    { dim: 0 },
    { dim: 1.5 },
    { dim: 2 ** 31 },
    { dim: 4, metric: 'dot' },
    { dim: 4, storage: 'f16' },
    { dim: 4, storage: 'f32', approximate: true },
    { dim: 4, storage: 'bf16', approximate: 1 },
    { dim: 70_000, storage: 'i8' },
  ];
  for (const options of bad) {
    let want: VlkError | undefined;
    try {
      new FlatIndex(options as any).close();
    } catch (err) {
      want = err as VlkError;
    }
    if (want === undefined) {
      // FlatIndex takes it (a storage that became available): so does ShardedIndex.
      await new ShardedIndex({ ...(options as object), shards: 1 } as any).close();
      continue;
    }
    assert.throws(
      () => new ShardedIndex(options as any),
      (e: unknown) => e instanceof VlkError && e.code === want!.code && e.message === want!.message,
      `new ShardedIndex(${JSON.stringify(options)}): ${want!.code} ${want!.message}`,
    );
  }
  for (const shards of [0, -1, 1.5, 257, '2', null]) {
    assert.throws(
      () => new ShardedIndex({ dim: 4, shards: shards as any }),
      (e: unknown) => e instanceof VlkError && e.code === 'ERR_VLK_INVALID_ARG' && /options\.shards/.test(e.message),
      `shards ${String(shards)}`,
    );
  }
});

Errors('add, has, get, search: every bad input rejects as FlatIndex throws (never a synchronous throw)', async () => {
  const d = 4;
  const flat = new FlatIndex({ dim: d });
  const index = new ShardedIndex({ dim: d, shards: 2 });
  const base = gaussianMatrix(5, d, 101);
  flat.add(base, [0, 1, 2, 3, 4]);
  await index.add(base, [0, 1, 2, 3, 4]);
  const v2 = () => gaussianMatrix(2, d, 102);
  const q = gaussianMatrix(2, d, 103);
  const qNaN = q.slice();
  qNaN[5] = NaN;
  const adds: Array<[string, unknown, unknown]> = [
    ['vectors a Float64Array', new Float64Array(8), [5, 6]],
    ['vectors null', null, undefined],
    ['plain length 10, dim 4', new Float32Array(10), undefined],
    ['view cols 5', { data: new Float32Array(10), rows: 2, cols: 5 }, undefined],
    ['view length 7 != 2 x 4', { data: new Float32Array(7), rows: 2, cols: 4 }, undefined],
    ['ids length 3 for 2 vectors', v2(), [5, 6, 7]],
    ['ids a string', v2(), 'ab'],
    ['ids [5, "6"]', v2(), [5, '6']],
    ['a negative id', v2(), [5, -1]],
    ['a number id 2^53', v2(), [5, 2 ** 53]],
    ['a negative BigInt id', v2(), BigInt64Array.of(5n, -3n)],
    ['-Infinity in vectors', Float32Array.of(1, 2, 3, 4, 1, 1, -Infinity, 1), undefined],
  ];
  for (const [what, vectors, ids] of adds) {
    await sameError(() => flat.add(vectors as any, ids as any), () => index.add(vectors as any, ids as any), `add: ${what}`);
  }
  const keys: Array<[string, unknown]> = [
    ['an unknown id', 7],
    ['-1', -1],
    ['2^53', 2 ** 53],
    ['a string', '1'],
    ['0.5', 0.5],
    ['-2n', -2n],
    ['undefined', undefined],
  ];
  for (const [what, key] of keys) {
    await sameError(() => flat.get(key as any), () => index.get(key as any), `get ${what}`);
    if (what !== 'an unknown id') await sameError(() => flat.has(key as any), () => index.has(key as any), `has ${what}`);
  }
  const searches: Array<[string, unknown, unknown]> = [
    ['options missing', q, undefined],
    ['queries a Float64Array', new Float64Array(8), { k: 1 }],
    ['queries length 6, dim 4', new Float32Array(6), { k: 1 }],
    ['queries cols 3', { data: new Float32Array(6), rows: 2, cols: 3 }, { k: 1 }],
    ['no queries', new Float32Array(0), { k: 1 }],
    ['k = 0', q, { k: 0 }],
    ['k = 1.5', q, { k: 1.5 }],
    ['k = 2^31', q, { k: 2 ** 31 }],
    ['k missing', q, {}],
    ['threads = 0', q, { k: 1, threads: 0 }],
    ['a bad signal', q, { k: 1, signal: 'x' }],
    ['NaN in queries', qNaN, { k: 1 }],
  ];
  for (const [what, queries, options] of searches) {
    await sameError(() => flat.search(queries as any, options as any), () => index.search(queries as any, options as any), `search: ${what}`);
  }
  // Nothing changed, and the index still works.
  assert.is(index.size, 5);
  assertLikeFlat(await index.search(q, { k: 3 }), flat.searchSync(q, { k: 3 }), 'after the bad inputs');
  flat.close();
  await index.close();
});

Errors('AbortSignal: already aborted, aborted in flight (at once, every shard told), then usable', async () => {
  const d = 64;
  const index = new ShardedIndex({ dim: d, metric: 'cosine', shards: 2 });
  await index.add(gaussianMatrix(20_000, d, 111));
  const queries = gaussianMatrix(64, d, 112);
  const ac = new AbortController();
  ac.abort(new Error('stop'));
  const pre = await rejectsVlk(index.search(queries, { k: 5, signal: ac.signal }), 'ABORT_ERR', [], 'already aborted');
  assert.is(pre.name, 'AbortError');
  assert.is((pre.cause as Error).message, 'stop');

  const t0 = performance.now();
  await index.search(queries, { k: 5 });
  const full = performance.now() - t0;
  const shared = new AbortController(); // one signal for several searches
  const pending = [0, 1, 2].map(() => index.search(queries, { k: 5, signal: shared.signal }));
  const reason = new Error('late');
  queueMicrotask(() => shared.abort(reason));
  const t1 = performance.now();
  for (const p of pending) {
    const e = await rejectsVlk(p, 'ABORT_ERR', [], 'aborted in flight');
    assert.is(e.name, 'AbortError');
    assert.is(e.cause, reason);
  }
  const aborted = performance.now() - t1;
  assert.ok(aborted < 3 * full + 50, `rejected after ${aborted.toFixed(1)} ms (a search takes ${full.toFixed(1)} ms)`);
  // The workers answer the aborted requests, then the index works as before.
  const r = await index.search(queries, { k: 5, signal: new AbortController().signal });
  assert.is(r.counts[0], 5);
  await index.close();
});

Errors('close(): idempotent, waits for calls in flight; later calls reject "index is closed"', async () => {
  const index = new ShardedIndex({ dim: 4, shards: 2 });
  const added = index.add(gaussianMatrix(3, 4, 121), [1, 2, 3]);
  const searched = index.search(gaussianMatrix(1, 4, 122), { k: 3 });
  const c1 = index.close();
  const c2 = index.close();
  assert.is(c1, c2, 'the same promise');
  assert.equal(await added, { firstId: undefined }, 'an add made before close() completes');
  assert.is((await searched).counts[0], 3, 'a search made before close() completes');
  await c1;
  await index.close();
  assert.throws(() => index.size, (e: unknown) => e instanceof VlkError && e.code === 'ERR_VLK_INVALID_ARG' && /^index is closed$/.test(e.message));
  const closed: Array<[string, () => Promise<unknown>]> = [
    ['add', () => index.add(new Float32Array(4))],
    ['remove', () => index.remove(1)],
    ['has', () => index.has(1)],
    ['get', () => index.get(1)],
    ['compact', () => index.compact()],
    ['memoryUsage', () => index.memoryUsage()],
    ['search', () => index.search(new Float32Array(4), { k: 1 })],
  ];
  for (const [what, fn] of closed) await rejectsVlk(fn(), 'ERR_VLK_INVALID_ARG', [/^index is closed$/], what);
  assert.is(index.dim, 4);
  assert.is(index.metric, 'ip');
  assert.is(index.shards, 2);
  for (const w of (index as any)[WORKERS] as Worker[]) assert.is(w.threadId, -1, 'worker stopped');

  // await using
  let kept: ShardedIndex | undefined;
  {
    await using scoped = new ShardedIndex({ dim: 4, shards: 1 });
    await scoped.add(new Float32Array(4));
    kept = scoped;
  }
  await rejectsVlk(kept.has(0), 'ERR_VLK_INVALID_ARG', [/^index is closed$/], 'after await using');
});

Errors('a worker that dies rejects the calls in flight (ERR_VLK_INTERNAL, naming the shard) and closes the index', async () => {
  const d = 32;
  const index = new ShardedIndex({ dim: d, shards: 3 });
  await index.add(gaussianMatrix(30_000, d, 131));
  const inFlight = index.search(gaussianMatrix(32, d, 132), { k: 10 });
  const workers = (index as any)[WORKERS] as Worker[];
  void workers[1].terminate();
  await rejectsVlk(inFlight, 'ERR_VLK_INTERNAL', [/shard 1/], 'in flight');
  await rejectsVlk(index.has(3), 'ERR_VLK_INVALID_ARG', [/^index is closed \(shard 1: .*exited/], 'after the death');
  assert.throws(() => index.size, (e: unknown) => e instanceof VlkError && /^index is closed/.test(e.message));
  await index.close();
  await index.close();
});

Errors.run();

// ---------------------------------------------------------------------------------------------
const Process = suite('entries and process lifetime');

Process('an unclosed index does not keep the process alive; the ESM entry starts its workers too', () => {
  const script = (lib: string) => `
    const t0 = Date.now();
    const index = new ShardedIndex({ dim: 8, shards: 3 });
    const main = async () => {
      await index.add(new Float32Array(8 * 50).fill(0.25));
      const r = await index.search(new Float32Array(8).fill(1), { k: 4 });
      const ac = new AbortController();
      const p = index.search(new Float32Array(8).fill(1), { k: 4, signal: ac.signal });
      ac.abort();
      await p.catch(() => {});
      console.log(JSON.stringify({ counts: Array.from(r.counts), has: await index.has(49), lib: ${JSON.stringify(lib)} }));
    };
    main();
  `;
  const cjs = runNode(`const { ShardedIndex } = require(${JSON.stringify(distCjs)});\n${script('cjs')}`);
  assert.is(cjs.status, 0, `cjs: exit status (stderr: ${cjs.stderr})`);
  assert.equal(cjs.json, { counts: [4], has: true, lib: 'cjs' });
  const esm = runNode(`import { ShardedIndex } from ${JSON.stringify(distEsm)};\n${script('esm')}`, {}, ['--input-type=module']);
  assert.is(esm.status, 0, `esm: exit status (stderr: ${esm.stderr})`);
  assert.equal(esm.json, { counts: [4], has: true, lib: 'esm' });
});

Process('an index dropped without close() has its workers stopped by garbage collection', async () => {
  const gc: (() => void) | undefined = (globalThis as any).gc;
  assert.ok(gc, 'run with --expose-gc (test/run.mjs passes it)');
  const workers = await (async () => {
    const index = new ShardedIndex({ dim: 4, shards: 2 });
    await index.add(new Float32Array(8), [1, 2]);
    assert.is((await index.search(new Float32Array(4), { k: 2 })).counts[0], 2);
    return (index as any)[WORKERS] as Worker[];
  })();
  for (let i = 0; i < 50 && workers.some((w) => w.threadId !== -1); i++) {
    gc!();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.ok(workers.every((w) => w.threadId === -1), 'both workers stopped');
});

Process.run();
