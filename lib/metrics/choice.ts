// Graded-ranking and choice metrics (lib, pure TypeScript): NDCG@K over graded relevance, ARO
// caption choice (VG-Relation / VG-Attribution macro-averaged per group, COCO / Flickr30k-Order),
// SugarCrepe (strict >, per category and family) and the HPIR confidence-weighted preference accuracy.
import { types } from 'node:util';
import { describe } from '../args';
import { VlkError } from '../errors';
import {
  readFinite,
  readKs,
  readNames,
  readObject,
  readScores,
  readTies,
  readVector,
  type ScoreMatrix,
  type ScoreMatrixInput,
  type Ties,
} from './common';

/** NDCG gain of a relevance grade: `'linear'` g = rel (sklearn's ndcg_score), `'exponential'` g = 2^rel - 1. */
export type NdcgGain = 'linear' | 'exponential';

/** NDCG report: mean NDCG@K in percent keyed `ndcg<K>`. */
export interface NdcgReport {
  ndcg: Record<string, number>;
  queries: number;
  /** Queries without any relevant item (ideal DCG 0): they count as 0, as in sklearn. */
  noRelevant: number;
  /** Queries where two items of different relevance tie in score in reach of the top K (score inputs only). */
  ties?: number;
}

function dcg(gains: ArrayLike<number>, k: number): number {
  let s = 0;
  const n = Math.min(k, gains.length);
  for (let i = 0; i < n; i++) s += gains[i] / Math.log2(i + 2);
  return s;
}

/**
 * NDCG@K (default K = 10), in percent: DCG@K = sum over ranks i = 1..K of g(rel_i) / log2(i + 1),
 * divided by the DCG@K of the ideal order of all the query's relevance grades; gain `'linear'`
 * (default, g = rel, as sklearn's ndcg_score) or `'exponential'` (g = 2^rel - 1, Burges et al.).
 * `relevance`: Q x N grades >= 0 (0 = not relevant). From a Q x N score matrix (ties: 'stable' by
 * column; 'optimistic' puts the more relevant item first within equal scores, 'pessimistic' the
 * less relevant) or from ranked lists ({ ranking: Q lists of column ids, best first }).
 *
 * @example
 * ```ts
 * ndcg({ ranking: [[2, 0, 1]], relevance: { data: new Float64Array([3, 0, 1]), rows: 1, cols: 3 }, k: 3 });
 * // DCG = 1 + 3/log2(3) = 2.893, ideal = 3 + 1/log2(3) = 3.631, NDCG@3 = 79.67
 * ```
 * @throws VlkError ERR_VLK_TYPE, ERR_VLK_SHAPE, ERR_VLK_EMPTY, ERR_VLK_NON_FINITE, ERR_VLK_INVALID_ARG, ERR_VLK_INVALID_K
 */
export function ndcg(
  input:
    | { scores: ScoreMatrixInput; relevance: ScoreMatrixInput; k?: number | readonly number[]; gain?: NdcgGain; ties?: Ties }
    | { ranking: ReadonlyArray<readonly number[] | Int32Array>; relevance: ScoreMatrixInput; k?: number | readonly number[]; gain?: NdcgGain },
): NdcgReport {
  const obj = readObject(input, 'ndcg');
  const ks = readKs(obj.k, 'ndcg.k', [10]);
  const gainName = obj.gain === undefined ? 'linear' : obj.gain;
  if (gainName !== 'linear' && gainName !== 'exponential') {
    throw new VlkError('ERR_VLK_INVALID_ARG', `ndcg.gain: expected 'linear' or 'exponential', got ${describe(obj.gain)}`);
  }
  const gain = (rel: number) => (gainName === 'linear' ? rel : 2 ** rel - 1);
  let rel: ScoreMatrix;
  let lists: ArrayLike<number>[];
  let tieCount: number | undefined;
  const len = Math.max(...ks);
  if (obj.scores !== undefined) {
    const ties = readTies(obj.ties, 'ndcg.ties');
    // Either matrix may carry the shape: a plain array takes it from the other.
    let m: ScoreMatrix;
    if (types.isTypedArray(obj.scores)) {
      rel = readScores(obj.relevance, 'ndcg.relevance', {});
      m = readScores(obj.scores, 'ndcg.scores', { rows: rel.rows, cols: rel.cols });
    } else {
      m = readScores(obj.scores, 'ndcg.scores', {});
      rel = readScores(obj.relevance, 'ndcg.relevance', { rows: m.rows, cols: m.cols });
    }
    lists = [];
    tieCount = 0;
    for (let q = 0; q < m.rows; q++) {
      const r = (j: number) => rel.data[q * rel.cols + j];
      const key = ties === 'stable' ? () => 0 : ties === 'optimistic' ? (j: number) => -r(j) : r;
      const list = topColumns(m, q, Math.min(len, m.cols), key);
      lists.push(list);
      const limit = m.data[q * m.cols + list[list.length - 1]];
      const grade = new Map<number, number>();
      for (let j = 0; j < m.cols; j++) {
        const v = m.data[q * m.cols + j];
        if (v < limit) continue;
        const g = grade.get(v);
        if (g === undefined) grade.set(v, r(j));
        else if (g !== r(j)) {
          tieCount++;
          break;
        }
      }
    }
  } else {
    if (!Array.isArray(obj.ranking)) throw new VlkError('ERR_VLK_TYPE', `ndcg.ranking: expected an array of ranked lists, got ${describe(obj.ranking)}`);
    rel = readScores(obj.relevance, 'ndcg.relevance', { rows: obj.ranking.length });
    lists = obj.ranking.map((list, q) => {
      if (!(Array.isArray(list) || types.isInt32Array(list))) {
        throw new VlkError('ERR_VLK_TYPE', `ndcg.ranking[${q}]: expected an array of column ids, got ${describe(list)}`);
      }
      const seen = new Set<number>();
      for (let i = 0; i < list.length; i++) {
        const id = list[i];
        if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= rel.cols) {
          throw new VlkError('ERR_VLK_INVALID_ARG', `ndcg.ranking[${q}][${i}]: ${describe(id)} is not a column in 0..${rel.cols - 1}`);
        }
        if (seen.has(id)) throw new VlkError('ERR_VLK_INVALID_ARG', `ndcg.ranking[${q}]: id ${id} appears twice (position ${i})`);
        seen.add(id);
      }
      return list;
    });
  }
  for (let i = 0; i < rel.data.length; i++) {
    if (rel.data[i] < 0) {
      throw new VlkError('ERR_VLK_INVALID_ARG', `ndcg.relevance: entry (${Math.floor(i / rel.cols)}, ${i % rel.cols}) is ${rel.data[i]}; grades must be >= 0`);
    }
  }
  const sums = new Float64Array(ks.length);
  let noRelevant = 0;
  for (let q = 0; q < rel.rows; q++) {
    const row = rel.data.subarray(q * rel.cols, (q + 1) * rel.cols);
    const ideal = Float64Array.from(row, gain).sort().reverse();
    if (ideal[0] === 0) {
      noRelevant++;
      continue;
    }
    const got = Float64Array.from(lists[q], (j) => gain(row[j]));
    ks.forEach((k, i) => (sums[i] += dcg(got, k) / dcg(ideal, k)));
  }
  const out: NdcgReport = { ndcg: {}, queries: rel.rows, noRelevant };
  ks.forEach((k, i) => (out.ndcg[`ndcg${k}`] = (100 * sums[i]) / rel.rows));
  if (tieCount !== undefined) out.ties = tieCount;
  return out;
}

// The `len` best columns of row q by descending score, then ascending key, then column.
function topColumns(m: ScoreMatrix, q: number, len: number, key: (j: number) => number): number[] {
  const base = q * m.cols;
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

/** The ARO sets: the first two choose between [false, true] captions, the Order sets find index 0 of 5. */
export type AroSet = 'vg-relation' | 'vg-attribution' | 'coco-order' | 'flickr30k-order';

/** ARO report (percent). */
export interface AroReport {
  set: AroSet;
  /** Over all samples (ARO's "Accuracy"; "Precision@1" of the Order sets). */
  accuracy: number;
  /** VG sets: mean of the kept groups' accuracies (the headline). */
  macro?: number;
  /** VG sets: each kept group's accuracy and sample count. */
  groups?: Record<string, { accuracy: number; count: number }>;
  /** VG sets: groups left out (fewer than minGroupSize samples, or in excludeGroups). */
  droppedGroups?: number;
  samples: number;
  /** Samples whose true option tied the best other option exactly (counted wrong in VG sets, right in Order sets). */
  ties: number;
}

/**
 * ARO caption choice, argmax = first maximum as the benchmark's numpy code: VG-Relation /
 * VG-Attribution have options [false, true] (S x 2 scores; correct iff the true caption scores
 * strictly higher, so an exact tie counts WRONG), accuracy per group (relation name; for VG-A the
 * attribute pair "a_b") and the macro average over groups with at least `minGroupSize` samples
 * (default 25 for VG-Attribution as ARO's code, 1 for VG-Relation) not in `excludeGroups` (e.g.
 * the symmetric relations some reports drop). COCO-Order / Flickr30k-Order: S x O scores with the
 * original caption at index 0, correct iff it scores highest (a tie with a perturbation counts RIGHT).
 *
 * @example
 * ```ts
 * aro({ set: 'vg-relation', scores: { data: s, rows: 23937, cols: 2 }, groups: relationNames }).macro;
 * ```
 * @throws VlkError ERR_VLK_TYPE, ERR_VLK_SHAPE, ERR_VLK_EMPTY, ERR_VLK_NON_FINITE, ERR_VLK_INVALID_ARG
 */
export function aro(input: {
  set: AroSet;
  scores: ScoreMatrixInput;
  groups?: readonly string[];
  minGroupSize?: number;
  excludeGroups?: readonly string[];
}): AroReport {
  const obj = readObject(input, 'aro');
  const set = obj.set;
  if (set !== 'vg-relation' && set !== 'vg-attribution' && set !== 'coco-order' && set !== 'flickr30k-order') {
    throw new VlkError(
      'ERR_VLK_INVALID_ARG',
      `aro.set: expected 'vg-relation', 'vg-attribution', 'coco-order' or 'flickr30k-order', got ${describe(set)}`,
    );
  }
  const vg = set === 'vg-relation' || set === 'vg-attribution';
  const m = readScores(obj.scores, 'aro.scores', vg ? { cols: 2 } : {});
  if (!vg && m.cols < 2) throw new VlkError('ERR_VLK_SHAPE', `aro.scores: ${m.cols} option per sample, expected at least 2`);
  const correct = new Uint8Array(m.rows);
  let ties = 0;
  for (let i = 0; i < m.rows; i++) {
    const row = m.data.subarray(i * m.cols, (i + 1) * m.cols);
    if (vg) {
      correct[i] = row[1] > row[0] ? 1 : 0;
      if (row[1] === row[0]) ties++;
    } else {
      let ok = 1;
      let tie = false;
      for (let j = 1; j < m.cols; j++) {
        if (row[j] > row[0]) ok = 0;
        else if (row[j] === row[0]) tie = true;
      }
      correct[i] = ok;
      if (tie && ok) ties++;
    }
  }
  let right = 0;
  for (let i = 0; i < m.rows; i++) right += correct[i];
  const report: AroReport = { set, accuracy: (100 * right) / m.rows, samples: m.rows, ties };
  if (!vg) return report;
  const groups = readNames(obj.groups, 'aro.groups');
  if (groups.length !== m.rows) throw new VlkError('ERR_VLK_SHAPE', `aro.groups: ${groups.length} labels, expected ${m.rows} (one per sample)`);
  let minGroupSize = set === 'vg-attribution' ? 25 : 1;
  if (obj.minGroupSize !== undefined) {
    if (typeof obj.minGroupSize !== 'number' || !Number.isSafeInteger(obj.minGroupSize) || obj.minGroupSize < 1) {
      throw new VlkError('ERR_VLK_INVALID_ARG', `aro.minGroupSize: expected a positive integer, got ${describe(obj.minGroupSize)}`);
    }
    minGroupSize = obj.minGroupSize;
  }
  const excluded = new Set(obj.excludeGroups === undefined ? [] : readNames(obj.excludeGroups, 'aro.excludeGroups'));
  const tally = new Map<string, { right: number; count: number }>();
  for (let i = 0; i < m.rows; i++) {
    const t = tally.get(groups[i]) ?? { right: 0, count: 0 };
    t.right += correct[i];
    t.count++;
    tally.set(groups[i], t);
  }
  const kept: Record<string, { accuracy: number; count: number }> = {};
  let dropped = 0;
  for (const name of [...tally.keys()].sort()) {
    const t = tally.get(name)!;
    if (t.count < minGroupSize || excluded.has(name)) dropped++;
    else kept[name] = { accuracy: (100 * t.right) / t.count, count: t.count };
  }
  const names = Object.keys(kept);
  if (names.length === 0) {
    throw new VlkError('ERR_VLK_EMPTY', `aro: no group has ${minGroupSize} or more samples outside excludeGroups (${tally.size} groups)`);
  }
  report.macro = names.reduce((s, n) => s + kept[n].accuracy, 0) / names.length;
  report.groups = kept;
  report.droppedGroups = dropped;
  return report;
}

/** SugarCrepe report (percent). */
export interface SugarCrepeReport {
  categories: Record<string, { accuracy: number; count: number; ties: number }>;
  /** Mean of the category accuracies within each family present (replace, swap, add). */
  families: Record<string, number>;
  /** Mean of all category accuracies. */
  mean: number;
}

/**
 * SugarCrepe: per category (replace-obj/att/rel, swap-obj/att, add-obj/att; '-' or '_'), accuracy
 * = share of samples with s(image, positive) > s(image, negative) strictly (an exact tie counts
 * wrong), the mean of the categories within each family, and the mean over all categories.
 *
 * @example
 * ```ts
 * sugarcrepe({ categories: { 'replace-obj': { positive: pos, negative: neg } } }).families.replace;
 * ```
 * @throws VlkError ERR_VLK_TYPE, ERR_VLK_SHAPE, ERR_VLK_EMPTY, ERR_VLK_NON_FINITE, ERR_VLK_INVALID_ARG (an unknown family)
 */
export function sugarcrepe(input: {
  categories: Record<string, { positive: Float32Array | Float64Array | readonly number[]; negative: Float32Array | Float64Array | readonly number[] }>;
}): SugarCrepeReport {
  const obj = readObject(input, 'sugarcrepe');
  const cats = readObject(obj.categories, 'sugarcrepe.categories');
  const names = Object.keys(cats);
  if (names.length === 0) throw new VlkError('ERR_VLK_EMPTY', 'sugarcrepe.categories: no categories');
  const categories: SugarCrepeReport['categories'] = {};
  const byFamily = new Map<string, number[]>();
  for (const name of names) {
    const at = `sugarcrepe.categories.${name}`;
    const family = name.split(/[-_]/)[0];
    if (family !== 'replace' && family !== 'swap' && family !== 'add') {
      throw new VlkError('ERR_VLK_INVALID_ARG', `${at}: the family "${family}" is not replace, swap or add`);
    }
    const c = readObject(cats[name], at);
    const pos = readVector(c.positive, `${at}.positive`);
    const neg = readVector(c.negative, `${at}.negative`);
    if (neg.length !== pos.length) throw new VlkError('ERR_VLK_SHAPE', `${at}.negative: ${neg.length} scores, expected ${pos.length}`);
    if (pos.length === 0) throw new VlkError('ERR_VLK_EMPTY', `${at}: no samples`);
    let right = 0;
    let ties = 0;
    for (let i = 0; i < pos.length; i++) {
      if (pos[i] > neg[i]) right++;
      else if (pos[i] === neg[i]) ties++;
    }
    categories[name] = { accuracy: (100 * right) / pos.length, count: pos.length, ties };
    byFamily.set(family, [...(byFamily.get(family) ?? []), categories[name].accuracy]);
  }
  const families: Record<string, number> = {};
  for (const [f, list] of byFamily) families[f] = list.reduce((s, v) => s + v, 0) / list.length;
  return { categories, families, mean: names.reduce((s, n) => s + categories[n].accuracy, 0) / names.length };
}

/** One human comparison of two result groups for a query. */
export interface HpirComparison {
  /** The model's scores s(q, x) of group A's images (their mean is the group's score), or that mean. */
  a: number | Float32Array | Float64Array | readonly number[];
  b: number | Float32Array | Float64Array | readonly number[];
  /** The group the annotators preferred. */
  preferred: 'a' | 'b';
  /** Fraction of annotators agreeing, in [0, 1]. */
  confidence: number;
  /** 'accuracy', 'aesthetic', ... (default 'all'). */
  aspect?: string;
}

/** HPIR report (percent). */
export interface HpirReport {
  aspects: Record<string, { accuracy: number; comparisons: number; weight: number; ties: number }>;
}

/**
 * HPIR-style preference accuracy (papers.md 000, proposed formula): per aspect,
 * sum_c conf_c * 1[the model prefers the human-preferred group] / sum_c conf_c, in percent; the
 * model prefers the group with the higher mean score, strictly (equal means count as not
 * preferring it).
 *
 * @example
 * ```ts
 * hpir({ comparisons: [{ a: [0.3, 0.2], b: [0.1], preferred: 'a', confidence: 0.8, aspect: 'aesthetic' }] });
 * // { aspects: { aesthetic: { accuracy: 100, comparisons: 1, weight: 0.8, ties: 0 } } }
 * ```
 * @throws VlkError ERR_VLK_TYPE, ERR_VLK_EMPTY, ERR_VLK_NON_FINITE, ERR_VLK_INVALID_ARG
 */
export function hpir(input: { comparisons: readonly HpirComparison[] }): HpirReport {
  const obj = readObject(input, 'hpir');
  const list = obj.comparisons;
  if (!Array.isArray(list)) throw new VlkError('ERR_VLK_TYPE', `hpir.comparisons: expected an array, got ${describe(list)}`);
  if (list.length === 0) throw new VlkError('ERR_VLK_EMPTY', 'hpir.comparisons: no comparisons');
  const groupScore = (v: unknown, name: string): number => {
    if (typeof v === 'number') return readFinite(v, name);
    const xs = readVector(v, name);
    if (xs.length === 0) throw new VlkError('ERR_VLK_EMPTY', `${name}: an empty group`);
    return xs.reduce((s, x) => s + x, 0) / xs.length;
  };
  const acc = new Map<string, { right: number; weight: number; comparisons: number; ties: number }>();
  list.forEach((c, i) => {
    const at = `hpir.comparisons[${i}]`;
    const o = readObject(c, at);
    const a = groupScore(o.a, `${at}.a`);
    const b = groupScore(o.b, `${at}.b`);
    if (o.preferred !== 'a' && o.preferred !== 'b') {
      throw new VlkError('ERR_VLK_INVALID_ARG', `${at}.preferred: expected 'a' or 'b', got ${describe(o.preferred)}`);
    }
    const conf = readFinite(o.confidence, `${at}.confidence`);
    if (conf < 0 || conf > 1) throw new VlkError('ERR_VLK_INVALID_ARG', `${at}.confidence: ${conf} is not in [0, 1]`);
    const aspect = o.aspect === undefined ? 'all' : o.aspect;
    if (typeof aspect !== 'string') throw new VlkError('ERR_VLK_TYPE', `${at}.aspect: expected a string, got ${describe(aspect)}`);
    const t = acc.get(aspect) ?? { right: 0, weight: 0, comparisons: 0, ties: 0 };
    const ok = o.preferred === 'a' ? a > b : b > a;
    if (ok) t.right += conf;
    if (a === b) t.ties++;
    t.weight += conf;
    t.comparisons++;
    acc.set(aspect, t);
  });
  const aspects: HpirReport['aspects'] = {};
  for (const [name, t] of acc) {
    if (t.weight === 0) throw new VlkError('ERR_VLK_INVALID_ARG', `hpir: aspect "${name}" has total confidence 0`);
    aspects[name] = { accuracy: (100 * t.right) / t.weight, comparisons: t.comparisons, weight: t.weight, ties: t.ties };
  }
  return { aspects };
}
