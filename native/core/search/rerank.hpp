// Exact re-ranking of per-query candidate lists (core/search): each query scores only its own
// gallery rows, given as CSR (offsets + rows), and keeps the best k. For candidate sets of 10-15
// (GeneCIS-style) and for the candidates an approximate vector engine returned. Scores are computed
// exactly as search computes them, so rerank equals a search restricted to those rows, bit for bit.
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/matrix.hpp"
#include "common/status.hpp"
#include "search/search.hpp"

namespace vlk {
namespace core {

struct RerankArgs {
  MatrixView<const float> queries;  // Q x D, row-major
  MatrixView<const float> gallery;  // N x D, row-major
  const int64_t* offsets = nullptr;  // Q + 1, offsets[0] = 0, non-decreasing
  const int32_t* rows = nullptr;     // query q's candidates: rows[offsets[q] .. offsets[q + 1]),
                                     // any order; a row listed twice counts once
  int64_t k = 0;                     // >= 1; a query with fewer candidates returns them all
  Metric metric = Metric::kInnerProduct;
};

struct RerankOut {
  int32_t* indices = nullptr;  // Q x k gallery rows, best first (ties: lower row); padding -1
  float* scores = nullptr;     // Q x k, as search reports them; padding NaN
  int32_t* counts = nullptr;   // Q: valid entries per row
};

/// Errors: kEmpty (Q, N or D is 0), kDimMismatch, kShape (N beyond int32), kInvalidK (k < 1),
/// kInvalidArg (offsets not starting at 0 or decreasing, a row outside 0..N-1), kNonFinite (NaN or
/// infinity in a query or a candidate row, or magnitudes whose products overflow fp32), kAborted,
/// kOutOfMemory.
Status rerank(const RerankArgs& args, const RerankOut& out, const Context& ctx);

}  // namespace core
}  // namespace vlk
