// Query-time graph re-ranking (lib, issue 7 item 2): attention-weighted query expansion and
// database-side gallery augmentation, both on the exact search kernel (native/core/search/
// expand_queries.hpp has the formulas):
//   expandQueries:  w_j = softmax_j(s_j / T) over the query's top-m neighbours,
//                   q' = norm(selfWeight q~ + sum_j w_j g~_j)      (x~ = x / |x| for 'cosine')
//   augmentGallery: g'_i = norm(sum over {i} + top-m others of softmax(s / T) g~), s_self = 1
// then search the expanded queries over the augmented gallery (expandQueries does it in the same
// native job when given `k`, over `options.searchGallery`, default the gallery itself).
import { atApi, fromNative, VlkError } from './errors';
import { describe, readThreads } from './args';
import { readSignal, runCancellable } from './cancel';
import { binding } from './loader';
import type { MatrixInput } from './types';
import { readInt, readMat, readNum, readOptions } from './gl_args';

/** Options of {@link expandQueries} and {@link augmentGallery}. */
export interface ExpandOptions {
  /** Vector width for plain Float32Array inputs. */
  dim?: number;
  /** Neighbours per vector; default 16. */
  m?: number;
  /** 'cosine' (default: vectors are mixed as unit vectors) or 'ip' (as given). */
  metric?: 'cosine' | 'ip';
  /** Softmax temperature over the neighbours' scores; default 0.1. */
  temperature?: number;
  /** Parallel width; default: the pool size. */
  threads?: number;
  /** Cancels the async form. */
  signal?: AbortSignal;
}

/** Options of {@link expandQueries}. */
export interface ExpandQueriesOptions extends ExpandOptions {
  /** beta, the weight of the query itself (outside the softmax); default 1. */
  selfWeight?: number;
  /** Re-search the expanded queries and return the top k (0 / undefined: no re-search). */
  k?: number;
  /** The gallery to re-search (e.g. augmentGallery's output); default the gallery. */
  searchGallery?: MatrixInput;
}

/** Result of {@link expandQueries}. */
export interface ExpandQueriesResult {
  /** Q x D expanded queries (unit norm). */
  expanded: Float32Array;
  /** Q x m neighbour rows used, best first. */
  neighbours: Int32Array;
  /** Q x m softmax weights. */
  weights: Float32Array;
  /** With k: Q x k rows of the re-search, best first, and their scores. */
  indices?: Int32Array;
  scores?: Float32Array;
  dim: number;
}

/** Result of {@link augmentGallery}. */
export interface AugmentGalleryResult {
  /** N x D augmented gallery (unit norm). */
  expanded: Float32Array;
  /** N x m neighbour rows (self excluded), best first. */
  neighbours: Int32Array;
  /** N x (m + 1) softmax weights, the self's first. */
  weights: Float32Array;
  dim: number;
}

function prepCommon(options: Record<string, unknown>, async: boolean) {
  const metric = options.metric ?? 'cosine';
  if (metric !== 'cosine' && metric !== 'ip') {
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.metric: expected 'cosine' or 'ip', got ${describe(metric)}`);
  }
  const spec: Record<string, unknown> = {
    metric,
    m: readInt(options.m, 'options.m', 16, 1, 'ERR_VLK_INVALID_K'),
    temperature: readNum(options.temperature, 'options.temperature', 0.1, (x) => x > 0, 'a finite number > 0'),
  };
  const threads = readThreads(options.threads);
  if (threads !== undefined) spec.threads = threads;
  return { spec, signal: async ? readSignal(options.signal, 'options.signal') : undefined };
}

function dimOf(options: Record<string, unknown>): number | undefined {
  if (options.dim === undefined) return undefined;
  return readInt(options.dim, 'options.dim', 0, 0, 'ERR_VLK_INVALID_ARG');
}

function prepExpand(queries: unknown, gallery: unknown, options: unknown, async: boolean) {
  const o = readOptions(options);
  const dim = dimOf(o);
  const q = readMat(queries, 'queries', dim);
  const g = readMat(gallery, 'gallery', q.cols);
  const p = prepCommon(o, async);
  Object.assign(p.spec, {
    q: q.rows,
    n: g.rows,
    d: q.cols,
    queries: q.data,
    gallery: g.data,
    selfWeight: readNum(o.selfWeight, 'options.selfWeight', 1, (x) => x >= 0, 'a finite number >= 0'),
    k: readInt(o.k, 'options.k', 0, 0, 'ERR_VLK_INVALID_K'),
  });
  if (o.searchGallery !== undefined) {
    const s = readMat(o.searchGallery, 'options.searchGallery', q.cols);
    p.spec.searchGallery = s.data;
    p.spec.searchRows = s.rows;
  }
  return { ...p, dim: q.cols };
}

function prepAugment(gallery: unknown, options: unknown, async: boolean) {
  const o = readOptions(options);
  const g = readMat(gallery, 'gallery', dimOf(o));
  const p = prepCommon(o, async);
  Object.assign(p.spec, { n: g.rows, d: g.cols, gallery: g.data });
  return { ...p, dim: g.cols };
}

/**
 * Attention-weighted query expansion: each query's top-m gallery neighbours (exact search),
 * weights `softmax(s / T)`, `q' = norm(selfWeight q~ + sum_j w_j g~_j)`; with `k`, the expanded
 * queries are searched again (over `searchGallery`, default the gallery) in the same job.
 * @throws VlkError ERR_VLK_TYPE / ERR_VLK_SHAPE / ERR_VLK_DIM_MISMATCH, ERR_VLK_INVALID_K (m or k
 * outside 1..N), ERR_VLK_INVALID_ARG (metric, temperature, selfWeight), ERR_VLK_NON_FINITE,
 * ERR_VLK_EMPTY; AbortError.
 */
export async function expandQueries(queries: MatrixInput, gallery: MatrixInput, options: ExpandQueriesOptions = {}): Promise<ExpandQueriesResult> {
  const p = atApi(() => prepExpand(queries, gallery, options, true), expandQueries);
  const r = await runCancellable(p.signal, expandQueries, (token) => binding.expandQueriesAsync(p.spec, token));
  return { ...(r as object), dim: p.dim } as ExpandQueriesResult;
}

/** {@link expandQueries} on the calling thread. */
export function expandQueriesSync(queries: MatrixInput, gallery: MatrixInput, options: ExpandQueriesOptions = {}): ExpandQueriesResult {
  const p = atApi(() => prepExpand(queries, gallery, options, false), expandQueriesSync);
  try {
    return { ...(binding.expandQueriesSync(p.spec) as object), dim: p.dim } as ExpandQueriesResult;
  } catch (err) {
    throw fromNative(err, expandQueriesSync);
  }
}

/**
 * Database-side augmentation: each gallery vector replaced by the attention-weighted mean of
 * itself and its top-m neighbours (self excluded from the search, then included with score 1 /
 * |g|^2 for 'ip'), weights `softmax(s / T)`, renormalised.
 */
export async function augmentGallery(gallery: MatrixInput, options: ExpandOptions = {}): Promise<AugmentGalleryResult> {
  const p = atApi(() => prepAugment(gallery, options, true), augmentGallery);
  const r = await runCancellable(p.signal, augmentGallery, (token) => binding.augmentGalleryAsync(p.spec, token));
  return { ...(r as object), dim: p.dim } as AugmentGalleryResult;
}

/** {@link augmentGallery} on the calling thread. */
export function augmentGallerySync(gallery: MatrixInput, options: ExpandOptions = {}): AugmentGalleryResult {
  const p = atApi(() => prepAugment(gallery, options, false), augmentGallerySync);
  try {
    return { ...(binding.augmentGallerySync(p.spec) as object), dim: p.dim } as AugmentGalleryResult;
  } catch (err) {
    throw fromNative(err, augmentGallerySync);
  }
}
