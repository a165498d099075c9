// Exponential moving average of weights (core/memory, seed 004): MoCo's key-encoder update, as
// AAHR applies it to every parameter of both key encoders with m = 0.999:
//   target[i] = m * target[i] + (1 - m) * source[i]        (in place, element-wise)
// computed in float64 per element and rounded to fp32 once (PyTorch's `p_k * m + p_q * (1 - m)`
// rounds twice in fp32; the two differ by at most 1 ulp). Several (target, source) pairs are
// updated in one call (a model's named tensors): every pair is checked first, so on any error no
// target has changed. Large pairs are split over the pool in fixed chunks; element-wise, so the
// result does not depend on the thread count.
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/status.hpp"

namespace vlk {
namespace core {

struct EmaPair {
  float* target = nullptr;
  const float* source = nullptr;
  int64_t n = 0;
};

/// Errors: kInvalidArg (momentum outside [0, 1] or not finite, null arrays with n > 0, a target
/// that overlaps its source only partially), kNonFinite (a NaN or infinity in a target or a source,
/// naming pair index and element). `names` (optional, count entries) name the pairs in messages.
Status ema_update(const EmaPair* pairs, int64_t count, double momentum, const char* const* names, const Context& ctx);

}  // namespace core
}  // namespace vlk
