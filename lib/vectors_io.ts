// Embedding files (lib, over node:fs): .npy (v1-v3, either byte order, C or Fortran order),
// .fvecs/.ivecs/.bvecs, raw little-endian float32 with an explicit shape, and safetensors (through
// readSafetensorsSync) read into row-major { data, rows, cols }; atomic writers; and openVectors,
// which streams row blocks of files larger than memory through a FileHandle. The .npy header and
// the vecs records are parsed and checked natively (core/io/npy, core/io/vecs); files stay here.
import {
  closeSync,
  fstatSync,
  fsyncSync,
  openSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { open as openFile, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { endianness } from 'node:os';
import { dirname, extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { types } from 'node:util';
import { abortError, atApi, fromNative, VlkError, type VlkErrorCode } from './errors';
import { describe, isRecord, readMatrix, readSize, shapeMatrix } from './args';
import { binding } from './loader';
import { readSafetensorsSync, type SafetensorsTensor } from './safetensors';
import type { MatrixInput } from './types';

/** Row-major float32 vectors, a {@link MatrixInput} every operation accepts. */
export interface Vectors {
  data: Float32Array;
  rows: number;
  cols: number;
  /**
   * Set when the file's values were converted to float32 on reading, as 'float64->float32',
   * 'float16->float32', 'bfloat16->float32', 'uint8->float32', 'int8->float32', 'uint16->float32' or
   * 'int16->float32' (float64 and bfloat16 round; float16 and the integer types are exact).
   */
  converted?: string;
}

/** Row-major int32 rows (ivecs, ground-truth ids). */
export interface Int32Rows {
  data: Int32Array;
  rows: number;
  cols: number;
}

/** Row-major uint8 rows (bvecs). */
export interface Uint8Rows {
  data: Uint8Array;
  rows: number;
  cols: number;
}

/** The element types {@link readNpyAny} reads. */
export type NpyDtype =
  | 'float16'
  | 'float32'
  | 'float64'
  | 'int8'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'uint8'
  | 'uint16'
  | 'uint32'
  | 'uint64'
  | 'bool';

/** The typed array each {@link NpyDtype} is read into (float16: raw bits; bool: 0/1 bytes). */
export type NpyTypedArray =
  | Float32Array
  | Float64Array
  | Uint16Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint32Array
  | BigUint64Array;

/** An array read by {@link readNpyAny}: C-order data in the host's byte order. */
export interface NpyArray {
  data: NpyTypedArray;
  /** Dimensions; [] for a 0-d array. */
  shape: number[];
  dtype: NpyDtype;
  /** The header's 'descr' as written in the file ('>f4', '<i8', '|u1', ...). */
  descr: string;
  /** The file's 'fortran_order' (the data returned is row-major either way). */
  fortranOrder: boolean;
}

/** The file formats {@link readVectors} and {@link openVectors} read. */
export type VectorFormat = 'npy' | 'fvecs' | 'bvecs' | 'raw' | 'safetensors';

export interface ReadVectorsOptions {
  /** The format; by default from the extension (.npy, .fvecs, .bvecs, .f32/.raw, .safetensors). */
  format?: VectorFormat;
  /** Values per row: required for 'raw', checked against the file for the other formats. */
  cols?: number;
  /** Rows: optional for 'raw' (then checked against the file size), checked for the other formats. */
  rows?: number;
  /** The safetensors tensor to read; by default the file's only 2-D tensor. */
  tensor?: string;
}

export interface OpenVectorsOptions {
  /** 'npy' (C order), 'fvecs', 'bvecs' or 'raw'; by default from the extension. */
  format?: Exclude<VectorFormat, 'safetensors'>;
  /** Values per row: required for 'raw', checked against the file for the other formats. */
  cols?: number;
  /** Rows: optional for 'raw' (then checked against the file size), checked for the other formats. */
  rows?: number;
  /** Rows per block (the last block may be shorter); by default about 8 MiB of float32 per block. */
  blockRows?: number;
  /** Stops the iteration with an AbortError before the next block is read. */
  signal?: AbortSignal;
}

/** What {@link openVectors} returns: the file's shape, and its rows in blocks when iterated. */
export interface VectorStream extends AsyncIterable<Vectors> {
  readonly path: string;
  readonly format: Exclude<VectorFormat, 'safetensors'>;
  readonly rows: number;
  readonly cols: number;
  /** Rows per block. */
  readonly blockRows: number;
  /** As {@link Vectors.converted}: set when the file's values are converted to float32. */
  readonly converted?: string;
}

export interface WriteMatrixOptions {
  /** Values per row when `m` is a plain Float32Array. */
  dim?: number;
}

// ---- shared helpers -----------------------------------------------------------------------------

const LITTLE_ENDIAN = endianness() === 'LE';
const CHUNK_BYTES = 1 << 20;

function fail(code: VlkErrorCode, file: string, field: string, message: string): VlkError {
  return new VlkError(code, `${file}: ${field}: ${message}`);
}

function corrupt(file: string, field: string, message: string): VlkError {
  return fail('ERR_VLK_CORRUPT', file, field, message);
}

/** Runs a native parser call; its error ("<field>: <message>", a code) is rethrown naming `file`. */
function nativeCall<T>(file: string, call: () => T): T {
  try {
    return call();
  } catch (err) {
    const e = fromNative(err, nativeCall);
    if (e instanceof VlkError) throw new VlkError(e.code, `${file}: ${e.message}`);
    throw e;
  }
}

function readPath(value: unknown, name = 'path'): string {
  if (typeof value === 'string') {
    if (value.length === 0) throw new VlkError('ERR_VLK_INVALID_ARG', `${name}: empty string`);
    return value;
  }
  if (value instanceof URL) {
    if (value.protocol !== 'file:') {
      throw new VlkError('ERR_VLK_INVALID_ARG', `${name}: only file: URLs are files, got ${value.protocol}`);
    }
    return fileURLToPath(value);
  }
  throw new VlkError('ERR_VLK_TYPE', `${name}: expected a string or a file: URL, got ${describe(value)}`);
}

function readOptionsRecord(value: unknown): Record<string, unknown> {
  if (value === undefined) return {};
  if (!isRecord(value)) throw new VlkError('ERR_VLK_TYPE', `options: expected an object, got ${describe(value)}`);
  return value;
}

function optionalSize(value: unknown, name: string): number | undefined {
  return value === undefined ? undefined : readSize(value, name);
}

function ioError(file: string, err: unknown): VlkError {
  const e = err as NodeJS.ErrnoException;
  const why = typeof e?.code === 'string' ? `${e.code} ${e.message ?? ''}`.trim() : String(err);
  return new VlkError('ERR_VLK_IO', `${file}: ${why}`, { cause: err });
}

/** Allocates a typed array; a length the engine cannot hold is ERR_VLK_OUT_OF_MEMORY. */
function allocate<T>(make: () => T, file: string, what: string, bytes: number): T {
  try {
    return make();
  } catch (err) {
    if (err instanceof RangeError) {
      throw fail('ERR_VLK_OUT_OF_MEMORY', file, what, `cannot allocate ${bytes} bytes (${err.message})`);
    }
    throw err;
  }
}

/** Opens `file` for reading (a regular file), runs `body` with its descriptor and size, closes. */
function withFile<T>(file: string, body: (fd: number, size: number) => T): T {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw ioError(file, err);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new VlkError('ERR_VLK_IO', `${file}: not a regular file`);
    return body(fd, stat.size);
  } finally {
    closeSync(fd);
  }
}

/** Fills `target` from `position`; a file that ends first (changed since its size was read) is corrupt. */
function readFully(fd: number, target: Uint8Array, position: number, file: string, field: string): void {
  let done = 0;
  while (done < target.length) {
    let n: number;
    try {
      n = readSync(fd, target, done, target.length - done, position + done);
    } catch (err) {
      throw ioError(file, err);
    }
    if (n === 0) {
      throw corrupt(file, field, `the file ended at byte ${position + done}, ${target.length - done} bytes short`);
    }
    done += n;
  }
}

async function readFullyAsync(
  handle: FileHandle,
  target: Uint8Array,
  position: number,
  file: string,
  field: string,
): Promise<void> {
  let done = 0;
  while (done < target.length) {
    let n: number;
    try {
      ({ bytesRead: n } = await handle.read(target, done, target.length - done, position + done));
    } catch (err) {
      throw ioError(file, err);
    }
    if (n === 0) {
      throw corrupt(file, field, `the file ended at byte ${position + done}, ${target.length - done} bytes short`);
    }
    done += n;
  }
}

function bytesOf(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** Swaps each `size`-byte element of `b` in place (size 1: nothing to do). */
function swapBytes(b: Buffer, size: number): void {
  if (size === 2) b.swap16();
  else if (size === 4) b.swap32();
  else if (size === 8) b.swap64();
}

/** The little-endian bytes of `a` with `size`-byte elements: a view on little-endian hosts. */
function littleEndianBytes(a: ArrayBufferView, size: number): Buffer {
  const b = bytesOf(a);
  if (LITTLE_ENDIAN || size === 1) return b;
  const copy = Buffer.from(b);
  swapBytes(copy, size);
  return copy;
}

/**
 * Writes `path` atomically: the chunks `produce` emits go to a temporary file in the same folder,
 * which is fsynced and renamed over `path` (then the folder is fsynced), so a reader never sees a
 * partial file and a failed write leaves an existing file as it was.
 */
function writeAtomic(file: string, produce: (emit: (chunk: Uint8Array) => void) => void): void {
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  let fd: number;
  try {
    fd = openSync(tmp, 'wx', 0o644);
  } catch (err) {
    throw ioError(file, err);
  }
  let ok = false;
  try {
    produce((chunk) => {
      let done = 0;
      while (done < chunk.length) {
        try {
          done += writeSync(fd, chunk, done, chunk.length - done);
        } catch (err) {
          throw ioError(file, err);
        }
      }
    });
    try {
      fsyncSync(fd);
    } catch (err) {
      throw ioError(file, err);
    }
    ok = true;
  } finally {
    closeSync(fd);
    if (!ok) {
      try {
        unlinkSync(tmp);
      } catch {
        // The temporary file is already gone; the original error is the one to report.
      }
    }
  }
  try {
    renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // As above: report the rename's error.
    }
    throw ioError(file, err);
  }
  // The rename is durable once the folder is synced; folders that cannot be fsynced (some
  // platforms refuse) were still renamed into.
  try {
    const dfd = openSync(dirname(file), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // Not every platform can fsync a folder.
  }
}

// float16 bits -> float32 value, for every pattern (256 KiB, built on first use).
let halfTable: Float32Array | undefined;
function halfToFloat(): Float32Array {
  if (halfTable) return halfTable;
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    let v: number;
    if (exp === 0) v = mant * 2 ** -24;
    else if (exp === 31) v = mant === 0 ? Infinity : NaN;
    else v = (1 + mant / 1024) * 2 ** (exp - 15);
    table[h] = sign * v;
  }
  halfTable = table;
  return table;
}

// ---- .npy ---------------------------------------------------------------------------------------

interface DtypeInfo {
  name: NpyDtype;
  size: number;
  /** The file's bytes need swapping to the host's order. */
  swap: boolean;
}

interface NpyHeader {
  descr: string;
  dtype: DtypeInfo;
  fortranOrder: boolean;
  shape: number[];
  count: number;
  dataOffset: number;
}

const NPY_KINDS: Record<string, Partial<Record<number, NpyDtype>>> = {
  f: { 2: 'float16', 4: 'float32', 8: 'float64' },
  i: { 1: 'int8', 2: 'int16', 4: 'int32', 8: 'int64' },
  u: { 1: 'uint8', 2: 'uint16', 4: 'uint32', 8: 'uint64' },
  b: { 1: 'bool' },
};

/**
 * Reads and validates the header: the preamble (magic, version, header length), then exactly the
 * header's bytes, both parsed by the native core (core/io/npy), whose errors come back as
 * `${file}: ${field}: ${message}` with their codes.
 */
function readNpyHeader(fd: number, size: number, file: string): NpyHeader {
  const pre = Buffer.alloc(Math.min(12, size));
  // Shorter than any preamble: the native check reports the size without any bytes.
  if (size >= 10) readFully(fd, pre, 0, file, 'magic');
  const { headerStart, headerLen } = nativeCall(file, () => binding.npyPreamble(pre, size));
  const end = headerStart + headerLen;
  const head = allocate(() => Buffer.alloc(end), file, 'header', end);
  pre.copy(head, 0, 0, Math.min(pre.length, end));
  if (end > pre.length) readFully(fd, head.subarray(pre.length), pre.length, file, 'header');
  const h = nativeCall(file, () => binding.npyHeader(head, size));
  const name = NPY_KINDS[h.kind]?.[h.itemSize];
  if (name === undefined) {
    throw fail('ERR_VLK_INTERNAL', file, "header 'descr'", `the parser accepted kind '${h.kind}' of ${h.itemSize} bytes`);
  }
  return {
    descr: h.descr,
    dtype: { name, size: h.itemSize, swap: h.itemSize > 1 && h.bigEndian === LITTLE_ENDIAN },
    fortranOrder: h.fortranOrder,
    shape: h.shape,
    count: h.count,
    dataOffset: h.dataOffset,
  };
}

function arrayOf(name: NpyDtype, n: number): NpyTypedArray {
  switch (name) {
    case 'float16':
    case 'uint16':
      return new Uint16Array(n);
    case 'float32':
      return new Float32Array(n);
    case 'float64':
      return new Float64Array(n);
    case 'int8':
      return new Int8Array(n);
    case 'int16':
      return new Int16Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'int64':
      return new BigInt64Array(n);
    case 'uint32':
      return new Uint32Array(n);
    case 'uint64':
      return new BigUint64Array(n);
    default:
      return new Uint8Array(n);
  }
}

/** A typed view of the elements in `b` (byteOffset 0, whole elements). */
function viewOf(name: NpyDtype, b: Buffer, n: number): NpyTypedArray {
  const ab = b.buffer;
  const off = b.byteOffset;
  switch (name) {
    case 'float16':
    case 'uint16':
      return new Uint16Array(ab, off, n);
    case 'float32':
      return new Float32Array(ab, off, n);
    case 'float64':
      return new Float64Array(ab, off, n);
    case 'int8':
      return new Int8Array(ab, off, n);
    case 'int16':
      return new Int16Array(ab, off, n);
    case 'int32':
      return new Int32Array(ab, off, n);
    case 'int64':
      return new BigInt64Array(ab, off, n);
    case 'uint32':
      return new Uint32Array(ab, off, n);
    case 'uint64':
      return new BigUint64Array(ab, off, n);
    default:
      return new Uint8Array(ab, off, n);
  }
}

/**
 * Reads the header's `count` elements from `fd` into `out` (row-major), converting each with
 * `convert` (float16 bits through the table when `out` is float32). C-order data whose type is
 * already `out`'s is read straight into `out` (then byte-swapped in place if needed); otherwise
 * the file is read in 1 MiB chunks that are converted and, for Fortran order, scattered.
 */
function readNpyData(fd: number, h: NpyHeader, out: NpyTypedArray, file: string): void {
  const { dtype, shape, count } = h;
  if (count === 0) return;
  const fortran = h.fortranOrder && shape.filter((d) => d > 1).length > 1;
  const sameType = arrayOf(dtype.name, 0).constructor === out.constructor;
  if (!fortran && sameType) {
    const target = bytesOf(out);
    readFully(fd, target, h.dataOffset, file, 'data');
    if (dtype.swap) swapBytes(target, dtype.size);
    return;
  }
  const half = dtype.name === 'float16' && out instanceof Float32Array ? halfToFloat() : undefined;
  const nd = shape.length;
  const cstride = new Array<number>(nd).fill(1);
  for (let a = nd - 2; a >= 0; a--) cstride[a] = cstride[a + 1] * shape[a + 1];
  const idx = new Array<number>(nd).fill(0);
  let dest = 0;
  const perChunk = Math.max(1, Math.floor(CHUNK_BYTES / dtype.size));
  const chunk = Buffer.allocUnsafeSlow(Math.min(perChunk, count) * dtype.size);
  const dst = out as unknown as { [i: number]: number | bigint };
  for (let k0 = 0; k0 < count; k0 += perChunk) {
    const n = Math.min(perChunk, count - k0);
    const bytes = chunk.subarray(0, n * dtype.size);
    readFully(fd, bytes, h.dataOffset + k0 * dtype.size, file, 'data');
    if (dtype.swap) swapBytes(bytes, dtype.size);
    const src = viewOf(dtype.name, chunk, n) as unknown as { [i: number]: number | bigint };
    if (!fortran) {
      if (half) for (let j = 0; j < n; j++) dst[k0 + j] = half[src[j] as number];
      else for (let j = 0; j < n; j++) dst[k0 + j] = src[j];
      continue;
    }
    // Fortran order: the first axis varies fastest in the file; `dest` follows it in C order.
    for (let j = 0; j < n; j++) {
      dst[dest] = half ? half[src[j] as number] : src[j];
      idx[0]++;
      dest += cstride[0];
      for (let a = 0; a < nd - 1 && idx[a] === shape[a]; a++) {
        dest -= shape[a] * cstride[a];
        idx[a] = 0;
        idx[a + 1]++;
        dest += cstride[a + 1];
      }
    }
  }
}

const FLOAT_NPY: ReadonlySet<NpyDtype> = new Set<NpyDtype>(['float16', 'float32', 'float64']);
// Integer types every value of which float32 holds exactly: readVectors converts them.
const SMALL_INT_NPY: ReadonlySet<NpyDtype> = new Set<NpyDtype>(['int8', 'int16', 'uint8', 'uint16']);

function vectorShape(h: NpyHeader, file: string): { rows: number; cols: number } {
  if (h.shape.length === 1) return { rows: 1, cols: h.shape[0] };
  if (h.shape.length === 2) return { rows: h.shape[0], cols: h.shape[1] };
  throw fail(
    'ERR_VLK_SHAPE',
    file,
    "header 'shape'",
    `(${h.shape.join(', ')}) has ${h.shape.length} dimensions; vectors are 1-D (one row) or 2-D (rows, cols) (readNpyAny reads any shape)`,
  );
}

function readNpyVectors(file: string, allowSmallInts: boolean): Vectors {
  return withFile(file, (fd, size) => {
    const h = readNpyHeader(fd, size, file);
    const name = h.dtype.name;
    if (!FLOAT_NPY.has(name) && !(allowSmallInts && SMALL_INT_NPY.has(name))) {
      throw fail(
        'ERR_VLK_TYPE',
        file,
        "header 'descr'",
        `'${h.descr}' (${name}) is not a float dtype; ${
          allowSmallInts ? 'int8/16 and uint8/16 convert exactly, wider integers do not' : 'read integer arrays with readNpyAny'
        }`,
      );
    }
    const { rows, cols } = vectorShape(h, file);
    const data = allocate(() => new Float32Array(h.count), file, 'data', h.count * 4);
    readNpyData(fd, h, data, file);
    const result: Vectors = { data, rows, cols };
    if (name !== 'float32') result.converted = `${name}->float32`;
    return result;
  });
}

/**
 * Reads a .npy file (format version 1, 2 or 3) of float32, float16 or float64 values, in either
 * byte order, C or Fortran order, into row-major float32 vectors: a 2-D array is (rows, cols), a
 * 1-D array one row. float16 (exact) and float64 (rounded to nearest) are converted, which
 * `converted` reports ('float64->float32'). Little-endian float32 in C order is read straight into
 * the returned array's own buffer (one allocation of the data's size, no copy).
 *
 * @example
 * ```ts
 * import { readNpy, searchSync } from 'vlkernels';
 * const gallery = readNpy('image_embeddings.npy'); // { data: Float32Array, rows: 1000, cols: 768 }
 * if (gallery.converted) console.warn(`image_embeddings.npy: ${gallery.converted}`);
 * const hits = searchSync(queries, gallery, { k: 10 });
 * ```
 * @throws VlkError with a message naming the file and the field: ERR_VLK_CORRUPT (bad magic,
 * unknown version, truncated header, header dict not parseable or missing a key, data size not the
 * shape's), ERR_VLK_TYPE (an unsupported or integer dtype, named), ERR_VLK_SHAPE (not 1-D or 2-D),
 * ERR_VLK_IO (cannot open or read), ERR_VLK_OUT_OF_MEMORY; ERR_VLK_TYPE / ERR_VLK_INVALID_ARG for a bad path.
 */
export function readNpy(path: string | URL): Vectors {
  const file = atApi(() => readPath(path), readNpy);
  return atApi(() => readNpyVectors(file, false), readNpy);
}

/**
 * Reads a .npy file of any numeric dtype and shape (ground-truth ids, labels, uint8 descriptors) into
 * the dtype's own typed array, row-major and in the host's byte order: float16 as its raw bits in a
 * Uint16Array, int64/uint64 as BigInt64Array/BigUint64Array, bool as 0/1 bytes.
 *
 * @example
 * ```ts
 * import { readNpyAny } from 'vlkernels';
 * const gt = readNpyAny('groundtruth_l2_top100.npy'); // { dtype: 'int32', shape: [100, 100], data: Int32Array }
 * ```
 * @throws VlkError as {@link readNpy} (any numeric dtype is accepted; any number of dimensions).
 */
export function readNpyAny(path: string | URL): NpyArray {
  const file = atApi(() => readPath(path), readNpyAny);
  return atApi(
    () =>
      withFile(file, (fd, size) => {
        const h = readNpyHeader(fd, size, file);
        const data = allocate(() => arrayOf(h.dtype.name, h.count), file, 'data', h.count * h.dtype.size);
        readNpyData(fd, h, data, file);
        return { data, shape: h.shape.slice(), dtype: h.dtype.name, descr: h.descr, fortranOrder: h.fortranOrder };
      }),
    readNpyAny,
  );
}

type WritableRows =
  | { kind: 'f4'; data: Float32Array; rows: number; cols: number }
  | { kind: 'i4'; data: Int32Array; rows: number; cols: number }
  | { kind: 'u1'; data: Uint8Array; rows: number; cols: number };

function readRowsInput(value: unknown, name: string, dim: number | undefined): WritableRows {
  if (isRecord(value) && (types.isInt32Array(value.data) || types.isUint8Array(value.data))) {
    const data = value.data as Int32Array | Uint8Array;
    const rows = readSize(value.rows, `${name}.rows`);
    const cols = readSize(value.cols, `${name}.cols`);
    if (data.length !== rows * cols) {
      throw new VlkError('ERR_VLK_SHAPE', `${name}: data length ${data.length} is not rows x cols = ${rows} x ${cols} = ${rows * cols}`);
    }
    return types.isInt32Array(data)
      ? { kind: 'i4', data, rows, cols }
      : { kind: 'u1', data: data as Uint8Array, rows, cols };
  }
  const m = shapeMatrix(readMatrix(value, name), name, dim);
  return { kind: 'f4', data: m.data, rows: m.rows, cols: m.cols };
}

function readWriteOptions(options: unknown): number | undefined {
  const o = readOptionsRecord(options);
  return optionalSize(o.dim, 'options.dim');
}

/** The bytes of a v1 .npy header for a C-order array (padded so that the data starts at a multiple of 64). */
function npyHeader(descr: string, shape: number[]): Buffer {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims}), }`;
  const total = 10 + dict.length + 1;
  dict += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = Buffer.alloc(10 + dict.length);
  out[0] = 0x93;
  out.write('NUMPY', 1, 'latin1');
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(dict.length, 8);
  out.write(dict, 10, 'latin1');
  return out;
}

function emitElements(emit: (chunk: Uint8Array) => void, data: Float32Array | Int32Array | Uint8Array): void {
  const per = Math.max(1, Math.floor(CHUNK_BYTES / data.BYTES_PER_ELEMENT));
  for (let i = 0; i < data.length; i += per) {
    emit(littleEndianBytes(data.subarray(i, Math.min(data.length, i + per)), data.BYTES_PER_ELEMENT));
  }
}

/**
 * Writes a 2-D .npy file (format 1.0, C order) atomically (a temporary file in the same folder,
 * fsynced, renamed over `path`): float32 rows as '<f4', a `{ data: Int32Array, rows, cols }` as
 * '<i4' and a `{ data: Uint8Array, rows, cols }` as '|u1'. numpy.load reads it back unchanged.
 *
 * @example
 * ```ts
 * import { writeNpy } from 'vlkernels';
 * writeNpy('gallery.npy', { data: embeddings, rows: 1000, cols: 512 });
 * writeNpy('ids.npy', { data: result.indices, rows: result.count, cols: result.k });
 * ```
 * @throws VlkError ERR_VLK_TYPE / ERR_VLK_SHAPE / ERR_VLK_INVALID_ARG (the input or options.dim, as
 * every operation's matrix arguments), ERR_VLK_IO (naming the path).
 */
export function writeNpy(
  path: string | URL,
  m: MatrixInput | Int32Rows | Uint8Rows,
  options?: WriteMatrixOptions,
): void {
  const { file, rows } = atApi(
    () => ({ file: readPath(path), rows: readRowsInput(m, 'm', readWriteOptions(options)) }),
    writeNpy,
  );
  const descr = rows.kind === 'f4' ? '<f4' : rows.kind === 'i4' ? '<i4' : '|u1';
  atApi(
    () =>
      writeAtomic(file, (emit) => {
        emit(npyHeader(descr, [rows.rows, rows.cols]));
        emitElements(emit, rows.data);
      }),
    writeNpy,
  );
}

// ---- .fvecs / .ivecs / .bvecs ------------------------------------------------------------------

type VecsKind = 'fvecs' | 'ivecs' | 'bvecs';

interface VecsLayout {
  rows: number;
  cols: number;
  /** Bytes per record: the int32 dim, then `cols` values. */
  record: number;
  elt: number;
}

/** The shape from the first record's dim and the file size (native: core/io/vecs). */
function vecsLayout(fd: number, size: number, file: string, kind: VecsKind): VecsLayout {
  const elt = kind === 'bvecs' ? 1 : 4;
  const head = Buffer.alloc(Math.min(4, size));
  if (size >= 4) readFully(fd, head, 0, file, 'record 0 dim');
  const l = nativeCall(file, () => binding.vecsLayout(head, size, elt));
  return { rows: l.rows, cols: l.cols, record: l.recordBytes, elt };
}

/**
 * Checks each of the `n` records in `chunk` has record 0's dim and copies its values into `out`
 * at row `outRow0 + r` (native: little-endian to host order; bvecs widened for a Float32Array).
 */
function unpackRecords(
  chunk: Buffer,
  n: number,
  firstRow: number,
  outRow0: number,
  layout: VecsLayout,
  out: Float32Array | Int32Array | Uint8Array,
  file: string,
): void {
  nativeCall(file, () => binding.vecsUnpack(chunk, n, firstRow, layout.cols, layout.elt, out, outRow0));
}

function readVecs<T extends Float32Array | Int32Array | Uint8Array>(
  file: string,
  kind: VecsKind,
  make: (n: number) => T,
): { data: T; rows: number; cols: number } {
  return withFile(file, (fd, size) => {
    const layout = vecsLayout(fd, size, file, kind);
    const { rows, cols, record } = layout;
    const data = allocate(() => make(rows * cols), file, 'data', rows * cols * 4);
    const per = Math.max(1, Math.floor(CHUNK_BYTES / record));
    // allocUnsafeSlow: its own ArrayBuffer at offset 0, so records (multiples of 4 bytes) are aligned.
    const chunk = Buffer.allocUnsafeSlow(Math.min(per, Math.max(rows, 1)) * record);
    for (let r0 = 0; r0 < rows; r0 += per) {
      const n = Math.min(per, rows - r0);
      readFully(fd, chunk.subarray(0, n * record), r0 * record, file, `record ${r0}`);
      unpackRecords(chunk, n, r0, r0, layout, data, file);
    }
    return { data, rows, cols };
  });
}

/**
 * Reads an .fvecs file (each record: an int32 dim, then dim float32 values, little-endian; the
 * TEXMEX / ANN_SIFT layout) into row-major float32 vectors. An empty file is 0 x 0.
 *
 * @example
 * ```ts
 * import { readFvecs } from 'vlkernels';
 * const base = readFvecs('sift_base.fvecs'); // { data, rows: 1000000, cols: 128 }
 * ```
 * @throws VlkError ERR_VLK_CORRUPT naming the file and the field (a record whose dim differs from
 * record 0's, by index; a dim <= 0; a trailing partial record), ERR_VLK_IO, ERR_VLK_OUT_OF_MEMORY.
 */
export function readFvecs(path: string | URL): Vectors {
  const file = atApi(() => readPath(path), readFvecs);
  return atApi(() => readVecs(file, 'fvecs', (n) => new Float32Array(n)), readFvecs);
}

/**
 * Reads an .ivecs file (int32 dim, then dim int32 values per record: ground-truth neighbour ids).
 *
 * @example
 * ```ts
 * const gt = readIvecs('sift_groundtruth.ivecs'); // { data: Int32Array, rows: 10000, cols: 100 }
 * ```
 * @throws VlkError as {@link readFvecs}.
 */
export function readIvecs(path: string | URL): Int32Rows {
  const file = atApi(() => readPath(path), readIvecs);
  return atApi(() => readVecs(file, 'ivecs', (n) => new Int32Array(n)), readIvecs);
}

/**
 * Reads a .bvecs file (int32 dim, then dim uint8 values per record: BIGANN / SIFT1B descriptors).
 *
 * @example
 * ```ts
 * const base = readBvecs('bigann_base.bvecs'); // { data: Uint8Array, rows, cols: 128 }
 * ```
 * @throws VlkError as {@link readFvecs}.
 */
export function readBvecs(path: string | URL): Uint8Rows {
  const file = atApi(() => readPath(path), readBvecs);
  return atApi(() => readVecs(file, 'bvecs', (n) => new Uint8Array(n)), readBvecs);
}

function writeVecs(file: string, data: Float32Array | Int32Array | Uint8Array, rows: number, cols: number): void {
  if (rows > 0 && cols === 0) {
    throw new VlkError('ERR_VLK_SHAPE', 'm: cols is 0 (a record needs a dim >= 1)');
  }
  if (cols > 0x7fffffff) throw new VlkError('ERR_VLK_SHAPE', `m: cols ${cols} does not fit an int32 dim`);
  const elt = data.BYTES_PER_ELEMENT;
  const record = 4 + cols * elt;
  const per = Math.max(1, Math.floor(CHUNK_BYTES / record));
  writeAtomic(file, (emit) => {
    const chunk = Buffer.allocUnsafeSlow(Math.min(per, Math.max(rows, 1)) * record);
    for (let r0 = 0; r0 < rows; r0 += per) {
      const n = Math.min(per, rows - r0);
      for (let r = 0; r < n; r++) {
        chunk.writeInt32LE(cols, r * record);
        littleEndianBytes(data.subarray((r0 + r) * cols, (r0 + r + 1) * cols), elt).copy(chunk, r * record + 4);
      }
      emit(chunk.subarray(0, n * record));
    }
  });
}

/**
 * Writes float32 rows as an .fvecs file, atomically (temporary file, fsync, rename).
 *
 * @example
 * ```ts
 * writeFvecs('queries.fvecs', { data: queries, rows: 100, cols: 128 });
 * ```
 * @throws VlkError ERR_VLK_TYPE / ERR_VLK_SHAPE / ERR_VLK_INVALID_ARG (the matrix, options.dim,
 * cols 0), ERR_VLK_IO (naming the path).
 */
export function writeFvecs(path: string | URL, m: MatrixInput, options?: WriteMatrixOptions): void {
  const { file, mat } = atApi(
    () => ({ file: readPath(path), mat: shapeMatrix(readMatrix(m, 'm'), 'm', readWriteOptions(options)) }),
    writeFvecs,
  );
  atApi(() => writeVecs(file, mat.data, mat.rows, mat.cols), writeFvecs);
}

function readTypedRows<T extends Int32Array | Uint8Array>(value: unknown, want: 'Int32Array' | 'Uint8Array'): { data: T; rows: number; cols: number } {
  if (!isRecord(value)) throw new VlkError('ERR_VLK_TYPE', `m: expected a { data: ${want}, rows, cols } view, got ${describe(value)}`);
  const ok = want === 'Int32Array' ? types.isInt32Array(value.data) : types.isUint8Array(value.data);
  if (!ok) throw new VlkError('ERR_VLK_TYPE', `m.data: expected ${want === 'Int32Array' ? 'an' : 'a'} ${want}, got ${describe(value.data)}`);
  const data = value.data as T;
  const rows = readSize(value.rows, 'm.rows');
  const cols = readSize(value.cols, 'm.cols');
  if (data.length !== rows * cols) {
    throw new VlkError('ERR_VLK_SHAPE', `m: data length ${data.length} is not rows x cols = ${rows} x ${cols} = ${rows * cols}`);
  }
  return { data, rows, cols };
}

/**
 * Writes int32 rows as an .ivecs file, atomically.
 *
 * @example
 * ```ts
 * writeIvecs('groundtruth.ivecs', { data: result.indices, rows: result.count, cols: result.k });
 * ```
 * @throws VlkError ERR_VLK_TYPE (not an Int32Array view), ERR_VLK_SHAPE, ERR_VLK_IO.
 */
export function writeIvecs(path: string | URL, m: Int32Rows): void {
  const { file, rows } = atApi(() => ({ file: readPath(path), rows: readTypedRows<Int32Array>(m, 'Int32Array') }), writeIvecs);
  atApi(() => writeVecs(file, rows.data, rows.rows, rows.cols), writeIvecs);
}

/**
 * Writes uint8 rows as a .bvecs file, atomically.
 *
 * @example
 * ```ts
 * writeBvecs('descriptors.bvecs', { data: bytes, rows: 10000, cols: 128 });
 * ```
 * @throws VlkError ERR_VLK_TYPE (not a Uint8Array view), ERR_VLK_SHAPE, ERR_VLK_IO.
 */
export function writeBvecs(path: string | URL, m: Uint8Rows): void {
  const { file, rows } = atApi(() => ({ file: readPath(path), rows: readTypedRows<Uint8Array>(m, 'Uint8Array') }), writeBvecs);
  atApi(() => writeVecs(file, rows.data, rows.rows, rows.cols), writeBvecs);
}

// ---- raw float32 ------------------------------------------------------------------------------

function rawShape(size: number, file: string, cols: number | undefined, rows: number | undefined): { rows: number; cols: number } {
  if (cols === undefined) {
    throw new VlkError('ERR_VLK_INVALID_ARG', `options.cols: required for raw float32 ${file} (the file has no header)`);
  }
  if (cols === 0) throw new VlkError('ERR_VLK_SHAPE', 'options.cols: 0 (a row needs at least one column)');
  const rowBytes = cols * 4;
  if (size % rowBytes !== 0) {
    throw fail(
      'ERR_VLK_SHAPE',
      file,
      'size',
      `${size} bytes is not a multiple of cols x 4 = ${rowBytes} (${Math.floor(size / rowBytes)} rows and ${size % rowBytes} bytes)`,
    );
  }
  const n = size / rowBytes;
  if (rows !== undefined && rows !== n) {
    throw fail('ERR_VLK_SHAPE', file, 'size', `options.rows ${rows} x cols ${cols} x 4 = ${rows * rowBytes} bytes, the file has ${size} (${n} rows)`);
  }
  return { rows: n, cols };
}

/**
 * Reads a headerless file of little-endian float32 values as rows of `cols` (`rows`, when given,
 * is checked against the file size). The values are read straight into the returned array.
 *
 * @example
 * ```ts
 * import { readRawF32 } from 'vlkernels';
 * const gallery = readRawF32('gallery.f32', { cols: 512 });
 * ```
 * @throws VlkError ERR_VLK_INVALID_ARG (no cols), ERR_VLK_SHAPE (size not a multiple of cols x 4,
 * or not rows x cols x 4: names the file and the numbers), ERR_VLK_IO, ERR_VLK_OUT_OF_MEMORY.
 */
export function readRawF32(path: string | URL, options: { rows?: number; cols: number }): Vectors {
  const { file, cols, rows } = atApi(() => {
    const o = readOptionsRecord(options);
    return { file: readPath(path), cols: optionalSize(o.cols, 'options.cols'), rows: optionalSize(o.rows, 'options.rows') };
  }, readRawF32);
  return atApi(
    () =>
      withFile(file, (fd, size) => {
        const shape = rawShape(size, file, cols, rows);
        const data = allocate(() => new Float32Array(shape.rows * shape.cols), file, 'data', size);
        const target = bytesOf(data);
        readFully(fd, target, 0, file, 'data');
        if (!LITTLE_ENDIAN) target.swap32();
        return { data, rows: shape.rows, cols: shape.cols };
      }),
    readRawF32,
  );
}

/**
 * Writes float32 rows as headerless little-endian float32 values, atomically.
 *
 * @example
 * ```ts
 * writeRawF32('gallery.f32', { data: embeddings, rows: 1000, cols: 512 });
 * ```
 * @throws VlkError ERR_VLK_TYPE / ERR_VLK_SHAPE / ERR_VLK_INVALID_ARG (the matrix), ERR_VLK_IO.
 */
export function writeRawF32(path: string | URL, m: MatrixInput, options?: WriteMatrixOptions): void {
  const { file, mat } = atApi(
    () => ({ file: readPath(path), mat: shapeMatrix(readMatrix(m, 'm'), 'm', readWriteOptions(options)) }),
    writeRawF32,
  );
  atApi(() => writeAtomic(file, (emit) => emitElements(emit, mat.data)), writeRawF32);
}

// ---- any format ------------------------------------------------------------------------------

const FORMATS: ReadonlySet<string> = new Set<VectorFormat>(['npy', 'fvecs', 'bvecs', 'raw', 'safetensors']);
const EXTENSIONS: Record<string, VectorFormat> = {
  '.npy': 'npy',
  '.fvecs': 'fvecs',
  '.bvecs': 'bvecs',
  '.f32': 'raw',
  '.raw': 'raw',
  '.safetensors': 'safetensors',
};

function formatOf(file: string, value: unknown): VectorFormat {
  if (value !== undefined) {
    if (typeof value !== 'string' || !FORMATS.has(value)) {
      const got = typeof value === 'string' ? `'${value}'` : describe(value);
      throw new VlkError('ERR_VLK_INVALID_ARG', `options.format: expected 'npy', 'fvecs', 'bvecs', 'raw' or 'safetensors', got ${got}`);
    }
    return value as VectorFormat;
  }
  const ext = extname(file).toLowerCase();
  const format = EXTENSIONS[ext];
  if (format === undefined) {
    const hint = ext === '.ivecs' ? ' (.ivecs holds int32 ids: readIvecs)' : '';
    throw new VlkError(
      'ERR_VLK_INVALID_ARG',
      `options.format: cannot tell the format of ${file} from its extension '${ext}'${hint}; pass 'npy', 'fvecs', 'bvecs', 'raw' or 'safetensors'`,
    );
  }
  return format;
}

function checkShape(v: Vectors, file: string, rows: number | undefined, cols: number | undefined): Vectors {
  if (cols !== undefined && v.cols !== cols) {
    throw fail('ERR_VLK_DIM_MISMATCH', file, 'cols', `the file has ${v.cols} values per row, options.cols is ${cols}`);
  }
  if (rows !== undefined && v.rows !== rows) {
    throw fail('ERR_VLK_SHAPE', file, 'rows', `the file has ${v.rows} rows, options.rows is ${rows}`);
  }
  return v;
}

function safetensorsVectors(file: string, name: string | undefined): Vectors {
  const { tensors } = readSafetensorsSync(file);
  let tensor: SafetensorsTensor;
  let tensorName: string;
  if (name !== undefined) {
    const t = tensors[name];
    if (t === undefined) {
      throw fail('ERR_VLK_INVALID_ARG', file, 'options.tensor', `no tensor '${name}' (tensors: ${Object.keys(tensors).map((k) => `'${k}'`).join(', ') || 'none'})`);
    }
    tensor = t;
    tensorName = name;
  } else {
    const matrices = Object.entries(tensors).filter(([, t]) => t.shape.length === 2);
    if (matrices.length !== 1) {
      throw fail(
        'ERR_VLK_INVALID_ARG',
        file,
        'options.tensor',
        `${matrices.length} 2-D tensors (${matrices.map(([k, t]) => `'${k}' [${t.shape.join(', ')}]`).join(', ') || 'none'}); name the one to read`,
      );
    }
    [tensorName, tensor] = matrices[0];
  }
  const field = `tensor '${tensorName}'`;
  let rows: number;
  let cols: number;
  if (tensor.shape.length === 2) [rows, cols] = tensor.shape;
  else if (tensor.shape.length === 1) [rows, cols] = [1, tensor.shape[0]];
  else throw fail('ERR_VLK_SHAPE', file, field, `shape [${tensor.shape.join(', ')}] is not 1-D or 2-D`);
  const src = tensor.data;
  switch (tensor.dtype) {
    case 'F32':
      return { data: src as Float32Array, rows, cols };
    case 'F64':
      return { data: Float32Array.from(src as Float64Array), rows, cols, converted: 'float64->float32' };
    case 'F16': {
      const half = halfToFloat();
      const bits = src as Uint16Array;
      const data = new Float32Array(bits.length);
      for (let i = 0; i < bits.length; i++) data[i] = half[bits[i]];
      return { data, rows, cols, converted: 'float16->float32' };
    }
    case 'BF16': {
      const bits = src as Uint16Array;
      const wide = new Uint32Array(bits.length);
      for (let i = 0; i < bits.length; i++) wide[i] = bits[i] << 16;
      return { data: new Float32Array(wide.buffer), rows, cols, converted: 'bfloat16->float32' };
    }
    case 'U8':
    case 'I8':
    case 'U16':
    case 'I16':
      return {
        data: Float32Array.from(src as Uint8Array),
        rows,
        cols,
        converted: `${{ U8: 'uint8', I8: 'int8', U16: 'uint16', I16: 'int16' }[tensor.dtype]}->float32`,
      };
    default:
      throw fail('ERR_VLK_TYPE', file, `${field} dtype`, `${tensor.dtype} does not convert to float32 exactly (F32, F64, F16, BF16, U8, I8, U16, I16 do)`);
  }
}

/**
 * Reads vectors from any supported file as row-major float32: the format from `options.format` or
 * the extension (.npy, .fvecs, .bvecs, .f32/.raw, .safetensors). bvecs and 1- or 2-byte integer
 * .npy / safetensors values are converted exactly, float16/float64/bfloat16 as {@link readNpy}
 * (`converted` says so); for safetensors, `options.tensor` or the file's only 2-D tensor.
 * `options.rows` / `options.cols` are required for raw files and checked for the others.
 *
 * @example
 * ```ts
 * import { readVectors, searchSync } from 'vlkernels';
 * const gallery = readVectors('base.fvecs');
 * const queries = readVectors('queries.f32', { cols: gallery.cols });
 * const hits = searchSync(queries, gallery, { k: 10, metric: 'l2' });
 * ```
 * @throws VlkError as the format's reader; ERR_VLK_INVALID_ARG (unknown extension or format, no or
 * ambiguous safetensors tensor), ERR_VLK_DIM_MISMATCH (cols differs from options.cols),
 * ERR_VLK_SHAPE (rows differs from options.rows).
 */
export function readVectors(path: string | URL, options?: ReadVectorsOptions): Vectors {
  const { file, format, rows, cols, tensor } = atApi(() => {
    const o = readOptionsRecord(options);
    const file = readPath(path);
    const tensor = o.tensor;
    if (tensor !== undefined && typeof tensor !== 'string') {
      throw new VlkError('ERR_VLK_TYPE', `options.tensor: expected a string, got ${describe(tensor)}`);
    }
    return {
      file,
      format: formatOf(file, o.format),
      rows: optionalSize(o.rows, 'options.rows'),
      cols: optionalSize(o.cols, 'options.cols'),
      tensor: tensor as string | undefined,
    };
  }, readVectors);
  return atApi(() => {
    switch (format) {
      case 'npy':
        return checkShape(readNpyVectors(file, true), file, rows, cols);
      case 'fvecs':
        return checkShape(readVecs(file, 'fvecs', (n) => new Float32Array(n)), file, rows, cols);
      case 'bvecs':
        return { ...checkShape(readVecs(file, 'bvecs', (n) => new Float32Array(n)), file, rows, cols), converted: 'uint8->float32' };
      case 'raw':
        return readRawF32(file, { rows, cols: cols as number });
      default:
        return checkShape(safetensorsVectors(file, tensor), file, rows, cols);
    }
  }, readVectors);
}

// ---- streaming ------------------------------------------------------------------------------------

type StreamFormat = Exclude<VectorFormat, 'safetensors'>;

interface StreamPlan {
  rows: number;
  cols: number;
  converted?: string;
  /** Reads rows [r0, r0 + n) as float32. */
  read(handle: FileHandle, r0: number, n: number): Promise<Float32Array>;
}

function planNpy(fd: number, size: number, file: string): StreamPlan {
  const h = readNpyHeader(fd, size, file);
  const name = h.dtype.name;
  if (!FLOAT_NPY.has(name) && !SMALL_INT_NPY.has(name)) {
    throw fail('ERR_VLK_TYPE', file, "header 'descr'", `'${h.descr}' (${name}) does not convert to float32 exactly; float and 1- or 2-byte integer dtypes stream`);
  }
  const { rows, cols } = vectorShape(h, file);
  if (h.fortranOrder && rows > 1 && cols > 1) {
    throw fail('ERR_VLK_INVALID_ARG', file, "header 'fortran_order'", 'a Fortran-order array has no contiguous rows to stream; read it whole with readNpy');
  }
  const { size: elt, swap } = h.dtype;
  const half = name === 'float16' ? halfToFloat() : undefined;
  return {
    rows,
    cols,
    converted: name === 'float32' ? undefined : `${name}->float32`,
    async read(handle, r0, n) {
      const out = new Float32Array(n * cols);
      const position = h.dataOffset + r0 * cols * elt;
      if (name === 'float32') {
        const target = bytesOf(out);
        await readFullyAsync(handle, target, position, file, `data (rows ${r0}..${r0 + n - 1})`);
        if (swap) target.swap32();
        return out;
      }
      const raw = Buffer.allocUnsafeSlow(n * cols * elt);
      await readFullyAsync(handle, raw, position, file, `data (rows ${r0}..${r0 + n - 1})`);
      if (swap) swapBytes(raw, elt);
      const src = viewOf(name, raw, n * cols) as unknown as { [i: number]: number };
      if (half) for (let i = 0; i < out.length; i++) out[i] = half[src[i]];
      else for (let i = 0; i < out.length; i++) out[i] = src[i];
      return out;
    },
  };
}

function planVecs(fd: number, size: number, file: string, kind: 'fvecs' | 'bvecs'): StreamPlan {
  const layout = vecsLayout(fd, size, file, kind);
  return {
    rows: layout.rows,
    cols: layout.cols,
    converted: kind === 'bvecs' ? 'uint8->float32' : undefined,
    async read(handle, r0, n) {
      const out = new Float32Array(n * layout.cols);
      const chunk = Buffer.allocUnsafeSlow(n * layout.record);
      await readFullyAsync(handle, chunk, r0 * layout.record, file, `record ${r0}`);
      unpackRecords(chunk, n, r0, 0, layout, out, file);
      return out;
    },
  };
}

function planRaw(size: number, file: string, rows: number | undefined, cols: number | undefined): StreamPlan {
  const shape = rawShape(size, file, cols, rows);
  return {
    ...shape,
    async read(handle, r0, n) {
      const out = new Float32Array(n * shape.cols);
      const target = bytesOf(out);
      await readFullyAsync(handle, target, r0 * shape.cols * 4, file, `data (rows ${r0}..${r0 + n - 1})`);
      if (!LITTLE_ENDIAN) target.swap32();
      return out;
    },
  };
}

/**
 * Opens a vector file for streaming: its shape is read now (the header, or the first record), and
 * iterating it reads `blockRows` rows at a time through a FileHandle (each block a fresh
 * Float32Array), so files larger than memory can be indexed or searched block by block. npy (C
 * order; float32 read straight into each block, float16/float64 and 1- or 2-byte integers
 * converted), fvecs, bvecs (converted) and raw float32 stream. Every iteration reopens the file.
 *
 * @example
 * ```ts
 * import { openVectors, FlatIndex } from 'vlkernels';
 * const stream = openVectors('bigann_base.bvecs', { blockRows: 65536 });
 * const index = new FlatIndex({ dim: stream.cols, metric: 'l2' });
 * for await (const block of stream) index.add(block);
 * ```
 * @throws VlkError at once, as {@link readVectors} for the header (ERR_VLK_INVALID_ARG for
 * safetensors, Fortran order or a bad blockRows); while iterating, ERR_VLK_CORRUPT (a record's dim,
 * or the file shrank: names the file and the record), ERR_VLK_IO, and AbortError when
 * `options.signal` aborts.
 */
export function openVectors(path: string | URL, options?: OpenVectorsOptions): VectorStream {
  const o = atApi(() => {
    const rec = readOptionsRecord(options);
    const file = readPath(path);
    const format = formatOf(file, rec.format);
    if (format === 'safetensors') {
      throw new VlkError('ERR_VLK_INVALID_ARG', `options.format: safetensors files are not streamed (${file}); read them with readVectors`);
    }
    const blockRows = optionalSize(rec.blockRows, 'options.blockRows');
    if (blockRows === 0) throw new VlkError('ERR_VLK_INVALID_ARG', 'options.blockRows: 0 (a block needs at least one row)');
    const signal = rec.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw new VlkError('ERR_VLK_TYPE', `options.signal: expected an AbortSignal, got ${describe(signal)}`);
    }
    return {
      file,
      format: format as StreamFormat,
      rows: optionalSize(rec.rows, 'options.rows'),
      cols: optionalSize(rec.cols, 'options.cols'),
      blockRows,
      signal: signal as AbortSignal | undefined,
    };
  }, openVectors);
  const plan = atApi(
    () =>
      withFile(o.file, (fd, size) => {
        const p =
          o.format === 'npy'
            ? planNpy(fd, size, o.file)
            : o.format === 'raw'
              ? planRaw(size, o.file, o.rows, o.cols)
              : planVecs(fd, size, o.file, o.format);
        checkShape({ data: new Float32Array(0), rows: p.rows, cols: p.cols }, o.file, o.rows, o.cols);
        return p;
      }),
    openVectors,
  );
  const blockRows = o.blockRows ?? Math.max(1, Math.floor((8 << 20) / Math.max(1, plan.cols * 4)));
  const { file, signal } = o;
  const stream: VectorStream = {
    path: file,
    format: o.format,
    rows: plan.rows,
    cols: plan.cols,
    blockRows,
    ...(plan.converted ? { converted: plan.converted } : {}),
    async *[Symbol.asyncIterator](): AsyncGenerator<Vectors> {
      if (signal?.aborted) throw abortError(signal);
      let handle: FileHandle;
      try {
        handle = await openFile(file, 'r');
      } catch (err) {
        throw ioError(file, err);
      }
      try {
        for (let r0 = 0; r0 < plan.rows; r0 += blockRows) {
          if (signal?.aborted) throw abortError(signal);
          const n = Math.min(blockRows, plan.rows - r0);
          const data = await plan.read(handle, r0, n);
          const block: Vectors = { data, rows: n, cols: plan.cols };
          if (plan.converted) block.converted = plan.converted;
          yield block;
        }
      } finally {
        await handle.close();
      }
    },
  };
  return stream;
}
