// Native addon loader (lib): the CUDA build (vlkernels_cuda.node in build/Release, or the optional
// package @vlkernels/<platform>-<arch>-cuda) when one is present and VLK_CUDA is not 0, else the
// CPU build (build/Release, build/Debug or prebuilds/<platform>-<arch> through node-gyp-build). A
// CUDA build that fails to load (e.g. a libc or driver mismatch) falls back to the CPU build and
// info().cuda.reason says why. When no CPU build loads either, the error explains what it looked
// for (platform, arch, libc, Node-API version), every path it tried, the underlying error and the
// fix. Also rejects an invalid VLK_FORCE_ISA at load. Loaded once per module instance: ESM
// re-exports this CJS build.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { FlatIndexSearchResult, MemoryInfo, MergeTopKResult, SearchResult } from './types';
import { VlkError, type VlkErrorCode } from './errors';

/** Node-API version the addon is built against (binding.gyp NAPI_VERSION). */
export const NAPI_VERSION = 8;

/** The cancel token the binding hands out; `cancel()` sets the flag a running job polls. */
export interface NativeCancelToken {
  cancel(): void;
  readonly cancelled: boolean;
}

/** What the binding's cudaInfo() returns (native/binding/info.cpp, from cuda::device_info()). */
export interface NativeCudaInfo {
  built: boolean;
  usable: boolean;
  reason: string;
  deviceCount: number;
  runtimeVersion?: string;
  driverVersion?: string;
  device?: { name: string; computeCapability: string; memoryBytes: number; driverVersion: string; runtimeVersion: string };
}

/** What the binding's info() returns (lib/info.ts adds version and cuda). */
export interface NativeInfo {
  isa: string | null;
  isaError?: { code: string; message: string };
  isas: string[];
  detectedIsa: string;
  threads: number;
  queueDepth: number;
  inFlight: number;
  napiVersion: number;
  memory: MemoryInfo;
}

/** A normalised matrix argument as lib passes it to the binding. */
export interface NativeMatrix {
  data: Float32Array;
  rows: number;
  cols: number;
}

/** Options as lib passes them to the binding (already validated; k already clamped). */
export interface NativeSearchOptions {
  k: number;
  metric: string;
  threads?: number;
  exclude?: unknown;
  allow?: unknown;
  /** Rows per item (token-max search); absent: 1. */
  tokens?: number;
  /** 'cuda' | 'auto'; absent: 'cpu'. */
  device?: string;
  /** 'bf16'; absent: 'exact'. */
  precision?: string;
}

/** Options of the binding's mergeTopK* as lib passes them (already validated). */
export interface NativeMergeTopKOptions {
  k: number;
  metric: string;
}

/** Options of the binding's rerank* as lib passes them (already validated). */
export interface NativeRerankOptions {
  k: number;
  metric: string;
  threads?: number;
}

/** Search options of the binding's FlatIndex as lib passes them (already validated). */
export interface NativeFlatIndexSearchOptions {
  k: number;
  threads?: number;
  filter?: NativeFlatIndexFilter;
  /** 'bf16' (a 'cuda' index only); absent: 'exact'. */
  precision?: string;
}

/** options.filter as the binding reads it (lib converts the friendlier forms). */
export interface NativeFlatIndexFilter {
  allow?: Float64Array | BigInt64Array;
  exclude?: Float64Array | BigInt64Array | { offsets: Int32Array; ids: Float64Array | BigInt64Array };
}

/**
 * The binding's FlatIndex object (native/binding/flat_index.cpp), from `createFlatIndex`. ids are
 * passed as a Float64Array or a BigInt64Array; every method throws "index is closed" after close().
 */
export interface NativeFlatIndex {
  add(vectors: unknown, ids?: Float64Array | BigInt64Array): number | bigint | undefined;
  remove(ids: Float64Array | BigInt64Array): number;
  compact(): number;
  has(id: number | bigint): boolean;
  get(id: number | bigint): Float32Array;
  size(): number;
  memoryUsage(): number;
  searchSync(queries: unknown, options: unknown): FlatIndexSearchResult;
  searchAsync(queries: unknown, options: unknown, token?: NativeCancelToken): Promise<FlatIndexSearchResult>;
  composedSearchAsync(
    image: unknown,
    text: unknown,
    composeOptions: unknown,
    options: unknown,
    token?: NativeCancelToken,
  ): Promise<FlatIndexSearchResult>;
  close(): void;
  describe(): { dim: number; metric: string; storage: string; approximate: boolean; device: 'cpu' | 'cuda' };
  /** Where searches run from now on ('cpu' | 'cuda' | 'auto'); returns the resolved device. */
  setDevice(device?: string): 'cpu' | 'cuda';
  saveSync(path: string): void;
  saveAsync(path: string, progress?: Float64Array, token?: NativeCancelToken): Promise<void>;
  toBufferSync(): Buffer;
  toBufferAsync(progress?: Float64Array, token?: NativeCancelToken): Promise<Buffer>;
}

/** What the binding's readSafetensors* return (native/binding/safetensors.cpp), in data order. */
export interface NativeSafetensors {
  names: string[];
  dtypes: string[];
  shapes: number[][];
  arrays: ArrayBufferView[];
  /** key, value, key, value, ... sorted by key. */
  metadata: string[];
}

/** A tensor as lib passes it to the binding's write/encode (already validated). */
export interface NativeTensorInput {
  name: string;
  dtype: string;
  shape: number[];
  data: ArrayBufferView;
}

/** What the binding's npyPreamble returns (native/binding/vectors_io.cpp, core/io/npy). */
export interface NativeNpyPreamble {
  major: number;
  minor: number;
  headerStart: number;
  headerLen: number;
}

/** What the binding's npyHeader returns: a validated .npy header. */
export interface NativeNpyHeader {
  descr: string;
  kind: 'f' | 'i' | 'u' | 'b';
  itemSize: 1 | 2 | 4 | 8;
  /** The data's byte order is big-endian ('>', or '=' on a big-endian host; false for 1-byte items). */
  bigEndian: boolean;
  fortranOrder: boolean;
  shape: number[];
  count: number;
  dataOffset: number;
  major: number;
}

/** What the binding's vecsLayout returns (core/io/vecs). */
export interface NativeVecsLayout {
  rows: number;
  cols: number;
  recordBytes: number;
}

/** The raw Node-API module (native/binding/addon.cpp). */
export interface NativeBinding {
  searchSync(queries: unknown, gallery: unknown, options: unknown): SearchResult;
  searchAsync(queries: unknown, gallery: unknown, options: unknown, token?: NativeCancelToken): Promise<SearchResult>;
  mergeTopKSync(partials: unknown, options: unknown): MergeTopKResult;
  mergeTopKAsync(partials: unknown, options: unknown, token?: NativeCancelToken): Promise<MergeTopKResult>;
  rerankSync(queries: unknown, gallery: unknown, candidates: unknown, options: unknown): SearchResult;
  rerankAsync(
    queries: unknown,
    gallery: unknown,
    candidates: unknown,
    options: unknown,
    token?: NativeCancelToken,
  ): Promise<SearchResult>;
  createFlatIndex(dim: number, metric: string, storage?: string, approximate?: boolean, device?: string): NativeFlatIndex;
  loadFlatIndexSync(path: string, mmap: boolean): NativeFlatIndex;
  loadFlatIndexAsync(path: string, mmap: boolean, progress?: Float64Array, token?: NativeCancelToken): Promise<NativeFlatIndex>;
  flatIndexFromBufferSync(bytes: Uint8Array): NativeFlatIndex;
  flatIndexFromBufferAsync(bytes: Uint8Array, progress?: Float64Array, token?: NativeCancelToken): Promise<NativeFlatIndex>;
  readSafetensorsSync(source: string | Uint8Array, toFloat32: boolean): NativeSafetensors;
  readSafetensorsAsync(source: string | Uint8Array, toFloat32: boolean, token?: NativeCancelToken): Promise<NativeSafetensors>;
  writeSafetensorsSync(path: string, tensors: NativeTensorInput[], metadata: string[]): void;
  writeSafetensorsAsync(path: string, tensors: NativeTensorInput[], metadata: string[], token?: NativeCancelToken): Promise<void>;
  encodeSafetensorsSync(tensors: NativeTensorInput[], metadata: string[]): Buffer;
  npyPreamble(bytes: Uint8Array, fileSize: number): NativeNpyPreamble;
  npyHeader(bytes: Uint8Array, fileSize: number): NativeNpyHeader;
  vecsLayout(head: Uint8Array, fileSize: number, elemBytes: number): NativeVecsLayout;
  vecsUnpack(
    chunk: Uint8Array,
    n: number,
    firstRow: number,
    cols: number,
    elemBytes: number,
    out: Float32Array | Int32Array | Uint8Array,
    outRow0: number,
  ): void;
  composeSync(image: unknown, text: unknown, options: unknown): Float32Array;
  combinerTrainerCreate(dim: number, projection: number, hidden: number, seed: number): unknown;
  combinerTrainerStepSync(handle: unknown, image: unknown, text: unknown, target: unknown, options: unknown): number;
  combinerTrainerStepAsync(
    handle: unknown,
    image: unknown,
    text: unknown,
    target: unknown,
    options: unknown,
    token?: NativeCancelToken,
  ): Promise<number>;
  combinerTrainerWeights(handle: unknown): Record<string, { shape: number[]; data: Float32Array }>;
  twoHopTrainerCreate(dim: number, projection: number, hidden: number, seed: number): unknown;
  twoHopTrainerStepAsync(
    handle: unknown,
    image: unknown,
    text: unknown,
    target: unknown,
    reverse: unknown,
    options: unknown,
    token?: NativeCancelToken,
  ): Promise<{ loss: number; align: number }>;
  twoHopTrainerWeights(handle: unknown): {
    hop1: Record<string, { shape: number[]; data: Float32Array }>;
    hop2: Record<string, { shape: number[]; data: Float32Array }>;
  };
  composeAsync(image: unknown, text: unknown, options: unknown, token?: NativeCancelToken): Promise<Float32Array>;
  twoHopLossSync(spec: Record<string, unknown>): unknown;
  twoHopLossAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<unknown>;
  memoryBankCreate(size: number, dim: number): unknown;
  memoryBankEnqueue(handle: unknown, keys: Float32Array, ids?: Float64Array): void;
  memoryBankSnapshot(handle: unknown): unknown;
  memoryBankInfo(handle: unknown): unknown;
  memoryBankClear(handle: unknown): void;
  memoryBankClose(handle: unknown): void;
  emaUpdateSync(targets: Float32Array[], sources: Float32Array[], momentum: number, names: string[], threads?: number): void;
  memoryInfoNceSync(spec: Record<string, unknown>): unknown;
  memoryInfoNceAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<unknown>;
  vseHingeSync(spec: Record<string, unknown>): unknown;
  vseHingeAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<unknown>;
  weightedTripletSync(spec: Record<string, unknown>): unknown;
  weightedTripletAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<unknown>;
  preferenceLossSync(spec: Record<string, unknown>): unknown;
  preferenceLossAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<unknown>;
  clipLossSync(spec: Record<string, unknown>): unknown;
  clipLossAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<unknown>;
  sinkhornSync(spec: Record<string, unknown>): Float32Array;
  sinkhornAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<Float32Array>;
  swavLossSync(spec: Record<string, unknown>): unknown;
  swavLossAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<unknown>;
  kmeansSync(spec: Record<string, unknown>): unknown;
  kmeansAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<unknown>;
  graphRelevanceSync(spec: Record<string, unknown>): Record<string, Float32Array | Uint8Array>;
  graphRelevanceAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<Record<string, Float32Array | Uint8Array>>;
  graphRelevanceBackwardSync(spec: Record<string, unknown>): Record<string, Float32Array | Uint8Array>;
  graphRelevanceBackwardAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<Record<string, Float32Array | Uint8Array>>;
  graphScanRelevanceSync(spec: Record<string, unknown>): Record<string, Float32Array | Uint8Array>;
  graphScanRelevanceAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<Record<string, Float32Array | Uint8Array>>;
  graphRowTopkMaskSync(spec: Record<string, unknown>): Record<string, Float32Array | Uint8Array>;
  graphRowTopkMaskAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<Record<string, Float32Array | Uint8Array>>;
  graphGcnSync(spec: Record<string, unknown>): Record<string, Float32Array | Uint8Array>;
  graphGcnAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<Record<string, Float32Array | Uint8Array>>;
  graphGcnBackwardSync(spec: Record<string, unknown>): Record<string, Float32Array | Uint8Array>;
  graphGcnBackwardAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<Record<string, Float32Array | Uint8Array>>;
  maxkPoolSync(spec: Record<string, unknown>): unknown;
  maxkPoolAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<unknown>;
  maxkPoolBackwardSync(spec: Record<string, unknown>): unknown;
  maxkPoolBackwardAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<unknown>;
  cosineMhaPoolSync(spec: Record<string, unknown>): unknown;
  cosineMhaPoolAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<unknown>;
  cosineMhaPoolBackwardSync(spec: Record<string, unknown>): unknown;
  cosineMhaPoolBackwardAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<unknown>;
  gatedFusionSync(spec: Record<string, unknown>): unknown;
  gatedFusionAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<unknown>;
  gatedFusionBackwardSync(spec: Record<string, unknown>): unknown;
  gatedFusionBackwardAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<unknown>;
  scanSimilaritySync(spec: Record<string, unknown>): unknown;
  scanSimilarityAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<unknown>;
  expandQueriesSync(spec: Record<string, unknown>): unknown;
  expandQueriesAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<unknown>;
  augmentGallerySync(spec: Record<string, unknown>): unknown;
  augmentGalleryAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<unknown>;
  multiQuerySearchSync(spec: Record<string, unknown>): unknown;
  multiQuerySearchAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<unknown>;
  priorSearchSync(spec: Record<string, unknown>): unknown;
  priorSearchAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<unknown>;
  biasedAttentionSync(spec: Record<string, unknown>): unknown;
  biasedAttentionAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<unknown>;
  biasedAttentionBackwardSync(spec: Record<string, unknown>): unknown;
  biasedAttentionBackwardAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<unknown>;
  rankOfTargetsSync(spec: Record<string, unknown>): unknown;
  rankOfTargetsAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<unknown>;
  crossModalRanksSync(spec: Record<string, unknown>): unknown;
  crossModalRanksAsync(spec: Record<string, unknown>, token?: NativeCancelToken): Promise<unknown>;
  createCancelToken(): NativeCancelToken;
  info(): NativeInfo;
  cudaInfo(): NativeCudaInfo;
  setIsa(isa: string | null): void;
  releaseMemory(): number;
  _errorCodes(): string[];
}

function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'vlkernels') return dir;
    } catch {
      // no readable package.json here; keep walking up
    }
    if (dirname(dir) === dir) return join(start, '..', '..');
  }
}

/** The package folder (holds package.json, build/ in a checkout, prebuilds/ when installed). */
export const packageRoot: string = findPackageRoot(__dirname);

/** The package version from package.json. */
export const packageVersion: string = (() => {
  try {
    return (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();

function libcName(): string {
  if (process.platform !== 'linux') return 'n/a';
  try {
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
    const glibc = report?.header?.glibcVersionRuntime;
    return glibc ? `glibc ${glibc}` : 'musl';
  } catch {
    return 'unknown';
  }
}

function describeDir(dir: string, filter: (name: string) => boolean): string {
  if (!existsSync(dir)) return 'missing';
  try {
    const files = readdirSync(dir).filter(filter);
    return files.length ? `has ${files.join(', ')}` : 'no .node file';
  } catch (err) {
    return `unreadable (${(err as Error).message})`;
  }
}

function loadError(cause: unknown): VlkError {
  const { platform, arch } = process;
  const tuple = `${platform}-${arch}`;
  const isNode = (f: string) => f.endsWith('.node');
  const dirs = [
    [join(packageRoot, 'build', 'Release'), 'vlkernels.node'],
    [join(packageRoot, 'build', 'Debug'), 'vlkernels.node'],
    [join(packageRoot, 'prebuilds', tuple), '*.node'],
    [join(dirname(process.execPath), 'prebuilds', tuple), '*.node'],
  ];
  const override = process.env.VLKERNELS_PREBUILD;
  if (override) dirs.unshift([join(override, 'prebuilds', tuple), '*.node (VLKERNELS_PREBUILD)']);
  const tried = dirs.map(([dir, file]) => `${join(dir, file)}: ${describeDir(dir, isNode)}`);
  const shipped = existsSync(join(packageRoot, 'prebuilds'))
    ? readdirSync(join(packageRoot, 'prebuilds')).join(', ') || 'none'
    : 'none';
  const napi = process.versions.napi ?? 'none';
  const napiNote = Number(napi) >= NAPI_VERSION ? 'ok' : 'too old: upgrade Node.js to >= 20.9';
  const message = [
    `vlkernels: could not load the native addon for platform ${platform}, arch ${arch}, libc ${libcName()}`,
    `(needs Node-API ${NAPI_VERSION}; this runtime has Node-API ${napi}: ${napiNote}; node ${process.versions.node}).`,
    'Paths tried:',
    ...tried.map((t) => `  ${t}`),
    `Prebuilds shipped in this package: ${shipped}.`,
    `Underlying error: ${cause instanceof Error ? cause.message.trim() : String(cause)}`,
    ...(cudaAddon.reason ? [`CUDA build: ${cudaAddon.reason}.`] : []),
    'Fix: from a source checkout run "npm run build:all" (needs a C++17 compiler and python3), or install',
    'vlkernels on a platform it ships a prebuild for (see the list above).',
  ].join('\n');
  return new VlkError('ERR_VLK_LOAD', message, { cause });
}

/** The CUDA build's file name, in build/Release and in the optional platform package. */
export const CUDA_ADDON_FILE = 'vlkernels_cuda.node';

/** The optional package that ships the CUDA build for this platform, e.g. `@vlkernels/linux-x64-cuda`. */
export const cudaPackageName = `@vlkernels/${process.platform}-${process.arch}-cuda`;

/** What the loader did about the CUDA build (info().cuda reports it). */
export interface CudaAddonState {
  /** The CUDA build found (loaded, failed, skipped or mismatched), if any. */
  path?: string;
  /** The loaded binding is the CUDA build. */
  loaded: boolean;
  /** Why a CUDA build that was found is not the loaded one. */
  reason?: string;
}

/** Set by loadBinding. */
export const cudaAddon: CudaAddonState = { loaded: false };

// The CUDA build, if any: a checkout's build/Release (npm run build:cuda), then the optional
// platform package, whose version must equal this package's (the binding's API changes with it).
function findCudaAddon(): { path: string; mismatch?: string } | undefined {
  const local = join(packageRoot, 'build', 'Release', CUDA_ADDON_FILE);
  if (existsSync(local)) return { path: local };
  let pkgJson: string;
  try {
    pkgJson = require.resolve(`${cudaPackageName}/package.json`, { paths: [packageRoot] });
  } catch {
    return undefined;  // not installed (the usual case)
  }
  const file = join(dirname(pkgJson), CUDA_ADDON_FILE);
  if (!existsSync(file)) return undefined;
  try {
    const version = (JSON.parse(readFileSync(pkgJson, 'utf8')) as { version?: string }).version;
    if (version !== packageVersion) {
      return { path: file, mismatch: `${cudaPackageName} ${String(version)} does not match vlkernels ${packageVersion}` };
    }
  } catch (err) {
    return { path: file, mismatch: `${pkgJson}: ${(err as Error).message}` };
  }
  return { path: file };
}

// The CPU build: build/Release/vlkernels.node or build/Debug/vlkernels.node by name (so that a
// vlkernels_cuda.node next to it is never taken for it), else node-gyp-build's search (prebuilds,
// VLKERNELS_PREBUILD).
function loadCpuBinding(): NativeBinding {
  if (!process.env.VLKERNELS_PREBUILD) {
    for (const config of ['Release', 'Debug']) {
      const file = join(packageRoot, 'build', config, 'vlkernels.node');
      if (existsSync(file)) return require(file) as NativeBinding;
    }
  }
  const nodeGypBuild = require('node-gyp-build') as { (dir: string): NativeBinding; resolve(dir: string): string };
  const file = nodeGypBuild.resolve(packageRoot);
  if (file.endsWith(CUDA_ADDON_FILE)) {
    throw new Error(`only the CUDA build ${file} was found, and no CPU build (vlkernels.node)`);
  }
  return require(file) as NativeBinding;
}

function errorText(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).trim().split('\n')[0];
}

/**
 * Loads the addon and checks the ISA configuration.
 * @throws VlkError ERR_VLK_LOAD when no addon loads; ERR_VLK_INVALID_ARG or ERR_VLK_UNSUPPORTED_ISA
 * when VLK_FORCE_ISA names an unknown path or one this CPU lacks.
 */
export function loadBinding(): NativeBinding {
  let binding: NativeBinding | undefined;
  const cuda = findCudaAddon();
  if (cuda) {
    cudaAddon.path = cuda.path;
    if (process.env.VLK_CUDA === '0') {
      cudaAddon.reason = `VLK_CUDA=0: the CUDA build ${cuda.path} was not loaded`;
    } else if (cuda.mismatch) {
      cudaAddon.reason = `the CUDA build ${cuda.path} was not loaded: ${cuda.mismatch}`;
    } else {
      try {
        binding = require(cuda.path) as NativeBinding;
        cudaAddon.loaded = true;
      } catch (err) {
        cudaAddon.reason = `the CUDA build ${cuda.path} failed to load (${errorText(err)}); using the CPU build`;
      }
    }
  }
  if (!binding) {
    try {
      binding = loadCpuBinding();
    } catch (err) {
      throw loadError(err);
    }
  }
  const state = binding.info();
  if (state.isaError) {
    throw new VlkError(
      state.isaError.code as VlkErrorCode,
      `${state.isaError.message}. This CPU supports ${state.isas.join(', ')} (detected ${state.detectedIsa}); ` +
        'unset VLK_FORCE_ISA or set it to one of those.',
    );
  }
  return binding;
}

/**
 * The raw Node-API module, loaded once when the package is first required (shared by the CommonJS
 * and ESM entries). For diagnostics and tests; its functions take already-validated arguments and
 * throw plain Errors with a `code` rather than VlkError.
 *
 * @example
 * ```ts
 * import { binding, errorCodes } from 'vlkernels';
 * console.log(binding._errorCodes().join() === errorCodes.join()); // true
 * ```
 * @throws VlkError ERR_VLK_LOAD (no addon for this platform), ERR_VLK_INVALID_ARG or
 * ERR_VLK_UNSUPPORTED_ISA (bad VLK_FORCE_ISA), when the package is first required.
 */
export const binding: NativeBinding = loadBinding();
