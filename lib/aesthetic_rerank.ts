// Candidate-list helpers of seed 000's aesthetic re-ranking (lib, pure TS, float64): aestheticRerank
// (final = relevance + lambda * mean of z-scored priors over the K candidates) and gridOrder (the
// u x v grid, relevance rows and aesthetic order within a row, and its product-order preference pairs).
import { constants } from 'node:buffer';
import { totalmem } from 'node:os';
import { types } from 'node:util';
import { atApi, VlkError } from './errors';
import { describe, readFlag } from './args';
import { readInt, readNum, readOptions } from './gl_args';
import { averagePriors, readPriors, type PriorsInput } from './prior_search';

/** Result of {@link aestheticRerank}. */
export interface AestheticRerankResult {
  /** The K candidate positions, best final score first (ties: lower position). */
  order: Int32Array;
  /** final = relevance + lambda * aesthetic, per candidate (input order). */
  scores: Float64Array;
  /** a: the averaged (z-scored) priors, per candidate (input order). */
  aesthetic: Float64Array;
}

/** Result of {@link gridOrder}. */
export interface GridOrderResult {
  /** u x v candidate positions, row-major: row 0 most relevant, each row by aesthetic (best first). */
  grid: Int32Array;
  /** P x 2 (winner, loser) candidate positions, P = [u(u+1)/2][v(v+1)/2] - u v. */
  pairs: Int32Array;
}

function readScores(value: unknown, name: string): Float64Array {
  if (!types.isFloat32Array(value) && !types.isFloat64Array(value)) {
    throw new VlkError('ERR_VLK_TYPE', `${name}: expected a Float32Array or Float64Array, got ${describe(value)}`);
  }
  if (value.length === 0) throw new VlkError('ERR_VLK_EMPTY', `${name}: no candidates`);
  const out = Float64Array.from(value);
  for (let i = 0; i < out.length; i++) {
    if (!Number.isFinite(out[i])) throw new VlkError('ERR_VLK_NON_FINITE', `${name}[${i}] is ${out[i]} (values must be finite)`);
  }
  return out;
}

// Positions sorted by score descending, ties by lower position.
function orderBy(score: Float64Array): Int32Array {
  const idx = Array.from(score, (_, i) => i);
  idx.sort((a, b) => score[b] - score[a] || a - b);
  return Int32Array.from(idx);
}

/**
 * Re-ranks K candidates: each prior (M x K) z-scored over the K candidates (population std; a
 * constant prior contributes 0; `zscore: false` uses it as given), averaged into a, and
 * final = relevance + lambda * a (float64). Returns the order, best first (ties: lower position).
 *
 * @example
 * ```ts
 * const { order } = aestheticRerank(scores.subarray(0, 100), [clipiqa100, iap100], { lambda: 0.1 });
 * ```
 * @throws VlkError ERR_VLK_TYPE, ERR_VLK_SHAPE (a prior not of length K), ERR_VLK_EMPTY,
 * ERR_VLK_NON_FINITE, ERR_VLK_INVALID_ARG (lambda, zscore).
 */
export function aestheticRerank(
  relevance: Float32Array | Float64Array,
  priors: PriorsInput | Float32Array,
  options: { lambda?: number; zscore?: boolean } = {},
): AestheticRerankResult {
  return atApi(() => {
    const o = readOptions(options);
    const rel = readScores(relevance, 'relevance');
    const lambda = readNum(o.lambda, 'options.lambda', 0.1);
    const a = averagePriors(readPriors(priors, 'priors', rel.length), readFlag(o.zscore, 'options.zscore', true));
    const scores = new Float64Array(rel.length);
    for (let i = 0; i < rel.length; i++) scores[i] = rel[i] + lambda * a[i];
    return { order: orderBy(scores), scores, aesthetic: a };
  }, aestheticRerank);
}

/**
 * Seed 000's grid: candidates in relevance order (descending, ties by lower position), every
 * `stride`-th taken (positions 0, stride, 2 stride, ...) until u v are held; row r holds the r-th
 * run of v of them, re-ordered by aesthetic (descending; ties keep relevance order). Pairs: (a, b)
 * for every a != b with row(a) <= row(b) and col(a) <= col(b) (product order), a preferred;
 * [u(u+1)/2][v(v+1)/2] - u v of them, listed by a (row-major), then b (row-major).
 *
 * @example
 * ```ts
 * const { grid, pairs } = gridOrder(relevance, aesthetic, { u: 5, v: 4, stride: 2 }); // K >= 39
 * ```
 * @throws VlkError ERR_VLK_TYPE, ERR_VLK_SHAPE (aesthetic not of length K, or K < (u v - 1) stride + 1),
 * ERR_VLK_EMPTY, ERR_VLK_NON_FINITE, ERR_VLK_INVALID_ARG (u, v, stride), ERR_VLK_OUT_OF_MEMORY (a pair list larger than memory).
 */
export function gridOrder(
  relevance: Float32Array | Float64Array,
  aesthetic: Float32Array | Float64Array,
  options: { u?: number; v?: number; stride?: number } = {},
): GridOrderResult {
  return atApi(() => {
    const o = readOptions(options);
    const rel = readScores(relevance, 'relevance');
    const aes = readScores(aesthetic, 'aesthetic');
    if (aes.length !== rel.length) throw new VlkError('ERR_VLK_SHAPE', `aesthetic: length ${aes.length}, expected K = ${rel.length}`);
    const u = readInt(o.u, 'options.u', 5, 1, 'ERR_VLK_INVALID_ARG');
    const v = readInt(o.v, 'options.v', 4, 1, 'ERR_VLK_INVALID_ARG');
    const stride = readInt(o.stride, 'options.stride', 2, 1, 'ERR_VLK_INVALID_ARG');
    const need = (u * v - 1) * stride + 1;
    if (rel.length < need) {
      throw new VlkError('ERR_VLK_SHAPE', `relevance: K = ${rel.length} candidates, a ${u} x ${v} grid at stride ${stride} needs >= ${need}`);
    }
    const byRel = orderBy(rel);
    const grid = new Int32Array(u * v);
    for (let r = 0; r < u; r++) {
      const row = Array.from({ length: v }, (_, c) => byRel[(r * v + c) * stride]);
      const rank = new Map(row.map((x, i) => [x, i]));
      row.sort((a, b) => aes[b] - aes[a] || (rank.get(a) as number) - (rank.get(b) as number));
      grid.set(row, r * v);
    }
    const count = ((u * (u + 1)) / 2) * ((v * (v + 1)) / 2) - u * v;
    // The pair list grows as (u v)^2 / 4 while the grid needs only u v candidates: refuse a list
    // the machine (or a typed array) cannot hold before allocating it, as a typed error.
    const bytes = 8 * count;
    const ceiling = Math.min(totalmem(), process.constrainedMemory?.() || Infinity);
    if (!(2 * count <= constants.MAX_LENGTH / 4) || !(bytes <= ceiling)) {
      throw new VlkError('ERR_VLK_OUT_OF_MEMORY', `pairs: a ${u} x ${v} grid has ${count} ordered pairs (${bytes} bytes), more than this machine's memory (${ceiling} bytes) or the largest typed array`);
    }
    const pairs = new Int32Array(2 * count);
    let p = 0;
    for (let ra = 0; ra < u; ra++) {
      for (let ca = 0; ca < v; ca++) {
        for (let rb = ra; rb < u; rb++) {
          for (let cb = ca; cb < v; cb++) {
            if (rb === ra && cb === ca) continue;
            pairs[p++] = grid[ra * v + ca];
            pairs[p++] = grid[rb * v + cb];
          }
        }
      }
    }
    return { grid, pairs };
  }, gridOrder);
}
