// CLIP-loss entry points (binding, seed 003): clipLossSync(spec) -> result and
// clipLossAsync(spec, token?) -> Promise of it. The spec is flat (lib has resolved shapes); see
// clip_loss.cpp.
#pragma once

#include <napi.h>

#include "common/addon_state.hpp"

namespace vlk {
namespace binding {

Napi::Value ClipLossSync(const Napi::CallbackInfo& info);
Napi::Value ClipLossAsync(const Napi::CallbackInfo& info, AddonState& state);

}  // namespace binding
}  // namespace vlk
