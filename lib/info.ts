// Introspection and ISA override (lib): what the loaded addon runs (version, kernel path, paths
// available, pool size, CUDA status) and a process-wide kernel-path override for tests and benches.
import { fromNative, VlkError } from './errors';
import { describe } from './args';
import { binding, cudaAddon, NAPI_VERSION, packageVersion } from './loader';
import type { CudaInfo, Info, IsaName } from './types';

const isaNames: ReadonlySet<string> = new Set(['scalar', 'avx2', 'avx512']);

// The binding's cuda::device_info() (probed once, on the first call), and what the loader did about a
// CUDA build it found: when that build is not the loaded one, its reason replaces the stub's.
function cudaInfo(): CudaInfo {
  const native = binding.cudaInfo();
  const result: CudaInfo = {
    built: native.built,
    usable: native.usable,
    reason: native.reason,
    deviceCount: native.deviceCount,
  };
  if (native.runtimeVersion) result.runtimeVersion = native.runtimeVersion;
  if (native.driverVersion) result.driverVersion = native.driverVersion;
  if (native.device) {
    const d = native.device;
    result.device = {
      name: d.name,
      computeCapability: d.computeCapability,
      memoryBytes: d.memoryBytes,
      driverVersion: d.driverVersion,
      runtimeVersion: d.runtimeVersion,
    };
  }
  if (!cudaAddon.loaded && cudaAddon.reason) result.reason = cudaAddon.reason;
  if (cudaAddon.path) result.addonPath = cudaAddon.path;
  return result;
}

/**
 * Describes the loaded addon.
 *
 * @example
 * ```ts
 * import { info } from 'vlkernels';
 * const { version, isa, isas, threads, cuda } = info();
 * console.log(`vlkernels ${version}: ${isa} kernels (${isas.join(', ')} available), ${threads} threads`);
 * console.log(cuda.usable ? `GPU: ${cuda.device?.name}` : `no GPU: ${cuda.reason}`);
 * ```
 * @throws Nothing: the addon and its ISA configuration were checked when the package loaded.
 */
export function info(): Info {
  const native = binding.info();
  const result: Info = {
    version: packageVersion,
    isa: native.isa ?? 'none',
    isas: native.isas,
    detectedIsa: native.detectedIsa,
    threads: native.threads,
    queueDepth: native.queueDepth,
    napiVersion: NAPI_VERSION,
    memory: { ...native.memory },
    cuda: cudaInfo(),
  };
  if (native.isaError) result.isaError = native.isaError.message;
  return result;
}

/**
 * Overrides the kernel path for every call that starts afterwards, process-wide (all threads and
 * workers); `null` restores the default (the detected path, capped by `VLK_FORCE_ISA`).
 *
 * @example
 * ```ts
 * import { info, setIsa } from 'vlkernels';
 * for (const isa of info().isas) {
 *   setIsa(isa as 'scalar' | 'avx2' | 'avx512');
 *   // ... compare results across paths
 * }
 * setIsa(null);
 * ```
 * @throws VlkError ERR_VLK_INVALID_ARG for a name other than 'scalar', 'avx2', 'avx512' or null;
 * ERR_VLK_UNSUPPORTED_ISA for a path above what this CPU (and VLK_FORCE_ISA) allow.
 */
export function setIsa(isa: IsaName | null): void {
  if (isa !== null && isa !== undefined && (typeof isa !== 'string' || !isaNames.has(isa))) {
    const got = typeof isa === 'string' ? `'${isa}'` : describe(isa);
    throw new VlkError('ERR_VLK_INVALID_ARG', `isa: expected 'scalar', 'avx2', 'avx512' or null, got ${got}`);
  }
  try {
    binding.setIsa(isa ?? null);
  } catch (err) {
    throw fromNative(err, setIsa);
  }
}

/**
 * Frees the large blocks that vlkernels keeps for reuse (see `info().memory`): for a service that
 * has finished a burst of big calls and wants its resident memory back. Arrays still in use are not
 * affected; they return to the (then empty) cache when collected.
 *
 * @example
 * ```ts
 * import { info, releaseMemory } from 'vlkernels';
 * console.log(`${info().memory.cachedBytes} bytes cached`);
 * const freed = releaseMemory();
 * ```
 * @returns The bytes freed.
 */
export function releaseMemory(): number {
  return binding.releaseMemory();
}
