// MoCo memory bank and the key-encoder EMA (lib, seed 004): MemoryBank owns a native ring buffer of
// `size` key embeddings (dim D) and their ids (native/core/memory/memory_bank.hpp); memoryInfoNce
// (lib/matching_losses.ts) takes one as its queue. emaUpdate applies MoCo's momentum update to
// key-model weights given as Float32Arrays.
import { types } from 'node:util';
import { atApi, fromNative, VlkError } from './errors';
import { describe, isRecord, readMatrix, readThreads, shapeMatrix } from './args';
import { binding } from './loader';
import type { MatrixInput } from './types';

/** What {@link MemoryBank.memoryUsage} reports. */
export interface MemoryBankMemoryUsage {
  /** Native bytes held: size x dim floats + size int64 ids (allocated up front, whatever the count). */
  bytes: number;
  /** bytes / size. */
  bytesPerEntry: number;
}

/** What {@link MemoryBank.snapshot} returns: the filled entries, OLDEST FIRST. */
export interface MemoryBankSnapshot {
  /** count x dim, row-major, oldest entry first. */
  data: Float32Array;
  /** count ids (-1 for entries enqueued without ids). */
  ids: Float64Array;
  count: number;
  dim: number;
}

const handles = new WeakMap<MemoryBank, unknown>();

/** The open native bank behind `bank` (lib-internal; ERR_VLK_INVALID_ARG once closed, ERR_VLK_TYPE for other values). */
export function bankHandle(bank: unknown, name = 'bank'): unknown {
  if (!(bank instanceof MemoryBank)) throw new VlkError('ERR_VLK_TYPE', `${name}: expected a MemoryBank, got ${describe(bank)}`);
  const h = handles.get(bank);
  if (h === undefined) throw new VlkError('ERR_VLK_INVALID_ARG', `${name}: memory bank is closed`);
  return h;
}

function readBankIds(value: unknown, rows: number): Float64Array | undefined {
  if (value === undefined) return undefined;
  if (types.isBigInt64Array(value) || types.isBigUint64Array(value)) {
    throw new VlkError('ERR_VLK_TYPE', 'ids: expected numbers (an Array or a Float64Array), got a BigInt64Array');
  }
  if (!Array.isArray(value) && !types.isTypedArray(value)) {
    throw new VlkError('ERR_VLK_TYPE', `ids: expected an array of numbers, got ${describe(value)}`);
  }
  const arr = value as ArrayLike<unknown>;
  if (arr.length !== rows) throw new VlkError('ERR_VLK_SHAPE', `ids: length ${arr.length} is not the number of keys (${rows})`);
  const out = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    const v = arr[i];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw new VlkError('ERR_VLK_INVALID_ARG', `ids[${i}]: ${describe(v)} is not an integer in 0..2^53 - 1`);
    }
    out[i] = v;
  }
  return out;
}

/**
 * A fixed-size FIFO queue of key embeddings for MoCo-style contrastive losses (AAHR keeps one of
 * K = 2048 per modality): a ring buffer of `size` rows of `dim` floats plus one integer id per row,
 * in native memory.
 *
 * - `enqueue(keys, ids?)` writes B rows in order, each overwriting the oldest entry once the bank
 *   is full. B may exceed the free space; **B > size keeps only the last `size` rows** of the call.
 *   Entries without ids get -1 (never masked by `maskSameId`). Keys must be finite (nothing is
 *   written otherwise), so losses never re-check the bank.
 * - `snapshot()` copies the filled entries **oldest first**.
 * - Concurrency: a loss called with the bank reads it **as it was at call time** (copy-on-write in
 *   native code): enqueueing right after starting an async loss neither blocks nor changes what
 *   that loss sees; the bank copies itself only when an enqueue overlaps a loss in flight.
 *
 * @example
 * ```ts
 * using bank = new MemoryBank({ size: 2048, dim: 1024 });
 * const { loss, grads } = await memoryInfoNce(q, k, bank, { temperature: 0.07 });
 * bank.enqueue(k, ids);            // after computing the loss, as MoCo does
 * ```
 */
export class MemoryBank {
  /** Entries the bank holds when full (K). */
  readonly size: number;
  /** Embedding width D. */
  readonly dim: number;

  constructor(options: { size: number; dim: number }) {
    const h = atApi(() => {
      if (!isRecord(options)) throw new VlkError('ERR_VLK_TYPE', `options: expected { size, dim }, got ${describe(options)}`);
      for (const k of ['size', 'dim'] as const) {
        const v = options[k];
        if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
          throw new VlkError('ERR_VLK_INVALID_ARG', `options.${k}: ${describe(v)} is not an integer >= 1`);
        }
      }
      try {
        return binding.memoryBankCreate(options.size, options.dim);
      } catch (err) {
        throw fromNative(err, MemoryBank);
      }
    }, MemoryBank);
    this.size = options.size;
    this.dim = options.dim;
    handles.set(this, h);
  }

  #handle(api: Function): unknown {
    return atApi(() => bankHandle(this, 'bank'), api);
  }

  /** Filled entries (0..size). */
  get count(): number {
    return (binding.memoryBankInfo(this.#handle(MemoryBank)) as { count: number }).count;
  }

  /**
   * Appends B keys (B x dim: a Float32Array of B * dim values or a matrix view) and optional ids
   * (B integers 0..2^53 - 1), overwriting the oldest entries. Returns the new count.
   * @throws VlkError ERR_VLK_TYPE / ERR_VLK_DIM_MISMATCH / ERR_VLK_SHAPE (keys, ids),
   * ERR_VLK_NON_FINITE (naming the row), ERR_VLK_INVALID_ARG (an id; "memory bank is closed").
   */
  enqueue(keys: MatrixInput, ids?: ArrayLike<number>): number {
    const h = this.#handle(this.enqueue);
    const flat = atApi(() => {
      const m = shapeMatrix(readMatrix(keys, 'keys'), 'keys', this.dim);
      if (m.cols !== this.dim) throw new VlkError('ERR_VLK_DIM_MISMATCH', `keys: dim ${m.cols} differs from the bank's ${this.dim}`);
      return { data: m.data.subarray(0, m.rows * m.cols), ids: readBankIds(ids, m.rows) };
    }, this.enqueue);
    try {
      binding.memoryBankEnqueue(h, flat.data, flat.ids);
    } catch (err) {
      throw fromNative(err, this.enqueue);
    }
    return this.count;
  }

  /** A copy of the filled entries, oldest first. */
  snapshot(): MemoryBankSnapshot {
    const h = this.#handle(this.snapshot);
    const s = binding.memoryBankSnapshot(h) as { data: Float32Array; ids: Float64Array };
    return { data: s.data, ids: s.ids, count: s.ids.length, dim: this.dim };
  }

  /** Empties the bank (count 0); the memory stays allocated. */
  clear(): void {
    const h = this.#handle(this.clear);
    try {
      binding.memoryBankClear(h);
    } catch (err) {
      throw fromNative(err, this.clear);
    }
  }

  /** Native memory held by the bank. */
  memoryUsage(): MemoryBankMemoryUsage {
    const h = this.#handle(this.memoryUsage);
    const { bytes } = binding.memoryBankInfo(h) as { bytes: number };
    return { bytes, bytesPerEntry: bytes / this.size };
  }

  /** True once {@link MemoryBank.close} has run. */
  get closed(): boolean {
    return !handles.has(this);
  }

  /**
   * Frees the native memory now (losses already called keep what they read). Idempotent; every
   * other method then throws ERR_VLK_INVALID_ARG ("memory bank is closed").
   */
  close(): void {
    const h = handles.get(this);
    if (h === undefined) return;
    handles.delete(this);
    binding.memoryBankClose(h);
  }

  /** Same as {@link MemoryBank.close}, for `using` declarations. */
  [Symbol.dispose](): void {
    this.close();
  }
}

function readWeights(value: unknown, name: string): Float32Array {
  if (!types.isFloat32Array(value)) throw new VlkError('ERR_VLK_TYPE', `${name}: expected a Float32Array, got ${describe(value)}`);
  return value;
}

/**
 * MoCo's momentum update of key-model weights, in place: `target = m * target + (1 - m) * source`
 * element-wise (float64 per element, rounded once to fp32), synchronously. Takes one pair of
 * Float32Arrays, or two records of named Float32Arrays (every name of `target` must be in `source`
 * with the same length; extra source names are ignored). Everything is checked before anything
 * changes.
 *
 * @example
 * ```ts
 * emaUpdate(keyWeights, queryWeights, 0.999);          // records { name: Float32Array }
 * ```
 * @throws VlkError ERR_VLK_TYPE, ERR_VLK_SHAPE (lengths differ, a missing name), ERR_VLK_INVALID_ARG
 * (momentum outside [0, 1]), ERR_VLK_NON_FINITE (a NaN or infinity in a target or source, named).
 */
export function emaUpdate(
  target: Float32Array | Record<string, Float32Array>,
  source: Float32Array | Record<string, Float32Array>,
  momentum = 0.999,
  options: { threads?: number } = {},
): void {
  const args = atApi(() => {
    if (typeof momentum !== 'number' || !(momentum >= 0 && momentum <= 1)) {
      throw new VlkError('ERR_VLK_INVALID_ARG', `momentum: ${describe(momentum)} is not a number in [0, 1]`);
    }
    if (!isRecord(options)) throw new VlkError('ERR_VLK_TYPE', `options: expected an object, got ${describe(options)}`);
    const threads = readThreads(options.threads);
    if (types.isTypedArray(target) || types.isTypedArray(source)) {
      const t = readWeights(target, 'target');
      const s = readWeights(source, 'source');
      if (t.length !== s.length) throw new VlkError('ERR_VLK_SHAPE', `source: length ${s.length} differs from the target's ${t.length}`);
      return { targets: [t], sources: [s], names: [''], threads };
    }
    if (!isRecord(target)) throw new VlkError('ERR_VLK_TYPE', `target: expected a Float32Array or a record of them, got ${describe(target)}`);
    if (!isRecord(source)) throw new VlkError('ERR_VLK_TYPE', `source: expected a record of Float32Arrays, got ${describe(source)}`);
    const names = Object.keys(target);
    const targets: Float32Array[] = [];
    const sources: Float32Array[] = [];
    for (const n of names) {
      const t = readWeights(target[n], `target['${n}']`);
      if (!(n in source)) throw new VlkError('ERR_VLK_SHAPE', `source: has no '${n}' (the target has)`);
      const s = readWeights(source[n], `source['${n}']`);
      if (t.length !== s.length) {
        throw new VlkError('ERR_VLK_SHAPE', `source['${n}']: length ${s.length} differs from the target's ${t.length}`);
      }
      targets.push(t);
      sources.push(s);
    }
    return { targets, sources, names, threads };
  }, emaUpdate);
  try {
    binding.emaUpdateSync(args.targets, args.sources, momentum, args.names, args.threads);
  } catch (err) {
    throw fromNative(err, emaUpdate);
  }
}
