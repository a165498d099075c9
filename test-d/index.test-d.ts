// Type tests of the public API (tsd, `npm run test:types`), checked against the built declarations
// (package.json "types": dist/cjs/index.d.ts): matrix input forms, search options and results, FlatIndex,
// rank and metrics reports, errors. Nothing here runs; each line is a compile-time assertion.
import {
  AbortError,
  FlatIndex,
  VlkError,
  coco1k,
  crossModalRanksSync,
  flickr,
  info,
  medr,
  mergeTopK,
  metrics,
  rankOfTargets,
  rankOfTargetsSync,
  recallAtK,
  search,
  searchSync,
} from '..';
import type {
  CrossModalReport,
  CrossModalResult,
  FlatIndexSearchResult,
  Info,
  MatrixInput,
  MergeTopKResult,
  Metric,
  RankResult,
  SearchOptions,
  SearchResult,
  VlkErrorCode,
} from '..';
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd';

const data = new Float32Array(8 * 4);

// ---- matrix inputs: a plain Float32Array (with options.dim), { data, rows, cols }, { data, dims } ----------
expectAssignable<MatrixInput>(data);
expectAssignable<MatrixInput>({ data, rows: 8, cols: 4 });
expectAssignable<MatrixInput>({ data, dims: [8, 4] as const });
expectNotAssignable<MatrixInput>(new Float64Array(4));
expectNotAssignable<MatrixInput>([0.1, 0.2, 0.3]);
expectNotAssignable<MatrixInput>({ data: new Float64Array(4), rows: 1, cols: 4 });
expectNotAssignable<MatrixInput>({ data, rows: 8 });

// ---- search ----------------------------------------------------------------------------------------------
expectType<Promise<SearchResult>>(search(data, data, { k: 10, dim: 4 }));
expectType<SearchResult>(searchSync({ data, rows: 8, cols: 4 }, { data, dims: [8, 4] }, { k: 3, metric: 'cosine' }));
const r = searchSync(data, data, { k: 2, dim: 4 });
expectType<Int32Array>(r.indices);
expectType<Float32Array>(r.scores);
expectType<Int32Array>(r.counts);
expectType<number>(r.k);
expectType<number>(r.count);
expectAssignable<SearchOptions>({ k: 1, metric: 'l2', threads: 2, signal: AbortSignal.timeout(10), clamp: true });
expectAssignable<SearchOptions>({ k: 5, precision: 'bf16', exclude: new Int32Array(8), allow: new Uint8Array(8) });
expectAssignable<SearchOptions>({ k: 5, exclude: { offsets: new Int32Array(9), rows: new Int32Array(3) } });
expectNotAssignable<SearchOptions>({ metric: 'ip' });
expectNotAssignable<SearchOptions>({ k: 5, metric: 'dot' });
expectNotAssignable<SearchOptions>({ k: 5, precision: 'fp16' });
expectType<Metric>('ip' as 'ip' | 'cosine' | 'l2');
expectError(searchSync(data, data));
expectError(searchSync(data, data, { k: '10' }));
expectError(searchSync([1, 2, 3], data, { k: 1, dim: 4 }));
expectError(search(data, data, { k: 1, dim: '4' }));

// ---- mergeTopK: number ids stay Float64Array; BigInt ids widen the result ----------------------------------
expectType<Promise<MergeTopKResult<Float64Array>>>(mergeTopK([r, { ...r, offset: 8 }], { k: 2 }));
expectType<Promise<MergeTopKResult>>(mergeTopK([{ ...r, indices: new BigInt64Array(r.indices.length) }], { k: 2 }));

// ---- FlatIndex -------------------------------------------------------------------------------------------
const index = new FlatIndex({ dim: 4, metric: 'cosine' });
expectType<number>(index.dim);
expectType<Metric>(index.metric);
expectType<number>(index.size);
index.add(data);
index.add({ data, rows: 8, cols: 4 }, [10, 11, 12, 13, 14, 15, 16, 17]);
index.add(data, new BigInt64Array(8));
expectType<number>(index.remove([10, 11]));
expectType<boolean>(index.has(12n));
expectType<Float32Array>(index.get(12));
expectType<Promise<FlatIndexSearchResult>>(index.search(data, { k: 3 }));
const fr = index.searchSync(data, { k: 3, filter: { allow: new Set([12, 13]) } });
expectType<Float64Array | BigInt64Array>(fr.ids);
expectType<Float32Array>(fr.scores);
expectType<Promise<FlatIndex>>(FlatIndex.load('/tmp/x.vlk'));
expectType<FlatIndex>(FlatIndex.fromBufferSync(index.toBufferSync()));
expectError(new FlatIndex({}));
expectError(new FlatIndex({ dim: 4, metric: 'hamming' }));
expectError(index.searchSync(data, {}));
expectError(index.dim = 8);

// ---- ranks and metrics -----------------------------------------------------------------------------------
expectType<Promise<RankResult>>(rankOfTargets(data, data, new Int32Array(8), { dim: 4, ties: 'pessimistic' }));
const ranks = rankOfTargetsSync({ data, rows: 8, cols: 4 }, { data, rows: 8, cols: 4 }, { offsets: [0, 1, 2], ids: [3, 4] });
expectType<Int32Array>(ranks.ranks);
expectType<Int32Array>(ranks.best);
expectType<number>(ranks.ties);
expectError(rankOfTargetsSync(data, data, new Int32Array(8), { dim: 4, ties: 'random' }));
expectError(rankOfTargetsSync(data, data, new Float32Array(8), { dim: 4 }));
const cm = crossModalRanksSync(data, data, { perImage: 1, dim: 4 });
expectType<CrossModalResult>(cm);
expectType<{ i2t: number; t2i: number }>(cm.ties);

expectType<Record<string, number>>(recallAtK(ranks.best, [1, 5]));
expectType<number>(medr([0, 1, 2]));
const report = flickr({ i2t: cm.i2t, t2i: cm.t2i, perImage: 1 });
expectType<CrossModalReport>(report);
expectType<number>(report.rsum);
expectType<number>(report.i2t.r1);
expectType<number>(report.t2i.medr);
expectType<typeof flickr>(metrics.flickr);
expectType<typeof recallAtK>(metrics.recallAtK);
expectError(recallAtK(new Float32Array(3)));
expectError(flickr({ i2t: cm.i2t }));
expectError(coco1k({}));

// ---- errors and info ------------------------------------------------------------------------------------
const err: unknown = new Error('x');
if (err instanceof VlkError) {
  expectType<VlkErrorCode>(err.code);
  expectAssignable<Error>(err);
}
if (err instanceof AbortError) expectType<'ABORT_ERR'>(err.code);
expectAssignable<VlkErrorCode>('ERR_VLK_INVALID_K');
expectAssignable<VlkErrorCode>('ERR_VLK_LOAD');
expectNotAssignable<VlkErrorCode>('ERR_VLK_SOMETHING_ELSE');
expectType<VlkError>(new VlkError('ERR_VLK_SHAPE', 'queries: length 7 is not a multiple of dim 4'));
expectError(new VlkError('ERR_NOT_A_CODE', 'x'));
expectType<Info>(info());
expectType<number>(info().threads);
