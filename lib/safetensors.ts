// safetensors files (lib): read a file or a buffer into typed arrays (each dtype's natural
// TypedArray, or Float32Array on request), write tensors to a file atomically, encode them into a
// Buffer. The format work is native (core/io/safetensors: a strict validating reader, the
// reference implementation's writer layout); async calls run on the addon's pool. Validation here
// gives the messages; the binding repeats the checks with the same codes.
import { fileURLToPath } from 'node:url';
import { types } from 'node:util';
import { atApi, fromNative, VlkError } from './errors';
import { describe, isRecord } from './args';
import { readSignal, runCancellable } from './cancel';
import { binding, type NativeSafetensors, type NativeTensorInput } from './loader';

/**
 * Element types of the safetensors format. F16 and BF16 travel as their raw bits in a
 * Uint16Array; C64 as interleaved (re, im) float32 pairs; F8_*, F4 and F6_* as raw bytes (F4 and
 * F6_* packed) in a Uint8Array.
 */
export type SafetensorsDtype =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U64'
  | 'U32'
  | 'U16'
  | 'U8'
  | 'BOOL'
  | 'C64'
  | 'F8_E5M2'
  | 'F8_E4M3'
  | 'F8_E8M0'
  | 'F8_E4M3FNUZ'
  | 'F8_E5M2FNUZ'
  | 'F4'
  | 'F6_E2M3'
  | 'F6_E3M2';

/** The typed arrays tensors come in and go out as. */
export type SafetensorsTypedArray =
  | Float32Array
  | Float64Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | Int16Array
  | Uint16Array
  | Int8Array
  | Uint8Array;

/** A tensor read from a file: `data` is row-major, of the TypedArray `dtype` maps to. */
export interface SafetensorsTensor<A extends SafetensorsTypedArray = SafetensorsTypedArray> {
  /** The dtype of `data` ('F32' for every tensor when read with `{ dtype: 'float32' }`). */
  dtype: SafetensorsDtype;
  /** Dimensions; [] for a scalar. */
  shape: number[];
  data: A;
}

/** A tensor to write: `dtype` defaults to the one `data`'s TypedArray maps to. */
export interface SafetensorsTensorInput {
  dtype?: SafetensorsDtype;
  shape: readonly number[];
  data: SafetensorsTypedArray | Uint8ClampedArray;
}

/** What a read returns: tensors by name (in the file's data order) and the "__metadata__" strings. */
export interface SafetensorsContents<A extends SafetensorsTypedArray = SafetensorsTypedArray> {
  tensors: Record<string, SafetensorsTensor<A>>;
  /** Sorted by key; {} when the file has none. */
  metadata: Record<string, string>;
}

/** A file path (string or file: URL) or the file's bytes. */
export type SafetensorsSource = string | URL | Uint8Array;

export interface SafetensorsReadOptions {
  /** 'float32': every tensor as a Float32Array (F32, F64, F16, BF16 only; others: ERR_VLK_TYPE). */
  dtype?: 'float32';
  /** Aborts the read (AbortError); async form only. */
  signal?: AbortSignal;
}

export interface SafetensorsWriteOptions {
  /** Written as "__metadata__" (keys sorted); omitted when empty. */
  metadata?: Record<string, string>;
  /** Aborts the write (AbortError; nothing is written); async form only. */
  signal?: AbortSignal;
}

const DTYPES: ReadonlySet<string> = new Set<SafetensorsDtype>([
  'F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U64', 'U32', 'U16', 'U8', 'BOOL', 'C64',
  'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F8_E4M3FNUZ', 'F8_E5M2FNUZ', 'F4', 'F6_E2M3', 'F6_E3M2',
]);

type ArrayKind =
  | 'Float32Array'
  | 'Float64Array'
  | 'Int32Array'
  | 'Uint32Array'
  | 'BigInt64Array'
  | 'BigUint64Array'
  | 'Int16Array'
  | 'Uint16Array'
  | 'Int8Array'
  | 'Uint8Array';

// The TypedArray each dtype is read into and written from, and its bits per element.
function arrayKindOf(dtype: SafetensorsDtype): ArrayKind {
  switch (dtype) {
    case 'F32':
    case 'C64':
      return 'Float32Array';
    case 'F64':
      return 'Float64Array';
    case 'I32':
      return 'Int32Array';
    case 'U32':
      return 'Uint32Array';
    case 'I64':
      return 'BigInt64Array';
    case 'U64':
      return 'BigUint64Array';
    case 'I16':
      return 'Int16Array';
    case 'U16':
    case 'F16':
    case 'BF16':
      return 'Uint16Array';
    case 'I8':
      return 'Int8Array';
    default:
      return 'Uint8Array';
  }
}

function bitsOf(dtype: SafetensorsDtype): number {
  switch (dtype) {
    case 'F4':
      return 4;
    case 'F6_E2M3':
    case 'F6_E3M2':
      return 6;
    case 'F64':
    case 'I64':
    case 'U64':
    case 'C64':
      return 64;
    case 'F32':
    case 'I32':
    case 'U32':
      return 32;
    case 'F16':
    case 'BF16':
    case 'I16':
    case 'U16':
      return 16;
    default:
      return 8;
  }
}

const INFERRED: Record<ArrayKind, SafetensorsDtype> = {
  Float32Array: 'F32',
  Float64Array: 'F64',
  Int32Array: 'I32',
  Uint32Array: 'U32',
  BigInt64Array: 'I64',
  BigUint64Array: 'U64',
  Int16Array: 'I16',
  Uint16Array: 'U16',
  Int8Array: 'I8',
  Uint8Array: 'U8',
};

function kindOf(data: ArrayBufferView): ArrayKind | 'Uint8ClampedArray' | undefined {
  if (!types.isTypedArray(data)) return undefined;
  const tag = Object.prototype.toString.call(data).slice(8, -1);
  return tag in INFERRED || tag === 'Uint8ClampedArray' ? (tag as ArrayKind | 'Uint8ClampedArray') : undefined;
}

const label = (name: string) => `tensors[${JSON.stringify(name)}]`;

function readSource(source: unknown): string | Uint8Array {
  if (types.isUint8Array(source)) return source;
  if (source instanceof URL) {
    if (source.protocol !== 'file:') {
      throw new VlkError('ERR_VLK_TYPE', `source: expected a file: URL, got a ${source.protocol} URL`);
    }
    return localPath(source, 'source');
  }
  if (typeof source !== 'string' || source.length === 0) {
    throw new VlkError(
      'ERR_VLK_TYPE',
      `source: expected a file path (non-empty string or file: URL) or a Buffer/Uint8Array, got ${describe(source)}`,
    );
  }
  return source;
}

// fileURLToPath throws a plain TypeError for a file: URL with a host (file://server/x).
function localPath(url: URL, name: string): string {
  try {
    return fileURLToPath(url);
  } catch (err) {
    throw new VlkError('ERR_VLK_TYPE', `${name}: expected a local file: URL (${(err as Error).message})`);
  }
}

function readPath(path: unknown): string {
  if (path instanceof URL) {
    if (path.protocol !== 'file:') throw new VlkError('ERR_VLK_TYPE', `path: expected a file: URL, got a ${path.protocol} URL`);
    return localPath(path, 'path');
  }
  if (typeof path !== 'string' || path.length === 0) {
    throw new VlkError('ERR_VLK_TYPE', `path: expected a non-empty string or a file: URL, got ${describe(path)}`);
  }
  return path;
}

function readOptions(options: unknown): Record<string, unknown> {
  if (options === undefined) return {};
  if (!isRecord(options)) throw new VlkError('ERR_VLK_TYPE', `options: expected an object, got ${describe(options)}`);
  return options;
}

function readToFloat32(options: Record<string, unknown>): boolean {
  const dtype = options.dtype;
  if (dtype === undefined) return false;
  if (dtype !== 'float32') {
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.dtype: expected 'float32' or undefined, got ${describe(dtype)}`);
  }
  return true;
}

function readMetadata(value: unknown): string[] {
  if (value === undefined) return [];
  if (!isRecord(value)) {
    throw new VlkError('ERR_VLK_TYPE', `options.metadata: expected an object of strings, got ${describe(value)}`);
  }
  const flat: string[] = [];
  for (const key of Object.keys(value)) {
    const v = value[key];
    if (typeof v !== 'string') {
      throw new VlkError('ERR_VLK_TYPE', `options.metadata[${JSON.stringify(key)}]: expected a string, got ${describe(v)}`);
    }
    flat.push(key, v);
  }
  return flat;
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

// One tensor to the binding's form; checks as the binding does (same codes).
function readTensor(name: string, value: unknown): NativeTensorInput {
  const where = label(name);
  if (name === '') throw new VlkError('ERR_VLK_INVALID_ARG', 'tensors: a tensor name is empty');
  if (name === '__metadata__') {
    throw new VlkError('ERR_VLK_INVALID_ARG', `${where}: the name "__metadata__" is reserved for the metadata (use options.metadata)`);
  }
  if (!isRecord(value)) {
    throw new VlkError('ERR_VLK_TYPE', `${where}: expected { dtype?, shape, data }, got ${describe(value)}`);
  }
  const data = value.data as ArrayBufferView;
  const kind = kindOf(data);
  if (kind === undefined) {
    throw new VlkError('ERR_VLK_TYPE', `${where}.data: expected a typed array (Float32Array, Int32Array, ...), got ${describe(data)}`);
  }
  const given = value.dtype;
  let dtype: SafetensorsDtype;
  if (given === undefined) {
    dtype = kind === 'Uint8ClampedArray' ? 'U8' : INFERRED[kind];
  } else if (typeof given !== 'string' || !DTYPES.has(given)) {
    throw new VlkError(
      'ERR_VLK_INVALID_ARG',
      `${where}.dtype: unknown dtype ${typeof given === 'string' ? JSON.stringify(given) : describe(given)} (known: ${[...DTYPES].join(', ')})`,
    );
  } else {
    dtype = given as SafetensorsDtype;
  }
  const want = arrayKindOf(dtype);
  if (kind !== want && !(want === 'Uint8Array' && kind === 'Uint8ClampedArray')) {
    const hint = dtype === 'F16' || dtype === 'BF16' ? ' (the raw bits)' : dtype === 'C64' ? ' (re, im pairs)' : '';
    throw new VlkError('ERR_VLK_TYPE', `${where}.data: dtype ${dtype} is written from a ${want}${hint}, got a ${kind}`);
  }
  const shape = value.shape;
  if (!Array.isArray(shape)) {
    throw new VlkError('ERR_VLK_SHAPE', `${where}.shape: expected an array of sizes, got ${describe(shape)}`);
  }
  if (shape.length > 64) throw new VlkError('ERR_VLK_SHAPE', `${where}.shape: more than 64 dimensions`);
  let elements = 1;
  shape.forEach((d: unknown, i: number) => {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new VlkError('ERR_VLK_SHAPE', `${where}.shape[${i}]: expected a non-negative integer <= 2^53 - 1, got ${describe(d)}`);
    }
    elements *= d;
  });
  if (elements !== 0 && !Number.isSafeInteger(elements)) {
    throw new VlkError('ERR_VLK_SHAPE', `${where}: shape ${shapeText(shape)} has more than 2^53 - 1 elements`);
  }
  const bits = bitsOf(dtype);
  if ((elements * bits) % 8 !== 0) {
    throw new VlkError('ERR_VLK_SHAPE', `${where}: ${elements} elements of ${dtype} (${bits} bits) do not fill whole bytes`);
  }
  const perElement = (data as Uint8Array).BYTES_PER_ELEMENT;
  const expected = (elements * bits) / 8 / perElement;
  const length = (data as Uint8Array).length;
  if (length !== expected) {
    const unit =
      dtype === 'C64' ? ' (2 float32 values per C64 element)' : bits < 8 ? ` bytes (${dtype} packs ${bits === 4 ? 2 : 4} elements into ${bits === 4 ? 1 : 3} byte${bits === 4 ? '' : 's'})` : '';
    throw new VlkError(
      'ERR_VLK_SHAPE',
      `${where}: data has ${length} elements, but shape ${shapeText(shape)} of ${dtype} needs ${expected}${unit}`,
    );
  }
  const out = kind === 'Uint8ClampedArray' ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : data;
  return { name, dtype, shape: shape.slice(), data: out };
}

function readTensors(tensors: unknown): NativeTensorInput[] {
  if (!isRecord(tensors) || types.isTypedArray(tensors)) {
    throw new VlkError('ERR_VLK_TYPE', `tensors: expected an object { name: { dtype?, shape, data } }, got ${describe(tensors)}`);
  }
  return Object.keys(tensors).map((name) => readTensor(name, tensors[name]));
}

function define<T>(target: Record<string, T>, key: string, value: T): void {
  // defineProperty, so that a tensor named "__proto__" is an own property like any other.
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function toContents(n: NativeSafetensors): SafetensorsContents {
  const tensors: Record<string, SafetensorsTensor> = {};
  for (let i = 0; i < n.names.length; i++) {
    define(tensors, n.names[i], {
      dtype: n.dtypes[i] as SafetensorsDtype,
      shape: n.shapes[i],
      data: n.arrays[i] as SafetensorsTypedArray,
    });
  }
  const metadata: Record<string, string> = {};
  for (let i = 0; i + 1 < n.metadata.length; i += 2) define(metadata, n.metadata[i], n.metadata[i + 1]);
  return { tensors, metadata };
}

/**
 * Reads a safetensors file (or its bytes) off the event loop: the read, the validation and the
 * copy into the result arrays run on the addon's pool. Every tensor comes back in its dtype's
 * natural TypedArray (F32: Float32Array, F64: Float64Array, I64: BigInt64Array, F16/BF16: the raw
 * bits in a Uint16Array, ...), or, with `{ dtype: 'float32' }`, as a Float32Array (F16, BF16 and
 * F32 exactly, F64 rounded). Each array has its own ArrayBuffer.
 *
 * The file is validated completely first: header length, strict UTF-8 JSON, known dtypes,
 * shapes, byte sizes, and tensors that tile the data section exactly (no overlap, no hole, no
 * trailing bytes). A Uint8Array source is read in place: do not change it until the promise settles.
 *
 * @example
 * ```ts
 * import { readSafetensors } from 'vlkernels';
 * const { tensors, metadata } = await readSafetensors('heads.safetensors', { dtype: 'float32' });
 * const w = tensors['combiner.weight']; // { dtype: 'F32', shape: [512, 1024], data: Float32Array }
 * ```
 * @throws VlkError (as a rejection) with code ERR_VLK_TYPE (source or options of the wrong type; a
 * tensor whose dtype does not convert to float32 when `dtype: 'float32'` is asked), ERR_VLK_INVALID_ARG
 * (options.dtype, signal), ERR_VLK_IO (cannot open or read the file), ERR_VLK_CORRUPT (not a valid
 * safetensors file: the message names the file or "buffer", the tensor and the field),
 * ERR_VLK_SHAPE (a dimension above 2^53 - 1), ERR_VLK_OUT_OF_MEMORY; AbortError when `signal` aborts.
 */
export async function readSafetensors(
  source: SafetensorsSource,
  options: SafetensorsReadOptions & { dtype: 'float32' },
): Promise<SafetensorsContents<Float32Array>>;
export async function readSafetensors(source: SafetensorsSource, options?: SafetensorsReadOptions): Promise<SafetensorsContents>;
export async function readSafetensors(source: SafetensorsSource, options?: SafetensorsReadOptions): Promise<SafetensorsContents> {
  const { src, toFloat32, signal } = atApi(() => {
    const o = readOptions(options);
    return { src: readSource(source), toFloat32: readToFloat32(o), signal: readSignal(o.signal, 'options.signal') };
  }, readSafetensors);
  const native = await runCancellable(signal, readSafetensors, (token) => binding.readSafetensorsAsync(src, toFloat32, token));
  return toContents(native);
}

/**
 * {@link readSafetensors} on the calling thread (blocks the event loop for the read). `signal` is
 * not taken.
 *
 * @example
 * ```ts
 * const { tensors } = readSafetensorsSync(fs.readFileSync('heads.safetensors'));
 * ```
 * @throws VlkError as {@link readSafetensors}.
 */
export function readSafetensorsSync(
  source: SafetensorsSource,
  options: Omit<SafetensorsReadOptions, 'signal'> & { dtype: 'float32' },
): SafetensorsContents<Float32Array>;
export function readSafetensorsSync(source: SafetensorsSource, options?: Omit<SafetensorsReadOptions, 'signal'>): SafetensorsContents;
export function readSafetensorsSync(source: SafetensorsSource, options?: Omit<SafetensorsReadOptions, 'signal'>): SafetensorsContents {
  const { src, toFloat32 } = atApi(() => {
    const o = readOptions(options);
    return { src: readSource(source), toFloat32: readToFloat32(o) };
  }, readSafetensorsSync);
  try {
    return toContents(binding.readSafetensorsSync(src, toFloat32));
  } catch (err) {
    throw fromNative(err, readSafetensorsSync);
  }
}

/**
 * Writes tensors to a safetensors file, atomically (a temporary file in the same folder, fsynced,
 * renamed over `path`, the folder fsynced: a reader never sees a partial file, and a failed or
 * aborted write leaves an existing file as it was), off the event loop. Tensors are ordered as the
 * reference implementation orders them (widest dtype first, then by name) so that each one's data
 * is aligned; the header is padded with spaces to a multiple of 8 bytes. `dtype` defaults to the
 * one the TypedArray maps to (Float32Array: F32, Uint16Array: U16, ...); F16/BF16 need it given,
 * with their raw bits in a Uint16Array. The arrays are read in place: do not change them until the
 * promise settles.
 *
 * @example
 * ```ts
 * import { writeSafetensors } from 'vlkernels';
 * await writeSafetensors('heads.safetensors', {
 *   'combiner.weight': { shape: [512, 1024], data: weights },  // Float32Array: F32
 *   'combiner.bias': { shape: [512], data: bias },
 * }, { metadata: { format: 'pt' } });
 * ```
 * @throws VlkError (as a rejection) with code ERR_VLK_TYPE (tensors, an entry, data or metadata of
 * the wrong type; data of another TypedArray than the dtype's), ERR_VLK_INVALID_ARG (unknown dtype,
 * empty or reserved name, signal), ERR_VLK_SHAPE (bad shape; data length != the shape's element
 * count: the message names the tensor), ERR_VLK_IO (naming the path), ERR_VLK_OUT_OF_MEMORY;
 * AbortError when `signal` aborts.
 */
export async function writeSafetensors(
  path: string | URL,
  tensors: Record<string, SafetensorsTensorInput>,
  options?: SafetensorsWriteOptions,
): Promise<void> {
  const prepared = atApi(() => {
    const o = readOptions(options);
    return {
      file: readPath(path),
      list: readTensors(tensors),
      metadata: readMetadata(o.metadata),
      signal: readSignal(o.signal, 'options.signal'),
    };
  }, writeSafetensors);
  await runCancellable(prepared.signal, writeSafetensors, (token) =>
    binding.writeSafetensorsAsync(prepared.file, prepared.list, prepared.metadata, token),
  );
}

/**
 * {@link writeSafetensors} on the calling thread (blocks the event loop for the write).
 *
 * @example
 * ```ts
 * writeSafetensorsSync('t.safetensors', { x: { shape: [2], data: new Float32Array([1, 2]) } });
 * ```
 * @throws VlkError as {@link writeSafetensors}.
 */
export function writeSafetensorsSync(
  path: string | URL,
  tensors: Record<string, SafetensorsTensorInput>,
  options?: Omit<SafetensorsWriteOptions, 'signal'>,
): void {
  const prepared = atApi(() => {
    const o = readOptions(options);
    return { file: readPath(path), list: readTensors(tensors), metadata: readMetadata(o.metadata) };
  }, writeSafetensorsSync);
  try {
    binding.writeSafetensorsSync(prepared.file, prepared.list, prepared.metadata);
  } catch (err) {
    throw fromNative(err, writeSafetensorsSync);
  }
}

/**
 * The bytes {@link writeSafetensors} writes for the same tensors, in a Buffer (on the calling
 * thread).
 *
 * @example
 * ```ts
 * const bytes = encodeSafetensors({ x: { shape: [2, 2], data: new Float32Array(4) } }, { metadata: { a: 'b' } });
 * const back = readSafetensorsSync(bytes);
 * ```
 * @throws VlkError as {@link writeSafetensors}, without ERR_VLK_IO.
 */
export function encodeSafetensors(
  tensors: Record<string, SafetensorsTensorInput>,
  options?: Omit<SafetensorsWriteOptions, 'signal'>,
): Buffer {
  const prepared = atApi(() => {
    const o = readOptions(options);
    return { list: readTensors(tensors), metadata: readMetadata(o.metadata) };
  }, encodeSafetensors);
  try {
    return binding.encodeSafetensorsSync(prepared.list, prepared.metadata);
  } catch (err) {
    throw fromNative(err, encodeSafetensors);
  }
}
