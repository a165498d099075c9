// PTHA's training objective on token features (core/compose, seed 001), forward and backward in
// one call, for teams whose encoder (a Q-Former or any token model) trains elsewhere and who want
// the loss and its gradients natively:
//   hop 1  L_align = MSE(mean_k P, sg(mean_k P'))          P: B x K x Dp from (reference, modification)
//                                                           P': B x K' x Dp from (target, reverse mod)
//   hop 2  S[i, j] = max_t f_i . Z[j, t]                    f: B x D composed queries, Z: M x Kt x D
//          L_itc  = CE_ls(scale S, targets)                 (label smoothing, default 0.1)
//   text   S_u[i, j] = max_t u_i . Z[j, t]                  u: B x D text-only queries (optional)
//          L_rtc  = CE_ls(scale S_u, targets)               (default no smoothing, as the paper)
//   L = w_itc L_itc + w_rtc L_rtc + w_align L_align         (defaults 1, 0.4, 0.4)
// targets: row i's positive is target i (M >= B; rows B..M-1 of Z are extra negatives) unless a
// target list is given. Gradients: dP (B x K x Dp, none to P'), df, du (B x D), dZ (M x Kt x D,
// the two contrastive terms summed; tokens never chosen by a max get 0) and d L / d scale (for a
// learned temperature tau = 1 / scale: dL/dtau = -dscale * scale^2). f, u and Z are used as given
// (the paper L2-normalises f, u and each token of Z before; do that upstream, with its Jacobian).
// Building blocks: token_max_similarity (fp32 dots, argmax for the backward), info_nce (float64),
// prototype_alignment (float64).
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/status.hpp"

namespace vlk {
namespace core {

struct TwoHopLossArgs {
  int64_t b = 0;                          // batch
  // Hop 1 (optional: both null, or w_align = 0, skips it).
  const float* prototype = nullptr;       // B x K x Dp
  const float* reverse_prototype = nullptr;  // B x K' x Dp
  int64_t k = 0, k_reverse = 0, dp = 0;
  // Hop 2.
  const float* query = nullptr;           // B x D
  const float* text_query = nullptr;      // B x D, optional (null: no L_rtc)
  const float* target_tokens = nullptr;   // M x Kt x D
  int64_t m = 0, kt = 0, d = 0;
  const int32_t* targets = nullptr;       // optional B target rows in 0..M-1 (null: i -> i, needs M >= B)
  double scale = 1.0 / 0.07;              // 1 / temperature
  double smoothing_itc = 0.1, smoothing_rtc = 0.0;
  double w_itc = 1.0, w_rtc = 0.4, w_align = 0.4;
};

struct TwoHopLossOut {
  double loss = 0, itc = 0, rtc = 0, align = 0;
  double dscale = 0;
  // Optional gradients (null: not computed), overwritten.
  float* dprototype = nullptr;      // B x K x Dp
  float* dquery = nullptr;          // B x D
  float* dtext_query = nullptr;     // B x D
  float* dtarget_tokens = nullptr;  // M x Kt x D
};

/// Errors: kEmpty (a size 0), kInvalidArg (null inputs, weights negative or not finite, a target
/// out of range, scale or smoothing as info_nce), kNonFinite (naming the input), kAborted.
Status two_hop_loss(const TwoHopLossArgs& a, TwoHopLossOut* out, const Context& ctx);

}  // namespace core
}  // namespace vlk
