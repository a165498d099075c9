// biasedAttention entry points (binding): biasedAttentionSync(spec) -> { output, saved? },
// biasedAttentionAsync(spec, token?) -> Promise of it, biasedAttentionBackwardSync(spec) -> { x, wq,
// wk, wv, wo, bq, bk, bv, bo, gamma, beta, relevance, biasWeight } and biasedAttentionBackwardAsync.
// lib/biased_attention.ts resolves the user's tensors into the flat spec; see biased_attention.cpp.
#pragma once

#include <napi.h>

#include "common/addon_state.hpp"

namespace vlk {
namespace binding {

Napi::Value BiasedAttentionSync(const Napi::CallbackInfo& info);
Napi::Value BiasedAttentionAsync(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value BiasedAttentionBackwardSync(const Napi::CallbackInfo& info);
Napi::Value BiasedAttentionBackwardAsync(const Napi::CallbackInfo& info, AddonState& state);

}  // namespace binding
}  // namespace vlk
