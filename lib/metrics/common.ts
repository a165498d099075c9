// Shared pieces of the benchmark metrics (lib, pure TypeScript): argument readers with named errors,
// score matrices (Q x N row-major, Float32Array or Float64Array), the rank of a target within a row
// under the three tie rules, and the summaries over ranks (Recall@K, medr, meanr) in percent.
import { types } from 'node:util';
import { describe, isRecord, readSize } from '../args';
import { VlkError } from '../errors';

/**
 * Tie rule for a target whose score equals other candidates' scores. `'stable'` (default): the
 * position in a stable descending sort, #{score > s_t} + #{score = s_t and index < t};
 * `'optimistic'`: #{score > s_t}; `'pessimistic'`: #{score >= s_t} - 1.
 */
export type Ties = 'stable' | 'optimistic' | 'pessimistic';

/** Ranks, one per query: an Int32Array or an array of non-negative integers (0 = first place). */
export type RanksInput = Int32Array | readonly number[];

/** A row-major score matrix: a plain typed array (its shape comes from the call), or a view. */
export type ScoreMatrixInput =
  | Float32Array
  | Float64Array
  | { data: Float32Array | Float64Array; rows: number; cols: number }
  | { data: Float32Array | Float64Array; dims: readonly number[] };

/** A score matrix after checks: `rows x cols`, row-major, every entry finite. */
export interface ScoreMatrix {
  data: Float32Array | Float64Array;
  rows: number;
  cols: number;
}

/** Rank 'not found': the target is not among the candidates (a CIRR subset without it). */
export const ABSENT = 2147483647;

/** @throws VlkError ERR_VLK_INVALID_ARG */
export function readTies(value: unknown, name = 'ties'): Ties {
  if (value === undefined) return 'stable';
  if (value === 'stable' || value === 'optimistic' || value === 'pessimistic') return value;
  throw new VlkError(
    'ERR_VLK_INVALID_ARG',
    `${name}: expected 'stable', 'optimistic' or 'pessimistic', got ${describe(value)}`,
  );
}

/** @throws VlkError ERR_VLK_TYPE */
export function readObject(value: unknown, name: string): Record<string, unknown> {
  if (!isRecord(value)) throw new VlkError('ERR_VLK_TYPE', `${name}: expected an object, got ${describe(value)}`);
  return value;
}

/** A positive integer (K, folds, candidates per image). @throws VlkError ERR_VLK_INVALID_ARG */
export function readPositive(value: unknown, name: string, fallback?: number): number {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `${name}: expected a positive integer, got ${describe(value)}`);
  }
  return value;
}

/** A list of cut-offs K (positive integers). @throws VlkError ERR_VLK_INVALID_K */
export function readKs(value: unknown, name: string, fallback: readonly number[]): number[] {
  if (value === undefined) return [...fallback];
  const list = typeof value === 'number' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0) {
    throw new VlkError('ERR_VLK_INVALID_K', `${name}: expected a positive integer or a non-empty array of them, got ${describe(value)}`);
  }
  return list.map((k, i) => {
    if (typeof k !== 'number' || !Number.isSafeInteger(k) || k < 1) {
      throw new VlkError('ERR_VLK_INVALID_K', `${name}[${i}]: expected a positive integer, got ${describe(k)}`);
    }
    return k;
  });
}

/** Ranks as an Int32Array (a copy of a number array), each a non-negative integer. @throws VlkError ERR_VLK_TYPE, ERR_VLK_INVALID_ARG, ERR_VLK_EMPTY */
export function readRanks(value: unknown, name: string): Int32Array {
  let ranks: Int32Array;
  if (types.isInt32Array(value)) ranks = value;
  else if (Array.isArray(value)) {
    ranks = new Int32Array(value.length);
    for (let i = 0; i < value.length; i++) {
      const r = value[i];
      if (typeof r !== 'number' || !Number.isInteger(r) || r < 0 || r > ABSENT) {
        throw new VlkError('ERR_VLK_INVALID_ARG', `${name}[${i}]: expected a non-negative integer rank, got ${describe(r)}`);
      }
      ranks[i] = r;
    }
  } else {
    throw new VlkError('ERR_VLK_TYPE', `${name}: expected an Int32Array or an array of ranks, got ${describe(value)}`);
  }
  if (ranks.length === 0) throw new VlkError('ERR_VLK_EMPTY', `${name}: no ranks`);
  for (let i = 0; i < ranks.length; i++) {
    if (ranks[i] < 0) throw new VlkError('ERR_VLK_INVALID_ARG', `${name}[${i}]: rank ${ranks[i]} is negative`);
  }
  return ranks;
}

/** A finite number (a score, a confidence). @throws VlkError ERR_VLK_TYPE, ERR_VLK_NON_FINITE */
export function readFinite(value: unknown, name: string): number {
  if (typeof value !== 'number') throw new VlkError('ERR_VLK_TYPE', `${name}: expected a number, got ${describe(value)}`);
  if (!Number.isFinite(value)) throw new VlkError('ERR_VLK_NON_FINITE', `${name}: ${String(value)} is not finite`);
  return value;
}

/** A list of finite numbers (typed array or array) as a Float64Array copy. @throws VlkError ERR_VLK_TYPE, ERR_VLK_NON_FINITE */
export function readVector(value: unknown, name: string): Float64Array {
  if (!(types.isFloat32Array(value) || types.isFloat64Array(value) || Array.isArray(value))) {
    throw new VlkError('ERR_VLK_TYPE', `${name}: expected a Float32Array, Float64Array or number array, got ${describe(value)}`);
  }
  const src = value as ArrayLike<unknown>;
  const out = new Float64Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = readFinite(src[i], `${name}[${i}]`);
  return out;
}

/** An array of strings. @throws VlkError ERR_VLK_TYPE */
export function readNames(value: unknown, name: string): string[] {
  if (!Array.isArray(value)) throw new VlkError('ERR_VLK_TYPE', `${name}: expected an array of strings, got ${describe(value)}`);
  for (let i = 0; i < value.length; i++) {
    if (typeof value[i] !== 'string') {
      throw new VlkError('ERR_VLK_TYPE', `${name}[${i}]: expected a string, got ${describe(value[i])}`);
    }
  }
  return value as string[];
}

/** Name -> position, rejecting duplicates (a gallery names each item once). @throws VlkError ERR_VLK_INVALID_ARG */
export function indexNames(names: readonly string[], name: string): Map<string, number> {
  const map = new Map<string, number>();
  for (let i = 0; i < names.length; i++) {
    const prev = map.get(names[i]);
    if (prev !== undefined) {
      throw new VlkError('ERR_VLK_INVALID_ARG', `${name}: "${names[i]}" appears twice (positions ${prev} and ${i})`);
    }
    map.set(names[i], i);
  }
  return map;
}

/** Position of a name in a gallery. @throws VlkError ERR_VLK_INVALID_ARG naming the unknown name */
export function lookup(index: Map<string, number>, key: unknown, name: string, galleryName: string): number {
  if (typeof key !== 'string') throw new VlkError('ERR_VLK_TYPE', `${name}: expected a string, got ${describe(key)}`);
  const at = index.get(key);
  if (at === undefined) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `${name}: "${key}" is not in ${galleryName} (${index.size} names)`);
  }
  return at;
}

/**
 * A score matrix: a plain array with its shape from the call (`rows` and/or `cols`; the other is
 * derived), or a view whose shape must agree with the ones given. Every entry must be finite.
 * @throws VlkError ERR_VLK_TYPE, ERR_VLK_SHAPE, ERR_VLK_EMPTY, ERR_VLK_NON_FINITE (naming row and column)
 */
export function readScores(value: unknown, name: string, expect: { rows?: number; cols?: number }): ScoreMatrix {
  let data: Float32Array | Float64Array;
  let rows: number;
  let cols: number;
  const isData = (v: unknown): v is Float32Array | Float64Array => types.isFloat32Array(v) || types.isFloat64Array(v);
  if (isData(value)) {
    data = value;
    if (expect.cols !== undefined && expect.cols > 0) {
      cols = expect.cols;
      if (data.length % cols !== 0) {
        throw new VlkError('ERR_VLK_SHAPE', `${name}: length ${data.length} is not a multiple of ${cols} columns`);
      }
      rows = data.length / cols;
    } else if (expect.rows !== undefined && expect.rows > 0) {
      rows = expect.rows;
      if (data.length % rows !== 0) {
        throw new VlkError('ERR_VLK_SHAPE', `${name}: length ${data.length} is not a multiple of ${rows} rows`);
      }
      cols = data.length / rows;
    } else {
      throw new VlkError('ERR_VLK_SHAPE', `${name}: a plain array needs its shape; pass { data, rows, cols }`);
    }
  } else if (isRecord(value) && isData(value.data)) {
    data = value.data;
    if (value.rows !== undefined || value.cols !== undefined) {
      rows = readSize(value.rows, `${name}.rows`);
      cols = readSize(value.cols, `${name}.cols`);
    } else if (Array.isArray(value.dims) && value.dims.length === 2) {
      rows = readSize(value.dims[0], `${name}.dims[0]`);
      cols = readSize(value.dims[1], `${name}.dims[1]`);
    } else {
      throw new VlkError('ERR_VLK_SHAPE', `${name}: a view needs rows and cols, or dims: [rows, cols]`);
    }
    if (data.length !== rows * cols) {
      throw new VlkError('ERR_VLK_SHAPE', `${name}: data length ${data.length} is not rows x cols = ${rows} x ${cols}`);
    }
  } else {
    throw new VlkError(
      'ERR_VLK_TYPE',
      `${name}: expected a Float32Array, a Float64Array or { data, rows, cols }, got ${describe(value)}`,
    );
  }
  if (expect.rows !== undefined && rows !== expect.rows) {
    throw new VlkError('ERR_VLK_SHAPE', `${name}: ${rows} rows, expected ${expect.rows}`);
  }
  if (expect.cols !== undefined && cols !== expect.cols) {
    throw new VlkError('ERR_VLK_SHAPE', `${name}: ${cols} columns, expected ${expect.cols}`);
  }
  if (rows === 0 || cols === 0) throw new VlkError('ERR_VLK_EMPTY', `${name}: ${rows} x ${cols} has no scores`);
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      throw new VlkError(
        'ERR_VLK_NON_FINITE',
        `${name}: entry (${Math.floor(i / cols)}, ${i % cols}) is ${String(data[i])}; scores must be finite`,
      );
    }
  }
  return { data, rows, cols };
}

/** Rank of one target and whether another candidate has exactly its score. */
export interface TargetRank {
  rank: number;
  tie: boolean;
}

/**
 * Rank of the best of the targets `gts` (columns) in row `row` of `m`, over the columns `from` ..
 * `to - 1` not equal to `skip` (-1: none): each target's rank by the tie rule, then the minimum.
 * The best target is the highest-scoring one (the lowest column among equals), as every rule's
 * rank falls with the score and, for 'stable', with the column. `tie`: another candidate column
 * (target or not) has exactly the best target's score.
 */
export function bestRank(
  m: ScoreMatrix,
  row: number,
  gts: readonly number[] | { start: number; count: number },
  ties: Ties,
  from = 0,
  to = m.cols,
  skip = -1,
): TargetRank {
  const { data, cols } = m;
  const base = row * cols;
  let best = -1;
  if (Array.isArray(gts)) {
    for (const g of gts as readonly number[]) {
      if (best < 0 || data[base + g] > data[base + best] || (data[base + g] === data[base + best] && g < best)) best = g;
    }
  } else {
    const range = gts as { start: number; count: number };
    for (let g = range.start; g < range.start + range.count; g++) {
      if (best < 0 || data[base + g] > data[base + best]) best = g;
    }
  }
  const s = data[base + best];
  let greater = 0;
  let equalBefore = 0;
  let equalAfter = 0;
  for (let j = from; j < to; j++) {
    if (j === skip || j === best) continue;
    const v = data[base + j];
    if (v > s) greater++;
    else if (v === s) {
      if (j < best) equalBefore++;
      else equalAfter++;
    }
  }
  const rank = ties === 'optimistic' ? greater : ties === 'pessimistic' ? greater + equalBefore + equalAfter : greater + equalBefore;
  return { rank, tie: equalBefore + equalAfter > 0 };
}

/** 100 * #{rank < k} / n for each k, keyed `r<k>`. */
export function recallAt(ranks: Int32Array, ks: readonly number[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of ks) {
    let hit = 0;
    for (let i = 0; i < ranks.length; i++) if (ranks[i] < k) hit++;
    out[`r${k}`] = (100 * hit) / ranks.length;
  }
  return out;
}

/** floor(median(rank)) + 1, the median of an even count being the mean of the two middle ranks. */
export function medianRank(ranks: Int32Array): number {
  const sorted = Int32Array.from(ranks).sort();
  const n = sorted.length;
  const median = n % 2 === 1 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  return Math.floor(median) + 1;
}

/** mean(rank) + 1. */
export function meanRank(ranks: Int32Array): number {
  let sum = 0;
  for (let i = 0; i < ranks.length; i++) sum += ranks[i];
  return sum / ranks.length + 1;
}
