// Per-row top-k connectivity (core/graph). See row_topk_mask.hpp. One task per row: the row is
// copied, nth_element finds the k-th largest, then a comparison pass writes the row's mask.
#include "graph/row_topk_mask.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <new>
#include <string>
#include <vector>

#include "graph/graph_common.hpp"

namespace vlk {
namespace core {

Status row_topk_mask(const RowTopkMaskArgs& a, uint8_t* mask, const Context& ctx) {
  if (a.rows <= 0 || a.cols <= 0) {
    return Status(Code::kEmpty, "scores: " + std::to_string(a.rows) + " x " + std::to_string(a.cols) + " is empty");
  }
  if (a.scores == nullptr || mask == nullptr) return Status(Code::kInvalidArg, "rowTopkMask: null argument");
  int64_t k = a.k;
  if (k == 0) {
    if (!(a.fraction > 0 && a.fraction <= 1)) {
      return Status(Code::kInvalidK, "options.fraction: " + std::to_string(a.fraction) + " is not in (0, 1]");
    }
    k = std::max<int64_t>(1, static_cast<int64_t>(std::floor(a.fraction * static_cast<double>(a.cols))));
  }
  if (k < 1 || k > a.cols) {
    return Status(Code::kInvalidK, "options.k: " + std::to_string(k) + " is not in 1.." + std::to_string(a.cols) +
                                       " (the row length)");
  }
  const int64_t total = a.rows * a.cols;
  for (int64_t i = 0; i < total; ++i) {
    if (std::isnan(a.scores[i])) {
      return Status(Code::kNonFinite, "scores: row " + std::to_string(i / a.cols) + ", column " +
                                          std::to_string(i % a.cols) + " is NaN");
    }
  }
  const int64_t n = a.cols;
  const bool diag = a.keep_diagonal && a.rows == a.cols;
  std::atomic<bool> oom{false};
  graph_detail::for_rows(a.rows, ctx, [&](int64_t i) {
    const float* row = a.scores + i * n;
    std::vector<float> tmp;
    try {
      tmp.assign(row, row + n);
    } catch (const std::bad_alloc&) {
      oom = true;
      return;
    }
    std::nth_element(tmp.begin(), tmp.begin() + (k - 1), tmp.end(), std::greater<float>());
    const float t = tmp[static_cast<size_t>(k - 1)];
    uint8_t* m = mask + i * n;
    for (int64_t j = 0; j < n; ++j) m[j] = row[j] >= t ? 1 : 0;
    if (diag) m[i] = 1;
  });
  if (oom) return Status(Code::kOutOfMemory, "rowTopkMask: out of memory");
  return Status::Ok();
}

}  // namespace core
}  // namespace vlk
