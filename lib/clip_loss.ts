// Symmetric CLIP InfoNCE with a learnable temperature, seed 003's training objective (lib),
// forward and backward natively: gradients for both embedding sets (through the normalisation)
// and for the logit scale. Formula and conventions: native/core/losses/clip_loss.hpp.
import { atApi, fromNative, VlkError } from './errors';
import { describe, isRecord, readMatrix, readThreads, shapeMatrix } from './args';
import { readSignal, runCancellable } from './cancel';
import { binding } from './loader';
import type { MatrixInput } from './types';

/** Options of {@link clipLoss}. */
export interface ClipLossOptions {
  /** t, the learnable log of the logit multiplier: logits = min(exp(t), maxScale) cos(I, T). Required (CLIP initialises it to ln(1 / 0.07)). */
  logitScale: number;
  /** The clip on exp(t); default 100 (CLIP). */
  maxScale?: number;
  /** In [0, 1); default 0 (PyTorch CrossEntropyLoss's label_smoothing convention). */
  labelSmoothing?: number;
  /** L2-normalise the rows first (x / max(||x||, 1e-12), F.normalize's convention); default true. */
  normalize?: boolean;
  /** D, when images / texts are plain Float32Arrays. */
  dim?: number;
  /** Compute dImages and dTexts (default true); dLogitScale is always returned. */
  grads?: boolean;
  threads?: number;
  /** Cancels {@link clipLoss} (not the Sync form). */
  signal?: AbortSignal;
}

/** The result of {@link clipLoss}. */
export interface ClipLossResult {
  /** 1/2 [CE(S, diag) + CE(S^T, diag)], each averaged over the B rows. */
  loss: number;
  /** The multiplier applied: min(exp(logitScale), maxScale). */
  scale: number;
  /** exp(logitScale) > maxScale: the clip is active and dLogitScale is 0. */
  clipped: boolean;
  /** dL/dlogitScale = exp(t) dL/dscale, or 0 while clipped (the clamp passes no gradient). */
  dLogitScale: number;
  /** dL/dimages, B x D (absent with grads: false). */
  dImages?: Float32Array;
  /** dL/dtexts, B x D (absent with grads: false). */
  dTexts?: Float32Array;
}

interface Prepared {
  spec: Record<string, unknown>;
  signal?: AbortSignal;
}

function prepare(images: unknown, texts: unknown, options: unknown, async: boolean): Prepared {
  if (!isRecord(options)) throw new VlkError('ERR_VLK_TYPE', `options: expected an object, got ${describe(options)}`);
  const dim = options.dim;
  if (dim !== undefined && (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim < 0)) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.dim: ${describe(dim)} is not a non-negative integer`);
  }
  const im = shapeMatrix(readMatrix(images, 'images'), 'images', dim);
  const tx = shapeMatrix(readMatrix(texts, 'texts'), 'texts', im.cols);
  if (tx.rows !== im.rows) throw new VlkError('ERR_VLK_SHAPE', `texts: ${tx.rows} rows, images have ${im.rows} (pairs i <-> i)`);
  if (im.rows === 0) throw new VlkError('ERR_VLK_EMPTY', 'images: no rows');
  const t = options.logitScale;
  if (typeof t !== 'number' || !Number.isFinite(t)) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.logitScale: ${describe(t)} is not a finite number (t, scale = exp(t))`);
  }
  const maxScale = options.maxScale === undefined ? 100 : options.maxScale;
  if (typeof maxScale !== 'number' || !Number.isFinite(maxScale) || !(maxScale > 0)) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.maxScale: ${describe(maxScale)} is not a finite number > 0`);
  }
  const eps = options.labelSmoothing === undefined ? 0 : options.labelSmoothing;
  if (typeof eps !== 'number' || !(eps >= 0 && eps < 1)) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.labelSmoothing: ${describe(eps)} is not in [0, 1)`);
  }
  for (const name of ['normalize', 'grads'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'boolean') {
      throw new VlkError('ERR_VLK_INVALID_ARG', `options.${name}: expected a boolean, got ${describe(options[name])}`);
    }
  }
  const spec: Record<string, unknown> = {
    b: im.rows,
    d: im.cols,
    images: im.data.subarray(0, im.rows * im.cols),
    texts: tx.data.subarray(0, tx.rows * tx.cols),
    logitScale: t,
    maxScale,
    labelSmoothing: eps,
    normalize: options.normalize ?? true,
    grads: options.grads ?? true,
  };
  const threads = readThreads(options.threads);
  if (threads !== undefined) spec.threads = threads;
  return { spec, signal: async ? readSignal(options.signal, 'options.signal') : undefined };
}

/**
 * CLIP's symmetric InfoNCE (seed 003) over B matched image / text rows, off the event loop:
 * `S = min(exp(t), maxScale) norm(I) norm(T)^T` (B x B), `L = 1/2 [CE(S, diag) + CE(S^T, diag)]`,
 * with gradients for images, texts (through the normalisation) and t. S and the gradient
 * products run on the fp32 GEMM; the cross-entropies in float64. Results do not depend on threads.
 *
 * @example
 * ```ts
 * const r = await clipLoss(imageEmb, textEmb, { logitScale: Math.log(1 / 0.07), dim: 512 });
 * logitScale -= lr * r.dLogitScale;
 * ```
 * @throws VlkError ERR_VLK_TYPE / ERR_VLK_SHAPE / ERR_VLK_DIM_MISMATCH / ERR_VLK_EMPTY (naming the
 * input), ERR_VLK_NON_FINITE (input, row, column), ERR_VLK_INVALID_ARG (logitScale, maxScale,
 * labelSmoothing), ERR_VLK_OUT_OF_MEMORY (the B x B scratch); AbortError.
 */
export async function clipLoss(images: MatrixInput, texts: MatrixInput, options: ClipLossOptions): Promise<ClipLossResult> {
  const p = atApi(() => prepare(images, texts, options, true), clipLoss);
  return (await runCancellable(p.signal, clipLoss, (token) => binding.clipLossAsync(p.spec, token))) as ClipLossResult;
}

/** {@link clipLoss} on the calling thread. */
export function clipLossSync(images: MatrixInput, texts: MatrixInput, options: ClipLossOptions): ClipLossResult {
  const p = atApi(() => prepare(images, texts, options, false), clipLossSync);
  try {
    return binding.clipLossSync(p.spec) as ClipLossResult;
  } catch (err) {
    throw fromNative(err, clipLossSync);
  }
}
