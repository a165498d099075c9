// Exponential moving average of weights (core/memory). See ema_update.hpp.
#include "memory/ema_update.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace vlk {
namespace core {

namespace {

std::string pair_name(const char* const* names, int64_t p, const char* side) {
  if (names != nullptr && names[p] != nullptr) return std::string(side) + " '" + names[p] + "'";
  return std::string(side) + (p == 0 ? "" : "[" + std::to_string(p) + "]");
}

Status check_finite(const float* x, int64_t n, const std::string& name) {
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) return Status(Code::kNonFinite, name + ": element " + std::to_string(i) + " is not finite");
  }
  return Status::Ok();
}

}  // namespace

Status ema_update(const EmaPair* pairs, int64_t count, double momentum, const char* const* names, const Context& ctx) {
  if (!(momentum >= 0 && momentum <= 1)) {
    return Status(Code::kInvalidArg, "momentum: " + std::to_string(momentum) + " is not a number in [0, 1]");
  }
  if (count > 0 && pairs == nullptr) return Status(Code::kInvalidArg, "emaUpdate: null pairs");
  for (int64_t p = 0; p < count; ++p) {
    const EmaPair& e = pairs[p];
    if (e.n < 0 || (e.n > 0 && (e.target == nullptr || e.source == nullptr))) {
      return Status(Code::kInvalidArg, "emaUpdate: null or negative-length pair " + std::to_string(p));
    }
    if (e.n > 0 && e.target != e.source && e.target < e.source + e.n && e.source < e.target + e.n) {
      return Status(Code::kInvalidArg, pair_name(names, p, "target") + " overlaps its source");
    }
    VLK_RETURN_IF_ERROR(check_finite(e.target, e.n, pair_name(names, p, "target")));
    VLK_RETURN_IF_ERROR(check_finite(e.source, e.n, pair_name(names, p, "source")));
  }
  const double m = momentum, r = 1.0 - momentum;
  constexpr int64_t kChunk = int64_t{1} << 16;
  for (int64_t p = 0; p < count; ++p) {
    const EmaPair& e = pairs[p];
    auto chunk = [&](int64_t c) {
      const int64_t lo = c * kChunk, hi = std::min(e.n, lo + kChunk);
      for (int64_t i = lo; i < hi; ++i) e.target[i] = static_cast<float>(m * double(e.target[i]) + r * double(e.source[i]));
    };
    const int64_t chunks = (e.n + kChunk - 1) / kChunk;
    if (ctx.pool != nullptr && ctx.threads > 1 && chunks > 4) {
      ctx.pool->parallel_for(chunks, ctx.threads, chunk);
    } else {
      for (int64_t c = 0; c < chunks; ++c) chunk(c);
    }
  }
  return Status::Ok();
}

}  // namespace core
}  // namespace vlk
