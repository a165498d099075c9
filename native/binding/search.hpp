// Search entry points of the binding (binding): argument parsing into core views, output
// allocation on the JS thread, then core::search (or cuda::search, per options.device and
// options.precision; or, for precision 'bf16' / 'i8' on the CPU, core::search_reduced: a bf16 /
// int8 scan with an exact fp32 re-score, the same results) on the JS thread (sync) or the pool
// (async).
#pragma once

#include <napi.h>

#include "common/addon_state.hpp"

namespace vlk {
namespace binding {

/// searchSync(queries, gallery, options) -> { indices: Int32Array, scores: Float32Array, k, count }.
/// Runs core::search on the calling (JS) thread, parallel inside through the pool. Throws an Error
/// with .code on any failure.
Napi::Value SearchSync(const Napi::CallbackInfo& info, AddonState& state);

/// searchAsync(queries, gallery, options, token?) -> Promise of the same result. Inputs are
/// referenced until the job settles; callers must not mutate or transfer them before then.
Napi::Value SearchAsync(const Napi::CallbackInfo& info, AddonState& state);

}  // namespace binding
}  // namespace vlk
