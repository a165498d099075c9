// Top-k merge entry points of the binding (binding): partial results parsed, their ids (+ offset)
// copied into one int64 vector, outputs allocated on the JS thread, then core::merge_top_k on the JS
// thread (sync) or the addon's pool (async).
#pragma once

#include <napi.h>

#include "common/addon_state.hpp"

namespace vlk {
namespace binding {

/// mergeTopKSync(partials, options) -> { ids: Float64Array | BigInt64Array, scores: Float32Array,
/// counts: Int32Array, k, count }. partials: S objects { indices (Int32Array, Float64Array or
/// BigInt64Array), scores: Float32Array, k, count, counts?: Int32Array, offset?: number }, each
/// count x k row-major; options: { k, metric }. ids are a BigInt64Array when any partial's indices
/// are. Runs on the calling (JS) thread, parallel inside through the pool. Throws an Error with
/// .code on any failure.
Napi::Value MergeTopKSync(const Napi::CallbackInfo& info, AddonState& state);

/// mergeTopKAsync(partials, options, token?) -> Promise of the same result. Scores are read in place
/// and referenced until the job settles (ids and counts are copied first).
Napi::Value MergeTopKAsync(const Napi::CallbackInfo& info, AddonState& state);

}  // namespace binding
}  // namespace vlk
