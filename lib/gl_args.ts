// Argument readers shared by lib/global_local.ts and lib/expand_queries.ts: N-D tensors
// ({ data, dims }), 2-D matrices with a known or inferred width, flat vectors of a known length,
// Int32Array lists and finite numbers, all throwing VlkError naming the argument and the numbers.
import { types } from 'node:util';
import { VlkError } from './errors';
import { describe, isDetached, isRecord, readMatrix, shapeMatrix } from './args';

/** An N-D tensor-like: `{ data: Float32Array, dims: [...] }` (row-major). */
export interface TensorND {
  data: Float32Array;
  dims: readonly number[];
}

export function readTensor(value: unknown, name: string, rank: number, labels: string): { data: Float32Array; dims: number[] } {
  if (!isRecord(value) || !types.isFloat32Array(value.data) || !Array.isArray(value.dims) || value.dims.length !== rank) {
    throw new VlkError('ERR_VLK_TYPE', `${name}: expected { data: Float32Array, dims: [${labels}] }, got ${describe(value)}`);
  }
  const dims = value.dims.map((x, i) => {
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) {
      throw new VlkError('ERR_VLK_SHAPE', `${name}.dims[${i}]: ${describe(x)} is not a size`);
    }
    return x;
  });
  const n = dims.reduce((a, b) => a * b, 1);
  // A detached buffer reads as length 0, which a shape with a 0 in it accepts; no view can be made.
  if (isDetached(value.data)) throw new VlkError('ERR_VLK_INVALID_ARG', `${name}.data: the Float32Array's buffer is detached`);
  if (value.data.length < n) {
    throw new VlkError('ERR_VLK_SHAPE', `${name}: data has ${value.data.length} elements, dims [${dims.join(', ')}] need ${n}`);
  }
  return { data: value.data.subarray(0, n), dims };
}

/** A matrix (Float32Array needs `dim`; views carry their shape); cols checked against `dim` when given. */
export function readMat(value: unknown, name: string, dim: number | undefined): { data: Float32Array; rows: number; cols: number } {
  const m = shapeMatrix(readMatrix(value, name), name, dim);
  if (dim !== undefined && m.cols !== dim) {
    throw new VlkError('ERR_VLK_DIM_MISMATCH', `${name}: ${m.cols} columns, expected ${dim}`);
  }
  return { data: m.data.subarray(0, m.rows * m.cols), rows: m.rows, cols: m.cols };
}

/** A Float32Array (or matrix view) holding exactly n values. */
export function readVec(value: unknown, name: string, n: number): Float32Array {
  let data: Float32Array;
  if (types.isFloat32Array(value)) data = value;
  else if (isRecord(value) && types.isFloat32Array(value.data)) data = readMat(value, name, undefined).data;
  else throw new VlkError('ERR_VLK_TYPE', `${name}: expected a Float32Array of ${n} values, got ${describe(value)}`);
  if (data.length !== n) throw new VlkError('ERR_VLK_SHAPE', `${name}: ${data.length} values, expected ${n}`);
  return data;
}

export function readInts(value: unknown, name: string, n?: number): Int32Array {
  if (!types.isInt32Array(value)) throw new VlkError('ERR_VLK_TYPE', `${name}: expected an Int32Array, got ${describe(value)}`);
  if (n !== undefined && value.length !== n) {
    throw new VlkError('ERR_VLK_SHAPE', `${name}: length ${value.length}, expected ${n}`);
  }
  return value;
}

export function readNum(value: unknown, name: string, fallback: number, check?: (x: number) => boolean, what?: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || (check !== undefined && !check(value))) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `${name}: expected ${what ?? 'a finite number'}, got ${describe(value)}`);
  }
  return value;
}

export function readInt(value: unknown, name: string, fallback: number, min: number, code: 'ERR_VLK_INVALID_K' | 'ERR_VLK_INVALID_ARG'): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new VlkError(code, `${name}: expected an integer >= ${min}, got ${describe(value)}`);
  }
  return value;
}

export function readOptions(options: unknown): Record<string, unknown> {
  if (!isRecord(options)) throw new VlkError('ERR_VLK_TYPE', `options: expected an object, got ${describe(options)}`);
  return options;
}
