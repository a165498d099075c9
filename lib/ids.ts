// Id and row arguments of the index classes (lib): FlatIndex and ShardedIndex read ids, one id and
// rows x dim matrices with the same checks and messages as native/binding/flat_index.cpp.
import { types } from 'node:util';
import { VlkError } from './errors';
import { describe, isRecord, readMatrix, shapeMatrix } from './args';
import type { NativeMatrix } from './loader';

const MAX_BIGINT_ID = 2n ** 63n - 1n;

export function isIdNumber(v: number): boolean {
  return Number.isSafeInteger(v) && v >= 0;
}

// One id of has/get/remove: a number (integer 0..2^53 - 1) or a bigint (0..2^63 - 1).
export function readId(value: unknown, name: string): number | bigint {
  if (typeof value === 'number') {
    if (!isIdNumber(value)) {
      throw new VlkError('ERR_VLK_INVALID_ARG', `${name}: ${value} is not an integer in 0..2^53 - 1 (use a bigint beyond)`);
    }
    return value;
  }
  if (typeof value === 'bigint') {
    if (value < 0n || value > MAX_BIGINT_ID) {
      throw new VlkError('ERR_VLK_INVALID_ARG', `${name}: ${value}n is not in 0..2^63 - 1`);
    }
    return value;
  }
  throw new VlkError('ERR_VLK_TYPE', `${name}: expected a number or a bigint, got ${describe(value)}`);
}

export function isArrayLike(value: unknown): value is ArrayLike<unknown> {
  if (Array.isArray(value) || types.isTypedArray(value)) return true;
  // A Proxy of a typed array is not one (its length getter throws a TypeError on the proxy).
  if (types.isProxy(value)) return false;
  return isRecord(value) && Number.isSafeInteger(value.length) && (value.length as number) >= 0;
}

// ids as the binding takes them: a BigInt64Array (entries >= 0) or a Float64Array (integers
// 0..2^53 - 1, a copy unless one was given). expected: the length they must have (rows of vectors).
// copy: always a fresh array (never the caller's), e.g. to keep it until a queued write runs.
export function readIds(
  value: unknown,
  expected: number | undefined,
  name = 'ids',
  copy = false,
): Float64Array | BigInt64Array {
  const expectedTypes = 'an array of numbers, a Float64Array or a BigInt64Array';
  if (!isArrayLike(value) || types.isBigUint64Array(value)) {
    throw new VlkError('ERR_VLK_TYPE', `${name}: expected ${expectedTypes}, got ${describe(value)}`);
  }
  if (expected !== undefined && value.length !== expected) {
    throw new VlkError('ERR_VLK_SHAPE', `${name}: length ${value.length} is not the number of vectors (${expected})`);
  }
  if (types.isBigInt64Array(value)) {
    for (let i = 0; i < value.length; i++) {
      if (value[i] < 0n) {
        throw new VlkError('ERR_VLK_INVALID_ARG', `${name}[${i}]: ${value[i]}n is negative (ids are integers >= 0)`);
      }
    }
    return copy ? value.slice() : value;
  }
  const out = types.isFloat64Array(value) && !copy ? value : new Float64Array(value.length);
  for (let i = 0; i < value.length; i++) {
    const v = value[i];
    if (typeof v !== 'number') {
      throw new VlkError('ERR_VLK_TYPE', `${name}[${i}]: expected a number, got ${describe(v)}`);
    }
    if (!isIdNumber(v)) {
      throw new VlkError(
        'ERR_VLK_INVALID_ARG',
        `${name}[${i}]: ${v} is not an integer in 0..2^53 - 1 (use a BigInt64Array beyond)`,
      );
    }
    out[i] = v;
  }
  return out;
}

// A matrix of rows x dim: a plain Float32Array split by the index's dim, or a view with cols = dim.
export function readRows(value: unknown, name: string, dim: number): NativeMatrix {
  const arg = readMatrix(value, name);
  if ('view' in arg && arg.view.cols !== dim) {
    throw new VlkError('ERR_VLK_DIM_MISMATCH', `${name}: cols ${arg.view.cols} differs from the index's dim ${dim}`);
  }
  return shapeMatrix(arg, name, dim);
}
