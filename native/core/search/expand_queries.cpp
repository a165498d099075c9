// Attention-weighted query expansion and gallery augmentation (core/search). See expand_queries.hpp.
#include "search/expand_queries.hpp"

#include <algorithm>
#include <cmath>
#include <new>
#include <string>
#include <vector>

#include "pooling/pooling_detail.hpp"

namespace vlk {
namespace core {

namespace {

Status check_options(const ExpandQueriesArgs& a) {
  if (a.metric == Metric::kL2) {
    return Status(Code::kInvalidArg, "metric: 'l2' is not supported by query expansion (use 'cosine' or 'ip')");
  }
  if (!(a.temperature > 0) || !std::isfinite(a.temperature)) {
    return Status(Code::kInvalidArg, "temperature: must be finite and > 0");
  }
  if (!(a.self_weight >= 0) || !std::isfinite(a.self_weight)) {
    return Status(Code::kInvalidArg, "selfWeight: must be finite and >= 0");
  }
  return Status::Ok();
}

// 1 / ||x|| for cosine (0 for a zero row), 1 for ip.
double unit_scale(const float* x, int64_t d, Metric metric) {
  if (metric != Metric::kCosine) return 1.0;
  double s = 0;
  for (int64_t i = 0; i < d; ++i) s += double(x[i]) * x[i];
  return s > 0 ? 1.0 / std::sqrt(s) : 0.0;
}

// out = norm(sum_j c_j x~_j) over rows `rows` with coefficients c.
void mix(const MatrixView<const float>& g, const int32_t* rows, const double* c, int64_t cnt, const float* self,
         double self_c, Metric metric, int64_t d, double* acc, float* out) {
  std::fill(acc, acc + d, 0.0);
  if (self != nullptr && self_c != 0) {
    const double sc = self_c * unit_scale(self, d, metric);
    for (int64_t i = 0; i < d; ++i) acc[i] += sc * self[i];
  }
  for (int64_t j = 0; j < cnt; ++j) {
    const float* x = g.row(rows[j]);
    const double sc = c[j] * unit_scale(x, d, metric);
    for (int64_t i = 0; i < d; ++i) acc[i] += sc * x[i];
  }
  double n2 = 0;
  for (int64_t i = 0; i < d; ++i) n2 += acc[i] * acc[i];
  const double inv = 1.0 / (std::sqrt(n2) + gl_detail::kNormEps);
  for (int64_t i = 0; i < d; ++i) out[i] = static_cast<float>(acc[i] * inv);
}

// Softmax of s / T in place (count entries).
void softmax(double* s, int64_t count, double t) {
  double mx = -INFINITY;
  for (int64_t j = 0; j < count; ++j) mx = std::max(mx, s[j] / t);
  double z = 0;
  for (int64_t j = 0; j < count; ++j) z += (s[j] = std::exp(s[j] / t - mx));
  for (int64_t j = 0; j < count; ++j) s[j] /= z;
}

}  // namespace

Status expand_queries(const ExpandQueriesArgs& a, const ExpandQueriesOut& out, const Context& ctx) {
  VLK_RETURN_IF_ERROR(check_options(a));
  if (out.expanded == nullptr) return Status(Code::kInvalidArg, "expandQueries: null output");
  SearchArgs sa;
  sa.queries = a.queries;
  sa.gallery = a.gallery;
  sa.k = a.m;
  sa.metric = a.metric;
  VLK_RETURN_IF_ERROR(validate_search(sa));
  const int64_t Q = a.queries.rows, D = a.queries.cols, m = a.m;
  std::vector<int32_t> idx;
  std::vector<float> sc;
  std::vector<int32_t> cnt;
  try {
    idx.resize(static_cast<size_t>(Q * m));
    sc.resize(static_cast<size_t>(Q * m));
    cnt.resize(static_cast<size_t>(Q));
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "expandQueries: out of memory");
  }
  SearchOut so;
  so.indices = idx.data();
  so.scores = sc.data();
  so.counts = cnt.data();
  VLK_RETURN_IF_ERROR(search(sa, so, ctx));
  gl_detail::parallel(ctx, Q, [&](int64_t q) {
    std::vector<double> w(static_cast<size_t>(m)), acc(static_cast<size_t>(D));
    const int64_t c = cnt[q];
    for (int64_t j = 0; j < c; ++j) w[j] = sc[q * m + j];
    softmax(w.data(), c, a.temperature);
    mix(a.gallery, idx.data() + q * m, w.data(), c, a.queries.row(q), a.self_weight, a.metric, D, acc.data(),
        out.expanded + q * D);
    for (int64_t j = 0; j < m; ++j) {
      if (out.neighbours != nullptr) out.neighbours[q * m + j] = j < c ? idx[q * m + j] : -1;
      if (out.weights != nullptr) out.weights[q * m + j] = j < c ? static_cast<float>(w[j]) : 0.0f;
    }
  });
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  if (a.k > 0) {
    if (out.indices == nullptr || out.scores == nullptr) {
      return Status(Code::kInvalidArg, "expandQueries: null re-search outputs");
    }
    SearchArgs s2;
    s2.queries = MatrixView<const float>(out.expanded, Q, D);
    s2.gallery = a.search_gallery.data != nullptr ? a.search_gallery : a.gallery;
    s2.k = a.k;
    s2.metric = a.metric;
    SearchOut o2;
    o2.indices = out.indices;
    o2.scores = out.scores;
    VLK_RETURN_IF_ERROR(search(s2, o2, ctx));
  }
  return Status::Ok();
}

Status augment_gallery(const ExpandQueriesArgs& a, const ExpandQueriesOut& out, const Context& ctx) {
  VLK_RETURN_IF_ERROR(check_options(a));
  if (out.expanded == nullptr) return Status(Code::kInvalidArg, "augmentGallery: null output");
  const int64_t N = a.gallery.rows, D = a.gallery.cols, m = a.m;
  if (N >= 1 && D >= 1 && (m < 1 || m > N - 1)) {
    return Status(Code::kInvalidK, "m: " + std::to_string(m) + " is outside 1..N-1 = " + std::to_string(N - 1) +
                                       " (the self is not one of the m neighbours)");
  }
  std::vector<int64_t> offs;
  std::vector<int32_t> rows, idx, cnt;
  std::vector<float> sc;
  try {
    offs.resize(static_cast<size_t>(N + 1));
    rows.resize(static_cast<size_t>(N));
    idx.resize(static_cast<size_t>(N * m));
    sc.resize(static_cast<size_t>(N * m));
    cnt.resize(static_cast<size_t>(N));
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "augmentGallery: out of memory");
  }
  for (int64_t i = 0; i <= N; ++i) offs[i] = i;
  for (int64_t i = 0; i < N; ++i) rows[i] = static_cast<int32_t>(i);
  SearchArgs sa;
  sa.queries = a.gallery;
  sa.gallery = a.gallery;
  sa.k = m;
  sa.metric = a.metric;
  sa.filter.exclude_offsets = offs.data();
  sa.filter.exclude_rows = rows.data();
  SearchOut so;
  so.indices = idx.data();
  so.scores = sc.data();
  so.counts = cnt.data();
  VLK_RETURN_IF_ERROR(search(sa, so, ctx));
  gl_detail::parallel(ctx, N, [&](int64_t i) {
    std::vector<double> w(static_cast<size_t>(m + 1)), acc(static_cast<size_t>(D));
    const float* g = a.gallery.row(i);
    const int64_t c = cnt[i];
    double self = 0;
    for (int64_t e = 0; e < D; ++e) self += double(g[e]) * g[e];
    if (a.metric == Metric::kCosine) self = self > 0 ? 1.0 : 0.0;
    w[0] = self;
    for (int64_t j = 0; j < c; ++j) w[j + 1] = sc[i * m + j];
    softmax(w.data(), c + 1, a.temperature);
    mix(a.gallery, idx.data() + i * m, w.data() + 1, c, g, w[0], a.metric, D, acc.data(), out.expanded + i * D);
    for (int64_t j = 0; j < m; ++j) {
      if (out.neighbours != nullptr) out.neighbours[i * m + j] = j < c ? idx[i * m + j] : -1;
    }
    if (out.weights != nullptr) {
      for (int64_t j = 0; j <= m; ++j) out.weights[i * (m + 1) + j] = j <= c ? static_cast<float>(w[j]) : 0.0f;
    }
  });
  if (ctx.cancelled()) return Status(Code::kAborted, "aborted");
  return Status::Ok();
}

}  // namespace core
}  // namespace vlk
