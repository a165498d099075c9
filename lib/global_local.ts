// Global-local fused scoring (lib), AAHR's encoder heads and SCAN's local scorer (seed 004):
// maxkPool (per-dim mean of the top-k token values), cosineMhaPool (global-guided multi-head
// cosine attention pooling), gatedFusion (z = sigmoid(W [e; g] + b), v = z e + (1 - z) g), each
// with its Backward, and scanSimilarity (SCAN t2i / AAHR mean-max scores of candidate pairs, with
// the top-k per query: re-ranking after a global search). Formulas and every choice where the
// papers are silent: native/core/pooling/*.hpp and native/core/search/scan_similarity.hpp.
// Shapes are resolved here; lengths and values are checked again by the binding and the core.
import { atApi, fromNative, VlkError } from './errors';
import { describe, isRecord, readThreads } from './args';
import { readSignal, runCancellable } from './cancel';
import { binding } from './loader';
import type { MatrixInput } from './types';
import { readInt, readInts, readMat, readNum, readOptions, readTensor, readVec, type TensorND } from './gl_args';

export type { TensorND } from './gl_args';

/** Options shared by every op here. */
export interface GlobalLocalCallOptions {
  /** Parallel width; default: the pool size. */
  threads?: number;
  /** Cancels the async form (not the Sync one). */
  signal?: AbortSignal;
}

type Spec = Record<string, unknown>;
type NativeOp = 'maxkPool' | 'maxkPoolBackward' | 'cosineMhaPool' | 'cosineMhaPoolBackward' | 'gatedFusion' | 'gatedFusionBackward' | 'scanSimilarity';

function common(spec: Spec, options: Record<string, unknown>, async: boolean): AbortSignal | undefined {
  const threads = readThreads(options.threads);
  if (threads !== undefined) spec.threads = threads;
  return async ? readSignal(options.signal, 'options.signal') : undefined;
}

function callSync(op: NativeOp, spec: Spec, api: Function): Record<string, unknown> {
  try {
    return (binding as unknown as Record<string, (s: Spec) => Record<string, unknown>>)[`${op}Sync`](spec);
  } catch (err) {
    throw fromNative(err, api);
  }
}

async function callAsync(op: NativeOp, spec: Spec, signal: AbortSignal | undefined, api: Function): Promise<Record<string, unknown>> {
  const b = binding as unknown as Record<string, (s: Spec, t?: unknown) => Promise<Record<string, unknown>>>;
  return (await runCancellable(signal, api, (token) => b[`${op}Async`](spec, token))) as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// maxkPool

/** Options of {@link maxkPool}. */
export interface MaxkPoolOptions extends GlobalLocalCallOptions {
  /** Valid tokens per item (1..n); default all n. Padding tokens are never read for selection. */
  lengths?: Int32Array;
  /** How many top values per dimension are averaged; default 2 (AAHR). Clipped to each item's length. */
  k?: number;
}

function prepMaxk(x: unknown, options: unknown, async: boolean): { spec: Spec; signal?: AbortSignal; b: number; d: number } {
  const o = readOptions(options);
  const t = readTensor(x, 'x', 3, 'B, n, D');
  const [b, n, d] = t.dims;
  const spec: Spec = { b, n, d, x: t.data, k: readInt(o.k, 'options.k', 2, 1, 'ERR_VLK_INVALID_K') };
  if (o.lengths !== undefined) spec.lengths = readInts(o.lengths, 'options.lengths', b);
  const signal = common(spec, o, async);
  return { spec, signal, b, d };
}

/**
 * `r[b, e]` = mean of the k largest `x[b, t, e]` over the valid tokens (k clipped to the item's
 * length; ties: lower token first). Returns B x D.
 * @throws VlkError ERR_VLK_TYPE / ERR_VLK_SHAPE (x, lengths), ERR_VLK_INVALID_K (k < 1),
 * ERR_VLK_INVALID_ARG (a length outside 1..n), ERR_VLK_NON_FINITE (a valid token), ERR_VLK_EMPTY; AbortError.
 */
export async function maxkPool(x: TensorND, options: MaxkPoolOptions = {}): Promise<Float32Array> {
  const p = atApi(() => prepMaxk(x, options, true), maxkPool);
  return (await callAsync('maxkPool', p.spec, p.signal, maxkPool)).out as Float32Array;
}

/** {@link maxkPool} on the calling thread. */
export function maxkPoolSync(x: TensorND, options: MaxkPoolOptions = {}): Float32Array {
  const p = atApi(() => prepMaxk(x, options, false), maxkPoolSync);
  return callSync('maxkPool', p.spec, maxkPoolSync).out as Float32Array;
}

function prepMaxkBack(x: unknown, dout: unknown, options: unknown, async: boolean) {
  const p = prepMaxk(x, options, async);
  p.spec.dout = readMat(dout, 'dout', p.d).data;
  if ((p.spec.dout as Float32Array).length !== p.b * p.d) {
    throw new VlkError('ERR_VLK_SHAPE', `dout: ${(p.spec.dout as Float32Array).length / p.d} rows, x has B = ${p.b}`);
  }
  return p;
}

/** dL/dx (B x n x D) of {@link maxkPool} given dL/dr (B x D): dr / k_b on each chosen token, 0 elsewhere. */
export async function maxkPoolBackward(x: TensorND, dout: MatrixInput, options: MaxkPoolOptions = {}): Promise<Float32Array> {
  const p = atApi(() => prepMaxkBack(x, dout, options, true), maxkPoolBackward);
  return (await callAsync('maxkPoolBackward', p.spec, p.signal, maxkPoolBackward)).dx as Float32Array;
}

/** {@link maxkPoolBackward} on the calling thread. */
export function maxkPoolBackwardSync(x: TensorND, dout: MatrixInput, options: MaxkPoolOptions = {}): Float32Array {
  const p = atApi(() => prepMaxkBack(x, dout, options, false), maxkPoolBackwardSync);
  return callSync('maxkPoolBackward', p.spec, maxkPoolBackwardSync).dx as Float32Array;
}

// ---------------------------------------------------------------------------------------------
// cosineMhaPool

/** Inputs of {@link cosineMhaPool}. h heads, each with full Linear layers in PyTorch layout (out x in). */
export interface CosineMhaPoolInputs {
  /** g: B x Dg global vectors (AAHR: the CLIP global feature). */
  global: MatrixInput;
  /** X: B x n x D local tokens. */
  tokens: TensorND;
  /** Valid tokens per item (1..n); default all. */
  lengths?: Int32Array;
  /** Wq: h x D x Dg, Wk: h x D x D, Wv: h x D x D; biases h x D (optional, 0). */
  wq: TensorND;
  wk: TensorND;
  wv: TensorND;
  bq?: Float32Array | MatrixInput;
  bk?: Float32Array | MatrixInput;
  bv?: Float32Array | MatrixInput;
}

/** Options of {@link cosineMhaPool}. */
export interface CosineMhaPoolOptions extends GlobalLocalCallOptions {
  /** Also return the attention weights (B x h x n, 0 on padding); default false. */
  attention?: boolean;
}

/** Gradients of {@link cosineMhaPoolBackward}, shaped as the inputs. */
export interface CosineMhaPoolGrads {
  global: Float32Array;
  tokens: Float32Array;
  wq: Float32Array;
  wk: Float32Array;
  wv: Float32Array;
  bq: Float32Array;
  bk: Float32Array;
  bv: Float32Array;
}

function prepMha(inputs: unknown, options: unknown, async: boolean) {
  const o = readOptions(options);
  if (!isRecord(inputs)) {
    throw new VlkError('ERR_VLK_TYPE', `inputs: expected { global, tokens, wq, wk, wv, ... }, got ${describe(inputs)}`);
  }
  const x = readTensor(inputs.tokens, 'tokens', 3, 'B, n, D');
  const [b, n, d] = x.dims;
  const g = readMat(inputs.global, 'global', undefined);
  if (g.rows !== b) throw new VlkError('ERR_VLK_SHAPE', `global: ${g.rows} rows, tokens has B = ${b}`);
  const dg = g.cols;
  const wq = readTensor(inputs.wq, 'wq', 3, 'heads, D, Dg');
  const heads = wq.dims[0];
  const want = (name: string, t: { dims: number[] }, e: number[]) => {
    if (t.dims.some((v, i) => v !== e[i])) {
      throw new VlkError('ERR_VLK_DIM_MISMATCH', `${name}: dims [${t.dims.join(', ')}], expected [${e.join(', ')}]`);
    }
  };
  want('wq', wq, [heads, d, dg]);
  const wk = readTensor(inputs.wk, 'wk', 3, 'heads, D, D');
  want('wk', wk, [heads, d, d]);
  const wv = readTensor(inputs.wv, 'wv', 3, 'heads, D, D');
  want('wv', wv, [heads, d, d]);
  const spec: Spec = { b, n, d, dg, heads, g: g.data, x: x.data, wq: wq.data, wk: wk.data, wv: wv.data };
  if (inputs.lengths !== undefined) spec.lengths = readInts(inputs.lengths, 'lengths', b);
  for (const k of ['bq', 'bk', 'bv'] as const) {
    if (inputs[k] !== undefined) spec[k] = readVec(inputs[k], k, heads * d);
  }
  if (o.attention !== undefined) {
    if (typeof o.attention !== 'boolean') {
      throw new VlkError('ERR_VLK_INVALID_ARG', `options.attention: expected a boolean, got ${describe(o.attention)}`);
    }
    spec.attention = o.attention;
  }
  const signal = common(spec, o, async);
  return { spec, signal, b, d };
}

/**
 * AAHR's global-guided local pooling: per head `a = softmax_n(norm(Wq g + bq) . norm(Wk x_n + bk))`
 * (cosine, no temperature, valid tokens only), `o_h = sum_n a_n (Wv x_n + bv)`; returns
 * `{ out: m = mean_h o_h (B x D), attention? }`.
 */
export async function cosineMhaPool(
  inputs: CosineMhaPoolInputs,
  options: CosineMhaPoolOptions = {},
): Promise<{ out: Float32Array; attention?: Float32Array }> {
  const p = atApi(() => prepMha(inputs, options, true), cosineMhaPool);
  return (await callAsync('cosineMhaPool', p.spec, p.signal, cosineMhaPool)) as { out: Float32Array; attention?: Float32Array };
}

/** {@link cosineMhaPool} on the calling thread. */
export function cosineMhaPoolSync(
  inputs: CosineMhaPoolInputs,
  options: CosineMhaPoolOptions = {},
): { out: Float32Array; attention?: Float32Array } {
  const p = atApi(() => prepMha(inputs, options, false), cosineMhaPoolSync);
  return callSync('cosineMhaPool', p.spec, cosineMhaPoolSync) as { out: Float32Array; attention?: Float32Array };
}

function mhaGrads(r: Record<string, unknown>): CosineMhaPoolGrads {
  return {
    global: r.dg as Float32Array,
    tokens: r.dx as Float32Array,
    wq: r.dwq as Float32Array,
    wk: r.dwk as Float32Array,
    wv: r.dwv as Float32Array,
    bq: r.dbq as Float32Array,
    bk: r.dbk as Float32Array,
    bv: r.dbv as Float32Array,
  };
}

function prepMhaBack(inputs: unknown, dout: unknown, options: unknown, async: boolean) {
  const p = prepMha(inputs, options, async);
  delete p.spec.attention;
  const dm = readMat(dout, 'dout', p.d);
  if (dm.rows !== p.b) throw new VlkError('ERR_VLK_SHAPE', `dout: ${dm.rows} rows, tokens has B = ${p.b}`);
  p.spec.dout = dm.data;
  return p;
}

/** Gradients of every input and weight of {@link cosineMhaPool} given dL/dm (B x D); padding tokens get 0. */
export async function cosineMhaPoolBackward(
  inputs: CosineMhaPoolInputs,
  dout: MatrixInput,
  options: GlobalLocalCallOptions = {},
): Promise<CosineMhaPoolGrads> {
  const p = atApi(() => prepMhaBack(inputs, dout, options, true), cosineMhaPoolBackward);
  return mhaGrads(await callAsync('cosineMhaPoolBackward', p.spec, p.signal, cosineMhaPoolBackward));
}

/** {@link cosineMhaPoolBackward} on the calling thread. */
export function cosineMhaPoolBackwardSync(
  inputs: CosineMhaPoolInputs,
  dout: MatrixInput,
  options: GlobalLocalCallOptions = {},
): CosineMhaPoolGrads {
  const p = atApi(() => prepMhaBack(inputs, dout, options, false), cosineMhaPoolBackwardSync);
  return mhaGrads(callSync('cosineMhaPoolBackward', p.spec, cosineMhaPoolBackwardSync));
}

// ---------------------------------------------------------------------------------------------
// gatedFusion

/** Inputs of {@link gatedFusion}: e, g (B x D), W (D x 2D, Linear layout), b (D, optional). */
export interface GatedFusionInputs {
  e: MatrixInput;
  g: MatrixInput;
  weight: MatrixInput;
  bias?: Float32Array;
}

/** Gradients of {@link gatedFusionBackward}. */
export interface GatedFusionGrads {
  e: Float32Array;
  g: Float32Array;
  weight: Float32Array;
  bias: Float32Array;
}

function prepGated(inputs: unknown, options: unknown, async: boolean) {
  const o = readOptions(options);
  if (!isRecord(inputs)) throw new VlkError('ERR_VLK_TYPE', `inputs: expected { e, g, weight, bias? }, got ${describe(inputs)}`);
  const w = readMat(inputs.weight, 'weight', undefined);
  const d = w.rows;
  if (w.cols !== 2 * d) {
    throw new VlkError('ERR_VLK_DIM_MISMATCH', `weight: ${w.rows} x ${w.cols}, expected D x 2D (D = ${d}, 2D = ${2 * d})`);
  }
  const e = readMat(inputs.e, 'e', d);
  const g = readMat(inputs.g, 'g', d);
  if (g.rows !== e.rows) throw new VlkError('ERR_VLK_SHAPE', `g: ${g.rows} rows, e has ${e.rows}`);
  const spec: Spec = { b: e.rows, d, e: e.data, g: g.data, weight: w.data };
  if (inputs.bias !== undefined) spec.bias = readVec(inputs.bias, 'bias', d);
  const signal = common(spec, o, async);
  return { spec, signal, b: e.rows, d };
}

/** `z = sigmoid(W [e; g] + b)`, `v = z * e + (1 - z) * g` (not renormalised). Returns `{ v, z }` (B x D each). */
export async function gatedFusion(inputs: GatedFusionInputs, options: GlobalLocalCallOptions = {}): Promise<{ v: Float32Array; z: Float32Array }> {
  const p = atApi(() => prepGated(inputs, options, true), gatedFusion);
  return (await callAsync('gatedFusion', p.spec, p.signal, gatedFusion)) as { v: Float32Array; z: Float32Array };
}

/** {@link gatedFusion} on the calling thread. */
export function gatedFusionSync(inputs: GatedFusionInputs, options: GlobalLocalCallOptions = {}): { v: Float32Array; z: Float32Array } {
  const p = atApi(() => prepGated(inputs, options, false), gatedFusionSync);
  return callSync('gatedFusion', p.spec, gatedFusionSync) as { v: Float32Array; z: Float32Array };
}

function prepGatedBack(inputs: unknown, dv: unknown, options: unknown, async: boolean) {
  const p = prepGated(inputs, options, async);
  const m = readMat(dv, 'dv', p.d);
  if (m.rows !== p.b) throw new VlkError('ERR_VLK_SHAPE', `dv: ${m.rows} rows, e has ${p.b}`);
  p.spec.dv = m.data;
  return p;
}

function gatedGrads(r: Record<string, unknown>): GatedFusionGrads {
  return { e: r.de as Float32Array, g: r.dg as Float32Array, weight: r.dweight as Float32Array, bias: r.dbias as Float32Array };
}

/** Gradients of {@link gatedFusion} (e, g, weight, bias) given dL/dv (B x D). */
export async function gatedFusionBackward(inputs: GatedFusionInputs, dv: MatrixInput, options: GlobalLocalCallOptions = {}): Promise<GatedFusionGrads> {
  const p = atApi(() => prepGatedBack(inputs, dv, options, true), gatedFusionBackward);
  return gatedGrads(await callAsync('gatedFusionBackward', p.spec, p.signal, gatedFusionBackward));
}

/** {@link gatedFusionBackward} on the calling thread. */
export function gatedFusionBackwardSync(inputs: GatedFusionInputs, dv: MatrixInput, options: GlobalLocalCallOptions = {}): GatedFusionGrads {
  const p = atApi(() => prepGatedBack(inputs, dv, options, false), gatedFusionBackwardSync);
  return gatedGrads(callSync('gatedFusionBackward', p.spec, gatedFusionBackwardSync));
}

// ---------------------------------------------------------------------------------------------
// scanSimilarity

/** Inputs of {@link scanSimilarity}. */
export interface ScanSimilarityInputs {
  /** Query words, Q x L x D (used as given: L2-normalise upstream as SCAN does). */
  words: TensorND;
  /** Valid words per query (1..L); default all L. */
  wordLengths?: Int32Array;
  /**
   * Regions: a bank N x R x D with `candidates` (CSR lists of bank rows per query), or dense
   * Q x C x R x D (query q's own C candidates, no `candidates`).
   */
  regions: TensorND;
  candidates?: { offsets: Int32Array; rows: Int32Array };
}

/** Options of {@link scanSimilarity}. */
export interface ScanSimilarityOptions extends GlobalLocalCallOptions {
  /** 't2i-lse' (default, SCAN t2i with LogSumExp pooling), 't2i-mean', or 'mean-max' (AAHR's R_tv). */
  mode?: 't2i-lse' | 't2i-mean' | 'mean-max';
  /** Softmax inverse temperature over regions; default 9 (SCAN t2i). */
  lambda1?: number;
  /** LogSumExp sharpness over words; default 6. */
  lambda2?: number;
  /** Also return the best k candidates per query; default 0 (scores only). */
  k?: number;
}

/** Result of {@link scanSimilarity}. */
export interface ScanSimilarityResult {
  /** One score per candidate, in list order (CSR order, or Q x C). */
  scores: Float32Array;
  /** With k: Q x k positions in each query's list (best first, ties by lower position; -1 padding). */
  positions?: Int32Array;
  /** With k: Q x k bank rows of those candidates (dense: q C + position). */
  indices?: Int32Array;
  /** With k: Q x k scores (NaN padding). */
  topScores?: Float32Array;
  /** With k: valid entries per query. */
  counts?: Int32Array;
  k: number;
}

function prepScan(inputs: unknown, options: unknown, async: boolean) {
  const o = readOptions(options);
  if (!isRecord(inputs)) throw new VlkError('ERR_VLK_TYPE', `inputs: expected { words, regions, candidates? }, got ${describe(inputs)}`);
  const w = readTensor(inputs.words, 'words', 3, 'Q, L, D');
  const [q, l, d] = w.dims;
  const spec: Spec = { q, l, d, words: w.data };
  if (inputs.wordLengths !== undefined) spec.wordLengths = readInts(inputs.wordLengths, 'wordLengths', q);
  if (inputs.candidates !== undefined) {
    const reg = readTensor(inputs.regions, 'regions', 3, 'N, R, D');
    if (reg.dims[2] !== d) throw new VlkError('ERR_VLK_DIM_MISMATCH', `regions: D = ${reg.dims[2]}, words have D = ${d}`);
    const c = inputs.candidates;
    if (!isRecord(c)) throw new VlkError('ERR_VLK_TYPE', `candidates: expected { offsets, rows }, got ${describe(c)}`);
    const offsets = readInts(c.offsets, 'candidates.offsets', q + 1);
    const rows = readInts(c.rows, 'candidates.rows');
    if (offsets[0] !== 0 || offsets[q] !== rows.length) {
      throw new VlkError('ERR_VLK_SHAPE', `candidates.offsets: must start at 0 and end at rows.length (${rows.length}), got ${offsets[0]} .. ${offsets[q]}`);
    }
    Object.assign(spec, { items: reg.dims[0], r: reg.dims[1], regions: reg.data, offsets, rows });
  } else {
    const reg = readTensor(inputs.regions, 'regions', 4, 'Q, C, R, D (or a bank N x R x D with candidates)');
    if (reg.dims[0] !== q) throw new VlkError('ERR_VLK_SHAPE', `regions: dims[0] = ${reg.dims[0]}, words have Q = ${q}`);
    if (reg.dims[3] !== d) throw new VlkError('ERR_VLK_DIM_MISMATCH', `regions: D = ${reg.dims[3]}, words have D = ${d}`);
    Object.assign(spec, { items: q * reg.dims[1], r: reg.dims[2], regions: reg.data, candidates: reg.dims[1] });
  }
  const mode = o.mode ?? 't2i-lse';
  if (mode !== 't2i-lse' && mode !== 't2i-mean' && mode !== 'mean-max') {
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.mode: expected 't2i-lse', 't2i-mean' or 'mean-max', got ${describe(mode)}`);
  }
  spec.mode = mode;
  const pos = (x: number) => x > 0;
  spec.lambda1 = readNum(o.lambda1, 'options.lambda1', 9, pos, 'a finite number > 0');
  spec.lambda2 = readNum(o.lambda2, 'options.lambda2', 6, pos, 'a finite number > 0');
  spec.k = readInt(o.k, 'options.k', 0, 0, 'ERR_VLK_INVALID_K');
  const signal = common(spec, o, async);
  return { spec, signal };
}

/**
 * SCAN-style local scores of candidate (query words, region set) pairs, batched and threaded:
 * `A = LeakyReLU_0.1(words . regions^T)`, L2-normalised over words; 't2i-lse':
 * `alpha = softmax_regions(lambda1 A)`, `r_w = cos(word_w, sum alpha v)`,
 * `score = log(sum_w exp(lambda2 r_w)) / lambda2`; 'mean-max': `mean_w max_r A`. With `k`, also the
 * best k candidates per query.
 * @throws VlkError ERR_VLK_TYPE / ERR_VLK_SHAPE / ERR_VLK_DIM_MISMATCH (naming the input),
 * ERR_VLK_INVALID_ARG (mode, lambdas, a candidate row outside the bank, a word length),
 * ERR_VLK_INVALID_K, ERR_VLK_NON_FINITE, ERR_VLK_EMPTY; AbortError.
 */
export async function scanSimilarity(inputs: ScanSimilarityInputs, options: ScanSimilarityOptions = {}): Promise<ScanSimilarityResult> {
  const p = atApi(() => prepScan(inputs, options, true), scanSimilarity);
  const r = await callAsync('scanSimilarity', p.spec, p.signal, scanSimilarity);
  return { ...(r as object), k: p.spec.k as number } as ScanSimilarityResult;
}

/** {@link scanSimilarity} on the calling thread. */
export function scanSimilaritySync(inputs: ScanSimilarityInputs, options: ScanSimilarityOptions = {}): ScanSimilarityResult {
  const p = atApi(() => prepScan(inputs, options, false), scanSimilaritySync);
  const r = callSync('scanSimilarity', p.spec, scanSimilaritySync);
  return { ...(r as object), k: p.spec.k as number } as ScanSimilarityResult;
}
