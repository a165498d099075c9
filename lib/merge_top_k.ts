// Exact merge of top-k lists (lib): S partial results for the same Q queries (one per gallery
// shard) into one Q x k list. lib checks the structure (types, shapes, k, metric, signal) with named
// messages; the binding checks each entry (counts in 0..k, integral ids, id + offset in range) while
// copying the ids, then runs core::merge_top_k on this thread (sync) or on the addon's pool (async).
import { types } from 'node:util';
import { atApi, fromNative, VlkError } from './errors';
import { describe, isRecord, readMetric, readSize } from './args';
import { readSignal, runCancellable } from './cancel';
import { binding, type NativeMergeTopKOptions } from './loader';
import type { MergeTopKOptions, MergeTopKResult, TopKPartial } from './types';

const MAX_K = 2 ** 31 - 1; // counts are an Int32Array
const MAX_OFFSET = 2 ** 53;

/** A partial whose ids are numbers: the merged ids are then a Float64Array. */
type NumberIdPartial = TopKPartial & { indices: Int32Array | Float64Array };

interface PreparedMerge {
  partials: TopKPartial[];
  options: NativeMergeTopKOptions;
  signal: AbortSignal | undefined;
}

function checkLength(array: ArrayLike<unknown>, name: string, count: number, k: number): void {
  if (array.length !== count * k) {
    throw new VlkError(
      'ERR_VLK_SHAPE',
      `${name}: length ${array.length} is not count x k = ${count} x ${k} = ${count * k}`,
    );
  }
}

// partials[i]: types, k, count (equal to partials[0].count), lengths, offset. The entries
// themselves (counts values, Float64 ids) are checked by the binding as it copies them.
function readPartial(value: unknown, i: number, queries: number | undefined): TopKPartial {
  const name = `partials[${i}]`;
  if (!isRecord(value) || types.isTypedArray(value)) {
    throw new VlkError('ERR_VLK_TYPE', `${name}: expected a top-k result { indices, scores, k, count }, got ${describe(value)}`);
  }
  const k = readSize(value.k, `${name}.k`);
  const count = readSize(value.count, `${name}.count`);
  if (queries !== undefined && count !== queries) {
    throw new VlkError(
      'ERR_VLK_SHAPE',
      `${name}.count: ${count} differs from partials[0].count ${queries} (every partial must hold the same queries)`,
    );
  }
  if (!Number.isSafeInteger(count * k)) {
    throw new VlkError('ERR_VLK_SHAPE', `${name}: count x k = ${count} x ${k} overflows the largest safe integer`);
  }
  const { indices, scores, counts, offset } = value;
  if (!types.isInt32Array(indices) && !types.isFloat64Array(indices) && !types.isBigInt64Array(indices)) {
    throw new VlkError(
      'ERR_VLK_TYPE',
      `${name}.indices: expected an Int32Array, a Float64Array or a BigInt64Array, got ${describe(indices)}`,
    );
  }
  checkLength(indices, `${name}.indices`, count, k);
  if (!types.isFloat32Array(scores)) {
    throw new VlkError('ERR_VLK_TYPE', `${name}.scores: expected a Float32Array, got ${describe(scores)}`);
  }
  checkLength(scores, `${name}.scores`, count, k);
  const partial: TopKPartial = { indices, scores, k, count };
  if (counts !== undefined) {
    if (!types.isInt32Array(counts)) {
      throw new VlkError('ERR_VLK_TYPE', `${name}.counts: expected an Int32Array, got ${describe(counts)}`);
    }
    if (counts.length !== count) {
      throw new VlkError('ERR_VLK_SHAPE', `${name}.counts: length ${counts.length} is not count (${count})`);
    }
    partial.counts = counts;
  }
  if (offset !== undefined) {
    if (typeof offset !== 'number' || !Number.isInteger(offset) || Math.abs(offset) > MAX_OFFSET) {
      const got = typeof offset === 'number' ? String(offset) : describe(offset);
      throw new VlkError('ERR_VLK_INVALID_ARG', `${name}.offset: ${got} is not an integer within +-2^53`);
    }
    partial.offset = offset;
  }
  return partial;
}

// Check order (and so the code for an input with several faults) matches
// native/binding/merge_top_k.cpp.
function prepare(partials: unknown, options: unknown, async: boolean): PreparedMerge {
  if (!Array.isArray(partials)) {
    throw new VlkError('ERR_VLK_TYPE', `partials: expected an array of top-k results, got ${describe(partials)}`);
  }
  if (partials.length === 0) {
    throw new VlkError('ERR_VLK_INVALID_ARG', 'partials: empty array (need at least one top-k result)');
  }
  if (!isRecord(options)) {
    throw new VlkError('ERR_VLK_TYPE', `options: expected an object such as { k: 10 }, got ${describe(options)}`);
  }
  const prepared: TopKPartial[] = [];
  for (let i = 0; i < partials.length; i++) {
    prepared.push(readPartial(partials[i], i, i === 0 ? undefined : prepared[0].count));
  }

  const k = options.k;
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 1 || k > MAX_K) {
    const got = typeof k === 'number' ? String(k) : describe(k);
    throw new VlkError('ERR_VLK_INVALID_K', `options.k: ${got} is not an integer in 1..${MAX_K}`);
  }
  const metric = readMetric(options.metric);
  const signal = async ? readSignal(options.signal, 'options.signal') : undefined;
  return { partials: prepared, options: { k, metric }, signal };
}

/**
 * Merges top-k lists computed separately per gallery shard (or per machine) into the exact global
 * top-k: the same answer one search over the concatenated shards gives, with shard s's rows after
 * those of shards 0..s-1. Give each partial `offset` = its shard's first global row so the ids are
 * global. The result is exact when each shard was searched with at least `k` results (or all its
 * rows). Runs on the addon's own thread pool, off the event loop.
 *
 * Order: by score (ip/cosine descending, l2 ascending), ties by partial order, then by lower id;
 * with offsets as above that is search's own order (ties by lower gallery row), and the scores are
 * the partials' own, bit for bit. Only the first `counts[q]` entries of a partial's row q are read
 * (all `k` without `counts`). A query with fewer than `k` valid entries over all partials is padded
 * with id -1 (-1n) and score NaN, and its `counts[q]` is below k.
 *
 * ids come back as a Float64Array of exact integers, or as a BigInt64Array when any partial's
 * indices are one (ids beyond 2^53). Ids and counts are copied when the call starts; scores are
 * read in place: do not mutate or transfer them until the promise settles.
 *
 * @param partials - One {@link TopKPartial} per shard, in shard order, all for the same Q queries.
 * @param options - `k` (merged results per query), `metric` ('ip' default, 'cosine', 'l2': the
 *   partials' metric), `signal`.
 * @returns `{ ids, scores, counts, k, count }`, row-major count x k.
 *
 * @example
 * ```ts
 * import { search, mergeTopK } from 'vlkernels';
 * // Gallery rows 0..59_999 are in shardA, rows 60_000.. in shardB, searched separately.
 * const options = { k: 10, dim: 512, metric: 'cosine' } as const;
 * const [a, b] = await Promise.all([search(queries, shardA, options), search(queries, shardB, options)]);
 * const { ids, scores } = await mergeTopK([a, { ...b, offset: 60_000 }], { k: 10, metric: 'cosine' });
 * const bestForQuery3 = ids[3 * 10]; // global gallery row
 * ```
 * @throws VlkError (as a rejection) with code ERR_VLK_TYPE (partials not an array, a partial or
 * its arrays of the wrong type, options not an object), ERR_VLK_SHAPE (k or count not a size,
 * lengths != count x k, counts length != count, partials with different counts),
 * ERR_VLK_INVALID_K (options.k not an integer >= 1), ERR_VLK_INVALID_ARG (no partials, metric,
 * counts outside 0..k, Float64 ids not integers within +-2^53, bad offset, ids + offset beyond what
 * the output holds, signal), ERR_VLK_NON_FINITE (NaN or Infinity among the valid scores),
 * ERR_VLK_OUT_OF_MEMORY; AbortError (code ABORT_ERR, cause = signal.reason) when `signal` aborts.
 */
export function mergeTopK(
  partials: readonly NumberIdPartial[],
  options: MergeTopKOptions,
): Promise<MergeTopKResult<Float64Array>>;
/** {@link mergeTopK} with any partials: ids come back as a BigInt64Array when a partial's indices are one. */
export function mergeTopK(partials: readonly TopKPartial[], options: MergeTopKOptions): Promise<MergeTopKResult>;
export async function mergeTopK(partials: readonly TopKPartial[], options: MergeTopKOptions): Promise<MergeTopKResult> {
  const prepared = atApi(() => prepare(partials, options, true), mergeTopK);
  return runCancellable(prepared.signal, mergeTopK, (token) =>
    binding.mergeTopKAsync(prepared.partials, prepared.options, token),
  );
}

/**
 * The same merge on the calling thread (it blocks the event loop for its duration; it still uses
 * the addon's pool for parallelism). Same contract as {@link mergeTopK}; `signal` is ignored.
 *
 * @example
 * ```ts
 * import { searchSync, mergeTopKSync } from 'vlkernels';
 * const parts = shards.map((shard) => searchSync(queries, shard.rows, { k: 5, dim: 384, metric: 'l2' }));
 * const merged = mergeTopKSync(
 *   parts.map((p, s) => ({ ...p, offset: shards[s].firstRow })),
 *   { k: 5, metric: 'l2' },
 * );
 * ```
 * @throws VlkError with code ERR_VLK_TYPE, ERR_VLK_SHAPE, ERR_VLK_INVALID_K, ERR_VLK_INVALID_ARG,
 * ERR_VLK_NON_FINITE or ERR_VLK_OUT_OF_MEMORY (see {@link mergeTopK}).
 */
export function mergeTopKSync(partials: readonly NumberIdPartial[], options: MergeTopKOptions): MergeTopKResult<Float64Array>;
/** {@link mergeTopKSync} with any partials: ids come back as a BigInt64Array when a partial's indices are one. */
export function mergeTopKSync(partials: readonly TopKPartial[], options: MergeTopKOptions): MergeTopKResult;
export function mergeTopKSync(partials: readonly TopKPartial[], options: MergeTopKOptions): MergeTopKResult {
  const prepared = atApi(() => prepare(partials, options, false), mergeTopKSync);
  try {
    return binding.mergeTopKSync(prepared.partials, prepared.options);
  } catch (err) {
    throw fromNative(err, mergeTopKSync);
  }
}
