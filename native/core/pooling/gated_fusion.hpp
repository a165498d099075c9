// Gated fusion of the local and global embeddings (core/pooling, AAHR encoders step 5, seed 004):
//   z = sigmoid(W [e; g] + b)        W: D x 2D (PyTorch Linear layout: out x in), b: D
//   v = z * e + (1 - z) * g          elementwise, NOT renormalised (as the paper's code; |v| <= 1
//                                    when e and g are unit vectors)
// e, g: B x D. The pre-activation W [e; g] is one fp32 GEMM (linalg/gemm) of [e | g] (B x 2D)
// with W^T; the rest runs in double, rounded to fp32.
// Backward, given dv (B x D):
//   dz = dv * (e - g),  dp = dz * z (1 - z)
//   de = dv * z + (dp W)[:, :D],  dg = dv * (1 - z) + (dp W)[:, D:]
//   dW = dp^T [e | g] (D x 2D),   db = sum_b dp
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/status.hpp"

namespace vlk {
namespace core {

struct GatedFusionArgs {
  const float* e = nullptr;  // B x D
  const float* g = nullptr;  // B x D
  const float* w = nullptr;  // D x 2D
  const float* bias = nullptr;  // D, optional (null: 0)
  int64_t b = 0, d = 0;
};

/// v: B x D; z: B x D gate (optional, null: not written). Errors: kEmpty, kInvalidArg (null
/// input), kNonFinite (naming the input), kOutOfMemory, kAborted.
Status gated_fusion(const GatedFusionArgs& a, float* v, float* z, const Context& ctx);

struct GatedFusionGrads {
  float* de = nullptr;     // B x D
  float* dg = nullptr;     // B x D
  float* dw = nullptr;     // D x 2D
  float* dbias = nullptr;  // D
};

/// All four gradients are written (required). dv: B x D.
Status gated_fusion_backward(const GatedFusionArgs& a, const float* dv, const GatedFusionGrads& out,
                             const Context& ctx);

}  // namespace core
}  // namespace vlk
