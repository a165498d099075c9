// Streaming rank of ground-truth items (lib): rankOfTargets (for each query, the 0-based position
// of its ground-truth gallery items in its descending ordering, without sorting or the Q x N score
// matrix; CIRR-style exclusions) and crossModalRanks (both directions of the Flickr30K / COCO
// protocol in one pass). Shapes are resolved here; the binding and core check them again.
import { types } from 'node:util';
import { atApi, fromNative, VlkError } from './errors';
import { describe, isRecord, readMatrix, readMetric, readThreads, shapeMatrix } from './args';
import { readSignal, runCancellable } from './cancel';
import { binding } from './loader';
import type { MatrixInput, Metric } from './types';

/** How an exact score tie with the target counts; see {@link RankOptions.ties}. */
export type TieRule = 'stable' | 'optimistic' | 'pessimistic';

/** A list of ids, or one CSR list per query: query q's ids are `ids[offsets[q] .. offsets[q + 1])`. */
export interface IdLists {
  offsets: Int32Array | readonly number[];
  ids: Int32Array | readonly number[];
}

/** Ground truth: one gallery row per query, or several per query as {@link IdLists}. */
export type GroundTruth = Int32Array | readonly number[] | IdLists;

/** Options of {@link rankOfTargets}. */
export interface RankOptions {
  /** `'ip'` (default) and `'cosine'` rank by descending similarity, `'l2'` by ascending squared distance. */
  metric?: Metric;
  /**
   * Exact ties with the target: `'stable'` (default) = #{better} + #{equal with a lower index}, the
   * position in a stable descending sort; `'optimistic'` = #{better}; `'pessimistic'` =
   * #{better or equal} - 1.
   */
  ties?: TieRule;
  /**
   * Gallery rows removed from a query's ordering (CIRR removes the reference image): one row per
   * query (-1 = none) or CSR lists. Excluding one of the query's own targets is ERR_VLK_INVALID_ARG.
   */
  exclude?: Int32Array | readonly number[] | IdLists;
  /** Row length; required when an input is a plain Float32Array. */
  dim?: number;
  threads?: number;
  /** Cancels {@link rankOfTargets} (not the Sync form). */
  signal?: AbortSignal;
}

/** The result of {@link rankOfTargets}. */
export interface RankResult {
  /** Rank of each ground-truth entry (0 = first), in the ground truth's (CSR) order. */
  ranks: Int32Array;
  /** Per query, the best (smallest) rank over its ground truth; -1 for a query with none. */
  best: Int32Array;
  /**
   * Queries whose best rank differs between the optimistic and the pessimistic rule: an exact
   * score tie at the decision boundary, where the tie rule decides the rank.
   */
  ties: number;
}

/** Options of {@link crossModalRanks}. */
export interface CrossModalOptions {
  /** Captions per image (default 5); captions are image-major: caption c belongs to image floor(c / perImage). */
  perImage?: number;
  metric?: Metric;
  ties?: TieRule;
  dim?: number;
  threads?: number;
  /** Cancels {@link crossModalRanks} (not the Sync form). */
  signal?: AbortSignal;
}

/** The result of {@link crossModalRanks}. */
export interface CrossModalResult {
  /** Per image: the best rank of its captions among all captions (image -> text). */
  i2t: Int32Array;
  /** Per caption: the rank of its image among all images (text -> image). */
  t2i: Int32Array;
  /** Exact-tie counts at the decision boundary, per direction (as {@link RankResult.ties}). */
  ties: { i2t: number; t2i: number };
}

const TIES: ReadonlySet<string> = new Set(['stable', 'optimistic', 'pessimistic']);

function readTies(value: unknown): TieRule {
  const t = value ?? 'stable';
  if (typeof t !== 'string' || !TIES.has(t)) {
    const got = typeof t === 'string' ? `'${t}'` : describe(t);
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.ties: expected 'stable', 'optimistic' or 'pessimistic', got ${got}`);
  }
  return t as TieRule;
}

function readDim(value: unknown): number | undefined {
  if (value !== undefined && (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.dim: ${describe(value)} is not a non-negative integer`);
  }
  return value as number | undefined;
}

function isIdArray(value: unknown): value is Int32Array | readonly number[] {
  return types.isInt32Array(value) || Array.isArray(value);
}

// An Int32Array of integers in lo..hi (no copy when it already is one and in range).
function int32s(value: unknown, name: string, lo: number, hi: number, what: string): Int32Array {
  if (!isIdArray(value)) {
    throw new VlkError('ERR_VLK_TYPE', `${name}: expected an Int32Array or an array of integers, got ${describe(value)}`);
  }
  const src = value as ArrayLike<unknown>;
  const out = types.isInt32Array(value) ? value : new Int32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = src[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
      throw new VlkError('ERR_VLK_INVALID_ARG', `${name}[${i}]: ${describe(v)} is not ${what}`);
    }
    out[i] = v;
  }
  return out;
}

// { offsets, ids } as Int32Arrays, checked against q queries and n gallery rows.
function readLists(value: unknown, name: string, q: number, n: number, single: 'none' | 'required'): { offsets: Int32Array; ids: Int32Array } {
  const rowWhat = `a gallery row in 0..${n - 1}`;
  if (isIdArray(value)) {
    const src = value as ArrayLike<unknown>;
    if (src.length !== q) throw new VlkError('ERR_VLK_SHAPE', `${name}: length ${src.length}, expected one id per query (${q})`);
    const lo = single === 'none' ? -1 : 0;
    const flat = int32s(value, name, lo, n - 1, single === 'none' ? `-1 or ${rowWhat}` : rowWhat);
    const offsets = new Int32Array(q + 1);
    let count = 0;
    for (let i = 0; i < q; i++) {
      if (flat[i] >= 0) count++;
      offsets[i + 1] = count;
    }
    if (count === q) return { offsets, ids: flat };
    const ids = new Int32Array(count);
    for (let i = 0, k = 0; i < q; i++) if (flat[i] >= 0) ids[k++] = flat[i];
    return { offsets, ids };
  }
  if (!isRecord(value) || types.isTypedArray(value)) {
    throw new VlkError('ERR_VLK_TYPE', `${name}: expected an Int32Array, an array of ids or { offsets, ids }, got ${describe(value)}`);
  }
  const offsets = int32s(value.offsets, `${name}.offsets`, 0, 2 ** 31 - 1, 'a non-negative integer');
  if (offsets.length !== q + 1) {
    throw new VlkError('ERR_VLK_SHAPE', `${name}.offsets: length ${offsets.length}, expected queries + 1 = ${q + 1}`);
  }
  if (offsets[0] !== 0) throw new VlkError('ERR_VLK_INVALID_ARG', `${name}.offsets[0]: ${offsets[0]}, expected 0`);
  for (let i = 0; i < q; i++) {
    if (offsets[i + 1] < offsets[i]) {
      throw new VlkError('ERR_VLK_INVALID_ARG', `${name}.offsets[${i + 1}]: ${offsets[i + 1]} is below offsets[${i}] = ${offsets[i]}`);
    }
  }
  const ids = int32s(value.ids, `${name}.ids`, 0, n - 1, rowWhat);
  if (ids.length !== offsets[q]) {
    throw new VlkError('ERR_VLK_SHAPE', `${name}.ids: length ${ids.length}, expected offsets[${q}] = ${offsets[q]}`);
  }
  return { offsets, ids };
}

function pair(a: unknown, aName: string, b: unknown, bName: string, dim: number | undefined) {
  // Both inputs pass the type checks before plain arrays are split by dim (the binding's order).
  const ra = readMatrix(a, aName);
  const rb = readMatrix(b, bName);
  const ma = shapeMatrix(ra, aName, dim);
  const mb = shapeMatrix(rb, bName, dim ?? ('view' in ra ? ma.cols : undefined));
  if (ma.rows === 0) throw new VlkError('ERR_VLK_EMPTY', `${aName}: no rows`);
  if (mb.rows === 0) throw new VlkError('ERR_VLK_EMPTY', `${bName}: no rows`);
  if (mb.cols !== ma.cols) throw new VlkError('ERR_VLK_DIM_MISMATCH', `${bName}: dim ${mb.cols} differs from the ${aName}' ${ma.cols}`);
  return {
    a: { data: ma.data.subarray(0, ma.rows * ma.cols), rows: ma.rows, cols: ma.cols },
    b: { data: mb.data.subarray(0, mb.rows * mb.cols), rows: mb.rows, cols: mb.cols },
  };
}

interface Prepared {
  spec: Record<string, unknown>;
  signal?: AbortSignal;
}

function prepareRank(queries: unknown, gallery: unknown, groundTruth: unknown, options: unknown, async: boolean): Prepared {
  if (!isRecord(options)) throw new VlkError('ERR_VLK_TYPE', `options: expected an object, got ${describe(options)}`);
  const { a: q, b: g } = pair(queries, 'queries', gallery, 'gallery', readDim(options.dim));
  if (g.rows > 2 ** 31 - 1) throw new VlkError('ERR_VLK_SHAPE', `gallery: ${g.rows} rows exceed the int32 ranks`);
  const gt = readLists(groundTruth, 'groundTruth', q.rows, g.rows, 'required');
  const spec: Record<string, unknown> = {
    q: q.rows,
    n: g.rows,
    d: q.cols,
    queries: q.data,
    gallery: g.data,
    metric: readMetric(options.metric),
    ties: readTies(options.ties),
    gtOffsets: gt.offsets,
    gtIds: gt.ids,
  };
  if (options.exclude !== undefined) {
    const ex = readLists(options.exclude, 'options.exclude', q.rows, g.rows, 'none');
    spec.exOffsets = ex.offsets;
    spec.exIds = ex.ids;
  }
  const threads = readThreads(options.threads);
  if (threads !== undefined) spec.threads = threads;
  return { spec, signal: async ? readSignal(options.signal, 'options.signal') : undefined };
}

/**
 * For each query, the 0-based rank of each of its ground-truth gallery items in the query's
 * ordering (descending ip / cosine similarity, ascending squared l2 distance), off the event loop.
 * The gallery is streamed through the GEMM kernel block by block and the items beating each target
 * are counted: no sort, no Q x N score matrix (memory stays a few MB). Exact ties follow
 * `options.ties`; `ties` in the result counts the queries where the rule decided the best rank.
 *
 * @example
 * ```ts
 * // CIRR: one target per query, the reference image removed from the gallery.
 * const { best } = await rankOfTargets(queries, gallery, targets, { metric: 'cosine', exclude: references, dim: 640 });
 * const r5 = best.filter((r) => r >= 0 && r < 5).length / best.length;
 * ```
 * @throws VlkError ERR_VLK_TYPE / ERR_VLK_SHAPE / ERR_VLK_DIM_MISMATCH / ERR_VLK_EMPTY (naming the
 * input), ERR_VLK_INVALID_ARG (ids out of range, offsets, a target that is also excluded, metric,
 * ties, dim, threads), ERR_VLK_NON_FINITE (input, row, column); AbortError.
 */
export async function rankOfTargets(
  queries: MatrixInput,
  gallery: MatrixInput,
  groundTruth: GroundTruth,
  options: RankOptions = {},
): Promise<RankResult> {
  const p = atApi(() => prepareRank(queries, gallery, groundTruth, options, true), rankOfTargets);
  return (await runCancellable(p.signal, rankOfTargets, (token) => binding.rankOfTargetsAsync(p.spec, token))) as RankResult;
}

/** {@link rankOfTargets} on the calling thread. */
export function rankOfTargetsSync(
  queries: MatrixInput,
  gallery: MatrixInput,
  groundTruth: GroundTruth,
  options: RankOptions = {},
): RankResult {
  const p = atApi(() => prepareRank(queries, gallery, groundTruth, options, false), rankOfTargetsSync);
  try {
    return binding.rankOfTargetsSync(p.spec) as RankResult;
  } catch (err) {
    throw fromNative(err, rankOfTargetsSync);
  }
}

function prepareCross(images: unknown, captions: unknown, options: unknown, async: boolean): Prepared {
  if (!isRecord(options)) throw new VlkError('ERR_VLK_TYPE', `options: expected an object, got ${describe(options)}`);
  const per = options.perImage ?? 5;
  if (typeof per !== 'number' || !Number.isSafeInteger(per) || per < 1) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.perImage: ${describe(per)} is not an integer >= 1`);
  }
  const { a: im, b: cap } = pair(images, 'images', captions, 'captions', readDim(options.dim));
  if (cap.rows !== im.rows * per) {
    throw new VlkError(
      'ERR_VLK_SHAPE',
      `captions: ${cap.rows} rows, expected images x perImage = ${im.rows} x ${per} = ${im.rows * per} (image-major)`,
    );
  }
  if (cap.rows > 2 ** 31 - 1) throw new VlkError('ERR_VLK_SHAPE', `captions: ${cap.rows} rows exceed the int32 ranks`);
  const spec: Record<string, unknown> = {
    n: im.rows,
    d: im.cols,
    per,
    images: im.data,
    captions: cap.data,
    metric: readMetric(options.metric),
    ties: readTies(options.ties),
  };
  const threads = readThreads(options.threads);
  if (threads !== undefined) spec.threads = threads;
  return { spec, signal: async ? readSignal(options.signal, 'options.signal') : undefined };
}

function finishCross(r: { i2t: Int32Array; t2i: Int32Array; tiesI2t: number; tiesT2i: number }): CrossModalResult {
  return { i2t: r.i2t, t2i: r.t2i, ties: { i2t: r.tiesI2t, t2i: r.tiesT2i } };
}

/**
 * Both directions of the Flickr30K / COCO retrieval protocol (papers.md "Benchmark metrics") in
 * one streamed pass over the images x captions scores, off the event loop: image i's rank is the
 * best rank of its `perImage` captions among all captions, caption c's rank that of image
 * floor(c / perImage) among all images. Equal to two {@link rankOfTargets} calls, at half the work.
 *
 * @example
 * ```ts
 * const { i2t, t2i } = await crossModalRanks(images, captions, { perImage: 5, dim: 512 });
 * const r1 = (ranks: Int32Array) => (100 * ranks.filter((r) => r < 1).length) / ranks.length;
 * console.log(r1(i2t), r1(t2i));
 * ```
 * @throws VlkError ERR_VLK_TYPE / ERR_VLK_SHAPE (captions not images x perImage) /
 * ERR_VLK_DIM_MISMATCH / ERR_VLK_EMPTY, ERR_VLK_INVALID_ARG (perImage, metric, ties, dim,
 * threads), ERR_VLK_NON_FINITE; AbortError.
 */
export async function crossModalRanks(
  images: MatrixInput,
  captions: MatrixInput,
  options: CrossModalOptions = {},
): Promise<CrossModalResult> {
  const p = atApi(() => prepareCross(images, captions, options, true), crossModalRanks);
  const r = await runCancellable(p.signal, crossModalRanks, (token) => binding.crossModalRanksAsync(p.spec, token));
  return finishCross(r as Parameters<typeof finishCross>[0]);
}

/** {@link crossModalRanks} on the calling thread. */
export function crossModalRanksSync(images: MatrixInput, captions: MatrixInput, options: CrossModalOptions = {}): CrossModalResult {
  const p = atApi(() => prepareCross(images, captions, options, false), crossModalRanksSync);
  try {
    return finishCross(binding.crossModalRanksSync(p.spec) as Parameters<typeof finishCross>[0]);
  } catch (err) {
    throw fromNative(err, crossModalRanksSync);
  }
}
