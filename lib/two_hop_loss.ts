// PTHA's training objective on token features (lib), forward and backward in one native call:
// L = w_itc L_itc + w_rtc L_rtc + w_align L_align (seed 001; native/core/compose/two_hop_loss.hpp
// has the formulas). For teams that train their token encoder elsewhere (or step by step from
// Node) and want the loss and its gradients computed natively. Shapes are resolved here; lengths
// and values are checked by the binding and the core, with typed errors naming the input.
import { types } from 'node:util';
import { atApi, fromNative, VlkError } from './errors';
import { describe, isDetached, isRecord, readMatrix, readThreads, shapeMatrix } from './args';
import { readSignal, runCancellable } from './cancel';
import { binding } from './loader';
import type { MatrixInput } from './types';

/** A 3-D tensor-like, e.g. what onnxruntime-node / transformers.js return: `{ data, dims: [rows, tokens, dim] }`. */
export interface Tensor3D {
  data: Float32Array;
  dims: readonly [number, number, number] | number[];
}

/** The inputs of {@link twoHopLoss}. B = batch, D = joint embedding width, Dp = prototype width. */
export interface TwoHopLossInputs {
  /** f: B x D composed queries (hop 2's output, L2-normalised upstream as the paper does). */
  query: MatrixInput;
  /** Z: M x Kt x D target tokens (M >= B: row i is query i's target unless `targets` says otherwise; more rows are extra negatives). */
  targetTokens: Tensor3D;
  /** u: B x D text-only queries (the auxiliary L_rtc term); omit to drop it. */
  textQuery?: MatrixInput;
  /** P: B x K x Dp prototype tokens from (reference, modification): hop 1, receives the gradient. */
  prototype?: Tensor3D;
  /** P': B x K' x Dp prototype tokens from (target, reverse modification): stop-gradient. */
  reversePrototype?: Tensor3D;
  /** Query i's target row in targetTokens (default i). */
  targets?: Int32Array;
}

/** Options of {@link twoHopLoss}. */
export interface TwoHopLossOptions {
  /** tau, the softmax temperature (scores are divided by it); default 0.07 (the paper's initial value). */
  temperature?: number;
  /** Label smoothing of L_itc; default 0.1 (the paper's). */
  labelSmoothing?: number;
  /** Label smoothing of L_rtc; default 0 (the paper's). */
  textLabelSmoothing?: number;
  /** Term weights; default `{ itc: 1, rtc: 0.4, align: 0.4 }` (the paper's argparse defaults). */
  weights?: { itc?: number; rtc?: number; align?: number };
  /** Compute the gradients (default true); false returns the losses only. */
  grads?: boolean;
  /** Parallel width; default: the pool size. */
  threads?: number;
  /** Cancels {@link twoHopLoss} (not the Sync form). */
  signal?: AbortSignal;
}

/** The result of {@link twoHopLoss}: the weighted total, each term unweighted, and the gradients of the total. */
export interface TwoHopLossResult {
  loss: number;
  itc: number;
  /** 0 without a textQuery. */
  rtc: number;
  /** 0 without prototypes. */
  align: number;
  grads?: {
    /** dL/df, B x D. */
    query: Float32Array;
    /** dL/dZ, M x Kt x D (both contrastive terms; tokens no max chose get 0). */
    targetTokens: Float32Array;
    /** dL/du, B x D (with a textQuery). */
    textQuery?: Float32Array;
    /** dL/dP, B x K x Dp (with prototypes; none flows to reversePrototype). */
    prototype?: Float32Array;
    /** dL/dtau, for a learned temperature. */
    temperature: number;
  };
}

function read3(value: unknown, name: string): { data: Float32Array; dims: [number, number, number] } {
  if (!isRecord(value) || !types.isFloat32Array(value.data) || !Array.isArray(value.dims) || value.dims.length !== 3) {
    throw new VlkError('ERR_VLK_TYPE', `${name}: expected { data: Float32Array, dims: [rows, tokens, dim] }, got ${describe(value)}`);
  }
  const dims = value.dims.map((x, i) => {
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0) {
      throw new VlkError('ERR_VLK_SHAPE', `${name}.dims[${i}]: ${describe(x)} is not a size`);
    }
    return x;
  }) as [number, number, number];
  const n = dims[0] * dims[1] * dims[2];
  if (isDetached(value.data)) throw new VlkError('ERR_VLK_INVALID_ARG', `${name}.data: the Float32Array's buffer is detached`);
  if (value.data.length < n) {
    throw new VlkError('ERR_VLK_SHAPE', `${name}: data has ${value.data.length} elements, dims [${dims.join(', ')}] need ${n}`);
  }
  return { data: value.data.subarray(0, n), dims };
}

function read2(value: unknown, name: string, dim: number): { data: Float32Array; rows: number } {
  const m = shapeMatrix(readMatrix(value, name), name, dim);
  if (m.cols !== dim) {
    throw new VlkError('ERR_VLK_DIM_MISMATCH', `${name}: dim ${m.cols} differs from targetTokens' D = ${dim}`);
  }
  return { data: m.data.subarray(0, m.rows * m.cols), rows: m.rows };
}

function num(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `${name}: expected a finite number, got ${describe(value)}`);
  }
  return value;
}

interface Prepared {
  spec: Record<string, unknown>;
  tau: number;
  signal?: AbortSignal;
}

function prepare(inputs: unknown, options: unknown, async: boolean): Prepared {
  if (!isRecord(inputs)) {
    throw new VlkError('ERR_VLK_TYPE', `inputs: expected { query, targetTokens, ... }, got ${describe(inputs)}`);
  }
  if (!isRecord(options)) throw new VlkError('ERR_VLK_TYPE', `options: expected an object, got ${describe(options)}`);
  const z = read3(inputs.targetTokens, 'targetTokens');
  const [m, kt, d] = z.dims;
  const q = read2(inputs.query, 'query', d);
  const b = q.rows;
  const spec: Record<string, unknown> = { b, d, m, kt, query: q.data, targetTokens: z.data };
  if (inputs.textQuery !== undefined) {
    const u = read2(inputs.textQuery, 'textQuery', d);
    if (u.rows !== b) throw new VlkError('ERR_VLK_SHAPE', `textQuery: ${u.rows} rows, query has ${b}`);
    spec.textQuery = u.data;
  }
  if ((inputs.prototype === undefined) !== (inputs.reversePrototype === undefined)) {
    throw new VlkError('ERR_VLK_INVALID_ARG', 'prototype and reversePrototype: give both (hop 1) or neither');
  }
  if (inputs.prototype !== undefined) {
    const p = read3(inputs.prototype, 'prototype');
    const r = read3(inputs.reversePrototype, 'reversePrototype');
    if (p.dims[0] !== b) throw new VlkError('ERR_VLK_SHAPE', `prototype: dims[0] = ${p.dims[0]}, query has B = ${b} rows`);
    if (r.dims[0] !== b) throw new VlkError('ERR_VLK_SHAPE', `reversePrototype: dims[0] = ${r.dims[0]}, query has B = ${b} rows`);
    if (r.dims[2] !== p.dims[2]) {
      throw new VlkError('ERR_VLK_DIM_MISMATCH', `reversePrototype: dim ${r.dims[2]} differs from prototype's ${p.dims[2]}`);
    }
    Object.assign(spec, { prototype: p.data, reversePrototype: r.data, k: p.dims[1], kReverse: r.dims[1], dp: p.dims[2] });
  }
  if (inputs.targets !== undefined) {
    if (!types.isInt32Array(inputs.targets)) {
      throw new VlkError('ERR_VLK_TYPE', `targets: expected an Int32Array, got ${describe(inputs.targets)}`);
    }
    spec.targets = inputs.targets;
  } else if (m < b) {
    throw new VlkError('ERR_VLK_SHAPE', `targetTokens: ${m} rows for ${b} queries; give targets or at least B rows`);
  }
  const tau = num(options.temperature, 'options.temperature', 0.07);
  if (!(tau > 0)) throw new VlkError('ERR_VLK_INVALID_ARG', `options.temperature: ${tau} is not > 0`);
  const w = options.weights === undefined ? {} : options.weights;
  if (!isRecord(w)) throw new VlkError('ERR_VLK_TYPE', `options.weights: expected { itc, rtc, align }, got ${describe(w)}`);
  Object.assign(spec, {
    scale: 1 / tau,
    smoothingItc: num(options.labelSmoothing, 'options.labelSmoothing', 0.1),
    smoothingRtc: num(options.textLabelSmoothing, 'options.textLabelSmoothing', 0),
    wItc: num(w.itc, 'options.weights.itc', 1),
    wRtc: num(w.rtc, 'options.weights.rtc', 0.4),
    wAlign: num(w.align, 'options.weights.align', 0.4),
    grads: options.grads === undefined ? true : options.grads,
  });
  const threads = readThreads(options.threads);
  if (threads !== undefined) spec.threads = threads;
  return { spec, tau, signal: async ? readSignal(options.signal, 'options.signal') : undefined };
}

interface NativeLoss {
  loss: number;
  itc: number;
  rtc: number;
  align: number;
  dscale: number;
  dprototype?: Float32Array;
  dquery?: Float32Array;
  dtextQuery?: Float32Array;
  dtargetTokens?: Float32Array;
}

function finish(r: NativeLoss, tau: number): TwoHopLossResult {
  const out: TwoHopLossResult = { loss: r.loss, itc: r.itc, rtc: r.rtc, align: r.align };
  if (r.dquery !== undefined && r.dtargetTokens !== undefined) {
    out.grads = { query: r.dquery, targetTokens: r.dtargetTokens, temperature: -r.dscale / (tau * tau) };
    if (r.dtextQuery !== undefined) out.grads.textQuery = r.dtextQuery;
    if (r.dprototype !== undefined) out.grads.prototype = r.dprototype;
  }
  return out;
}

/**
 * PTHA's loss on token features and its gradients (seed 001), off the event loop:
 * hop 1 `L_align = MSE(mean_k P, sg(mean_k P'))`; hop 2 `S[i, j] = max_t f_i . Z[j, t]`,
 * `L_itc = CE_ls(S / tau, targets)`; text-only `L_rtc = CE(max_t u_i . Z[j, t] / tau, targets)`;
 * `L = w_itc L_itc + w_rtc L_rtc + w_align L_align`. The max keeps its argmax, so the backward
 * sends each score's gradient through the chosen token only (first token on exact ties).
 *
 * @example
 * ```ts
 * const { loss, grads } = await twoHopLoss(
 *   { query: { data: f, dims: [128, 256] }, textQuery: { data: u, dims: [128, 256] },
 *     targetTokens: { data: z, dims: [128, 32, 256] },
 *     prototype: { data: p, dims: [128, 32, 768] }, reversePrototype: { data: p2, dims: [128, 32, 768] } },
 *   { temperature: tau });
 * ```
 * @throws VlkError ERR_VLK_TYPE / ERR_VLK_SHAPE / ERR_VLK_DIM_MISMATCH (naming the input and its
 * dims), ERR_VLK_NON_FINITE (naming the input, row and element), ERR_VLK_INVALID_ARG (temperature,
 * smoothing outside [0, 1), a negative weight, a target out of range); AbortError.
 */
export async function twoHopLoss(inputs: TwoHopLossInputs, options: TwoHopLossOptions = {}): Promise<TwoHopLossResult> {
  const p = atApi(() => prepare(inputs, options, true), twoHopLoss);
  const r = await runCancellable(p.signal, twoHopLoss, (token) => binding.twoHopLossAsync(p.spec, token));
  return finish(r as NativeLoss, p.tau);
}

/** {@link twoHopLoss} on the calling thread. */
export function twoHopLossSync(inputs: TwoHopLossInputs, options: TwoHopLossOptions = {}): TwoHopLossResult {
  const p = atApi(() => prepare(inputs, options, false), twoHopLossSync);
  try {
    return finish(binding.twoHopLossSync(p.spec) as NativeLoss, p.tau);
  } catch (err) {
    throw fromNative(err, twoHopLossSync);
  }
}
