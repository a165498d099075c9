// Intra-modal relevance of AAHR's in-batch graph (core/graph, seed 004), forward and backward.
//   gaussian  R[i, j] = exp(-||x_i - x_j||_2 / sigma)     (sigma > 0, default 1; R[i, i] = 1)
//   cosine    R[i, j] = u_i . u_j,  u_i = x_i / max(||x_i||, 1e-12)   (PyTorch F.normalize's rule;
//             the GEMM's upper triangle, mirrored; a zero row relates 0 to everything, itself too)
// X is n x D row-major, R is n x n row-major.
// Gaussian distances: X is centred first (x_i - mean; distances do not change, the Gram entries
// get smaller), the Gram matrix G = Xc Xc^T comes from the fp32 GEMM (upper triangle only, 64-row
// blocks, then mirrored, so R is exactly symmetric) and d^2 = |xc_i|^2 + |xc_j|^2 - 2 G[i, j]
// (norms in float64), clamped at >= 0; R = expf(-d / sigma) in fp32. Where that difference cancels (d^2 < (|xc_i|^2
// + |xc_j|^2) / 16: near pairs), d^2 is recomputed directly as sum (x_i - x_j)^2 in float64. The
// diagonal is exactly 1.
// Backward (given dR = dL/dR, n x n, not assumed symmetric):
//   gaussian  dL/dx_i = sum_j W[i, j] (x_i - x_j),  W[i, j] = -(R[i, j] dR[i, j] + R[j, i] dR[j, i])
//             / (sigma d_ij) for i != j and d_ij > 0; at zero distance (the diagonal, duplicate
//             points) the gradient is defined as 0 (the distance has no derivative there).
//             Computed as rowsum(W) * x_i - (W Xc)_i with the GEMM; distances are recomputed.
//   cosine    dU = (dR + dR^T) U;  dL/dx_i = (du_i - (du_i . u_i) u_i) / ||x_i|| (rows with
//             ||x_i|| < 1e-12: du_i / 1e-12, the derivative of x / 1e-12).
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/status.hpp"

namespace vlk {
namespace core {

enum class RelevanceKind { kGaussian, kCosine };

struct RelevanceArgs {
  const float* x = nullptr;  // n x d
  int64_t n = 0, d = 0;
  RelevanceKind kind = RelevanceKind::kGaussian;
  double sigma = 1.0;  // gaussian only
};

/// r: n x n (overwritten). Errors: kEmpty (n or d 0), kInvalidArg (null, sigma not finite > 0),
/// kNonFinite (x, naming row and column), kOutOfMemory, kAborted.
Status relevance(const RelevanceArgs& a, float* r, const Context& ctx);

/// dx: n x d (overwritten) from dr (n x n). Errors as relevance, plus kNonFinite for dr ("gradOutput").
Status relevance_backward(const RelevanceArgs& a, const float* dr, float* dx, const Context& ctx);

}  // namespace core
}  // namespace vlk
