// Exact batched top-k similarity search (lib): validation with named messages, then the binding's
// searchSync (on this thread) or searchAsync (on the addon's pool; AbortSignal through a native
// cancel token). Inputs are passed as zero-copy { data, rows, cols } views.
import { atApi, fromNative, VlkError } from './errors';
import {
  describe,
  isRecord,
  readDevice,
  readFlag,
  readMatrix,
  readMetric,
  readSearchPrecision,
  readSize,
  readThreads,
  shapeMatrix,
} from './args';
import { readSignal, runCancellable } from './cancel';
import { binding, type NativeMatrix, type NativeSearchOptions } from './loader';
import type { MatrixInput, SearchOptions, SearchResult } from './types';

interface PreparedSearch {
  queries: NativeMatrix;
  gallery: NativeMatrix;
  options: NativeSearchOptions;
  signal: AbortSignal | undefined;
}

// Check order (and so the code for an input with several faults) matches native/binding/search.cpp.
function prepare(queries: unknown, gallery: unknown, options: unknown, async: boolean): PreparedSearch {
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

  let tokens = 1;
  if (options.tokens !== undefined) {
    tokens = readSize(options.tokens, 'options.tokens');
    if (tokens < 1 || g.rows % tokens !== 0) {
      throw new VlkError(
        'ERR_VLK_SHAPE',
        `gallery: ${g.rows} rows are not a whole number of items of ${tokens} tokens (options.tokens)`,
      );
    }
  }
  const clamp = readFlag(options.clamp, 'options.clamp', false);
  const n = g.rows / tokens;
  const rawK = options.k;
  const range = `is not an integer in 1..N (N = ${n})`;
  if (typeof rawK !== 'number') throw new VlkError('ERR_VLK_INVALID_K', `options.k: ${describe(rawK)} ${range}`);
  let k: number = rawK;
  if (!Number.isInteger(k) || k < 1) throw new VlkError('ERR_VLK_INVALID_K', `options.k: ${k} ${range}`);
  if (k > n) {
    if (!clamp) throw new VlkError('ERR_VLK_INVALID_K', `options.k: ${k} ${range}; pass clamp: true to search with k = N`);
    k = n;
  }

  const metric = readMetric(options.metric);

  const threads = readThreads(options.threads);

  // Whether CUDA is usable is the binding's check (ERR_VLK_NO_DEVICE with the reason).
  const device = readDevice(options.device);
  const precision = readSearchPrecision(options.precision, device);

  const signal = async ? readSignal(options.signal, 'options.signal') : undefined;
  const nativeOptions: NativeSearchOptions = threads === undefined ? { k, metric } : { k, metric, threads };
  if (tokens !== 1) nativeOptions.tokens = tokens;
  if (device !== 'cpu') nativeOptions.device = device;
  if (precision !== 'exact') nativeOptions.precision = precision;
  // Filters are checked (types, lengths, ranges) and copied by the binding, whose messages name
  // the option and the numbers.
  if (options.exclude !== undefined) nativeOptions.exclude = options.exclude;
  if (options.allow !== undefined) nativeOptions.allow = options.allow;
  return { queries: q, gallery: g, options: nativeOptions, signal };
}

/**
 * Exact top-k search of every query row against every gallery row, off the event loop: the work
 * runs on the addon's own thread pool (never libuv's), so file and network I/O stay responsive.
 *
 * Results are sorted best first (ip/cosine: descending similarity; l2: ascending squared
 * distance), ties broken by lower gallery index, identical whatever the thread count or ISA path.
 * Inputs are read in place: do not mutate or transfer them until the promise settles.
 *
 * @param queries - Q x D queries (a Float32Array with `options.dim`, or a view).
 * @param gallery - N x D gallery rows, same D.
 * @param options - `k` (1..N), `metric` ('ip' default, 'cosine', 'l2'), `dim`, `threads`, `signal`, `clamp`,
 *   the filters `exclude` (rows a query must not return) and `allow` (rows any query may return),
 *   `device` ('cpu' default, 'cuda', 'auto') and `precision`: 'exact' (default); 'bf16' on the CPU:
 *   bf16 scan with exact fp32 re-score, same results as 'exact' (indices, scores, counts), faster on
 *   CPUs with AVX-512 BF16 (elsewhere no faster than 'exact'; the gallery is converted to bf16 on
 *   every call, so it pays off with many queries per call; for a gallery searched again and again
 *   keep a `FlatIndex` with storage 'bf16');
 *   'i8' likewise with an int8 scan (CPU only); with device 'cuda', 'bf16' is the GPU's approximate
 *   tensor-core scan instead (neither with device 'auto').
 * @returns `{ indices, scores, k, count, counts }`, row-major count x k; `counts[q]` < k only when a
 *   filter left query q fewer allowed rows (the rest of its row is index -1, score NaN).
 *
 * @example
 * ```ts
 * import { search } from 'vlkernels';
 * const gallery = new Float32Array(100_000 * 512);   // 100k embeddings, row-major
 * const query = new Float32Array(512);
 * const { indices, scores } = await search(query, gallery, { k: 10, dim: 512, metric: 'cosine' });
 * ```
 * @throws VlkError (as a rejection) with code ERR_VLK_TYPE (not a Float32Array / view, options not
 * an object), ERR_VLK_DIM_MISMATCH, ERR_VLK_SHAPE, ERR_VLK_INVALID_K, ERR_VLK_NON_FINITE (NaN or
 * Infinity in an input), ERR_VLK_EMPTY, ERR_VLK_INVALID_ARG (metric, threads, dim missing, detached
 * buffer, signal, device, precision ('bf16' or 'i8' with device 'auto', 'i8' with 'cuda'), a filter
 * with device 'cuda'), ERR_VLK_UNSUPPORTED_ISA,
 * ERR_VLK_OUT_OF_MEMORY (host, or GPU memory with device 'cuda'), ERR_VLK_NO_DEVICE (device 'cuda'
 * where CUDA is not usable: the message gives `info().cuda.reason`); AbortError (code ABORT_ERR,
 * cause = signal.reason) when `signal` aborts.
 */
export async function search(
  queries: MatrixInput,
  gallery: MatrixInput,
  options: SearchOptions,
): Promise<SearchResult> {
  const prepared = atApi(() => prepare(queries, gallery, options, true), search);
  return runCancellable(prepared.signal, search, (token) =>
    binding.searchAsync(prepared.queries, prepared.gallery, prepared.options, token),
  );
}

/**
 * The same search on the calling thread (it blocks the event loop for its duration; it still uses
 * the addon's pool for parallelism). Same contract as {@link search}; `signal` is ignored.
 *
 * @example
 * ```ts
 * import { searchSync } from 'vlkernels';
 * const { indices, scores, k, count } = searchSync(
 *   { data: queries, rows: 32, cols: 384 },
 *   { data: gallery, rows: 10_000, cols: 384 },
 *   { k: 5, metric: 'l2' },
 * );
 * const bestForQuery3 = indices[3 * k]; // row-major count x k
 * ```
 * @throws VlkError with code ERR_VLK_TYPE, ERR_VLK_DIM_MISMATCH, ERR_VLK_SHAPE, ERR_VLK_INVALID_K,
 * ERR_VLK_NON_FINITE, ERR_VLK_EMPTY, ERR_VLK_INVALID_ARG, ERR_VLK_UNSUPPORTED_ISA,
 * ERR_VLK_OUT_OF_MEMORY or ERR_VLK_NO_DEVICE (see {@link search}).
 */
export function searchSync(queries: MatrixInput, gallery: MatrixInput, options: SearchOptions): SearchResult {
  const prepared = atApi(() => prepare(queries, gallery, options, false), searchSync);
  try {
    return binding.searchSync(prepared.queries, prepared.gallery, prepared.options);
  } catch (err) {
    throw fromNative(err, searchSync);
  }
}
