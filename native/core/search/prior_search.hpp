// Score-fusion search with a per-item prior (core/search, seed 000's aesthetic re-ranking): queries
// Q x D against a gallery N x D, final(q, j) = relevance(q, j) + lambda_q * prior[j] in fp32, and
// the exact top-k of that final score (Q x k, best first, ties by lower gallery index).
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/matrix.hpp"
#include "common/status.hpp"
#include "search/search.hpp"

namespace vlk {
namespace core {

struct PriorSearchArgs {
  MatrixView<const float> queries;  // Q x D
  MatrixView<const float> gallery;  // N x D
  int64_t k = 0;                    // 1..N
  Metric metric = Metric::kCosine;  // ip or cosine (relevance is a similarity)
  const float* prior = nullptr;     // N values
  const float* lambda = nullptr;    // Q values (one per query: a group shares its value)
};

/// final = fp32(s + fp32(lambda_q * prior_j)), s the fp32 gemm score of multi_query_search.hpp
/// (ip, or cosine with fp32 inverse norms). The prior enters where a candidate's score meets the
/// top-k threshold, so the list is exact for the final score (not a re-sort of a truncated list).
/// Errors: kEmpty, kDimMismatch, kShape, kInvalidK, kInvalidArg (metric l2), kNonFinite (NaN/Inf in
/// an input, prior or lambda; lambda * prior or a final score beyond float32), kAborted,
/// kOutOfMemory. Results do not depend on the thread count or ISA.
Status prior_search(const PriorSearchArgs& args, int32_t* indices, float* scores, const Context& ctx);

}  // namespace core
}  // namespace vlk
