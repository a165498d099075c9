// Exact mutable vector index (lib): FlatIndex keeps vectors with user ids in native memory
// (core/index/flat_index: f32 rows in append-only blocks), add/remove/has/get on this thread,
// search on the addon's pool (AbortSignal through a native cancel token) or on this thread.
// Validation here gives the messages; the binding repeats every check with the same codes.
import { fileURLToPath } from 'node:url';
import { types } from 'node:util';
import { atApi, fromNative, VlkError } from './errors';
import { describe, isRecord, readDevice, readMatrix, readMetric, readPrecision, readThreads, shapeMatrix } from './args';
import { readSignal, runCancellable } from './cancel';
import { readId, readIds, readRows } from './ids';
import {
  binding,
  type NativeFlatIndex,
  type NativeFlatIndexFilter,
  type NativeFlatIndexSearchOptions,
  type NativeMatrix,
} from './loader';
import type {
  Device,
  FlatIndexAddResult,
  FlatIndexLoadOptions,
  FlatIndexSaveOptions,
  ProgressCallback,
  FlatIndexMemoryUsage,
  FlatIndexOptions,
  FlatIndexSearchOptions,
  FlatIndexSearchResult,
  FlatIndexStorage,
  IdsInput,
  MatrixInput,
  Metric,
} from './types';

const MAX_INT32 = 2 ** 31 - 1; // dim and k (counts are an Int32Array)

interface PreparedSearch {
  queries: NativeMatrix;
  options: NativeFlatIndexSearchOptions;
  signal: AbortSignal | undefined;
}

// Check order (and so the code for an input with several faults) matches native/binding/flat_index.cpp.
function prepareSearch(queries: unknown, options: unknown, dim: number, async: boolean, device: 'cpu' | 'cuda'): PreparedSearch {
  if (!isRecord(options)) {
    throw new VlkError('ERR_VLK_TYPE', `options: expected an object such as { k: 10 }, got ${describe(options)}`);
  }
  const q = readRows(queries, 'queries', dim);
  if (q.rows === 0) throw new VlkError('ERR_VLK_EMPTY', `queries: shape 0 x ${q.cols} is empty`);
  return { queries: q, ...prepareSearchOptions(options, q.rows, async, device) };
}

/** The options half of a search of `rows` queries (also composedSearch's, whose queries are composed natively). */
export function prepareSearchOptions(
  options: Record<string, unknown>,
  rows: number,
  async: boolean,
  device: 'cpu' | 'cuda',
): { options: NativeFlatIndexSearchOptions; signal: AbortSignal | undefined } {
  const k = options.k;
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 1 || k > MAX_INT32) {
    const got = typeof k === 'number' ? String(k) : describe(k);
    throw new VlkError('ERR_VLK_INVALID_K', `options.k: ${got} is not an integer in 1..${MAX_INT32}`);
  }
  const threads = readThreads(options.threads);
  const filter = readFilter(options.filter, rows);
  const precision = readPrecision(options.precision, device);
  const signal = async ? readSignal(options.signal, 'options.signal') : undefined;
  const native: NativeFlatIndexSearchOptions = { k };
  if (threads !== undefined) native.threads = threads;
  if (filter !== undefined) native.filter = filter;
  if (precision !== 'exact') native.precision = precision;
  return { options: native, signal };
}

// options.filter -> the binding's typed form: allow ids as a Float64Array/BigInt64Array; exclude as
// one id per query (-1: none) or CSR { offsets: Int32Array, ids }.
function readFilter(value: unknown, queries: number): NativeFlatIndexFilter | undefined {
  if (value === undefined) return undefined;
  if (!isRecord(value)) {
    throw new VlkError('ERR_VLK_TYPE', `options.filter: expected an object { allow?, exclude? }, got ${describe(value)}`);
  }
  const out: NativeFlatIndexFilter = {};
  if (value.allow !== undefined) {
    const allow = value.allow instanceof Set ? Array.from(value.allow as Set<unknown>) : value.allow;
    if (Array.isArray(allow) && allow.some((v) => typeof v === 'bigint')) {
      out.allow = BigInt64Array.from(allow.map((v, i) => BigInt(readId(v, `options.filter.allow[${i}]`))));
    } else {
      out.allow = readIds(allow, undefined, 'options.filter.allow');
    }
  }
  const ex = value.exclude;
  if (ex === undefined) return out;
  if (Array.isArray(ex)) {
    // One entry per query: an id, null/undefined (none), or an array of ids.
    if (ex.length !== queries) {
      throw new VlkError('ERR_VLK_SHAPE', `options.filter.exclude: length ${ex.length} is not the number of queries (${queries})`);
    }
    const offsets = new Int32Array(queries + 1);
    const ids: (number | bigint)[] = [];
    for (let q = 0; q < queries; q++) {
      const e = ex[q];
      const list = e === null || e === undefined ? [] : Array.isArray(e) || types.isTypedArray(e) ? Array.from(e as ArrayLike<number | bigint>) : [e];
      list.forEach((v, j) => ids.push(readId(v, `options.filter.exclude[${q}]${Array.isArray(e) || types.isTypedArray(e) ? `[${j}]` : ''}`)));
      offsets[q + 1] = ids.length;
    }
    const big = ids.some((v) => typeof v === 'bigint');
    out.exclude = {
      offsets,
      ids: big ? BigInt64Array.from(ids.map((v) => BigInt(v))) : Float64Array.from(ids as number[]),
    };
    return out;
  }
  if (types.isFloat64Array(ex) || types.isBigInt64Array(ex)) {
    if (ex.length !== queries) {
      throw new VlkError('ERR_VLK_SHAPE', `options.filter.exclude: length ${ex.length} is not the number of queries (${queries})`);
    }
    out.exclude = ex;
    return out;
  }
  if (isRecord(ex) && ex.offsets !== undefined) {
    if (!types.isInt32Array(ex.offsets)) {
      throw new VlkError('ERR_VLK_TYPE', `options.filter.exclude.offsets: expected an Int32Array, got ${describe(ex.offsets)}`);
    }
    out.exclude = { offsets: ex.offsets, ids: readIds(ex.ids, undefined, 'options.filter.exclude.ids') };
    return out;
  }
  throw new VlkError(
    'ERR_VLK_TYPE',
    `options.filter.exclude: expected an array (per query: an id, null, or ids), a Float64Array/BigInt64Array of one id per query (-1: none), or { offsets, ids }, got ${describe(ex)}`,
  );
}

/**
 * An exact, mutable index of vectors with user ids, held in native memory: add and remove vectors
 * at any time (also while searches run), and search it exactly, with the same scores, bit for bit,
 * and the same order as {@link search} over the live vectors in insertion order (ties: earlier
 * insertion first).
 *
 * Vectors are copied into the index by {@link FlatIndex.add}. Rows live in append-only native
 * blocks (1,024 rows or the size of the first add, then doubling), so an add may reserve room
 * ahead (`memoryUsage()` tells); removed rows keep their memory until {@link FlatIndex.compact}. Storage
 * 'bf16' / 'i8' adds codes beside the fp32 rows (or, approximate, instead of them). A search runs
 * on a snapshot taken when it starts: adds and removes never wait for it, and it never sees a
 * half-written row. Call {@link FlatIndex.close} (or `using`) to free the native memory at once;
 * otherwise it is freed when the object is garbage-collected.
 *
 * @example
 * ```ts
 * import { FlatIndex } from 'vlkernels';
 * using index = new FlatIndex({ dim: 512, metric: 'cosine' });
 * index.add(embeddings, [101, 102, 103]);          // 3 x 512 Float32Array, user ids
 * const { ids, scores } = await index.search(query, { k: 2 });
 * index.remove(102);
 * ```
 */
// Set while FlatIndex.load / fromBuffer wrap a native index the binding built: the constructor
// takes it instead of creating one (and moves it to options.device).
let adopting: NativeFlatIndex | null = null;

function readPath(path: unknown, name = 'path'): string {
  if (path instanceof URL) {
    // fileURLToPath throws a plain TypeError for an http: URL or a file: URL with a host.
    try {
      return fileURLToPath(path);
    } catch (err) {
      throw new VlkError('ERR_VLK_TYPE', `${name}: expected a local file: URL, got ${path.protocol} URL (${(err as Error).message})`);
    }
  }
  if (typeof path !== 'string' || path.length === 0) {
    throw new VlkError('ERR_VLK_TYPE', `${name}: expected a non-empty string or a file: URL, got ${describe(path)}`);
  }
  return path;
}

function readOnProgress(options: Record<string, unknown>): ProgressCallback | undefined {
  const p = options.onProgress;
  if (p !== undefined && typeof p !== 'function') {
    throw new VlkError('ERR_VLK_TYPE', `options.onProgress: expected a function, got ${describe(p)}`);
  }
  return p as ProgressCallback | undefined;
}

function readIoOptions(options: unknown, async: boolean): { onProgress?: ProgressCallback; signal?: AbortSignal; mmap: boolean } {
  if (options === undefined) return { mmap: false };
  if (!isRecord(options)) throw new VlkError('ERR_VLK_TYPE', `options: expected an object, got ${describe(options)}`);
  const mmap = options.mmap ?? false;
  if (typeof mmap !== 'boolean') throw new VlkError('ERR_VLK_TYPE', `options.mmap: expected a boolean, got ${describe(mmap)}`);
  return {
    mmap,
    onProgress: async ? readOnProgress(options) : undefined,
    signal: async ? readSignal(options.signal, 'options.signal') : undefined,
  };
}

// Runs a native job that fills `cells` with (done, total) bytes, calling onProgress from a timer on
// this thread while it runs and once at the end. An error thrown by onProgress rejects the call
// (after the job ends).
async function withProgress<T>(
  onProgress: ProgressCallback | undefined,
  run: (cells: Float64Array | undefined) => Promise<T>,
): Promise<T> {
  if (onProgress === undefined) return run(undefined);
  const cells = new Float64Array(2);
  let last = -1;
  let failure: unknown;
  const tick = (): void => {
    const done = cells[0];
    const total = cells[1];
    if (failure !== undefined || total <= 0 || done === last) return;
    last = done;
    try {
      onProgress(done, total);
    } catch (err) {
      failure = err;
    }
  };
  const timer = setInterval(tick, 50);
  try {
    const result = await run(cells);
    tick();
    if (failure !== undefined) throw failure;
    return result;
  } finally {
    clearInterval(timer);
  }
}

let openNative: (index: FlatIndex) => NativeFlatIndex;

/** The open native index behind `index` (lib-internal; ERR_VLK_INVALID_ARG once closed). */
export function nativeIndexOf(index: FlatIndex): NativeFlatIndex {
  return openNative(index);
}

export class FlatIndex implements Disposable {
  /**
   * Vector length (options.dim); readable after close().
   *
   * @example
   * ```ts
   * new FlatIndex({ dim: 512 }).dim; // 512
   * ```
   * @throws Nothing.
   */
  readonly dim: number;
  /**
   * Similarity measure of every search (options.metric, default 'ip'); readable after close().
   *
   * @example
   * ```ts
   * new FlatIndex({ dim: 8, metric: 'l2' }).metric; // 'l2'
   * ```
   * @throws Nothing.
   */
  readonly metric: Metric;
  /**
   * How vectors are stored ('f32', 'bf16' or 'i8'); readable after close().
   *
   * @example
   * ```ts
   * new FlatIndex({ dim: 8 }).storage; // 'f32'
   * ```
   * @throws Nothing.
   */
  readonly storage: FlatIndexStorage;
  /**
   * bf16/i8 only: true when the index keeps the codes alone (no fp32 copy, scores estimated from
   * the codes, no re-score); false (default): exact. Readable after close().
   *
   * @throws Nothing.
   */
  readonly approximate: boolean;
  /**
   * Where searches run, as resolved when the index was made: `'cuda'` (a copy of the live vectors
   * resident on the GPU, see {@link FlatIndexOptions.device}) or `'cpu'` (the default, and what
   * `device: 'auto'` gives without a usable GPU or with bf16/i8 storage). Readable after close().
   *
   * @example
   * ```ts
   * const index = new FlatIndex({ dim: 512, device: 'auto' });
   * console.log(`searching on ${index.device}`); // 'cuda' on a GPU machine, else 'cpu'
   * ```
   * @throws Nothing.
   */
  readonly device: 'cpu' | 'cuda';
  #native: NativeFlatIndex | null;

  /**
   * Creates an empty index.
   *
   * @param options - `dim` (an integer in 1..2^31 - 1; i8: up to 65536), `metric` ('ip' default,
   *   'cosine', 'l2'), `storage` ('f32' default, 'bf16', 'i8': see {@link FlatIndexStorage}),
   *   `approximate` (bf16/i8: keep codes only, default false), `device` ('cpu' default, 'cuda',
   *   'auto': see {@link FlatIndexOptions.device}).
   *
   * @example
   * ```ts
   * const index = new FlatIndex({ dim: 384, metric: 'l2' });
   * const onGpu = new FlatIndex({ dim: 512, metric: 'cosine', device: 'cuda' });
   * ```
   * @throws VlkError with code ERR_VLK_TYPE (options not an object, approximate not a boolean),
   * ERR_VLK_INVALID_ARG (dim not an integer in 1..2^31 - 1 or above 65536 for i8, unknown metric,
   * storage or device, approximate with f32, device 'cuda' with bf16/i8 storage),
   * ERR_VLK_NO_DEVICE (device 'cuda' where CUDA is not usable: the message gives the reason, as
   * `info().cuda.reason`), ERR_VLK_OUT_OF_MEMORY.
   */
  constructor(options: FlatIndexOptions) {
    const { dim, metric, storage, approximate, device } = atApi(() => {
      if (!isRecord(options)) {
        throw new VlkError('ERR_VLK_TYPE', `options: expected an object such as { dim: 512 }, got ${describe(options)}`);
      }
      const d = options.dim;
      if (typeof d !== 'number' || !Number.isInteger(d) || d < 1 || d > MAX_INT32) {
        const got = typeof d === 'number' ? String(d) : describe(d);
        throw new VlkError('ERR_VLK_INVALID_ARG', `options.dim: ${got} is not an integer in 1..${MAX_INT32}`);
      }
      const m = readMetric(options.metric);
      const storage: unknown = options.storage ?? 'f32';
      if (storage !== 'f32' && storage !== 'bf16' && storage !== 'i8') {
        const got = typeof storage === 'string' ? `'${storage}'` : describe(storage);
        throw new VlkError('ERR_VLK_INVALID_ARG', `options.storage: expected 'f32', 'bf16' or 'i8', got ${got}`);
      }
      const approximate: unknown = options.approximate ?? false;
      if (typeof approximate !== 'boolean') {
        throw new VlkError('ERR_VLK_TYPE', `options.approximate: expected a boolean, got ${describe(approximate)}`);
      }
      if (approximate && storage === 'f32') {
        throw new VlkError(
          'ERR_VLK_INVALID_ARG',
          "options.approximate: only for storage 'bf16' or 'i8' (f32 is always exact)",
        );
      }
      if (storage === 'i8' && d > 65536) {
        throw new VlkError('ERR_VLK_INVALID_ARG', `options.dim: ${d} exceeds 65536, the largest i8 storage takes`);
      }
      const device = readDevice(options.device);
      if (device === 'cuda' && storage !== 'f32') {
        throw new VlkError(
          'ERR_VLK_INVALID_ARG',
          `options.device: 'cuda' needs storage 'f32' (got '${storage}'): the GPU scans its own bf16 codes of the fp32 rows`,
        );
      }
      return { dim: d, metric: m as Metric, storage: storage as FlatIndexStorage, approximate, device };
    }, FlatIndex);
    this.dim = dim;
    this.metric = metric;
    this.storage = storage;
    this.approximate = approximate;
    let native: NativeFlatIndex;
    try {
      if (adopting !== null) {
        native = adopting;
        if (device !== 'cpu') native.setDevice(device);
      } else {
        native = binding.createFlatIndex(dim, metric, storage, approximate, device);
      }
    } catch (err) {
      throw fromNative(err, FlatIndex);
    }
    this.#native = native;
    this.device = native.describe().device;
  }

  // The native index, or the "index is closed" error.
  #open(): NativeFlatIndex {
    if (this.#native === null) throw new VlkError('ERR_VLK_INVALID_ARG', 'index is closed');
    return this.#native;
  }

  static {
    // For lib's composedSearch (one native call on the index); not part of the public API.
    openNative = (index) => index.#open();
  }

  // Runs a native call; its errors become VlkError whose stack starts at the caller of `api`.
  #call<T>(api: Function, step: (native: NativeFlatIndex) => T): T {
    const native = atApi(() => this.#open(), api);
    try {
      return step(native);
    } catch (err) {
      throw fromNative(err, api);
    }
  }

  /**
   * Live vectors (added and not removed).
   *
   * @example
   * ```ts
   * index.add(new Float32Array(3 * index.dim));
   * index.size; // 3
   * ```
   * @throws VlkError ERR_VLK_INVALID_ARG ("index is closed") after {@link FlatIndex.close}.
   */
  get size(): number {
    return this.#call(sizeGetter, (n) => n.size());
  }

  /**
   * Native bytes the index holds (see {@link FlatIndexMemoryUsage}); the same amount is reported
   * to V8 as external memory, so garbage collection sees it.
   *
   * @example
   * ```ts
   * const { bytes, bytesPerVector } = index.memoryUsage();
   * console.log(`${(bytes / 2 ** 20).toFixed(1)} MiB, ${bytesPerVector.toFixed(0)} B per vector`);
   * ```
   * @throws VlkError ERR_VLK_INVALID_ARG ("index is closed") after {@link FlatIndex.close}.
   */
  memoryUsage(): FlatIndexMemoryUsage {
    return this.#call(FlatIndex.prototype.memoryUsage, (n) => {
      const bytes = n.memoryUsage();
      return { bytes, bytesPerVector: bytes / Math.max(n.size(), 1) };
    });
  }

  /**
   * Copies vectors into the index, all or nothing. With `ids`, each vector gets its id (unique in
   * the call and not already in the index; a removed id may be used again); without, automatic ids
   * from one past the largest id the index was ever given (0 for a new index).
   *
   * @param vectors - n x dim: a Float32Array of n * dim values, or a `{ data, rows, cols }` /
   *   `{ data, dims }` view with cols = dim. Copied: the caller may reuse it at once.
   * @param ids - n ids: numbers (integers in 0..2^53 - 1, as an array, a Float64Array or any
   *   array-like) or a BigInt64Array (ids in 0..2^63 - 1, which makes search results
   *   BigInt64Array from then on).
   * @returns `{ firstId }`: without ids, the first automatic id (a number; a bigint once the index
   *   was given BigInt64Array ids); with ids, undefined.
   *
   * @example
   * ```ts
   * const index = new FlatIndex({ dim: 4 });
   * index.add(new Float32Array(8), [10, 20]);              // ids 10 and 20
   * const { firstId } = index.add(new Float32Array(4));    // firstId 21
   * index.add({ data: rows, rows: 2, cols: 4 }, BigInt64Array.from([2n ** 60n, 7n]));
   * ```
   * @throws VlkError with code ERR_VLK_TYPE (vectors not a Float32Array or view, ids not an array
   * of numbers, a Float64Array or a BigInt64Array), ERR_VLK_DIM_MISMATCH (cols or length vs dim),
   * ERR_VLK_SHAPE (a view's shape, ids length != n), ERR_VLK_INVALID_ARG (an id negative, not an
   * integer, beyond 2^53 - 1 as a number, repeated in the call or already in the index; automatic
   * ids past 2^53 - 1 on a number-id index; "index is closed"), ERR_VLK_NON_FINITE (NaN, Infinity,
   * or a row whose squared norm would overflow a search), ERR_VLK_OUT_OF_MEMORY. On any error
   * nothing is added.
   */
  add(vectors: MatrixInput, ids?: IdsInput): FlatIndexAddResult {
    return this.#call(FlatIndex.prototype.add, (n) => {
      const { matrix, idArray } = atApi(() => {
        const matrix = readRows(vectors, 'vectors', this.dim);
        return { matrix, idArray: ids === undefined ? undefined : readIds(ids, matrix.rows) };
      }, FlatIndex.prototype.add);
      return { firstId: n.add(matrix, idArray) };
    });
  }

  /**
   * Removes vectors by id, all or nothing.
   *
   * @param ids - One id (a number or a bigint) or several (as in {@link FlatIndex.add}).
   * @returns How many were removed (all of them).
   *
   * @example
   * ```ts
   * index.remove(17);
   * index.remove([3, 4, 5]); // 3
   * index.remove(2n ** 60n);
   * ```
   * @throws VlkError with code ERR_VLK_TYPE (not a number, bigint or array of them),
   * ERR_VLK_INVALID_ARG (an id not in the index, listed twice, negative, or not an integer in
   * 0..2^53 - 1 as a number; "index is closed"). On any error nothing is removed.
   */
  remove(ids: IdsInput | number | bigint): number {
    return this.#call(FlatIndex.prototype.remove, (n) => {
      const idArray = atApi(() => {
        if (typeof ids === 'number') return Float64Array.of(readId(ids, 'ids[0]') as number);
        if (typeof ids === 'bigint') return BigInt64Array.of(readId(ids, 'ids[0]') as bigint);
        return readIds(ids, undefined);
      }, FlatIndex.prototype.remove);
      return n.remove(idArray);
    });
  }

  /**
   * Gives back the memory of removed vectors: the live ones are rewritten, in insertion order, into
   * fresh storage (results and tie order do not change). It copies every live vector while holding
   * the index's lock, so call it when a service is quiet, e.g. after a large removal; searches
   * already running finish on the old storage.
   *
   * @returns Bytes released.
   * @example
   * ```ts
   * index.remove(staleIds);
   * if (index.memoryUsage().bytesPerVector > 2 * 4 * index.dim) index.compact();
   * ```
   * @throws VlkError ERR_VLK_OUT_OF_MEMORY (the index is left as it was), ERR_VLK_INVALID_ARG after close().
   */
  compact(): number {
    return this.#call(FlatIndex.prototype.compact, (n) => n.compact());
  }

  /**
   * Whether a vector with this id is in the index.
   *
   * @param id - An integer in 0..2^53 - 1, or a bigint in 0..2^63 - 1.
   *
   * @example
   * ```ts
   * index.add(new Float32Array(index.dim), [42]);
   * index.has(42);  // true
   * index.has(42n); // true
   * ```
   * @throws VlkError with code ERR_VLK_TYPE (not a number or bigint), ERR_VLK_INVALID_ARG (a
   * negative or non-integer id, a number beyond 2^53 - 1; "index is closed").
   */
  has(id: number | bigint): boolean {
    return this.#call(FlatIndex.prototype.has, (n) => n.has(atApi(() => readId(id, 'id'), FlatIndex.prototype.has)));
  }

  /**
   * A copy of the vector stored under `id` (dim values).
   *
   * @param id - An integer in 0..2^53 - 1, or a bigint in 0..2^63 - 1.
   *
   * @example
   * ```ts
   * index.add(Float32Array.of(1, 2, 3, 4), [7]);
   * index.get(7); // Float32Array [1, 2, 3, 4]
   * ```
   * @throws VlkError with code ERR_VLK_TYPE (not a number or bigint), ERR_VLK_INVALID_ARG (id not
   * in the index, negative, not an integer, a number beyond 2^53 - 1; "index is closed").
   */
  get(id: number | bigint): Float32Array {
    return this.#call(FlatIndex.prototype.get, (n) => n.get(atApi(() => readId(id, 'id'), FlatIndex.prototype.get)));
  }

  /**
   * Exact top-k of the index's live vectors for each query, off the event loop: the work runs on
   * the addon's own thread pool (never libuv's). The search sees the index as it was when it
   * started (a snapshot); adds and removes made meanwhile neither wait nor show. Scores are
   * exactly those {@link search} gives over the live vectors in insertion order, and so is the
   * order (ties: earlier insertion first). Closing or dropping the index while it runs is safe:
   * the search finishes on its snapshot, then the memory is freed.
   *
   * @param queries - Q x dim (a Float32Array of Q * dim values, or a view with cols = dim). Read in
   *   place: do not mutate or transfer it until the promise settles.
   * @param options - `k` (results per query, 1..2^31 - 1; k > size pads), `threads`, `filter`,
   *   `precision` ('exact' default; 'bf16' on a 'cuda' index), `signal`. On a 'cuda' index the
   *   first search after a change uploads the live vectors to the GPU (once per change).
   * @returns `{ ids, scores, counts, k, count }`, row-major count x k; `counts[q]` = min(k, size);
   *   the rest of each row is id -1 (-1n) and score NaN. ids are a BigInt64Array once the index
   *   was given BigInt64Array ids, else a Float64Array of exact integers.
   *
   * @example
   * ```ts
   * const { ids, scores, counts } = await index.search(queries, { k: 10, signal: AbortSignal.timeout(500) });
   * const bestForQuery2 = ids[2 * 10];
   * ```
   * @throws VlkError (as a rejection) with code ERR_VLK_TYPE (queries not a Float32Array or view,
   * options not an object), ERR_VLK_DIM_MISMATCH, ERR_VLK_SHAPE, ERR_VLK_EMPTY (no queries),
   * ERR_VLK_INVALID_K (k not an integer in 1..2^31 - 1), ERR_VLK_NON_FINITE (NaN or Infinity in
   * queries), ERR_VLK_INVALID_ARG (threads, signal, precision, "index is closed"; on a 'cuda'
   * index: k above 1024 or more than 2,097,152 vectors), ERR_VLK_UNSUPPORTED_ISA,
   * ERR_VLK_OUT_OF_MEMORY (host, or GPU memory on a 'cuda' index), ERR_VLK_NO_DEVICE (the GPU
   * became unusable); AbortError (code ABORT_ERR, cause = signal.reason) when `signal` aborts.
   */
  async search(queries: MatrixInput, options: FlatIndexSearchOptions): Promise<FlatIndexSearchResult> {
    const api = FlatIndex.prototype.search;
    const native = atApi(() => this.#open(), api);
    const prepared = atApi(() => prepareSearch(queries, options, this.dim, true, this.device), api);
    return runCancellable(prepared.signal, api, (token) =>
      native.searchAsync(prepared.queries, prepared.options, token),
    );
  }

  /**
   * The same search on the calling thread (it blocks the event loop for its duration; it still
   * uses the addon's pool for parallelism). Same contract as {@link FlatIndex.search}; `signal` is
   * ignored.
   *
   * @example
   * ```ts
   * const { ids, scores, k } = index.searchSync({ data: queries, rows: 4, cols: index.dim }, { k: 3 });
   * ```
   * @throws VlkError with code ERR_VLK_TYPE, ERR_VLK_DIM_MISMATCH, ERR_VLK_SHAPE, ERR_VLK_EMPTY,
   * ERR_VLK_INVALID_K, ERR_VLK_NON_FINITE, ERR_VLK_INVALID_ARG, ERR_VLK_UNSUPPORTED_ISA or
   * ERR_VLK_OUT_OF_MEMORY (see {@link FlatIndex.search}).
   */
  searchSync(queries: MatrixInput, options: FlatIndexSearchOptions): FlatIndexSearchResult {
    const api = FlatIndex.prototype.searchSync;
    return this.#call(api, (n) => {
      const prepared = atApi(() => prepareSearch(queries, options, this.dim, false, this.device), api);
      return n.searchSync(prepared.queries, prepared.options);
    });
  }

  /**
   * Saves the index to `path`: a versioned little-endian file with a CRC32C over header and
   * payload (docs/index-format.md), written to a temporary file in the same folder, fsynced and
   * renamed into place, so `path` holds either the old file or the complete new one, never a part.
   * The index is saved as it was when the call started (adds and removes meanwhile are not in it);
   * removed vectors are left out. Runs on the addon's pool.
   *
   * @param path - File path (a string or a file: URL).
   * @param options - `onProgress(doneBytes, totalBytes)` (called on this thread about every 50 ms
   *   and at the end), `signal` (aborts; the target is left as it was).
   * @example
   * ```ts
   * await index.save('/data/gallery.vlk', { onProgress: (d, t) => console.log(`${(100 * d / t).toFixed(0)} %`) });
   * ```
   * @throws VlkError (as a rejection) ERR_VLK_TYPE (path, options), ERR_VLK_IO (the folder does not
   * exist, no permission, disk full: the message names the path and the reason),
   * ERR_VLK_OUT_OF_MEMORY, ERR_VLK_INVALID_ARG ("index is closed"); AbortError.
   */
  async save(path: string | URL, options?: FlatIndexSaveOptions): Promise<void> {
    const api = FlatIndex.prototype.save;
    const native = atApi(() => this.#open(), api);
    const { file, io } = atApi(() => ({ file: readPath(path), io: readIoOptions(options, true) }), api);
    await withProgress(io.onProgress, (cells) =>
      runCancellable(io.signal, api, (token) => native.saveAsync(file, cells, token)),
    );
  }

  /** {@link FlatIndex.save} on the calling thread (blocks the event loop for the write). */
  saveSync(path: string | URL): void {
    const api = FlatIndex.prototype.saveSync;
    this.#call(api, (n) => n.saveSync(atApi(() => readPath(path), api)));
  }

  /**
   * The index's file image (the same bytes {@link FlatIndex.save} writes) in a Buffer, for object
   * stores and caches. Encoded on the addon's pool.
   *
   * @example
   * ```ts
   * await s3.putObject({ Bucket, Key: 'gallery.vlk', Body: await index.toBuffer() });
   * ```
   * @throws VlkError (as a rejection) ERR_VLK_OUT_OF_MEMORY, ERR_VLK_INVALID_ARG ("index is
   * closed"); AbortError.
   */
  async toBuffer(options?: Omit<FlatIndexSaveOptions, never>): Promise<Buffer> {
    const api = FlatIndex.prototype.toBuffer;
    const native = atApi(() => this.#open(), api);
    const io = atApi(() => readIoOptions(options, true), api);
    return withProgress(io.onProgress, (cells) =>
      runCancellable(io.signal, api, (token) => native.toBufferAsync(cells, token)),
    );
  }

  /** {@link FlatIndex.toBuffer} on the calling thread. */
  toBufferSync(): Buffer {
    return this.#call(FlatIndex.prototype.toBufferSync, (n) => n.toBufferSync());
  }

  /**
   * Loads an index saved by {@link FlatIndex.save}. Every size field and both checksums are
   * verified before anything is trusted or allocated: a truncated, corrupt or hostile file gives
   * ERR_VLK_CORRUPT naming the field, never a crash or a huge allocation.
   *
   * @param options - `mmap` (map the file and use its fp32 rows in place instead of copying them:
   *   they are then paged in from the page cache on demand and not counted by memoryUsage(); the
   *   file must not be modified in place while the index lives, and a later save() to the same
   *   path is safe because it replaces the file), `device` (where the loaded index searches, as
   *   {@link FlatIndexOptions.device}; default 'cpu'), `onProgress`, `signal`.
   * @example
   * ```ts
   * const index = await FlatIndex.load('/data/gallery.vlk', { mmap: true });
   * const onGpu = await FlatIndex.load('/data/gallery.vlk', { device: 'auto' });
   * ```
   * @throws VlkError (as a rejection) ERR_VLK_IO (cannot open or read: names the path),
   * ERR_VLK_CORRUPT (not a valid index file: names the field, the value found and the one
   * expected), ERR_VLK_OUT_OF_MEMORY, ERR_VLK_TYPE, ERR_VLK_INVALID_ARG / ERR_VLK_NO_DEVICE
   * (options.device, as the constructor); AbortError.
   */
  static async load(path: string | URL, options?: FlatIndexLoadOptions): Promise<FlatIndex> {
    const api = FlatIndex.load;
    const { file, io, device } = atApi(
      () => ({ file: readPath(path), io: readIoOptions(options, true), device: readLoadDevice(options) }),
      api,
    );
    const native = await withProgress(io.onProgress, (cells) =>
      runCancellable(io.signal, api, (token) => binding.loadFlatIndexAsync(file, io.mmap, cells, token)),
    );
    return adopt(native, device);
  }

  /** {@link FlatIndex.load} on the calling thread (`mmap` and `device` honoured; no progress or signal). */
  static loadSync(path: string | URL, options?: Pick<FlatIndexLoadOptions, 'mmap' | 'device'>): FlatIndex {
    const api = FlatIndex.loadSync;
    const { file, io, device } = atApi(
      () => ({ file: readPath(path), io: readIoOptions(options, false), device: readLoadDevice(options) }),
      api,
    );
    let native: NativeFlatIndex;
    try {
      native = binding.loadFlatIndexSync(file, io.mmap);
    } catch (err) {
      throw fromNative(err, api);
    }
    return adopt(native, device);
  }

  /**
   * An index from the bytes of {@link FlatIndex.toBuffer} (or a saved file's contents), validated
   * like {@link FlatIndex.load} and copied (the buffer may be reused afterwards).
   *
   * @example
   * ```ts
   * const index = await FlatIndex.fromBuffer(await fs.promises.readFile('gallery.vlk'));
   * ```
   * @throws VlkError (as a rejection) ERR_VLK_TYPE (not a Uint8Array), ERR_VLK_CORRUPT,
   * ERR_VLK_OUT_OF_MEMORY; AbortError.
   */
  static async fromBuffer(bytes: Uint8Array, options?: FlatIndexSaveOptions): Promise<FlatIndex> {
    const api = FlatIndex.fromBuffer;
    const io = atApi(() => {
      if (!types.isUint8Array(bytes)) throw new VlkError('ERR_VLK_TYPE', `buffer: expected a Buffer or Uint8Array, got ${describe(bytes)}`);
      return readIoOptions(options, true);
    }, api);
    const native = await withProgress(io.onProgress, (cells) =>
      runCancellable(io.signal, api, (token) => binding.flatIndexFromBufferAsync(bytes, cells, token)),
    );
    return adopt(native);
  }

  /** {@link FlatIndex.fromBuffer} on the calling thread. */
  static fromBufferSync(bytes: Uint8Array): FlatIndex {
    const api = FlatIndex.fromBufferSync;
    atApi(() => {
      if (!types.isUint8Array(bytes)) throw new VlkError('ERR_VLK_TYPE', `buffer: expected a Buffer or Uint8Array, got ${describe(bytes)}`);
    }, api);
    try {
      return adopt(binding.flatIndexFromBufferSync(bytes));
    } catch (err) {
      throw fromNative(err, api);
    }
  }

  /**
   * Frees the native memory now (a search in flight keeps its snapshot until it ends). Every later
   * call but `close()` throws "index is closed"; `dim`, `metric` and `storage` stay readable.
   * Idempotent.
   *
   * @example
   * ```ts
   * const index = new FlatIndex({ dim: 8 });
   * try {
   *   index.add(vectors);
   * } finally {
   *   index.close();
   * }
   * ```
   * @throws Nothing.
   */
  close(): void {
    const native = this.#native;
    this.#native = null;
    native?.close();
  }

  /**
   * Same as {@link FlatIndex.close}, for `using` declarations.
   *
   * @example
   * ```ts
   * {
   *   using index = new FlatIndex({ dim: 8 });
   *   index.add(vectors);
   * } // closed here
   * ```
   * @throws Nothing.
   */
  [Symbol.dispose](): void {
    this.close();
  }
}

// The `size` getter, for stacks that start at its caller.
const sizeGetter: Function = Object.getOwnPropertyDescriptor(FlatIndex.prototype, 'size')!.get!;

// options.device of load / loadSync (validated before the file is read).
function readLoadDevice(options: unknown): Device {
  return isRecord(options) ? readDevice(options.device) : 'cpu';
}

// Wraps a native index that load / fromBuffer built; its options come from the file, its device
// from the call (an error there closes the native index).
function adopt(native: NativeFlatIndex, device: Device = 'cpu'): FlatIndex {
  const d = native.describe();
  adopting = native;
  try {
    return new FlatIndex({
      dim: d.dim,
      metric: d.metric as Metric,
      storage: d.storage as FlatIndexStorage,
      approximate: d.approximate,
      device,
    });
  } catch (err) {
    native.close();
    throw err;
  } finally {
    adopting = null;
  }
}
