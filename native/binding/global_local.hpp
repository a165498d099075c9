// Global-local scoring entry points (binding): maxkPool, cosineMhaPool, gatedFusion (each with a
// Backward) and scanSimilarity, each as <name>Sync(spec) -> { outputs } and <name>Async(spec,
// token?) -> Promise of it. lib/global_local.ts builds the flat specs; see global_local.cpp.
#pragma once

#include <napi.h>

#include "common/addon_state.hpp"

namespace vlk {
namespace binding {

Napi::Value MaxkPoolSync(const Napi::CallbackInfo& info);
Napi::Value MaxkPoolAsync(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value MaxkPoolBackwardSync(const Napi::CallbackInfo& info);
Napi::Value MaxkPoolBackwardAsync(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value CosineMhaPoolSync(const Napi::CallbackInfo& info);
Napi::Value CosineMhaPoolAsync(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value CosineMhaPoolBackwardSync(const Napi::CallbackInfo& info);
Napi::Value CosineMhaPoolBackwardAsync(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value GatedFusionSync(const Napi::CallbackInfo& info);
Napi::Value GatedFusionAsync(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value GatedFusionBackwardSync(const Napi::CallbackInfo& info);
Napi::Value GatedFusionBackwardAsync(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value ScanSimilaritySync(const Napi::CallbackInfo& info);
Napi::Value ScanSimilarityAsync(const Napi::CallbackInfo& info, AddonState& state);

}  // namespace binding
}  // namespace vlk
