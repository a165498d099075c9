// PTHA hop 1 loss (core/losses, seed 001): the implicit prototype from (reference, modification)
// is pulled towards the one from (target, reverse modification), which is held fixed:
//   L = MSE(mean_k P, sg(mean_k P')) = (1 / (B D)) sum_{b,d} (mean_k P[b,k,d] - mean_k P'[b,k,d])^2
//   dP[b, k, d] = 2 (mean_k P - mean_k P')[b, d] / (B D K)      (no gradient to P')
// Token means and the loss in float64; the gradient rounded to fp32.
#pragma once

#include <cstdint>

#include "common/status.hpp"

namespace vlk {
namespace core {

struct PrototypeAlignmentArgs {
  const float* p = nullptr;       // B x K x D (the composed side, receives the gradient)
  const float* target = nullptr;  // B x K' x D (the target side, stop-gradient); K' may differ from K
  int64_t b = 0, k = 0, k_target = 0, d = 0;
};

/// loss and, if dp is not null, dP (B x K x D). kEmpty, kInvalidArg (null), kNonFinite.
Status prototype_alignment(const PrototypeAlignmentArgs& a, double* loss, float* dp);

}  // namespace core
}  // namespace vlk
