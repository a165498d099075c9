// Composed-image-retrieval metrics (lib, pure TypeScript): CIRR (Recall@K with the reference removed,
// Recall_subset@K, Avg), FashionIQ (R@10/R@50 per category), GeneCIS (R@1/2/3 over candidate sets)
// and CIRCO (mAP@K with several ground truths), from ranks, ranked lists or Q x N score matrices.
import { types } from 'node:util';
import { describe } from '../args';
import { VlkError } from '../errors';
import {
  ABSENT,
  bestRank,
  indexNames,
  lookup,
  readKs,
  readNames,
  readObject,
  readRanks,
  readScores,
  readTies,
  recallAt,
  type RanksInput,
  type ScoreMatrix,
  type ScoreMatrixInput,
  type Ties,
} from './common';

/** A CIRR query as the metric needs it (the shape {@link loadCirr} returns). */
export interface CirrQueryRef {
  reference: string;
  /** `target_hard`; null in the hidden test split. */
  target: string | null;
  /** `img_set.members` (6 names, the reference among them). */
  members: readonly string[];
}

/** CIRR report (percent): R@1/5/10/50 with the reference removed, Recall_subset@1/2/3, Avg. */
export interface CirrReport {
  r1: number;
  r5: number;
  r10: number;
  r50: number;
  subset: { r1: number; r2: number; r3: number };
  /** (R@5 + Recall_subset@1) / 2, the CIRR headline. */
  avg: number;
  queries: number;
  /** Queries whose target tied another candidate (score inputs only). */
  ties?: { recall: number; subset: number };
}

/** CIRR from a Q x N score matrix over a named gallery. */
export interface CirrScoresInput {
  scores: ScoreMatrixInput;
  gallery: readonly string[];
  queries: readonly CirrQueryRef[];
  ties?: Ties;
}

/** CIRR from 0-based ranks: global (reference removed) and within the subset (ABSENT = 2^31 - 1: the target is not a member). */
export interface CirrRanksInput {
  ranks: RanksInput;
  subsetRanks: RanksInput;
}

/** Gallery positions of a CIRR query: target, reference, subset members minus the reference. */
export interface CirrResolved {
  target: number;
  reference: number;
  subset: number[];
  /** The target is one of the subset members. */
  targetInSubset: boolean;
}

/**
 * Resolves the names of CIRR queries against a gallery (the official protocol's name lookups).
 * @throws VlkError ERR_VLK_TYPE, ERR_VLK_INVALID_ARG (an unknown name, a missing target, target = reference)
 */
export function resolveCirr(queries: unknown, gallery: unknown, name: string): CirrResolved[] {
  const names = readNames(gallery, `${name}.gallery`);
  const index = indexNames(names, `${name}.gallery`);
  if (!Array.isArray(queries)) throw new VlkError('ERR_VLK_TYPE', `${name}.queries: expected an array, got ${describe(queries)}`);
  return queries.map((q, i) => {
    const at = `${name}.queries[${i}]`;
    const o = readObject(q, at);
    if (o.target === null || o.target === undefined) {
      throw new VlkError('ERR_VLK_INVALID_ARG', `${at}.target: missing (the CIRR test1 split hides its targets)`);
    }
    const target = lookup(index, o.target, `${at}.target`, `${name}.gallery`);
    const reference = lookup(index, o.reference, `${at}.reference`, `${name}.gallery`);
    if (target === reference) {
      throw new VlkError('ERR_VLK_INVALID_ARG', `${at}: target "${String(o.target)}" is the reference, which the protocol removes`);
    }
    const members = readNames(o.members, `${at}.members`);
    const subset: number[] = [];
    for (let m = 0; m < members.length; m++) {
      const g = lookup(index, members[m], `${at}.members[${m}]`, `${name}.gallery`);
      if (g !== reference && !subset.includes(g)) subset.push(g);
    }
    return { target, reference, subset, targetInSubset: subset.includes(target) };
  });
}

function cirrReport(recall: Int32Array, subset: Int32Array, ties?: { recall: number; subset: number }): CirrReport {
  const r = recallAt(recall, [1, 5, 10, 50]);
  const s = recallAt(subset, [1, 2, 3]);
  const out: CirrReport = {
    r1: r.r1,
    r5: r.r5,
    r10: r.r10,
    r50: r.r50,
    subset: { r1: s.r1, r2: s.r2, r3: s.r3 },
    avg: (r.r5 + s.r1) / 2,
    queries: recall.length,
  };
  if (ties) out.ties = ties;
  return out;
}

/**
 * CIRR (rc2): Recall@1/5/10/50 over the split's gallery with the query's reference image removed,
 * Recall_subset@1/2/3 over its `img_set.members` minus the reference (ordered by the same scores;
 * a target outside the members counts as not found, as in the official script), and
 * Avg = (R@5 + Recall_subset@1) / 2, all in percent. From a Q x N score matrix with the gallery's
 * names and the queries (the output of {@link loadCirr}), or from ranks.
 *
 * @example
 * ```ts
 * const { queries, gallery } = loadCirr('/data/cirr', 'val');
 * const report = cirr({ scores: { data: sims, rows: queries.length, cols: gallery.length }, gallery, queries });
 * report.avg;
 * ```
 * @throws VlkError ERR_VLK_TYPE, ERR_VLK_SHAPE, ERR_VLK_EMPTY, ERR_VLK_NON_FINITE, ERR_VLK_INVALID_ARG
 *   (an unknown name, a query without target)
 */
export function cirr(input: CirrScoresInput | CirrRanksInput): CirrReport {
  const obj = readObject(input, 'cirr');
  if (obj.scores === undefined) {
    const recall = readRanks(obj.ranks, 'cirr.ranks');
    const subset = readRanks(obj.subsetRanks, 'cirr.subsetRanks');
    if (subset.length !== recall.length) {
      throw new VlkError('ERR_VLK_SHAPE', `cirr.subsetRanks: ${subset.length} ranks, expected ${recall.length} (one per query)`);
    }
    return cirrReport(recall, subset);
  }
  const ties = readTies(obj.ties, 'cirr.ties');
  const resolved = resolveCirr(obj.queries, obj.gallery, 'cirr');
  const n = (obj.gallery as string[]).length;
  if (resolved.length === 0) throw new VlkError('ERR_VLK_EMPTY', 'cirr.queries: no queries');
  const m = readScores(obj.scores, 'cirr.scores', { rows: resolved.length, cols: n });
  const recall = new Int32Array(m.rows);
  const subset = new Int32Array(m.rows);
  let tiesRecall = 0;
  let tiesSubset = 0;
  for (let q = 0; q < m.rows; q++) {
    const r = resolved[q];
    const g = bestRank(m, q, [r.target], ties, 0, n, r.reference);
    recall[q] = g.rank;
    if (g.tie) tiesRecall++;
    if (!r.targetInSubset) {
      subset[q] = ABSENT;
      continue;
    }
    const s = subsetRank(m, q, r.target, r.subset, ties);
    subset[q] = s.rank;
    if (s.tie) tiesSubset++;
  }
  return cirrReport(recall, subset, { recall: tiesRecall, subset: tiesSubset });
}

// Rank of `target` among the gallery columns `members` of row q, ties by gallery position.
function subsetRank(m: ScoreMatrix, q: number, target: number, members: readonly number[], ties: Ties): { rank: number; tie: boolean } {
  const s = m.data[q * m.cols + target];
  let greater = 0;
  let before = 0;
  let after = 0;
  for (const j of members) {
    if (j === target) continue;
    const v = m.data[q * m.cols + j];
    if (v > s) greater++;
    else if (v === s) {
      if (j < target) before++;
      else after++;
    }
  }
  const rank = ties === 'optimistic' ? greater : ties === 'pessimistic' ? greater + before + after : greater + before;
  return { rank, tie: before + after > 0 };
}

/** A FashionIQ query as the metric needs it (the shape {@link loadFashionIq} returns). */
export interface FashionIqQueryRef {
  /** The reference (`candidate`) image; it stays in the gallery. */
  reference: string;
  target: string | null;
}

/** One FashionIQ category: scores over its gallery, or ranks. */
export type FashionIqCategoryInput =
  | { scores: ScoreMatrixInput; gallery: readonly string[]; queries: readonly FashionIqQueryRef[] }
  | { ranks: RanksInput };

/** FashionIQ report (percent). */
export interface FashionIqReport {
  categories: Record<string, { r10: number; r50: number; queries: number; ties?: number }>;
  /** Means over the categories given. */
  average: { r10: number; r50: number };
  /** (mean R@10 + mean R@50) / 2. */
  overall: number;
}

/**
 * FashionIQ: per category Recall@10 and Recall@50 over that category's whole gallery (the reference
 * image is NOT removed, as in the standard script), their means over the categories given, and
 * overall = (mean R@10 + mean R@50) / 2, in percent.
 *
 * @example
 * ```ts
 * const dress = loadFashionIq('/data/fashioniq', 'dress', 'val');
 * fashionIq({ categories: { dress: { scores: { data: sims, rows: 2017, cols: 3817 }, ...dress } } }).overall;
 * ```
 * @throws VlkError ERR_VLK_TYPE, ERR_VLK_SHAPE, ERR_VLK_EMPTY, ERR_VLK_NON_FINITE, ERR_VLK_INVALID_ARG
 */
export function fashionIq(input: { categories: Record<string, FashionIqCategoryInput>; ties?: Ties }): FashionIqReport {
  const obj = readObject(input, 'fashionIq');
  const ties = readTies(obj.ties, 'fashionIq.ties');
  const cats = readObject(obj.categories, 'fashionIq.categories');
  const names = Object.keys(cats);
  if (names.length === 0) throw new VlkError('ERR_VLK_EMPTY', 'fashionIq.categories: no categories');
  const categories: FashionIqReport['categories'] = {};
  for (const cat of names) {
    const at = `fashionIq.categories.${cat}`;
    const c = readObject(cats[cat], at);
    if (c.scores === undefined) {
      const r = recallAt(readRanks(c.ranks, `${at}.ranks`), [10, 50]);
      categories[cat] = { r10: r.r10, r50: r.r50, queries: (c.ranks as ArrayLike<number>).length };
      continue;
    }
    const gallery = readNames(c.gallery, `${at}.gallery`);
    const index = indexNames(gallery, `${at}.gallery`);
    if (!Array.isArray(c.queries)) throw new VlkError('ERR_VLK_TYPE', `${at}.queries: expected an array, got ${describe(c.queries)}`);
    if (c.queries.length === 0) throw new VlkError('ERR_VLK_EMPTY', `${at}.queries: no queries`);
    const targets = c.queries.map((q, i) => {
      const o = readObject(q, `${at}.queries[${i}]`);
      if (o.target === null || o.target === undefined) {
        throw new VlkError('ERR_VLK_INVALID_ARG', `${at}.queries[${i}].target: missing (the FashionIQ test split hides its targets)`);
      }
      return lookup(index, o.target, `${at}.queries[${i}].target`, `${at}.gallery`);
    });
    const m = readScores(c.scores, `${at}.scores`, { rows: targets.length, cols: gallery.length });
    const ranks = new Int32Array(m.rows);
    let tieCount = 0;
    for (let q = 0; q < m.rows; q++) {
      const r = bestRank(m, q, [targets[q]], ties);
      ranks[q] = r.rank;
      if (r.tie) tieCount++;
    }
    const r = recallAt(ranks, [10, 50]);
    categories[cat] = { r10: r.r10, r50: r.r50, queries: m.rows, ties: tieCount };
  }
  const r10 = names.reduce((s, c) => s + categories[c].r10, 0) / names.length;
  const r50 = names.reduce((s, c) => s + categories[c].r50, 0) / names.length;
  return { categories, average: { r10, r50 }, overall: (r10 + r50) / 2 };
}

/** GeneCIS report (percent). */
export interface GenecisReport {
  r1: number;
  r2: number;
  r3: number;
  templates: number;
  /** Templates whose target tied another candidate. */
  ties: number;
}

/**
 * GeneCIS: per template the candidates are [target, ...gallery] (the reference is not a candidate);
 * Recall@1/2/3 in percent = share of templates whose target ranks in the top K of its candidates.
 * `scores`: templates x candidates (a plain array with `candidates`, or a view); `target`: the
 * target's column, one number for all templates (default 0) or one per template. With the default
 * 'stable' ties a target in column 0 that ties a gallery image counts as found (as CPU
 * `torch.sort` does on the official 15-candidate sets).
 *
 * @example
 * ```ts
 * genecis({ scores: { data: s, rows: 1960, cols: 15 } }).r1;
 * ```
 * @throws VlkError ERR_VLK_TYPE, ERR_VLK_SHAPE, ERR_VLK_EMPTY, ERR_VLK_NON_FINITE, ERR_VLK_INVALID_ARG
 */
export function genecis(input: {
  scores: ScoreMatrixInput;
  candidates?: number;
  target?: number | Int32Array | readonly number[];
  ties?: Ties;
}): GenecisReport {
  const obj = readObject(input, 'genecis');
  const ties = readTies(obj.ties, 'genecis.ties');
  let cols: number | undefined;
  if (obj.candidates !== undefined) {
    if (typeof obj.candidates !== 'number' || !Number.isSafeInteger(obj.candidates) || obj.candidates < 2) {
      throw new VlkError('ERR_VLK_INVALID_ARG', `genecis.candidates: expected an integer >= 2, got ${describe(obj.candidates)}`);
    }
    cols = obj.candidates;
  }
  const m = readScores(obj.scores, 'genecis.scores', { cols });
  const target = (q: number): number => {
    const t = obj.target;
    const v = t === undefined ? 0 : typeof t === 'number' ? t : (t as ArrayLike<number>)[q];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= m.cols) {
      throw new VlkError('ERR_VLK_INVALID_ARG', `genecis.target${typeof t === 'number' || t === undefined ? '' : `[${q}]`}: ${describe(v)} is not a column in 0..${m.cols - 1}`);
    }
    return v;
  };
  if (obj.target !== undefined && typeof obj.target !== 'number') {
    if (!(types.isInt32Array(obj.target) || Array.isArray(obj.target))) {
      throw new VlkError('ERR_VLK_TYPE', `genecis.target: expected a number, an Int32Array or a number array, got ${describe(obj.target)}`);
    }
    if ((obj.target as ArrayLike<number>).length !== m.rows) {
      throw new VlkError('ERR_VLK_SHAPE', `genecis.target: ${(obj.target as ArrayLike<number>).length} entries, expected ${m.rows} (one per template)`);
    }
  }
  const ranks = new Int32Array(m.rows);
  let tieCount = 0;
  for (let q = 0; q < m.rows; q++) {
    const r = bestRank(m, q, [target(q)], ties);
    ranks[q] = r.rank;
    if (r.tie) tieCount++;
  }
  const r = recallAt(ranks, [1, 2, 3]);
  return { r1: r.r1, r2: r.r2, r3: r.r3, templates: m.rows, ties: tieCount };
}

/** Ground truths per query: arrays of ids, or CSR { offsets (Q + 1), ids }. */
export type GroundTruthInput = ReadonlyArray<readonly number[] | Int32Array> | { offsets: Int32Array | readonly number[]; ids: Int32Array | readonly number[] };

function readGroundTruth(value: unknown, name: string, queries: number | undefined): Set<number>[] {
  const sets: Set<number>[] = [];
  const add = (list: ArrayLike<unknown>, at: string) => {
    const set = new Set<number>();
    for (let j = 0; j < list.length; j++) {
      const id = list[j];
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
        throw new VlkError('ERR_VLK_INVALID_ARG', `${at}[${j}]: expected a non-negative integer id, got ${describe(id)}`);
      }
      set.add(id);
    }
    if (set.size === 0) throw new VlkError('ERR_VLK_EMPTY', `${at}: no ground truth`);
    sets.push(set);
  };
  if (Array.isArray(value)) {
    value.forEach((list, q) => {
      if (!(Array.isArray(list) || types.isInt32Array(list))) {
        throw new VlkError('ERR_VLK_TYPE', `${name}[${q}]: expected an array of ids, got ${describe(list)}`);
      }
      add(list as ArrayLike<unknown>, `${name}[${q}]`);
    });
  } else {
    const o = readObject(value, name);
    const offsets = o.offsets as ArrayLike<number>;
    const ids = o.ids as ArrayLike<unknown>;
    if (!(Array.isArray(offsets) || types.isInt32Array(offsets)) || !(Array.isArray(ids) || types.isInt32Array(ids))) {
      throw new VlkError('ERR_VLK_TYPE', `${name}: expected { offsets, ids } as Int32Arrays or number arrays`);
    }
    if (offsets.length < 1 || offsets[0] !== 0 || offsets[offsets.length - 1] !== ids.length) {
      throw new VlkError('ERR_VLK_SHAPE', `${name}.offsets: must start at 0 and end at ids.length (${ids.length})`);
    }
    for (let q = 0; q + 1 < offsets.length; q++) {
      if (!(offsets[q + 1] >= offsets[q])) {
        throw new VlkError('ERR_VLK_SHAPE', `${name}.offsets: decreases at ${q} (${offsets[q]} > ${offsets[q + 1]})`);
      }
      add(Array.prototype.slice.call(ids, offsets[q], offsets[q + 1]), `${name} query ${q}`);
    }
  }
  if (queries !== undefined && sets.length !== queries) {
    throw new VlkError('ERR_VLK_SHAPE', `${name}: ${sets.length} queries, expected ${queries}`);
  }
  if (sets.length === 0) throw new VlkError('ERR_VLK_EMPTY', `${name}: no queries`);
  return sets;
}

/** CIRCO report: mAP@K in percent keyed `map<K>`. */
export interface CircoReport {
  map: Record<string, number>;
  queries: number;
  /** Queries where a ground truth in reach of the listed top ties a non-ground-truth item (score inputs only). */
  ties?: number;
}

/** AP@K of one ranked list (CIRCO): (1 / min(K, |G|)) * sum_{k<=K} rel_k * P@k. */
function apAt(list: ArrayLike<number>, gt: Set<number>, k: number): number {
  let hits = 0;
  let sum = 0;
  const n = Math.min(k, list.length);
  for (let i = 0; i < n; i++) {
    if (gt.has(list[i])) {
      hits++;
      sum += hits / (i + 1);
    }
  }
  return sum / Math.min(k, gt.size);
}

/**
 * Top-`len` columns of row q (insertion into a sorted list of at most `len`): descending score;
 * within equal scores by column ('stable'), ground truths first ('optimistic') or last ('pessimistic').
 */
function topList(m: ScoreMatrix, q: number, len: number, gt: Set<number>, ties: Ties, skip: number): number[] {
  const base = q * m.cols;
  const key = (j: number) => (ties === 'stable' ? 0 : ties === 'optimistic' ? (gt.has(j) ? 0 : 1) : gt.has(j) ? 1 : 0);
  const before = (a: number, b: number) => {
    const sa = m.data[base + a];
    const sb = m.data[base + b];
    if (sa !== sb) return sa > sb;
    const ka = key(a);
    const kb = key(b);
    return ka !== kb ? ka < kb : a < b;
  };
  const list: number[] = [];
  for (let j = 0; j < m.cols; j++) {
    if (j === skip) continue;
    if (list.length === len && !before(j, list[len - 1])) continue;
    let p = list.length < len ? list.length : len - 1;
    if (list.length < len) list.push(j);
    while (p > 0 && before(j, list[p - 1])) {
      list[p] = list[p - 1];
      p--;
    }
    list[p] = j;
  }
  return list;
}

/**
 * CIRCO: mAP@K (default K = 5, 10, 25, 50) with several ground truths per query, AP@K =
 * (1 / min(K, |G|)) * sum over ranks k <= K of rel_k * precision@k, in percent. From ranked lists
 * ({ ranked: Q lists of gallery ids, best first, no repeats; e.g. the top-50 a CIRCO submission
 * holds }) or from a Q x N score matrix ({ scores, exclude?: a column per query to leave out, the
 * reference image, -1 for none; ties: 'stable' by column, 'optimistic' ground truths first within
 * equal scores, 'pessimistic' last }).
 *
 * @example
 * ```ts
 * circo({ ranked: [[4, 9, 1]], groundTruth: [[9, 7]] }).map.map5; // (1/2)(1/2) * 100 = 25
 * ```
 * @throws VlkError ERR_VLK_TYPE, ERR_VLK_SHAPE, ERR_VLK_EMPTY, ERR_VLK_NON_FINITE, ERR_VLK_INVALID_ARG, ERR_VLK_INVALID_K
 */
export function circo(
  input:
    | { ranked: ReadonlyArray<readonly number[] | Int32Array>; groundTruth: GroundTruthInput; ks?: readonly number[] }
    | {
        scores: ScoreMatrixInput;
        groundTruth: GroundTruthInput;
        exclude?: Int32Array | readonly number[];
        ks?: readonly number[];
        ties?: Ties;
      },
): CircoReport {
  const obj = readObject(input, 'circo');
  const ks = readKs(obj.ks, 'circo.ks', [5, 10, 25, 50]);
  const sums = new Float64Array(ks.length);
  const finish = (queries: number, ties?: number): CircoReport => {
    const map: Record<string, number> = {};
    ks.forEach((k, i) => (map[`map${k}`] = (100 * sums[i]) / queries));
    const out: CircoReport = { map, queries };
    if (ties !== undefined) out.ties = ties;
    return out;
  };
  if (obj.scores === undefined) {
    if (!Array.isArray(obj.ranked)) throw new VlkError('ERR_VLK_TYPE', `circo.ranked: expected an array of ranked id lists, got ${describe(obj.ranked)}`);
    const gts = readGroundTruth(obj.groundTruth, 'circo.groundTruth', obj.ranked.length);
    obj.ranked.forEach((list, q) => {
      if (!(Array.isArray(list) || types.isInt32Array(list))) {
        throw new VlkError('ERR_VLK_TYPE', `circo.ranked[${q}]: expected an array of ids, got ${describe(list)}`);
      }
      const seen = new Set<number>();
      for (let i = 0; i < list.length; i++) {
        const id = list[i];
        if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
          throw new VlkError('ERR_VLK_INVALID_ARG', `circo.ranked[${q}][${i}]: expected a non-negative integer id, got ${describe(id)}`);
        }
        if (seen.has(id)) throw new VlkError('ERR_VLK_INVALID_ARG', `circo.ranked[${q}]: id ${id} appears twice (position ${i})`);
        seen.add(id);
      }
      ks.forEach((k, i) => (sums[i] += apAt(list, gts[q], k)));
    });
    return finish(gts.length);
  }
  const ties = readTies(obj.ties, 'circo.ties');
  const gts = readGroundTruth(obj.groundTruth, 'circo.groundTruth', undefined);
  const m = readScores(obj.scores, 'circo.scores', { rows: gts.length });
  let exclude: ArrayLike<number> | undefined;
  if (obj.exclude !== undefined) {
    if (!(Array.isArray(obj.exclude) || types.isInt32Array(obj.exclude))) {
      throw new VlkError('ERR_VLK_TYPE', `circo.exclude: expected an Int32Array or a number array, got ${describe(obj.exclude)}`);
    }
    exclude = obj.exclude as ArrayLike<number>;
    if (exclude.length !== m.rows) throw new VlkError('ERR_VLK_SHAPE', `circo.exclude: ${exclude.length} entries, expected ${m.rows}`);
  }
  const len = Math.max(...ks);
  let tieCount = 0;
  for (let q = 0; q < m.rows; q++) {
    const skip = exclude ? exclude[q] : -1;
    if (!Number.isInteger(skip) || skip < -1 || skip >= m.cols) {
      throw new VlkError('ERR_VLK_INVALID_ARG', `circo.exclude[${q}]: ${describe(skip)} is not -1 or a column in 0..${m.cols - 1}`);
    }
    for (const g of gts[q]) {
      if (g >= m.cols) throw new VlkError('ERR_VLK_INVALID_ARG', `circo.groundTruth query ${q}: id ${g} is not a column in 0..${m.cols - 1}`);
      if (g === skip) throw new VlkError('ERR_VLK_INVALID_ARG', `circo.groundTruth query ${q}: id ${g} is the excluded column`);
    }
    const list = topList(m, q, Math.min(len, m.cols - (skip >= 0 ? 1 : 0)), gts[q], ties, skip);
    ks.forEach((k, i) => (sums[i] += apAt(list, gts[q], k)));
    if (tiedWithinList(m, q, list, gts[q], skip)) tieCount++;
  }
  return finish(m.rows, tieCount);
}

// A ground truth with exactly the score of a non-ground-truth item, at a score that reaches the
// listed top (where the tie rule can move the ground truth).
function tiedWithinList(m: ScoreMatrix, q: number, list: number[], gt: Set<number>, skip: number): boolean {
  const base = q * m.cols;
  const limit = m.data[base + list[list.length - 1]];
  const gtScores = new Set<number>();
  for (const g of gt) if (m.data[base + g] >= limit) gtScores.add(m.data[base + g]);
  if (gtScores.size === 0) return false;
  for (let j = 0; j < m.cols; j++) {
    if (j === skip || gt.has(j)) continue;
    if (gtScores.has(m.data[base + j])) return true;
  }
  return false;
}
