// Real data from ../shared/data (test/data.test.ts), skipped with a message when absent:
// BIGANN 10k (uint8 SIFT, 10000 x 128, 100 queries) and Fashion-MNIST small (1000 x 784, 500
// queries) searched with l2, k = 100, against their committed ground truth; Flickr30K CLIP ViT-L/14
// (1000 x 768 image and caption embeddings) as a cosine retrieval check against its README figures.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { info, search, searchSync, setIsa } from './helpers/lib';
import { readNpy } from './helpers/npy';
import { dataRoot } from './helpers/paths';
import { assertSameResult } from './helpers/compare';
import { assertSearch, L2_REL_TOL, referenceSearch } from './reference/search';

function toF32(a: { data: Uint8Array | Float32Array | Int32Array }): Float32Array {
  return a.data instanceof Float32Array ? a.data : Float32Array.from(a.data);
}

function l2(a: Float32Array, ai: number, b: Float32Array, bi: number, d: number): number {
  let s = 0;
  for (let c = 0; c < d; c++) {
    const x = a[ai * d + c] - b[bi * d + c];
    s += x * x;
  }
  return s;
}

interface GroundTruthSet {
  base: Float32Array;
  queries: Float32Array;
  gt: Int32Array;
  d: number;
  n: number;
  q: number;
  gtK: number;
}

function loadSet(dir: string, base: string, queries: string): GroundTruthSet {
  const b = readNpy(join(dir, base));
  const q = readNpy(join(dir, queries));
  const g = readNpy(join(dir, 'groundtruth_l2_top100.npy'));
  assert.is(g.dtype, 'i4');
  return {
    base: toF32(b),
    queries: toF32(q),
    gt: g.data as Int32Array,
    d: b.shape[1],
    n: b.shape[0],
    q: q.shape[0],
    gtK: g.shape[1],
  };
}

/**
 * Position by position: our distance equals the float64 distance of the ground-truth id (within
 * `tol` relative; 0 = exactly), and our id equals the ground-truth id wherever that distance is
 * more than 1e-6 relative away from its neighbours' (the 101st neighbour comes from `full`).
 */
function compareToGroundTruth(set: GroundTruthSet, res: { indices: Int32Array; scores: Float32Array }, k: number, tol: number): string[] {
  const problems: string[] = [];
  const { base, queries, gt, d, n, gtK } = set;
  for (let qi = 0; qi < set.q && problems.length < 20; qi++) {
    const gtDist = Array.from({ length: k }, (_, p) => l2(queries, qi, base, gt[qi * gtK + p], d));
    for (let p = 1; p < k; p++) {
      if (gtDist[p] < gtDist[p - 1]) problems.push(`ground truth of query ${qi} is not sorted at ${p}`);
    }
    // The (k+1)-th distance, for the last position's tie check.
    const all = Array.from({ length: n }, (_, j) => l2(queries, qi, base, j, d)).sort((x, y) => x - y);
    const next = all[k];
    for (let p = 0; p < k; p++) {
      const ours = res.scores[qi * k + p];
      if (Math.abs(ours - gtDist[p]) > tol * gtDist[p]) {
        problems.push(`query ${qi} position ${p}: distance ${ours}, ground truth id ${gt[qi * gtK + p]} is at ${gtDist[p]}`);
      }
      const prev = p > 0 ? gtDist[p - 1] : -Infinity;
      const after = p + 1 < k ? gtDist[p + 1] : next;
      const gap = L2_REL_TOL * gtDist[p];
      if (gtDist[p] - prev > gap && after - gtDist[p] > gap && res.indices[qi * k + p] !== gt[qi * gtK + p]) {
        problems.push(`query ${qi} position ${p}: id ${res.indices[qi * k + p]}, ground truth ${gt[qi * gtK + p]} (distance ${gtDist[p]}, distinct from its neighbours)`);
      }
    }
  }
  return problems;
}

/** Parses "[a, b, c], [d, e, f]" lists that follow `label` in a README. */
function readmeLists(text: string, label: RegExp): number[][] | undefined {
  const m = label.exec(text);
  if (!m) return undefined;
  // The lists may start on the next line; they end at a ';' or a blank line.
  const rest = text.slice(m.index + m[0].length).split(/;|\n\s*\n/)[0];
  const lists = [...rest.matchAll(/\[([\d,\s]+)\]/g)].map((x) => x[1].split(',').map((s) => Number(s.trim())));
  return lists.length ? lists : undefined;
}

const bigannDir = join(dataRoot, 'bigann10k-tiledb');
const fmnistDir = join(dataRoot, 'fashion-mnist-small-tiledb');
const flickrDir = join(dataRoot, 'flickr30k-clip-vitl14-1k');

// ---------------------------------------------------------------------------------------------
const Bigann = suite('BIGANN 10k (uint8 SIFT, l2, k = 100)');

if (!existsSync(join(bigannDir, 'base_u8.npy'))) {
  console.log(`data.test.ts: ${bigannDir} not found, skipping the BIGANN tests`);
  Bigann.skip('ground truth', () => {});
} else {
  let set: GroundTruthSet | undefined;
  const load = () => (set ??= loadSet(bigannDir, 'base_u8.npy', 'queries_u8.npy'));

  Bigann('shapes as documented', () => {
    const s = load();
    assert.equal([s.n, s.d, s.q, s.gtK], [10000, 128, 100, 100]);
  });

  Bigann('distances equal the ground truth exactly, ids where distances are distinct', () => {
    const s = load();
    const res = searchSync(s.queries, s.base, { k: 100, metric: 'l2', dim: s.d });
    // Integer distances below 2^24 are exact in float32: the library must report them exactly.
    assert.equal(compareToGroundTruth(s, res, 100, 0), []);
    const top5 = readmeLists(readFileSync(join(bigannDir, 'README.md'), 'utf8'), /top-5 =/);
    assert.ok(top5 && top5.length === 3, `README lists three top-5 rows: ${JSON.stringify(top5)}`);
    top5!.forEach((ids, qi) => assert.equal(Array.from(res.indices.subarray(qi * 100, qi * 100 + 5)), ids, `README top-5 of query ${qi}`));
  });

  Bigann('matches the float64 reference (tie order, planted duplicates)', () => {
    const s = load();
    const res = searchSync(s.queries, s.base, { k: 100, metric: 'l2', dim: s.d });
    assertSearch(referenceSearch(s.queries, s.base, s.d, 'l2'), res, 100, 'BIGANN');
  });

  Bigann('async, threads = 1 and every ISA path agree bit for bit', async () => {
    const s = load();
    const opts = { k: 100, metric: 'l2' as const, dim: s.d };
    const base = searchSync(s.queries, s.base, opts);
    assertSameResult(await search(s.queries, s.base, opts), base, 'async');
    assertSameResult(searchSync(s.queries, s.base, { ...opts, threads: 1 }), base, 'threads = 1');
    for (const isa of info().isas) {
      setIsa(isa as any);
      try {
        assertSameResult(searchSync(s.queries, s.base, opts), base, isa);
      } finally {
        setIsa(null);
      }
    }
  });
}

Bigann.run();

// ---------------------------------------------------------------------------------------------
const Fmnist = suite('Fashion-MNIST small (784-d pixels, l2, k = 100)');

if (!existsSync(join(fmnistDir, 'base_f32.npy'))) {
  console.log(`data.test.ts: ${fmnistDir} not found, skipping the Fashion-MNIST tests`);
  Fmnist.skip('ground truth', () => {});
} else {
  let set: GroundTruthSet | undefined;
  const load = () => (set ??= loadSet(fmnistDir, 'base_f32.npy', 'queries_f32.npy'));

  Fmnist('shapes as documented', () => {
    const s = load();
    assert.equal([s.n, s.d, s.q, s.gtK], [1000, 784, 500, 100]);
  });

  Fmnist('distances match the ground truth to 1e-6, ids where distances are distinct', () => {
    const s = load();
    const res = searchSync(s.queries, s.base, { k: 100, metric: 'l2', dim: s.d });
    assert.equal(compareToGroundTruth(s, res, 100, L2_REL_TOL), []);
    const top5 = readmeLists(readFileSync(join(fmnistDir, 'README.md'), 'utf8'), /top-5 =/);
    assert.ok(top5 && top5.length === 3, `README lists three top-5 rows: ${JSON.stringify(top5)}`);
    top5!.forEach((ids, qi) => assert.equal(Array.from(res.indices.subarray(qi * 100, qi * 100 + 5)), ids, `README top-5 of query ${qi}`));
  });

  Fmnist('matches the float64 reference; every ISA path agrees bit for bit', () => {
    const s = load();
    const opts = { k: 100, metric: 'l2' as const, dim: s.d };
    const res = searchSync(s.queries, s.base, opts);
    assertSearch(referenceSearch(s.queries, s.base, s.d, 'l2'), res, 100, 'Fashion-MNIST');
    for (const isa of info().isas) {
      setIsa(isa as any);
      try {
        assertSameResult(searchSync(s.queries, s.base, opts), res, isa);
      } finally {
        setIsa(null);
      }
    }
  });
}

Fmnist.run();

// ---------------------------------------------------------------------------------------------
const Flickr = suite('Flickr30K CLIP ViT-L/14 (cosine retrieval)');

if (!existsSync(join(flickrDir, 'flickr30k_image_embeddings.npy'))) {
  console.log(`data.test.ts: ${flickrDir} not found, skipping the Flickr30K tests`);
  Flickr.skip('recall', () => {});
} else {
  const readme = readFileSync(join(flickrDir, 'README.md'), 'utf8');
  const images = readNpy(join(flickrDir, 'flickr30k_image_embeddings.npy'));
  const texts = readNpy(join(flickrDir, 'flickr30k_text_embeddings.npy'));
  const d = images.shape[1];
  const n = images.shape[0];

  const recall = (indices: Int32Array, k: number, at: number) => {
    let hit = 0;
    for (let i = 0; i < n; i++) {
      for (let p = 0; p < at; p++) if (indices[i * k + p] === i) hit++;
    }
    return (100 * hit) / n;
  };

  for (const [dir, qs, gs] of [
    ['text→image', texts, images],
    ['image→text', images, texts],
  ] as const) {
    Flickr(`${dir} Recall@1/5/10 equal the README figures (to one query)`, () => {
      assert.equal([images.shape, texts.shape], [[1000, 768], [1000, 768]]);
      const res = searchSync(qs.data as Float32Array, gs.data as Float32Array, { k: 10, metric: 'cosine', dim: d });
      const got = [1, 5, 10].map((at) => recall(res.indices, 10, at));
      const m = new RegExp(`${dir} Recall@1/5/10 = ([\\d.]+) / ([\\d.]+) / ([\\d.]+)`).exec(readme);
      console.log(`\n    ${dir} Recall@1/5/10 = ${got.map((x) => x.toFixed(1)).join(' / ')}${m ? ` (README ${m.slice(1).join(' / ')})` : ''}`);
      assert.ok(m, 'README states the recall figures');
      m!.slice(1).forEach((s, i) => {
        assert.ok(Math.abs(got[i] - Number(s)) <= 0.1 + 1e-9, `Recall@${[1, 5, 10][i]}: ${got[i]} vs README ${s}`);
      });
    });
  }

  Flickr('caption top-5 equal the README lists; first 200 queries match the float64 reference', () => {
    const res = searchSync(texts.data as Float32Array, images.data as Float32Array, { k: 10, metric: 'cosine', dim: d });
    const top5 = readmeLists(readme, /top-5 images for captions [\d,]+:/);
    assert.ok(top5 && top5.length === 3, `README lists three top-5 rows: ${JSON.stringify(top5)}`);
    top5!.forEach((ids, qi) => assert.equal(Array.from(res.indices.subarray(qi * 10, qi * 10 + 5)), ids, `caption ${qi}`));
    const q200 = (texts.data as Float32Array).subarray(0, 200 * d);
    const sub = searchSync(q200, images.data as Float32Array, { k: 10, metric: 'cosine', dim: d });
    assertSearch(referenceSearch(q200, images.data as Float32Array, d, 'cosine'), sub, 10, 'Flickr30K text→image');
  });
}

Flickr.run();
