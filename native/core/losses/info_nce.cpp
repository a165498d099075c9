// In-batch contrastive loss (core/losses). See info_nce.hpp. Rows are independent: each task
// handles whole rows and its own partial sums, summed in row order afterwards (deterministic for
// any thread count).
#include "losses/info_nce.hpp"

#include <cmath>
#include <string>
#include <vector>

#include "common/checked_size.hpp"

namespace vlk {
namespace core {

// Allocation failures inside become kOutOfMemory (no exception leaves core).
static Status info_nce_unguarded(const InfoNceArgs& a, InfoNceOut* out, const Context& ctx);

Status info_nce(const InfoNceArgs& a, InfoNceOut* out, const Context& ctx) {
  return run_guarded("infoNce", [&] { return info_nce_unguarded(a, out, ctx); });
}

static Status info_nce_unguarded(const InfoNceArgs& a, InfoNceOut* out, const Context& ctx) {
  if (a.rows <= 0 || a.cols <= 0) {
    return Status(Code::kEmpty, "scores: " + std::to_string(a.rows) + " x " + std::to_string(a.cols) + " is empty");
  }
  if (a.scores == nullptr || out == nullptr) return Status(Code::kInvalidArg, "info_nce: null argument");
  if (!(a.scale > 0) || !std::isfinite(a.scale)) {
    return Status(Code::kInvalidArg, "scale: " + std::to_string(a.scale) + " is not a finite number > 0 (1 / temperature)");
  }
  if (!(a.label_smoothing >= 0 && a.label_smoothing < 1)) {
    return Status(Code::kInvalidArg, "labelSmoothing: " + std::to_string(a.label_smoothing) + " is not in [0, 1)");
  }
  if (a.targets == nullptr && a.rows > a.cols) {
    return Status(Code::kInvalidArg, "targets: the diagonal needs rows <= cols (" + std::to_string(a.rows) + " x " +
                                         std::to_string(a.cols) + ")");
  }
  for (int64_t i = 0; i < a.rows; ++i) {
    if (a.targets != nullptr && (a.targets[i] < 0 || a.targets[i] >= a.cols)) {
      return Status(Code::kInvalidArg, "targets[" + std::to_string(i) + "]: " + std::to_string(a.targets[i]) +
                                           " is not a column in 0.." + std::to_string(a.cols - 1));
    }
  }
  for (int64_t i = 0; i < a.rows * a.cols; ++i) {
    if (!std::isfinite(a.scores[i])) {
      return Status(Code::kNonFinite, "scores: row " + std::to_string(i / a.cols) + ", column " +
                                          std::to_string(i % a.cols) + " is not finite");
    }
  }
  const int64_t r = a.rows, c = a.cols;
  const double eps = a.label_smoothing, base = eps / double(c), inv_r = 1.0 / double(r);
  std::vector<double> row_loss(static_cast<size_t>(r)), row_dscale(static_cast<size_t>(r));
  auto row = [&](int64_t i) {
    const float* s = a.scores + i * c;
    const int64_t t = a.targets != nullptr ? a.targets[i] : i;
    double mx = -INFINITY;
    for (int64_t j = 0; j < c; ++j) mx = std::fmax(mx, a.scale * double(s[j]));
    double sum = 0;
    for (int64_t j = 0; j < c; ++j) sum += std::exp(a.scale * double(s[j]) - mx);
    const double lse = mx + std::log(sum);
    double loss = 0, ds = 0;
    for (int64_t j = 0; j < c; ++j) {
      const double logit = a.scale * double(s[j]);
      const double y = base + (j == t ? 1.0 - eps : 0.0);
      const double p = std::exp(logit - lse);
      loss -= y * (logit - lse);
      ds += (p - y) * double(s[j]);
      if (out->dscores != nullptr) out->dscores[i * c + j] = static_cast<float>(a.scale * (p - y) * inv_r);
    }
    row_loss[static_cast<size_t>(i)] = loss;
    row_dscale[static_cast<size_t>(i)] = ds;
  };
  if (ctx.pool != nullptr && ctx.threads > 1 && r > 1) {
    ctx.pool->parallel_for(r, ctx.threads, row);
  } else {
    for (int64_t i = 0; i < r; ++i) row(i);
  }
  double loss = 0, dscale = 0;
  for (int64_t i = 0; i < r; ++i) {
    loss += row_loss[static_cast<size_t>(i)];
    dscale += row_dscale[static_cast<size_t>(i)];
  }
  out->loss = loss * inv_r;
  out->dscale = dscale * inv_r;
  return Status::Ok();
}

}  // namespace core
}  // namespace vlk
