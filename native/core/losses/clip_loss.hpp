// Symmetric CLIP InfoNCE with a learnable temperature (core/losses), seed 003's objective:
//   u_i = I_i / max(||I_i||, 1e-12), v_j = T_j / max(||T_j||, 1e-12)   (F.normalize's convention),
//   S = scale u v^T (B x B), scale = min(exp(t), 100), L = 1/2 [CE(S, diag) + CE(S^T, diag)],
// with label smoothing (info_nce's convention) and gradients for I, T (B x D, row-major) and t.
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/status.hpp"

namespace vlk {
namespace core {

struct ClipLossArgs {
  const float* images = nullptr;  // B x D, row-major
  const float* texts = nullptr;   // B x D, row-major; text i is the positive of image i
  int64_t b = 0, d = 0;
  double logit_scale = 0;         // t; the logits' multiplier is exp(t), clipped at max_scale
  double max_scale = 100.0;
  double label_smoothing = 0.0;   // in [0, 1)
  bool normalize = true;          // false: the rows are used as given (already unit, or raw dot products)
};

struct ClipLossOut {
  double loss = 0;
  double scale = 0;          // the multiplier applied: min(exp(t), max_scale)
  bool clipped = false;      // exp(t) > max_scale
  float* dimages = nullptr;  // optional B x D
  float* dtexts = nullptr;   // optional B x D
  double dlogit_scale = 0;   // dL/dt = exp(t) dL/dscale; 0 while the clip is active (exp(t) > max_scale)
};

/// S and the gradient products (dS V, dS^T U) run on core::gemm (fp32, thread-count independent);
/// the two cross-entropies on core::info_nce (float64). Below a norm of 1e-12 a row is divided by
/// 1e-12 and its gradient is du / 1e-12, as PyTorch's F.normalize (clamp_min) gives.
/// Errors: kEmpty (B or D = 0), kInvalidArg (t not finite, smoothing, null pointers), kNonFinite
/// (naming images / texts, row, column), kOutOfMemory (the B x B scratch), kAborted.
Status clip_loss(const ClipLossArgs& a, ClipLossOut* out, const Context& ctx);

}  // namespace core
}  // namespace vlk
