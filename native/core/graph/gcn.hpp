// One graph convolution of AAHR's in-batch graph (core/graph, seed 004), forward and backward:
//   H = X W                       X: n x Din, W: Din x Dout (row-major, W[i, o]; PyTorch's
//                                 nn.Linear(Din, Dout).weight is Dout x Din, so W = weight^T)
//   P = A H + 1 b^T               A: n x n raw weighted adjacency (dense; entries outside the graph
//                                 already 0, no degree normalisation), b: Dout (optional, else 0)
//   Y = LeakyReLU_slope(P)        slope >= 0 (default 0.2): Y = P if P > 0 else slope * P
// AAHR's Dropout(0.6) on X is the caller's: pass the dropped (and rescaled) X here and in the
// backward, and multiply dX by the same mask / (1 - p) afterwards.
// Backward, given dY (n x Dout), with PyTorch's convention at P = 0 (derivative = slope):
//   dP = dY * (P > 0 ? 1 : slope)   (P > 0 iff Y > 0, so the forward's Y can stand in for P)
//   db = sum_rows dP,  dA = dP H^T,  dH = A^T dP,  dW = X^T dH,  dX = dH W^T
// H and Y are recomputed when the caller does not pass the forward's. Every product is the fp32
// GEMM (rows split over the pool); db accumulates in float64 in row order.
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/status.hpp"

namespace vlk {
namespace core {

struct GcnArgs {
  const float* adjacency = nullptr;  // n x n
  const float* input = nullptr;      // n x din
  const float* weight = nullptr;     // din x dout
  const float* bias = nullptr;       // dout, optional
  int64_t n = 0, din = 0, dout = 0;
  double slope = 0.2;
};

/// output: n x dout; hidden (optional): n x dout receives H = X W. Errors: kEmpty (a size 0),
/// kInvalidArg (null, slope not finite >= 0), kNonFinite (naming adjacency / input / weight /
/// bias, row and column), kOutOfMemory, kAborted.
Status gcn(const GcnArgs& a, float* output, float* hidden, const Context& ctx);

struct GcnGrads {
  float* input = nullptr;      // n x din
  float* weight = nullptr;     // din x dout
  float* bias = nullptr;       // dout
  float* adjacency = nullptr;  // n x n
};

/// Any gradient pointer may be null (not computed). output / hidden: the forward's Y and H, or
/// null to recompute them. Errors as gcn, plus kNonFinite for gradOutput.
Status gcn_backward(const GcnArgs& a, const float* grad_output, const float* output, const float* hidden,
                    const GcnGrads& grads, const Context& ctx);

}  // namespace core
}  // namespace vlk
