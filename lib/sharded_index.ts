// One logical exact index split over worker threads (lib): ShardedIndex keeps S FlatIndex shards,
// each in its own worker_thread (sharded_worker.ts), routes every vector by id (shard = id % S),
// searches every shard with the same k (and the same id filter) and merges the per-shard lists
// exactly with mergeTopK. The main thread checks the inputs it needs itself (the same readers and
// messages as FlatIndex; other search options are checked by the shards' FlatIndex), owns the size
// and the automatic-id counter, applies add/remove/compact one at a time in call order (so a
// multi-shard add or remove is all or nothing), and turns worker replies back into VlkError /
// AbortError.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { types } from 'node:util';
import { Worker } from 'node:worker_threads';
import { abortError, AbortError, atApi, errorCodes, VlkError, type VlkErrorCode } from './errors';
import { describe, isRecord, readMatrix, readThreads, shapeMatrix } from './args';
import { readSignal } from './cancel';
import { readId, readIds, readRows } from './ids';
import { FlatIndex } from './flat_index';
import { mergeTopK } from './merge_top_k';
import type { NativeMatrix } from './loader';
import type { ShardInit, ShardMemory, ShardReply, ShardRequest } from './sharded_worker';
import type {
  FlatIndexAddResult,
  FlatIndexMemoryUsage,
  FlatIndexOptions,
  FlatIndexSearchOptions,
  FlatIndexSearchResult,
  FlatIndexStorage,
  IdsInput,
  MatrixInput,
  Metric,
  TopKPartial,
} from './types';

const MAX_INT32 = 2 ** 31 - 1; // k (counts are an Int32Array)
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MAX_BIGINT_ID = 2n ** 63n - 1n;
const MAX_SHARDS = 256;

/**
 * Options of the {@link ShardedIndex} constructor: those of {@link FlatIndex} plus `shards`.
 *
 * @example
 * ```ts
 * const options: ShardedIndexOptions = { dim: 512, metric: 'cosine', shards: 4 };
 * ```
 */
export interface ShardedIndexOptions extends FlatIndexOptions {
  /** Worker threads, one FlatIndex each: an integer in 1..256; default `min(os.availableParallelism(), 8)`. */
  shards?: number;
}

/** One shard's part of {@link ShardedIndexMemoryUsage}: its FlatIndex's memoryUsage() and size. */
export interface ShardedIndexShardMemory extends FlatIndexMemoryUsage {
  /** Live vectors in this shard. */
  size: number;
}

/**
 * What {@link ShardedIndex.memoryUsage} returns: the native bytes of every shard's FlatIndex (the
 * workers' own JS heaps are not counted), summed and per shard.
 *
 * @example
 * ```ts
 * const { bytes, shards } = await index.memoryUsage();
 * ```
 */
export interface ShardedIndexMemoryUsage extends FlatIndexMemoryUsage {
  /** Per shard, in shard order. */
  shards: ShardedIndexShardMemory[];
}

// ---------------------------------------------------------------------------------------------
// Input readers. readId / readIds / readRows / prepareSearch repeat flat_index.ts's private ones
// (same checks, order and messages), so a bad input gives the same VlkError as FlatIndex.

interface PreparedSearch {
  queries: NativeMatrix;
  k: number;
  /** What each shard's FlatIndex.search gets: the caller's options but `signal`. */
  shardOptions: Omit<FlatIndexSearchOptions, 'signal'>;
  signal: AbortSignal | undefined;
}

// queries, k, threads and signal as FlatIndex checks them (the main thread needs queries, k and the
// signal itself); the rest (filter, ...) is checked by the shards' FlatIndex.search, same messages.
function prepareSearch(queries: unknown, options: unknown, dim: number): PreparedSearch {
  if (!isRecord(options)) {
    throw new VlkError('ERR_VLK_TYPE', `options: expected an object such as { k: 10 }, got ${describe(options)}`);
  }
  const q = readRows(queries, 'queries', dim);
  if (q.rows === 0) throw new VlkError('ERR_VLK_EMPTY', `queries: shape 0 x ${q.cols} is empty`);
  const k = options.k;
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 1 || k > MAX_INT32) {
    const got = typeof k === 'number' ? String(k) : describe(k);
    throw new VlkError('ERR_VLK_INVALID_K', `options.k: ${got} is not an integer in 1..${MAX_INT32}`);
  }
  readThreads(options.threads);
  const signal = readSignal(options.signal, 'options.signal');
  const { signal: _, ...shardOptions } = options;
  return { queries: q, k, shardOptions: shardOptions as Omit<FlatIndexSearchOptions, 'signal'>, signal };
}

function readShards(value: unknown): number {
  if (value === undefined) return Math.min(availableParallelism(), 8);
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_SHARDS) {
    const got = typeof value === 'number' ? String(value) : describe(value);
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.shards: ${got} is not an integer in 1..${MAX_SHARDS}`);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Helpers: routing, error mapping, abort fan-out.

/** The shard of every id: id % shards (BigInt modulo for bigint ids). */
function routeIds(ids: Float64Array | BigInt64Array, shards: number): { route: Uint16Array; counts: number[] } {
  const route = new Uint16Array(ids.length);
  const counts = new Array<number>(shards).fill(0);
  if (types.isBigInt64Array(ids)) {
    const s = BigInt(shards);
    for (let i = 0; i < ids.length; i++) counts[(route[i] = Number(ids[i] % s))]++;
  } else {
    for (let i = 0; i < ids.length; i++) counts[(route[i] = (ids[i] as number) % shards)]++;
  }
  return { route, counts };
}

/** Each shard's share of `ids` (in call order), as arrays of the same type. */
function splitIds(ids: Float64Array | BigInt64Array, route: Uint16Array, counts: number[]): Array<Float64Array | BigInt64Array> {
  const big = types.isBigInt64Array(ids);
  const parts = counts.map((n) => (big ? new BigInt64Array(n) : new Float64Array(n)));
  const fill = new Array<number>(counts.length).fill(0);
  for (let i = 0; i < ids.length; i++) {
    const s = route[i];
    parts[s][fill[s]++] = ids[i];
  }
  return parts;
}

/** The position in the call of shard s's local row j. */
function globalRow(route: Uint16Array, s: number, j: number): number {
  for (let i = 0, seen = 0; i < route.length; i++) {
    if (route[i] === s && seen++ === j) return i;
  }
  return j;
}

// A shard's error names its own row ("ids[2]: ...", "vectors: row 2, column ..."): the same
// check FlatIndex made first over the whole call. `rank` orders the checks as FlatIndex runs them
// (NaN/Infinity over all rows, then squared norms, then ids), so the error kept is the one a single
// FlatIndex would have thrown, with its position in the call.
const ROW_PATTERNS: Array<[RegExp, number]> = [
  [/^(vectors: row )(\d+)(, column )/, 0],
  [/^(vectors: row )(\d+)( has a squared norm)/, 1],
  [/^(ids\[)(\d+)(\])/, 2],
];

interface MappedError {
  rank: number;
  row: number;
  error: VlkError;
}

function mapShardError(err: VlkError, route: Uint16Array, s: number): MappedError {
  for (const [re, rank] of ROW_PATTERNS) {
    const m = re.exec(err.message);
    if (m === null) continue;
    const row = globalRow(route, s, Number(m[2]));
    const message = m[1] + String(row) + m[3] + err.message.slice(m[0].length);
    return { rank, row, error: new VlkError(err.code, message) };
  }
  return { rank: ROW_PATTERNS.length, row: 0, error: err };
}

function firstError(errors: MappedError[]): VlkError {
  errors.sort((a, b) => a.rank - b.rank || a.row - b.row);
  return errors[0].error;
}

const knownCodes: ReadonlySet<string> = new Set<string>(errorCodes);

/** A worker's error reply as the VlkError (or AbortError) it was. */
function fromReply(code: string, message: string): VlkError {
  if (code === 'ABORT_ERR') return new AbortError(message);
  if (knownCodes.has(code)) return new VlkError(code as VlkErrorCode, message);
  return new VlkError('ERR_VLK_INTERNAL', message);
}

/** ids as the index's id type (shards that never saw bigint ids return numbers, and vice versa). */
function idsAs(ids: Float64Array | BigInt64Array, bigint: boolean): Float64Array | BigInt64Array {
  if (bigint && !types.isBigInt64Array(ids)) return BigInt64Array.from(ids as Float64Array, (v) => BigInt(v));
  if (!bigint && types.isBigInt64Array(ids)) return Float64Array.from(ids, (v) => Number(v));
  return ids;
}

// One 'abort' listener per signal, fanned out to every search in flight on it (as cancel.ts does
// for native tokens), so a signal shared by many calls never trips MaxListenersExceededWarning.
const abortWatchers = new WeakMap<AbortSignal, { calls: Set<() => void>; listener: () => void }>();

function watchAbort(signal: AbortSignal, onAbort: () => void): () => void {
  let entry = abortWatchers.get(signal);
  if (entry === undefined) {
    const calls = new Set<() => void>();
    const listener = () => {
      abortWatchers.delete(signal);
      for (const fn of [...calls]) fn();
    };
    entry = { calls, listener };
    abortWatchers.set(signal, entry);
    signal.addEventListener('abort', listener, { once: true });
  }
  const current = entry;
  current.calls.add(onAbort);
  return () => {
    current.calls.delete(onAbort);
    if (current.calls.size === 0 && abortWatchers.get(signal) === current) {
      abortWatchers.delete(signal);
      signal.removeEventListener('abort', current.listener);
    }
  };
}

const noop = () => {};

// ---------------------------------------------------------------------------------------------
// The workers. Kept apart from ShardedIndex (no reference back to it), so an unclosed, unreachable
// index can be garbage-collected and its workers stopped by the finalizer below.

interface Pending {
  resolve: (value: any) => void;
  reject: (err: unknown) => void;
}

class ShardPool {
  readonly workers: Worker[] = [];
  readonly #pending: Array<Map<number, Pending>> = [];
  #nextRequest = 1;
  #stopping = false;
  #stopWhenIdle = false;
  /** Why the pool is unusable (a worker died), or null. */
  dead: string | null = null;

  constructor(shards: number, init: ShardInit) {
    // From dist/cjs the built worker sits next to this file; running lib/*.ts directly (tsx), the
    // worker inherits the loader through execArgv and starts from the .ts source.
    const built = join(__dirname, 'sharded_worker.js');
    const file = existsSync(built) ? built : join(__dirname, 'sharded_worker.ts');
    for (let s = 0; s < shards; s++) {
      const worker = new Worker(file, { workerData: init, name: `vlkernels shard ${s}` });
      worker.unref(); // an idle shard never keeps the process alive
      worker.on('message', (reply: ShardReply) => this.#settle(s, reply));
      worker.on('error', (err: Error) => this.#die(`shard ${s}: its worker failed: ${err.message}`));
      worker.on('exit', (code: number) => this.#die(`shard ${s}: its worker exited (code ${code})`));
      this.workers.push(worker);
      this.#pending.push(new Map());
    }
  }

  /** Requests in flight on every shard. */
  get busy(): number {
    let n = 0;
    for (const p of this.#pending) n += p.size;
    return n;
  }

  newRequestId(): number {
    return this.#nextRequest++;
  }

  /** Sends a request to shard s; settles with its reply. */
  send<T>(s: number, msg: ShardRequest, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.dead !== null) return Promise.reject(new VlkError('ERR_VLK_INTERNAL', this.dead));
    return new Promise<T>((resolve, reject) => {
      const pending = this.#pending[s];
      try {
        this.workers[s].postMessage(msg, transfer);
      } catch (err) {
        // e.g. a search option that cannot be cloned (a function in options.filter)
        reject(new VlkError('ERR_VLK_TYPE', `cannot send the request to shard ${s}: ${(err as Error).message}`));
        return;
      }
      if (pending.size === 0) this.workers[s].ref(); // work in flight keeps the process alive
      pending.set(msg.id, { resolve, reject });
    });
  }

  /** Tells shard s to abort search `id` (its reply, an AbortError, still comes and is ignored). */
  abort(s: number, id: number): void {
    if (this.dead === null && this.#pending[s].has(id)) this.workers[s].postMessage({ op: 'abort', id } satisfies ShardRequest);
  }

  #settle(s: number, reply: ShardReply): void {
    const pending = this.#pending[s];
    const entry = pending.get(reply.id);
    if (entry === undefined) return;
    pending.delete(reply.id);
    if (pending.size === 0 && !this.#stopping) this.workers[s].unref(); // stop() holds a ref till exit
    if (reply.ok) entry.resolve(reply.value);
    else entry.reject(fromReply(reply.code, reply.message));
    if (this.#stopWhenIdle && this.busy === 0) void this.stop();
  }

  // A worker that fails or exits (other than by stop()) ends the pool: every request in flight
  // rejects with ERR_VLK_INTERNAL naming the shard, and the other workers are stopped.
  #die(reason: string): void {
    if (this.#stopping || this.dead !== null) return;
    this.dead = reason;
    for (const pending of this.#pending) {
      const entries = [...pending.values()];
      pending.clear();
      for (const p of entries) p.reject(new VlkError('ERR_VLK_INTERNAL', reason));
    }
    void this.stop();
  }

  /** Terminates every worker (idempotent). */
  async stop(): Promise<void> {
    this.#stopping = true;
    // ref() first: an unref'd worker's exit does not keep the loop alive, and the process could
    // end with close()'s promise pending.
    await Promise.all(
      this.workers.map((w) => {
        w.ref();
        return w.terminate().catch(noop);
      }),
    );
  }

  /** The index was garbage-collected: stop now, or once the requests in flight are answered. */
  release(): void {
    if (this.busy === 0) void this.stop();
    else this.#stopWhenIdle = true;
  }
}

const pools = new FinalizationRegistry<ShardPool>((pool) => pool.release());

// ---------------------------------------------------------------------------------------------

/**
 * One logical exact index split over worker threads: `shards` FlatIndex shards, each in its own
 * worker_thread, searched together and merged exactly with {@link mergeTopK}. The API mirrors
 * {@link FlatIndex}, but every method that touches vectors is asynchronous (a message to the
 * workers) and returns a Promise.
 *
 * Routing: the vector with id `id` lives in shard `id % shards` (BigInt modulo for bigint ids), so
 * `remove`, `has` and `get` go to one shard and the main thread keeps no id map. Automatic ids are
 * assigned by the main thread exactly as FlatIndex does (consecutive, from one past the largest id
 * ever added), then routed.
 *
 * Exactness: every shard searches its vectors with the same k and the lists are merged with
 * {@link mergeTopK}, shards as the partials in shard order. The scores are those a single FlatIndex
 * over the same vectors gives, bit for bit, and so are the ids except in the order among exactly
 * tied scores: ties go to the lower shard (`id % shards`), then to the lower id; a shard that holds
 * more tied vectors than fit keeps its earliest inserted ones (FlatIndex's own tie rule).
 *
 * Order: add, remove and compact apply one at a time, in call order, and every call (searches
 * included) takes effect after the add/remove/compact calls made before it, so
 * `index.add(v, [7]); await index.has(7)` is true. A multi-shard add or remove is all or nothing:
 * ids are checked on every shard before a remove, and an add that one shard refuses is undone on the
 * others (a search already running meanwhile may see part of it). A search runs on each shard's
 * snapshot, and never makes an add or remove wait.
 *
 * Workers do not keep the process alive when idle. Call {@link ShardedIndex.close} (or
 * `await using`) to stop them; an unclosed index's workers are stopped when it is garbage-collected.
 *
 * Every shard's FlatIndex runs its search on the addon's one thread pool, which the workers share:
 * sharding splits the index and the bookkeeping across threads, not the arithmetic beyond that pool.
 *
 * @example
 * ```ts
 * import { ShardedIndex } from 'vlkernels';
 * await using index = new ShardedIndex({ dim: 512, metric: 'cosine', shards: 4 });
 * await index.add(embeddings, [101, 102, 103]);   // 3 x 512 Float32Array; shards 1, 2, 3
 * const { ids, scores } = await index.search(query, { k: 2 });
 * await index.remove(102);
 * ```
 */
export class ShardedIndex implements AsyncDisposable {
  /** Vector length (options.dim); readable after close(). @throws Nothing. */
  readonly dim: number;
  /** Similarity measure of every search (options.metric, default 'ip'); readable after close(). @throws Nothing. */
  readonly metric: Metric;
  /** How the shards store vectors (options.storage, passed to each FlatIndex). @throws Nothing. */
  readonly storage: FlatIndexStorage;
  /** Whether the shards keep bf16/i8 codes only (options.approximate, see FlatIndex). @throws Nothing. */
  readonly approximate: boolean;
  /** Number of shards (worker threads); readable after close(). @throws Nothing. */
  readonly shards: number;

  readonly #pool: ShardPool;
  #closed = false;
  #closing: Promise<void> | null = null;
  #size = 0;
  #nextId = 0n; // one past the largest id ever added (FlatIndex's next automatic id)
  #bigintIds = false; // given BigInt64Array ids once: results are BigInt64Array from then on
  #writeTail: Promise<void> | null = null; // settles when the last queued add/remove/compact has
  readonly #inflight = new Set<Promise<unknown>>();

  /**
   * Creates an empty index and starts its workers.
   *
   * @param options - `dim`, `metric`, `storage`, `approximate` as for {@link FlatIndex} (checked by
   *   FlatIndex itself, with its errors, and given to every shard), and `shards` (an integer in
   *   1..256, default `min(os.availableParallelism(), 8)`).
   *
   * @example
   * ```ts
   * const index = new ShardedIndex({ dim: 384, metric: 'l2', shards: 3 });
   * ```
   * @throws VlkError with FlatIndex's constructor codes (ERR_VLK_TYPE, ERR_VLK_INVALID_ARG,
   * ERR_VLK_OUT_OF_MEMORY), and ERR_VLK_INVALID_ARG for a bad `shards`.
   */
  constructor(options: ShardedIndexOptions) {
    let probe: FlatIndex;
    try {
      probe = new FlatIndex(options); // the same checks and errors, and the normalised options
    } catch (err) {
      if (err instanceof VlkError) Error.captureStackTrace(err, ShardedIndex);
      throw err;
    }
    probe.close();
    this.dim = probe.dim;
    this.metric = probe.metric;
    this.storage = probe.storage;
    this.approximate = probe.approximate;
    this.shards = atApi(() => readShards(options.shards), ShardedIndex);
    const init: ShardInit = { dim: this.dim, metric: this.metric, storage: this.storage, approximate: this.approximate };
    this.#pool = new ShardPool(this.shards, init);
    pools.register(this, this.#pool, this);
  }

  // The "index is closed" error after close() (or after a worker died, with why).
  #open(): void {
    if (this.#closed) throw new VlkError('ERR_VLK_INVALID_ARG', 'index is closed');
    if (this.#pool.dead !== null) throw new VlkError('ERR_VLK_INVALID_ARG', `index is closed (${this.#pool.dead})`);
  }

  // Counts a call as in flight until it settles (close() waits for them).
  #track<T>(p: Promise<T>): Promise<T> {
    this.#inflight.add(p);
    const done = () => this.#inflight.delete(p);
    p.then(done, done);
    return p;
  }

  // Queues a write behind the previous one: `run` starts at once when none is pending.
  #write<T>(run: () => Promise<T>): Promise<T> {
    const prev = this.#writeTail;
    const p = prev === null ? run() : prev.then(run);
    const tail = p.then(noop, noop);
    this.#writeTail = tail;
    void tail.then(() => {
      if (this.#writeTail === tail) this.#writeTail = null;
    });
    return this.#track(p);
  }

  /**
   * Live vectors, counting the adds and removes that have completed (kept on the main thread).
   *
   * @example
   * ```ts
   * await index.add(new Float32Array(3 * index.dim));
   * index.size; // 3
   * ```
   * @throws VlkError ERR_VLK_INVALID_ARG ("index is closed") after {@link ShardedIndex.close}.
   */
  get size(): number {
    atApi(() => this.#open(), sizeGetter);
    return this.#size;
  }

  /**
   * Copies vectors into the index, all or nothing, with FlatIndex's id rules: with `ids`, each
   * vector gets its id; without, automatic ids from one past the largest id ever given. Each
   * shard's rows are copied once into a buffer that is transferred to its worker.
   *
   * @param vectors - n x dim, as for {@link FlatIndex.add}. Copied before the call returns: the
   *   caller may reuse it at once.
   * @param ids - n ids: numbers (0..2^53 - 1) or a BigInt64Array (0..2^63 - 1; it makes search
   *   results BigInt64Array from then on).
   * @returns `{ firstId }`: without ids, the first automatic id (a number; a bigint once the index
   *   was given BigInt64Array ids); with ids, undefined.
   *
   * @example
   * ```ts
   * await index.add(new Float32Array(8), [10, 20]);            // ids 10 and 20
   * const { firstId } = await index.add(new Float32Array(4));  // firstId 21
   * ```
   * @throws VlkError (as a rejection) with FlatIndex.add's codes and messages (row and id positions
   * are those of this call), ERR_VLK_INVALID_ARG ("index is closed"), ERR_VLK_INTERNAL (a worker
   * died). On any error nothing is added.
   */
  async add(vectors: MatrixInput, ids?: IdsInput): Promise<FlatIndexAddResult> {
    this.#open();
    let matrix = readRows(vectors, 'vectors', this.dim);
    const idArray = ids === undefined ? undefined : readIds(ids, matrix.rows, 'ids', true);
    // Queued behind another write: keep a copy, the caller may reuse its array at once.
    if (this.#writeTail !== null) matrix = { data: matrix.data.slice(), rows: matrix.rows, cols: matrix.cols };
    return this.#write(() => this.#add(matrix, idArray));
  }

  // Everything up to the first await runs at once, so the caller's rows are copied before add()
  // returns (unless it was queued, see add()).
  async #add(matrix: NativeMatrix, given: Float64Array | BigInt64Array | undefined): Promise<FlatIndexAddResult> {
    const n = matrix.rows;
    const d = this.dim;
    let all: Float64Array | BigInt64Array;
    let firstId: number | bigint | undefined;
    if (given !== undefined) {
      all = given;
    } else {
      const first = this.#nextId;
      if (this.#bigintIds) {
        if (n > 0 && first > MAX_BIGINT_ID - BigInt(n)) {
          throw new VlkError('ERR_VLK_INVALID_ARG', 'ids: automatic ids would overflow');
        }
        all = new BigInt64Array(n);
        for (let i = 0; i < n; i++) all[i] = first + BigInt(i);
        firstId = first;
      } else {
        if (n > 0 && first + BigInt(n - 1) > MAX_SAFE) {
          throw new VlkError(
            'ERR_VLK_INVALID_ARG',
            `ids: automatic ids ${first}..${first + BigInt(n - 1)} would pass 2^53 - 1 (pass BigInt64Array ids)`,
          );
        }
        all = new Float64Array(n);
        for (let i = 0; i < n; i++) all[i] = Number(first) + i;
        firstId = Number(first);
      }
    }

    // Route, then copy each shard's rows into its own buffer (transferred, not copied again).
    const { route, counts } = routeIds(all, this.shards);
    const parts = splitIds(all, route, counts);
    const rows = counts.map((c) => new Float32Array(c * d));
    const fill = new Array<number>(this.shards).fill(0);
    const src = matrix.data;
    if (this.shards === 1) rows[0].set(src);
    else {
      for (let i = 0; i < n; i++) {
        const s = route[i];
        rows[s].set(src.subarray(i * d, (i + 1) * d), fill[s]++ * d);
      }
    }
    const sent: Array<[number, Promise<void>]> = [];
    for (let s = 0; s < this.shards; s++) {
      if (counts[s] === 0) continue;
      const buffer = rows[s].buffer as ArrayBuffer;
      const msg: ShardRequest = { op: 'add', id: this.#pool.newRequestId(), data: buffer, rows: counts[s], ids: parts[s] };
      sent.push([s, this.#pool.send<void>(s, msg, [buffer])]); // ids are cloned: kept for an undo
    }

    const results = await Promise.allSettled(sent.map(([, p]) => p));
    const failed: MappedError[] = [];
    results.forEach((r, i) => {
      if (r.status === 'rejected') failed.push(mapShardError(r.reason as VlkError, route, sent[i][0]));
    });
    if (failed.length > 0) {
      if (this.#pool.dead !== null) throw new VlkError('ERR_VLK_INTERNAL', this.#pool.dead);
      // Undo the shards that took their rows (their FlatIndex keeps the memory until compact()).
      const undo = sent
        .filter((_, i) => results[i].status === 'fulfilled')
        .map(([s]) => this.#pool.send(s, { op: 'remove', id: this.#pool.newRequestId(), ids: parts[s], commit: true }));
      const undone = await Promise.allSettled(undo);
      const stuck = undone.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
      if (stuck !== undefined) {
        throw new VlkError('ERR_VLK_INTERNAL', `add failed, and undoing it failed too: ${(stuck.reason as Error).message}`);
      }
      throw firstError(failed);
    }

    this.#size += n;
    if (types.isBigInt64Array(given)) this.#bigintIds = true; // as FlatIndex: even for 0 rows
    if (given === undefined) {
      if (n > 0) this.#nextId += BigInt(n);
    } else if (n > 0) {
      let max = this.#nextId - 1n;
      if (types.isBigInt64Array(given)) {
        for (let i = 0; i < n; i++) if (given[i] > max) max = given[i];
      } else {
        let m = -1;
        for (let i = 0; i < n; i++) if (given[i] > m) m = given[i];
        if (BigInt(m) > max) max = BigInt(m);
      }
      this.#nextId = max === MAX_BIGINT_ID ? max : max + 1n;
    }
    return { firstId };
  }

  /**
   * Removes vectors by id, all or nothing (every shard involved checks its ids first).
   *
   * @param ids - One id (a number or a bigint) or several (as in {@link ShardedIndex.add}).
   * @returns How many were removed (all of them).
   *
   * @example
   * ```ts
   * await index.remove(17);
   * await index.remove([3, 4, 5]); // 3
   * ```
   * @throws VlkError (as a rejection) with FlatIndex.remove's codes and messages (ERR_VLK_TYPE,
   * ERR_VLK_INVALID_ARG: an id not in the index, listed twice, out of range; "index is closed"),
   * ERR_VLK_INTERNAL (a worker died). On any error nothing is removed.
   */
  async remove(ids: IdsInput | number | bigint): Promise<number> {
    this.#open();
    let all: Float64Array | BigInt64Array;
    if (typeof ids === 'number') all = Float64Array.of(readId(ids, 'ids[0]') as number);
    else if (typeof ids === 'bigint') all = BigInt64Array.of(readId(ids, 'ids[0]') as bigint);
    else all = readIds(ids, undefined, 'ids', true);
    return this.#write(() => this.#remove(all));
  }

  async #remove(all: Float64Array | BigInt64Array): Promise<number> {
    const n = all.length;
    if (n === 0) return 0;
    const { route, counts } = routeIds(all, this.shards);
    const parts = splitIds(all, route, counts);
    const involved = counts.flatMap((c, s) => (c > 0 ? [s] : []));
    const request = (s: number, commit: boolean) =>
      this.#pool.send<number>(s, { op: 'remove', id: this.#pool.newRequestId(), ids: parts[s], commit });
    const settle = async (promises: Array<Promise<number>>) => {
      const results = await Promise.allSettled(promises);
      const failed: MappedError[] = [];
      results.forEach((r, i) => {
        if (r.status === 'rejected') failed.push(mapShardError(r.reason as VlkError, route, involved[i]));
      });
      if (failed.length > 0) {
        if (this.#pool.dead !== null) throw new VlkError('ERR_VLK_INTERNAL', this.#pool.dead);
        throw firstError(failed);
      }
    };
    // One shard removes all or nothing by itself; several check first, then remove.
    if (involved.length > 1) await settle(involved.map((s) => request(s, false)));
    await settle(involved.map((s) => request(s, true)));
    this.#size -= n;
    return n;
  }

  /**
   * Gives back the memory of removed vectors in every shard (see {@link FlatIndex.compact});
   * results and tie order do not change.
   *
   * @returns Bytes released, over all shards.
   * @example
   * ```ts
   * await index.remove(staleIds);
   * await index.compact();
   * ```
   * @throws VlkError (as a rejection) ERR_VLK_OUT_OF_MEMORY, ERR_VLK_INVALID_ARG after close(),
   * ERR_VLK_INTERNAL (a worker died).
   */
  async compact(): Promise<number> {
    this.#open();
    return this.#write(async () => {
      const freed = await Promise.all(
        this.#pool.workers.map((_, s) => this.#pool.send<number>(s, { op: 'compact', id: this.#pool.newRequestId() })),
      );
      return freed.reduce((a, b) => a + b, 0);
    });
  }

  /**
   * Whether a vector with this id is in the index (asks shard `id % shards`).
   *
   * @param id - An integer in 0..2^53 - 1, or a bigint in 0..2^63 - 1.
   * @example
   * ```ts
   * await index.add(new Float32Array(index.dim), [42]);
   * await index.has(42n); // true
   * ```
   * @throws VlkError (as a rejection) with code ERR_VLK_TYPE, ERR_VLK_INVALID_ARG (a bad id,
   * "index is closed"), ERR_VLK_INTERNAL (a worker died).
   */
  async has(id: number | bigint): Promise<boolean> {
    this.#open();
    const key = readId(id, 'id');
    return this.#track(this.#ask<boolean>('has', key));
  }

  /**
   * A copy of the vector stored under `id` (dim values), from shard `id % shards`.
   *
   * @param id - An integer in 0..2^53 - 1, or a bigint in 0..2^63 - 1.
   * @example
   * ```ts
   * await index.add(Float32Array.of(1, 2, 3, 4), [7]);
   * await index.get(7); // Float32Array [1, 2, 3, 4]
   * ```
   * @throws VlkError (as a rejection) with code ERR_VLK_TYPE, ERR_VLK_INVALID_ARG (id not in the
   * index, a bad id, "index is closed"), ERR_VLK_INTERNAL (a worker died).
   */
  async get(id: number | bigint): Promise<Float32Array> {
    this.#open();
    const key = readId(id, 'id');
    return this.#track(this.#ask<Float32Array>('get', key));
  }

  // Reads start after the writes called before them; with none pending they are sent at once, so
  // a write called after them is not seen either.
  async #ask<T>(op: 'has' | 'get', key: number | bigint): Promise<T> {
    const writes = this.#writeTail;
    if (writes !== null) await writes;
    const s = typeof key === 'bigint' ? Number(key % BigInt(this.shards)) : key % this.shards;
    return this.#pool.send<T>(s, { op, id: this.#pool.newRequestId(), key });
  }

  /**
   * Native bytes the shards' FlatIndexes hold, summed and per shard.
   *
   * @example
   * ```ts
   * const { bytes, bytesPerVector, shards } = await index.memoryUsage();
   * ```
   * @throws VlkError (as a rejection) ERR_VLK_INVALID_ARG ("index is closed"), ERR_VLK_INTERNAL.
   */
  async memoryUsage(): Promise<ShardedIndexMemoryUsage> {
    this.#open();
    return this.#track(
      (async () => {
        const writes = this.#writeTail;
        if (writes !== null) await writes;
        const parts = await Promise.all(
          this.#pool.workers.map((_, s) => this.#pool.send<ShardMemory>(s, { op: 'memory', id: this.#pool.newRequestId() })),
        );
        const bytes = parts.reduce((a, p) => a + p.bytes, 0);
        const size = parts.reduce((a, p) => a + p.size, 0);
        return { bytes, bytesPerVector: bytes / Math.max(size, 1), shards: parts };
      })(),
    );
  }

  /**
   * Exact top-k over every shard: the queries are copied once into a SharedArrayBuffer that every
   * worker reads, each shard searches its vectors with the same k (on the addon's pool), and the
   * lists are merged with {@link mergeTopK}, shards as partials in shard order. Same result shape
   * as {@link FlatIndex.search}, the same scores bit for bit and the same ids, but for the order
   * among exactly tied scores (lower shard, then lower id; see {@link ShardedIndex}).
   *
   * @param queries - Q x dim (a Float32Array of Q * dim values, or a view with cols = dim); copied
   *   before the call returns.
   * @param options - `k` (results per query, 1..2^31 - 1; k > size pads), `threads` (per shard),
   *   `filter` (by id, as for FlatIndex: given whole to every shard, which ignores the ids it does
   *   not hold), `signal`. Every option but `signal` is cloned to each worker.
   * @returns `{ ids, scores, counts, rescored, k, count }`, row-major count x k; `counts[q]` =
   *   min(k, size, allowed); padding is id -1 (-1n) and score NaN; `rescored[q]` sums the shards'.
   *   ids are a BigInt64Array once the index was given BigInt64Array ids, else a Float64Array of
   *   exact integers.
   *
   * @example
   * ```ts
   * const { ids, scores, counts } = await index.search(queries, { k: 10, signal: AbortSignal.timeout(500) });
   * ```
   * @throws VlkError (as a rejection) with FlatIndex.search's codes and messages, ERR_VLK_TYPE (an
   * option that cannot be cloned to the workers), ERR_VLK_INTERNAL (a worker died); AbortError (code ABORT_ERR, cause = signal.reason) as soon as `signal` aborts,
   * and every shard is told to stop its search.
   */
  async search(queries: MatrixInput, options: FlatIndexSearchOptions): Promise<FlatIndexSearchResult> {
    this.#open();
    const prepared = prepareSearch(queries, options, this.dim);
    const signal = prepared.signal;
    if (signal?.aborted) throw abortError(signal);
    const { rows, cols, data } = prepared.queries;
    const shared = new SharedArrayBuffer(rows * cols * Float32Array.BYTES_PER_ELEMENT);
    new Float32Array(shared).set(data);
    return this.#track(this.#search(shared, rows, prepared.k, prepared.shardOptions, signal));
  }

  #search(
    queries: SharedArrayBuffer,
    rows: number,
    k: number,
    options: Omit<FlatIndexSearchOptions, 'signal'>,
    signal: AbortSignal | undefined,
  ): Promise<FlatIndexSearchResult> {
    const pool = this.#pool;
    const sent: Array<[number, number]> = []; // (shard, request id) of the searches started
    let settled = false;
    return new Promise<FlatIndexSearchResult>((resolve, reject) => {
      const unwatch = signal === undefined ? noop : watchAbort(signal, () => {
        if (settled) return;
        settled = true;
        unwatch();
        for (const [s, id] of sent) pool.abort(s, id);
        reject(abortError(signal));
      });
      const run = async (): Promise<FlatIndexSearchResult | undefined> => {
        const writes = this.#writeTail; // start after the writes called before (see #ask)
        if (writes !== null) await writes;
        if (settled) return undefined;
        const partials = await Promise.all(
          pool.workers.map((_, s) => {
            const id = pool.newRequestId();
            sent.push([s, id]);
            return pool.send<FlatIndexSearchResult>(s, { op: 'search', id, queries, rows, options });
          }),
        );
        if (settled) return undefined;
        // Shard order is the partial order: mergeTopK's ties go to the lower shard, then lower id.
        const parts: TopKPartial[] = partials.map((r) => ({ indices: r.ids, scores: r.scores, counts: r.counts, k: r.k, count: r.count }));
        const merged = await mergeTopK(parts, { k, metric: this.metric, signal });
        // rescored (bf16/i8 storage): the vectors re-scored in fp32 per query, over all shards.
        const rescored = new Int32Array(merged.count);
        for (const r of partials) for (let q = 0; q < merged.count; q++) rescored[q] += r.rescored?.[q] ?? 0;
        return { ...merged, ids: idsAs(merged.ids, this.#bigintIds), rescored };
      };
      run().then(
        (result) => {
          if (settled || result === undefined) return;
          settled = true;
          unwatch();
          resolve(result);
        },
        (err: unknown) => {
          if (settled) return;
          settled = true;
          unwatch();
          for (const [s, id] of sent) pool.abort(s, id); // stop the other shards' work
          reject(err);
        },
      );
    });
  }

  /**
   * Stops the workers and frees every shard's memory, after the calls already made have settled
   * (searches in flight finish). Every later call but `close()` throws or rejects with
   * "index is closed"; `dim`, `metric`, `storage` and `shards` stay readable. Idempotent: every
   * call returns the same promise.
   *
   * @example
   * ```ts
   * const index = new ShardedIndex({ dim: 8, shards: 2 });
   * try {
   *   await index.add(vectors);
   * } finally {
   *   await index.close();
   * }
   * ```
   * @throws Nothing (the promise always resolves).
   */
  close(): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    this.#closed = true;
    pools.unregister(this);
    const inflight = [...this.#inflight];
    this.#closing = Promise.allSettled(inflight).then(() => this.#pool.stop());
    return this.#closing;
  }

  /**
   * Same as {@link ShardedIndex.close}, for `await using` declarations.
   *
   * @example
   * ```ts
   * {
   *   await using index = new ShardedIndex({ dim: 8 });
   *   await index.add(vectors);
   * } // closed here
   * ```
   * @throws Nothing.
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // For tests only (not part of the API): index[Symbol.for('vlkernels.ShardedIndex.workers')] is
  // the workers, to simulate a dying shard.
  static {
    Object.defineProperty(ShardedIndex.prototype, Symbol.for('vlkernels.ShardedIndex.workers'), {
      get(this: ShardedIndex): readonly Worker[] {
        return this.#pool.workers;
      },
    });
  }
}

// The `size` getter, for stacks that start at its caller.
const sizeGetter: Function = Object.getOwnPropertyDescriptor(ShardedIndex.prototype, 'size')!.get!;
