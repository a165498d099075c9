// Pairwise preference loss (core/losses), the DPO-style objective of seed 000 (papers.md 000): per
// pair h = (s_w - r_w) - (s_l - r_l) (policy s, frozen reference r, winner w, loser l),
//   L = -(1 - eps) log sigma(beta h) - eps log sigma(-beta h),  dL/dh = beta [eps sigma(beta h) - (1 - eps) sigma(-beta h)],
// reduced by mean or sum over the P pairs. Pairs come as four P-vectors, or as (query, winner,
// loser) triples into Q x N score matrices (the gradient scattered into Q x N). float64 inside.
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/status.hpp"

namespace vlk {
namespace core {

struct PreferenceLossArgs {
  int64_t pairs = 0;  // P >= 1
  // Pair form (scores == nullptr): four P-vectors.
  const float* policy_chosen = nullptr;
  const float* policy_rejected = nullptr;
  const float* reference_chosen = nullptr;
  const float* reference_rejected = nullptr;
  // Matrix form: Q x N row-major policy and reference scores, P x 3 (query, winner, loser) ids.
  const float* scores = nullptr;
  const float* reference_scores = nullptr;
  int64_t q = 0, n = 0;
  const int32_t* pair_ids = nullptr;
  double beta = 10.0;             // beta' = beta / tau, finite > 0
  double label_smoothing = 0.0;   // eps in [0, 1)
  bool sum = false;               // reduction: sum (true) or mean over pairs
};

struct PreferenceLossOut {
  double loss = 0;
  float* d_chosen = nullptr;    // pair form, optional: P, dL/ds_w
  float* d_rejected = nullptr;  // pair form, optional: P, dL/ds_l
  float* dscores = nullptr;     // matrix form, optional: Q x N, zeroed by the caller; repeated items accumulate
  int64_t preferred = 0;        // pairs with h > 0 (the policy already prefers the winner more than the reference)
};

/// Numerically stable for any |beta h| (log-sigmoid as min(x, 0) - log1p(exp(-|x|))). The loss is
/// summed in fixed chunks of pairs, so it does not depend on ctx.threads; dscores are accumulated
/// in pair order on one thread. The reference scores get no gradient (frozen).
/// Errors: kEmpty (P = 0, Q or N = 0), kInvalidArg (beta, smoothing, a pair id outside its range or
/// a pair whose winner is its loser, null pointers), kNonFinite (naming the array and element).
Status preference_loss(const PreferenceLossArgs& a, PreferenceLossOut* out, const Context& ctx);

}  // namespace core
}  // namespace vlk
