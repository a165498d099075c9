// Max-k pooling of local tokens (core/pooling, AAHR encoders step 1, seed 004):
//   r[b, e] = (1 / k_b) * sum of the k_b largest values of X[b, t, e] over the valid tokens
//             t < len_b,                      k_b = min(k, len_b)   (k clipped to the length)
// i.e. a per-dimension mean of the top-k values (AAHR: k = 2). Padding tokens (t >= len_b) are
// never read for selection and may hold anything. Ties: among equal values the lower token index
// is chosen first (a strict ">" scan in token order), so the selection is deterministic.
// Backward: dX[b, t, e] = dr[b, e] / k_b for the chosen tokens t, 0 elsewhere (padding included);
// the selection is recomputed from X exactly as the forward made it.
// Accumulation in double, output rounded to fp32. Threaded over the batch (results independent
// of the thread count).
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/status.hpp"

namespace vlk {
namespace core {

struct MaxkPoolArgs {
  const float* x = nullptr;          // B x n x D tokens
  int64_t b = 0, n = 0, d = 0;
  const int32_t* lengths = nullptr;  // B valid-token counts in 1..n; null: all n
  int64_t k = 2;                     // >= 1
};

/// out: B x D. Errors: kEmpty (a size 0), kInvalidK (k < 1), kInvalidArg (null x, a length
/// outside 1..n), kNonFinite (a valid token holds NaN/Inf), kAborted.
Status maxk_pool(const MaxkPoolArgs& a, float* out, const Context& ctx);

/// dout: B x D upstream gradient; dx: B x n x D, overwritten. Errors as maxk_pool, plus
/// kNonFinite for dout.
Status maxk_pool_backward(const MaxkPoolArgs& a, const float* dout, float* dx, const Context& ctx);

}  // namespace core
}  // namespace vlk
