// safetensors entry points (binding), see safetensors.cpp. Core does the format
// (core/io/safetensors); lib/safetensors.ts validates first and shapes the results.
#pragma once

#include <napi.h>

#include "common/addon_state.hpp"

namespace vlk {
namespace binding {

/// readSafetensorsSync(source: string | Uint8Array, toFloat32: boolean) -> NativeSafetensors:
/// { names: string[], dtypes: string[], shapes: number[][], arrays: TypedArray[], metadata:
/// string[] (key, value, key, value, ...) } in the file's data order.
Napi::Value ReadSafetensorsSync(const Napi::CallbackInfo& info, AddonState& state);
/// readSafetensorsAsync(source, toFloat32, token?) -> Promise<NativeSafetensors>: the read and
/// parse, then the copy/conversion into the result arrays, on the addon's pool.
Napi::Value ReadSafetensorsAsync(const Napi::CallbackInfo& info, AddonState& state);
/// writeSafetensorsSync(path, tensors: { name, dtype, shape, data }[], metadata: string[]).
Napi::Value WriteSafetensorsSync(const Napi::CallbackInfo& info, AddonState& state);
/// writeSafetensorsAsync(path, tensors, metadata, token?) -> Promise<void> (on the pool).
Napi::Value WriteSafetensorsAsync(const Napi::CallbackInfo& info, AddonState& state);
/// encodeSafetensorsSync(tensors, metadata) -> Buffer: the bytes writeSafetensors* writes.
Napi::Value EncodeSafetensorsSync(const Napi::CallbackInfo& info, AddonState& state);

}  // namespace binding
}  // namespace vlk
