// compose entry points (binding): composeSync(image, text, options) -> Float32Array (B x D) and
// composeAsync(image, text, options, token?) -> Promise of it. See compose.cpp.
#pragma once

#include <napi.h>

#include "common/addon_state.hpp"

namespace vlk {
namespace binding {

Napi::Value ComposeSync(const Napi::CallbackInfo& info);
Napi::Value ComposeAsync(const Napi::CallbackInfo& info, AddonState& state);

}  // namespace binding
}  // namespace vlk
