// Exact re-ranking of per-query candidate lists (lib): validation with named messages (types, shapes,
// k, metric, threads, signal), then the binding's rerankSync (on this thread) or rerankAsync (on the
// addon's pool; AbortSignal through a native cancel token). The binding checks each candidate
// (offsets non-decreasing, rows in 0..N-1) while copying the lists; matrices are zero-copy views.
import { types } from 'node:util';
import { atApi, fromNative, VlkError } from './errors';
import { describe, isRecord, readMatrix, readMetric, readSize, readThreads, shapeMatrix } from './args';
import { readSignal, runCancellable } from './cancel';
import { binding, type NativeMatrix, type NativeRerankOptions } from './loader';
import type { Candidates, MatrixInput, RerankOptions, SearchResult } from './types';

const MAX_K = 2 ** 31 - 1; // counts are an Int32Array

interface PreparedRerank {
  queries: NativeMatrix;
  gallery: NativeMatrix;
  candidates: Candidates;
  options: NativeRerankOptions;
  signal: AbortSignal | undefined;
}

function readInt32s(value: unknown, name: string): Int32Array {
  if (!types.isInt32Array(value)) {
    throw new VlkError('ERR_VLK_TYPE', `${name}: expected an Int32Array, got ${describe(value)}`);
  }
  return value;
}

// The structure of the candidates for q queries (type, lengths, offsets' ends); the entries are
// checked by the binding as it copies them.
function readCandidates(value: unknown, q: number): Candidates {
  if (types.isInt32Array(value)) {
    if (value.length % q !== 0) {
      throw new VlkError(
        'ERR_VLK_SHAPE',
        `candidates: length ${value.length} is not a multiple of the number of queries (${q}); ` +
          'use { offsets, rows } for lists of different lengths',
      );
    }
    return value;
  }
  if (!isRecord(value) || types.isTypedArray(value)) {
    throw new VlkError(
      'ERR_VLK_TYPE',
      `candidates: expected an Int32Array (Q x m rows, -1: none) or { offsets, rows }, got ${describe(value)}`,
    );
  }
  const offsets = readInt32s(value.offsets, 'candidates.offsets');
  const rows = readInt32s(value.rows, 'candidates.rows');
  if (offsets.length !== q + 1) {
    throw new VlkError('ERR_VLK_SHAPE', `candidates.offsets: length ${offsets.length} is not queries + 1 (${q + 1})`);
  }
  if (offsets[0] !== 0 || offsets[q] !== rows.length) {
    throw new VlkError(
      'ERR_VLK_SHAPE',
      `candidates.offsets: must start at 0 and end at rows.length (${rows.length}), got ${offsets[0]} .. ${offsets[q]}`,
    );
  }
  return { offsets, rows };
}

// Check order (and so the code for an input with several faults) matches native/binding/rerank.cpp.
function prepare(
  queries: unknown,
  gallery: unknown,
  candidates: unknown,
  options: unknown,
  async: boolean,
): PreparedRerank {
  if (!isRecord(options)) {
    throw new VlkError('ERR_VLK_TYPE', `options: expected an object such as { k: 10 }, got ${describe(options)}`);
  }
  const queriesArg = readMatrix(queries, 'queries');
  const galleryArg = readMatrix(gallery, 'gallery');
  const dim = options.dim === undefined ? undefined : readSize(options.dim, 'options.dim');
  const q = shapeMatrix(queriesArg, 'queries', dim);
  const g = shapeMatrix(galleryArg, 'gallery', dim);
  if (q.rows === 0 || q.cols === 0) throw new VlkError('ERR_VLK_EMPTY', `queries: shape ${q.rows} x ${q.cols} is empty`);
  if (g.rows === 0 || g.cols === 0) throw new VlkError('ERR_VLK_EMPTY', `gallery: shape ${g.rows} x ${g.cols} is empty`);
  if (q.cols !== g.cols) {
    throw new VlkError('ERR_VLK_DIM_MISMATCH', `queries have ${q.cols} columns but gallery has ${g.cols}`);
  }
  const lists = readCandidates(candidates, q.rows);

  const k = options.k;
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 1 || k > MAX_K) {
    const got = typeof k === 'number' ? String(k) : describe(k);
    throw new VlkError('ERR_VLK_INVALID_K', `options.k: ${got} is not an integer in 1..${MAX_K}`);
  }

  const metric = readMetric(options.metric);

  const threads = readThreads(options.threads);

  const signal = async ? readSignal(options.signal, 'options.signal') : undefined;
  const nativeOptions: NativeRerankOptions = threads === undefined ? { k, metric } : { k, metric, threads };
  return { queries: q, gallery: g, candidates: lists, options: nativeOptions, signal };
}

/**
 * Exact re-ranking: each query scores only its own candidate gallery rows and keeps the best k,
 * off the event loop (on the addon's own thread pool, never libuv's). For the ids an approximate
 * vector engine returned (oversampled, then re-scored exactly) and for small candidate sets such
 * as GeneCIS's 15 images per query.
 *
 * The result equals {@link search} restricted to each query's candidates: same order (best first,
 * ties by lower row) and scores bit for bit. A row listed twice counts once; a query with fewer
 * than `k` distinct candidates gets them all, the rest of its row is index -1 and score NaN, and
 * `counts[q]` says how many are valid. The candidates are copied when the call starts (the
 * arrays may change afterwards); queries and gallery are read in place: do not mutate or transfer
 * them until the promise settles.
 *
 * @param queries - Q x D queries (a Float32Array with `options.dim`, or a view).
 * @param gallery - N x D gallery rows, same D.
 * @param candidates - Per query, the gallery rows to score: an Int32Array of Q x m rows (-1 entries
 *   skipped), or CSR `{ offsets, rows }` (see {@link Candidates}).
 * @param options - `k` (an integer in 1..2^31 - 1, not tied to N), `metric` ('ip' default,
 *   'cosine', 'l2'), `dim`, `threads`, `signal`.
 * @returns `{ indices, scores, counts, k, count }`, row-major count x k, as {@link search} returns.
 *
 * @example
 * ```ts
 * import { rerank } from 'vlkernels';
 * // An approximate index (here hnswlib-node) oversampled 4x: 40 candidate ids per query, then the
 * // exact best 10 of them. Q queries and the gallery are row-major Float32Arrays of dim 512.
 * const k = 10;
 * const m = 4 * k;
 * const ids = new Int32Array(Q * m).fill(-1); // -1: the engine found fewer than m
 * for (let q = 0; q < Q; q++) {
 *   const { neighbors } = hnsw.searchKnn(Array.from(queries.subarray(q * 512, (q + 1) * 512)), m);
 *   ids.set(neighbors, q * m);
 * }
 * const { indices, scores, counts } = await rerank(queries, gallery, ids, { k, dim: 512, metric: 'cosine' });
 * ```
 * @throws VlkError (as a rejection) with code ERR_VLK_TYPE (a matrix not a Float32Array / view,
 * candidates neither an Int32Array nor { offsets, rows } of Int32Arrays, options not an object),
 * ERR_VLK_SHAPE (dense candidates' length not a multiple of Q, offsets.length != Q + 1, offsets not
 * from 0 to rows.length, bad matrix shape), ERR_VLK_INVALID_ARG (offsets decreasing, a row outside
 * 0..N-1 other than -1 in the dense form, metric, threads, dim missing, detached buffer, signal),
 * ERR_VLK_INVALID_K (k not an integer in 1..2^31 - 1), ERR_VLK_DIM_MISMATCH, ERR_VLK_EMPTY,
 * ERR_VLK_NON_FINITE (NaN or Infinity in a query or a candidate row), ERR_VLK_UNSUPPORTED_ISA,
 * ERR_VLK_OUT_OF_MEMORY; AbortError (code ABORT_ERR, cause = signal.reason) when `signal` aborts.
 */
export async function rerank(
  queries: MatrixInput,
  gallery: MatrixInput,
  candidates: Candidates,
  options: RerankOptions,
): Promise<SearchResult> {
  const prepared = atApi(() => prepare(queries, gallery, candidates, options, true), rerank);
  return runCancellable(prepared.signal, rerank, (token) =>
    binding.rerankAsync(prepared.queries, prepared.gallery, prepared.candidates, prepared.options, token),
  );
}

/**
 * The same re-ranking on the calling thread (it blocks the event loop for its duration; it still
 * uses the addon's pool for parallelism). Same contract as {@link rerank}; `signal` is ignored.
 *
 * @example
 * ```ts
 * import { rerankSync } from 'vlkernels';
 * // Two queries: the first re-ranks gallery rows 12, 40 and 7, the second rows 3 and 12.
 * const candidates = { offsets: Int32Array.from([0, 3, 5]), rows: Int32Array.from([12, 40, 7, 3, 12]) };
 * const { indices, counts } = rerankSync(queries, gallery, candidates, { k: 3, dim: 384 });
 * // counts = [3, 2]; the second query's row ends with index -1 (score NaN).
 * ```
 * @throws VlkError with code ERR_VLK_TYPE, ERR_VLK_SHAPE, ERR_VLK_INVALID_ARG, ERR_VLK_INVALID_K,
 * ERR_VLK_DIM_MISMATCH, ERR_VLK_EMPTY, ERR_VLK_NON_FINITE, ERR_VLK_UNSUPPORTED_ISA or
 * ERR_VLK_OUT_OF_MEMORY (see {@link rerank}).
 */
export function rerankSync(
  queries: MatrixInput,
  gallery: MatrixInput,
  candidates: Candidates,
  options: RerankOptions,
): SearchResult {
  const prepared = atApi(() => prepare(queries, gallery, candidates, options, false), rerankSync);
  try {
    return binding.rerankSync(prepared.queries, prepared.gallery, prepared.candidates, prepared.options);
  } catch (err) {
    throw fromNative(err, rerankSync);
  }
}
