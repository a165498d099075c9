// Metrics from embeddings (test/metrics_embeddings.test.ts): Flickr / COCO 5K / COCO 1K, CIRR and
// FashionIQ computed by the native rank-of-targets kernels equal the same metrics on a float64
// score matrix built here (random embeddings, so no exact ties); the real Flickr30K / Flickr8k
// embeddings match their READMEs within 0.1; typed errors. Skipped while rankOfTargets is not built.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as lib from './helpers/lib';
import { gaussianMatrix, normalizeRows } from './helpers/random';
import { readNpy } from './helpers/npy';
import { dataRoot } from './helpers/paths';

const api = lib as unknown as Record<string, any>;
const available = typeof api.rankOfTargets === 'function' && typeof api.cirrFromEmbeddings === 'function';
const test = suite('metrics from embeddings');

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

function scores(a: Float32Array, ra: number, b: Float32Array, rb: number, d: number): Float64Array {
  const out = new Float64Array(ra * rb);
  for (let i = 0; i < ra; i++) {
    for (let j = 0; j < rb; j++) {
      let s = 0;
      for (let x = 0; x < d; x++) s += a[i * d + x] * b[j * d + x];
      out[i * rb + j] = s;
    }
  }
  return out;
}

function sameCrossModal(got: any, want: any, what: string) {
  for (const d of ['i2t', 't2i']) for (const k of ['r1', 'r5', 'r10', 'medr', 'meanr']) close(got[d][k], want[d][k], `${what} ${d}.${k}`);
  close(got.rsum, want.rsum, `${what} rsum`);
}

if (!available) {
  test('skipped: rankOfTargets / cirrFromEmbeddings are not exported by this build', () => {
    console.log('  skipped: rankOfTargets is not built yet');
  });
} else {
  test('Flickr / COCO 5K / COCO 1K equal the score-matrix path', async () => {
    for (const [n, d] of [[1, 3], [7, 16], [30, 33]]) {
      const img = normalizeRows(gaussianMatrix(n, d, n), d);
      const cap = normalizeRows(gaussianMatrix(5 * n, d, n + 1), d);
      const want = lib.flickr({ scores: { data: scores(img, n, cap, 5 * n, d), rows: n, cols: 5 * n } });
      const got = await api.flickrFromEmbeddings({ data: img, rows: n, cols: d }, { data: cap, rows: 5 * n, cols: d });
      sameCrossModal(got, want, `flickr n=${n}`);
      sameCrossModal(await api.coco5kFromEmbeddings(img, cap, { dim: d }), want, `coco5k n=${n}`);
    }
    const n = 15;
    const d = 9;
    const img = normalizeRows(gaussianMatrix(n, d, 3), d);
    const cap = normalizeRows(gaussianMatrix(5 * n, d, 4), d);
    const want = lib.coco1k({ scores: { data: scores(img, n, cap, 5 * n, d), rows: n, cols: 5 * n } });
    const got = await api.coco1kFromEmbeddings(img, cap, { dim: d });
    sameCrossModal(got, want, 'coco1k');
    assert.is(got.folds.length, 5);
  });

  test('CIRR and FashionIQ equal the score-matrix path', async () => {
    const n = 40;
    const d = 12;
    const q = 25;
    const names = Array.from({ length: n }, (_, i) => `img-${i}`);
    const gal = normalizeRows(gaussianMatrix(n, d, 9), d);
    const qs = normalizeRows(gaussianMatrix(q, d, 10), d);
    const embeddings = new Map(names.map((nm, i) => [nm, gal.subarray(i * d, (i + 1) * d)]));
    const queries = Array.from({ length: q }, (_, i) => ({
      reference: names[i % n],
      target: names[(i * 7 + 3) % n],
      members: [names[i % n], names[(i * 7 + 3) % n], names[(i + 5) % n], names[(i + 11) % n], names[(i + 17) % n], names[(i + 23) % n]],
    }));
    const S = scores(qs, q, gal, n, d);
    const want = lib.cirr({ scores: { data: S, rows: q, cols: n }, gallery: names, queries });
    const got = await api.cirrFromEmbeddings({ queries: { data: qs, rows: q, cols: d }, embeddings, annotations: { queries, gallery: names } });
    for (const k of ['r1', 'r5', 'r10', 'r50', 'avg']) close(got[k], (want as any)[k], `cirr ${k}`);
    assert.equal(got.subset, want.subset);
    const fiq = queries.map((x) => ({ reference: x.reference, target: x.target }));
    const wantF = lib.fashionIq({ categories: { dress: { scores: { data: S, rows: q, cols: n }, gallery: names, queries: fiq } } });
    const gotF = await api.fashionIqFromEmbeddings({
      categories: { dress: { queries: { data: qs, rows: q, cols: d }, embeddings: { names, matrix: { data: gal, rows: n, cols: d } }, annotations: { queries: fiq, gallery: names } } },
    });
    close(gotF.overall, wantF.overall, 'fiq overall');
    // an image without embedding is a typed error naming it
    const partial = new Map(embeddings);
    partial.delete('img-3');
    try {
      await api.cirrFromEmbeddings({ queries: { data: qs, rows: q, cols: d }, embeddings: partial, annotations: { queries, gallery: names } });
      assert.unreachable('expected an error');
    } catch (err) {
      assert.instance(err, lib.VlkError);
      assert.is((err as any).code, 'ERR_VLK_INVALID_ARG');
      assert.match((err as Error).message, /img-3/);
    }
  });

  test('real Flickr30K and Flickr8k embeddings match their READMEs within 0.1', async () => {
    const f30k = join(dataRoot, 'flickr30k-clip-vitl14-1k');
    if (existsSync(f30k)) {
      const img = readNpy(join(f30k, 'flickr30k_image_embeddings.npy')).data as Float32Array;
      const txt = readNpy(join(f30k, 'flickr30k_text_embeddings.npy')).data as Float32Array;
      const r = await api.flickrFromEmbeddings({ data: img, rows: 1000, cols: 768 }, { data: txt, rows: 1000, cols: 768 }, { perImage: 1 });
      for (const [v, w] of [[r.t2i.r1, 71.7], [r.t2i.r5, 92.0], [r.t2i.r10, 95.4], [r.i2t.r1, 74.7], [r.i2t.r5, 94.0], [r.i2t.r10, 97.0], [r.rsum, 524.8]]) {
        assert.ok(Math.abs(v - w) <= 0.1 + 1e-9, `flickr30k ${v} vs ${w}`);
      }
    } else console.log(`  skipped: ${f30k} is absent`);
    const f8k = join(dataRoot, 'flickr8k-clip-vitb32-100x5');
    if (existsSync(f8k)) {
      const img = readNpy(join(f8k, 'image_embeddings.npy')).data as Float32Array;
      const txt = readNpy(join(f8k, 'text_embeddings.npy')).data as Float32Array;
      const uniq = new Float32Array(100 * 512);
      for (let i = 0; i < 100; i++) uniq.set(img.subarray(5 * i * 512, (5 * i + 1) * 512), i * 512);
      const r = await api.flickrFromEmbeddings({ data: uniq, rows: 100, cols: 512 }, { data: txt, rows: 500, cols: 512 });
      for (const [v, w] of [[r.t2i.r1, 83.2], [r.t2i.r5, 99.0], [r.t2i.r10, 99.8], [r.i2t.r1, 93.0], [r.i2t.r5, 100], [r.i2t.r10, 100], [r.rsum, 575.0]]) {
        assert.ok(Math.abs(v - w) <= 0.1 + 1e-9, `flickr8k ${v} vs ${w}`);
      }
    } else console.log(`  skipped: ${f8k} is absent`);
  });
}
test.run();
