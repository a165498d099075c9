// Cross-modal retrieval metrics (lib, pure TypeScript): Recall@K, medr, meanr and rSum from ranks,
// and the Flickr30K / COCO 5K / COCO 1K protocol from ranks or from an images x captions score
// matrix (N x perImage*N row-major, caption c belongs to image floor(c / perImage)).
import { VlkError } from '../errors';
import {
  bestRank,
  meanRank,
  medianRank,
  readKs,
  readObject,
  readPositive,
  readRanks,
  readScores,
  readTies,
  recallAt,
  type RanksInput,
  type ScoreMatrix,
  type ScoreMatrixInput,
  type Ties,
} from './common';

/** One direction of the protocol: Recall@1/5/10 in percent, medr and meanr. */
export interface DirectionReport {
  r1: number;
  r5: number;
  r10: number;
  medr: number;
  meanr: number;
}

/** Flickr30K / COCO report: both directions and rSum (sum of the six recalls, at most 600). */
export interface CrossModalReport {
  i2t: DirectionReport;
  t2i: DirectionReport;
  rsum: number;
  images: number;
  captions: number;
  /** Queries whose best target had an exact tie with another candidate (score inputs only). */
  ties?: { i2t: number; t2i: number };
}

/** COCO 1K report: each field averaged over the folds, and the folds themselves. */
export interface Coco1kReport extends CrossModalReport {
  folds: CrossModalReport[];
}

/** Ranks of the protocol: best 0-based rank per image (i2t) and rank per caption (t2i). */
export interface CrossModalRanks {
  i2t: RanksInput;
  t2i: RanksInput;
  /** Captions per image (default 5): t2i must have perImage x i2t.length entries. */
  perImage?: number;
}

/** A score matrix of images x captions; `images` gives the shape of a plain array. */
export interface CrossModalScores {
  scores: ScoreMatrixInput;
  images?: number;
  perImage?: number;
  ties?: Ties;
}

/**
 * Recall@K in percent from 0-based ranks: 100 * #{rank < K} / count, keyed `r<K>`.
 *
 * @example
 * ```ts
 * recallAtK(new Int32Array([0, 3, 12]), [1, 5, 10]); // { r1: 33.33, r5: 66.67, r10: 66.67 }
 * ```
 * @throws VlkError ERR_VLK_TYPE, ERR_VLK_INVALID_ARG (a negative rank), ERR_VLK_EMPTY, ERR_VLK_INVALID_K
 */
export function recallAtK(ranks: RanksInput, ks: number | readonly number[] = [1, 5, 10]): Record<string, number> {
  return recallAt(readRanks(ranks, 'ranks'), readKs(ks, 'ks', [1, 5, 10]));
}

/**
 * Median rank, floor(median(rank)) + 1, from 0-based ranks (the VSE++ convention).
 *
 * @example
 * ```ts
 * medr([0, 1, 4, 9]); // floor((1 + 4) / 2) + 1 = 3
 * ```
 * @throws VlkError ERR_VLK_TYPE, ERR_VLK_INVALID_ARG, ERR_VLK_EMPTY
 */
export function medr(ranks: RanksInput): number {
  return medianRank(readRanks(ranks, 'ranks'));
}

/**
 * Mean rank, mean(rank) + 1, from 0-based ranks.
 *
 * @example
 * ```ts
 * meanr([0, 1, 4, 9]); // 14 / 4 + 1 = 4.5
 * ```
 * @throws VlkError ERR_VLK_TYPE, ERR_VLK_INVALID_ARG, ERR_VLK_EMPTY
 */
export function meanr(ranks: RanksInput): number {
  return meanRank(readRanks(ranks, 'ranks'));
}

/**
 * rSum: R@1 + R@5 + R@10 of both directions.
 *
 * @example
 * ```ts
 * rSum({ i2t: { r1: 80, r5: 95, r10: 98 }, t2i: { r1: 60, r5: 85, r10: 91 } }); // 509
 * ```
 * @throws VlkError ERR_VLK_TYPE, ERR_VLK_NON_FINITE
 */
export function rSum(report: { i2t: { r1: number; r5: number; r10: number }; t2i: { r1: number; r5: number; r10: number } }): number {
  const r = readObject(report, 'report');
  let sum = 0;
  for (const dir of ['i2t', 't2i'] as const) {
    const d = readObject(r[dir], `report.${dir}`);
    for (const k of ['r1', 'r5', 'r10'] as const) {
      const v = d[k];
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new VlkError('ERR_VLK_NON_FINITE', `report.${dir}.${k}: expected a finite number, got ${String(v)}`);
      }
      sum += v;
    }
  }
  return sum;
}

function direction(ranks: Int32Array): DirectionReport {
  const r = recallAt(ranks, [1, 5, 10]);
  return { r1: r.r1, r5: r.r5, r10: r.r10, medr: medianRank(ranks), meanr: meanRank(ranks) };
}

function reportFromRanks(i2t: Int32Array, t2i: Int32Array, ties?: { i2t: number; t2i: number }): CrossModalReport {
  const a = direction(i2t);
  const b = direction(t2i);
  const out: CrossModalReport = {
    i2t: a,
    t2i: b,
    rsum: a.r1 + a.r5 + a.r10 + b.r1 + b.r5 + b.r10,
    images: i2t.length,
    captions: t2i.length,
  };
  if (ties) out.ties = ties;
  return out;
}

/**
 * Ranks of images 0..n-1 of block [i0, i0 + n) (and their captions) within that block of the matrix:
 * i2t = best rank of the image's perImage captions among the block's captions, t2i = rank of the
 * caption's image among the block's images (the column of a transposed view, read in place).
 */
function blockRanks(m: ScoreMatrix, i0: number, n: number, perImage: number, ties: Ties): CrossModalReport {
  const i2t = new Int32Array(n);
  const t2i = new Int32Array(n * perImage);
  let tiesI2t = 0;
  let tiesT2i = 0;
  const c0 = i0 * perImage;
  for (let i = 0; i < n; i++) {
    const r = bestRank(m, i0 + i, { start: c0 + i * perImage, count: perImage }, ties, c0, c0 + n * perImage);
    i2t[i] = r.rank;
    if (r.tie) tiesI2t++;
  }
  // t2i row by row (each caption's counts accumulate while the matrix streams in memory order).
  const { data, cols } = m;
  const nc = n * perImage;
  const target = new Float64Array(nc);
  for (let c = 0; c < nc; c++) target[c] = data[(i0 + Math.floor(c / perImage)) * cols + c0 + c];
  const greater = new Int32Array(nc);
  const before = new Int32Array(nc);
  const after = new Int32Array(nc);
  for (let i = 0; i < n; i++) {
    const base = (i0 + i) * cols + c0;
    const own0 = i * perImage;
    for (let c = 0; c < nc; c++) {
      if (c >= own0 && c < own0 + perImage) continue;
      const v = data[base + c];
      const s = target[c];
      if (v > s) greater[c]++;
      else if (v === s) {
        if (c >= own0 + perImage) before[c]++;
        else after[c]++;
      }
    }
  }
  for (let c = 0; c < nc; c++) {
    t2i[c] =
      ties === 'optimistic' ? greater[c] : ties === 'pessimistic' ? greater[c] + before[c] + after[c] : greater[c] + before[c];
    if (before[c] + after[c] > 0) tiesT2i++;
  }
  return reportFromRanks(i2t, t2i, { i2t: tiesI2t, t2i: tiesT2i });
}

function readCrossModalScores(input: Record<string, unknown>, name: string): { m: ScoreMatrix; perImage: number; ties: Ties } {
  const perImage = readPositive(input.perImage, `${name}.perImage`, 5);
  const ties = readTies(input.ties, `${name}.ties`);
  let images: number | undefined;
  if (input.images !== undefined) images = readPositive(input.images, `${name}.images`);
  const m = readScores(input.scores, `${name}.scores`, images !== undefined ? { rows: images, cols: images * perImage } : {});
  if (m.cols !== m.rows * perImage) {
    throw new VlkError(
      'ERR_VLK_SHAPE',
      `${name}.scores: ${m.rows} images x ${m.cols} captions, expected ${m.rows * perImage} captions (${perImage} per image)`,
    );
  }
  return { m, perImage, ties };
}

function crossModal(input: CrossModalRanks | CrossModalScores, name: string): CrossModalReport {
  const obj = readObject(input, name);
  if (obj.scores !== undefined) {
    const { m, perImage, ties } = readCrossModalScores(obj, name);
    return blockRanks(m, 0, m.rows, perImage, ties);
  }
  const perImage = readPositive(obj.perImage, `${name}.perImage`, 5);
  const i2t = readRanks(obj.i2t, `${name}.i2t`);
  const t2i = readRanks(obj.t2i, `${name}.t2i`);
  if (t2i.length !== i2t.length * perImage) {
    throw new VlkError(
      'ERR_VLK_SHAPE',
      `${name}: t2i has ${t2i.length} ranks, expected ${perImage} per image x ${i2t.length} images = ${i2t.length * perImage}`,
    );
  }
  return reportFromRanks(i2t, t2i);
}

/**
 * Flickr30K protocol (1,000 test images x 5,000 captions): i2t rank = best 0-based rank of the
 * image's captions, t2i rank = rank of the caption's image; R@1/5/10 in percent, medr =
 * floor(median) + 1, meanr = mean + 1, rsum. From ranks ({ i2t, t2i }) or from a score matrix
 * ({ scores, images?, perImage?, ties? }; ranks in TypeScript, 'stable' ties by default, with the
 * count of queries whose best target tied another candidate).
 *
 * @example
 * ```ts
 * const report = flickr({ scores: { data: sims, rows: 1000, cols: 5000 } });
 * report.t2i.r1; report.rsum;
 * ```
 * @throws VlkError ERR_VLK_TYPE, ERR_VLK_SHAPE, ERR_VLK_EMPTY, ERR_VLK_NON_FINITE, ERR_VLK_INVALID_ARG
 */
export function flickr(input: CrossModalRanks | CrossModalScores): CrossModalReport {
  return crossModal(input, 'flickr');
}

/**
 * COCO 5K protocol: all 5,000 test images x 25,000 captions, computed as {@link flickr}.
 *
 * @example
 * ```ts
 * coco5k({ i2t: ranks.i2t, t2i: ranks.t2i }).rsum;
 * ```
 * @throws VlkError as {@link flickr}
 */
export function coco5k(input: CrossModalRanks | CrossModalScores): CrossModalReport {
  return crossModal(input, 'coco5k');
}

/** COCO 1K input: a full score matrix split into folds, or each fold's own ranks. */
export type Coco1kInput =
  | (CrossModalScores & { folds?: number })
  | { folds: CrossModalRanks[] };

/** Averages per-fold reports into a COCO 1K report (every field, rsum too; ties summed). */
export function averageReports(folds: CrossModalReport[]): Coco1kReport {
  const mean = (pick: (r: CrossModalReport) => number) => folds.reduce((s, r) => s + pick(r), 0) / folds.length;
  const dir = (d: 'i2t' | 't2i'): DirectionReport => ({
    r1: mean((r) => r[d].r1),
    r5: mean((r) => r[d].r5),
    r10: mean((r) => r[d].r10),
    medr: mean((r) => r[d].medr),
    meanr: mean((r) => r[d].meanr),
  });
  const out: Coco1kReport = {
    i2t: dir('i2t'),
    t2i: dir('t2i'),
    rsum: mean((r) => r.rsum),
    images: folds.reduce((s, r) => s + r.images, 0),
    captions: folds.reduce((s, r) => s + r.captions, 0),
    folds,
  };
  if (folds.every((r) => r.ties)) {
    out.ties = {
      i2t: folds.reduce((s, r) => s + r.ties!.i2t, 0),
      t2i: folds.reduce((s, r) => s + r.ties!.t2i, 0),
    };
  }
  return out;
}

/**
 * COCO 1K protocol: the 5,000 test images split into `folds` (default 5) consecutive folds of
 * 1,000 images with their captions (fold f: images 1000f..1000f+999, captions 5000f..5000f+4999),
 * ranks within each fold, every metric (rsum too) averaged over the folds; medr and meanr are the
 * means of the per-fold values. From the full images x captions score matrix (only the diagonal
 * fold blocks are read) or from per-fold ranks ({ folds: [{ i2t, t2i }, ...] }).
 *
 * @example
 * ```ts
 * const r = coco1k({ scores: { data: sims, rows: 5000, cols: 25000 } });
 * r.t2i.r1; r.folds.length; // 5
 * ```
 * @throws VlkError as {@link flickr}; ERR_VLK_SHAPE when the images do not split into equal folds
 */
export function coco1k(input: Coco1kInput): Coco1kReport {
  const obj = readObject(input, 'coco1k');
  if (obj.scores === undefined) {
    if (!Array.isArray(obj.folds) || obj.folds.length === 0) {
      throw new VlkError('ERR_VLK_TYPE', 'coco1k: expected { scores } or { folds: [{ i2t, t2i }, ...] }');
    }
    return averageReports(obj.folds.map((f, i) => crossModal(f as CrossModalRanks, `coco1k.folds[${i}]`)));
  }
  const { m, perImage, ties } = readCrossModalScores(obj, 'coco1k');
  const folds = readPositive(obj.folds, 'coco1k.folds', 5);
  if (m.rows % folds !== 0) {
    throw new VlkError('ERR_VLK_SHAPE', `coco1k.scores: ${m.rows} images do not split into ${folds} equal folds`);
  }
  const n = m.rows / folds;
  const reports: CrossModalReport[] = [];
  for (let f = 0; f < folds; f++) reports.push(blockRanks(m, f * n, n, perImage, ties));
  return averageReports(reports);
}
