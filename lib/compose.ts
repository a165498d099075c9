// Query composition (lib): reference image + modification text -> query embedding, by the
// combiner head (weights named like the PyTorch combiner, e.g. from readSafetensors) or a
// training-free baseline; and composedSearch, which composes and searches a FlatIndex, each query
// excluding its own reference. Validation of shapes and weights is the binding's (typed errors
// naming the tensor and the lengths).
import { atApi, fromNative, VlkError } from './errors';
import { describe, isRecord, readMatrix, shapeMatrix } from './args';
import { readSignal, runCancellable } from './cancel';
import { binding } from './loader';
import { FlatIndex as FlatIndexClass, nativeIndexOf, prepareSearchOptions } from './flat_index';
import type { FlatIndex } from './flat_index';
import type { FlatIndexSearchResult, MatrixInput } from './types';

/** How {@link compose} combines the features. */
export type ComposeMode = 'combiner' | 'image' | 'text' | 'sum' | 'sum_normalized' | 'slerp';

/**
 * The combiner's tensors, named as in the PyTorch CLIP4Cir / GeneCIS combiner (nn.Linear layout,
 * out x in): `text_projection_layer.{weight,bias}`, `image_projection_layer.{weight,bias}`,
 * `combiner_layer.{weight,bias}`, `dynamic_scalar.0.{weight,bias}`, `dynamic_scalar.3.{weight,bias}`,
 * `output_layer.{weight,bias}`. Extra entries (e.g. `logit_scale`) are ignored.
 */
export type CombinerWeights = Record<string, Float32Array>;

/** Options of {@link compose}. */
export interface ComposeOptions {
  /** Default `'combiner'` when `weights` is given, else `'sum'`. */
  mode?: ComposeMode;
  /** The combiner's weights (mode 'combiner'). */
  weights?: CombinerWeights;
  /** Text weight of 'sum', 'sum_normalized' and 'slerp', in [0, 1]; default 0.5. */
  alpha?: number;
  /** Row length when the inputs are plain Float32Arrays. */
  dim?: number;
  /** Parallel width; default: the pool size. */
  threads?: number;
  /** Cancels {@link compose} (not the Sync form). */
  signal?: AbortSignal;
}

function prepare(options: unknown, async: boolean): { native: Record<string, unknown>; signal?: AbortSignal } {
  if (!isRecord(options)) throw new VlkError('ERR_VLK_TYPE', `options: expected an object, got ${describe(options)}`);
  const { signal: _s, ...rest } = options;
  return { native: rest, signal: async ? readSignal(options.signal, 'options.signal') : undefined };
}

/**
 * Composed query embeddings, one unit row per (image, text) pair, on the addon's pool:
 * the combiner head (CLIP4Cir: projections, gate, residual mix of the raw features, L2 norm) or a
 * baseline: 'image' / 'text' (that feature alone), 'sum' (norm((1 - a) x_i + a x_t) on raw
 * features, GeneCIS's baseline), 'sum_normalized' (each feature normalised first), 'slerp'
 * (spherical interpolation of the normalised features).
 *
 * @param image - B x D reference image features (Float32Array + dim, or a view).
 * @param text - B x D modification / condition text features.
 * @example
 * ```ts
 * const weights = (await readSafetensors('combiner.safetensors')).tensors; // Float32Arrays by name
 * const queries = await compose(refImages, modTexts, { weights: Object.fromEntries(
 *   Object.entries(weights).map(([k, t]) => [k, t.data as Float32Array])) });
 * const baseline = await compose(refImages, modTexts, { mode: 'sum', dim: 512 });
 * ```
 * @throws VlkError ERR_VLK_TYPE / ERR_VLK_SHAPE (inputs, a weight tensor: named with its lengths),
 * ERR_VLK_DIM_MISMATCH, ERR_VLK_INVALID_ARG (mode, alpha), ERR_VLK_NON_FINITE; AbortError.
 */
export async function compose(image: MatrixInput, text: MatrixInput, options: ComposeOptions = {}): Promise<Float32Array> {
  const p = atApi(() => prepare(options, true), compose);
  return runCancellable(p.signal, compose, (token) => binding.composeAsync(image, text, p.native, token));
}

/** {@link compose} on the calling thread. */
export function composeSync(image: MatrixInput, text: MatrixInput, options: ComposeOptions = {}): Float32Array {
  const p = atApi(() => prepare(options, false), composeSync);
  try {
    return binding.composeSync(image, text, p.native);
  } catch (err) {
    throw fromNative(err, composeSync);
  }
}

/** Options of {@link composedSearch}: {@link ComposeOptions} plus the search's. */
export interface ComposedSearchOptions extends ComposeOptions {
  k: number;
  /** The reference image's id per query (excluded from its results), or null / -1 for none. */
  excludeIds?: (number | bigint | null)[] | Float64Array | BigInt64Array;
}

/**
 * Composes the queries and searches the index in one native call (one job on the addon's pool;
 * the composed queries never reach JavaScript): for each (reference, modification) pair, the k
 * nearest ids, never the reference itself (`excludeIds`). Same results as `compose` followed by
 * `index.search` with `filter: { exclude: excludeIds }`.
 *
 * @example
 * ```ts
 * const { ids, scores } = await composedSearch(index, refFeatures, modFeatures, {
 *   k: 10, weights, excludeIds: refIds,
 * });
 * ```
 * @throws VlkError as {@link compose} (naming image, text or the weight tensor) and as
 * FlatIndex.search (k, the filter, a closed index); AbortError.
 */
export async function composedSearch(
  index: FlatIndex,
  image: MatrixInput,
  text: MatrixInput,
  options: ComposedSearchOptions,
): Promise<FlatIndexSearchResult> {
  const p = atApi(() => {
    if (!(index instanceof FlatIndexClass)) {
      throw new VlkError('ERR_VLK_TYPE', `index: expected a FlatIndex, got ${describe(index)}`);
    }
    if (!isRecord(options)) throw new VlkError('ERR_VLK_TYPE', `options: expected an object such as { k: 10 }, got ${describe(options)}`);
    const { k, excludeIds, threads, signal, ...rest } = options;
    const native = nativeIndexOf(index);
    const composeOptions: Record<string, unknown> = { ...rest, dim: rest.dim ?? index.dim };
    if (threads !== undefined) composeOptions.threads = threads;
    const rows = shapeMatrix(readMatrix(image, 'image'), 'image', composeOptions.dim as number).rows;
    const filter = excludeIds === undefined ? undefined : { exclude: excludeIds as never };
    const search = prepareSearchOptions({ k, threads, signal, filter }, rows, true, index.device);
    return { native, composeOptions, search };
  }, composedSearch);
  return runCancellable(p.search.signal, composedSearch, (token) =>
    p.native.composedSearchAsync(image, text, p.composeOptions, p.search.options, token),
  );
}
