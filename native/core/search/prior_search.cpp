// Prior-fused search (core/search): checks the prior and lambdas, then runs the blocked fusion
// engine (multi_query_search.cpp) with the prior rule. A separate op, not a core::search option:
// the search kernels test raw keys against thresholds in registers; keeping them free of a
// per-item term leaves every search path (filters, token-max, l2, CUDA) and its bit-exactness as is.
#include "search/prior_search.hpp"

#include <cmath>
#include <limits>
#include <string>

#include "search/multi_query_search.hpp"

namespace vlk {
namespace core {

Status prior_search(const PriorSearchArgs& a, int32_t* indices, float* scores, const Context& ctx) {
  const auto& q = a.queries;
  const auto& g = a.gallery;
  if (q.rows <= 0 || q.cols <= 0) {
    return Status(Code::kEmpty, "queries: " + std::to_string(q.rows) + " x " + std::to_string(q.cols) + " is empty");
  }
  if (g.rows <= 0 || g.cols <= 0) {
    return Status(Code::kEmpty, "gallery: " + std::to_string(g.rows) + " x " + std::to_string(g.cols) + " is empty");
  }
  if (q.cols != g.cols) {
    return Status(Code::kDimMismatch, "queries have dim " + std::to_string(q.cols) + " but gallery has dim " +
                                          std::to_string(g.cols));
  }
  if (q.data == nullptr || g.data == nullptr || a.prior == nullptr || a.lambda == nullptr || indices == nullptr ||
      scores == nullptr) {
    return Status(Code::kInvalidArg, "priorSearch: null pointer");
  }
  if (q.stride < q.cols || g.stride < g.cols) return Status(Code::kShape, "priorSearch: stride smaller than cols");
  if (g.rows > std::numeric_limits<int32_t>::max()) {
    return Status(Code::kShape, "gallery: " + std::to_string(g.rows) + " rows exceed the int32 index range");
  }
  if (a.k < 1 || a.k > g.rows) {
    return Status(Code::kInvalidK, "k: " + std::to_string(a.k) + " is not in 1.." + std::to_string(g.rows) +
                                       " (gallery rows)");
  }
  if (a.metric == Metric::kL2) {
    return Status(Code::kInvalidArg, "metric: 'l2' is not supported by priorSearch (relevance must be a "
                                     "similarity: use 'ip' or 'cosine')");
  }
  float pmin = std::numeric_limits<float>::infinity(), pmax = -pmin;
  for (int64_t j = 0; j < g.rows; ++j) {
    if (!std::isfinite(a.prior[j])) {
      return Status(Code::kNonFinite, "prior[" + std::to_string(j) + "] is not finite");
    }
    pmin = std::fmin(pmin, a.prior[j]);
    pmax = std::fmax(pmax, a.prior[j]);
  }
  // |s| stays below 2^125 (squared norms are bounded), so a lambda * prior term of at most 2^126
  // keeps s + term finite.
  const float bound = std::ldexp(1.0f, 126);
  for (int64_t i = 0; i < q.rows; ++i) {
    const float l = a.lambda[i];
    if (!std::isfinite(l)) return Status(Code::kNonFinite, "lambda[" + std::to_string(i) + "] is not finite");
    if (!(std::fabs(l * pmin) <= bound && std::fabs(l * pmax) <= bound)) {
      return Status(Code::kNonFinite, "lambda[" + std::to_string(i) + "] * prior exceeds 2^126 in magnitude "
                                      "(scale the prior or lambda down)");
    }
  }
  FusedTopKArgs f;
  f.queries = q;
  f.gallery = g;
  f.r = 1;
  f.k = a.k;
  f.metric = a.metric;
  f.rule = FuseRule::kPrior;
  f.prior = a.prior;
  f.lambda = a.lambda;
  f.op = "priorSearch";
  return fused_top_k(f, indices, scores, ctx);
}

}  // namespace core
}  // namespace vlk
