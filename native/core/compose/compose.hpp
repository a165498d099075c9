// Query composition (core/compose): a reference image feature and a modification (or condition)
// text feature become one query embedding, by the combiner head (combiner.hpp) or a training-free
// baseline (seed 002's baselines, with the normalise-first variant it proposes):
//   image:  norm(x_i)            text: norm(x_t)
//   sum:    norm((1 - a) x_i + a x_t)                       (raw features, as GeneCIS)
//   sum_normalized: norm((1 - a) norm(x_i) + a norm(x_t))
//   slerp:  spherical interpolation from norm(x_i) to norm(x_t) at a (angle 0: norm(x_i))
// norm(v) = v / max(|v|, 1e-12). All rows independent; float64 inside, fp32 out.
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/status.hpp"
#include "compose/combiner.hpp"

namespace vlk {
namespace core {

enum class ComposeMode { kCombiner = 0, kImage, kText, kSum, kSumNormalized, kSlerp };

/// "combiner", "image", "text", "sum", "sum_normalized", "slerp"; kInvalidArg otherwise.
Status parse_compose_mode(const char* name, ComposeMode* out);

struct ComposeArgs {
  ComposeMode mode = ComposeMode::kSum;
  const float* image = nullptr;  // B x D reference image features
  const float* text = nullptr;   // B x D modification / condition text features
  int64_t b = 0, d = 0;
  float alpha = 0.5f;            // text weight of sum / sum_normalized / slerp, in [0, 1]
  const CombinerWeights* weights = nullptr;  // kCombiner (its d must equal d)
};

/// out: B x D unit rows. Errors: kEmpty, kInvalidArg (alpha, missing or mismatched weights),
/// kNonFinite, and the combiner's.
Status compose(const ComposeArgs& a, float* out, const Context& ctx);

}  // namespace core
}  // namespace vlk
