// Clustering entry points (binding): sinkhornSync/Async(spec) -> Float32Array codes (B x P),
// swavLossSync/Async(spec) -> { loss, lossV, lossT, dtemperature, dscoresV?, dscoresT? },
// kmeansSync/Async(spec) -> { centroids, assignments, inertia, iterations, converged,
// inertiaHistory }. lib/cluster.ts resolves shapes into the flat specs; see cluster.cpp.
#pragma once

#include <napi.h>

#include "common/addon_state.hpp"

namespace vlk {
namespace binding {

Napi::Value SinkhornSync(const Napi::CallbackInfo& info);
Napi::Value SinkhornAsync(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value SwavLossSync(const Napi::CallbackInfo& info);
Napi::Value SwavLossAsync(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value KmeansSync(const Napi::CallbackInfo& info);
Napi::Value KmeansAsync(const Napi::CallbackInfo& info, AddonState& state);

}  // namespace binding
}  // namespace vlk
