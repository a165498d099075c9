// Image-text matching losses of seed 004 (AAHR), forward and backward natively (lib):
// memoryInfoNce (MoCo InfoNCE against a MemoryBank or a K x D matrix, with optional in-batch
// negatives and same-id masking), vseHinge (VSE++ hardest-negative hinge) and weightedTriplet
// (distance-weighted negative sampling, Wu et al. 2017). Formulas and choices:
// native/core/losses/{memory_info_nce,vse_hinge,weighted_triplet}.hpp. Shapes are resolved here;
// lengths and values are checked again by the binding and the core, with typed errors.
import { types } from 'node:util';
import { atApi, fromNative, VlkError } from './errors';
import { describe, isRecord, readMatrix, readThreads, shapeMatrix } from './args';
import { readSignal, runCancellable } from './cancel';
import { binding } from './loader';
import { bankHandle, MemoryBank } from './memory_bank';
import type { MatrixInput } from './types';

/** Options of {@link memoryInfoNce}. */
export interface MemoryInfoNceOptions {
  /** tau: logits are divided by it; default 0.07 (MoCo / AAHR). */
  temperature?: number;
  /** Width D when queries / keys / a matrix bank are plain Float32Arrays. */
  dim?: number;
  /** Also use the other batch keys k_j (j != i) as negatives of query i ("in-batch + queue"); default false (MoCo). */
  inBatchNegatives?: boolean;
  /** B ids of the queries (their keys share them), for maskSameId. */
  queryIds?: ArrayLike<number>;
  /** K ids of a matrix bank's rows (a MemoryBank has its own); -1 = no id. */
  bankIds?: ArrayLike<number>;
  /**
   * Exclude negatives of the query's own id: bank entries with that id and (with inBatchNegatives)
   * other batch keys with that id get logit -inf. Needs queryIds. Default false (AAHR's code does
   * not mask; papers.md proposes it).
   */
  maskSameId?: boolean;
  /** Compute the gradients (default true). */
  grads?: boolean;
  threads?: number;
  /** Cancels {@link memoryInfoNce} (not the Sync form). */
  signal?: AbortSignal;
}

/** The result of {@link memoryInfoNce}. */
export interface MemoryInfoNceResult {
  /** (1/B) sum_i CE(logits_i, column 0). */
  loss: number;
  /** Negatives excluded by maskSameId over the batch (0 without it). */
  masked: number;
  /** Bank entries used as negatives (the bank's count at call time, or K). */
  bankCount: number;
  /** dL/dqueries and dL/dkeys (B x D each); the bank is a constant. */
  grads?: { queries: Float32Array; keys: Float32Array };
}

function num(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `${name}: expected a finite number, got ${describe(value)}`);
  }
  return value;
}

function flag(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new VlkError('ERR_VLK_INVALID_ARG', `${name}: expected a boolean, got ${describe(value)}`);
  return value;
}

function readIdArray(value: unknown, name: string, n: number, allowMinusOne = false): Float64Array {
  if (types.isBigInt64Array(value) || types.isBigUint64Array(value) || (!Array.isArray(value) && !types.isTypedArray(value))) {
    throw new VlkError('ERR_VLK_TYPE', `${name}: expected an array of numbers or a Float64Array, got ${describe(value)}`);
  }
  const arr = value as ArrayLike<unknown>;
  if (arr.length !== n) throw new VlkError('ERR_VLK_SHAPE', `${name}: length ${arr.length}, expected ${n}`);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = arr[i];
    if (allowMinusOne && v === -1) {
      out[i] = -1;
      continue;
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw new VlkError('ERR_VLK_INVALID_ARG', `${name}[${i}]: ${describe(v)} is not an integer in 0..2^53 - 1`);
    }
    out[i] = v;
  }
  return out;
}

function rowsOf(value: unknown, name: string, dim: number | undefined): { data: Float32Array; rows: number; cols: number } {
  const m = shapeMatrix(readMatrix(value, name), name, dim);
  return { data: m.data.subarray(0, m.rows * m.cols), rows: m.rows, cols: m.cols };
}

interface Prepared {
  spec: Record<string, unknown>;
  signal?: AbortSignal;
  bankCount: number;
}

function prepareInfoNce(queries: unknown, keys: unknown, bank: unknown, options: unknown, async: boolean): Prepared {
  if (!isRecord(options)) throw new VlkError('ERR_VLK_TYPE', `options: expected an object, got ${describe(options)}`);
  const dim = options.dim;
  if (dim !== undefined && (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim < 0)) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.dim: ${describe(dim)} is not a non-negative integer`);
  }
  const q = rowsOf(queries, 'queries', dim);
  const k = rowsOf(keys, 'keys', q.cols);
  if (k.cols !== q.cols) throw new VlkError('ERR_VLK_DIM_MISMATCH', `keys: dim ${k.cols} differs from the queries' ${q.cols}`);
  if (k.rows !== q.rows) throw new VlkError('ERR_VLK_SHAPE', `keys: ${k.rows} rows, queries have ${q.rows}`);
  if (q.rows === 0) throw new VlkError('ERR_VLK_EMPTY', 'queries: no rows');
  const spec: Record<string, unknown> = { b: q.rows, d: q.cols, queries: q.data, keys: k.data };
  let bankCount: number;
  if (bank instanceof MemoryBank) {
    if (bank.dim !== q.cols) throw new VlkError('ERR_VLK_DIM_MISMATCH', `bank: dim ${bank.dim} differs from the queries' ${q.cols}`);
    if (options.bankIds !== undefined) throw new VlkError('ERR_VLK_INVALID_ARG', 'options.bankIds: a MemoryBank carries its own ids');
    spec.bank = bankHandle(bank);
    bankCount = -1;
  } else {
    const m = rowsOf(bank, 'bank', q.cols);
    if (m.cols !== q.cols) throw new VlkError('ERR_VLK_DIM_MISMATCH', `bank: dim ${m.cols} differs from the queries' ${q.cols}`);
    spec.queue = m.data;
    spec.k = m.rows;
    if (options.bankIds !== undefined) spec.queueIds = readIdArray(options.bankIds, 'options.bankIds', m.rows, true);
    bankCount = m.rows;
  }
  if (options.queryIds !== undefined) spec.queryIds = readIdArray(options.queryIds, 'options.queryIds', q.rows);
  const mask = flag(options.maskSameId, 'options.maskSameId', false);
  if (mask && options.queryIds === undefined) throw new VlkError('ERR_VLK_INVALID_ARG', 'options.queryIds: required with maskSameId');
  const tau = num(options.temperature, 'options.temperature', 0.07);
  if (!(tau > 0)) throw new VlkError('ERR_VLK_INVALID_ARG', `options.temperature: ${tau} is not > 0`);
  Object.assign(spec, {
    scale: 1 / tau,
    inBatchNegatives: flag(options.inBatchNegatives, 'options.inBatchNegatives', false),
    maskSameId: mask,
    grads: flag(options.grads, 'options.grads', true),
  });
  const threads = readThreads(options.threads);
  if (threads !== undefined) spec.threads = threads;
  return { spec, bankCount, signal: async ? readSignal(options.signal, 'options.signal') : undefined };
}

interface NativeInfoNce {
  loss: number;
  masked: number;
  dqueries?: Float32Array;
  dkeys?: Float32Array;
}

function finishInfoNce(r: NativeInfoNce, p: Prepared, bankCount: number): MemoryInfoNceResult {
  const out: MemoryInfoNceResult = { loss: r.loss, masked: r.masked, bankCount };
  if (r.dqueries !== undefined && r.dkeys !== undefined) out.grads = { queries: r.dqueries, keys: r.dkeys };
  return out;
}

/**
 * MoCo's InfoNCE with a queue of negatives (seed 004, AAHR's L_moco per direction), off the event loop:
 * `logits_i = [q_i.k_i | q_i.k_j (j != i, with inBatchNegatives) | q_i.Queue] / tau`, positive at
 * column 0, `loss = mean_i CE(logits_i, 0)`. With `maskSameId`, negatives sharing the query's id
 * are left out (logit -inf). A MemoryBank is read as it is when the call is made (enqueue the
 * new keys afterwards, as MoCo does). Gradients for queries and keys; the bank is a constant.
 *
 * @example
 * ```ts
 * const { loss, grads } = await memoryInfoNce(qImg, kTxt, textBank, { temperature: 0.07 });
 * textBank.enqueue(kTxt, ids);
 * ```
 * @throws VlkError ERR_VLK_TYPE / ERR_VLK_SHAPE / ERR_VLK_DIM_MISMATCH / ERR_VLK_EMPTY (naming the
 * input), ERR_VLK_NON_FINITE (input, row, element), ERR_VLK_INVALID_ARG (temperature, ids, a closed
 * bank); AbortError.
 */
export async function memoryInfoNce(
  queries: MatrixInput,
  keys: MatrixInput,
  bank: MemoryBank | MatrixInput,
  options: MemoryInfoNceOptions = {},
): Promise<MemoryInfoNceResult> {
  const p = atApi(() => prepareInfoNce(queries, keys, bank, options, true), memoryInfoNce);
  const count = p.bankCount >= 0 ? p.bankCount : (bank as MemoryBank).count;
  const r = await runCancellable(p.signal, memoryInfoNce, (token) => binding.memoryInfoNceAsync(p.spec, token));
  return finishInfoNce(r as NativeInfoNce, p, count);
}

/** {@link memoryInfoNce} on the calling thread. */
export function memoryInfoNceSync(
  queries: MatrixInput,
  keys: MatrixInput,
  bank: MemoryBank | MatrixInput,
  options: MemoryInfoNceOptions = {},
): MemoryInfoNceResult {
  const p = atApi(() => prepareInfoNce(queries, keys, bank, options, false), memoryInfoNceSync);
  const count = p.bankCount >= 0 ? p.bankCount : (bank as MemoryBank).count;
  try {
    return finishInfoNce(binding.memoryInfoNceSync(p.spec) as NativeInfoNce, p, count);
  } catch (err) {
    throw fromNative(err, memoryInfoNceSync);
  }
}

/** Options of {@link vseHinge}. */
export interface VseHingeOptions {
  /** Hinge margin; default 0.2. */
  margin?: number;
  /** B ids (item i = image i = caption i): pairs of the same id are not negatives of each other. */
  ids?: ArrayLike<number>;
  /** true (default): the hardest negative only (VSE++); false: sum over every negative (VSE0). */
  maxViolation?: boolean;
  grads?: boolean;
  signal?: AbortSignal;
}

/** The result of {@link vseHinge}. */
export interface VseHingeResult {
  /** Sum over rows (image anchors) and columns (caption anchors). */
  loss: number;
  /** Row i's hardest negative caption (first index on ties), -1 if none. */
  hardestCaption: Int32Array;
  /** Column j's hardest negative image, -1 if none. */
  hardestImage: Int32Array;
  /** dL/dS, B x B (subgradient through the chosen argmax). */
  grads?: { scores: Float32Array };
}

function readScores(scores: unknown, options: Record<string, unknown>): { data: Float32Array; b: number } {
  const m = rowsOf(scores, 'scores', options.dim === undefined ? undefined : (options.dim as number));
  if (m.rows !== m.cols) throw new VlkError('ERR_VLK_SHAPE', `scores: ${m.rows} x ${m.cols} is not square (B x B, positives on the diagonal)`);
  if (m.rows === 0) throw new VlkError('ERR_VLK_EMPTY', 'scores: 0 x 0 is empty');
  return { data: m.data, b: m.rows };
}

function prepareVse(scores: unknown, options: unknown, async: boolean): Prepared {
  if (!isRecord(options)) throw new VlkError('ERR_VLK_TYPE', `options: expected an object, got ${describe(options)}`);
  const s = readScores(scores, options);
  const spec: Record<string, unknown> = {
    b: s.b,
    scores: s.data,
    margin: num(options.margin, 'options.margin', 0.2),
    maxViolation: flag(options.maxViolation, 'options.maxViolation', true),
    grads: flag(options.grads, 'options.grads', true),
  };
  if (options.ids !== undefined) spec.ids = readIdArray(options.ids, 'options.ids', s.b);
  return { spec, bankCount: 0, signal: async ? readSignal(options.signal, 'options.signal') : undefined };
}

function finishVse(r: { loss: number; dscores?: Float32Array; hardestCaption: Int32Array; hardestImage: Int32Array }): VseHingeResult {
  const out: VseHingeResult = { loss: r.loss, hardestCaption: r.hardestCaption, hardestImage: r.hardestImage };
  if (r.dscores !== undefined) out.grads = { scores: r.dscores };
  return out;
}

/**
 * VSE++ hinge (seed 004, AAHR's `vse` loss) on S (B x B, S[i, j] = image i vs caption j, positives on
 * the diagonal): `sum_i relu(margin + S[i, c_i] - S[i, i]) + sum_j relu(margin + S[m_j, j] - S[j, j])`
 * with c_i / m_j the hardest negative caption of row i / image of column j (same-id pairs masked;
 * first index on ties). Backward: +1 at the chosen negative, -1 at the diagonal, per active term.
 * @throws VlkError ERR_VLK_SHAPE (not square), ERR_VLK_NON_FINITE (row, column), ERR_VLK_INVALID_ARG; AbortError.
 */
export async function vseHinge(scores: MatrixInput, options: VseHingeOptions & { dim?: number } = {}): Promise<VseHingeResult> {
  const p = atApi(() => prepareVse(scores, options, true), vseHinge);
  const r = await runCancellable(p.signal, vseHinge, (token) => binding.vseHingeAsync(p.spec, token));
  return finishVse(r as Parameters<typeof finishVse>[0]);
}

/** {@link vseHinge} on the calling thread. */
export function vseHingeSync(scores: MatrixInput, options: VseHingeOptions & { dim?: number } = {}): VseHingeResult {
  const p = atApi(() => prepareVse(scores, options, false), vseHingeSync);
  try {
    return finishVse(binding.vseHingeSync(p.spec) as Parameters<typeof finishVse>[0]);
  } catch (err) {
    throw fromNative(err, vseHingeSync);
  }
}

/** Options of {@link weightedTriplet}. */
export interface WeightedTripletOptions {
  /** Hinge margin; default 0.2. */
  margin?: number;
  /** B ids: positives are the pairs of the same id (the diagonal included); default: the diagonal only. */
  ids?: ArrayLike<number>;
  /** The dimension n of the distance density; default 512 (AAHR hard-codes it). */
  n?: number;
  /** Distances are clamped to >= cutoff; default 0.5. */
  cutoff?: number;
  /** Only negatives with distance < maxDistance are sampled; default 1.7 (Flickr30K; 1.9 for COCO). */
  maxDistance?: number;
  /** Seeds the sampling (integer 0..2^53 - 1); default 0. Same seed, same samples, on any thread count. */
  seed?: number;
  grads?: boolean;
  signal?: AbortSignal;
}

/** The result of {@link weightedTriplet}. */
export interface WeightedTripletResult {
  /** Sum over both directions of relu(margin + s_an - s_ap). */
  loss: number;
  /**
   * The sampled triplets, one per (direction, anchor, positive): direction 0 = image anchor (row,
   * S[a, .]), 1 = caption anchor (column, S[., a]); negative -1 when the anchor had no candidate.
   */
  triplets: { direction: Int32Array; anchor: Int32Array; positive: Int32Array; negative: Int32Array };
  /** dL/dS, B x B (the sampling weights are constants). */
  grads?: { scores: Float32Array };
}

function prepareTriplet(scores: unknown, options: unknown, async: boolean): Prepared {
  if (!isRecord(options)) throw new VlkError('ERR_VLK_TYPE', `options: expected an object, got ${describe(options)}`);
  const s = readScores(scores, options);
  const seed = options.seed === undefined ? 0 : options.seed;
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.seed: ${describe(seed)} is not an integer in 0..2^53 - 1`);
  }
  const spec: Record<string, unknown> = {
    b: s.b,
    scores: s.data,
    margin: num(options.margin, 'options.margin', 0.2),
    n: num(options.n, 'options.n', 512),
    cutoff: num(options.cutoff, 'options.cutoff', 0.5),
    maxDistance: num(options.maxDistance, 'options.maxDistance', 1.7),
    seed,
    grads: flag(options.grads, 'options.grads', true),
  };
  if (options.ids !== undefined) spec.ids = readIdArray(options.ids, 'options.ids', s.b);
  return { spec, bankCount: 0, signal: async ? readSignal(options.signal, 'options.signal') : undefined };
}

interface NativeTriplet {
  loss: number;
  dscores?: Float32Array;
  direction: Int32Array;
  anchor: Int32Array;
  positive: Int32Array;
  negative: Int32Array;
}

function finishTriplet(r: NativeTriplet): WeightedTripletResult {
  const out: WeightedTripletResult = {
    loss: r.loss,
    triplets: { direction: r.direction, anchor: r.anchor, positive: r.positive, negative: r.negative },
  };
  if (r.dscores !== undefined) out.grads = { scores: r.dscores };
  return out;
}

/**
 * Distance-weighted triplet loss (seed 004, AAHR's default `trip` loss; Wu et al. 2017) on S (B x B
 * cosine similarities of unit embeddings): `d = max(sqrt(2 - 2s), cutoff)`,
 * `log w = (2 - n) log d - ((n - 3)/2) log(1 - d^2/4)` over the negatives with d < maxDistance
 * (normalised per anchor after subtracting the anchor's max log w); one negative drawn per positive
 * pair with a seeded counter-based RNG; `T = sum relu(margin + s_an - s_ap)` over both directions.
 * The drawn triplets come back in `triplets`.
 * @throws VlkError ERR_VLK_SHAPE (not square), ERR_VLK_NON_FINITE, ERR_VLK_INVALID_ARG (cutoff,
 * maxDistance, n, seed, ids); AbortError.
 */
export async function weightedTriplet(
  scores: MatrixInput,
  options: WeightedTripletOptions & { dim?: number } = {},
): Promise<WeightedTripletResult> {
  const p = atApi(() => prepareTriplet(scores, options, true), weightedTriplet);
  const r = await runCancellable(p.signal, weightedTriplet, (token) => binding.weightedTripletAsync(p.spec, token));
  return finishTriplet(r as NativeTriplet);
}

/** {@link weightedTriplet} on the calling thread. */
export function weightedTripletSync(scores: MatrixInput, options: WeightedTripletOptions & { dim?: number } = {}): WeightedTripletResult {
  const p = atApi(() => prepareTriplet(scores, options, false), weightedTripletSync);
  try {
    return finishTriplet(binding.weightedTripletSync(p.spec) as NativeTriplet);
  } catch (err) {
    throw fromNative(err, weightedTripletSync);
  }
}
