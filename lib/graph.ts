// AAHR's in-batch graph (lib, seed 004; native/core/graph/*.hpp have the formulas): intra-modal
// relevance (gaussian of the distance, or cosine) with its backward, SCAN-style cross-modal
// relevance (no gradient), per-row top-k connectivity masks, and one graph convolution
// Y = LeakyReLU(A (X W) + b) with its backward. Shapes are resolved here; lengths and values are
// checked by the binding and the core, with typed errors naming the input. Each op runs off the
// event loop on the addon's pool (Promise, `signal` cancels) or, as <name>Sync, on the caller.
import { types } from 'node:util';
import { atApi, fromNative, VlkError } from './errors';
import { describe, isRecord, readFlag, readMatrix, readThreads, shapeMatrix } from './args';
import { readSignal, runCancellable } from './cancel';
import { binding, type NativeCancelToken } from './loader';
import type { MatrixInput } from './types';

/** A 3-D tensor-like `{ data, dims: [batch, tokens, dim] }` (row-major). */
export interface GraphTensor3D {
  data: Float32Array;
  dims: readonly [number, number, number] | number[];
}

/** Options every graph op takes. */
export interface GraphCallOptions {
  /** Parallel width; default: the pool size. Results do not depend on it. */
  threads?: number;
  /** Cancels the async form (AbortError); ignored by the Sync forms. */
  signal?: AbortSignal;
}

/** Options of {@link relevance} and {@link relevanceBackward}. */
export interface RelevanceOptions extends GraphCallOptions {
  /** 'gaussian' (default): exp(-||x_i - x_j|| / sigma); 'cosine': x_i . x_j / (|x_i| |x_j|). */
  kind?: 'gaussian' | 'cosine';
  /** The gaussian's sigma, a finite number > 0; default 1 (AAHR's). */
  sigma?: number;
  /** D, when x is a plain Float32Array. */
  dim?: number;
}

/** The inputs of {@link scanRelevance}. */
export interface ScanRelevanceInputs {
  /** Bt x L x D word tokens (padded rows beyond wordLengths[i] are never read). */
  words: GraphTensor3D;
  /** Bt real word counts, each in 1..L. */
  wordLengths: Int32Array;
  /** Bi x R x D region tokens (L2-normalised inside). */
  regions: GraphTensor3D;
}

/** Options of {@link scanRelevance}. */
export interface ScanRelevanceOptions extends GraphCallOptions {
  /** LeakyReLU slope on the word-region similarities; default 0.1 (SCAN / AAHR). */
  negativeSlope?: number;
  /** Added to every L2 norm before dividing (x / (||x|| + eps)); default 1e-8 (SCAN / AAHR). */
  eps?: number;
}

/** The result of {@link scanRelevance}. */
export interface ScanRelevanceResult {
  /** R_tv: Bt x Bi, row = caption (t2i: normalised over words, max over regions, mean over real words). */
  textToImage: Float32Array;
  /** R_vt: Bi x Bt, row = image (i2t: normalised over regions, max over real words, mean over regions). */
  imageToText: Float32Array;
}

/** Options of {@link rowTopkMask}: give exactly one of k and fraction. */
export interface RowTopkMaskOptions extends GraphCallOptions {
  /** Keep entries >= the row's k-th largest value (ties kept); an integer in 1..cols. */
  k?: number;
  /** k = max(1, floor(fraction * cols)), fraction in (0, 1] (AAHR: 0.5). */
  fraction?: number;
  /** Square scores: always keep the diagonal (the self-edge); default true. */
  keepDiagonal?: boolean;
  /** cols, when scores is a plain Float32Array. */
  dim?: number;
}

/** The inputs of {@link gcn}. */
export interface GcnInputs {
  /** A: n x n raw weighted adjacency (entries outside the graph already 0; no normalisation). */
  adjacency: MatrixInput;
  /** X: n x Din node features (after the caller's dropout). */
  input: MatrixInput;
  /** W: Din x Dout, row-major; PyTorch nn.Linear(Din, Dout).weight is Dout x Din, so pass its transpose. */
  weight: MatrixInput;
  /** b: Dout, added after the aggregation (optional). */
  bias?: Float32Array;
}

/** Options of {@link gcn} and {@link gcnBackward}. */
export interface GcnOptions extends GraphCallOptions {
  /** LeakyReLU slope, a finite number >= 0; default 0.2 (AAHR's). */
  slope?: number;
  /** Din, when input is a plain Float32Array. */
  dim?: number;
}

/** The result of {@link gcn}. */
export interface GcnResult {
  /** Y = LeakyReLU(A (X W) + b), n x Dout. */
  output: Float32Array;
  /** H = X W, n x Dout: pass it (and output) to {@link gcnBackward} to skip recomputing them. */
  hidden: Float32Array;
}

/** The inputs of {@link gcnBackward}: the forward's inputs plus dY, and optionally its results. */
export interface GcnBackwardInputs extends GcnInputs {
  /** dL/dY, n x Dout. */
  gradOutput: MatrixInput;
  /** The forward's Y (only its sign is read); recomputed when omitted (then bias must be the forward's). */
  output?: MatrixInput;
  /** The forward's H = X W; recomputed when omitted. */
  hidden?: MatrixInput;
}

/** The result of {@link gcnBackward}: gradients of L with respect to each input. */
export interface GcnGrads {
  /** dX, n x Din. */
  input: Float32Array;
  /** dW, Din x Dout. */
  weight: Float32Array;
  /** db, Dout. */
  bias: Float32Array;
  /** dA, n x n (dense: restrict it to the graph's entries if A was masked). */
  adjacency: Float32Array;
}

type Mat = { data: Float32Array; rows: number; cols: number };

// A matrix whose rows and/or cols are known from another input (`hint` says which).
function mat(value: unknown, name: string, rows: number | undefined, cols: number | undefined, hint: string): Mat {
  const arg = readMatrix(value, name);
  if ('view' in arg) {
    const v = arg.view;
    if (cols !== undefined && v.cols !== cols) {
      throw new VlkError('ERR_VLK_DIM_MISMATCH', `${name}: ${v.cols} columns, expected ${cols} (${hint})`);
    }
    if (rows !== undefined && v.rows !== rows) {
      throw new VlkError('ERR_VLK_SHAPE', `${name}: ${v.rows} rows, expected ${rows} (${hint})`);
    }
    return { data: v.data as Float32Array, rows: v.rows, cols: v.cols };
  }
  const data = arg.plain;
  if (cols === 0 && data.length === 0) return { data, rows: rows ?? 0, cols: 0 }; // the core says ERR_VLK_EMPTY
  if (cols !== undefined) {
    if (cols === 0 || data.length % cols !== 0) {
      throw new VlkError('ERR_VLK_DIM_MISMATCH', `${name}: length ${data.length} is not a multiple of ${cols} (${hint})`);
    }
    const r = data.length / cols;
    if (rows !== undefined && r !== rows) {
      throw new VlkError('ERR_VLK_SHAPE', `${name}: length ${data.length} is not ${rows} x ${cols} (${hint})`);
    }
    return { data, rows: r, cols };
  }
  if (rows === undefined || rows === 0 || data.length % rows !== 0) {
    throw new VlkError('ERR_VLK_SHAPE', `${name}: length ${data.length} does not split into ${rows} rows (${hint})`);
  }
  return { data, rows, cols: data.length / rows };
}

function read3(value: unknown, name: string): { data: Float32Array; dims: [number, number, number] } {
  if (!isRecord(value) || !types.isFloat32Array(value.data) || !Array.isArray(value.dims) || value.dims.length !== 3) {
    throw new VlkError('ERR_VLK_TYPE', `${name}: expected { data: Float32Array, dims: [batch, tokens, dim] }, got ${describe(value)}`);
  }
  const dims = value.dims.map((x, i) => {
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0) {
      throw new VlkError('ERR_VLK_SHAPE', `${name}.dims[${i}]: ${describe(x)} is not a size`);
    }
    return x;
  }) as [number, number, number];
  const n = dims[0] * dims[1] * dims[2];
  if (value.data.length !== n) {
    throw new VlkError('ERR_VLK_SHAPE', `${name}: data has ${value.data.length} elements, dims [${dims.join(', ')}] need ${n}`);
  }
  return { data: value.data, dims };
}

function num(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `${name}: expected a finite number, got ${describe(value)}`);
  }
  return value;
}

function opts(options: unknown): Record<string, unknown> {
  if (!isRecord(options)) throw new VlkError('ERR_VLK_TYPE', `options: expected an object, got ${describe(options)}`);
  return options;
}

interface Prepared {
  spec: Record<string, unknown>;
  signal?: AbortSignal;
}

function common(spec: Record<string, unknown>, o: Record<string, unknown>, async: boolean): Prepared {
  const threads = readThreads(o.threads);
  if (threads !== undefined) spec.threads = threads;
  return { spec, signal: async ? readSignal(o.signal, 'options.signal') : undefined };
}

type Native = Record<string, Float32Array | Uint8Array>;
type NativeSync = (spec: Record<string, unknown>) => Native;
type NativeAsync = (spec: Record<string, unknown>, token?: NativeCancelToken) => Promise<Native>;

async function runAsync(p: Prepared, api: Function, fn: NativeAsync): Promise<Native> {
  return runCancellable(p.signal, api, (token) => fn.call(binding, p.spec, token));
}

function runSync(p: Prepared, api: Function, fn: NativeSync): Native {
  try {
    return fn.call(binding, p.spec);
  } catch (err) {
    throw fromNative(err, api);
  }
}

// ---- relevance ------------------------------------------------------------------------------

function prepareRelevance(x: unknown, grad: unknown, options: unknown, async: boolean, backward: boolean): Prepared {
  const o = opts(options);
  const xm = shapeMatrix(readMatrix(x, 'x'), 'x', o.dim === undefined ? undefined : (o.dim as number));
  const kind = o.kind ?? 'gaussian';
  if (kind !== 'gaussian' && kind !== 'cosine') {
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.kind: expected 'gaussian' or 'cosine', got ${describe(kind)}`);
  }
  const sigma = num(o.sigma, 'options.sigma', 1);
  if (!(sigma > 0)) throw new VlkError('ERR_VLK_INVALID_ARG', `options.sigma: ${sigma} is not > 0`);
  const spec: Record<string, unknown> = { n: xm.rows, d: xm.cols, x: xm.data, kind, sigma };
  if (backward) {
    spec.gradOutput = mat(grad, 'gradOutput', xm.rows, xm.rows, `n x n for x with n = ${xm.rows} rows`).data;
  }
  return common(spec, o, async);
}

/**
 * Intra-modal relevance of n nodes, n x n row-major: 'gaussian' `exp(-||x_i - x_j|| / sigma)`
 * (AAHR's R_vv / R_tt; diagonal 1) or 'cosine'. Distances come from the fp32 GEMM's Gram matrix
 * on centred rows, with near pairs recomputed exactly.
 * @throws VlkError ERR_VLK_TYPE / ERR_VLK_SHAPE / ERR_VLK_DIM_MISMATCH, ERR_VLK_EMPTY,
 * ERR_VLK_INVALID_ARG (kind, sigma), ERR_VLK_NON_FINITE (naming x's row and column); AbortError.
 */
export async function relevance(x: MatrixInput, options: RelevanceOptions = {}): Promise<Float32Array> {
  const p = atApi(() => prepareRelevance(x, undefined, options, true, false), relevance);
  return (await runAsync(p, relevance, binding.graphRelevanceAsync)).relevance as Float32Array;
}

/** {@link relevance} on the calling thread. */
export function relevanceSync(x: MatrixInput, options: RelevanceOptions = {}): Float32Array {
  const p = atApi(() => prepareRelevance(x, undefined, options, false, false), relevanceSync);
  return runSync(p, relevanceSync, binding.graphRelevanceSync).relevance as Float32Array;
}

/**
 * dL/dx (n x D) of {@link relevance} given dL/dR (n x n, not assumed symmetric). For the
 * gaussian, pairs at zero distance (the diagonal, duplicate rows) contribute 0.
 */
export async function relevanceBackward(
  x: MatrixInput,
  gradOutput: MatrixInput,
  options: RelevanceOptions = {},
): Promise<Float32Array> {
  const p = atApi(() => prepareRelevance(x, gradOutput, options, true, true), relevanceBackward);
  return (await runAsync(p, relevanceBackward, binding.graphRelevanceBackwardAsync)).x as Float32Array;
}

/** {@link relevanceBackward} on the calling thread. */
export function relevanceBackwardSync(x: MatrixInput, gradOutput: MatrixInput, options: RelevanceOptions = {}): Float32Array {
  const p = atApi(() => prepareRelevance(x, gradOutput, options, false, true), relevanceBackwardSync);
  return runSync(p, relevanceBackwardSync, binding.graphRelevanceBackwardSync).x as Float32Array;
}

// ---- scanRelevance --------------------------------------------------------------------------

function prepareScan(inputs: unknown, options: unknown, async: boolean): Prepared {
  if (!isRecord(inputs)) {
    throw new VlkError('ERR_VLK_TYPE', `inputs: expected { words, wordLengths, regions }, got ${describe(inputs)}`);
  }
  const o = opts(options);
  const w = read3(inputs.words, 'words');
  const r = read3(inputs.regions, 'regions');
  if (r.dims[2] !== w.dims[2]) {
    throw new VlkError('ERR_VLK_DIM_MISMATCH', `regions: dim ${r.dims[2]} differs from words' dim ${w.dims[2]}`);
  }
  const lens = inputs.wordLengths;
  if (!types.isInt32Array(lens)) {
    throw new VlkError('ERR_VLK_TYPE', `wordLengths: expected an Int32Array, got ${describe(lens)}`);
  }
  if (lens.length !== w.dims[0]) {
    throw new VlkError('ERR_VLK_SHAPE', `wordLengths: length ${lens.length}, words has ${w.dims[0]} captions`);
  }
  const eps = num(o.eps, 'options.eps', 1e-8);
  if (!(eps > 0)) throw new VlkError('ERR_VLK_INVALID_ARG', `options.eps: ${eps} is not > 0`);
  const spec: Record<string, unknown> = {
    captions: w.dims[0],
    maxWords: w.dims[1],
    images: r.dims[0],
    regionsPerImage: r.dims[1],
    d: w.dims[2],
    words: w.data,
    wordLengths: lens,
    regions: r.data,
    negativeSlope: num(o.negativeSlope, 'options.negativeSlope', 0.1),
    eps,
  };
  return common(spec, o, async);
}

function scanResult(r: Native): ScanRelevanceResult {
  return { textToImage: r.textToImage as Float32Array, imageToText: r.imageToText as Float32Array };
}

/**
 * SCAN-style cross-modal relevance of every (caption, image) pair, no gradient (AAHR's R_tv and
 * R_vt): A = LeakyReLU_0.1(words_i . normalised regions_j^T); t2i normalises A over the real
 * words, takes the max over regions per word and the mean over real words; i2t normalises over
 * the regions, takes the max over real words per region and the mean over the regions.
 * @throws VlkError ERR_VLK_TYPE / ERR_VLK_SHAPE / ERR_VLK_DIM_MISMATCH, ERR_VLK_EMPTY,
 * ERR_VLK_INVALID_ARG (a word length outside 1..L), ERR_VLK_NON_FINITE; AbortError.
 */
export async function scanRelevance(inputs: ScanRelevanceInputs, options: ScanRelevanceOptions = {}): Promise<ScanRelevanceResult> {
  const p = atApi(() => prepareScan(inputs, options, true), scanRelevance);
  return scanResult(await runAsync(p, scanRelevance, binding.graphScanRelevanceAsync));
}

/** {@link scanRelevance} on the calling thread. */
export function scanRelevanceSync(inputs: ScanRelevanceInputs, options: ScanRelevanceOptions = {}): ScanRelevanceResult {
  const p = atApi(() => prepareScan(inputs, options, false), scanRelevanceSync);
  return scanResult(runSync(p, scanRelevanceSync, binding.graphScanRelevanceSync));
}

// ---- rowTopkMask ----------------------------------------------------------------------------

function prepareMask(scores: unknown, options: unknown, async: boolean): Prepared {
  const o = opts(options);
  const s = shapeMatrix(readMatrix(scores, 'scores'), 'scores', o.dim === undefined ? undefined : (o.dim as number));
  if ((o.k === undefined) === (o.fraction === undefined)) {
    throw new VlkError('ERR_VLK_INVALID_K', 'options: give exactly one of k (an integer) and fraction (in (0, 1])');
  }
  let k = 0;
  let fraction = 0;
  if (o.k !== undefined) {
    if (typeof o.k !== 'number' || !Number.isInteger(o.k) || o.k < 1 || o.k > s.cols) {
      throw new VlkError('ERR_VLK_INVALID_K', `options.k: ${describe(o.k)} is not an integer in 1..${s.cols} (the row length)`);
    }
    k = o.k;
  } else if (typeof o.fraction !== 'number' || !(o.fraction > 0 && o.fraction <= 1)) {
    throw new VlkError('ERR_VLK_INVALID_K', `options.fraction: ${describe(o.fraction)} is not a number in (0, 1]`);
  } else {
    fraction = o.fraction;
  }
  const keepDiagonal = readFlag(o.keepDiagonal, 'options.keepDiagonal', true);
  const spec: Record<string, unknown> = { rows: s.rows, cols: s.cols, scores: s.data, k, fraction, keepDiagonal };
  return common(spec, o, async);
}

/**
 * AAHR's connectivity: per row of scores (rows x cols), 1 where the entry is >= the row's k-th
 * largest value (ties kept, so a row may keep more than k), else 0; with a square matrix the
 * diagonal is always 1 (unless keepDiagonal is false). One byte per entry, row-major.
 * @throws VlkError ERR_VLK_INVALID_K (k / fraction), ERR_VLK_NON_FINITE (a NaN, naming row and
 * column), ERR_VLK_TYPE / ERR_VLK_SHAPE / ERR_VLK_DIM_MISMATCH, ERR_VLK_EMPTY; AbortError.
 */
export async function rowTopkMask(scores: MatrixInput, options: RowTopkMaskOptions): Promise<Uint8Array> {
  const p = atApi(() => prepareMask(scores, options, true), rowTopkMask);
  return (await runAsync(p, rowTopkMask, binding.graphRowTopkMaskAsync)).mask as Uint8Array;
}

/** {@link rowTopkMask} on the calling thread. */
export function rowTopkMaskSync(scores: MatrixInput, options: RowTopkMaskOptions): Uint8Array {
  const p = atApi(() => prepareMask(scores, options, false), rowTopkMaskSync);
  return runSync(p, rowTopkMaskSync, binding.graphRowTopkMaskSync).mask as Uint8Array;
}

// ---- gcn ------------------------------------------------------------------------------------

function prepareGcn(inputs: unknown, options: unknown, async: boolean, backward: boolean): Prepared {
  const names = backward ? '{ adjacency, input, weight, bias?, gradOutput, output?, hidden? }' : '{ adjacency, input, weight, bias? }';
  if (!isRecord(inputs)) throw new VlkError('ERR_VLK_TYPE', `inputs: expected ${names}, got ${describe(inputs)}`);
  const o = opts(options);
  const x = shapeMatrix(readMatrix(inputs.input, 'input'), 'input', o.dim === undefined ? undefined : (o.dim as number));
  const n = x.rows;
  const din = x.cols;
  const w = mat(inputs.weight, 'weight', din, undefined, `Din x Dout with input's Din = ${din}`);
  const dout = w.cols;
  const a = mat(inputs.adjacency, 'adjacency', n, n, `n x n with input's n = ${n} rows`);
  const slope = num(o.slope, 'options.slope', 0.2);
  if (!(slope >= 0)) throw new VlkError('ERR_VLK_INVALID_ARG', `options.slope: ${slope} is not >= 0`);
  const spec: Record<string, unknown> = { n, din, dout, adjacency: a.data, input: x.data, weight: w.data, slope };
  if (inputs.bias !== undefined) {
    if (!types.isFloat32Array(inputs.bias)) {
      throw new VlkError('ERR_VLK_TYPE', `bias: expected a Float32Array, got ${describe(inputs.bias)}`);
    }
    if (inputs.bias.length !== dout) {
      throw new VlkError('ERR_VLK_SHAPE', `bias: length ${inputs.bias.length}, expected weight's Dout = ${dout}`);
    }
    spec.bias = inputs.bias;
  }
  if (backward) {
    const hint = `n x Dout = ${n} x ${dout}`;
    spec.gradOutput = mat(inputs.gradOutput, 'gradOutput', n, dout, hint).data;
    if (inputs.output !== undefined) spec.output = mat(inputs.output, 'output', n, dout, hint).data;
    if (inputs.hidden !== undefined) spec.hidden = mat(inputs.hidden, 'hidden', n, dout, hint).data;
  }
  return common(spec, o, async);
}

function gcnResult(r: Native): GcnResult {
  return { output: r.output as Float32Array, hidden: r.hidden as Float32Array };
}

function gcnGrads(r: Native): GcnGrads {
  return {
    input: r.input as Float32Array,
    weight: r.weight as Float32Array,
    bias: r.bias as Float32Array,
    adjacency: r.adjacency as Float32Array,
  };
}

/**
 * One graph convolution (AAHR's GCN): `Y = LeakyReLU_slope(A (X W) + b)`, A the raw weighted
 * adjacency (n x n), X n x Din, W Din x Dout (the transpose of PyTorch's nn.Linear weight). Dropout
 * is the caller's: pass the dropped X, and apply the same mask to the input gradient.
 * @example
 * ```ts
 * const r = relevanceSync(x, { dim: 1024 });                     // gaussian, sigma 1
 * const m = rowTopkMaskSync(r, { dim: n, fraction: 0.5 });
 * const a = r.map((v, i) => (m[i] ? v : 0));
 * const { output, hidden } = await gcn({ adjacency: a, input: x, weight: w, bias: b }, { dim: 1024 });
 * const grads = await gcnBackward({ adjacency: a, input: x, weight: w, bias: b, gradOutput: dy, output, hidden }, { dim: 1024 });
 * ```
 * @throws VlkError ERR_VLK_TYPE / ERR_VLK_SHAPE / ERR_VLK_DIM_MISMATCH (naming the input),
 * ERR_VLK_EMPTY, ERR_VLK_INVALID_ARG (slope), ERR_VLK_NON_FINITE; AbortError.
 */
export async function gcn(inputs: GcnInputs, options: GcnOptions = {}): Promise<GcnResult> {
  const p = atApi(() => prepareGcn(inputs, options, true, false), gcn);
  return gcnResult(await runAsync(p, gcn, binding.graphGcnAsync));
}

/** {@link gcn} on the calling thread. */
export function gcnSync(inputs: GcnInputs, options: GcnOptions = {}): GcnResult {
  const p = atApi(() => prepareGcn(inputs, options, false, false), gcnSync);
  return gcnResult(runSync(p, gcnSync, binding.graphGcnSync));
}

/**
 * Gradients of {@link gcn} given dL/dY: dX, dW, db and dA (dense n x n). Pass the forward's
 * output and hidden to skip recomputing them (bit-identical results either way).
 */
export async function gcnBackward(inputs: GcnBackwardInputs, options: GcnOptions = {}): Promise<GcnGrads> {
  const p = atApi(() => prepareGcn(inputs, options, true, true), gcnBackward);
  return gcnGrads(await runAsync(p, gcnBackward, binding.graphGcnBackwardAsync));
}

/** {@link gcnBackward} on the calling thread. */
export function gcnBackwardSync(inputs: GcnBackwardInputs, options: GcnOptions = {}): GcnGrads {
  const p = atApi(() => prepareGcn(inputs, options, false, true), gcnBackwardSync);
  return gcnGrads(runSync(p, gcnBackwardSync, binding.graphGcnBackwardSync));
}

/** The in-batch graph ops as one namespace (the same functions as the named exports). */
export const graph = {
  relevance,
  relevanceSync,
  relevanceBackward,
  relevanceBackwardSync,
  scanRelevance,
  scanRelevanceSync,
  rowTopkMask,
  rowTopkMaskSync,
  gcn,
  gcnSync,
  gcnBackward,
  gcnBackwardSync,
};
