// One graph convolution (core/graph). See gcn.hpp. Products through the fp32 GEMM with rows split
// over the pool, elementwise passes by rows: results do not depend on the thread count.
#include "graph/gcn.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "common/block_cache.hpp"
#include "graph/graph_common.hpp"

namespace vlk {
namespace core {

namespace {

using graph_detail::check_finite;
using graph_detail::for_rows;
using graph_detail::matmul;

constexpr float kOne = 1.0f;

Status check_args(const GcnArgs& a) {
  if (a.n <= 0 || a.din <= 0 || a.dout <= 0) {
    return Status(Code::kEmpty, "gcn: n = " + std::to_string(a.n) + ", Din = " + std::to_string(a.din) +
                                    ", Dout = " + std::to_string(a.dout) + " (each must be >= 1)");
  }
  if (a.adjacency == nullptr || a.input == nullptr || a.weight == nullptr) {
    return Status(Code::kInvalidArg, "gcn: adjacency, input and weight are required");
  }
  if (!(a.slope >= 0) || !std::isfinite(a.slope)) {
    return Status(Code::kInvalidArg, "options.slope: " + std::to_string(a.slope) + " is not a finite number >= 0");
  }
  VLK_RETURN_IF_ERROR(check_finite("adjacency", a.adjacency, a.n, a.n));
  VLK_RETURN_IF_ERROR(check_finite("input", a.input, a.n, a.din));
  VLK_RETURN_IF_ERROR(check_finite("weight", a.weight, a.din, a.dout));
  if (a.bias != nullptr) VLK_RETURN_IF_ERROR(check_finite("bias", a.bias, 1, a.dout));
  return Status::Ok();
}

// (p > 0 ? 1 : slope) as a bit blend: written as a select, the compiler drops the multiply by 1 and
// branches on the sign, which random signs mispredict half the time (13% of a gcn step); the
// integer and / or form is branch-free and vectorizes (compare, and, andnot, or).
inline float leaky_factor(float p, float slope) {
  const uint32_t pos = 0u - static_cast<uint32_t>(p > 0.0f);
  uint32_t one, s;
  std::memcpy(&one, &kOne, sizeof one);
  std::memcpy(&s, &slope, sizeof s);
  const uint32_t bits = (one & pos) | (s & ~pos);
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// y = LeakyReLU(y) in place.
void leaky_relu_row(float* __restrict y, int64_t len, float slope) {
  for (int64_t o = 0; o < len; ++o) y[o] = y[o] * leaky_factor(y[o], slope);
}

// dp = dy * (p > 0 ? 1 : slope), on the pre-activation's sign.
void leaky_relu_grad_row(const float* __restrict dy, const float* __restrict p, float* __restrict dp, int64_t len,
                         float slope) {
  for (int64_t o = 0; o < len; ++o) dp[o] = dy[o] * leaky_factor(p[o], slope);
}

// P = A H + 1 b^T into p (n x dout).
Status pre_activation(const GcnArgs& a, const float* h, float* p, const Context& ctx) {
  const int64_t n = a.n, dout = a.dout;
  float beta = 0.0f;
  if (a.bias != nullptr) {
    for_rows(n, ctx, [&](int64_t i) {
      for (int64_t o = 0; o < dout; ++o) p[i * dout + o] = a.bias[o];
    });
    beta = 1.0f;
  }
  return matmul(false, false, n, dout, n, a.adjacency, h, p, beta, ctx);
}

}  // namespace

Status gcn(const GcnArgs& a, float* output, float* hidden, const Context& ctx) {
  VLK_RETURN_IF_ERROR(check_args(a));
  if (output == nullptr) return Status(Code::kInvalidArg, "gcn: null output");
  const int64_t n = a.n, dout = a.dout;
  try {
    CachedArray<float> own;
    float* h = hidden;
    if (h == nullptr) {
      own.reset(static_cast<size_t>(n * dout));
      h = own.data();
    }
    VLK_RETURN_IF_ERROR(matmul(false, false, n, dout, a.din, a.input, a.weight, h, 0.0f, ctx));
    if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
    VLK_RETURN_IF_ERROR(pre_activation(a, h, output, ctx));
    const float slope = static_cast<float>(a.slope);
    for_rows(n, ctx, [output, dout, slope](int64_t i) { leaky_relu_row(output + i * dout, dout, slope); });
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "gcn: out of memory");
  }
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  return Status::Ok();
}

Status gcn_backward(const GcnArgs& a, const float* grad_output, const float* output, const float* hidden,
                    const GcnGrads& g, const Context& ctx) {
  VLK_RETURN_IF_ERROR(check_args(a));
  if (grad_output == nullptr) return Status(Code::kInvalidArg, "gcn backward: gradOutput is required");
  VLK_RETURN_IF_ERROR(check_finite("gradOutput", grad_output, a.n, a.dout));
  const int64_t n = a.n, din = a.din, dout = a.dout;
  try {
    CachedArray<float> h_own, p_own;
    const float* h = hidden;
    if (h == nullptr) {
      h_own.reset(static_cast<size_t>(n * dout));
      VLK_RETURN_IF_ERROR(matmul(false, false, n, dout, din, a.input, a.weight, h_own.data(), 0.0f, ctx));
      h = h_own.data();
    }
    const float* p = output;  // only its sign is read: Y > 0 iff P > 0
    if (p == nullptr) {
      p_own.reset(static_cast<size_t>(n * dout));
      VLK_RETURN_IF_ERROR(pre_activation(a, h, p_own.data(), ctx));
      p = p_own.data();
    }
    if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
    CachedArray<float> dp(static_cast<size_t>(n * dout));
    const float slope = static_cast<float>(a.slope);
    float* dpp = dp.data();
    for_rows(n, ctx, [dpp, grad_output, p, dout, slope](int64_t i) {
      leaky_relu_grad_row(grad_output + i * dout, p + i * dout, dpp + i * dout, dout, slope);
    });
    if (g.bias != nullptr) {  // column sums in float64, rows in order; column chunks on the pool
      constexpr int64_t kChunk = 64;
      for_rows((dout + kChunk - 1) / kChunk, ctx, [&](int64_t c) {
        const int64_t o0 = c * kChunk, o1 = std::min(dout, o0 + kChunk);
        double acc[kChunk] = {};
        for (int64_t i = 0; i < n; ++i) {
          for (int64_t o = o0; o < o1; ++o) acc[o - o0] += dp[i * dout + o];
        }
        for (int64_t o = o0; o < o1; ++o) g.bias[o] = static_cast<float>(acc[o - o0]);
      });
    }
    if (g.adjacency != nullptr) {
      VLK_RETURN_IF_ERROR(matmul(false, true, n, n, dout, dp.data(), h, g.adjacency, 0.0f, ctx));
    }
    if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
    if (g.input != nullptr || g.weight != nullptr) {
      CachedArray<float> dh(static_cast<size_t>(n * dout));
      VLK_RETURN_IF_ERROR(matmul(true, false, n, dout, n, a.adjacency, dp.data(), dh.data(), 0.0f, ctx));
      if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
      if (g.weight != nullptr) {
        VLK_RETURN_IF_ERROR(matmul(true, false, din, dout, n, a.input, dh.data(), g.weight, 0.0f, ctx));
      }
      if (g.input != nullptr) {
        VLK_RETURN_IF_ERROR(matmul(false, true, n, din, dout, dh.data(), a.weight, g.input, 0.0f, ctx));
      }
    }
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "gcn backward: out of memory");
  }
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  return Status::Ok();
}

}  // namespace core
}  // namespace vlk
