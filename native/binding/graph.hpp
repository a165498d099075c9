// In-batch graph entry points (binding, seed 004 AAHR): relevance, relevanceBackward,
// scanRelevance, rowTopkMask, gcn, gcnBackward, each as <name>Sync(spec) -> { outputs } and
// <name>Async(spec, token?) -> Promise of it. lib/graph.ts builds the flat specs; see graph.cpp.
#pragma once

#include <napi.h>

#include "common/addon_state.hpp"

namespace vlk {
namespace binding {

Napi::Value GraphRelevanceSync(const Napi::CallbackInfo& info);
Napi::Value GraphRelevanceAsync(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value GraphRelevanceBackwardSync(const Napi::CallbackInfo& info);
Napi::Value GraphRelevanceBackwardAsync(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value GraphScanRelevanceSync(const Napi::CallbackInfo& info);
Napi::Value GraphScanRelevanceAsync(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value GraphRowTopkMaskSync(const Napi::CallbackInfo& info);
Napi::Value GraphRowTopkMaskAsync(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value GraphGcnSync(const Napi::CallbackInfo& info);
Napi::Value GraphGcnAsync(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value GraphGcnBackwardSync(const Napi::CallbackInfo& info);
Napi::Value GraphGcnBackwardAsync(const Napi::CallbackInfo& info, AddonState& state);

}  // namespace binding
}  // namespace vlk
