// AAHR's biased multi-head attention layer over the in-batch graph (lib, seed 004): attention with
// an additive bias w * R on connected node pairs and -inf elsewhere, output projection, residual
// and post-LayerNorm, forward and backward natively (native/core/graph/biased_attention.hpp has
// the formulas). Shapes are resolved here; lengths and values are checked again by the binding and
// the core, with typed errors naming the input.
import { types } from 'node:util';
import { atApi, fromNative, VlkError } from './errors';
import { describe, isRecord, readMatrix, readThreads, shapeMatrix } from './args';
import { readSignal, runCancellable } from './cancel';
import { binding } from './loader';
import type { MatrixInput } from './types';

/** The inputs of {@link biasedAttention}: n nodes of width D. */
export interface BiasedAttentionInputs {
  /** X: n x D node features (AAHR: Z = norm(H) + [x_v; x_t], 2B nodes). A plain Float32Array needs options.dim. */
  x: MatrixInput;
  /** Query/key/value/output projections, D x D each in nn.Linear layout (out x in): y = x W^T + b. */
  wq: MatrixInput;
  wk: MatrixInput;
  wv: MatrixInput;
  wo: MatrixInput;
  /** Their biases, D each. */
  bq: Float32Array;
  bk: Float32Array;
  bv: Float32Array;
  bo: Float32Array;
  /** LayerNorm weight and bias (norm1 of nn.TransformerEncoderLayer), D each. */
  gamma: Float32Array;
  beta: Float32Array;
  /** R: n x n relevance (AAHR's R_all); every entry must be finite, only connected ones are used. */
  relevance: MatrixInput;
  /** M: n x n connectivity, row-major, 1 = connected, 0 = not (any other value is an error). */
  mask: Uint8Array;
}

/** Options of {@link biasedAttention}. */
export interface BiasedAttentionOptions {
  /** Number of heads h (D % h == 0); AAHR uses 16. Required. */
  heads: number;
  /** Width D when x is a plain Float32Array. */
  dim?: number;
  /** w, the bias weight (AAHR's mask_weight: 1.0 Flickr30K, 1.5 COCO); default 1. */
  biasWeight?: number;
  /** The diagonal counts as connected whatever the mask says (AAHR's mask always holds the self-edge); default true. */
  selfLoops?: boolean;
  /** LayerNorm eps; default 1e-5 (nn.LayerNorm's). */
  eps?: number;
  /** Query rows per attention tile (default 64, rounded up to the kernel's 8 rows with AVX-512); tuning only, results change by rounding at most. */
  blockQuery?: number;
  /** Key columns per attention tile (default 128, rounded up to the kernel's 32 columns with AVX-512). */
  blockKey?: number;
  /** Forward only: return the tensors the backward needs (default true). */
  save?: boolean;
  /** Parallel width; default: the pool size. */
  threads?: number;
  /** Cancels the async forms. */
  signal?: AbortSignal;
}

/** What the forward keeps for the backward: pass it back unchanged as `options.saved`. */
export interface BiasedAttentionSaved {
  /** Q, K, V (bias included), n x D each. */
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  /** The concatenated head outputs before Wo, n x D. */
  o: Float32Array;
  /** Per head and row, the log-sum-exp of the biased scores (heads x n). */
  lse: Float32Array;
  /** The normalised rows (Z - mean) / std, n x D. */
  xhat: Float32Array;
  /** 1 / sqrt(var + eps) per row, n. */
  rstd: Float32Array;
}

/** The result of {@link biasedAttention}. */
export interface BiasedAttentionResult {
  /** Y = LayerNorm(X + Attention(X) Wo^T + bo), n x D row-major. */
  output: Float32Array;
  /** With `save` (the default). */
  saved?: BiasedAttentionSaved;
}

/** Options of {@link biasedAttentionBackward}: the forward's options, plus its saved tensors. */
export interface BiasedAttentionBackwardOptions extends Omit<BiasedAttentionOptions, 'save'> {
  /** The forward's `saved` for the same inputs and options; omitted, the forward is recomputed. */
  saved?: BiasedAttentionSaved;
}

/** Gradients of sum(Y * dOutput), each shaped as its input. */
export interface BiasedAttentionGrads {
  x: Float32Array;
  wq: Float32Array;
  wk: Float32Array;
  wv: Float32Array;
  wo: Float32Array;
  bq: Float32Array;
  bk: Float32Array;
  bv: Float32Array;
  bo: Float32Array;
  gamma: Float32Array;
  beta: Float32Array;
  /** dR, n x n: w * sum over heads of dS where connected, 0 elsewhere. */
  relevance: Float32Array;
  /** dL/dw, for a learned bias weight. */
  biasWeight: number;
}

function vector(value: unknown, name: string, d: number): Float32Array {
  if (!types.isFloat32Array(value)) {
    throw new VlkError('ERR_VLK_TYPE', `${name}: expected a Float32Array of length D = ${d}, got ${describe(value)}`);
  }
  if (value.length !== d) throw new VlkError('ERR_VLK_SHAPE', `${name}: length ${value.length}, expected D = ${d}`);
  return value;
}

function square(value: unknown, name: string, size: number, what: string): Float32Array {
  const m = shapeMatrix(readMatrix(value, name), name, size);
  if (m.cols !== size) throw new VlkError('ERR_VLK_DIM_MISMATCH', `${name}: ${m.cols} columns, expected ${what} = ${size}`);
  if (m.rows !== size) throw new VlkError('ERR_VLK_SHAPE', `${name}: ${m.rows} rows, expected ${what} = ${size}`);
  return m.data.subarray(0, size * size);
}

function num(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `${name}: expected a finite number, got ${describe(value)}`);
  }
  return value;
}

function positiveInt(value: unknown, name: string, fallback?: number): number {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `${name}: expected an integer >= 1, got ${describe(value)}`);
  }
  return value;
}

interface Prepared {
  spec: Record<string, unknown>;
  signal?: AbortSignal;
}

function prepare(inputs: unknown, options: unknown, async: boolean, backward: boolean, dOutput?: unknown): Prepared {
  if (!isRecord(inputs)) {
    throw new VlkError('ERR_VLK_TYPE', `inputs: expected { x, wq, wk, wv, wo, ..., relevance, mask }, got ${describe(inputs)}`);
  }
  if (!isRecord(options)) throw new VlkError('ERR_VLK_TYPE', `options: expected { heads, ... }, got ${describe(options)}`);
  const xm = shapeMatrix(readMatrix(inputs.x, 'x'), 'x', options.dim as number | undefined);
  const n = xm.rows;
  const d = xm.cols;
  if (n === 0 || d === 0) throw new VlkError('ERR_VLK_EMPTY', `x: ${n} x ${d}, needs at least one node and one column`);
  const heads = positiveInt(options.heads, 'options.heads');
  if (d % heads !== 0) throw new VlkError('ERR_VLK_INVALID_ARG', `heads: D = ${d} is not divisible by heads = ${heads}`);
  const spec: Record<string, unknown> = {
    n,
    d,
    heads,
    x: xm.data.subarray(0, n * d),
    wq: square(inputs.wq, 'wq', d, 'D'),
    wk: square(inputs.wk, 'wk', d, 'D'),
    wv: square(inputs.wv, 'wv', d, 'D'),
    wo: square(inputs.wo, 'wo', d, 'D'),
    bq: vector(inputs.bq, 'bq', d),
    bk: vector(inputs.bk, 'bk', d),
    bv: vector(inputs.bv, 'bv', d),
    bo: vector(inputs.bo, 'bo', d),
    gamma: vector(inputs.gamma, 'gamma', d),
    beta: vector(inputs.beta, 'beta', d),
    relevance: square(inputs.relevance, 'relevance', n, 'n'),
  };
  if (!types.isUint8Array(inputs.mask)) {
    throw new VlkError('ERR_VLK_TYPE', `mask: expected a Uint8Array of n * n = ${n * n} entries, got ${describe(inputs.mask)}`);
  }
  if (inputs.mask.length !== n * n) {
    throw new VlkError('ERR_VLK_SHAPE', `mask: length ${inputs.mask.length}, expected n * n = ${n} * ${n} = ${n * n}`);
  }
  spec.mask = inputs.mask;
  spec.biasWeight = num(options.biasWeight, 'options.biasWeight', 1);
  const eps = num(options.eps, 'options.eps', 1e-5);
  if (!(eps > 0)) throw new VlkError('ERR_VLK_INVALID_ARG', `options.eps: ${eps} is not > 0`);
  spec.eps = eps;
  if (options.selfLoops !== undefined && typeof options.selfLoops !== 'boolean') {
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.selfLoops: expected a boolean, got ${describe(options.selfLoops)}`);
  }
  spec.selfLoops = options.selfLoops ?? true;
  spec.blockQuery = positiveInt(options.blockQuery, 'options.blockQuery', 64);
  spec.blockKey = positiveInt(options.blockKey, 'options.blockKey', 128);
  const threads = readThreads(options.threads);
  if (threads !== undefined) spec.threads = threads;
  if (!backward) {
    if (options.save !== undefined && typeof options.save !== 'boolean') {
      throw new VlkError('ERR_VLK_INVALID_ARG', `options.save: expected a boolean, got ${describe(options.save)}`);
    }
    spec.save = options.save ?? true;
  } else {
    const dy = shapeMatrix(readMatrix(dOutput, 'dOutput'), 'dOutput', d);
    if (dy.rows !== n) throw new VlkError('ERR_VLK_SHAPE', `dOutput: ${dy.rows} rows, x has n = ${n}`);
    spec.dOutput = dy.data.subarray(0, n * d);
    if (options.saved !== undefined) {
      if (!isRecord(options.saved)) {
        throw new VlkError('ERR_VLK_TYPE', `options.saved: expected the forward's saved object, got ${describe(options.saved)}`);
      }
      spec.saved = options.saved;
    }
  }
  return { spec, signal: async ? readSignal(options.signal, 'options.signal') : undefined };
}

/**
 * AAHR's graph attention layer (seed 004), off the event loop: per head
 * `S = Q_h K_h^T / sqrt(D/h) + w R` on connected pairs (mask 1, and the diagonal), `-inf` elsewhere,
 * `P = softmax_row(S)`, `O_h = P V_h`; then `Y = LayerNorm(X + concat_h(O_h) Wo^T + bo)` with
 * `Q/K/V = X W^T + b` (nn.Linear layout). The attention is computed flash-style (tiles streamed
 * through an online softmax; no n x n matrix per head is stored). The FFN half of
 * nn.TransformerEncoderLayer and dropout are out of scope. Pass `result.saved` to
 * {@link biasedAttentionBackward} for the gradients.
 *
 * @example
 * ```ts
 * const { output, saved } = await biasedAttention(
 *   { x: { data: z, rows: 256, cols: 1024 }, wq, wk, wv, wo, bq, bk, bv, bo, gamma, beta,
 *     relevance: { data: rAll, rows: 256, cols: 256 }, mask },
 *   { heads: 16, biasWeight: 1.5 });
 * ```
 * @throws VlkError ERR_VLK_TYPE / ERR_VLK_SHAPE / ERR_VLK_DIM_MISMATCH (naming the input and its
 * dims), ERR_VLK_INVALID_ARG (heads not dividing D, a mask entry other than 0/1, bad options),
 * ERR_VLK_EMPTY (no node; a row with no connected entry when selfLoops is false),
 * ERR_VLK_NON_FINITE (naming the input, row and element); AbortError.
 */
export async function biasedAttention(
  inputs: BiasedAttentionInputs,
  options: BiasedAttentionOptions,
): Promise<BiasedAttentionResult> {
  const p = atApi(() => prepare(inputs, options, true, false), biasedAttention);
  const r = await runCancellable(p.signal, biasedAttention, (token) => binding.biasedAttentionAsync(p.spec, token));
  return r as BiasedAttentionResult;
}

/** {@link biasedAttention} on the calling thread. */
export function biasedAttentionSync(inputs: BiasedAttentionInputs, options: BiasedAttentionOptions): BiasedAttentionResult {
  const p = atApi(() => prepare(inputs, options, false, false), biasedAttentionSync);
  try {
    return binding.biasedAttentionSync(p.spec) as BiasedAttentionResult;
  } catch (err) {
    throw fromNative(err, biasedAttentionSync);
  }
}

/**
 * Gradients of `sum(Y * dOutput)` for {@link biasedAttention}'s layer with respect to x, every
 * weight and bias, gamma, beta, the relevance R (masked: 0 where not connected) and the bias
 * weight w. FlashAttention-2 backward: the probabilities are recomputed tile by tile from the
 * saved per-row log-sum-exp. Same inputs and options as the forward, plus `options.saved`.
 * @throws as {@link biasedAttention}, plus ERR_VLK_SHAPE / ERR_VLK_NON_FINITE for dOutput and the saved tensors.
 */
export async function biasedAttentionBackward(
  inputs: BiasedAttentionInputs,
  dOutput: MatrixInput,
  options: BiasedAttentionBackwardOptions,
): Promise<BiasedAttentionGrads> {
  const p = atApi(() => prepare(inputs, options, true, true, dOutput), biasedAttentionBackward);
  const r = await runCancellable(p.signal, biasedAttentionBackward, (token) =>
    binding.biasedAttentionBackwardAsync(p.spec, token),
  );
  return r as BiasedAttentionGrads;
}

/** {@link biasedAttentionBackward} on the calling thread. */
export function biasedAttentionBackwardSync(
  inputs: BiasedAttentionInputs,
  dOutput: MatrixInput,
  options: BiasedAttentionBackwardOptions,
): BiasedAttentionGrads {
  const p = atApi(() => prepare(inputs, options, false, true, dOutput), biasedAttentionBackwardSync);
  try {
    return binding.biasedAttentionBackwardSync(p.spec) as BiasedAttentionGrads;
  } catch (err) {
    throw fromNative(err, biasedAttentionBackwardSync);
  }
}
