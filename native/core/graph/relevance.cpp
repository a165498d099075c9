// Intra-modal relevance (core/graph). See relevance.hpp. Rows are independent in every elementwise
// pass (index-owned outputs), the products go through the fp32 GEMM, so results do not depend on
// the thread count.
#include "graph/relevance.hpp"

#include <cmath>
#include <new>
#include <string>
#include <vector>

#include "common/block_cache.hpp"
#include "graph/fast_exp.hpp"
#include "graph/graph_common.hpp"
#include "isa/isa.hpp"

namespace vlk {
namespace core {

namespace {

using graph_detail::check_finite;
using graph_detail::for_rows;
using graph_detail::matmul;

constexpr double kNormFloor = 1e-12;

Status check_args(const RelevanceArgs& a) {
  if (a.n <= 0 || a.d <= 0) {
    return Status(Code::kEmpty, "x: " + std::to_string(a.n) + " x " + std::to_string(a.d) + " is empty");
  }
  if (a.x == nullptr) return Status(Code::kInvalidArg, "relevance: null input");
  if (a.kind == RelevanceKind::kGaussian && (!(a.sigma > 0) || !std::isfinite(a.sigma))) {
    return Status(Code::kInvalidArg, "options.sigma: " + std::to_string(a.sigma) + " is not a finite number > 0");
  }
  return check_finite("x", a.x, a.n, a.d);
}

// Centred rows (fp32), their squared norms (float64), and the distance matrix d (n x n, float64
// is not needed: fp32 sqrt of the float64 d^2) written into `dist`.
struct Distances {
  ScratchVector<float> xc;
  ScratchVector<double> sq;
  ScratchVector<float> dist;
};

Status distances(const RelevanceArgs& a, Distances* out, const Context& ctx) {
  const int64_t n = a.n, d = a.d;
  out->xc.resize(static_cast<size_t>(n * d));
  out->sq.resize(static_cast<size_t>(n));
  out->dist.resize(static_cast<size_t>(n * n));
  ScratchVector<double> mean(static_cast<size_t>(d), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < d; ++k) mean[k] += a.x[i * d + k];
  }
  for (double& m : mean) m /= static_cast<double>(n);
  float* xc = out->xc.data();
  for_rows(n, ctx, [&](int64_t i) {
    double s = 0;
    for (int64_t k = 0; k < d; ++k) {
      const float v = static_cast<float>(a.x[i * d + k] - mean[k]);
      xc[i * d + k] = v;
      s += double(v) * v;
    }
    out->sq[i] = s;
  });
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  float* g = out->dist.data();
  VLK_RETURN_IF_ERROR(graph_detail::gram_upper(n, d, xc, g, ctx));
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  const ScratchVector<double>& sq = out->sq;
  for_rows(n, ctx, [&](int64_t i) {
    g[i * n + i] = 0.0f;
    for (int64_t j = i + 1; j < n; ++j) {
      const double scale = sq[i] + sq[j];
      double d2 = scale - 2.0 * double(g[i * n + j]);
      if (d2 < scale / 16) {  // near pair: the difference cancels, recompute exactly
        d2 = 0;
        const float* xi = a.x + i * d;
        const float* xj = a.x + j * d;
        for (int64_t k = 0; k < d; ++k) {
          const double t = double(xi[k]) - double(xj[k]);
          d2 += t * t;
        }
      }
      g[i * n + j] = static_cast<float>(std::sqrt(d2 > 0 ? d2 : 0.0));
    }
  });
  // Mirror the upper triangle (only it was computed).
  for_rows(n, ctx, [&](int64_t i) {
    for (int64_t j = 0; j < i; ++j) g[i * n + j] = g[j * n + i];
  });
  return Status::Ok();
}

// Unit rows u_i = x_i / max(||x_i||, 1e-12) and the norms used.
void unit_rows(const RelevanceArgs& a, ScratchVector<float>* u, ScratchVector<double>* nrm, const Context& ctx) {
  const int64_t n = a.n, d = a.d;
  u->resize(static_cast<size_t>(n * d));
  nrm->resize(static_cast<size_t>(n));
  for_rows(n, ctx, [&](int64_t i) {
    double s = 0;
    for (int64_t k = 0; k < d; ++k) s += double(a.x[i * d + k]) * a.x[i * d + k];
    const double len = std::max(std::sqrt(s), kNormFloor);
    (*nrm)[i] = len;
    for (int64_t k = 0; k < d; ++k) (*u)[i * d + k] = static_cast<float>(a.x[i * d + k] / len);
  });
}

// r[j] = exp(-dist[j] * inv): the branch-free fexp, vectorized in the ISA clones; arguments below
// its range (results under ~1e-38, where fexp clamps) are redone with std::exp, keeping the
// subnormal results.
VLK_INLINE void exp_neg_row_impl(const float* __restrict dist, float* __restrict r, int64_t n, float inv) {
  for (int64_t j = 0; j < n; ++j) r[j] = graph_detail::fexp(-dist[j] * inv);
}
VLK_TARGET_AVX512 void exp_neg_row_avx512(const float* dist, float* r, int64_t n, float inv) {
  exp_neg_row_impl(dist, r, n, inv);
}
VLK_TARGET_AVX2 void exp_neg_row_avx2(const float* dist, float* r, int64_t n, float inv) {
  exp_neg_row_impl(dist, r, n, inv);
}

void exp_neg_row(Isa isa, const float* dist, float* r, int64_t n, float inv) {
  switch (isa) {
    case Isa::kAvx512: exp_neg_row_avx512(dist, r, n, inv); break;
    case Isa::kAvx2: exp_neg_row_avx2(dist, r, n, inv); break;
    case Isa::kScalar: exp_neg_row_impl(dist, r, n, inv); break;
  }
  for (int64_t j = 0; j < n; ++j) {
    const float x = -dist[j] * inv;
    if (x < -87.3365f) r[j] = std::exp(x);
  }
}

}  // namespace

Status relevance(const RelevanceArgs& a, float* r, const Context& ctx) {
  VLK_RETURN_IF_ERROR(check_args(a));
  if (r == nullptr) return Status(Code::kInvalidArg, "relevance: null output");
  const int64_t n = a.n;
  try {
    if (a.kind == RelevanceKind::kCosine) {
      ScratchVector<float> u;
      ScratchVector<double> nrm;
      unit_rows(a, &u, &nrm, ctx);
      if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
      VLK_RETURN_IF_ERROR(graph_detail::gram_upper(n, a.d, u.data(), r, ctx));
      // Symmetric by definition: mirror the upper triangle (only it was computed).
      for_rows(n, ctx, [&](int64_t i) {
        for (int64_t j = 0; j < i; ++j) r[i * n + j] = r[j * n + i];
      });
    } else {
      Distances dd;
      VLK_RETURN_IF_ERROR(distances(a, &dd, ctx));
      const float inv = static_cast<float>(1.0 / a.sigma);
      const float* dist = dd.dist.data();
      const Isa isa = ctx.isa;
      for_rows(n, ctx, [&](int64_t i) {
        exp_neg_row(isa, dist + i * n, r + i * n, n, inv);
        r[i * n + i] = 1.0f;
      });
    }
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "relevance: out of memory");
  }
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  return Status::Ok();
}

Status relevance_backward(const RelevanceArgs& a, const float* dr, float* dx, const Context& ctx) {
  VLK_RETURN_IF_ERROR(check_args(a));
  if (dr == nullptr || dx == nullptr) return Status(Code::kInvalidArg, "relevance backward: null argument");
  VLK_RETURN_IF_ERROR(check_finite("gradOutput", dr, a.n, a.n));
  const int64_t n = a.n, d = a.d;
  try {
    if (a.kind == RelevanceKind::kCosine) {
      ScratchVector<float> u;
      ScratchVector<double> nrm;
      unit_rows(a, &u, &nrm, ctx);
      ScratchVector<float> s(static_cast<size_t>(n * n));
      for_rows(n, ctx, [&](int64_t i) {
        for (int64_t j = 0; j < n; ++j) s[i * n + j] = static_cast<float>(double(dr[i * n + j]) + dr[j * n + i]);
      });
      ScratchVector<float> du(static_cast<size_t>(n * d));
      VLK_RETURN_IF_ERROR(matmul(false, false, n, d, n, s.data(), u.data(), du.data(), 0.0f, ctx));
      for_rows(n, ctx, [&](int64_t i) {
        const float* ui = u.data() + i * d;
        const float* gi = du.data() + i * d;
        if (nrm[i] <= kNormFloor) {
          for (int64_t k = 0; k < d; ++k) dx[i * d + k] = static_cast<float>(gi[k] / kNormFloor);
          return;
        }
        double dot = 0;
        for (int64_t k = 0; k < d; ++k) dot += double(gi[k]) * ui[k];
        for (int64_t k = 0; k < d; ++k) dx[i * d + k] = static_cast<float>((gi[k] - dot * ui[k]) / nrm[i]);
      });
    } else {
      Distances dd;
      VLK_RETURN_IF_ERROR(distances(a, &dd, ctx));
      const double inv = 1.0 / a.sigma;
      const float* dist = dd.dist.data();
      // W (n x n) in place of the distances' copy; rowsum in float64.
      ScratchVector<float> w(static_cast<size_t>(n * n));
      ScratchVector<double> rowsum(static_cast<size_t>(n));
      for_rows(n, ctx, [&](int64_t i) {
        double acc = 0;
        for (int64_t j = 0; j < n; ++j) {
          const double dij = dist[i * n + j];
          double v = 0;
          if (i != j && dij > 0) {
            const double rij = std::exp(-dij * inv);  // symmetric distances: R[i, j] = R[j, i]
            v = -rij * (double(dr[i * n + j]) + dr[j * n + i]) * inv / dij;
          }
          w[i * n + j] = static_cast<float>(v);
          acc += static_cast<float>(v);
        }
        rowsum[i] = acc;
      });
      if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
      ScratchVector<float> wx(static_cast<size_t>(n * d));
      VLK_RETURN_IF_ERROR(matmul(false, false, n, d, n, w.data(), dd.xc.data(), wx.data(), 0.0f, ctx));
      const float* xc = dd.xc.data();
      for_rows(n, ctx, [&](int64_t i) {
        for (int64_t k = 0; k < d; ++k) {
          dx[i * d + k] = static_cast<float>(rowsum[i] * xc[i * d + k] - double(wx[i * d + k]));
        }
      });
    }
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "relevance backward: out of memory");
  }
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  return Status::Ok();
}

}  // namespace core
}  // namespace vlk
