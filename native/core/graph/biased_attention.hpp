// AAHR's biased multi-head attention layer over the in-batch graph (core/graph, seed 004), forward
// and backward: "one Transformer encoder layer (16 heads, post-LN) over the 2B nodes with additive
// attention bias w * R_all where connected and -inf elsewhere". The attention block and its
// residual + LayerNorm (PyTorch nn.TransformerEncoderLayer's self-attention half and norm1):
//   Q = X Wq^T + bq,  K = X Wk^T + bk,  V = X Wv^T + bv         X: n x D, W*: D x D (out x in, nn.Linear)
//   per head h (dh = D / heads, columns h*dh .. h*dh+dh-1):
//     S_h[i, j] = Q_h[i] . K_h[j] / sqrt(dh) + w * R[i, j]      where connected(i, j)
//               = -inf                                          elsewhere
//     P_h = softmax over each row of S_h,  O_h = P_h V_h
//   O = concat_h O_h (n x D),  A = O Wo^T + bo
//   Z = X + A,  Y = gamma * (Z - mean(Z_i)) / sqrt(var(Z_i) + eps) + beta   (per row, biased var,
//   eps 1e-5 default, as nn.LayerNorm)
// connected(i, j) = mask[i, j] == 1, and the diagonal is always connected (self_loops, the AAHR
// mask always contains the self-edge): a row whose only connected entry is itself attends to
// itself alone (P = 1 there). With self_loops false a row with no connected entry is kEmpty
// (never a NaN row). Mask entries must be 0 or 1. The bias is shared by every head.
// Out of scope (documented): the FFN half of the encoder layer (linear1/ReLU/linear2 + norm2),
// dropout (eval / no-dropout semantics; AAHR trains with dropout 0.1), and the final L2 norm of
// AAHR's y_v, y_t: compose those upstream/downstream.
//
// Attention core, flash-style: per (query block, head) the key blocks stream through an online
// softmax (running max m and sum l, output rescaled), so no n x n matrix of a head is stored (only
// a block_q x block_k tile); the forward keeps lse = m + log l per (head, row). The backward
// (FlashAttention-2) recomputes P = exp(S - lse) block by block with Delta_i = rowsum(dO_i * O_i):
//   dP = dO_h V_h^T,  dS = P * (dP - Delta),  dQ_h = dS K_h / sqrt(dh),  dK_h = dS^T Q_h / sqrt(dh),
//   dV_h = P^T dO_h,  dR = w * sum_h dS_h on connected entries (0 elsewhere),
//   dw = sum_{connected} R * sum_h dS_h.
// Two deterministic passes: one task per query block (all heads, in order) writes dQ rows and dR
// rows; one task per (head, key block) writes dK and dV rows (S and dP are recomputed in both):
// every output has one owner, so results do not depend on the thread count. Projections, their
// gradients and the output projection use linalg/gemm (fp32); LayerNorm statistics and the bias
// and gamma/beta column sums accumulate in float64. The tile products within the attention run
// linalg's register-tile kernel (gemm_kernel.hpp) directly on per-head packed panels of Q, K, V,
// dO (packed once per call), one task per tile row/column on the pool; tile sizes are block_q
// rounded up to the kernel's MR rows and block_k to its NR columns (8 x 32 with AVX-512), so the
// result depends on the ISA and the block sizes by rounding only, never on the thread count.
// Softmax exponentials use a Cephes-style fp32 exp (relative error ~1e-7), vectorised per ISA.
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/status.hpp"

namespace vlk {
namespace core {

struct BiasedAttentionArgs {
  int64_t n = 0;      // nodes (2B in AAHR)
  int64_t d = 0;      // model width D
  int64_t heads = 0;  // D % heads == 0
  const float* x = nullptr;                                          // n x D
  const float* wq = nullptr, *wk = nullptr, *wv = nullptr, *wo = nullptr;  // D x D each (out x in)
  const float* bq = nullptr, *bk = nullptr, *bv = nullptr, *bo = nullptr;  // D each
  const float* gamma = nullptr, *beta = nullptr;                    // D each (LayerNorm)
  const float* relevance = nullptr;  // R: n x n (only connected entries are read for the bias)
  const uint8_t* mask = nullptr;     // n x n, 1 = connected, 0 = not
  double bias_weight = 1.0;          // w (AAHR's mask_weight: 1.0 Flickr30K, 1.5 COCO)
  double eps = 1e-5;                 // LayerNorm eps
  bool self_loops = true;            // the diagonal is always connected
  int64_t block_q = 64, block_k = 128;  // tile sizes (any >= 1, rounded up to the kernel tile; rounding-only effect)
};

/// What the forward keeps for the backward (caller-owned buffers, all written by the forward).
struct BiasedAttentionSaved {
  float* q = nullptr;     // n x D (bias included)
  float* k = nullptr;     // n x D
  float* v = nullptr;     // n x D
  float* o = nullptr;     // n x D, the heads' outputs before Wo
  float* lse = nullptr;   // heads x n, log-sum-exp of each score row
  float* xhat = nullptr;  // n x D, (Z - mean) * rstd
  float* rstd = nullptr;  // n, 1 / sqrt(var + eps)
};

/// Gradients of sum(Y * dY) (all required, overwritten).
struct BiasedAttentionGrads {
  float* dx = nullptr;                                              // n x D
  float* dwq = nullptr, *dwk = nullptr, *dwv = nullptr, *dwo = nullptr;  // D x D
  float* dbq = nullptr, *dbk = nullptr, *dbv = nullptr, *dbo = nullptr;  // D
  float* dgamma = nullptr, *dbeta = nullptr;                        // D
  float* drelevance = nullptr;                                      // n x n (0 where not connected)
  double dbias_weight = 0;                                          // dL/dw
};

/// Y (n x D) and, when `saved` is non-null, the tensors the backward needs. Errors: kEmpty (n, D or
/// heads 0; a row with no connected entry when self_loops is false), kInvalidArg (null input,
/// D % heads != 0, a mask entry other than 0/1, w or eps not finite / eps <= 0, block size < 1),
/// kNonFinite (an input value, naming it, its row and element; or scores overflowing float),
/// kOutOfMemory, kAborted.
Status biased_attention(const BiasedAttentionArgs& a, float* y, BiasedAttentionSaved* saved, const Context& ctx);

/// Gradients given dY (n x D). `saved`: the forward's tensors for the same args; null recomputes
/// the forward first. Errors as the forward, plus kNonFinite for dY.
Status biased_attention_backward(const BiasedAttentionArgs& a, const BiasedAttentionSaved* saved, const float* dy,
                                 BiasedAttentionGrads* grads, const Context& ctx);

}  // namespace core
}  // namespace vlk
