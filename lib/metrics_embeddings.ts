// Benchmark metrics from embeddings (lib): Flickr30K / COCO 5K / COCO 1K, CIRR and FashionIQ without
// a score matrix, the ranks streamed by the native rank-of-targets kernels (crossModalRanks,
// rankOfTargets) on the addon's pool, then summarised by the metrics of lib/metrics.ts.
import { describe, isRecord, readMatrix } from './args';
import { VlkError } from './errors';
import { averageReports, flickr, type Coco1kReport, type CrossModalReport } from './metrics/retrieval';
import { cirr, fashionIq, resolveCirr, type CirrQueryRef, type CirrReport, type FashionIqQueryRef, type FashionIqReport } from './metrics/composed';
import { ABSENT, indexNames, lookup, readNames, readPositive, readTies, type Ties } from './metrics/common';
import { galleryMatrix, readKeyed, type KeyedEmbeddings } from './metrics/keyed';
import { crossModalRanks, rankOfTargets } from './rank_of_targets';
import type { MatrixInput, Metric } from './types';

/** Options of the embeddings paths: similarity (default 'cosine'), tie rule, threads, cancellation. */
export interface EmbeddingMetricOptions {
  metric?: Metric;
  ties?: Ties;
  threads?: number;
  signal?: AbortSignal;
}

/** Options of the Flickr30K / COCO paths: captions per image (default 5), dim of plain arrays. */
export interface CrossModalEmbeddingOptions extends EmbeddingMetricOptions {
  perImage?: number;
  dim?: number;
}

function rowsOf(value: MatrixInput, name: string, dim: number | undefined): { data: Float32Array; rows: number; cols: number } {
  const arg = readMatrix(value, name);
  if ('view' in arg) return arg.view;
  if (dim === undefined) throw new VlkError('ERR_VLK_INVALID_ARG', `${name}: a plain Float32Array needs options.dim`);
  const d = readPositive(dim, 'options.dim');
  if (arg.plain.length % d !== 0) {
    throw new VlkError('ERR_VLK_SHAPE', `${name}: length ${arg.plain.length} is not a multiple of dim ${d}`);
  }
  return { data: arg.plain, rows: arg.plain.length / d, cols: d };
}

// options: undefined is {}; anything else that is not an object is ERR_VLK_TYPE (null included).
function readOptions<T>(options: unknown): T {
  if (options === undefined) return {} as T;
  if (!isRecord(options)) throw new VlkError('ERR_VLK_TYPE', `options: expected an object, got ${describe(options)}`);
  return options as T;
}

async function crossModalReport(images: MatrixInput, captions: MatrixInput, opts: CrossModalEmbeddingOptions): Promise<CrossModalReport> {
  const options = readOptions<CrossModalEmbeddingOptions>(opts);
  const perImage = readPositive(options.perImage, 'options.perImage', 5);
  const r = await crossModalRanks(images, captions, {
    perImage,
    metric: options.metric ?? 'cosine',
    ties: readTies(options.ties, 'options.ties'),
    dim: options.dim,
    threads: options.threads,
    signal: options.signal,
  });
  const report = flickr({ i2t: r.i2t, t2i: r.t2i, perImage });
  report.ties = { i2t: r.ties.i2t, t2i: r.ties.t2i };
  return report;
}

/**
 * Flickr30K protocol from embeddings: images (N x D) and captions (perImage*N x D, image-major),
 * ranks by the native streaming kernel (the N x 5N score matrix is never held), cosine by default.
 *
 * @example
 * ```ts
 * const r = await flickrFromEmbeddings({ data: img, rows: 1000, cols: 512 }, { data: txt, rows: 5000, cols: 512 });
 * r.rsum;
 * ```
 * @throws VlkError as crossModalRanks (shapes, non-finite values) and {@link flickr}; AbortError when aborted
 */
export function flickrFromEmbeddings(images: MatrixInput, captions: MatrixInput, options: CrossModalEmbeddingOptions = {}): Promise<CrossModalReport> {
  return crossModalReport(images, captions, options);
}

/**
 * COCO 5K protocol from embeddings (5,000 images x 25,000 captions), as {@link flickrFromEmbeddings}.
 *
 * @example
 * ```ts
 * (await coco5kFromEmbeddings(images, captions, { dim: 512 })).t2i.r1;
 * ```
 * @throws VlkError as {@link flickrFromEmbeddings}
 */
export function coco5kFromEmbeddings(images: MatrixInput, captions: MatrixInput, options: CrossModalEmbeddingOptions = {}): Promise<CrossModalReport> {
  return crossModalReport(images, captions, options);
}

/**
 * COCO 1K protocol from embeddings: `folds` (default 5) consecutive folds of images and their
 * captions, ranks within each fold, metrics averaged over the folds (see coco1k).
 *
 * @example
 * ```ts
 * (await coco1kFromEmbeddings(images, captions, { dim: 512 })).folds.length; // 5
 * ```
 * @throws VlkError as {@link flickrFromEmbeddings}; ERR_VLK_SHAPE when the images do not split into equal folds
 */
export async function coco1kFromEmbeddings(
  images: MatrixInput,
  captions: MatrixInput,
  options: CrossModalEmbeddingOptions & { folds?: number } = {},
): Promise<Coco1kReport> {
  options = readOptions<CrossModalEmbeddingOptions & { folds?: number }>(options);
  const folds = readPositive(options.folds, 'options.folds', 5);
  const perImage = readPositive(options.perImage, 'options.perImage', 5);
  const img = rowsOf(images, 'images', options.dim);
  const cap = rowsOf(captions, 'captions', options.dim ?? img.cols);
  if (img.rows % folds !== 0) throw new VlkError('ERR_VLK_SHAPE', `images: ${img.rows} rows do not split into ${folds} equal folds`);
  if (cap.rows !== img.rows * perImage) {
    throw new VlkError('ERR_VLK_SHAPE', `captions: ${cap.rows} rows, expected ${perImage} per image x ${img.rows} images`);
  }
  const n = img.rows / folds;
  const parts: CrossModalReport[] = [];
  for (let f = 0; f < folds; f++) {
    const fi = { data: img.data.subarray(f * n * img.cols, (f + 1) * n * img.cols), rows: n, cols: img.cols };
    const fc = { data: cap.data.subarray(f * n * perImage * cap.cols, (f + 1) * n * perImage * cap.cols), rows: n * perImage, cols: cap.cols };
    parts.push(await crossModalReport(fi, fc, { ...options, perImage, dim: undefined }));
  }
  return averageReports(parts);
}

/** A benchmark split as the loaders return it: named gallery and queries. */
export interface NamedSplit<Q> {
  queries: readonly Q[];
  gallery: readonly string[];
}

// Queries matrix (one composed query per annotation) checked against the gallery's dim.
function queryMatrix(value: unknown, name: string, count: number, dim: number) {
  const m = rowsOf(value as MatrixInput, name, dim);
  if (m.cols !== dim) throw new VlkError('ERR_VLK_DIM_MISMATCH', `${name}: dim ${m.cols}, the embeddings have ${dim}`);
  if (m.rows !== count) throw new VlkError('ERR_VLK_SHAPE', `${name}: ${m.rows} rows, expected ${count} (one per annotation)`);
  return m;
}

/**
 * CIRR from embeddings in one call: `queries` (one composed query per annotation, Q x D),
 * `embeddings` keyed by image name (a Map or { names, matrix }), `annotations` from loadCirr.
 * Recall@K ranks the target over the gallery with the reference excluded; Recall_subset@K ranks
 * it among the query's members minus the reference (everything else excluded), both by the
 * native rank-of-targets kernel on the same fp32 scores.
 *
 * @example
 * ```ts
 * const split = loadCirr('/data/cirr-annotations', 'val');
 * const r = await cirrFromEmbeddings({ queries: { data: q, rows: 4181, cols: 640 }, embeddings: byName, annotations: split });
 * r.avg;
 * ```
 * @throws VlkError ERR_VLK_TYPE, ERR_VLK_SHAPE, ERR_VLK_DIM_MISMATCH, ERR_VLK_INVALID_ARG (an unknown
 *   name, a missing target, an image without embedding); AbortError when aborted
 */
export async function cirrFromEmbeddings(
  input: { queries: MatrixInput; embeddings: KeyedEmbeddings; annotations: NamedSplit<CirrQueryRef> } & EmbeddingMetricOptions,
): Promise<CirrReport> {
  if (!isRecord(input) || !isRecord(input.annotations)) {
    throw new VlkError('ERR_VLK_TYPE', `cirrFromEmbeddings: expected { queries, embeddings, annotations }, got ${describe(input)}`);
  }
  const ties = readTies(input.ties, 'cirrFromEmbeddings.ties');
  const keyed = readKeyed(input.embeddings, 'cirrFromEmbeddings.embeddings');
  const gallery = readNames(input.annotations.gallery, 'cirrFromEmbeddings.annotations.gallery');
  const resolved = resolveCirr(input.annotations.queries, gallery, 'cirrFromEmbeddings.annotations');
  const q = queryMatrix(input.queries, 'cirrFromEmbeddings.queries', resolved.length, keyed.dim);
  const g = { data: galleryMatrix(keyed, gallery, 'cirrFromEmbeddings.annotations.gallery'), rows: gallery.length, cols: keyed.dim };
  const common = { metric: input.metric ?? 'cosine', ties, threads: input.threads, signal: input.signal };
  const targets = Int32Array.from(resolved, (r) => r.target);
  const global = await rankOfTargets(q, g, targets, { ...common, exclude: Int32Array.from(resolved, (r) => r.reference) });
  // Subsets: everything but the members (minus the reference) and the target is excluded, in
  // chunks of queries so the exclusion lists stay small (each holds about N ids per query).
  const subsetRanks = new Int32Array(resolved.length);
  let subsetTies = 0;
  const CHUNK = 256;
  for (let s = 0; s < resolved.length; s += CHUNK) {
    const e = Math.min(resolved.length, s + CHUNK);
    const offsets = new Int32Array(e - s + 1);
    const ids: number[] = [];
    for (let i = s; i < e; i++) {
      const keep = new Set([...resolved[i].subset, resolved[i].target]);
      for (let j = 0; j < gallery.length; j++) if (!keep.has(j)) ids.push(j);
      offsets[i - s + 1] = ids.length;
    }
    const part = await rankOfTargets(
      { data: q.data.subarray(s * q.cols, e * q.cols), rows: e - s, cols: q.cols },
      g,
      targets.subarray(s, e),
      { ...common, exclude: { offsets, ids: Int32Array.from(ids) } },
    );
    subsetRanks.set(part.best, s);
    subsetTies += part.ties;
  }
  resolved.forEach((r, i) => {
    if (!r.targetInSubset) subsetRanks[i] = ABSENT;
  });
  const report = cirr({ ranks: global.best, subsetRanks });
  report.ties = { recall: global.ties, subset: subsetTies };
  return report;
}

/**
 * FashionIQ from embeddings in one call: per category `queries` (Q x D composed queries),
 * `embeddings` keyed by ASIN, `annotations` from loadFashionIq; the reference stays in the gallery.
 *
 * @example
 * ```ts
 * const dress = loadFashionIq('/data/fashioniq-annotations', 'dress', 'val');
 * (await fashionIqFromEmbeddings({ categories: { dress: { queries: q, embeddings: byAsin, annotations: dress } } })).overall;
 * ```
 * @throws VlkError as {@link cirrFromEmbeddings}
 */
export async function fashionIqFromEmbeddings(
  input: {
    categories: Record<string, { queries: MatrixInput; embeddings: KeyedEmbeddings; annotations: NamedSplit<FashionIqQueryRef> }>;
  } & EmbeddingMetricOptions,
): Promise<FashionIqReport> {
  if (!isRecord(input) || !isRecord(input.categories)) {
    throw new VlkError('ERR_VLK_TYPE', `fashionIqFromEmbeddings: expected { categories }, got ${describe(input)}`);
  }
  const ties = readTies(input.ties, 'fashionIqFromEmbeddings.ties');
  const ranks: Record<string, { ranks: Int32Array }> = {};
  const tieCounts: Record<string, number> = {};
  for (const [cat, c] of Object.entries(input.categories)) {
    const at = `fashionIqFromEmbeddings.categories.${cat}`;
    if (!isRecord(c) || !isRecord(c.annotations) || !Array.isArray(c.annotations.queries)) {
      throw new VlkError('ERR_VLK_TYPE', `${at}: expected { queries, embeddings, annotations }`);
    }
    const keyed = readKeyed(c.embeddings, `${at}.embeddings`);
    const gallery = readNames(c.annotations.gallery, `${at}.annotations.gallery`);
    const index = indexNames(gallery, `${at}.annotations.gallery`);
    const targets = Int32Array.from(c.annotations.queries as FashionIqQueryRef[], (x, i) => {
      if (x === null || typeof x !== 'object' || x.target === null || x.target === undefined) {
        throw new VlkError('ERR_VLK_INVALID_ARG', `${at}.annotations.queries[${i}].target: missing (the test split hides its targets)`);
      }
      return lookup(index, x.target, `${at}.annotations.queries[${i}].target`, `${at}.annotations.gallery`);
    });
    const q = queryMatrix(c.queries, `${at}.queries`, targets.length, keyed.dim);
    const g = { data: galleryMatrix(keyed, gallery, `${at}.annotations.gallery`), rows: gallery.length, cols: keyed.dim };
    const r = await rankOfTargets(q, g, targets, { metric: input.metric ?? 'cosine', ties, threads: input.threads, signal: input.signal });
    ranks[cat] = { ranks: r.best };
    tieCounts[cat] = r.ties;
  }
  const report = fashionIq({ categories: ranks });
  for (const cat of Object.keys(tieCounts)) report.categories[cat].ties = tieCounts[cat];
  return report;
}

/**
 * The embeddings paths in one namespace (asynchronous; each returns a Promise of the report).
 *
 * @example
 * ```ts
 * const r = await metricsFromEmbeddings.flickr(images, captions, { dim: 512 });
 * ```
 * @throws Nothing itself; see each function.
 */
export const metricsFromEmbeddings = Object.freeze({
  flickr: flickrFromEmbeddings,
  coco5k: coco5kFromEmbeddings,
  coco1k: coco1kFromEmbeddings,
  cirr: cirrFromEmbeddings,
  fashionIq: fashionIqFromEmbeddings,
});
