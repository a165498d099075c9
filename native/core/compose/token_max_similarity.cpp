// Token-max similarity (core/compose). See token_max_similarity.hpp. Forward: one task per block
// of queries; per (query, target) the K token dots are plain fp32 fma loops the compiler
// vectorizes over tokens in groups. Backward: dF by rows of F (each task owns its rows), dZ by
// targets (each task owns its targets), so no two threads write the same output.
#include "compose/token_max_similarity.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

namespace vlk {
namespace core {

namespace {

Status validate(const TokenMaxSimilarityArgs& a) {
  if (a.b <= 0 || a.m <= 0 || a.k <= 0 || a.d <= 0) {
    return Status(Code::kEmpty, "token-max similarity: B, M, K and D must be >= 1 (got " + std::to_string(a.b) +
                                    ", " + std::to_string(a.m) + ", " + std::to_string(a.k) + ", " +
                                    std::to_string(a.d) + ")");
  }
  if (a.f == nullptr || a.z == nullptr) return Status(Code::kInvalidArg, "token-max similarity: null input");
  for (int64_t i = 0; i < a.b * a.d; ++i) {
    if (!std::isfinite(a.f[i])) {
      return Status(Code::kNonFinite, "queries: row " + std::to_string(i / a.d) + ", column " +
                                          std::to_string(i % a.d) + " is not finite");
    }
  }
  for (int64_t i = 0; i < a.m * a.k * a.d; ++i) {
    if (!std::isfinite(a.z[i])) {
      return Status(Code::kNonFinite, "targets: target " + std::to_string(i / (a.k * a.d)) + ", token " +
                                          std::to_string((i / a.d) % a.k) + ", column " + std::to_string(i % a.d) +
                                          " is not finite");
    }
  }
  return Status::Ok();
}

template <typename Fn>
void run_tasks(int64_t n, const Context& ctx, Fn fn) {
  if (ctx.pool != nullptr && ctx.threads > 1 && n > 1) {
    ctx.pool->parallel_for(n, ctx.threads, [&](int64_t i) { fn(i); });
  } else {
    for (int64_t i = 0; i < n; ++i) fn(i);
  }
}

}  // namespace

Status token_max_similarity(const TokenMaxSimilarityArgs& a, float* s, int32_t* argmax, const Context& ctx) {
  VLK_RETURN_IF_ERROR(validate(a));
  if (s == nullptr || argmax == nullptr) return Status(Code::kInvalidArg, "token-max similarity: null output");
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  const int64_t d = a.d, k = a.k;
  run_tasks(a.b, ctx, [&](int64_t i) {
    const float* fi = a.f + i * d;
    for (int64_t j = 0; j < a.m; ++j) {
      float best = 0.0f;
      int32_t arg = 0;
      for (int64_t t = 0; t < k; ++t) {
        const float* zt = a.z + (j * k + t) * d;
        float acc = 0.0f;
        for (int64_t c = 0; c < d; ++c) acc = std::fma(fi[c], zt[c], acc);
        if (t == 0 || acc > best) {
          best = acc;
          arg = static_cast<int32_t>(t);
        }
      }
      s[i * a.m + j] = best;
      argmax[i * a.m + j] = arg;
    }
  });
  return ctx.cancelled() ? Status(Code::kAborted, "aborted") : Status::Ok();
}

Status token_max_similarity_backward(const TokenMaxSimilarityArgs& a, const float* ds, const int32_t* argmax,
                                     float* df, float* dz, const Context& ctx) {
  VLK_RETURN_IF_ERROR(validate(a));
  if (ds == nullptr || argmax == nullptr || df == nullptr || dz == nullptr) {
    return Status(Code::kInvalidArg, "token-max similarity backward: null argument");
  }
  for (int64_t i = 0; i < a.b * a.m; ++i) {
    if (argmax[i] < 0 || argmax[i] >= a.k) {
      return Status(Code::kInvalidArg, "argmax[" + std::to_string(i) + "]: " + std::to_string(argmax[i]) +
                                           " is not a token index in 0.." + std::to_string(a.k - 1));
    }
    if (!std::isfinite(ds[i])) return Status(Code::kNonFinite, "dS: entry " + std::to_string(i) + " is not finite");
  }
  const int64_t d = a.d, k = a.k;
  // dF: row i gathers its chosen tokens.
  run_tasks(a.b, ctx, [&](int64_t i) {
    float* out = df + i * d;
    std::fill(out, out + d, 0.0f);
    for (int64_t j = 0; j < a.m; ++j) {
      const float g = ds[i * a.m + j];
      if (g == 0.0f) continue;
      const float* zt = a.z + (j * k + argmax[i * a.m + j]) * d;
      for (int64_t c = 0; c < d; ++c) out[c] = std::fma(g, zt[c], out[c]);
    }
  });
  // dZ: target j scatters from every query into its chosen token.
  run_tasks(a.m, ctx, [&](int64_t j) {
    float* out = dz + j * k * d;
    std::fill(out, out + k * d, 0.0f);
    for (int64_t i = 0; i < a.b; ++i) {
      const float g = ds[i * a.m + j];
      if (g == 0.0f) continue;
      float* zt = out + argmax[i * a.m + j] * d;
      const float* fi = a.f + i * d;
      for (int64_t c = 0; c < d; ++c) zt[c] = std::fma(g, fi[c], zt[c]);
    }
  });
  return ctx.cancelled() ? Status(Code::kAborted, "aborted") : Status::Ok();
}

}  // namespace core
}  // namespace vlk
