// Prior-fused search entry points (binding): priorSearchSync(spec) / priorSearchAsync(spec,
// token?). lib/prior_search.ts builds the spec.
#pragma once

#include <napi.h>

#include "common/addon_state.hpp"

namespace vlk {
namespace binding {

Napi::Value PriorSearchSync(const Napi::CallbackInfo& info);
Napi::Value PriorSearchAsync(const Napi::CallbackInfo& info, AddonState& state);

}  // namespace binding
}  // namespace vlk
