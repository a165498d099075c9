// Introspection entry points of the binding (binding): ISA state, pool size, error code list.
#pragma once

#include <napi.h>

#include "common/addon_state.hpp"

namespace vlk {
namespace binding {

/// info() -> { isa, isaError?, isas, detectedIsa, threads, queueDepth, inFlight, napiVersion }.
/// `isa` is null and `isaError` = { code, message } when VLK_FORCE_ISA is invalid here.
Napi::Value Info(const Napi::CallbackInfo& info, AddonState& state);

/// cudaInfo() -> { built, usable, reason, deviceCount, runtimeVersion?, driverVersion?, device?:
/// { name, computeCapability: '9.0', memoryBytes, driverVersion: '13.0', runtimeVersion } } from
/// cuda::device_info(). Separate from info() because its first call probes the CUDA driver, which
/// the loader's info() at load time should not pay for.
Napi::Value CudaInfo(const Napi::CallbackInfo& info);

/// setIsa(name | null): process-wide override of the kernel path (vlk::set_isa). Throws
/// ERR_VLK_INVALID_ARG (unknown name) or ERR_VLK_UNSUPPORTED_ISA (above what this CPU allows).
Napi::Value SetIsa(const Napi::CallbackInfo& info);

/// releaseMemory(): frees every block the block cache holds for reuse (core/common/block_cache);
/// returns the bytes freed.
Napi::Value ReleaseMemory(const Napi::CallbackInfo& info);

/// createCancelToken() -> a CancelToken with cancel() and a `cancelled` getter.
Napi::Value CreateCancelToken(const Napi::CallbackInfo& info, AddonState& state);

}  // namespace binding
}  // namespace vlk
