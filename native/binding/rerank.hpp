// Re-ranking entry points of the binding (binding): queries and gallery parsed into core views,
// candidate lists copied into CSR (int64 offsets + int32 rows), outputs allocated on the JS thread,
// then core::rerank on the JS thread (sync) or the addon's pool (async).
#pragma once

#include <napi.h>

#include "common/addon_state.hpp"

namespace vlk {
namespace binding {

/// rerankSync(queries, gallery, candidates, options) -> { indices: Int32Array, scores: Float32Array,
/// counts: Int32Array, k, count }, row-major count x k as search returns. candidates: an Int32Array
/// of Q x m rows (-1: none), or { offsets: Int32Array(Q + 1), rows: Int32Array }; options: { k,
/// metric, dim, threads }. Runs core::rerank on the calling (JS) thread, parallel inside through the
/// pool. Throws an Error with .code on any failure.
Napi::Value RerankSync(const Napi::CallbackInfo& info, AddonState& state);

/// rerankAsync(queries, gallery, candidates, options, token?) -> Promise of the same result. The
/// candidates are copied when the call starts; queries and gallery are read in place and referenced
/// until the job settles, so callers must not mutate or transfer them before then.
Napi::Value RerankAsync(const Napi::CallbackInfo& info, AddonState& state);

}  // namespace binding
}  // namespace vlk
