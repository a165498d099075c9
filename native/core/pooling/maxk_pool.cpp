// Max-k pooling (core/pooling). See maxk_pool.hpp.
#include "pooling/maxk_pool.hpp"

#include <string>
#include <vector>

#include "common/checked_size.hpp"
#include "pooling/pooling_detail.hpp"

namespace vlk {
namespace core {

namespace {

Status validate(const MaxkPoolArgs& a) {
  if (a.b <= 0 || a.n <= 0 || a.d <= 0) {
    return Status(Code::kEmpty, "maxkPool: B, n and D must be >= 1 (got B = " + std::to_string(a.b) + ", n = " +
                                    std::to_string(a.n) + ", D = " + std::to_string(a.d) + ")");
  }
  if (a.k < 1) return Status(Code::kInvalidK, "maxkPool: k = " + std::to_string(a.k) + " is not >= 1");
  if (a.x == nullptr) return Status(Code::kInvalidArg, "maxkPool: x is null");
  VLK_RETURN_IF_ERROR(gl_detail::check_lengths("lengths", a.lengths, a.b, a.n));
  return gl_detail::check_tokens("x", a.x, a.lengths, a.b, a.n, a.d);
}

// Token indices of the k largest values of column e of item b, best first (ties: lower index).
// sel has room for k entries; returns how many were chosen (min(k, len)).
int64_t select(const MaxkPoolArgs& a, int64_t b, int64_t e, int64_t len, int64_t k, int64_t* sel) {
  const float* base = a.x + b * a.n * a.d + e;
  int64_t cnt = 0;
  for (int64_t t = 0; t < len; ++t) {
    const float v = base[t * a.d];
    if (cnt == k && !(v > base[sel[k - 1] * a.d])) continue;
    int64_t pos = cnt < k ? cnt++ : k - 1;
    // Strict ">" keeps an earlier equal value ahead of a later one.
    while (pos > 0 && v > base[sel[pos - 1] * a.d]) {
      sel[pos] = sel[pos - 1];
      --pos;
    }
    sel[pos] = t;
  }
  return cnt;
}

}  // namespace

// Allocation failures inside become kOutOfMemory (no exception leaves core).
static Status maxk_pool_unguarded(const MaxkPoolArgs& a, float* out, const Context& ctx);

Status maxk_pool(const MaxkPoolArgs& a, float* out, const Context& ctx) {
  return run_guarded("maxkPool", [&] { return maxk_pool_unguarded(a, out, ctx); });
}

static Status maxk_pool_unguarded(const MaxkPoolArgs& a, float* out, const Context& ctx) {
  VLK_RETURN_IF_ERROR(validate(a));
  if (out == nullptr) return Status(Code::kInvalidArg, "maxkPool: null output");
  gl_detail::parallel(ctx, a.b, [&](int64_t b) {
    const int64_t len = a.lengths == nullptr ? a.n : a.lengths[b];
    const int64_t k = a.k < len ? a.k : len;
    std::vector<int64_t> sel(static_cast<size_t>(k));
    for (int64_t e = 0; e < a.d; ++e) {
      const int64_t c = select(a, b, e, len, k, sel.data());
      double s = 0;
      for (int64_t j = 0; j < c; ++j) s += a.x[(b * a.n + sel[j]) * a.d + e];
      out[b * a.d + e] = static_cast<float>(s / static_cast<double>(c));
    }
  });
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  return Status::Ok();
}

// Allocation failures inside become kOutOfMemory (no exception leaves core).
static Status maxk_pool_backward_unguarded(const MaxkPoolArgs& a, const float* dout, float* dx, const Context& ctx);

Status maxk_pool_backward(const MaxkPoolArgs& a, const float* dout, float* dx, const Context& ctx) {
  return run_guarded("maxkPoolBackward", [&] { return maxk_pool_backward_unguarded(a, dout, dx, ctx); });
}

static Status maxk_pool_backward_unguarded(const MaxkPoolArgs& a, const float* dout, float* dx, const Context& ctx) {
  VLK_RETURN_IF_ERROR(validate(a));
  if (dout == nullptr || dx == nullptr) return Status(Code::kInvalidArg, "maxkPool backward: null gradient");
  VLK_RETURN_IF_ERROR(gl_detail::check_finite("dout", dout, a.b, a.d));
  gl_detail::parallel(ctx, a.b, [&](int64_t b) {
    const int64_t len = a.lengths == nullptr ? a.n : a.lengths[b];
    const int64_t k = a.k < len ? a.k : len;
    float* g = dx + b * a.n * a.d;
    for (int64_t i = 0; i < a.n * a.d; ++i) g[i] = 0.0f;
    std::vector<int64_t> sel(static_cast<size_t>(k));
    for (int64_t e = 0; e < a.d; ++e) {
      const int64_t c = select(a, b, e, len, k, sel.data());
      const float v = static_cast<float>(double(dout[b * a.d + e]) / static_cast<double>(c));
      for (int64_t j = 0; j < c; ++j) g[sel[j] * a.d + e] = v;
    }
  });
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  return Status::Ok();
}

}  // namespace core
}  // namespace vlk
