// Rank-of-targets entry points (binding): rankOfTargets (ranks of ground-truth gallery rows, CSR)
// and crossModalRanks (both directions of the 5-captions-per-image protocol), each as
// <name>Sync(spec) -> result and <name>Async(spec, token?) -> Promise of it. Specs are flat (lib
// has resolved shapes); see rank_of_targets.cpp.
#pragma once

#include <napi.h>

#include "common/addon_state.hpp"

namespace vlk {
namespace binding {

Napi::Value RankOfTargetsSync(const Napi::CallbackInfo& info);
Napi::Value RankOfTargetsAsync(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value CrossModalRanksSync(const Napi::CallbackInfo& info);
Napi::Value CrossModalRanksAsync(const Napi::CallbackInfo& info, AddonState& state);

}  // namespace binding
}  // namespace vlk
