// Combiner head (core/compose, seed 002: the CLIP4Cir / GeneCIS conditional-similarity combiner),
// forward and backward, batched B x D, weights in PyTorch nn.Linear layout (out x in):
//   pt = drop(relu(x_t W_tp^T + b_tp))            [B x P]   (P = 4D in the paper; any P here)
//   pi = drop(relu(x_i W_ip^T + b_ip))            [B x P]
//   c  = [pt, pi]                                 [B x 2P]  (text first, as CLIP4Cir)
//   h  = drop(relu(c W_c^T + b_c))                [B x H]   (H = 8D in the paper)
//   g  = drop(relu(c W_g1^T + b_g1))              [B x H]
//   lambda = sigmoid(g W_g2^T + b_g2)             [B]
//   y  = h W_o^T + b_o + lambda x_t + (1 - lambda) x_i
//   out = y / max(|y|, 1e-12)                     (F.normalize's convention)
// Dropout (training only) keeps a unit with probability 1 - p and scales it by 1 / (1 - p); its
// masks come from a counter-based hash of (seed, layer, row, column), so they are reproducible and
// independent of threads. Backward needs the forward's cache and gives every weight's and both
// inputs' gradients. GEMMs run on core/linalg gemm (fp32).
#pragma once

#include <cstdint>
#include <vector>

#include "common/context.hpp"
#include "common/status.hpp"

namespace vlk {
namespace core {

struct CombinerWeights {
  int64_t d = 0, p = 0, h = 0;
  const float *w_tp = nullptr, *b_tp = nullptr;  // P x D, P
  const float *w_ip = nullptr, *b_ip = nullptr;  // P x D, P
  const float *w_c = nullptr, *b_c = nullptr;    // H x 2P, H
  const float *w_g1 = nullptr, *b_g1 = nullptr;  // H x 2P, H
  const float *w_g2 = nullptr, *b_g2 = nullptr;  // 1 x H, 1
  const float *w_o = nullptr, *b_o = nullptr;    // D x H, D
};

/// Gradients, same shapes as the weights (overwritten).
struct CombinerGrads {
  float *w_tp, *b_tp, *w_ip, *b_ip, *w_c, *b_c, *w_g1, *b_g1, *w_g2, *b_g2, *w_o, *b_o;
};

/// What backward needs from forward (owned vectors; reuse one across steps to avoid allocation).
struct CombinerCache {
  int64_t b = 0;
  const float* x_t = nullptr;  // the caller keeps the inputs alive until backward
  const float* x_i = nullptr;
  std::vector<float> pt_pre, pi_pre, c, h_pre, h, g_pre, g, lambda, y, norm;
  std::vector<float> mask_t, mask_i, mask_h, mask_g;  // empty without dropout
};

struct CombinerOptions {
  float dropout = 0.0f;   // p in [0, 1); 0: inference
  uint64_t seed = 0;      // dropout masks
};

/// Checks shapes and pointers (kInvalidArg naming the weight), values (kNonFinite).
Status validate_combiner(const CombinerWeights& w);

/// out (B x D). cache may be null (inference). Errors: validate_combiner's, kEmpty (B = 0),
/// kNonFinite (an input), kOutOfMemory, kAborted.
Status combiner_forward(const CombinerWeights& w, const float* x_t, const float* x_i, int64_t b, float* out,
                        const CombinerOptions& opt, CombinerCache* cache, const Context& ctx);

/// From dout (B x D): weight gradients into g, input gradients into dx_t / dx_i (either may be
/// null). kInvalidArg if the cache does not belong to this batch.
Status combiner_backward(const CombinerWeights& w, const CombinerCache& cache, const float* dout,
                         const CombinerGrads& g, float* dx_t, float* dx_i, const Context& ctx);

}  // namespace core
}  // namespace vlk
