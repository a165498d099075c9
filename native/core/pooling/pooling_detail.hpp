// Helpers shared by the global-local ops (core/pooling and search/scan_similarity,
// search/expand_queries): a deterministic parallel loop over independent items, finiteness checks
// that name the input, the token-length checks, and the L2 normalisation used throughout,
//   y = x / (||x|| + 1e-8)              (AAHR's l2norm: eps ADDED to the norm, papers.md item 13)
// with its Jacobian-vector product
//   dx = dy / (r + eps) - x (x . dy) / (r (r + eps)^2)   (r = ||x||; second term 0 at r = 0).
// Header-only, internal.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>

#include "common/context.hpp"
#include "common/status.hpp"

namespace vlk {
namespace core {
namespace gl_detail {

constexpr double kNormEps = 1e-8;

// fn(i) for i in [0, n): on the pool when the context allows, else inline. fn writes only to
// i-owned outputs, so the results do not depend on the thread count.
inline void parallel(const Context& ctx, int64_t n, const std::function<void(int64_t)>& fn) {
  if (ctx.pool != nullptr && ctx.threads > 1 && n > 1) {
    ctx.pool->parallel_for(n, ctx.threads, fn);
  } else {
    for (int64_t i = 0; i < n; ++i) fn(i);
  }
}

// The context for work already split over the pool: same ISA and cancel flag, one thread.
inline Context serial(const Context& ctx) {
  Context c = ctx;
  c.pool = nullptr;
  c.threads = 1;
  return c;
}

inline Status check_finite(const char* name, const float* x, int64_t rows, int64_t per) {
  for (int64_t i = 0; i < rows * per; ++i) {
    if (!std::isfinite(x[i])) {
      return Status(Code::kNonFinite, std::string(name) + ": row " + std::to_string(i / per) + ", element " +
                                          std::to_string(i % per) + " is not finite");
    }
  }
  return Status::Ok();
}

// Valid tokens of item b: lengths[b] (checked in 1..n) or n when lengths is null.
inline Status check_lengths(const char* name, const int32_t* lengths, int64_t b, int64_t n) {
  if (lengths == nullptr) return Status::Ok();
  for (int64_t i = 0; i < b; ++i) {
    if (lengths[i] < 1 || lengths[i] > n) {
      return Status(Code::kInvalidArg, std::string(name) + "[" + std::to_string(i) + "] = " +
                                           std::to_string(lengths[i]) + " is outside 1.." + std::to_string(n));
    }
  }
  return Status::Ok();
}

// Finiteness of the valid tokens only (padding may hold anything).
inline Status check_tokens(const char* name, const float* x, const int32_t* lengths, int64_t b, int64_t n,
                           int64_t d) {
  for (int64_t i = 0; i < b; ++i) {
    const int64_t len = lengths == nullptr ? n : lengths[i];
    for (int64_t t = 0; t < len; ++t) {
      const float* row = x + (i * n + t) * d;
      for (int64_t e = 0; e < d; ++e) {
        if (!std::isfinite(row[e])) {
          return Status(Code::kNonFinite, std::string(name) + ": item " + std::to_string(i) + ", token " +
                                              std::to_string(t) + ", element " + std::to_string(e) +
                                              " is not finite");
        }
      }
    }
  }
  return Status::Ok();
}

// y = x / (||x|| + eps) in double; returns ||x||.
inline double l2norm(const double* x, double* y, int64_t d) {
  double s = 0;
  for (int64_t i = 0; i < d; ++i) s += x[i] * x[i];
  const double r = std::sqrt(s), inv = 1.0 / (r + kNormEps);
  for (int64_t i = 0; i < d; ++i) y[i] = x[i] * inv;
  return r;
}

// dx (+)= J^T dy for y = x / (||x|| + eps), r = ||x||.
inline void l2norm_backward(const double* x, double r, const double* dy, double* dx, int64_t d, bool add) {
  double xdy = 0;
  for (int64_t i = 0; i < d; ++i) xdy += x[i] * dy[i];
  const double a = 1.0 / (r + kNormEps);
  const double c = r > 0 ? xdy / (r * (r + kNormEps) * (r + kNormEps)) : 0.0;
  for (int64_t i = 0; i < d; ++i) {
    const double v = dy[i] * a - x[i] * c;
    dx[i] = add ? dx[i] + v : v;
  }
}

}  // namespace gl_detail
}  // namespace core
}  // namespace vlk
