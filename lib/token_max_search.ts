// Token-max search (lib): S[i, j] = max_t q_i . Z[j, t] of each query against multi-token items
// (N x K x D, e.g. BLIP-2 / Q-Former targets of 32 tokens), fused with top-k and per-query
// exclusion in the search kernel (native/core/search with SearchArgs::tokens). A thin layer over
// search: it reads a 3-D token gallery and passes `tokens`.
import { atApi, VlkError } from './errors';
import { describe, isRecord, readSize } from './args';
import { search, searchSync } from './search';
import type { MatrixInput, SearchOptions, SearchResult } from './types';

/** A token gallery: `{ data, dims: [N, K, D] }` (what onnxruntime / transformers.js return), or any search matrix of N*K rows with `options.tokens = K`. */
export type TokenGalleryInput = { data: Float32Array; dims: readonly [number, number, number] | number[] } | MatrixInput;

/** Options of {@link tokenMaxSearch}: {@link SearchOptions} (`precision` included: 'exact', 'bf16', 'i8'); `tokens` is required unless the gallery is `{ data, dims: [N, K, D] }`. */
export type TokenMaxSearchOptions = SearchOptions;

// A 3-D tensor-like becomes a 2-D { data, rows: N*K, cols: D } view plus tokens = K.
function flatten(gallery: unknown, options: unknown): { gallery: unknown; options: SearchOptions } {
  if (!isRecord(options)) {
    throw new VlkError('ERR_VLK_TYPE', `options: expected an object such as { k: 10 }, got ${describe(options)}`);
  }
  if (isRecord(gallery) && Array.isArray(gallery.dims) && gallery.dims.length === 3) {
    // Sizes before arithmetic: n * t of a symbol or a Proxy would throw a TypeError.
    const [n, t, d] = (gallery.dims as unknown[]).map((x, i) => readSize(x, `tokenGallery.dims[${i}]`));
    if (options.tokens !== undefined && options.tokens !== t) {
      throw new VlkError('ERR_VLK_SHAPE', `options.tokens: ${describe(options.tokens)} differs from the gallery's dims[1] = ${t}`);
    }
    return {
      gallery: { data: gallery.data, rows: n * t, cols: d },
      options: { ...(options as unknown as SearchOptions), tokens: t },
    };
  }
  if (options.tokens === undefined) {
    throw new VlkError(
      'ERR_VLK_SHAPE',
      'tokenGallery: give { data, dims: [N, K, D] } or a matrix of N*K rows with options.tokens = K',
    );
  }
  return { gallery, options: options as unknown as SearchOptions };
}

/**
 * Best-token similarity search: for each query, the k items whose best token scores highest
 * (`max_t q . Z[j, t]`; cosine per token; l2: the nearest token), exactly as {@link search} scores
 * rows, with `exclude` / `allow` by item (composed retrieval: exclude each query's reference image).
 * Off the event loop on the addon's pool; the N*K x D score matrix is never stored.
 *
 * `precision: 'bf16'` (CPU): bf16 scan with exact fp32 re-score, same results as 'exact' (indices,
 * scores, counts), faster on CPUs with AVX-512 BF16; the token rows are converted to bf16 on each
 * call, which pays off with many queries per call. `'i8'`: the same with an int8 scan. Other
 * options as {@link search}.
 *
 * @example
 * ```ts
 * // 20,000 targets x 32 tokens x 256, 1000 composed queries, no query returns its own reference
 * const { indices, scores } = await tokenMaxSearch(queries, { data: tokens, dims: [20000, 32, 256] }, {
 *   k: 10, exclude: referenceIndex,
 * });
 * ```
 * @throws VlkError as {@link search}, plus ERR_VLK_SHAPE when the rows are not whole items.
 */
export async function tokenMaxSearch(
  queries: MatrixInput,
  tokenGallery: TokenGalleryInput,
  options: TokenMaxSearchOptions,
): Promise<SearchResult> {
  const flat = atApi(() => flatten(tokenGallery, options), tokenMaxSearch);
  return search(queries, flat.gallery as MatrixInput, flat.options);
}

/** {@link tokenMaxSearch} on the calling thread. */
export function tokenMaxSearchSync(
  queries: MatrixInput,
  tokenGallery: TokenGalleryInput,
  options: TokenMaxSearchOptions,
): SearchResult {
  const flat = atApi(() => flatten(tokenGallery, options), tokenMaxSearchSync);
  return searchSync(queries, flat.gallery as MatrixInput, flat.options);
}
