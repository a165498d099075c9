// Matching-loss entry points (binding, seed 004): memoryInfoNce, vseHinge and weightedTriplet,
// each as <name>Sync(spec) -> result and <name>Async(spec, token?) -> Promise of it. Specs are
// flat (lib has resolved shapes); see matching_losses.cpp.
#pragma once

#include <napi.h>

#include "common/addon_state.hpp"

namespace vlk {
namespace binding {

Napi::Value MemoryInfoNceSync(const Napi::CallbackInfo& info);
Napi::Value MemoryInfoNceAsync(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value VseHingeSync(const Napi::CallbackInfo& info);
Napi::Value VseHingeAsync(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value WeightedTripletSync(const Napi::CallbackInfo& info);
Napi::Value WeightedTripletAsync(const Napi::CallbackInfo& info, AddonState& state);

}  // namespace binding
}  // namespace vlk
