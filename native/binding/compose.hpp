// compose entry points (binding): composeSync(image, text, options) -> Float32Array (B x D) and
// composeAsync(image, text, options, token?) -> Promise of it. See compose.cpp.
#pragma once

#include <napi.h>

#include <vector>

#include "common/addon_state.hpp"
#include "common/args.hpp"
#include "compose/combiner.hpp"
#include "compose/compose.hpp"

namespace vlk {
namespace binding {

/// A parsed compose call (also what FlatIndex's composedSearch runs before its search).
struct ComposeCall {
  MatrixArg image, text;
  core::ComposeArgs args;
  core::CombinerWeights weights;
  std::vector<Napi::Float32Array> keep;  // the weight arrays (an async job keeps them referenced)
  int threads = 1;
};

/// image, text (B x D matrix forms) and options { mode, alpha, dim, weights, threads }: typed
/// errors naming the input or the weight tensor.
Status ParseComposeArgs(Napi::Value image, Napi::Value text, Napi::Value options, ComposeCall* call);

Napi::Value ComposeSync(const Napi::CallbackInfo& info);
Napi::Value ComposeAsync(const Napi::CallbackInfo& info, AddonState& state);

}  // namespace binding
}  // namespace vlk
