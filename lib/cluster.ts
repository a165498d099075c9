// Clustering prototypes (lib, seed 004 AAHR): Sinkhorn-Knopp codes and the SwAV swapped-prediction
// loss for learnable prototypes, and k-means (k-means++ seeding, Lloyd iterations on the exact
// search kernel) as a general tool. Formulas and every choice: native/core/cluster/*.hpp. Shapes
// are resolved here; lengths and values are checked again by the binding and the core, with typed
// errors naming the input.
import { atApi, fromNative, VlkError } from './errors';
import { describe, isRecord, readMatrix, readThreads, shapeMatrix } from './args';
import { readSignal, runCancellable } from './cancel';
import { binding } from './loader';
import type { MatrixInput } from './types';

// ---------------------------------------------------------------------------------------------
// Shared argument helpers.

function options0(options: unknown): Record<string, unknown> {
  if (options === undefined) return {};
  if (!isRecord(options)) throw new VlkError('ERR_VLK_TYPE', `options: expected an object, got ${describe(options)}`);
  return options;
}

function num(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `${name}: expected a finite number, got ${describe(value)}`);
  }
  return value;
}

function int(value: unknown, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `${name}: ${describe(value)} is not an integer in ${min}..${max}`);
  }
  return value;
}

function dimOption(o: Record<string, unknown>): number | undefined {
  if (o.dim === undefined) return undefined;
  if (typeof o.dim !== 'number' || !Number.isSafeInteger(o.dim) || o.dim < 0) {
    throw new VlkError('ERR_VLK_SHAPE', `options.dim: ${describe(o.dim)} is not a non-negative integer`);
  }
  return o.dim;
}

// A B x P score or code matrix, row-major and contiguous.
// `p`: the P of the first input (later inputs must match it; a plain array is split by it).
function readScores(
  value: unknown,
  name: string,
  dim: number | undefined,
  p?: { name: string; cols: number },
): { data: Float32Array; rows: number; cols: number } {
  const arg = readMatrix(value, name);
  const m = shapeMatrix(arg, name, 'view' in arg ? dim : (dim ?? p?.cols));
  if (p !== undefined && m.cols !== p.cols) {
    throw new VlkError('ERR_VLK_DIM_MISMATCH', `${name}: P = ${m.cols} differs from ${p.name}'s P = ${p.cols}`);
  }
  if (m.rows === 0 || m.cols === 0) {
    throw new VlkError('ERR_VLK_EMPTY', `${name}: ${m.rows} x ${m.cols} (B and P must be >= 1)`);
  }
  return { data: m.data.subarray(0, m.rows * m.cols), rows: m.rows, cols: m.cols };
}

// ---------------------------------------------------------------------------------------------
// sinkhorn

/** Options of {@link sinkhorn}. */
export interface SinkhornOptions {
  /** eps, the entropic regularisation: Q = exp(O / eps); default 0.1 (SwAV / AAHR). */
  epsilon?: number;
  /** Row/column normalisation rounds, an integer in 1..1e6; default 3 (SwAV / AAHR). */
  iterations?: number;
  /** P, when `scores` is a plain Float32Array. */
  dim?: number;
  /** Parallel width; default: the pool size. The result is identical for any value. */
  threads?: number;
  /** Cancels {@link sinkhorn} (not the Sync form). */
  signal?: AbortSignal;
}

function prepareSinkhorn(scores: unknown, options: unknown, async: boolean) {
  const o = options0(options);
  const s = readScores(scores, 'scores', dimOption(o));
  const epsilon = num(o.epsilon, 'options.epsilon', 0.1);
  if (!(epsilon > 0)) throw new VlkError('ERR_VLK_INVALID_ARG', `options.epsilon: ${epsilon} is not > 0`);
  const iterations = int(o.iterations, 'options.iterations', 3, 1, 1_000_000);
  const spec: Record<string, unknown> = { b: s.rows, p: s.cols, scores: s.data, epsilon, iterations };
  const threads = readThreads(o.threads);
  if (threads !== undefined) spec.threads = threads;
  return { spec, signal: async ? readSignal(o.signal, 'options.signal') : undefined };
}

/**
 * Sinkhorn-Knopp codes of SwAV (seed 004, AAHR's prototype codes), off the event loop:
 * `Q = exp((O - max O) / eps)^T` (P x B), divided by its total, then `iterations` times
 * {each prototype row / its sum / P; each sample column / its sum / B}, finally x B, returned
 * transposed: codes[b * P + p], each sample's P codes summing to 1. Computed in float64 from the
 * fp32 scores (the global max subtracted before exp), rounded once; no gradient (codes are targets).
 *
 * @param scores - O, B x P prototype scores (`v . C^T`): a `{ data, rows, cols }` / `{ data, dims }`
 *   view, or a Float32Array with `options.dim = P`.
 * @returns B x P codes, row-major.
 * @example
 * ```ts
 * const qv = await sinkhorn({ data: ov, rows: 128, cols: 384 });          // eps 0.1, 3 iterations
 * ```
 * @throws VlkError ERR_VLK_TYPE / ERR_VLK_SHAPE / ERR_VLK_DIM_MISMATCH / ERR_VLK_EMPTY (scores),
 * ERR_VLK_INVALID_ARG (epsilon, iterations), ERR_VLK_NON_FINITE (a score, naming row and column;
 * or a sample whose exponentials all underflow); AbortError.
 */
export async function sinkhorn(scores: MatrixInput, options: SinkhornOptions = {}): Promise<Float32Array> {
  const p = atApi(() => prepareSinkhorn(scores, options, true), sinkhorn);
  return runCancellable(p.signal, sinkhorn, (token) => binding.sinkhornAsync(p.spec, token));
}

/** {@link sinkhorn} on the calling thread. */
export function sinkhornSync(scores: MatrixInput, options: Omit<SinkhornOptions, 'signal'> = {}): Float32Array {
  const p = atApi(() => prepareSinkhorn(scores, options, false), sinkhornSync);
  try {
    return binding.sinkhornSync(p.spec);
  } catch (err) {
    throw fromNative(err, sinkhornSync);
  }
}

// ---------------------------------------------------------------------------------------------
// swavLoss

/** Options of {@link swavLoss}. */
export interface SwavLossOptions {
  /** tau, the softmax temperature (scores are divided by it); default 0.1 (AAHR). */
  temperature?: number;
  /** Compute the gradients (default true); false returns the losses only. */
  grads?: boolean;
  /** P, when the inputs are plain Float32Arrays. */
  dim?: number;
  /** Parallel width; default: the pool size. The result is identical for any value. */
  threads?: number;
  /** Cancels {@link swavLoss} (not the Sync form). */
  signal?: AbortSignal;
}

/** The result of {@link swavLoss}. */
export interface SwavLossResult {
  /** lossV + lossT. */
  loss: number;
  /** -mean_b sum_p Qt[b,p] log softmax(Ov[b] / tau)_p (image scores predict the text codes). */
  lossV: number;
  /** -mean_b sum_p Qv[b,p] log softmax(Ot[b] / tau)_p. */
  lossT: number;
  grads?: {
    /** dL/dOv, B x P. */
    scoresV: Float32Array;
    /** dL/dOt, B x P. */
    scoresT: Float32Array;
    /** dL/dtau. */
    temperature: number;
  };
}

function prepareSwav(sv: unknown, st: unknown, qv: unknown, qt: unknown, options: unknown, async: boolean) {
  const o = options0(options);
  const dim = dimOption(o);
  const a = readScores(sv, 'scoresV', dim);
  const rest = [
    [st, 'scoresT'],
    [qv, 'codesV'],
    [qt, 'codesT'],
  ] as const;
  const spec: Record<string, unknown> = { b: a.rows, p: a.cols, scoresV: a.data };
  for (const [value, name] of rest) {
    const m = readScores(value, name, dim, { name: 'scoresV', cols: a.cols });
    if (m.rows !== a.rows) throw new VlkError('ERR_VLK_SHAPE', `${name}: ${m.rows} rows, scoresV has B = ${a.rows}`);
    spec[name] = m.data;
  }
  const temperature = num(o.temperature, 'options.temperature', 0.1);
  if (!(temperature > 0)) throw new VlkError('ERR_VLK_INVALID_ARG', `options.temperature: ${temperature} is not > 0`);
  const grads = o.grads ?? true;
  if (typeof grads !== 'boolean') throw new VlkError('ERR_VLK_INVALID_ARG', `options.grads: expected a boolean, got ${describe(grads)}`);
  Object.assign(spec, { temperature, grads });
  const threads = readThreads(o.threads);
  if (threads !== undefined) spec.threads = threads;
  return { spec, signal: async ? readSignal(o.signal, 'options.signal') : undefined };
}

interface NativeSwav {
  loss: number;
  lossV: number;
  lossT: number;
  dtemperature: number;
  dscoresV?: Float32Array;
  dscoresT?: Float32Array;
}

function finishSwav(r: NativeSwav): SwavLossResult {
  const out: SwavLossResult = { loss: r.loss, lossV: r.lossV, lossT: r.lossT };
  if (r.dscoresV !== undefined && r.dscoresT !== undefined) {
    out.grads = { scoresV: r.dscoresV, scoresT: r.dscoresT, temperature: r.dtemperature };
  }
  return out;
}

/**
 * SwAV's swapped-prediction loss on prototype scores (seed 004, AAHR's L_swav before its 0.2
 * weight), forward and backward, off the event loop:
 * `L = -mean_b sum_p Qt[b,p] log softmax(Ov[b]/tau)_p - mean_b sum_p Qv[b,p] log softmax(Ot[b]/tau)_p`.
 * Codes are constants (no gradient); `dOv[b,p] = (sum(Qt[b]) softmax(Ov[b]/tau)_p - Qt[b,p]) / (B tau)`.
 * Float64 inside.
 *
 * @param scoresV - Ov = v_img . C^T, B x P.
 * @param scoresT - Ot = v_txt . C^T, B x P.
 * @param codesV - Qv = sinkhorn(Ov), B x P.
 * @param codesT - Qt = sinkhorn(Ot), B x P.
 * @example
 * ```ts
 * const [qv, qt] = [sinkhornSync(ov), sinkhornSync(ot)];
 * const { loss, grads } = await swavLoss(ov, ot, qv, qt, { dim: 384 });
 * ```
 * @throws VlkError ERR_VLK_TYPE / ERR_VLK_SHAPE / ERR_VLK_DIM_MISMATCH / ERR_VLK_EMPTY (naming the
 * input), ERR_VLK_INVALID_ARG (temperature), ERR_VLK_NON_FINITE (naming input, row and column);
 * AbortError.
 */
export async function swavLoss(
  scoresV: MatrixInput,
  scoresT: MatrixInput,
  codesV: MatrixInput,
  codesT: MatrixInput,
  options: SwavLossOptions = {},
): Promise<SwavLossResult> {
  const p = atApi(() => prepareSwav(scoresV, scoresT, codesV, codesT, options, true), swavLoss);
  const r = await runCancellable(p.signal, swavLoss, (token) => binding.swavLossAsync(p.spec, token));
  return finishSwav(r as NativeSwav);
}

/** {@link swavLoss} on the calling thread. */
export function swavLossSync(
  scoresV: MatrixInput,
  scoresT: MatrixInput,
  codesV: MatrixInput,
  codesT: MatrixInput,
  options: Omit<SwavLossOptions, 'signal'> = {},
): SwavLossResult {
  const p = atApi(() => prepareSwav(scoresV, scoresT, codesV, codesT, options, false), swavLossSync);
  try {
    return finishSwav(binding.swavLossSync(p.spec) as NativeSwav);
  } catch (err) {
    throw fromNative(err, swavLossSync);
  }
}

// ---------------------------------------------------------------------------------------------
// kmeans

/** One entry of {@link KmeansOptions.onProgress}. */
export interface KmeansProgress {
  /** 1-based iteration just finished. */
  iteration: number;
  /** The objective after it. */
  inertia: number;
}

/** Options of {@link kmeans}. */
export interface KmeansOptions {
  /** 'l2' (squared Euclidean, default) or 'cosine' (spherical k-means: rows and centroids unit length). */
  metric?: 'l2' | 'cosine';
  /** Most Lloyd iterations, an integer in 0..1e6; default 25. 0 returns the seeds. */
  iterations?: number;
  /** Seed of the k-means++ draws, an integer in 0..2^53-1; default 0. */
  seed?: number;
  /** Stop when an iteration lowers the inertia by <= tolerance x the previous inertia; default 0 (run until no assignment changes). */
  tolerance?: number;
  /** 'kmeans++' (default), or k x D starting centroids. */
  init?: 'kmeans++' | MatrixInput;
  /** D, when `data` is a plain Float32Array. */
  dim?: number;
  /** Parallel width; default: the pool size. The result is identical for any value. */
  threads?: number;
  /** Called on this thread once per iteration, in order (polled while the job runs; not in the Sync form). */
  onProgress?: (progress: KmeansProgress) => void;
  /** Cancels {@link kmeans} (not the Sync form). */
  signal?: AbortSignal;
}

/** The result of {@link kmeans}. */
export interface KmeansResult {
  /** k x D, row-major: the (normalised, for cosine) means of the returned clusters. */
  centroids: Float32Array;
  /** n cluster indices in 0..k-1; every cluster is non-empty. */
  assignments: Int32Array;
  /** The objective of (centroids, assignments): sum ||x - c||^2, or sum (1 - cos) for cosine. */
  inertia: number;
  /** Iterations run (history entries). */
  iterations: number;
  /** True when it stopped because no assignment changed. */
  converged: boolean;
  /** The inertia after each iteration, non-increasing. */
  inertiaHistory: Float64Array;
  /** D. */
  dim: number;
}

interface PreparedKmeans {
  spec: Record<string, unknown>;
  onProgress?: (progress: KmeansProgress) => void;
  signal?: AbortSignal;
  dim: number;
}

function prepareKmeans(data: unknown, k: unknown, options: unknown, async: boolean): PreparedKmeans {
  const o = options0(options);
  const x = shapeMatrix(readMatrix(data, 'data'), 'data', dimOption(o));
  if (x.rows === 0 || x.cols === 0) {
    throw new VlkError('ERR_VLK_EMPTY', `data: ${x.rows} x ${x.cols} (k-means needs >= 1 row of dim >= 1)`);
  }
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 1 || k > x.rows) {
    throw new VlkError('ERR_VLK_INVALID_K', `k: ${describe(k)} is not an integer in 1..${x.rows} (the number of rows)`);
  }
  const metric = o.metric ?? 'l2';
  if (metric !== 'l2' && metric !== 'cosine') {
    const got = typeof metric === 'string' ? `'${metric}'` : describe(metric);
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.metric: expected 'l2' or 'cosine', got ${got}`);
  }
  const iterations = int(o.iterations, 'options.iterations', 25, 0, 1_000_000);
  const seed = int(o.seed, 'options.seed', 0, 0);
  const tolerance = num(o.tolerance, 'options.tolerance', 0);
  if (tolerance < 0) throw new VlkError('ERR_VLK_INVALID_ARG', `options.tolerance: ${tolerance} is not >= 0`);
  const spec: Record<string, unknown> = {
    n: x.rows,
    d: x.cols,
    data: x.data.subarray(0, x.rows * x.cols),
    k,
    metric,
    iterations,
    seed,
    tolerance,
  };
  if (o.init !== undefined && o.init !== 'kmeans++') {
    if (typeof o.init === 'string') {
      throw new VlkError('ERR_VLK_INVALID_ARG', `options.init: expected 'kmeans++' or a k x D matrix, got '${o.init}'`);
    }
    const c = shapeMatrix(readMatrix(o.init, 'options.init'), 'options.init', x.cols);
    if (c.cols !== x.cols) {
      throw new VlkError('ERR_VLK_DIM_MISMATCH', `options.init: dim ${c.cols} differs from data's ${x.cols}`);
    }
    if (c.rows !== k) throw new VlkError('ERR_VLK_SHAPE', `options.init: ${c.rows} rows, expected k = ${k}`);
    spec.init = c.data.subarray(0, c.rows * c.cols);
  }
  const threads = readThreads(o.threads);
  if (threads !== undefined) spec.threads = threads;
  let onProgress: PreparedKmeans['onProgress'];
  if (async && o.onProgress !== undefined) {
    if (typeof o.onProgress !== 'function') {
      throw new VlkError('ERR_VLK_TYPE', `options.onProgress: expected a function, got ${describe(o.onProgress)}`);
    }
    onProgress = o.onProgress as PreparedKmeans['onProgress'];
  }
  return { spec, onProgress, signal: async ? readSignal(o.signal, 'options.signal') : undefined, dim: x.cols };
}

interface NativeKmeans {
  centroids: Float32Array;
  assignments: Int32Array;
  inertia: number;
  iterations: number;
  converged: boolean;
  inertiaHistory: Float64Array;
}

/**
 * k-means, off the event loop: k-means++ seeding (seeded, deterministic), then Lloyd iterations
 * whose assignment step is the library's exact search (k = 1; 'l2', or inner product on the
 * normalised rows for 'cosine', i.e. spherical k-means), deterministic empty-cluster repair (the
 * row farthest from its centroid, among clusters with >= 2 members, moves into the empty one), and
 * float64 means in a fixed order: the result is bit-identical for any `threads`. Stops when no
 * assignment changes, at `tolerance`, or after `iterations`. See native/core/cluster/kmeans.hpp.
 *
 * @param data - n x D rows: a view, or a Float32Array with `options.dim`.
 * @param k - clusters, 1..n.
 * @example
 * ```ts
 * const { centroids, assignments, inertia } = await kmeans({ data: x, rows: 100000, cols: 128 }, 256,
 *   { iterations: 10, seed: 7, onProgress: ({ iteration, inertia }) => console.log(iteration, inertia) });
 * ```
 * @throws VlkError ERR_VLK_TYPE / ERR_VLK_SHAPE / ERR_VLK_DIM_MISMATCH / ERR_VLK_EMPTY (data, init),
 * ERR_VLK_INVALID_K (k < 1 or k > n), ERR_VLK_INVALID_ARG (options), ERR_VLK_NON_FINITE (naming
 * the row and element); AbortError. An error thrown by onProgress rejects the call once the job ends.
 */
export async function kmeans(data: MatrixInput, k: number, options: KmeansOptions = {}): Promise<KmeansResult> {
  const p = atApi(() => prepareKmeans(data, k, options, true), kmeans);
  const onProgress = p.onProgress;
  if (onProgress === undefined) {
    const r = await runCancellable(p.signal, kmeans, (token) => binding.kmeansAsync(p.spec, token));
    return { ...(r as NativeKmeans), dim: p.dim };
  }
  // cells[0] = iterations finished, cells[t] = inertia after iteration t (written by the job).
  const cells = new Float64Array((p.spec.iterations as number) + 1);
  p.spec.progress = cells;
  let reported = 0;
  let failure: unknown;
  const tick = (upTo: number): void => {
    while (reported < upTo && failure === undefined) {
      reported++;
      try {
        onProgress({ iteration: reported, inertia: cells[reported] });
      } catch (err) {
        failure = err;
      }
    }
  };
  const timer = setInterval(() => tick(cells[0]), 20);
  try {
    const r = (await runCancellable(p.signal, kmeans, (token) => binding.kmeansAsync(p.spec, token))) as NativeKmeans;
    cells.set(r.inertiaHistory, 1);
    tick(r.iterations);
    if (failure !== undefined) throw failure;
    return { ...r, dim: p.dim };
  } finally {
    clearInterval(timer);
  }
}

/** {@link kmeans} on the calling thread (no onProgress, no signal). */
export function kmeansSync(
  data: MatrixInput,
  k: number,
  options: Omit<KmeansOptions, 'signal' | 'onProgress'> = {},
): KmeansResult {
  const p = atApi(() => prepareKmeans(data, k, options, false), kmeansSync);
  try {
    return { ...(binding.kmeansSync(p.spec) as NativeKmeans), dim: p.dim };
  } catch (err) {
    throw fromNative(err, kmeansSync);
  }
}
