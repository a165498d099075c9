// Pairwise preference loss of seed 000 (lib): the DPO-style objective with a frozen reference's
// scores and label smoothing, forward and backward natively, over four per-pair vectors or over
// (query, winner, loser) pairs into Q x N score matrices. Formula and numerics:
// native/core/losses/preference_loss.hpp. Shapes and options are checked here and again natively.
import { types } from 'node:util';
import { atApi, fromNative, VlkError } from './errors';
import { describe, isRecord, readMatrix, readThreads, shapeMatrix } from './args';
import { readSignal, runCancellable } from './cancel';
import { binding } from './loader';
import type { MatrixInput } from './types';

/** Per-pair form: entry i of each vector belongs to pair i (P pairs). */
export interface PreferencePairInputs {
  /** s_theta(q, x_w): the policy's score of each pair's preferred item. */
  policyChosen: Float32Array;
  /** s_theta(q, x_l): the policy's score of each pair's other item. */
  policyRejected: Float32Array;
  /** s_ref(q, x_w): the frozen reference's score of the preferred item. */
  referenceChosen: Float32Array;
  /** s_ref(q, x_l). */
  referenceRejected: Float32Array;
}

/** Score-matrix form: pairs index into Q x N policy and reference scores. */
export interface PreferenceScoreInputs {
  /** The policy's scores, Q x N (a plain Float32Array needs options.dim = N). */
  scores: MatrixInput;
  /** The frozen reference's scores, Q x N. */
  referenceScores: MatrixInput;
  /**
   * P x 3 row-major (query, winner, loser): winner preferred over loser for that query (the grid
   * order of seed 000 yields them). An item may appear in many pairs; its gradients add up.
   */
  pairs: Int32Array | ArrayLike<number>;
}

/** Options of {@link preferenceLoss}. */
export interface PreferenceLossOptions {
  /** beta' = beta / tau of papers.md 000 (beta 0.1 at tau 0.01); finite > 0, default 10. */
  beta?: number;
  /** eps of the conservative-DPO form, in [0, 1); default 0.1. */
  labelSmoothing?: number;
  /** 'mean' (default) or 'sum' over the pairs; the gradients follow. */
  reduction?: 'mean' | 'sum';
  /** N, when scores / referenceScores are plain Float32Arrays. */
  dim?: number;
  threads?: number;
  /** Cancels {@link preferenceLoss} (not the Sync form). */
  signal?: AbortSignal;
}

/** The result of the per-pair form. */
export interface PreferencePairResult {
  loss: number;
  /** Pairs with h > 0: the policy's margin over the reference already favours the winner. */
  preferred: number;
  /** dL/dpolicyChosen (P). The reference is frozen: it has no gradient. */
  dPolicyChosen: Float32Array;
  /** dL/dpolicyRejected (P) = -dL/dpolicyChosen. */
  dPolicyRejected: Float32Array;
}

/** The result of the score-matrix form. */
export interface PreferenceScoreResult {
  loss: number;
  /** Pairs with h > 0. */
  preferred: number;
  /** dL/dscores, Q x N row-major: each pair adds dL/dh at its winner and -dL/dh at its loser. */
  dScores: Float32Array;
}

interface Prepared {
  spec: Record<string, unknown>;
  signal?: AbortSignal;
}

function readVector(value: unknown, name: string): Float32Array {
  if (!types.isFloat32Array(value)) throw new VlkError('ERR_VLK_TYPE', `${name}: expected a Float32Array, got ${describe(value)}`);
  return value;
}

function readPairs(value: unknown): Int32Array {
  let out: Int32Array;
  if (types.isInt32Array(value)) {
    out = value;
  } else if (Array.isArray(value)) {
    out = new Int32Array(value.length);
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0x7fffffff) {
        throw new VlkError('ERR_VLK_INVALID_ARG', `pairs[${Math.floor(i / 3)}]: ${describe(v)} is not an index >= 0`);
      }
      out[i] = v;
    }
  } else {
    throw new VlkError('ERR_VLK_TYPE', `pairs: expected an Int32Array or an array of (query, winner, loser) triples, got ${describe(value)}`);
  }
  if (out.length % 3 !== 0) throw new VlkError('ERR_VLK_SHAPE', `pairs: length ${out.length} is not a multiple of 3 (query, winner, loser)`);
  return out;
}

function prepare(inputs: unknown, options: unknown, async: boolean): Prepared {
  if (!isRecord(inputs)) throw new VlkError('ERR_VLK_TYPE', `inputs: expected an object, got ${describe(inputs)}`);
  if (!isRecord(options)) throw new VlkError('ERR_VLK_TYPE', `options: expected an object, got ${describe(options)}`);
  const beta = options.beta === undefined ? 10 : options.beta;
  if (typeof beta !== 'number' || !Number.isFinite(beta) || !(beta > 0)) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.beta: ${describe(beta)} is not a finite number > 0`);
  }
  const eps = options.labelSmoothing === undefined ? 0.1 : options.labelSmoothing;
  if (typeof eps !== 'number' || !(eps >= 0 && eps < 1)) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.labelSmoothing: ${describe(eps)} is not in [0, 1)`);
  }
  const reduction = options.reduction === undefined ? 'mean' : options.reduction;
  if (reduction !== 'mean' && reduction !== 'sum') {
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.reduction: expected 'mean' or 'sum', got ${describe(reduction)}`);
  }
  const spec: Record<string, unknown> = { beta, labelSmoothing: eps, sum: reduction === 'sum' };
  const hasScores = inputs.scores !== undefined;
  const hasPairs = inputs.policyChosen !== undefined;
  if (hasScores === hasPairs) {
    throw new VlkError(
      'ERR_VLK_INVALID_ARG',
      'inputs: give either { policyChosen, policyRejected, referenceChosen, referenceRejected } or { scores, referenceScores, pairs }',
    );
  }
  if (hasPairs) {
    const names = ['policyChosen', 'policyRejected', 'referenceChosen', 'referenceRejected'] as const;
    const v = names.map((n) => readVector(inputs[n], n));
    for (let i = 1; i < 4; i++) {
      if (v[i].length !== v[0].length) {
        throw new VlkError('ERR_VLK_SHAPE', `${names[i]}: length ${v[i].length}, policyChosen has ${v[0].length}`);
      }
    }
    if (v[0].length === 0) throw new VlkError('ERR_VLK_EMPTY', 'policyChosen: no pairs');
    Object.assign(spec, { p: v[0].length, policyChosen: v[0], policyRejected: v[1], referenceChosen: v[2], referenceRejected: v[3] });
  } else {
    const dim = options.dim;
    if (dim !== undefined && (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim < 0)) {
      throw new VlkError('ERR_VLK_INVALID_ARG', `options.dim: ${describe(dim)} is not a non-negative integer`);
    }
    const s = shapeMatrix(readMatrix(inputs.scores, 'scores'), 'scores', dim);
    const r = shapeMatrix(readMatrix(inputs.referenceScores, 'referenceScores'), 'referenceScores', s.cols);
    if (r.rows !== s.rows || r.cols !== s.cols) {
      throw new VlkError('ERR_VLK_SHAPE', `referenceScores: ${r.rows} x ${r.cols}, scores are ${s.rows} x ${s.cols}`);
    }
    if (s.rows === 0 || s.cols === 0) throw new VlkError('ERR_VLK_EMPTY', `scores: ${s.rows} x ${s.cols} is empty`);
    const pairs = readPairs(inputs.pairs);
    if (pairs.length === 0) throw new VlkError('ERR_VLK_EMPTY', 'pairs: no pairs');
    Object.assign(spec, {
      p: pairs.length / 3,
      q: s.rows,
      n: s.cols,
      scores: s.data.subarray(0, s.rows * s.cols),
      referenceScores: r.data.subarray(0, r.rows * r.cols),
      pairs,
    });
  }
  const threads = readThreads(options.threads);
  if (threads !== undefined) spec.threads = threads;
  return { spec, signal: async ? readSignal(options.signal, 'options.signal') : undefined };
}

/**
 * The pairwise preference loss of papers.md 000 (DPO-style, retrieval as a policy over items), off
 * the event loop. Per pair `h = (s_w - r_w) - (s_l - r_l)` (policy s, frozen reference r),
 * `L = -(1 - eps) log sigma(beta h) - eps log sigma(-beta h)`, averaged (or summed) over pairs, in
 * float64 with a stable log-sigmoid (no overflow for any |beta h|). Gradients for the policy's
 * scores: `dL/ds_w = dL/dh = beta [eps sigma(beta h) - (1 - eps) sigma(-beta h)]`, `dL/ds_l = -dL/dh`.
 *
 * @example
 * ```ts
 * // per-pair vectors
 * const { loss, dPolicyChosen, dPolicyRejected } = await preferenceLoss(
 *   { policyChosen, policyRejected, referenceChosen, referenceRejected }, { beta: 10, labelSmoothing: 0.1 });
 * // pairs into Q x N score matrices (the gradient scattered back)
 * const { dScores } = await preferenceLoss({ scores, referenceScores, pairs }, { dim: n });
 * ```
 * @throws VlkError ERR_VLK_TYPE (an input's type), ERR_VLK_SHAPE (lengths differ, pairs not P x 3),
 * ERR_VLK_EMPTY (no pairs), ERR_VLK_INVALID_ARG (beta <= 0, labelSmoothing outside [0, 1),
 * reduction, a pair id out of range, winner = loser), ERR_VLK_NON_FINITE (array and element); AbortError.
 */
export async function preferenceLoss(inputs: PreferencePairInputs, options?: PreferenceLossOptions): Promise<PreferencePairResult>;
export async function preferenceLoss(inputs: PreferenceScoreInputs, options?: PreferenceLossOptions): Promise<PreferenceScoreResult>;
export async function preferenceLoss(
  inputs: PreferencePairInputs | PreferenceScoreInputs,
  options: PreferenceLossOptions = {},
): Promise<PreferencePairResult | PreferenceScoreResult> {
  const p = atApi(() => prepare(inputs, options, true), preferenceLoss);
  const r = await runCancellable(p.signal, preferenceLoss, (token) => binding.preferenceLossAsync(p.spec, token));
  return r as PreferencePairResult | PreferenceScoreResult;
}

/** {@link preferenceLoss} on the calling thread. */
export function preferenceLossSync(inputs: PreferencePairInputs, options?: PreferenceLossOptions): PreferencePairResult;
export function preferenceLossSync(inputs: PreferenceScoreInputs, options?: PreferenceLossOptions): PreferenceScoreResult;
export function preferenceLossSync(
  inputs: PreferencePairInputs | PreferenceScoreInputs,
  options: PreferenceLossOptions = {},
): PreferencePairResult | PreferenceScoreResult {
  const p = atApi(() => prepare(inputs, options, false), preferenceLossSync);
  try {
    return binding.preferenceLossSync(p.spec) as PreferencePairResult | PreferenceScoreResult;
  } catch (err) {
    throw fromNative(err, preferenceLossSync);
  }
}
