// Query expansion entry points (binding): expandQueriesSync(spec) / expandQueriesAsync(spec,
// token?) and augmentGallerySync / augmentGalleryAsync. lib/expand_queries.ts builds the specs.
#pragma once

#include <napi.h>

#include "common/addon_state.hpp"

namespace vlk {
namespace binding {

Napi::Value ExpandQueriesSync(const Napi::CallbackInfo& info);
Napi::Value ExpandQueriesAsync(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value AugmentGallerySync(const Napi::CallbackInfo& info);
Napi::Value AugmentGalleryAsync(const Napi::CallbackInfo& info, AddonState& state);

}  // namespace binding
}  // namespace vlk
