// SwAV swapped-prediction loss (core/cluster, seed 004 AAHR), forward and backward in one call:
//   L = -(1/B) sum_b sum_p Qt[b, p] log softmax(Ov[b] / tau)_p        (lossV: image scores predict
//       -(1/B) sum_b sum_p Qv[b, p] log softmax(Ot[b] / tau)_p         the text codes; lossT: the
//                                                                        reverse)
// Ov, Ot: B x P prototype scores (v . C^T); Qv, Qt: B x P codes (sinkhorn of Ov, Ot), constants.
// Gradients (codes get none): with s_b = softmax(Ov[b] / tau) and m_b = sum_p Qt[b, p],
//   dL/dOv[b, p] = (m_b s_b,p - Qt[b, p]) / (B tau)                    (likewise dOt with Qv)
//   dL/dtau      = -(1 / tau) sum_{b,p} (dOv[b,p] Ov[b,p] + dOt[b,p] Ot[b,p])
// Choices: codes are used as given (no check that they sum to 1 or are >= 0; the gradient formula
// keeps m_b, so it is exact for any weights); softmax through log-sum-exp with the row max
// subtracted; everything accumulated in float64 (4 lanes added in a fixed order), gradients
// rounded to fp32 once. AAHR's weight
// (0.2) and its warm-up are the caller's. O(B P), on ctx.pool in fixed blocks of 16 rows whose
// partial sums are added in block order: bit-identical for any thread count.
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/status.hpp"

namespace vlk {
namespace core {

struct SwavLossArgs {
  const float* scores_v = nullptr;  // Ov: B x P
  const float* scores_t = nullptr;  // Ot: B x P
  const float* codes_v = nullptr;   // Qv: B x P
  const float* codes_t = nullptr;   // Qt: B x P
  int64_t b = 0, p = 0;
  double temperature = 0.1;
};

struct SwavLossOut {
  double loss = 0, loss_v = 0, loss_t = 0;  // loss = loss_v + loss_t
  double dtemperature = 0;
  float* dscores_v = nullptr;  // optional B x P, overwritten
  float* dscores_t = nullptr;  // optional B x P, overwritten
};

/// Errors: kEmpty (B or P is 0), kInvalidArg (null inputs, temperature not a finite number > 0),
/// kNonFinite (naming the input, row and column), kAborted.
Status swav_loss(const SwavLossArgs& a, SwavLossOut* out, const Context& ctx);

}  // namespace core
}  // namespace vlk
