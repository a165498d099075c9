// Token-max similarity for training (core/compose), PTHA hop 2 (seed 001): for composed queries
// F (B x D) and multi-token targets Z (M x K x D),
//   S[i, j] = max_k F[i] . Z[j, k]        A[i, j] = the argmax k (the first on ties)
// and its backward, which routes each dS[i, j] through the chosen token only:
//   dF[i]       += sum_j dS[i, j] Z[j, A[i, j]]
//   dZ[j, A[i,j]] += dS[i, j] F[i]
// (the max is piecewise linear; at exact ties the subgradient of the first token is used).
// Dots are fp32 with fma over d ascending, like search; the backward accumulates in fp32.
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/status.hpp"

namespace vlk {
namespace core {

struct TokenMaxSimilarityArgs {
  const float* f = nullptr;  // B x D, row-major
  const float* z = nullptr;  // M x K x D, row-major
  int64_t b = 0, m = 0, k = 0, d = 0;
};

/// S (B x M) and A (B x M, int32 token index). Errors: kEmpty (a size 0), kInvalidArg (null),
/// kNonFinite (NaN/Inf in F or Z, naming the row), kAborted.
Status token_max_similarity(const TokenMaxSimilarityArgs& a, float* s, int32_t* argmax, const Context& ctx);

/// Backward: given dS (B x M) and the forward's A, writes dF (B x D) and dZ (M x K x D) (both
/// overwritten; tokens never chosen get 0). kInvalidArg for an argmax outside 0..K-1.
Status token_max_similarity_backward(const TokenMaxSimilarityArgs& a, const float* ds, const int32_t* argmax,
                                     float* df, float* dz, const Context& ctx);

}  // namespace core
}  // namespace vlk
