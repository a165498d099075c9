// Multi-query fusion search (lib, seed 000): R rewrites per query searched in one call and fused by
// embedding (normalised weighted sum, one exact search), by score (weighted mean or max over the
// rewrites, exact top-k of the fused score over the whole gallery) or by reciprocal-rank fusion.
// Definitions: native/core/search/multi_query_search.hpp.
import { atApi, fromNative, VlkError } from './errors';
import { describe, readFlag, readMetric, readThreads } from './args';
import { readSignal, runCancellable } from './cancel';
import { binding } from './loader';
import type { MatrixInput } from './types';
import { readInt, readMat, readNum, readOptions } from './gl_args';
import { types } from 'node:util';

/** How the rewrites of a query are fused. */
export type Fusion = 'embedding' | 'mean' | 'max' | 'rrf';

/** Options of {@link multiQuerySearch}. */
export interface MultiQuerySearchOptions {
  /** R, the rewrites per query (the queries hold Q*R rows, query-major). */
  rewrites: number;
  /** Results per query, 1..N. */
  k: number;
  /** 'embedding' | 'mean' | 'max' | 'rrf'. */
  fusion: Fusion;
  /** 'ip' (default) or 'cosine'; 'l2' only with 'embedding' and 'rrf'. */
  metric?: 'ip' | 'cosine' | 'l2';
  /** Rewrite weights >= 0: R values shared by every query, or Q*R (query-major); default all 1. */
  weights?: Float32Array;
  /** RRF constant c >= 0; default 60. */
  rrfConstant?: number;
  /** RRF: depth of each rewrite's ranked list; default max(k, 100), clamped to N. */
  depth?: number;
  /** k > N searches with k = N instead of throwing; default false. */
  clamp?: boolean;
  /** Vector width for plain Float32Array inputs. */
  dim?: number;
  /** Parallel width; default: the pool size. */
  threads?: number;
  /** Cancels the async form. */
  signal?: AbortSignal;
}

/** Result of {@link multiQuerySearch}: Q x k, row-major, best first. */
export interface MultiQuerySearchResult {
  indices: Int32Array;
  /** The fused score ('embedding': the search score of the fused query). */
  scores: Float32Array;
  k: number;
}

const FUSIONS: ReadonlySet<string> = new Set(['embedding', 'mean', 'max', 'rrf']);

function prepare(queries: unknown, gallery: unknown, options: unknown, async: boolean) {
  const o = readOptions(options);
  const dim = o.dim === undefined ? undefined : readInt(o.dim, 'options.dim', 0, 1, 'ERR_VLK_INVALID_ARG');
  const q = readMat(queries, 'queries', dim);
  const g = readMat(gallery, 'gallery', q.cols);
  if (q.rows === 0 || q.cols === 0) throw new VlkError('ERR_VLK_EMPTY', `queries: shape ${q.rows} x ${q.cols} is empty`);
  if (g.rows === 0) throw new VlkError('ERR_VLK_EMPTY', `gallery: shape ${g.rows} x ${g.cols} is empty`);
  if (typeof o.rewrites !== 'number' || !Number.isSafeInteger(o.rewrites) || o.rewrites < 1) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.rewrites: expected an integer >= 1, got ${describe(o.rewrites)}`);
  }
  const r = o.rewrites;
  if (q.rows % r !== 0) {
    throw new VlkError('ERR_VLK_SHAPE', `queries: ${q.rows} rows are not a whole number of groups of ${r} rewrites`);
  }
  const nq = q.rows / r;
  const n = g.rows;
  const range = `is not an integer in 1..N (N = ${n})`;
  if (typeof o.k !== 'number' || !Number.isInteger(o.k) || o.k < 1) {
    throw new VlkError('ERR_VLK_INVALID_K', `options.k: ${describe(o.k)} ${range}`);
  }
  let k = o.k;
  if (k > n) {
    if (!readFlag(o.clamp, 'options.clamp', false)) {
      throw new VlkError('ERR_VLK_INVALID_K', `options.k: ${k} ${range}; pass clamp: true to search with k = N`);
    }
    k = n;
  }
  if (typeof o.fusion !== 'string' || !FUSIONS.has(o.fusion)) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.fusion: expected 'embedding', 'mean', 'max' or 'rrf', got ${describe(o.fusion)}`);
  }
  const metric = readMetric(o.metric);
  if (metric === 'l2' && (o.fusion === 'mean' || o.fusion === 'max')) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.metric: 'l2' is not supported with fusion '${o.fusion}' (use 'ip' or 'cosine')`);
  }
  const spec: Record<string, unknown> = {
    q: nq,
    r,
    n,
    d: q.cols,
    queries: q.data,
    gallery: g.data,
    k,
    metric,
    fusion: o.fusion,
    rrfConstant: readNum(o.rrfConstant, 'options.rrfConstant', 60, (x) => x >= 0, 'a finite number >= 0'),
    depth: Math.min(n, readInt(o.depth, 'options.depth', Math.max(k, 100), 1, 'ERR_VLK_INVALID_ARG')),
  };
  if (o.weights !== undefined) {
    const w = o.weights;
    if (!types.isFloat32Array(w)) throw new VlkError('ERR_VLK_TYPE', `options.weights: expected a Float32Array, got ${describe(w)}`);
    if (w.length !== r && w.length !== nq * r) {
      throw new VlkError('ERR_VLK_SHAPE', `options.weights: length ${w.length}, expected R = ${r} or Q*R = ${nq * r}`);
    }
    for (let i = 0; i < w.length; i++) {
      if (!Number.isFinite(w[i])) throw new VlkError('ERR_VLK_NON_FINITE', `options.weights[${i}] is ${w[i]} (weights must be finite)`);
      if (w[i] < 0) throw new VlkError('ERR_VLK_INVALID_ARG', `options.weights[${i}]: ${w[i]} is negative (weights must be >= 0)`);
    }
    spec.weights = w;
  }
  const threads = readThreads(o.threads);
  if (threads !== undefined) spec.threads = threads;
  return { spec, signal: async ? readSignal(o.signal, 'options.signal') : undefined };
}

/**
 * Searches Q queries given as R rewrites each and returns the exact top-k of the fused score, on
 * the addon's pool. Fusion (w_i: `weights`, default 1):
 * - 'embedding': q = norm(sum_i w_i E_i) (float64, rounded to fp32), then one exact search;
 * - 'mean': f = (sum_i w_i s_i) / (sum_i w_i); 'max': f = max_i w_i s_i (fp32 scores s_i, every
 *   gallery item scored: not a union of per-rewrite lists);
 * - 'rrf': f = sum_i w_i / (c + rank_i), rank_i 1-based in rewrite i's top-`depth` list (ties by
 *   lower index); an item in no list scores 0, and such items fill the top k by lower index.
 * Ties in f go to the lower gallery index; results do not depend on threads or ISA.
 *
 * @example
 * ```ts
 * import { multiQuerySearch } from 'vlkernels';
 * // 2 queries x 3 rewrites (6 rows of 512), searched and fused by mean cosine score
 * const { indices, scores } = await multiQuerySearch(rewrites, gallery, { rewrites: 3, k: 10, fusion: 'mean', metric: 'cosine', dim: 512 });
 * ```
 * @throws VlkError ERR_VLK_TYPE / ERR_VLK_SHAPE (rows not a multiple of R, weights length) /
 * ERR_VLK_DIM_MISMATCH, ERR_VLK_INVALID_K (k outside 1..N without clamp), ERR_VLK_INVALID_ARG
 * (rewrites, fusion, metric, negative weights, a zero weight sum with 'mean', rrfConstant, depth,
 * threads), ERR_VLK_NON_FINITE, ERR_VLK_EMPTY, ERR_VLK_OUT_OF_MEMORY; AbortError.
 */
export async function multiQuerySearch(queries: MatrixInput, gallery: MatrixInput, options: MultiQuerySearchOptions): Promise<MultiQuerySearchResult> {
  const p = atApi(() => prepare(queries, gallery, options, true), multiQuerySearch);
  return (await runCancellable(p.signal, multiQuerySearch, (token) => binding.multiQuerySearchAsync(p.spec, token))) as MultiQuerySearchResult;
}

/**
 * {@link multiQuerySearch} on the calling thread (parallel inside; `signal` is ignored).
 * @example
 * ```ts
 * const r = multiQuerySearchSync({ data, rows: 3, cols: 64 }, gallery, { rewrites: 3, k: 5, fusion: 'rrf' });
 * ```
 * @throws VlkError as {@link multiQuerySearch}.
 */
export function multiQuerySearchSync(queries: MatrixInput, gallery: MatrixInput, options: MultiQuerySearchOptions): MultiQuerySearchResult {
  const p = atApi(() => prepare(queries, gallery, options, false), multiQuerySearchSync);
  try {
    return binding.multiQuerySearchSync(p.spec) as MultiQuerySearchResult;
  } catch (err) {
    throw fromNative(err, multiQuerySearchSync);
  }
}
