// Public entry of vlkernels (lib): exact batched top-k similarity search on the CPU through a
// Node-API addon, the exact merge of top-k lists searched per shard, exact re-ranking of per-query
// candidate lists, and FlatIndex, an exact mutable index of vectors with user ids. Requiring it
// loads the native addon once (see loader.ts); the ESM entry re-exports this module, so both share
// that one instance.
export { search, searchSync } from './search';
export { tokenMaxSearch, tokenMaxSearchSync } from './token_max_search';
export { compose, composeSync, composedSearch } from './compose';
export { CombinerTrainer } from './trainer';
export { twoHopLoss, twoHopLossSync } from './two_hop_loss';
export type { Tensor3D, TwoHopLossInputs, TwoHopLossOptions, TwoHopLossResult } from './two_hop_loss';
export { MemoryBank, emaUpdate } from './memory_bank';
export type { MemoryBankMemoryUsage, MemoryBankSnapshot } from './memory_bank';
export {
  memoryInfoNce,
  memoryInfoNceSync,
  vseHinge,
  vseHingeSync,
  weightedTriplet,
  weightedTripletSync,
} from './matching_losses';
export type {
  MemoryInfoNceOptions,
  MemoryInfoNceResult,
  VseHingeOptions,
  VseHingeResult,
  WeightedTripletOptions,
  WeightedTripletResult,
} from './matching_losses';
export { preferenceLoss, preferenceLossSync } from './preference_loss';
export type {
  PreferenceLossOptions,
  PreferencePairInputs,
  PreferencePairResult,
  PreferenceScoreInputs,
  PreferenceScoreResult,
} from './preference_loss';
export { clipLoss, clipLossSync } from './clip_loss';
export type { ClipLossOptions, ClipLossResult } from './clip_loss';
export { kmeans, kmeansSync, sinkhorn, sinkhornSync, swavLoss, swavLossSync } from './cluster';
export type { KmeansOptions, KmeansProgress, KmeansResult, SinkhornOptions, SwavLossOptions, SwavLossResult } from './cluster';
export {
  graph,
  relevance,
  relevanceSync,
  relevanceBackward,
  relevanceBackwardSync,
  scanRelevance,
  scanRelevanceSync,
  rowTopkMask,
  rowTopkMaskSync,
  gcn,
  gcnSync,
  gcnBackward,
  gcnBackwardSync,
} from './graph';
export type {
  GcnBackwardInputs,
  GcnGrads,
  GcnInputs,
  GcnOptions,
  GcnResult,
  GraphCallOptions,
  GraphTensor3D,
  RelevanceOptions,
  RowTopkMaskOptions,
  ScanRelevanceInputs,
  ScanRelevanceOptions,
  ScanRelevanceResult,
} from './graph';
export {
  cosineMhaPool,
  cosineMhaPoolBackward,
  cosineMhaPoolBackwardSync,
  cosineMhaPoolSync,
  gatedFusion,
  gatedFusionBackward,
  gatedFusionBackwardSync,
  gatedFusionSync,
  maxkPool,
  maxkPoolBackward,
  maxkPoolBackwardSync,
  maxkPoolSync,
  scanSimilarity,
  scanSimilaritySync,
} from './global_local';
export type {
  CosineMhaPoolGrads,
  CosineMhaPoolInputs,
  CosineMhaPoolOptions,
  GatedFusionGrads,
  GatedFusionInputs,
  GlobalLocalCallOptions,
  MaxkPoolOptions,
  ScanSimilarityInputs,
  ScanSimilarityOptions,
  ScanSimilarityResult,
  TensorND,
} from './global_local';
export { augmentGallery, augmentGallerySync, expandQueries, expandQueriesSync } from './expand_queries';
export type { AugmentGalleryResult, ExpandOptions, ExpandQueriesOptions, ExpandQueriesResult } from './expand_queries';
export { biasedAttention, biasedAttentionSync, biasedAttentionBackward, biasedAttentionBackwardSync } from './biased_attention';
export type {
  BiasedAttentionInputs,
  BiasedAttentionOptions,
  BiasedAttentionResult,
  BiasedAttentionSaved,
  BiasedAttentionBackwardOptions,
  BiasedAttentionGrads,
} from './biased_attention';
export type { CombinerTrainerOptions, Triplets, TrainProgress } from './trainer';
export type { CombinerWeights, ComposeMode, ComposeOptions, ComposedSearchOptions } from './compose';
export type { TokenGalleryInput, TokenMaxSearchOptions } from './token_max_search';
export { mergeTopK, mergeTopKSync } from './merge_top_k';
export { crossModalRanks, crossModalRanksSync, rankOfTargets, rankOfTargetsSync } from './rank_of_targets';
export type { CrossModalOptions, CrossModalResult, GroundTruth, IdLists, RankOptions, RankResult, TieRule } from './rank_of_targets';
export { rerank, rerankSync } from './rerank';
export { FlatIndex } from './flat_index';
export { ShardedIndex } from './sharded_index';
export {
  encodeSafetensors,
  readSafetensors,
  readSafetensorsSync,
  writeSafetensors,
  writeSafetensorsSync,
} from './safetensors';
export type {
  SafetensorsContents,
  SafetensorsDtype,
  SafetensorsReadOptions,
  SafetensorsSource,
  SafetensorsTensor,
  SafetensorsTensorInput,
  SafetensorsTypedArray,
  SafetensorsWriteOptions,
} from './safetensors';
export type { ShardedIndexMemoryUsage, ShardedIndexOptions, ShardedIndexShardMemory } from './sharded_index';
export {
  metrics,
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
} from './metrics';
export type {
  AroReport,
  AroSet,
  CircoReport,
  CirrQuery,
  CirrQueryRef,
  CirrRanksInput,
  CirrReport,
  CirrScoresInput,
  CirrSplit,
  Coco1kInput,
  Coco1kReport,
  CrossModalRanks,
  CrossModalReport,
  CrossModalScores,
  DirectionReport,
  FashionIqCategoryInput,
  FashionIqQuery,
  FashionIqQueryRef,
  FashionIqReport,
  FashionIqSplit,
  GenecisKey,
  GenecisReport,
  GenecisTemplate,
  GroundTruthInput,
  HpirComparison,
  HpirReport,
  KeyedEmbeddings,
  NdcgGain,
  NdcgReport,
  RanksInput,
  ScoreMatrixInput,
  SugarCrepeReport,
  Ties,
} from './metrics';
export { metricsFromEmbeddings, flickrFromEmbeddings, coco5kFromEmbeddings, coco1kFromEmbeddings, cirrFromEmbeddings, fashionIqFromEmbeddings } from './metrics_embeddings';
export type { CrossModalEmbeddingOptions, EmbeddingMetricOptions, NamedSplit } from './metrics_embeddings';
export { info, releaseMemory, setIsa } from './info';
export { AbortError, errorCodes, VlkError } from './errors';
export type { NativeErrorCode, VlkErrorCode } from './errors';
export type {
  CandidateLists,
  Candidates,
  CudaDeviceInfo,
  CudaInfo,
  MemoryInfo,
  Device,
  ExcludeLists,
  FlatIndexAddResult,
  FlatIndexFilter,
  FlatIndexLoadOptions,
  FlatIndexMemoryUsage,
  FlatIndexOptions,
  FlatIndexSaveOptions,
  FlatIndexSearchOptions,
  FlatIndexSearchResult,
  FlatIndexStorage,
  IdsInput,
  Info,
  IsaName,
  MatrixDimsView,
  MatrixInput,
  MatrixView,
  MergeTopKOptions,
  MergeTopKResult,
  Metric,
  Precision,
  SearchPrecision,
  ProgressCallback,
  RerankOptions,
  SearchOptions,
  SearchResult,
  TopKPartial,
} from './types';
export { binding } from './loader';
export type { NativeBinding, NativeCancelToken, NativeFlatIndex, NativeInfo } from './loader';
export { multiQuerySearch, multiQuerySearchSync } from './multi_query_search';
export type { Fusion, MultiQuerySearchOptions, MultiQuerySearchResult } from './multi_query_search';
export { combinePriors, priorSearch, priorSearchSync } from './prior_search';
export type { PriorSearchOptions, PriorSearchResult, PriorsInput } from './prior_search';
export { aestheticRerank, gridOrder } from './aesthetic_rerank';
export type { AestheticRerankResult, GridOrderResult } from './aesthetic_rerank';
export {
  openVectors,
  readBvecs,
  readFvecs,
  readIvecs,
  readNpy,
  readNpyAny,
  readRawF32,
  readVectors,
  writeBvecs,
  writeFvecs,
  writeIvecs,
  writeNpy,
  writeRawF32,
} from './vectors_io';
export type {
  Int32Rows,
  NpyArray,
  NpyDtype,
  NpyTypedArray,
  OpenVectorsOptions,
  ReadVectorsOptions,
  Uint8Rows,
  VectorFormat,
  VectorStream,
  Vectors,
  WriteMatrixOptions,
} from './vectors_io';
