// Per-row top-k connectivity of AAHR's in-batch graph (core/graph, seed 004).
// For each row i of S (rows x cols): t_i = the k-th largest value of the row (counting repeated
// values, i.e. the k-th entry of the row sorted in descending order); mask[i, j] = 1 iff
// S[i, j] >= t_i, so ties with t_i are all kept (a row may keep more than k entries). k is either
// given (1..cols) or k = max(1, floor(fraction * cols)) for a fraction in (0, 1] (AAHR:
// int(0.5 * B), top 50%). With keep_diagonal and a square S, mask[i, i] = 1 always (AAHR's
// self-edge, so no row is empty). +-infinity are ordinary values; NaN is an error.
// Output: one uint8 (0 or 1) per entry, row-major.
#pragma once

#include <cstdint>

#include "common/context.hpp"
#include "common/status.hpp"

namespace vlk {
namespace core {

struct RowTopkMaskArgs {
  const float* scores = nullptr;  // rows x cols
  int64_t rows = 0, cols = 0;
  int64_t k = 0;          // > 0: this k; 0: from fraction
  double fraction = 0.0;  // used when k == 0
  bool keep_diagonal = true;
};

/// mask: rows x cols (overwritten). Errors: kEmpty, kInvalidArg (null), kInvalidK (k outside
/// 1..cols, fraction outside (0, 1]), kNonFinite (a NaN in scores, naming row and column).
Status row_topk_mask(const RowTopkMaskArgs& a, uint8_t* mask, const Context& ctx);

}  // namespace core
}  // namespace vlk
