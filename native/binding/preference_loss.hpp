// Preference-loss entry points (binding, seed 000): preferenceLossSync(spec) -> result and
// preferenceLossAsync(spec, token?) -> Promise of it. The spec is flat (lib has resolved shapes);
// see preference_loss.cpp.
#pragma once

#include <napi.h>

#include "common/addon_state.hpp"

namespace vlk {
namespace binding {

Napi::Value PreferenceLossSync(const Napi::CallbackInfo& info);
Napi::Value PreferenceLossAsync(const Napi::CallbackInfo& info, AddonState& state);

}  // namespace binding
}  // namespace vlk
