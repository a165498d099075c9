// FlatIndex storage and filters (test/flat_index_storage.test.ts): a bf16 or i8 index returns
// exactly what the f32 index over the same vectors returns (ids and scores bit for bit, counts,
// padding) on random data, on clustered data full of near-ties and duplicates, at awkward sizes, in
// every metric, sync and async, and on real CLIP embeddings; `rescored` reports the re-score work;
// approximate mode re-scores nothing, saves memory and keeps a measured recall; id filters (allow,
// exclude in every form) equal a float64 brute-force reference; bad options give typed errors.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FlatIndex, VlkError } from './helpers/lib';
import type { FlatIndexSearchResult, FlatIndexStorage } from './helpers/lib';
import { readNpy } from './helpers/npy';
import { dataRoot } from './helpers/paths';
import { gaussianMatrix, normalizeRows, rng } from './helpers/random';

type Metric = 'ip' | 'cosine' | 'l2';
const METRICS: Metric[] = ['ip', 'cosine', 'l2'];
const REDUCED: FlatIndexStorage[] = ['bf16', 'i8'];

function clustered(rows: number, d: number, seed: number): Float32Array {
  const r = rng(seed);
  const centres = gaussianMatrix(3, d, seed + 1);
  const out = new Float32Array(rows * d);
  for (let i = 0; i < rows; i++) {
    const dup = i > 0 && r() < 0.2;
    const c = Math.floor(r() * 3);
    for (let j = 0; j < d; j++) {
      out[i * d + j] = dup ? out[(i - 1) * d + j] : centres[c * d + j] + 1e-4 * (2 * r() - 1);
    }
  }
  return out;
}

function assertSame(got: FlatIndexSearchResult, want: FlatIndexSearchResult, what: string): void {
  assert.equal(Array.from(got.counts), Array.from(want.counts), `${what}: counts`);
  assert.equal(Array.from(got.ids, Number), Array.from(want.ids, Number), `${what}: ids`);
  const a = new Uint32Array(got.scores.buffer, got.scores.byteOffset, got.scores.length);
  const b = new Uint32Array(want.scores.buffer, want.scores.byteOffset, want.scores.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i] && !(Number.isNaN(got.scores[i]) && Number.isNaN(want.scores[i]))) {
      assert.unreachable(`${what}: score ${i} is ${got.scores[i]}, f32 has ${want.scores[i]}`);
    }
  }
}

const Exact = suite('bf16 / i8 storage returns exactly the f32 top-k');

Exact('random and clustered data, awkward sizes, every metric, sync and async', async () => {
  const shapes = [
    { n: 1, d: 1, k: 1 },
    { n: 7, d: 7, k: 3 },
    { n: 7, d: 5, k: 12 },
    { n: 513, d: 513, k: 10 },
    { n: 2100, d: 33, k: 40 },
  ];
  let checked = 0;
  for (const storage of REDUCED) {
    for (const metric of METRICS) {
      for (const kind of ['random', 'clustered']) {
        for (const { n, d, k } of shapes) {
          const seed = 100 + checked;
          const rows = kind === 'random' ? gaussianMatrix(n, d, seed) : clustered(n, d, seed);
          const queries = kind === 'random' ? gaussianMatrix(9, d, seed + 7) : clustered(9, d, seed + 7);
          if (kind === 'clustered') queries.set(rows.subarray(0, d)); // a query equal to a stored row
          using f32 = new FlatIndex({ dim: d, metric });
          using reduced = new FlatIndex({ dim: d, metric, storage });
          const ids = Float64Array.from({ length: n }, (_, i) => 7 * i + 3);
          for (const index of [f32, reduced]) {
            index.add(rows.subarray(0, Math.floor(n / 2) * d), ids.subarray(0, Math.floor(n / 2)));
            index.add(rows.subarray(Math.floor(n / 2) * d), ids.subarray(Math.floor(n / 2)));
          }
          const want = f32.searchSync(queries, { k });
          const what = `${storage} ${metric} ${kind} n=${n} d=${d} k=${k}`;
          const sync = reduced.searchSync(queries, { k });
          assertSame(sync, want, `${what} sync`);
          assertSame(await reduced.search(queries, { k, threads: 1 }), want, `${what} async`);
          for (let q = 0; q < 9; q++) assert.ok(sync.rescored[q] >= sync.counts[q], `${what}: rescored`);
          assert.ok(want.rescored.every((v) => v === 0), 'f32 re-scores nothing');
          checked++;
        }
      }
    }
  }
  assert.is(checked, 60);
});

Exact('the bound prunes: few re-scored rows on random data', () => {
  const n = 20000;
  const d = 64;
  const rows = normalizeRows(gaussianMatrix(n, d, 5), d);
  const queries = normalizeRows(gaussianMatrix(20, d, 6), d);
  for (const storage of REDUCED) {
    using index = new FlatIndex({ dim: d, metric: 'cosine', storage });
    index.add(rows);
    const r = index.searchSync(queries, { k: 10 });
    const mean = r.rescored.reduce((s, v) => s + v, 0) / 20;
    assert.ok(mean >= 10 && mean < 400, `${storage}: ${mean} rows re-scored per query`);
  }
});

const realDir = join(dataRoot, 'flickr30k-clip-vitl14-1k');
Exact('real CLIP embeddings (Flickr30K ViT-L/14): bf16 and i8 equal f32', () => {
  if (!existsSync(realDir)) {
    console.log(`  skipped: ${realDir} is absent`);
    return;
  }
  const images = readNpy(join(realDir, 'flickr30k_image_embeddings.npy'));
  const texts = readNpy(join(realDir, 'flickr30k_text_embeddings.npy'));
  const d = images.shape[1];
  const gallery = images.data as Float32Array;
  const queries = texts.data as Float32Array;
  for (const metric of METRICS) {
    using f32 = new FlatIndex({ dim: d, metric });
    f32.add(gallery);
    const want = f32.searchSync(queries, { k: 10 });
    for (const storage of REDUCED) {
      using reduced = new FlatIndex({ dim: d, metric, storage });
      reduced.add(gallery);
      const got = reduced.searchSync(queries, { k: 10 });
      assertSame(got, want, `flickr30k ${storage} ${metric}`);
      const mean = got.rescored.reduce((s, v) => s + v, 0) / texts.shape[0];
      console.log(`  flickr30k ${storage} ${metric}: ${mean.toFixed(1)} rows re-scored per query (of 1000)`);
    }
  }
});

Exact.run();

const Approx = suite('approximate mode: codes only');

Approx('no re-score, less memory, recall measured against f32', () => {
  const n = 4000;
  const d = 96;
  const rows = gaussianMatrix(n, d, 11);
  const queries = gaussianMatrix(50, d, 12);
  for (const metric of METRICS) {
    using f32 = new FlatIndex({ dim: d, metric });
    f32.add(rows);
    const want = f32.searchSync(queries, { k: 10 });
    for (const storage of REDUCED) {
      using ap = new FlatIndex({ dim: d, metric, storage, approximate: true });
      assert.is(ap.approximate, true);
      ap.add(rows);
      const got = ap.searchSync(queries, { k: 10 });
      assert.ok(got.rescored.every((v) => v === 0));
      let hit = 0;
      for (let q = 0; q < 50; q++) {
        const truth = new Set(Array.from(want.ids.subarray(q * 10, q * 10 + 10), Number));
        for (let j = 0; j < 10; j++) if (truth.has(got.ids[q * 10 + j] as number)) hit++;
      }
      const recall = hit / 500;
      assert.ok(recall >= (storage === 'bf16' ? 0.95 : 0.85), `${storage} ${metric}: recall ${recall}`);
      const ratio = ap.memoryUsage().bytes / f32.memoryUsage().bytes;
      assert.ok(ratio < (storage === 'bf16' ? 0.65 : 0.45), `${storage}: memory ratio ${ratio}`);
      // get() decodes: close to the stored vector (cosine codes hold its direction, so a unit vector).
      const back = ap.get(5);
      let rn = 0;
      for (let j = 0; j < d; j++) rn += rows[5 * d + j] ** 2;
      const scale = metric === 'cosine' ? 1 / Math.sqrt(rn) : 1;
      let err = 0;
      let norm = 0;
      for (let j = 0; j < d; j++) {
        err += (back[j] - rows[5 * d + j] * scale) ** 2;
        norm += (rows[5 * d + j] * scale) ** 2;
      }
      assert.ok(Math.sqrt(err / norm) < 0.02, `${storage} ${metric}: get() relative error`);
    }
  }
});

Approx.run();

const Filters = suite('id filters inside the scan, against a float64 brute force');

function bruteForce(
  rows: Float32Array,
  ids: number[],
  q: Float32Array,
  d: number,
  k: number,
  ok: (id: number) => boolean,
): number[] {
  const scored: { id: number; s: number }[] = [];
  for (let i = 0; i < ids.length; i++) {
    if (!ok(ids[i])) continue;
    let s = 0;
    for (let j = 0; j < d; j++) s += rows[i * d + j] * q[j];
    scored.push({ id: ids[i], s });
  }
  scored.sort((a, b) => b.s - a.s);
  return scored.slice(0, k).map((e) => e.id);
}

Filters('allow and exclude in every form, every storage', async () => {
  const n = 1500;
  const d = 16;
  const nq = 6;
  const k = 8;
  const rows = gaussianMatrix(n, d, 21);
  const queries = gaussianMatrix(nq, d, 22);
  const ids = Array.from({ length: n }, (_, i) => 2 * i + 1);
  const allow = ids.filter((_, i) => i % 3 !== 0);
  const allowSet = new Set(allow);
  const perQuery = Array.from({ length: nq }, (_, q) => allow.slice(q * 5, q * 5 + 5 + q));
  const single = Float64Array.from({ length: nq }, (_, q) => (q % 2 === 0 ? allow[q] : -1));
  const offsets = new Int32Array(nq + 1);
  perQuery.forEach((l, q) => (offsets[q + 1] = offsets[q] + l.length));
  const csr = { offsets, ids: Float64Array.from(perQuery.flat()) };
  for (const storage of ['f32', ...REDUCED] as FlatIndexStorage[]) {
    using index = new FlatIndex({ dim: d, storage });
    index.add(rows, ids);
    const forms: [string, unknown, (q: number) => Set<number>][] = [
      ['array of arrays', perQuery, (q) => new Set(perQuery[q])],
      ['csr', csr, (q) => new Set(perQuery[q])],
      ['one id per query', single, (q) => new Set(single[q] >= 0 ? [single[q]] : [])],
      ['array of ids / null', Array.from(single, (v) => (v >= 0 ? v : null)), (q) => new Set(single[q] >= 0 ? [single[q]] : [])],
    ];
    for (const [name, exclude, excluded] of forms) {
      for (const allowForm of [allow, new Set(allow), Float64Array.from(allow), BigInt64Array.from(allow.map(BigInt))]) {
        const r = await index.search(queries, { k, filter: { allow: allowForm as never, exclude: exclude as never } });
        for (let q = 0; q < nq; q++) {
          const ex = excluded(q);
          const want = bruteForce(rows, ids, queries.subarray(q * d, q * d + d), d, k, (id) => allowSet.has(id) && !ex.has(id));
          assert.equal(Array.from(r.ids.subarray(q * k, q * k + k), Number), want, `${storage} ${name} query ${q}`);
        }
      }
    }
    // Fewer allowed than k: count per row, padding.
    const few = index.searchSync(queries, { k, filter: { allow: [ids[0], ids[1], 999999] } });
    for (let q = 0; q < nq; q++) {
      assert.is(few.counts[q], 2);
      assert.equal(new Set(Array.from(few.ids.subarray(q * k, q * k + 2), Number)), new Set([ids[0], ids[1]]));
      assert.is(few.ids[q * k + 2], -1);
      assert.ok(Number.isNaN(few.scores[q * k + 2]));
    }
    const none = index.searchSync(queries, { k, filter: { allow: [] } });
    assert.ok(none.counts.every((c) => c === 0));
  }
});

Filters('bad filters and options: typed errors', () => {
  using index = new FlatIndex({ dim: 4 });
  index.add(new Float32Array(8));
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
  assert.is(code(() => index.searchSync(q, { k: 1, filter: 5 as never })), 'ERR_VLK_TYPE');
  assert.is(code(() => index.searchSync(q, { k: 1, filter: { allow: 'x' as never } })), 'ERR_VLK_TYPE');
  assert.is(code(() => index.searchSync(q, { k: 1, filter: { allow: [-1] } })), 'ERR_VLK_INVALID_ARG');
  assert.is(code(() => index.searchSync(q, { k: 1, filter: { exclude: [1, 2] } })), 'ERR_VLK_SHAPE');
  assert.is(code(() => index.searchSync(q, { k: 1, filter: { exclude: [1.5] } })), 'ERR_VLK_INVALID_ARG');
  assert.is(code(() => index.searchSync(q, { k: 1, filter: { exclude: 'x' as never } })), 'ERR_VLK_TYPE');
  assert.is(
    code(() => index.searchSync(q, { k: 1, filter: { exclude: { offsets: new Int32Array([0, 3]), ids: [1] } } })),
    'ERR_VLK_SHAPE',
  );
  assert.is(code(() => new FlatIndex({ dim: 4, storage: 'fp16' as never })), 'ERR_VLK_INVALID_ARG');
  assert.is(code(() => new FlatIndex({ dim: 4, approximate: true })), 'ERR_VLK_INVALID_ARG');
  assert.is(code(() => new FlatIndex({ dim: 4, storage: 'i8', approximate: 1 as never })), 'ERR_VLK_TYPE');
  assert.is(code(() => new FlatIndex({ dim: 70000, storage: 'i8' })), 'ERR_VLK_INVALID_ARG');
  const bf = new FlatIndex({ dim: 70000, storage: 'bf16', approximate: true });
  assert.is(bf.storage, 'bf16');
  bf.close();
});

Filters.run();
