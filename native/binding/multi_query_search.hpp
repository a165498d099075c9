// Multi-query fusion search entry points (binding): multiQuerySearchSync(spec) /
// multiQuerySearchAsync(spec, token?). lib/multi_query_search.ts builds the spec.
#pragma once

#include <napi.h>

#include "common/addon_state.hpp"

namespace vlk {
namespace binding {

Napi::Value MultiQuerySearchSync(const Napi::CallbackInfo& info);
Napi::Value MultiQuerySearchAsync(const Napi::CallbackInfo& info, AddonState& state);

}  // namespace binding
}  // namespace vlk
