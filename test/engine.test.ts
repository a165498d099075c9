// An embedded vector engine returns approximate candidates, vlkernels re-ranks them exactly
// (test/engine.test.ts). The engine is PGlite (Postgres compiled to WASM, in process) with its
// pgvector extension; the gallery is Flickr30K's first 1000 CLIP ViT-L/14 image embeddings (768-d,
// unit norm) from ../shared/data, the queries its 1000 first-caption embeddings. Skipped with a
// message when that folder is absent.
//
// Two indexes with deliberately cheap settings, so that the engine's answers are approximate:
//  - HNSW over the fp32 vector(768) column (vector_ip_ops, m = 4, ef_construction = 10): its top 10
//    at hnsw.ef_search = 10, then 40 candidates at hnsw.ef_search = 40 (ef_search >= LIMIT);
//  - HNSW over binary_quantize(embedding)::bit(768) (bit_hamming_ops): the engine orders by Hamming
//    distance of the sign bits, top 10 and 40 candidates at hnsw.ef_search = 40.
// For each: ground truth is vlkernels' exact `search` (ip, k = 10); the 40 candidates go to
// `rerank` with the fp32 gallery. Printed: recall@10 of the engine's own top 10 (before) and of the
// re-rank (after), and the time of every step. Checked: every re-ranked row is the exact top 10 of
// its candidate set (the k = N search ordering restricted to it, and a float64 reference), its
// scores are the `search` scores of the same ids bit for bit, recall after >= before, and recall
// after equals the fraction of ground-truth ids the candidates contain (the re-rank loses nothing).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite/vector';
import { rerank, search, searchSync } from './helpers/lib';
import type { SearchResult } from './helpers/lib';
import { readNpy } from './helpers/npy';
import { dataRoot } from './helpers/paths';

const K = 10;
const OVERSAMPLE = 4;
const M = OVERSAMPLE * K; // candidates asked of the engine per query
const IP_TOL = 1e-5; // |float32 kernel - float64| for unit vectors of 768 values, with margin

const flickrDir = join(dataRoot, 'flickr30k-clip-vitl14-1k');
const imagesFile = join(flickrDir, 'flickr30k_image_embeddings.npy');
const captionsFile = join(flickrDir, 'flickr30k_text_embeddings.npy');

function ms(t0: number): string {
  return `${(performance.now() - t0).toFixed(0)} ms`;
}

/** pgvector's text form of row i: JS prints each float32 (as a double) exactly, pgvector reads it back with strtof. */
function literal(m: Float32Array, i: number, d: number): string {
  return `[${Array.from(m.subarray(i * d, (i + 1) * d)).join(',')}]`;
}

interface World {
  db: PGlite;
  gallery: Float32Array;
  queries: Float32Array;
  literals: string[];
  n: number;
  q: number;
  d: number;
  /** vlkernels exact top-K per query (the ground truth), Q x K. */
  truth: SearchResult;
  /** The full exact ordering (k = N) per query, Q x N, and each (query, row)'s score: rank[q * N + row]. */
  full: SearchResult;
  rank: Int32Array;
}

const Engine = suite('PGlite + pgvector approximate candidates, vlkernels exact rerank (Flickr30K CLIP ViT-L/14)');

if (!existsSync(imagesFile) || !existsSync(captionsFile)) {
  console.log(`engine.test.ts: ${flickrDir} not found, skipping the PGlite + pgvector re-rank tests`);
  Engine.skip('pgvector HNSW candidates re-ranked', () => {});
} else {
  let world: World | undefined;

  Engine.before(async () => {
    let t = performance.now();
    const images = readNpy(imagesFile);
    const captions = readNpy(captionsFile);
    assert.is(images.dtype, 'f4');
    assert.is(captions.dtype, 'f4');
    const [n, d] = images.shape;
    const q = captions.shape[0];
    assert.equal([n, d, q, captions.shape[1]], [1000, 768, 1000, 768]);
    const gallery = images.data as Float32Array;
    const queries = captions.data as Float32Array;
    const literals = Array.from({ length: q }, (_, i) => literal(queries, i, d));
    console.log(`engine.test.ts: loaded ${n} images and ${q} captions x ${d}: ${ms(t)}`);

    t = performance.now();
    const db = await PGlite.create({ extensions: { vector } });
    await db.exec('CREATE EXTENSION IF NOT EXISTS vector');
    const version = (await db.query<{ v: string }>("SELECT extversion AS v FROM pg_extension WHERE extname = 'vector'")).rows[0].v;
    console.log(`engine.test.ts: PGlite started with pgvector ${version}: ${ms(t)}`);

    // The engine's ids are the gallery rows, so its answers are rerank candidates as they are.
    t = performance.now();
    await db.exec(`CREATE TABLE items (id integer PRIMARY KEY, embedding vector(${d}))`);
    for (let b = 0; b < n; b += 100) {
      const values: string[] = [];
      for (let i = b; i < Math.min(n, b + 100); i++) values.push(`(${i}, '${literal(gallery, i, d)}')`);
      await db.exec(`INSERT INTO items VALUES ${values.join(',')}`);
    }
    // The text form carried every float32 exactly: the engine's stored row 0 reads back bit for bit.
    const stored = (await db.query<{ t: string }>('SELECT embedding::text AS t FROM items WHERE id = 0')).rows[0].t;
    const row0 = Float32Array.from(JSON.parse(stored) as number[]);
    assert.ok(Buffer.from(row0.buffer).equals(Buffer.from(gallery.buffer, gallery.byteOffset, d * 4)), 'row 0 stored inexactly');
    console.log(`engine.test.ts: inserted ${n} rows: ${ms(t)}`);

    t = performance.now();
    await db.exec('CREATE INDEX items_hnsw_ip ON items USING hnsw (embedding vector_ip_ops) WITH (m = 4, ef_construction = 10)');
    console.log(`engine.test.ts: HNSW (vector_ip_ops, m = 4, ef_construction = 10) built: ${ms(t)}`);
    t = performance.now();
    await db.exec(`CREATE INDEX items_hnsw_bq ON items USING hnsw ((binary_quantize(embedding)::bit(${d})) bit_hamming_ops)`);
    console.log(`engine.test.ts: HNSW over binary_quantize(embedding) (bit_hamming_ops) built: ${ms(t)}`);
    // 1000 rows is small enough for the planner to prefer a sequential scan (exact): use the indexes.
    await db.exec('SET enable_seqscan = off');

    t = performance.now();
    const truth = await search(queries, gallery, { k: K, dim: d, metric: 'ip' });
    console.log(`engine.test.ts: brute force ground truth, vlkernels search (ip, k = ${K}, ${q} queries): ${ms(t)}`);
    const full = searchSync(queries, gallery, { k: n, dim: d, metric: 'ip' });
    const rank = new Int32Array(q * n);
    for (let i = 0; i < q; i++) for (let p = 0; p < n; p++) rank[i * n + full.indices[i * n + p]] = p;
    world = { db, gallery, queries, literals, n, q, d, truth, full, rank };
  });

  Engine.after(async () => {
    await world?.db.close();
  });

  /** Runs one SQL query per caption (its vector as $1) and returns the ids, Q x width, -1 padded, and how many came back short. */
  async function engineIds(w: World, sql: string, width: number): Promise<{ ids: Int32Array; short: number }> {
    const ids = new Int32Array(w.q * width).fill(-1);
    let short = 0;
    for (let i = 0; i < w.q; i++) {
      const { rows } = await w.db.query<{ id: number }>(sql, [w.literals[i]]);
      assert.ok(rows.length <= width, `query ${i}: the engine returned ${rows.length} rows for LIMIT ${width}`);
      if (rows.length < width) short++;
      rows.forEach((r, j) => (ids[i * width + j] = r.id));
    }
    return { ids, short };
  }

  /** Ground-truth ids found in each query's first `take` entries of `ids` (Q x width). */
  function hits(w: World, ids: Int32Array, width: number, take: number): number {
    let h = 0;
    for (let i = 0; i < w.q; i++) {
      const row = new Set(ids.subarray(i * width, i * width + take));
      for (let p = 0; p < K; p++) if (row.has(w.truth.indices[i * K + p])) h++;
    }
    return h;
  }

  function dot64(w: World, i: number, row: number): number {
    let s = 0;
    const qo = i * w.d;
    const go = row * w.d;
    for (let c = 0; c < w.d; c++) s += w.queries[qo + c] * w.gallery[go + c];
    return s;
  }

  /** Problems of the re-ranked result against the exact answers for the candidates (empty: none). */
  function checkRerank(w: World, cands: Int32Array, got: SearchResult): string[] {
    const problems: string[] = [];
    const add = (m: string) => problems.length < 20 && problems.push(m);
    assert.is(got.k, K);
    assert.is(got.count, w.q);
    for (let i = 0; i < w.q; i++) {
      const set = [...new Set(Array.from(cands.subarray(i * M, (i + 1) * M)).filter((r) => r >= 0))];
      const want = Math.min(K, set.length);
      if (got.counts[i] !== want) add(`query ${i}: counts ${got.counts[i]}, ${set.length} distinct candidates`);
      // (1) The k = N search ordering restricted to the candidates: ids and float32 scores bit for bit.
      const byRank = set.slice().sort((a, b) => w.rank[i * w.n + a] - w.rank[i * w.n + b]).slice(0, want);
      // (2) A float64 reference: the candidates by exact score, ties (within float32 rounding) aside.
      const s64 = new Map(set.map((r) => [r, dot64(w, i, r)]));
      const by64 = set.slice().sort((a, b) => s64.get(b)! - s64.get(a)! || a - b);
      for (let p = 0; p < K; p++) {
        const id = got.indices[i * K + p];
        const score = got.scores[i * K + p];
        if (p >= want) {
          if (id !== -1 || !Number.isNaN(score)) add(`query ${i} rank ${p}: padding (${id}, ${score})`);
          continue;
        }
        const exact = w.full.scores[i * w.n + w.rank[i * w.n + id]];
        if (id !== byRank[p]) add(`query ${i} rank ${p}: id ${id}, restricted search ordering has ${byRank[p]}`);
        if (!Object.is(score, exact)) add(`query ${i} rank ${p}: id ${id} score ${score}, search scored it ${exact}`);
        if (Math.abs(score - s64.get(id)!) > IP_TOL) add(`query ${i} rank ${p}: id ${id} score ${score}, float64 ${s64.get(id)}`);
        const ref = s64.get(by64[p])!;
        const prev = p > 0 ? s64.get(by64[p - 1])! : Infinity;
        const next = p + 1 < by64.length ? s64.get(by64[p + 1])! : -Infinity;
        if (prev - ref > IP_TOL && ref - next > IP_TOL && id !== by64[p]) {
          add(`query ${i} rank ${p}: id ${id}, float64 reference ${by64[p]} (score ${ref}, distinct from its neighbours)`);
        }
        if (Math.abs(s64.get(id)! - ref) > IP_TOL) add(`query ${i} rank ${p}: id ${id} at float64 ${s64.get(id)}, reference ${ref}`);
      }
    }
    return problems;
  }

  interface Case {
    title: string;
    label: string;
    /** SQL run before the top-K queries and before the candidate queries. */
    setTop: string;
    setCandidates: string;
    /** ORDER BY expression ($1: the query vector). */
    orderBy: string;
    index: string;
  }

  async function runCase(c: Case): Promise<void> {
    const w = world!;
    const topSql = `SELECT id FROM items ORDER BY ${c.orderBy} LIMIT ${K}`;
    const candSql = `SELECT id FROM items ORDER BY ${c.orderBy} LIMIT ${M}`;
    await w.db.exec(c.setTop);
    const plan = (await w.db.query<Record<string, string>>(`EXPLAIN ${topSql}`, [w.literals[0]])).rows.map((r) => Object.values(r)[0]).join('\n');
    assert.ok(plan.includes(`Index Scan using ${c.index}`), `the engine does not use ${c.index}:\n${plan}`);

    let t = performance.now();
    const top = await engineIds(w, topSql, K);
    const tTop = ms(t);
    await w.db.exec(c.setCandidates);
    t = performance.now();
    const cands = await engineIds(w, candSql, M);
    const tCands = ms(t);
    t = performance.now();
    const got = await rerank(w.queries, w.gallery, cands.ids, { k: K, dim: w.d, metric: 'ip' });
    const tRerank = ms(t);

    const total = w.q * K;
    const before = hits(w, top.ids, K, K);
    const firstOfCands = hits(w, cands.ids, M, K);
    const inCands = hits(w, cands.ids, M, M);
    const after = hits(w, got.indices, K, K);
    const f = (h: number) => (h / total).toFixed(3);
    console.log(
      `engine.test.ts: ${c.label}: engine top ${K} for ${w.q} queries ${tTop}` +
        `${top.short ? ` (${top.short} short)` : ''}; ${M} candidates ${tCands}${cands.short ? ` (${cands.short} short)` : ''}; ` +
        `vlkernels rerank ${tRerank}`,
    );
    console.log(
      `engine.test.ts: ${c.label}: recall@${K} vs brute force: before ${f(before)} (engine's top ${K}), ` +
        `after ${f(after)} (vlkernels rerank of ${M}); ground truth in the candidates ${f(inCands)}, ` +
        `engine's own first ${K} of its ${M}: ${f(firstOfCands)}`,
    );

    assert.equal(checkRerank(w, cands.ids, got), [], `${c.title}: rerank vs exact`);
    assert.ok(after >= before, `${c.title}: recall after ${f(after)} < before ${f(before)}`);
    assert.is(after, inCands, `${c.title}: the re-rank kept ${after} ground-truth ids, the candidates held ${inCands}`);
  }

  Engine('HNSW on vector(768), ef_search 10 for the top 10, 40 candidates at ef_search 40, re-ranked exactly', () =>
    runCase({
      title: 'HNSW vector_ip_ops',
      label: 'HNSW vector_ip_ops',
      setTop: 'SET hnsw.ef_search = 10',
      setCandidates: `SET hnsw.ef_search = ${M}`,
      orderBy: 'embedding <#> $1',
      index: 'items_hnsw_ip',
    }),
  );

  Engine('HNSW on binary_quantize(embedding), Hamming top 10 and 40 candidates at ef_search 40, re-ranked exactly', () =>
    runCase({
      title: 'HNSW binary_quantize bit_hamming_ops',
      label: 'HNSW binary_quantize (Hamming)',
      setTop: `SET hnsw.ef_search = ${M}`,
      setCandidates: `SET hnsw.ef_search = ${M}`,
      orderBy: `binary_quantize(embedding)::bit(768) <~> binary_quantize($1::vector)`,
      index: 'items_hnsw_bq',
    }),
  );
}

Engine.run();
