// In-batch contrastive loss (core/losses): cross-entropy of scaled similarity rows against one
// target column each (the diagonal by default), with label smoothing, as PTHA's L_itc / L_rtc
// (seed 001: CE_ls(S / tau, diag), smoothing 0.1) and the combiner's training loss (seed 002:
// CE(100 S, diag)) use it:
//   p_i = softmax(scale S_i),  y_ij = (1 - eps) [j = t_i] + eps / C,
//   loss = (1/R) sum_i -sum_j y_ij log p_ij
//   dS_ij = scale (p_ij - y_ij) / R,   dscale = (1/R) sum_ij (p_ij - y_ij) S_ij
// (PyTorch's CrossEntropyLoss(label_smoothing = eps) convention). Computed in float64 with the row
// maximum subtracted; gradients rounded to fp32.
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/status.hpp"

namespace vlk {
namespace core {

struct InfoNceArgs {
  const float* scores = nullptr;    // R x C similarities, row-major
  int64_t rows = 0, cols = 0;
  const int32_t* targets = nullptr; // R target columns; null: row i targets column i (needs R <= C)
  double scale = 1.0;               // 1 / temperature, > 0
  double label_smoothing = 0.0;     // in [0, 1)
};

struct InfoNceOut {
  double loss = 0;
  float* dscores = nullptr;  // optional R x C
  double dscale = 0;         // d loss / d scale (for a learned temperature: dtau = -dscale / tau^2)
};

/// Errors: kEmpty, kInvalidArg (scale <= 0 or not finite, smoothing outside [0, 1), a target
/// outside 0..C-1, null targets with R > C), kNonFinite (a score), naming the value.
Status info_nce(const InfoNceArgs& a, InfoNceOut* out, const Context& ctx);

}  // namespace core
}  // namespace vlk
