// Benchmark metrics (lib, pure TypeScript, synchronous): the field's retrieval and choice metrics
// from ranks, ranked lists or score matrices (Q x N row-major Float32Array / Float64Array), each
// returning a plain JSON-serialisable report with every rate in percent; plus the CIRR, FashionIQ
// and GeneCIS annotation loaders. Definitions and tie rules: docs of each function (papers.md).
import { coco1k, coco5k, flickr, meanr, medr, recallAtK, rSum } from './metrics/retrieval';
import { circo, cirr, fashionIq, genecis } from './metrics/composed';
import { aro, hpir, ndcg, sugarcrepe } from './metrics/choice';
import { genecisFromEmbeddings } from './metrics/keyed';
import { loadCirr, loadFashionIq, loadGenecis } from './metrics/loaders';

export { coco1k, coco5k, flickr, meanr, medr, recallAtK, rSum } from './metrics/retrieval';
export type { Coco1kInput, Coco1kReport, CrossModalRanks, CrossModalReport, CrossModalScores, DirectionReport } from './metrics/retrieval';
export { circo, cirr, fashionIq, genecis, resolveCirr } from './metrics/composed';
export type {
  CircoReport,
  CirrQueryRef,
  CirrRanksInput,
  CirrReport,
  CirrResolved,
  CirrScoresInput,
  FashionIqCategoryInput,
  FashionIqQueryRef,
  FashionIqReport,
  GenecisReport,
  GroundTruthInput,
} from './metrics/composed';
export { aro, hpir, ndcg, sugarcrepe } from './metrics/choice';
export type { AroReport, AroSet, HpirComparison, HpirReport, NdcgGain, NdcgReport, SugarCrepeReport } from './metrics/choice';
export { galleryMatrix, genecisFromEmbeddings, readKeyed } from './metrics/keyed';
export type { KeyedEmbeddings, KeyedLookup } from './metrics/keyed';
export { loadCirr, loadFashionIq, loadGenecis } from './metrics/loaders';
export type { CirrQuery, CirrSplit, FashionIqQuery, FashionIqSplit, GenecisKey, GenecisTemplate } from './metrics/loaders';
export { ABSENT, type RanksInput, type ScoreMatrixInput, type Ties } from './metrics/common';

/**
 * The benchmark metrics in one namespace (the same functions as the named exports). Every rate
 * is in percent; ranks are 0-based; the default tie rule is 'stable' (a stable descending sort:
 * #{score > s_t} + #{score = s_t and index < t}), with 'optimistic' (#{>}) and 'pessimistic'
 * (#{>=} - 1); score inputs report how many queries had an exact tie at the decision boundary.
 *
 * @example
 * ```ts
 * import { metrics } from 'vlkernels';
 * const r = metrics.flickr({ scores: { data: sims, rows: 1000, cols: 5000 } });
 * console.log(r.i2t.r1, r.t2i.r1, r.rsum);
 * ```
 * @throws Nothing itself; see each function.
 */
export const metrics = Object.freeze({
  recallAtK,
  medr,
  meanr,
  rSum,
  flickr,
  coco5k,
  coco1k,
  cirr,
  fashionIq,
  genecis,
  genecisFromEmbeddings,
  circo,
  ndcg,
  aro,
  sugarcrepe,
  hpir,
  loadCirr,
  loadFashionIq,
  loadGenecis,
});
