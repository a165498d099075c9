// Demo (`npm run demo`): a synthetic catalogue with planted structure (products x colours), indexed in a
// FlatIndex, searched plainly (the reference image) and composed (reference image + "in colour c" text),
// recall@K of the planted targets for both, timed next to a plain-JS brute force of the same searches.
// `--data <folder>`: the same on real image/caption embeddings (Flickr sets), with the benchmark's recall.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { FlatIndex, composedSearch, flickrFromEmbeddings, info } from 'vlkernels';
import { makeGaussian } from '../bench/lib/data.mjs';
import { fmt } from '../bench/lib/table.mjs';

const require = createRequire(import.meta.url);
const { values: opts } = parseArgs({
  options: {
    data: { type: 'string' },
    quick: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opts.help) {
  console.log(`usage: npm run demo [-- --quick] [-- --data <folder>]
  (no options)     synthetic catalogue: 20,000 items (2,000 products x 10 colours), 500 composed queries
  --quick          a small catalogue (2,000 items, 100 queries): a smoke run
  --data FOLDER    real embeddings: flickr30k-clip-vitl14-1k, flickr8k-clip-vitb32-100x5 or flickr8k-tinyclip-1k`);
  process.exit(0);
}

const started = performance.now();
const seconds = (ms) => `${fmt(ms / 1e3, 2)} s`;
const K = 10;

/** Row norms in float64. */
function norms(data, rows, dim) {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += data[r * dim + j] * data[r * dim + j];
    out[r] = Math.sqrt(s);
  }
  return out;
}

/**
 * Plain-JS exact cosine top-k, the reference the native results are checked against: float64 dot
 * products, an insertion-sorted list of k per query, ties to the lower row, `exclude[q]` skipped.
 */
function bruteForceCosine(queries, nq, gallery, n, dim, k, exclude) {
  const gNorm = norms(gallery, n, dim);
  const ids = new Int32Array(nq * k).fill(-1);
  const scores = new Float64Array(nq * k).fill(-Infinity);
  for (let q = 0; q < nq; q++) {
    const qo = q * dim;
    let qn = 0;
    for (let j = 0; j < dim; j++) qn += queries[qo + j] * queries[qo + j];
    qn = Math.sqrt(qn);
    const base = q * k;
    for (let r = 0; r < n; r++) {
      if (exclude && exclude[q] === r) continue;
      let dot = 0;
      const go = r * dim;
      for (let j = 0; j < dim; j++) dot += queries[qo + j] * gallery[go + j];
      const s = qn > 0 && gNorm[r] > 0 ? dot / (qn * gNorm[r]) : 0;
      if (s <= scores[base + k - 1]) continue;
      let p = k - 1;
      while (p > 0 && scores[base + p - 1] < s) {
        scores[base + p] = scores[base + p - 1];
        ids[base + p] = ids[base + p - 1];
        p--;
      }
      scores[base + p] = s;
      ids[base + p] = r;
    }
  }
  return { ids, scores };
}

/**
 * Queries whose native top-k equals the brute force's: the same ids in order, or a swap only between
 * scores within 1e-5 (fp32 vs float64 rounding on a near tie). Also the largest score difference.
 */
function agreement(res, ref, nq, k) {
  let same = 0;
  let maxDiff = 0;
  for (let q = 0; q < nq; q++) {
    let ok = true;
    for (let r = 0; r < k; r++) {
      const i = q * k + r;
      const diff = Math.abs(res.scores[i] - ref.scores[i]);
      maxDiff = Math.max(maxDiff, diff);
      // Rank r's score must match; its id may differ only on such a near tie (then the scores match too).
      if (diff > 1e-5) ok = false;
    }
    if (ok) same++;
  }
  return { same, maxDiff };
}

/** Recall@k (percent) of one planted target per query in a row-major ids list of width `width`. */
function recall(ids, targets, width, ks) {
  return ks.map((k) => {
    let hit = 0;
    for (let q = 0; q < targets.length; q++) {
      for (let r = 0; r < k; r++) if (Number(ids[q * width + r]) === targets[q]) hit++;
    }
    return (100 * hit) / targets.length;
  });
}

async function timed(fn) {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t0 };
}

function buildIndex(data, rows, dim) {
  const index = new FlatIndex({ dim, metric: 'cosine' });
  index.add({ data, rows, cols: dim });
  return index;
}

const footer = () => {
  const inf = info();
  console.log(`vlkernels ${inf.version}, ISA ${inf.isa}, ${inf.threads} threads; JS: one thread, float64; ` +
    `total ${seconds(performance.now() - started)}`);
};

// ---------------------------------------------------------------------------------------------
async function synthetic() {
  const PRODUCTS = opts.quick ? 200 : 2_000;
  const COLOURS = 10;
  const D = opts.quick ? 128 : 256;
  const Q = opts.quick ? 100 : 500;
  const N = PRODUCTS * COLOURS;
  const gauss = makeGaussian(2024);
  const unitish = () => Float32Array.from({ length: D }, () => gauss() / Math.sqrt(D));

  // Planted structure: item (p, c) = product p's direction + colour c's direction + photo noise. Row p*C + c.
  const product = Array.from({ length: PRODUCTS }, unitish);
  const colour = Array.from({ length: COLOURS }, unitish);
  const gallery = new Float32Array(N * D);
  for (let p = 0; p < PRODUCTS; p++) {
    for (let c = 0; c < COLOURS; c++) {
      const o = (p * COLOURS + c) * D;
      for (let j = 0; j < D; j++) gallery[o + j] = product[p][j] + colour[c][j] + (0.6 * gauss()) / Math.sqrt(D);
    }
  }
  // A query: the photo of product p in colour c1 plus the text "in colour c2"; the target is (p, c2).
  const refs = new Int32Array(Q);
  const targets = new Array(Q);
  const images = new Float32Array(Q * D);
  const texts = new Float32Array(Q * D);
  for (let q = 0; q < Q; q++) {
    const p = (q * 7919) % PRODUCTS;
    const c1 = q % COLOURS;
    const c2 = (c1 + 1 + (q % (COLOURS - 1))) % COLOURS;
    refs[q] = p * COLOURS + c1;
    targets[q] = p * COLOURS + c2;
    images.set(gallery.subarray(refs[q] * D, (refs[q] + 1) * D), q * D);
    for (let j = 0; j < D; j++) texts[q * D + j] = colour[c2][j] + (1.2 * gauss()) / Math.sqrt(D);
  }
  console.log(`vlkernels demo: ${fmt(N)} catalogue images (${fmt(PRODUCTS)} products x ${COLOURS} colours, ${D}-d), ` +
    `${fmt(Q)} queries "this product, in another colour", cosine, k = ${K}, the reference excluded`);

  const built = await timed(() => buildIndex(gallery, N, D));
  const index = built.value;
  const refIds = Float64Array.from(refs);
  const plainSearch = () => index.search({ data: images, rows: Q, cols: D }, { k: K, filter: { exclude: refIds } });
  const composed = () => composedSearch(index, { data: images, rows: Q, cols: D }, { data: texts, rows: Q, cols: D }, { k: K, mode: 'sum', excludeIds: refIds });
  await plainSearch(); // warm-up: pool start, first-touch page faults
  await composed();
  const plain = await timed(plainSearch);
  const comp = await timed(composed);

  // The same work in plain JS: the 'sum' composition is norm(0.5 image + 0.5 text) on the raw features.
  const jsPlain = await timed(() => bruteForceCosine(images, Q, gallery, N, D, K, refs));
  const jsComp = await timed(() => {
    const q = new Float32Array(Q * D);
    for (let i = 0; i < Q; i++) {
      let s = 0;
      for (let j = 0; j < D; j++) s += (0.5 * images[i * D + j] + 0.5 * texts[i * D + j]) ** 2;
      const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
      for (let j = 0; j < D; j++) q[i * D + j] = (0.5 * images[i * D + j] + 0.5 * texts[i * D + j]) * inv;
    }
    return bruteForceCosine(q, Q, gallery, N, D, K, refs);
  });
  const agreePlain = agreement(plain.value, jsPlain.value, Q, K);
  const agreeComp = agreement(comp.value, jsComp.value, Q, K);

  const ks = [1, 5, 10];
  const rp = recall(plain.value.ids, targets, K, ks);
  const rc = recall(comp.value.ids, targets, K, ks);
  const line = (r) => r.map((x) => fmt(x, 1)).join(' / ');
  console.log(`recall@1/5/10 of the planted target: plain (image only) ${line(rp)}, composed (image + text) ${line(rc)}`);
  console.log(`index build ${seconds(built.ms)}; plain search ${seconds(plain.ms)} vs JS brute force ${seconds(jsPlain.ms)} ` +
    `(${fmt(jsPlain.ms / plain.ms, 0)}x); composed ${seconds(comp.ms)} vs JS ${seconds(jsComp.ms)} (${fmt(jsComp.ms / comp.ms, 0)}x)`);
  console.log(`results agree with the JS brute force: plain ${agreePlain.same}/${Q}, composed ${agreeComp.same}/${Q} queries ` +
    `(largest score difference ${Math.max(agreePlain.maxDiff, agreeComp.maxDiff).toExponential(1)})`);
  index.close();
  return agreePlain.same === Q && agreeComp.same === Q;
}

// ---------------------------------------------------------------------------------------------
// Real embeddings: image and caption files of the Flickr sets in ../shared/data, by their file names.
const LAYOUTS = [
  { images: 'flickr30k_image_embeddings.npy', captions: 'flickr30k_text_embeddings.npy', perImage: 1, repeated: false },
  { images: 'image_embeddings.npy', captions: 'text_embeddings.npy', perImage: 5, repeated: true },
  { images: 'image.npy', captions: 'text.npy', perImage: 1, repeated: false },
];

async function real(folder) {
  const { readVectors } = require('../dist/cjs/vectors_io.js');
  const layout = LAYOUTS.find((l) => existsSync(join(folder, l.images)) && existsSync(join(folder, l.captions)));
  if (!layout) {
    console.error(`demo: ${folder} holds none of the known image/caption file pairs: ` +
      `${LAYOUTS.map((l) => `${l.images} + ${l.captions}`).join('; ')}`);
    return false;
  }
  let img = readVectors(join(folder, layout.images));
  const cap = readVectors(join(folder, layout.captions));
  if (layout.repeated) {
    // One image row per caption (5 identical rows per image): keep the first of each.
    const n = img.rows / layout.perImage;
    const data = new Float32Array(n * img.cols);
    for (let i = 0; i < n; i++) data.set(img.data.subarray(i * layout.perImage * img.cols, (i * layout.perImage + 1) * img.cols), i * img.cols);
    img = { data, rows: n, cols: img.cols };
  }
  const D = img.cols;
  console.log(`vlkernels demo on ${basename(folder)}: ${fmt(img.rows)} images, ${fmt(cap.rows)} captions ` +
    `(${layout.perImage} per image), ${D}-d, cosine, k = ${K}`);

  const built = await timed(() => buildIndex(img.data, img.rows, D));
  const index = built.value;
  const plainSearch = () => index.search(cap, { k: K });
  await plainSearch();
  const plain = await timed(plainSearch);
  const js = await timed(() => bruteForceCosine(cap.data, cap.rows, img.data, img.rows, D, K, null));
  const agree = agreement(plain.value, js.value, cap.rows, K);
  const report = await timed(() => flickrFromEmbeddings(img, cap, { perImage: layout.perImage, metric: 'cosine' }));
  const r = report.value;
  const dir = (d) => `R@1 ${fmt(d.r1, 1)}, R@5 ${fmt(d.r5, 1)}, R@10 ${fmt(d.r10, 1)}`;
  console.log(`benchmark recall: image->text ${dir(r.i2t)}; text->image ${dir(r.t2i)}; rSum ${fmt(r.rsum, 1)} ` +
    `(${seconds(report.ms)})`);
  const targets = Array.from({ length: cap.rows }, (_, c) => Math.floor(c / layout.perImage));
  console.log(`caption -> image search: recall@1/5/10 ${recall(plain.value.ids, targets, K, [1, 5, 10]).map((x) => fmt(x, 1)).join(' / ')}; ` +
    `${seconds(plain.ms)} vs JS brute force ${seconds(js.ms)} (${fmt(js.ms / plain.ms, 0)}x); ` +
    `agree ${agree.same}/${cap.rows} queries (largest score difference ${agree.maxDiff.toExponential(1)})`);
  console.log('composed search needs (reference, modification, target) triplets; this folder has image-caption pairs, ' +
    'so it runs on the synthetic catalogue (npm run demo)');
  index.close();
  return agree.same === cap.rows;
}

const ok = opts.data !== undefined ? await real(opts.data) : await synthetic();
footer();
if (!ok) {
  console.error('demo: the native results differ from the JS brute force (or the data folder is not usable)');
  process.exitCode = 1;
}
