// Score-fusion search with a per-item prior (lib, seed 000): final(q, j) = relevance(q, j) +
// lambda_q * prior[j], exact top-k of the final score inside the blocked search (native/core/search/
// prior_search.hpp); and combinePriors, several gallery priors z-scored and averaged into one.
import { types } from 'node:util';
import { atApi, fromNative, VlkError } from './errors';
import { describe, isRecord, readFlag, readMetric, readThreads } from './args';
import { readSignal, runCancellable } from './cancel';
import { binding } from './loader';
import type { MatrixInput } from './types';
import { readInt, readMat, readOptions } from './gl_args';

/** Several priors over the same items: an array of Float32Array, or M x N row-major. */
export type PriorsInput = Float32Array[] | { data: Float32Array; rows: number; cols: number };

/** Options of {@link priorSearch}. */
export interface PriorSearchOptions {
  /** Results per query, 1..N. */
  k: number;
  /** N values, one per gallery row (an aesthetic score). */
  prior: Float32Array;
  /** lambda: one number for every query, or a Float32Array of Q (per query / query group). */
  priorWeight: number | Float32Array;
  /** 'ip' (default) or 'cosine'. */
  metric?: 'ip' | 'cosine';
  /** k > N searches with k = N instead of throwing; default false. */
  clamp?: boolean;
  dim?: number;
  threads?: number;
  signal?: AbortSignal;
}

/** Result of {@link priorSearch}: Q x k, row-major, best first. */
export interface PriorSearchResult {
  indices: Int32Array;
  /** The final score fp32(s + fp32(lambda_q prior_j)). */
  scores: Float32Array;
  k: number;
}

function prepare(queries: unknown, gallery: unknown, options: unknown, async: boolean) {
  const o = readOptions(options);
  const dim = o.dim === undefined ? undefined : readInt(o.dim, 'options.dim', 0, 1, 'ERR_VLK_INVALID_ARG');
  const q = readMat(queries, 'queries', dim);
  const g = readMat(gallery, 'gallery', q.cols);
  if (q.rows === 0 || q.cols === 0) throw new VlkError('ERR_VLK_EMPTY', `queries: shape ${q.rows} x ${q.cols} is empty`);
  if (g.rows === 0) throw new VlkError('ERR_VLK_EMPTY', `gallery: shape ${g.rows} x ${g.cols} is empty`);
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
  const metric = readMetric(o.metric);
  if (metric === 'l2') {
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.metric: 'l2' is not supported by priorSearch (use 'ip' or 'cosine')`);
  }
  if (!types.isFloat32Array(o.prior)) throw new VlkError('ERR_VLK_TYPE', `options.prior: expected a Float32Array of N = ${n}, got ${describe(o.prior)}`);
  if (o.prior.length !== n) throw new VlkError('ERR_VLK_SHAPE', `options.prior: length ${o.prior.length}, expected N = ${n}`);
  let lambda: Float32Array;
  if (typeof o.priorWeight === 'number') {
    if (!Number.isFinite(o.priorWeight)) throw new VlkError('ERR_VLK_NON_FINITE', `options.priorWeight: ${o.priorWeight} is not finite`);
    lambda = new Float32Array(q.rows).fill(o.priorWeight);
  } else if (types.isFloat32Array(o.priorWeight)) {
    if (o.priorWeight.length !== q.rows) {
      throw new VlkError('ERR_VLK_SHAPE', `options.priorWeight: length ${o.priorWeight.length}, expected Q = ${q.rows}`);
    }
    lambda = o.priorWeight;
  } else {
    throw new VlkError('ERR_VLK_TYPE', `options.priorWeight: expected a number or a Float32Array of Q = ${q.rows}, got ${describe(o.priorWeight)}`);
  }
  const spec: Record<string, unknown> = { q: q.rows, n, d: q.cols, queries: q.data, gallery: g.data, k, metric, prior: o.prior, lambda };
  const threads = readThreads(o.threads);
  if (threads !== undefined) spec.threads = threads;
  return { spec, signal: async ? readSignal(o.signal, 'options.signal') : undefined };
}

/**
 * Exact top-k of final(q, j) = s(q, j) + lambda_q * prior[j] (fp32: s + fp32(lambda * prior)), the
 * prior applied where each candidate meets the top-k threshold (not a re-sort of a truncated list),
 * on the addon's pool. s: ip or cosine similarity. Ties go to the lower gallery index.
 *
 * @example
 * ```ts
 * import { priorSearch, combinePriors } from 'vlkernels';
 * const prior = combinePriors([clipiqa, iap, maniqa]);           // z-scored, averaged
 * const r = await priorSearch(queries, gallery, { k: 10, prior, priorWeight: 0.1, metric: 'cosine', dim: 512 });
 * ```
 * @throws VlkError ERR_VLK_TYPE, ERR_VLK_SHAPE (prior / priorWeight lengths), ERR_VLK_DIM_MISMATCH,
 * ERR_VLK_INVALID_K, ERR_VLK_INVALID_ARG (metric, threads), ERR_VLK_NON_FINITE (NaN/Inf in an
 * input, prior or lambda, or lambda * prior beyond 2^126), ERR_VLK_EMPTY, ERR_VLK_OUT_OF_MEMORY;
 * AbortError.
 */
export async function priorSearch(queries: MatrixInput, gallery: MatrixInput, options: PriorSearchOptions): Promise<PriorSearchResult> {
  const p = atApi(() => prepare(queries, gallery, options, true), priorSearch);
  return (await runCancellable(p.signal, priorSearch, (token) => binding.priorSearchAsync(p.spec, token))) as PriorSearchResult;
}

/**
 * {@link priorSearch} on the calling thread (parallel inside; `signal` is ignored).
 * @example
 * ```ts
 * const r = priorSearchSync(q, g, { k: 5, prior, priorWeight: new Float32Array([0.1, 0.3]), dim: 64 });
 * ```
 * @throws VlkError as {@link priorSearch}.
 */
export function priorSearchSync(queries: MatrixInput, gallery: MatrixInput, options: PriorSearchOptions): PriorSearchResult {
  const p = atApi(() => prepare(queries, gallery, options, false), priorSearchSync);
  try {
    return binding.priorSearchSync(p.spec) as PriorSearchResult;
  } catch (err) {
    throw fromNative(err, priorSearchSync);
  }
}

/** Reads M priors of equal length (>= 1 each) as float64 rows; `name` labels the errors. */
export function readPriors(value: unknown, name: string, expect?: number): Float64Array[] {
  let rows: Float32Array[];
  if (Array.isArray(value)) {
    // Array.from, not map: a sparse array's holes are checked (as undefined), not skipped.
    rows = Array.from(value, (x, i) => {
      if (!types.isFloat32Array(x)) throw new VlkError('ERR_VLK_TYPE', `${name}[${i}]: expected a Float32Array, got ${describe(x)}`);
      return x;
    });
  } else if (types.isFloat32Array(value)) {
    rows = [value];
  } else if (isRecord(value) && types.isFloat32Array(value.data)) {
    const m = readMat(value, name, undefined);
    rows = [];
    for (let i = 0; i < m.rows; i++) rows.push(m.data.subarray(i * m.cols, (i + 1) * m.cols));
  } else {
    throw new VlkError('ERR_VLK_TYPE', `${name}: expected Float32Array[], a Float32Array or { data, rows, cols }, got ${describe(value)}`);
  }
  if (rows.length === 0) throw new VlkError('ERR_VLK_EMPTY', `${name}: no priors given`);
  const n = expect ?? rows[0].length;
  if (n === 0) throw new VlkError('ERR_VLK_EMPTY', `${name}: priors of length 0`);
  return rows.map((r, i) => {
    if (r.length !== n) throw new VlkError('ERR_VLK_SHAPE', `${name}[${i}]: length ${r.length}, expected ${n}`);
    const out = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      if (!Number.isFinite(r[j])) throw new VlkError('ERR_VLK_NON_FINITE', `${name}[${i}][${j}] is ${r[j]} (values must be finite)`);
      out[j] = r[j];
    }
    return out;
  });
}

/**
 * Averages M priors into one, z-scoring each first (zscore, default true): (x - mean) / std over
 * its own values (population std; a constant prior becomes all 0). Float64 inside.
 */
export function averagePriors(priors: Float64Array[], zscore: boolean): Float64Array {
  const n = priors[0].length;
  const out = new Float64Array(n);
  for (const p of priors) {
    let mean = 0;
    let scale = 1;
    if (zscore) {
      for (let j = 0; j < n; j++) mean += p[j];
      mean /= n;
      let v = 0;
      for (let j = 0; j < n; j++) v += (p[j] - mean) * (p[j] - mean);
      const sd = Math.sqrt(v / n);
      scale = sd > 0 ? 1 / sd : 0;
    }
    for (let j = 0; j < n; j++) out[j] += (p[j] - mean) * scale;
  }
  for (let j = 0; j < n; j++) out[j] /= priors.length;
  return out;
}

/**
 * One prior over the gallery from several (e.g. CLIPIQA, IAP, MANIQA scores): each z-scored over
 * the gallery (population std; a constant prior contributes 0), then averaged; float64, rounded to
 * float32. With `zscore: false`, the plain average.
 *
 * @example
 * ```ts
 * const prior = combinePriors([clipiqa, iap], { zscore: true }); // Float32Array(N)
 * ```
 * @throws VlkError ERR_VLK_TYPE, ERR_VLK_SHAPE (unequal lengths), ERR_VLK_EMPTY, ERR_VLK_NON_FINITE,
 * ERR_VLK_INVALID_ARG (zscore not a boolean).
 */
export function combinePriors(priors: PriorsInput, options: { zscore?: boolean } = {}): Float32Array {
  return atApi(() => {
    const o = readOptions(options);
    const rows = readPriors(priors, 'priors');
    return Float32Array.from(averagePriors(rows, readFlag(o.zscore, 'options.zscore', true)));
  }, combinePriors);
}
