// Argument checks shared by every operation (lib): value descriptions, sizes, and matrix inputs
// (Float32Array + dim, { data, rows, cols }, { data, dims }) normalised to { data, rows, cols }
// without copying. The binding repeats these checks with the same codes; these give the messages.
import { types } from 'node:util';
import { VlkError } from './errors';
import type { NativeMatrix } from './loader';
import type { Device, Metric, Precision, SearchPrecision } from './types';

/** Short description of a value for messages: "null", "a Float64Array", "a number (1.5)". */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (types.isTypedArray(value)) return `a ${Object.prototype.toString.call(value).slice(8, -1)}`;
  if (Array.isArray(value)) return 'an Array';
  switch (typeof value) {
    case 'number':
      return `a number (${String(value)})`;
    case 'string':
      return `a string (${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)})`;
    case 'boolean':
      return String(value);
    case 'bigint':
      return `a bigint (${String(value)})`;
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
    default: {
      if (types.isArrayBuffer(value)) return 'an ArrayBuffer';
      if (types.isSharedArrayBuffer(value)) return 'a SharedArrayBuffer';
      if (types.isDataView(value)) return 'a DataView';
      return 'an object';
    }
  }
}

/** A plain object (not null, an array or a function). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A non-negative integer size (rows, cols, dim). @throws VlkError ERR_VLK_SHAPE */
export function readSize(value: unknown, name: string): number {
  if (typeof value !== 'number') {
    throw new VlkError('ERR_VLK_SHAPE', `${name}: expected a non-negative integer, got ${describe(value)}`);
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new VlkError('ERR_VLK_SHAPE', `${name}: ${String(value)} is not a non-negative integer <= 2^53 - 1`);
  }
  return value;
}

/** An optional boolean; undefined gives `fallback`. @throws VlkError ERR_VLK_INVALID_ARG */
export function readFlag(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') {
    throw new VlkError('ERR_VLK_INVALID_ARG', `${name}: expected a boolean, got ${describe(value)}`);
  }
  return value;
}

// A detached ArrayBuffer refuses new views; an empty live one does not.
export function isDetached(array: Float32Array): boolean {
  const buffer = array.buffer;
  if (buffer.byteLength !== 0 || types.isSharedArrayBuffer(buffer)) return false;
  try {
    new Uint8Array(buffer);
    return false;
  } catch {
    return true;
  }
}

function checkLength(data: Float32Array, name: string, rows: number, cols: number): void {
  const expected = rows * cols;
  if (!Number.isSafeInteger(expected)) {
    throw new VlkError('ERR_VLK_SHAPE', `${name}: rows x cols = ${rows} x ${cols} overflows the largest safe integer`);
  }
  // A detached buffer reads as length 0, which rows or cols 0 would accept; no view of it can be made.
  if (data.length === 0 && isDetached(data)) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `${name}.data: the Float32Array's buffer is detached`);
  }
  if (data.length === expected) return;
  if (data.byteLength === 0 && expected > 0) {
    throw new VlkError(
      'ERR_VLK_INVALID_ARG',
      `${name}.data: byteLength is 0 (${isDetached(data) ? 'detached buffer' : 'empty buffer'}) ` +
        `but rows x cols = ${rows} x ${cols} = ${expected}`,
    );
  }
  throw new VlkError(
    'ERR_VLK_SHAPE',
    `${name}: data length ${data.length} is not rows x cols = ${rows} x ${cols} = ${expected}`,
  );
}

const expectedMatrix = 'a Float32Array or a { data, rows, cols } view';

/** A matrix argument after the checks that need no `dim`: a plain array, or a checked view. */
export type MatrixArg = { plain: Float32Array } | { view: NativeMatrix };

/**
 * First phase for a matrix argument named `name` ("queries", "gallery"): its type, and for a view
 * its shape and length. Both inputs pass this phase before plain arrays are split by dim.
 * @throws VlkError ERR_VLK_TYPE, ERR_VLK_SHAPE, ERR_VLK_INVALID_ARG (detached)
 */
export function readMatrix(value: unknown, name: string): MatrixArg {
  if (types.isTypedArray(value)) {
    if (!types.isFloat32Array(value)) {
      throw new VlkError('ERR_VLK_TYPE', `${name}: expected ${expectedMatrix}, got ${describe(value)}`);
    }
    return { plain: value };
  }
  if (!isRecord(value)) {
    throw new VlkError('ERR_VLK_TYPE', `${name}: expected ${expectedMatrix}, got ${describe(value)}`);
  }
  const data = value.data;
  if (!types.isFloat32Array(data)) {
    throw new VlkError('ERR_VLK_TYPE', `${name}.data: expected a Float32Array, got ${describe(data)}`);
  }
  let rows: number;
  let cols: number;
  if (value.rows !== undefined || value.cols !== undefined) {
    rows = readSize(value.rows, `${name}.rows`);
    cols = readSize(value.cols, `${name}.cols`);
  } else {
    const dims = value.dims;
    if (dims === undefined) {
      throw new VlkError('ERR_VLK_SHAPE', `${name}: a view needs rows and cols, or dims: [rows, cols]`);
    }
    if (!Array.isArray(dims)) {
      throw new VlkError('ERR_VLK_SHAPE', `${name}.dims: expected an array [rows, cols], got ${describe(dims)}`);
    }
    if (dims.length !== 2) {
      throw new VlkError('ERR_VLK_SHAPE', `${name}.dims: expected [rows, cols], got ${dims.length} dimensions`);
    }
    rows = readSize(dims[0], `${name}.dims[0]`);
    cols = readSize(dims[1], `${name}.dims[1]`);
  }
  checkLength(data, name, rows, cols);
  return { view: { data, rows, cols } };
}

/**
 * Second phase: a plain array split into rows of `dim` (options.dim), or a view checked against it.
 * @throws VlkError ERR_VLK_INVALID_ARG (no dim, detached), ERR_VLK_EMPTY (dim 0), ERR_VLK_DIM_MISMATCH
 */
export function shapeMatrix(arg: MatrixArg, name: string, dim: number | undefined): NativeMatrix {
  // Some callers pass options.dim through unchecked: anything but a size is refused here, before a
  // message formats it (a symbol or a Proxy would throw a TypeError there).
  if (dim !== undefined && !(typeof dim === 'number' && Number.isSafeInteger(dim) && dim >= 0)) {
    throw new VlkError('ERR_VLK_SHAPE', `options.dim: ${describe(dim)} is not a non-negative integer`);
  }
  if ('view' in arg) {
    if (dim !== undefined && arg.view.cols !== dim) {
      throw new VlkError('ERR_VLK_DIM_MISMATCH', `${name}: cols ${arg.view.cols} differs from options.dim ${dim}`);
    }
    return arg.view;
  }
  const data = arg.plain;
  if (dim === undefined) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.dim: required when ${name} is a plain Float32Array`);
  }
  if (dim === 0) throw new VlkError('ERR_VLK_EMPTY', 'options.dim: 0 (a row needs at least one column)');
  if (data.length === 0 && isDetached(data)) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `${name}: the Float32Array's buffer is detached`);
  }
  if (data.length % dim !== 0) {
    throw new VlkError('ERR_VLK_DIM_MISMATCH', `${name}: length ${data.length} is not a multiple of dim ${dim}`);
  }
  return { data, rows: data.length / dim, cols: dim };
}

const METRICS: ReadonlySet<string> = new Set(['ip', 'cosine', 'l2']);

/** options.metric: undefined is 'ip'; anything but 'ip' | 'cosine' | 'l2' is ERR_VLK_INVALID_ARG. */
export function readMetric(value: unknown): Metric {
  const metric = value ?? 'ip';
  if (typeof metric !== 'string' || !METRICS.has(metric)) {
    const got = typeof metric === 'string' ? `'${metric}'` : describe(metric);
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.metric: expected 'ip', 'cosine' or 'l2', got ${got}`);
  }
  return metric as Metric;
}

/** options.threads: undefined stays undefined (the pool size); otherwise an integer >= 1. */
export function readThreads(value: unknown): number | undefined {
  if (value !== undefined && (typeof value !== 'number' || !Number.isInteger(value) || value < 1)) {
    const got = typeof value === 'number' ? String(value) : describe(value);
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.threads: ${got} is not an integer >= 1`);
  }
  return value as number | undefined;
}

const DEVICES: ReadonlySet<string> = new Set(['cpu', 'cuda', 'auto']);

/** options.device: undefined is 'cpu'; anything but 'cpu' | 'cuda' | 'auto' is ERR_VLK_INVALID_ARG. */
export function readDevice(value: unknown): Device {
  const device = value ?? 'cpu';
  if (typeof device !== 'string' || !DEVICES.has(device)) {
    const got = typeof device === 'string' ? `'${device}'` : describe(device);
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.device: expected 'cpu', 'cuda' or 'auto', got ${got}`);
  }
  return device as Device;
}

/**
 * options.precision of a FlatIndex search: undefined is 'exact'; 'exact' | 'bf16', and 'bf16' only
 * with device 'cuda' (a result's precision never depends on the machine; a CPU index picks its
 * precision with `storage`). Search's is readSearchPrecision. @throws VlkError ERR_VLK_INVALID_ARG
 */
export function readPrecision(value: unknown, device: Device): Precision {
  const precision = value ?? 'exact';
  if (precision !== 'exact' && precision !== 'bf16') {
    const got = typeof precision === 'string' ? `'${precision}'` : describe(precision);
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.precision: expected 'exact' or 'bf16', got ${got}`);
  }
  if (precision === 'bf16' && device !== 'cuda') {
    throw new VlkError(
      'ERR_VLK_INVALID_ARG',
      `options.precision: 'bf16' precision is for device 'cuda' (got device '${device}'); use precision 'exact' on the CPU`,
    );
  }
  return precision;
}

/**
 * options.precision of search / tokenMaxSearch: undefined is 'exact'; 'bf16' on the CPU (a bf16 scan
 * with an exact fp32 re-score: the same results as 'exact') or with device 'cuda' (the GPU's
 * approximate bf16 scan); 'i8' (int8 scan, exact re-score) on the CPU only. Neither with device
 * 'auto', where what 'bf16' means would depend on the machine. Mirrors the binding's
 * ReadSearchPrecision (native/binding/search.cpp). @throws VlkError ERR_VLK_INVALID_ARG
 */
export function readSearchPrecision(value: unknown, device: Device): SearchPrecision {
  const precision = value ?? 'exact';
  if (precision !== 'exact' && precision !== 'bf16' && precision !== 'i8') {
    const got = typeof precision === 'string' ? `'${precision}'` : describe(precision);
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.precision: expected 'exact', 'bf16' or 'i8', got ${got}`);
  }
  if (precision === 'exact') return precision;
  if (device === 'auto') {
    throw new VlkError(
      'ERR_VLK_INVALID_ARG',
      `options.precision: '${precision}' needs device 'cpu' or 'cuda', not 'auto' (bf16 is exact on the CPU, ` +
        'approximate on the GPU; i8 is CPU only), so that a result\'s precision never depends on the machine',
    );
  }
  if (precision === 'i8' && device !== 'cpu') {
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.precision: 'i8' precision is for device 'cpu' (got device '${device}')`);
  }
  return precision;
}
