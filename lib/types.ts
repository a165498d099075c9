// Public types of the vlkernels API (lib): matrix inputs, search options and results, top-k merge
// inputs and results, re-ranking candidates and options, FlatIndex options and results, info().
// Matrices are row-major float32; a view names its shape, a plain Float32Array takes options.dim.

/** Similarity measure: inner product, cosine similarity, or squared Euclidean distance. */
export type Metric = 'ip' | 'cosine' | 'l2';

/**
 * Where a search runs: `'cpu'` (the default), `'cuda'` (the GPU; `ERR_VLK_NO_DEVICE` naming the
 * reason when CUDA is not usable here, see `info().cuda`), or `'auto'` (the GPU when it is usable
 * and can take the call, otherwise the CPU, with identical results for `precision: 'exact'`).
 */
export type Device = 'cpu' | 'cuda' | 'auto';

/**
 * How a search scans. `'exact'` (default): fp32 scores, equal on every device and ISA (ids and
 * scores). `'bf16'` on the CPU ({@link search} / {@link tokenMaxSearch} with `device: 'cpu'`): bf16
 * scan with exact fp32 re-score, same results as `'exact'`, faster on CPUs with AVX-512 BF16.
 * `'bf16'` with `device: 'cuda'` (and on a `'cuda'` {@link FlatIndex}): bf16 tensor-core scores
 * only, approximate like `torch.topk` on a bf16 matmul. Never with `device: 'auto'`, so a result's
 * precision never depends on the machine. Search also takes `'i8'` (see {@link SearchPrecision}).
 */
export type Precision = 'exact' | 'bf16';

/**
 * `precision` of {@link search} and {@link tokenMaxSearch}: a {@link Precision}, or `'i8'` (CPU
 * only): int8 scan with exact fp32 re-score, same results as `'exact'`.
 */
export type SearchPrecision = Precision | 'i8';

/** A kernel path. `info().isas` lists the ones this CPU (and `VLK_FORCE_ISA`) allow. */
export type IsaName = 'scalar' | 'avx2' | 'avx512';

/** A row-major `rows x cols` matrix over a Float32Array (its byteOffset is honoured, nothing is copied). */
export interface MatrixView {
  data: Float32Array;
  rows: number;
  cols: number;
}

/** A row-major matrix shaped by `dims: [rows, cols]`, as onnxruntime-node and transformers.js tensors are. */
export interface MatrixDimsView {
  data: Float32Array;
  dims: readonly number[];
}

/**
 * A matrix argument: a plain Float32Array (rows of `options.dim` values, the same dim for queries
 * and gallery), a `{ data, rows, cols }` view, or a `{ data, dims: [rows, cols] }` tensor-like view.
 * Inputs are read in place: do not mutate or transfer them until the call returns or settles.
 *
 * @example
 * ```ts
 * const a: MatrixInput = new Float32Array(10 * 512);                       // with options.dim = 512
 * const b: MatrixInput = { data: big.subarray(512 * 100), rows: 50, cols: 512 }; // rows 100..149
 * const c: MatrixInput = { data: tensor.data as Float32Array, dims: tensor.dims }; // [rows, cols]
 * ```
 */
export type MatrixInput = Float32Array | MatrixView | MatrixDimsView;

/**
 * Options of {@link search} and {@link searchSync}.
 *
 * @example
 * ```ts
 * const options: SearchOptions = { k: 10, metric: 'cosine', dim: 512, signal: AbortSignal.timeout(1000) };
 * ```
 */
export interface SearchOptions {
  /** Results per query, an integer in 1..N (N = gallery rows); k > N is an error unless `clamp`. */
  k: number;
  /**
   * Token-max search: the gallery holds items of `tokens` consecutive rows (e.g. 32 Q-Former tokens
   * per image); an item's score is the best of its rows' (max similarity, min l2 distance), and
   * `k`, `indices`, `exclude` and `allow` refer to items. Default 1. See {@link tokenMaxSearch}.
   */
  tokens?: number;
  /** Similarity measure, default `'ip'`. */
  metric?: Metric;
  /** Row length; required when an input is a plain Float32Array. */
  dim?: number;
  /** Parallel width (an integer >= 1); default: the thread-pool size (`info().threads`). */
  threads?: number;
  /** Cancels an asynchronous search (ignored by `searchSync`). */
  signal?: AbortSignal;
  /** With `true`, k > N searches with k = N instead of failing. */
  clamp?: boolean;
  /**
   * `'cpu'` (default), `'cuda'` or `'auto'` (see {@link Device}). Filtered searches (`exclude`,
   * `allow`) run on the CPU with `'auto'`; with `'cuda'` the filter is applied inside the GPU scan.
   */
  device?: Device;
  /**
   * `'exact'` (default); `'bf16'`: with `device: 'cpu'` a bf16 scan with exact fp32 re-score, same
   * results as `'exact'` (indices, scores, counts), faster on CPUs with AVX-512 BF16; with
   * `device: 'cuda'` the approximate GPU scan. `'i8'`: int8 scan with exact re-score, CPU only.
   * Not with `device: 'auto'`. See {@link Precision}.
   */
  precision?: SearchPrecision;
  /**
   * Gallery rows a query must not return, applied inside the scan (an excluded row never takes
   * an allowed row's place). An `Int32Array` with one row per query (`-1`: none), e.g. the
   * reference image in composed retrieval; or CSR `{ offsets, rows }` where query q excludes
   * `rows[offsets[q] .. offsets[q + 1])` (`offsets.length === Q + 1`).
   */
  exclude?: Int32Array | ExcludeLists;
  /**
   * Gallery rows every query may return: a `Uint8Array` mask of N bytes (non-zero: allowed) or an
   * `Int32Array` of allowed rows. Rows outside it are never returned.
   */
  allow?: Uint8Array | Int32Array;
}

/** Several excluded rows per query, CSR: query q excludes `rows[offsets[q] .. offsets[q + 1])`. */
export interface ExcludeLists {
  offsets: Int32Array;
  rows: Int32Array;
}

/**
 * Top-k lists, row-major `count x k`: row q holds the k best gallery rows for query q, best first
 * (ip/cosine: descending similarity; l2: ascending squared distance), ties by lower index.
 */
export interface SearchResult {
  /** Gallery row numbers, `count * k` entries. */
  indices: Int32Array;
  /** Similarities (ip, cosine) or squared Euclidean distances (l2), aligned with `indices`. */
  scores: Float32Array;
  /** Results per query (after clamping). */
  k: number;
  /** Number of queries (Q). */
  count: number;
  /**
   * Valid entries per query (Q values): k, unless a filter left fewer allowed rows; the rest of
   * that row is index -1 and score NaN.
   */
  counts: Int32Array;
}

/**
 * One shard's top-k lists for the Q queries every partial shares, row-major `count x k`: what
 * {@link search} returned for that shard is one (a {@link SearchResult} is a TopKPartial).
 * Inputs of {@link mergeTopK}.
 *
 * @example
 * ```ts
 * const shard1: TopKPartial = { ...searchSync(queries, galleryPart1, { k: 10, dim }), offset: 50_000 };
 * ```
 */
export interface TopKPartial {
  /**
   * Ids, `count * k` entries (row-major). A Float64Array's ids must be integers within +-2^53; a
   * BigInt64Array makes the merged ids a BigInt64Array too.
   */
  indices: Int32Array | Float64Array | BigInt64Array;
  /** Scores aligned with `indices` (`count * k`), best first within each row. */
  scores: Float32Array;
  /** Entries per row in this partial (an integer >= 0; partials may differ). */
  k: number;
  /** Number of queries Q, equal for every partial. */
  count: number;
  /** Valid entries per row (Q values, each 0..k); entries past it are ignored. Absent: all k valid. */
  counts?: Int32Array;
  /**
   * Added to every id of this partial (an integer, |offset| <= 2^53), e.g. the first global gallery
   * row of the shard it was searched over. Default 0.
   */
  offset?: number;
}

/**
 * Options of {@link mergeTopK} and {@link mergeTopKSync}.
 *
 * @example
 * ```ts
 * const options: MergeTopKOptions = { k: 10, metric: 'cosine', signal: AbortSignal.timeout(1000) };
 * ```
 */
export interface MergeTopKOptions {
  /** Results per query in the merged lists, an integer in 1..2^31 - 1. */
  k: number;
  /** The metric the partials were scored with (it sets the order), default `'ip'`. */
  metric?: Metric;
  /** Cancels an asynchronous merge (ignored by `mergeTopKSync`). */
  signal?: AbortSignal;
}

/**
 * Merged top-k lists, row-major `count x k`, best first (ip/cosine: descending score; l2:
 * ascending), ties by partial order, then by lower id.
 */
export interface MergeTopKResult<Ids extends Float64Array | BigInt64Array = Float64Array | BigInt64Array> {
  /**
   * Ids (with each partial's offset added), `count * k` entries: a BigInt64Array when any partial's
   * indices are one, else a Float64Array of exact integers. Padding: -1 (or -1n).
   */
  ids: Ids;
  /** Scores aligned with `ids`; padding: NaN. */
  scores: Float32Array;
  /** Valid entries per query (Q values): k, unless the partials held fewer for that query. */
  counts: Int32Array;
  /** Results per query (options.k). */
  k: number;
  /** Number of queries (Q). */
  count: number;
}

/**
 * Per-query candidate lists of {@link rerank}, CSR: query q's candidates are
 * `rows[offsets[q] .. offsets[q + 1])` (`offsets.length === Q + 1`, `offsets[0] === 0`,
 * non-decreasing, `offsets[Q] === rows.length`); any order, a row listed twice counts once.
 *
 * @example
 * ```ts
 * // Query 0 re-ranks rows 7, 3 and 9; query 1 has no candidates; query 2 re-ranks row 4.
 * const lists: CandidateLists = { offsets: Int32Array.from([0, 3, 3, 4]), rows: Int32Array.from([7, 3, 9, 4]) };
 * ```
 */
export interface CandidateLists {
  offsets: Int32Array;
  rows: Int32Array;
}

/**
 * The gallery rows each query of {@link rerank} scores: an `Int32Array` of `Q * m` rows (row-major,
 * m = length / Q candidates per query, e.g. the `indices` a vector engine returned; `-1` entries are
 * skipped, as padding), or {@link CandidateLists} when the lists differ in length.
 *
 * @example
 * ```ts
 * // Q = 2, m = 3: query 0 re-ranks rows 7, 3 and 9; query 1 only row 4.
 * const dense: Candidates = Int32Array.from([7, 3, 9, 4, -1, -1]);
 * ```
 */
export type Candidates = Int32Array | CandidateLists;

/**
 * Options of {@link rerank} and {@link rerankSync}.
 *
 * @example
 * ```ts
 * const options: RerankOptions = { k: 10, metric: 'cosine', dim: 512, signal: AbortSignal.timeout(1000) };
 * ```
 */
export interface RerankOptions {
  /**
   * Results per query, an integer in 1..2^31 - 1 (not tied to N): a query with fewer candidates
   * returns them all, padded with index -1 and score NaN.
   */
  k: number;
  /** Similarity measure, default `'ip'`. */
  metric?: Metric;
  /** Row length; required when an input is a plain Float32Array. */
  dim?: number;
  /** Parallel width (an integer >= 1); default: the thread-pool size (`info().threads`). */
  threads?: number;
  /** Cancels an asynchronous rerank (ignored by `rerankSync`). */
  signal?: AbortSignal;
}

/**
 * How a {@link FlatIndex} stores its vectors:
 * - `'f32'`: 32-bit floats (4 bytes per value);
 * - `'bf16'`: bfloat16 codes (2 bytes per value) scanned with AVX-512 BF16 dot products;
 * - `'i8'`: 8-bit codes with one scale per vector (1 byte per value) scanned with AVX-512 VNNI.
 *
 * bf16 and i8 are exact by default: they keep an fp32 copy too, scan the codes, and re-score in
 * fp32 every candidate whose proven error bound lets it reach the k-th score, so results equal
 * the f32 index's (ids and scores, bit for bit); they trade memory (fp32 + codes) for speed. With
 * `approximate: true` they keep the codes only (half or a quarter of f32's memory) and return the
 * codes' estimates (no re-score, recall below 1).
 */
export type FlatIndexStorage = 'f32' | 'bf16' | 'i8';

/**
 * Options of the {@link FlatIndex} constructor.
 *
 * @example
 * ```ts
 * const options: FlatIndexOptions = { dim: 512, metric: 'cosine' }; // storage: 'f32' (default)
 * ```
 */
export interface FlatIndexOptions {
  /** Vector length, an integer in 1..2^31 - 1. */
  dim: number;
  /** Similarity measure of every search, default `'ip'`. */
  metric?: Metric;
  /** Vector storage, default `'f32'` (see {@link FlatIndexStorage}). */
  storage?: FlatIndexStorage;
  /**
   * bf16/i8 only: keep the codes alone (no fp32 copy): less memory, approximate results (scores
   * estimated from the codes, `rescored` all 0, `get` returns the decoded vector). Default false.
   */
  approximate?: boolean;
  /**
   * Where searches run (see {@link Device}): `'cpu'` (default); `'cuda'`: the index keeps a copy of
   * its live vectors resident on the GPU, uploaded by the first search after an add, remove or
   * compact (later searches copy only queries and results), with results equal to the CPU's (ids
   * and scores) and `precision: 'bf16'` available; storage `'f32'` only (`ERR_VLK_INVALID_ARG`),
   * `ERR_VLK_NO_DEVICE` naming the reason when CUDA is not usable here; `'auto'`: `'cuda'` when
   * CUDA is usable and the storage is `'f32'`, else `'cpu'`, and a search the GPU cannot take (GPU
   * memory, k above 1024, more than 2,097,152 vectors) runs on the CPU instead (with `'cuda'` it
   * fails with `ERR_VLK_OUT_OF_MEMORY` / `ERR_VLK_INVALID_ARG`). `index.device` tells the result.
   */
  device?: Device;
}

/**
 * User ids of {@link FlatIndex.add} and {@link FlatIndex.remove}: numbers (an array, a Float64Array
 * or any array-like of integers in 0..2^53 - 1), or a BigInt64Array (ids in 0..2^63 - 1; it makes
 * the index's search results BigInt64Array from then on).
 *
 * @example
 * ```ts
 * const a: IdsInput = [17, 4, 99];
 * const b: IdsInput = BigInt64Array.from([2n ** 60n, 5n]);
 * ```
 */
export type IdsInput = ArrayLike<number> | Float64Array | BigInt64Array;

/**
 * What {@link FlatIndex.add} returns.
 *
 * @example
 * ```ts
 * const { firstId } = index.add(vectors); // automatic ids firstId, firstId + 1, ...
 * ```
 */
export interface FlatIndexAddResult {
  /**
   * Without ids: the first automatic id given (the rest follow one by one), a number, or a bigint
   * once the index was given BigInt64Array ids. With ids: undefined.
   */
  firstId: number | bigint | undefined;
}

/**
 * What {@link FlatIndex.memoryUsage} returns.
 *
 * @example
 * ```ts
 * const { bytes, bytesPerVector } = index.memoryUsage();
 * ```
 */
export interface FlatIndexMemoryUsage {
  /**
   * Native heap bytes the index holds: its row blocks (allocated ahead: 1,024 rows or the first
   * add's size, then doubling; removed rows included until `compact()`), bf16/i8 codes and their
   * per-row values, ids, live bits and the id map. fp32 rows used in place from a file loaded with
   * `mmap: true` are not counted (the page cache holds them).
   */
  bytes: number;
  /** `bytes / max(size, 1)`. */
  bytesPerVector: number;
}

/** Progress of a save or load: bytes done so far and the total, called on the JS thread. */
export type ProgressCallback = (doneBytes: number, totalBytes: number) => void;

/**
 * Options of {@link FlatIndex.save}, {@link FlatIndex.toBuffer} and {@link FlatIndex.fromBuffer}.
 *
 * @example
 * ```ts
 * await index.save('gallery.vlk', { onProgress: (done, total) => bar.update(done / total), signal });
 * ```
 */
export interface FlatIndexSaveOptions {
  /** Called about every 50 ms while the work runs, and once at the end (done = total). */
  onProgress?: ProgressCallback;
  /** Aborts the call (a save leaves the target file as it was). */
  signal?: AbortSignal;
}

/** Options of {@link FlatIndex.load}. */
export interface FlatIndexLoadOptions extends FlatIndexSaveOptions {
  /**
   * Map the file instead of reading it: the fp32 rows are used in place (paged in on demand, shared
   * with the page cache, not counted by memoryUsage()); bf16/i8 codes are still built in memory.
   * Default false.
   */
  mmap?: boolean;
  /**
   * Where the loaded index searches, as {@link FlatIndexOptions.device} (default `'cpu'`: the
   * device an index was saved from is not part of the file).
   */
  device?: Device;
}

/**
 * Options of {@link FlatIndex.search} and {@link FlatIndex.searchSync}.
 *
 * @example
 * ```ts
 * const options: FlatIndexSearchOptions = { k: 10, signal: AbortSignal.timeout(1000) };
 * ```
 */
export interface FlatIndexSearchOptions {
  /**
   * Results per query, an integer in 1..2^31 - 1 (not tied to the index's size: a query gets
   * `min(k, size)` results, the rest is padding).
   */
  k: number;
  /** Parallel width (an integer >= 1); default: the thread-pool size (`info().threads`). */
  threads?: number;
  /** Which ids may be returned, applied inside the scan (see {@link FlatIndexFilter}). */
  filter?: FlatIndexFilter;
  /**
   * `'exact'` (default) or `'bf16'`: bf16 tensor-core scores only (approximate, like `torch.topk`
   * on a bf16 matmul), for an index whose `device` is `'cuda'` (`ERR_VLK_INVALID_ARG` otherwise).
   */
  precision?: Precision;
  /** Cancels an asynchronous search (ignored by `searchSync`). */
  signal?: AbortSignal;
}

/**
 * Id filters of a {@link FlatIndex} search, applied inside the scan: a filtered vector never takes
 * an allowed one's place, so a query gets `min(k, allowed)` results. Ids not in the index are
 * ignored.
 *
 * @example
 * ```ts
 * // composed retrieval: never return the reference image itself; only search the catalogue subset
 * index.searchSync(queries, { k: 10, filter: { exclude: referenceIds, allow: inStockIds } });
 * ```
 */
export interface FlatIndexFilter {
  /** Only these ids (an array or Set of numbers/bigints, a Float64Array or a BigInt64Array). */
  allow?: ArrayLike<number> | Float64Array | BigInt64Array | Set<number | bigint> | (number | bigint)[];
  /**
   * Ids each query must not return: an array with one entry per query (an id, null for none, or an
   * array of ids); a Float64Array/BigInt64Array with one id per query (-1: none); or CSR
   * `{ offsets: Int32Array(Q + 1), ids }` (query q excludes `ids[offsets[q] .. offsets[q + 1])`).
   */
  exclude?:
    | (number | bigint | null | undefined | ArrayLike<number | bigint>)[]
    | Float64Array
    | BigInt64Array
    | { offsets: Int32Array; ids: ArrayLike<number> | Float64Array | BigInt64Array };
}

/**
 * Top-k lists of a {@link FlatIndex} search, row-major `count x k`: row q holds the best live
 * vectors for query q, best first (ip/cosine: descending similarity; l2: ascending squared
 * distance), ties by earlier insertion.
 *
 * @example
 * ```ts
 * const { ids, scores, counts, k } = index.searchSync(query, { k: 5 });
 * for (let j = 0; j < counts[0]; j++) console.log(ids[j], scores[j]);
 * ```
 */
export interface FlatIndexSearchResult<Ids extends Float64Array | BigInt64Array = Float64Array | BigInt64Array> {
  /**
   * User ids, `count * k` entries: a BigInt64Array once the index was given BigInt64Array ids,
   * else a Float64Array of exact integers. Padding: -1 (or -1n).
   */
  ids: Ids;
  /** Similarities (ip, cosine) or squared Euclidean distances (l2), aligned with `ids`; padding: NaN. */
  scores: Float32Array;
  /** Valid entries per query (Q values): `min(k, size)` of the index as the search saw it (or of the allowed ids). */
  counts: Int32Array;
  /**
   * Per query, how many vectors were re-scored in fp32 after the bf16/i8 scan (0 for f32 storage
   * and in approximate mode): the price of exactness, typically a few times k.
   */
  rescored: Int32Array;
  /** Results per query (options.k). */
  k: number;
  /** Number of queries (Q). */
  count: number;
}

/** The GPU the CUDA backend found (device 0). */
/**
 * The process-wide block cache (native/core/common/block_cache): large kernel scratch buffers and
 * large result arrays (>= 64 KiB) are taken from it and go back to it (results: when V8 collects
 * the array), so repeated calls reuse mapped pages instead of faulting fresh ones in. Bounded by
 * `VLK_CACHE_MB` (default 256; 0 disables caching); `releaseMemory()` empties it.
 */
export interface MemoryInfo {
  /** Bytes held for reuse (not in use). */
  cachedBytes: number;
  /** Bound on `cachedBytes`. */
  limitBytes: number;
  /** Large allocations served from the cache since the process started. */
  hits: number;
  /** Large allocations that had to map new memory. */
  misses: number;
}

export interface CudaDeviceInfo {
  /** e.g. `'NVIDIA H100 80GB HBM3'`. */
  name: string;
  /** Compute capability, e.g. `'9.0'` (8.0 or newer is needed). */
  computeCapability: string;
  /** Device memory in bytes. */
  memoryBytes: number;
  /** CUDA version the installed driver supports, e.g. `'13.0'`. */
  driverVersion: string;
  /** CUDA runtime the addon was built with, e.g. `'13.0'`. */
  runtimeVersion: string;
}

/**
 * Whether the CUDA backend is compiled in and usable, and why not.
 *
 * @example
 * ```ts
 * const { cuda } = info();
 * if (!cuda.usable) console.log(`CPU only: ${cuda.reason}`);
 * else console.log(`${cuda.device?.name} (sm ${cuda.device?.computeCapability})`);
 * ```
 */
export interface CudaInfo {
  /** The loaded addon is the CUDA build (vlkernels_cuda.node). */
  built: boolean;
  /** A GPU can run `device: 'cuda'` now. */
  usable: boolean;
  /**
   * Why not usable (empty when usable): 'built without CUDA (...)', 'no CUDA driver (...)', 'no
   * CUDA device', 'CUDA driver too old: ...', why the CUDA build failed to load, or 'VLK_CUDA=0'.
   */
  reason: string;
  /** CUDA devices the driver reports (0 without a driver). */
  deviceCount: number;
  /** CUDA runtime the loaded CUDA build was compiled with, e.g. `'13.0'` (CUDA builds only). */
  runtimeVersion?: string;
  /** CUDA version the installed driver supports, e.g. `'13.0'` (when a driver was found). */
  driverVersion?: string;
  /** Device 0, when one was found. */
  device?: CudaDeviceInfo;
  /** The CUDA build's file, when one was found (loaded, or tried and failed, or skipped by VLK_CUDA=0). */
  addonPath?: string;
}

/** What {@link info} reports about the loaded addon. */
export interface Info {
  /** Package version. */
  version: string;
  /** Kernel path used by calls that start now. */
  isa: string;
  /** Every kernel path usable here (capped by `VLK_FORCE_ISA`), ascending. */
  isas: string[];
  /** Best path the CPU and OS support. */
  detectedIsa: string;
  /** Size of the native thread pool (`VLK_THREADS`, else the number of cores). */
  threads: number;
  /** Tasks queued on the pool and not yet started. */
  queueDepth: number;
  /** Node-API version the addon is built for. */
  napiVersion: number;
  /** The block cache that keeps large scratch buffers and outputs mapped between calls. */
  memory: MemoryInfo;
  cuda: CudaInfo;
  /** Set only when the ISA configuration is invalid (a bad `VLK_FORCE_ISA`). */
  isaError?: string;
}
