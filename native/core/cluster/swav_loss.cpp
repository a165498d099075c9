// SwAV swapped-prediction loss (core/cluster). See swav_loss.hpp.
#include "cluster/swav_loss.hpp"

#include <algorithm>
#include <atomic>


#include <cmath>
#include <new>
#include <string>
#include <vector>

namespace vlk {
namespace core {

namespace {

Status check_finite(const char* name, const float* x, int64_t rows, int64_t cols) {
  for (int64_t i = 0; i < rows * cols; ++i) {
    if (!std::isfinite(x[i])) {
      return Status(Code::kNonFinite, std::string(name) + ": row " + std::to_string(i / cols) + ", column " +
                                          std::to_string(i % cols) + " is not finite");
    }
  }
  return Status::Ok();
}

// 4-lane float64 sum of f(i) for i in [0, n), lanes added in a fixed order (vectorises).
template <class F>
double lanes(int64_t n, F f) {
  double acc[4] = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (int l = 0; l < 4; ++l) acc[l] += f(i + l);
  }
  for (; i < n; ++i) acc[0] += f(i);
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

// Rows [b0, b1) of one direction: sum_b sum_p q[b,p] (lse_b - z[b,p]) (not yet / B), its gradient
// into d (when not null); *dot gets sum(d * o) (for dL/dtau). z, e: P-long scratch.
double direction_rows(const float* o, const float* q, int64_t b0, int64_t b1, int64_t B, int64_t P, double tau,
                      float* d, double* dot, double* z, double* e) {
  const double inv_tau = 1.0 / tau;
  double loss = 0;
  *dot = 0;
  for (int64_t b = b0; b < b1; ++b) {
    const float* orow = o + b * P;
    const float* qrow = q + b * P;
    for (int64_t p = 0; p < P; ++p) z[p] = double(orow[p]) * inv_tau;
    double mx4[4] = {z[0], z[0], z[0], z[0]};
    int64_t p = 0;
    for (; p + 4 <= P; p += 4) {
      for (int l = 0; l < 4; ++l) mx4[l] = z[p + l] > mx4[l] ? z[p + l] : mx4[l];
    }
    for (; p < P; ++p) mx4[0] = z[p] > mx4[0] ? z[p] : mx4[0];
    const double mx = std::max(std::max(mx4[0], mx4[1]), std::max(mx4[2], mx4[3]));
    for (int64_t j = 0; j < P; ++j) e[j] = std::exp(z[j] - mx);
    const double se = lanes(P, [&](int64_t j) { return e[j]; });
    const double lse = mx + std::log(se);
    const double m = lanes(P, [&](int64_t j) { return double(qrow[j]); });
    loss += lanes(P, [&](int64_t j) { return double(qrow[j]) * (lse - z[j]); });
    const double g = inv_tau / double(B);
    const double ms = m / se;
    if (d != nullptr) {
      float* drow = d + b * P;
      *dot += lanes(P, [&](int64_t j) {
        const double v = (ms * e[j] - double(qrow[j])) * g;
        drow[j] = static_cast<float>(v);
        return v * double(orow[j]);
      });
    } else {
      *dot += lanes(P, [&](int64_t j) { return (ms * e[j] - double(qrow[j])) * g * double(orow[j]); });
    }
  }
  return loss;
}

}  // namespace

Status swav_loss(const SwavLossArgs& a, SwavLossOut* out, const Context& ctx) {
  if (out == nullptr) return Status(Code::kInvalidArg, "swav loss: null output");
  if (a.b <= 0 || a.p <= 0) {
    return Status(Code::kEmpty, "swav loss: B and P must be >= 1 (got B = " + std::to_string(a.b) + ", P = " +
                                    std::to_string(a.p) + ")");
  }
  if (a.scores_v == nullptr || a.scores_t == nullptr || a.codes_v == nullptr || a.codes_t == nullptr) {
    return Status(Code::kInvalidArg, "swav loss: scoresV, scoresT, codesV and codesT are required");
  }
  if (!(a.temperature > 0) || !std::isfinite(a.temperature)) {
    return Status(Code::kInvalidArg, "temperature: " + std::to_string(a.temperature) + " is not a finite number > 0");
  }
  VLK_RETURN_IF_ERROR(check_finite("scoresV", a.scores_v, a.b, a.p));
  VLK_RETURN_IF_ERROR(check_finite("scoresT", a.scores_t, a.b, a.p));
  VLK_RETURN_IF_ERROR(check_finite("codesV", a.codes_v, a.b, a.p));
  VLK_RETURN_IF_ERROR(check_finite("codesT", a.codes_t, a.b, a.p));
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  constexpr int64_t kRows = 16;
  const int64_t B = a.b, P = a.p;
  const int64_t blocks = (B + kRows - 1) / kRows;
  // Per block: loss_v, loss_t, dot_v, dot_t; added in block order below.
  std::vector<double> sums;
  try {
    sums.assign(static_cast<size_t>(4 * blocks), 0.0);
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "swav loss: out of memory");
  }
  std::atomic<bool> oom{false};
  auto fn = [&](int64_t k) {
    std::vector<double> z, e;
    try {
      z.resize(static_cast<size_t>(P));
      e.resize(static_cast<size_t>(P));
    } catch (const std::bad_alloc&) {
      oom = true;
      return;
    }
    const int64_t b0 = k * kRows, b1 = std::min(B, b0 + kRows);
    double* s = &sums[static_cast<size_t>(4 * k)];
    s[0] = direction_rows(a.scores_v, a.codes_t, b0, b1, B, P, a.temperature, out->dscores_v, &s[2], z.data(), e.data());
    s[1] = direction_rows(a.scores_t, a.codes_v, b0, b1, B, P, a.temperature, out->dscores_t, &s[3], z.data(), e.data());
  };
  if (ctx.pool != nullptr && ctx.threads > 1 && blocks > 1) {
    ctx.pool->parallel_for(blocks, ctx.threads, fn);
  } else {
    for (int64_t k = 0; k < blocks; ++k) fn(k);
  }
  if (oom) return Status(Code::kOutOfMemory, "swav loss: out of memory");
  double lv = 0, lt = 0, dot = 0;
  for (int64_t k = 0; k < blocks; ++k) {
    lv += sums[4 * k];
    lt += sums[4 * k + 1];
    dot += sums[4 * k + 2] + sums[4 * k + 3];
  }
  out->loss_v = lv / double(B);
  out->loss_t = lt / double(B);
  out->loss = out->loss_v + out->loss_t;
  out->dtemperature = -dot / a.temperature;
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  return Status::Ok();
}

}  // namespace core
}  // namespace vlk
